"""The recommendation score's fitted weights: the fit, the file keyed by the CTR model, the node."""

from __future__ import annotations

import json

import numpy as np
import pytest

from placecell.agents.recommend import fusion
from placecell.agents.recommend.catalog import load_recsys
from placecell.agents.recommend.fakes import HashingEmbedder, ScriptedLLM
from placecell.agents.recommend.state import RecommendContext
from placecell.graphs.recommend import build_recommend_graph


def _simulated_users(true_w, users=600, candidates=30, seed=0):
    """Users whose chosen item follows softmax(X w): a fit must get w back."""
    rng = np.random.default_rng(seed)
    lists, answers = [], []
    for _ in range(users):
        x = rng.normal(size=(candidates, 3))
        s = x @ np.asarray(true_w)
        p = np.exp(s - s.max())
        lists.append(x)
        answers.append(int(rng.choice(candidates, p=p / p.sum())))
    return lists, answers


def test_conditional_logit_recovers_the_weights_that_made_the_choices():
    lists, answers = _simulated_users((1.5, 0.0, 0.7))
    w = fusion.fit_conditional_logit(lists, answers, l2=0.0)
    assert np.allclose(w, (1.5, 0.0, 0.7), atol=0.2), w
    pinned = fusion.fit_conditional_logit(lists, answers, mask=(1.0, 1.0, 0.0), l2=0.0)
    assert pinned[2] == 0.0 and pinned[0] > 1.0


def test_weights_file_is_used_only_for_the_ctr_model_it_was_fitted_for(tmp_path, monkeypatch):
    path = tmp_path / "goodbooks_399_fusion.json"
    monkeypatch.setattr(fusion, "weights_path", lambda catalog: path)
    w, note = fusion.resolve_weights("goodbooks_399", None, None, None)
    assert w.source == "fallback" and (w.cf, w.ctr, w.evidence) == (1.0, 1.0, 2.0) and "no fitted" in note
    fusion.save_weights("goodbooks_399", {"cf": 0.5, "ctr": 0.05, "evidence": 0.8}, {"fitted_on": {"users": 3}})
    w, note = fusion.resolve_weights("goodbooks_399", None, None, None)
    assert note is None and w.source == "fitted" and (w.cf, w.ctr, w.evidence) == (0.5, 0.05, 0.8)
    w, _ = fusion.resolve_weights("goodbooks_399", None, 2.0, None)  # a context value overrides one weight
    assert (w.cf, w.ctr, w.evidence) == (0.5, 2.0, 0.8)
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "ctr_model": "0" * 16}))  # the CTR model was retrained since
    w, note = fusion.resolve_weights("goodbooks_399", None, None, None)
    assert w.source == "fallback" and "another CTR model" in note
    path.write_text("{not json")
    w, note = fusion.resolve_weights("goodbooks_399", None, None, None)
    assert w.source == "fallback" and "unreadable" in note


@pytest.fixture(scope="module")
def recsys():
    return load_recsys("goodbooks_399")


def test_score_node_ranks_by_the_weighted_sum(recsys, tmp_path, monkeypatch):
    monkeypatch.setattr(fusion, "weights_path", lambda catalog: tmp_path / "none.json")
    graph = build_recommend_graph(recsys, web=None, llm=ScriptedLLM(), embedder=HashingEmbedder())
    inputs = {"history": [{"item": "The Diary of a Young Girl"}, {"item": "Into Thin Air"}]}

    def ranked(**weights):
        ctx = RecommendContext(query_mode="none", explain=False, layout=False, **weights)
        return graph.invoke(inputs, context=ctx)

    ctr_only = ranked(cf_weight=0.0, ctr_weight=1.0, evidence_weight=0.0)["items"]
    assert [it["item_id"] for it in ctr_only] == [it["item_id"] for it in sorted(ctr_only, key=lambda it: (-it["ctr"], it["item_id"]))]
    cf_only = ranked(cf_weight=1.0, ctr_weight=0.0, evidence_weight=0.0)["items"]
    assert [it["item_id"] for it in cf_only] == [it["item_id"] for it in sorted(cf_only, key=lambda it: (-it["cf"], it["item_id"]))]
    assert [it["item_id"] for it in ctr_only][:10] != [it["item_id"] for it in cf_only][:10]
    unfitted = ranked()  # no weights file: fixed weights, and the user is told
    assert any("no fitted score weights" in n for n in unfitted["notes"])
