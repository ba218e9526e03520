"""evals.complete_replay: NeuroPath's completion step rerun from the trace a run saved (no LLM)."""

from __future__ import annotations

import dataclasses

import pytest

from placecell.evals.complete_replay import parse_overrides, replay
from placecell.evals.multihop import make_runner, qa_context
from placecell.graphs.qa import build_qa_graph
from test_qa_graph import DOCS, QUESTION, _backends  # the hand-built Longleat corpus and KG

METHOD = "neuropath_bm25_lean_cover_links_near"  # what `ask` runs


def test_a_replayed_variant_equals_a_fresh_run_of_it(tmp_path, small_llm, monkeypatch):
    from placecell.agents.qa import nodes

    b = _backends(tmp_path, small_llm)
    question = {"id": "q1", "question": QUESTION,
                "supporting_passages": [{"title": t, "text": DOCS[t].split("\n", 1)[1]} for t in ("Longleat", "Alexander Thynn")]}
    seen = []
    real = nodes.complete_ranking

    def spy(backends, ctx, question, candidates, chain, requirements, entities, emit_event):
        seen.append({"entities": entities, "chain": chain, "requirements": requirements, "candidates": candidates})
        return real(backends, ctx, question, candidates, chain, requirements, entities, emit_event)

    monkeypatch.setattr(nodes, "complete_ranking", spy)
    run = make_runner(b, answer=False)
    saved = run(QUESTION, METHOD)
    # The trace is what the completion step read (the graph's output schema leaves these out).
    assert [saved["trace"]] == seen and seen[0]["entities"] and seen[0]["candidates"]
    monkeypatch.undo()
    assert "trace" not in run(QUESTION, "bm25")  # baselines have no completion step
    as_run = replay({"q1": saved}, [question], b, qa_context(METHOD, False))
    assert as_run["questions"] == 1 and as_run["changed"] == 0 and as_run["rankings"]["q1"] == saved["ranking"]
    assert as_run["replayed"] == as_run["saved"]
    # A variant replayed from the trace is what running the graph with that setting returns.
    variant = dataclasses.replace(qa_context(METHOD, False), fuse_bm25=False, cover_entities=False)
    direct = build_qa_graph(b).invoke({"question": QUESTION}, context=variant)
    replayed = replay({"q1": saved}, [question], b, variant)
    assert replayed["rankings"]["q1"] == list(direct["ranking"])
    # A saved ranking that the trace does not give back is counted, and rows without a trace are skipped.
    tampered = dict(saved, ranking=list(reversed(saved["ranking"])))
    assert replay({"q1": tampered}, [question], b, qa_context(METHOD, False))["changed"] == 1
    no_trace = {k: v for k, v in saved.items() if k != "trace"}
    assert replay({"q1": no_trace}, [question], b, qa_context(METHOD, False))["questions"] == 0


def test_overrides_are_typed_and_checked():
    assert parse_overrides(["title_links=false", "link_depth=2", "mode=faithful"]) == {
        "title_links": False, "link_depth": 2, "mode": "faithful"}
    with pytest.raises(ValueError, match="NAME one of"):
        parse_overrides(["no_such_setting=1"])
    with pytest.raises(ValueError, match="true or false"):
        parse_overrides(["title_links=maybe"])
