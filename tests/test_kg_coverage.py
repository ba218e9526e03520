"""evals.kg_coverage: is a question's gold chain in the triples extracted from its gold passages."""

from __future__ import annotations

import json

import pytest

from placecell.evals import kg_coverage
from placecell.evals.multihop_metrics import passage_string
from placecell.tools.stores.passages import passage_id

GOLD = [{"title": "Song", "text": "The song is by Lou Rawls."},
        {"title": "Rawls", "text": "Lou Rawls signed with Capitol Records."}]
QUESTION = {"id": "q1", "question": "What label was the singer of The Song on?", "answer": "Capitol",
            "answer_aliases": ["Capitol Records"], "supporting_passages": GOLD}


def _pid(p):
    return passage_id(passage_string(p["title"], p["text"]))


def test_a_chain_through_both_gold_passages_is_reached():
    triples = {_pid(GOLD[0]): [["The Song", "performed by", "Lou Rawls"]],
               _pid(GOLD[1]): [["lou rawls", "signed with", "Capitol Records"]]}
    row = kg_coverage.question_coverage(QUESTION, triples)
    assert row == {"triples": 2, "answer_entity": True, "chain_reached": True}


def test_a_missing_bridge_triple_breaks_the_chain():
    # Hop 2 was extracted about a different surface form, so the bridge entity does not join.
    triples = {_pid(GOLD[0]): [["The Song", "performed by", "Lou Rawls"]],
               _pid(GOLD[1]): [["the vocalist", "signed with", "Capitol Records"]]}
    row = kg_coverage.question_coverage(QUESTION, triples)
    assert row["answer_entity"] and not row["chain_reached"]
    assert not kg_coverage.question_coverage(QUESTION, {})["answer_entity"]


def test_models_are_compared_on_the_questions_both_extracted(tmp_path, capsys):
    other = dict(QUESTION, id="q2", supporting_passages=[{"title": "X", "text": "never extracted"}])
    full = {_pid(GOLD[0]): {"triples": [["The Song", "performed by", "Lou Rawls"]]},
            _pid(GOLD[1]): {"triples": [["Lou Rawls", "signed with", "Capitol Records"]]}}
    half = {_pid(GOLD[0]): {"triples": [], "failed": True}, _pid(GOLD[1]): {"triples": []}}
    out = kg_coverage.coverage([QUESTION, other], {"big": full, "small": half})
    assert out["questions"] == 1
    assert out["models"]["big"]["chain_reached"] == 1 and out["models"]["small"]["chain_reached"] == 0
    assert out["models"]["small"]["failed_passages"] == 1


def test_cli_reads_the_extraction_cache_and_names_a_missing_one(tmp_path, capsys):
    from placecell.agents.backends import model_key
    from placecell.agents.ingest.extract import SCHEMA_VERSION

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    (cache / "extractions").mkdir(parents=True)
    lines = [{"key": _pid(GOLD[0]), "value": {"triples": [["The Song", "performed by", "Lou Rawls"]]}},
             {"key": _pid(GOLD[1]), "value": {"triples": [["Lou Rawls", "signed with", "Capitol"]]}}]
    (cache / "extractions" / f"{model_key('m1')}-{SCHEMA_VERSION}.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    assert kg_coverage.main(["--questions", str(questions), "--model", "m1", "--cache", str(cache),
                             "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["models"]["m1"]["chain_reached"] == 1
    with pytest.raises(SystemExit) as exc:
        kg_coverage.main(["--questions", str(questions), "--model", "m2", "--cache", str(cache)])
    assert exc.value.code == 2
    assert "no extraction cache for m2" in capsys.readouterr().err
