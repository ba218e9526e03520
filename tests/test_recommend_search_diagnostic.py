"""The WebRec search diagnostic (`evals/recommend_queries.py`): page ranks and the summary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from placecell.evals.recommend_queries import held_out_page_rank, summarise
from placecell.tools.web.localweb import item_page_path


class FakeSearch:
    def __init__(self, results: dict[str, list[str]]):
        self.results, self.asked = results, []

    def search(self, query: str, max_results: int):
        self.asked.append((query, max_results))
        return [SimpleNamespace(url=f"http://127.0.0.1:1234{p}") for p in self.results.get(query, [])[:max_results]]


def test_page_rank_is_the_best_rank_over_queries_within_depth():
    page = item_page_path("42")
    web = FakeSearch({"a": ["/x.html", "/y.html", page], "b": [page], "c": ["/z.html"] * 5 + [page]})
    assert held_out_page_rank(web, ["a", "c"], page, depth=10) == 3
    assert held_out_page_rank(web, ["a", "b"], page, depth=10) == 1
    assert held_out_page_rank(web, ["c"], page, depth=5) is None  # at rank 6, deeper than searched
    assert held_out_page_rank(web, [], page, depth=5) is None
    assert "/" not in item_page_path("../etc")[len("/item/"):]


def _mode(rank, page_rank, evidence_rank):
    return {"queries": [], "rank": rank, "page_rank": page_rank, "evidence": 0.1, "evidence_rank": evidence_rank}


def test_summary_by_hand():
    rows = [{"direct": _mode(3, 2, 1), "reasoned": _mode(12, None, 40), "both": _mode(2, 2, 1)},
            {"direct": _mode(20, 9, 11), "reasoned": _mode(5, 30, 10), "both": _mode(4, 9, 3)}]
    out = summarise(rows, graph_depth=6)
    assert out["direct"]["page_in_graph_results"] == 0.5 and out["direct"]["page_within_depth"] == 1.0
    assert out["reasoned"]["page_in_graph_results"] == 0.0 and out["reasoned"]["page_within_depth"] == 0.5
    assert out["direct"]["evidence_rank_mean"] == pytest.approx(6.0) and out["direct"]["evidence_hr@10"] == 0.5
    assert out["both"]["evidence_hr@10"] == 1.0 and out["both"]["page_in_graph_results"] == 0.5
    assert out["reasoned"]["evidence_hr@10"] == 0.5 and out["reasoned"]["hr@10"] == 0.5 and out["direct"]["hr@10"] == 0.5
