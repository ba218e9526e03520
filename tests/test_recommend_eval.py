"""The recommendation eval harness end to end on 2 users (scripted LLM, hashing embedder)."""

from __future__ import annotations

import json

from placecell.agents.recommend.fakes import HashingEmbedder, ScriptedLLM
from placecell.evals.recommend import VARIANTS, rank_metrics, run_recommend_eval

KEYS = {"hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "tokens_per_user", "seconds_per_user"}


def test_rank_metrics():
    assert rank_metrics(1) == {"hr@1": 1.0, "hr@5": 1.0, "hr@10": 1.0, "ndcg@5": 1.0, "ndcg@10": 1.0}
    m = rank_metrics(7)
    assert m["hr@5"] == 0.0 and m["hr@10"] == 1.0 and m["ndcg@5"] == 0.0 and abs(m["ndcg@10"] - 1 / 3) < 1e-9


def test_eval_writes_results_in_the_issue_format(tmp_path):
    results = run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=ScriptedLLM(), embedder=HashingEmbedder())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["users"] == 2 and set(saved["variants"]) == set(VARIANTS)
    assert all(set(v) == KEYS for v in saved["variants"].values())
    assert saved["injection_pages"] == 19 and saved["injection_changed_outputs"] == results["injection_changed_outputs"] == 0
    assert saved["variants"]["cf"]["tokens_per_user"] == 0 and saved["variants"]["web_reasoned"]["tokens_per_user"] > 0
    assert "| web_reasoned_mp_noisy |" in (tmp_path / "report.md").read_text()
