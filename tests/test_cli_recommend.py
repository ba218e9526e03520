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


def test_a_history_with_no_item_of_the_catalog_is_an_error(tmp_path, capsys):
    """It was a cold-start page of popular items with exit 0: most often the wrong --data."""
    history = tmp_path / "h.csv"
    history.write_text("item,rating\nToy Story (1995),5\nHeat (1995),4\n")
    assert run_cli(["recommend", "--history", str(history), "--web", "off", "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: none of the 2 items in {history} is in the goodbooks_399 catalog ('Toy Story (1995)', "
                   "'Heat (1995)'); check --data, or describe your taste with --likes")
    history.write_text("item,rating\nToy Story (1995),5\nInto Thin Air,5\n")  # one known item: a page and a note
    assert run_cli(["recommend", "--history", str(history), "--web", "off", "--no-explain", "--json",
                    "--home", str(tmp_path / "home")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] and any("'Toy Story (1995)'" in n for n in out["notes"])


@pytest.mark.parametrize("command", [["recommend", "--likes", "sea stories", "--web", "off"], ["ingest", "x.txt"],
                                     ["chat"]])
@pytest.mark.parametrize("value, message", [
    ("", "is empty"), ("http://127.0.0.1:8000/", "is not a host"), ("*", "has a wildcard"),
    ("127.0.0.1:0", "has a port that is not 1-65535"), ("[::1", "has an unclosed ["), ("my host", "is not a host name"),
])
def test_an_allow_host_that_can_match_nothing_is_refused(tmp_path, capsys, command, value, message):
    """A typo was ignored in silence, and the fetch was later refused with advice to pass the flag."""
    assert run_cli([*command, "--allow-host", value, "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --allow-host {value!r} {message}") and "\n" not in err
    assert not (tmp_path / "home").exists()  # refused before anything was made


def test_allow_host_forms_that_match():
    from placecell.tools.web.safety import allow_host_problem, host_is_allowed

    for entry in ("127.0.0.1", "127.0.0.1:8000", "::1", "[::1]", "[::1]:8000", "LocalHost", "0.0.0.0"):
        assert allow_host_problem(entry) is None, entry
    assert host_is_allowed("::1", ["[::1]"], 8000) and host_is_allowed("localhost", ["LocalHost"], 80)
    # a name in another script, as typed or in its IDNA form (the first version refused it)
    assert allow_host_problem("bücher.intern:8080") is None
    assert host_is_allowed("bücher.intern", ["xn--bcher-kva.intern"], 8080)
    assert host_is_allowed("xn--bcher-kva.intern", ["bücher.intern:8080"], 8080)


def test_an_allow_host_from_the_environment_is_checked_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLACECELL_ALLOW_HOSTS", '["127.0.0.1", "https://10.0.0.2"]')
    assert run_cli(["recommend", "--likes", "sea stories", "--web", "off", "--home", str(tmp_path / "home")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: PLACECELL_ALLOW_HOSTS entry 'https://10.0.0.2' is not a host")


def test_a_recording_that_recorded_nothing_fails_and_an_empty_replay_says_so(tmp_path, capsys, monkeypatch):
    """Every search failing left an empty archive and exit 0; replaying it looked like any other run."""
    from placecell.tools.web import search as search_module

    from ddgs.exceptions import DDGSException

    def no_search(self, query, max_results):  # what ddgs raises offline (no network in tests)
        raise DDGSException("https://html.duckduckgo.com/html RequestException: DNSError")

    monkeypatch.setattr(search_module.DDGSSearch, "_raw_search", no_search)
    archive = tmp_path / "archive"
    args = ["recommend", "--likes", "sea stories", "--no-explain", "--queries", "direct", "--home", str(tmp_path / "home")]
    assert run_cli([*args, "--web", "record", "--web-dir", str(archive)]) == 1
    err = capsys.readouterr().err
    assert f"error: nothing was recorded in {archive}: every web search failed" in err
    assert archive.is_dir() and not any(archive.rglob("*.json"))
    assert run_cli([*args, "--web", "replay", "--web-dir", str(archive)]) == 0
    assert f"warning: --web-dir {archive} holds no recorded searches or pages" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert run_cli([*args, "--web", "replay", "--web-dir", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder saved by --web record" in capsys.readouterr().err


def test_a_list_setting_not_written_as_json_is_one_line(tmp_path, capsys, monkeypatch):
    """PLACECELL_ALLOW_HOSTS=127.0.0.1:8000 was a pydantic-settings traceback."""
    monkeypatch.setenv("PLACECELL_ALLOW_HOSTS", "127.0.0.1:8000")
    assert run_cli(["recommend", "--likes", "sea stories", "--web", "off", "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read a setting from the environment or .env") and "\n" not in err
    assert """PLACECELL_ALLOW_HOSTS='["127.0.0.1:8000"]'""" in err
