"""`placecell recommend` from the command line: the local web, the query modes, bad input."""

from __future__ import annotations

import json

import pytest

from placecell.agents.recommend.catalog import load_recsys


def run_cli(args) -> int:
    from placecell.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return exit_info.value.code


def test_recommend_json_on_the_local_web_with_both_query_modes(tmp_path, capsys, small_model):
    recsys = load_recsys("goodbooks_399")
    user = str(recsys.catalog.interactions.users[0])
    args = ["recommend", "--user", user, "--data", "goodbooks_399", "--web", "local", "--no-explain", "--json",
            "--model", "smollm2-135m", "--home", str(tmp_path / "home")]
    assert run_cli([*args, "--queries", "direct"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert run_cli([*args, "--queries", "both"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert direct["queries"] and both["queries"][: len(direct["queries"])] == direct["queries"]
    assert len(both["queries"]) > len(direct["queries"])  # the reasoned keyword queries follow the titles
    assert "reason" in both["usage"] and "reason" not in direct["usage"]
    # --model reaches the lazily loaded LLM (it used to get the default model), and the output says which
    from placecell.tools.models import model_id

    assert both["model"] == model_id(small_model) and direct["model"] is None  # no LLM call: no model loaded
    assert direct["model_name"] == both["model_name"] == "smollm2-135m"
    assert both["carousels"] and both["items"] and both["web"]["pages"] > 0
    shown = {it["item_id"] for c in both["carousels"] for it in c["items"]}
    assert shown and shown <= {it["item_id"] for it in both["items"]}


@pytest.mark.parametrize("extra, message", [
    ([], "give --history FILE, --likes TEXT or --user ID"),
    (["--likes", "sea stories", "--queries", "keywords"], "unknown --queries 'keywords'"),
    (["--user", "no-such-user"], "is not in the goodbooks_399 catalog"),
])
def test_recommend_bad_input_is_one_line(tmp_path, capsys, extra, message):
    assert run_cli(["recommend", "--web", "off", "--home", str(tmp_path / "home"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
