"""Page metrics on held-out interactions. The page is read carousel by carousel, in position order,
as one list; accuracy is taken on its first 10 items, beyond-accuracy metrics on the whole page.

- precision@10, recall@10 (hits / held-out items), nDCG@10 (binary gains);
- ild: 1 - mean pairwise cosine of the items' tf-idf tag vectors;
- novelty: mean self-information -log2(share of training users with the item);
- serendipity: mean over the page of relevant(i) * unexpectedness(i), unexpectedness =
  1 - max tag similarity to the user's training history;
- coverage: share of recommendable items (>= 1 training positive) shown to at least one user;
- gini: Gini coefficient of how often each recommendable item is shown (0 = perfectly even).
"""

from __future__ import annotations

import numpy as np

CUTOFF = 10
USER_KEYS = ("precision@10", "recall@10", "ndcg@10", "ild", "novelty", "serendipity")
METRIC_KEYS = USER_KEYS[:4] + ("coverage",) + USER_KEYS[4:] + ("gini",)


def ndcg(ranked: list[int], relevant: set[int], cutoff: int = CUTOFF) -> float:
    gains = [1.0 / np.log2(r + 2) for r, i in enumerate(ranked[:cutoff]) if i in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), cutoff)))
    return float(sum(gains) / ideal) if ideal else 0.0


def intra_list_diversity(items: list[int], tag_matrix: np.ndarray) -> float:
    if len(items) < 2:
        return 0.0
    vecs = tag_matrix[items]
    sims = vecs @ vecs.T
    n = len(items)
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def user_metrics(
    page: list[int], held_out: list[int], history: list[int], tag_matrix: np.ndarray, self_info: np.ndarray
) -> dict[str, float]:
    relevant = set(held_out)
    top = page[:CUTOFF]
    hits = sum(1 for i in top if i in relevant)
    if history and page:
        unexpected = 1.0 - (tag_matrix[page] @ tag_matrix[history].T).max(1)
    else:
        unexpected = np.ones(len(page))
    flags = np.array([i in relevant for i in page], dtype=np.float64)
    return {
        "precision@10": hits / CUTOFF,
        "recall@10": hits / len(relevant) if relevant else 0.0,
        "ndcg@10": ndcg(page, relevant),
        "ild": intra_list_diversity(page, tag_matrix),
        "novelty": float(self_info[page].mean()) if page else 0.0,
        "serendipity": float((flags * np.clip(unexpected, 0, 1)).mean()) if page else 0.0,
    }


def gini(counts: np.ndarray) -> float:
    values = np.sort(np.asarray(counts, dtype=np.float64))
    if values.sum() == 0:
        return 0.0
    n = len(values)
    cum = np.cumsum(values)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def aggregate(per_user: list[dict[str, float]], pages: list[list[int]], recommendable: np.ndarray) -> dict[str, float]:
    """Means of the per-user metrics plus catalog coverage and exposure Gini over `pages`."""
    out = {key: float(np.mean([m[key] for m in per_user])) for key in USER_KEYS}
    exposure = np.zeros(len(recommendable), dtype=np.float64)
    for page in pages:
        np.add.at(exposure, page, 1.0)
    exposure = exposure[recommendable]
    out["coverage"] = float((exposure > 0).mean())
    out["gini"] = gini(exposure)
    return {key: out[key] for key in METRIC_KEYS}
