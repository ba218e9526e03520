"""evals.completion_variants: the completion step's parts swapped for one replay (no LLM)."""

from __future__ import annotations

import dataclasses

from placecell.agents.qa.neuropath import passage_body
from placecell.agents.qa.nodes import complete_ranking
from placecell.evals.completion_variants import rank
from placecell.evals.multihop import qa_context
from placecell.tools import retrievers
from test_qa_graph import QUESTION, _backends  # the hand-built Longleat corpus and KG

CTX = dataclasses.replace(qa_context("neuropath_bm25_lean_cover_links_near", False), top_k=2, rank_k=4)


def _trace(b) -> dict:
    ids = [p.id for p in b.get_registry().all()]
    return {"candidates": ids[-2:], "chain": "", "requirements": "", "entities": ["Longleat"]}


def test_the_unchanged_variant_is_the_product_step_and_patches_are_undone(tmp_path, small_llm):
    b = _backends(tmp_path, small_llm)
    q, trace = {"question": QUESTION}, _trace(b)
    real_rrf, real_titles = retrievers.rrf, retrievers.title_index
    shipped = complete_ranking(b, CTX, QUESTION, trace["candidates"], "", "", trace["entities"])
    assert rank({}, q, trace, b, CTX) == shipped
    unfused = complete_ranking(b, dataclasses.replace(CTX, fuse_bm25=False), QUESTION, trace["candidates"], "", "",
                               trace["entities"])
    assert rank({"fuse_bm25": False}, q, trace, b, CTX) == unfused
    assert rank({"dense_list": 1.0, "rrf_k": 5, "comma_titles": True}, q, trace, b, CTX)  # runs, returns a ranking
    assert (retrievers.rrf, retrievers.title_index) == (real_rrf, real_titles)


def test_the_bridge_puts_the_top_passage_s_next_neighbour_in_the_top_k(tmp_path, small_llm):
    b = _backends(tmp_path, small_llm)
    q, trace = {"question": QUESTION}, _trace(b)
    bridged = rank({"bridge": True}, q, trace, b, CTX)
    first = b.get_registry().get_many(bridged[:1])[bridged[0]]
    query = f"{QUESTION} {passage_body(first.title, first.text)}"
    shipped = complete_ranking(b, CTX, QUESTION, trace["candidates"], "", "", trace["entities"])
    new = [pid for pid, _ in retrievers.dense(query, b, 20) if pid not in shipped[: CTX.top_k]][0]
    assert new in bridged[: CTX.top_k] and bridged[0] == shipped[0]
