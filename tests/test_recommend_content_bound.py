"""The content upper bound for WebRec's evidence: its features and its cross-validated comparison."""

from __future__ import annotations

import numpy as np

from placecell.evals import recommend_content_bound as bound


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_content_features_rank_candidates_by_closeness_to_the_history():
    history = _unit([[1, 0, 0], [0.8, 0.6, 0]])
    candidates = _unit([[1, 0.1, 0], [0, 0, 1], [0.8, 0.6, 0.05]])
    feats = bound.content_features(candidates, history)
    assert feats.shape == (3, 2)
    assert np.argmin(feats[:, 0]) == 1 and np.argmin(feats[:, 1]) == 1  # the orthogonal one is last on both
    assert np.argmax(feats[:, 1]) == 2  # nearly a copy of the second history item
    assert np.allclose(feats.mean(0), 0) and np.allclose(feats.std(0), 1, atol=1e-6)
    assert not bound.content_features(candidates, np.zeros((0, 3))).any()


def _rows_and_vectors(users=120, cands=20, content_decides=True, seed=0):
    """Probe rows in recommend_weights' format; the positive is the candidate closest to the history
    when `content_decides`, else a random one. CF is noise either way."""
    rng = np.random.default_rng(seed)
    vectors, rows, history = {}, [], {}
    for u in range(users):
        topic = _unit(rng.normal(size=(1, 8)))[0]
        hist = [f"h{u}_{j}" for j in range(3)]
        for h in hist:
            vectors[h] = _unit([topic + 0.3 * rng.normal(size=8)])[0]
        ids = [f"c{u}_{j}" for j in range(cands)]
        for c in ids:
            vectors[c] = _unit([rng.normal(size=8)])[0]
        sims = [vectors[c] @ topic for c in ids]
        positive = ids[int(np.argmax(sims))] if content_decides else ids[int(rng.integers(cands))]
        items = [[c, float(rng.normal()), 0.5, 0.0] for c in ids]
        rows.append({"user": f"u{u}", "positive": positive, "items": items})
        history[f"u{u}"] = hist
    return rows, vectors, history


def test_cross_validation_finds_a_content_signal_when_there_is_one():
    rows, vectors, history = _rows_and_vectors(content_decides=True)
    table = bound.cross_validated(*bound.design(rows, vectors, history))
    assert table["cf + profile"]["hr@10"] >= table["cf"]["hr@10"] + 0.3
    assert table["cf + profile"]["weights"]["profile"] > 0


def test_cross_validation_finds_none_when_there_is_none():
    rows, vectors, history = _rows_and_vectors(content_decides=False)
    table = bound.cross_validated(*bound.design(rows, vectors, history))
    assert abs(table["cf + profile"]["hr@10"] - table["cf"]["hr@10"]) < 0.2
