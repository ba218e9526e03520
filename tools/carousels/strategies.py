"""Item-selection strategies for filling carousels (arXiv 2511.14461's accuracy / diversity / novelty /
serendipity / combined, with MMR and xQuAD as the two diversity methods).

Every strategy is a greedy marginal score over the candidates given what is already on the page, so
diversity is measured against the whole page (across carousels), not only within one carousel.
Relevance `rel` is the user's CF (or caller-provided) score scaled to [0, 1] per user.

`combined` scores the candidate for page slot p (0-based, read carousel by carousel) as

    a * rel / log2(p + 2)  -  b * mean_{j on page} sim(i, j)  +  c * novelty  +  d * unexpectedness

- relevance is weighted by the DCG examination discount of the slot: a user looks at later
  carousels less, so the relevance-diversity trade-off shifts towards diversity further down the
  page instead of being one constant for the whole page;
- the diversity term is the candidate's mean tag similarity to the page, i.e. its exact marginal
  effect on the page's intra-list diversity (1 - mean pairwise similarity). MMR's max-similarity
  saturates on small tag vocabularies (19 MovieLens genres: nearly every candidate shares a genre
  with something on the page), the mean does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from placecell.tools.carousels.data import ItemSpace

STRATEGIES = ("accuracy", "diversity", "xquad", "novelty", "serendipity", "combined")


@dataclass
class StrategyParams:
    """Trade-off weights. The eval re-tunes them on a validation split (see evals/carousels.py)."""

    mmr_lambda: float = 0.7  # diversity (MMR): weight of relevance vs max similarity to the page
    xquad_lambda: float = 0.5  # xquad: weight of uncovered user aspects (tags) vs relevance
    novelty_weight: float = 0.3  # novelty: weight of normalised self-information
    serendipity_weight: float = 0.3  # serendipity: weight of unexpectedness (1 - max sim to history)
    # combined: rel (slot-discounted), -mean page sim, novelty, unexpectedness (module docstring); the default
    # is the weight the eval chose on goodbooks_399's validation split.
    combined: tuple[float, float, float, float] = (1.0, 0.15, 0.0, 0.0)

    def to_json(self) -> dict:
        data = asdict(self)
        data["combined"] = list(self.combined)
        return data


@dataclass
class UserContext:
    rel: np.ndarray  # (n_items,) in [0, 1]
    available: np.ndarray  # (n_items,) bool: may be recommended (unseen, a candidate)
    novelty: np.ndarray  # (n_items,) self-information scaled to [0, 1]
    unexpected: np.ndarray  # (n_items,) 1 - max tag similarity to the user's history
    aspects: np.ndarray  # (n_tags,) p(tag | user), kept for the user's top tags only (xQuAD's aspects)


class PageState:
    """Items placed so far and the running quantities the greedy scores need."""

    def __init__(self, space: ItemSpace, item_aspects: np.ndarray, aspect_cols: np.ndarray):
        n_items = len(space.ids)
        self.items: list[int] = []
        self.space = space
        self.cols = aspect_cols
        self.item_aspects = item_aspects[:, aspect_cols]  # only the user's aspects matter to xQuAD
        self.max_sim = np.zeros(n_items, dtype=np.float32)
        self.sum_sim = np.zeros(n_items, dtype=np.float64)
        self.uncovered = np.ones(len(aspect_cols), dtype=np.float32)
        self.taken = np.zeros(n_items, dtype=bool)

    def add(self, item: int) -> None:
        self.items.append(item)
        self.taken[item] = True
        row = self.space.similarity_row(item)
        np.maximum(self.max_sim, row, out=self.max_sim)
        self.sum_sim += row
        self.uncovered *= 1.0 - self.item_aspects[item]


def marginal_scores(strategy: str, ctx: UserContext, page: PageState, params: StrategyParams, idx: np.ndarray) -> np.ndarray:
    """Greedy score of the candidate items `idx` given the page so far."""
    rel = ctx.rel[idx]
    if strategy == "accuracy":
        return rel
    if strategy == "diversity":
        lam = params.mmr_lambda
        return lam * rel - (1 - lam) * page.max_sim[idx]
    if strategy == "xquad":
        lam = params.xquad_lambda
        return (1 - lam) * rel + lam * (page.item_aspects[idx] @ (ctx.aspects[page.cols] * page.uncovered))
    if strategy == "novelty":
        w = params.novelty_weight
        return (1 - w) * rel + w * ctx.novelty[idx]
    if strategy == "serendipity":
        w = params.serendipity_weight
        return (1 - w) * rel + w * ctx.unexpected[idx]
    if strategy == "combined":
        a, b, c, d = params.combined
        slot = len(page.items)
        mean_sim = page.sum_sim[idx] / slot if slot else 0.0
        return a * rel / np.log2(slot + 2) - b * mean_sim + c * ctx.novelty[idx] + d * ctx.unexpected[idx]
    raise ValueError(f"unknown strategy {strategy!r}")


def fill(pool: np.ndarray, k: int, strategy: str, ctx: UserContext, page: PageState, params: StrategyParams) -> list[int]:
    """Pick up to k items from `pool` greedily, skipping anything already on the page."""
    open_pool = pool[ctx.available[pool] & ~page.taken[pool]]
    chosen: list[int] = []
    for _ in range(min(k, len(open_pool))):
        pos = int(np.argmax(marginal_scores(strategy, ctx, page, params, open_pool)))
        best = int(open_pool[pos])
        page.add(best)
        chosen.append(best)
        open_pool = np.delete(open_pool, pos)
    return chosen


def scale_relevance(scores: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Min-max scale of the available items' scores to [0, 1] (0 elsewhere)."""
    rel = np.zeros(len(scores), dtype=np.float64)
    if not available.any():
        return rel
    # halved first: scores near the float limits (1.7e308) made high - low infinite and relevance NaN
    vals = scores[available].astype(np.float64) / 2
    low, high = float(vals.min()), float(vals.max())
    rel[available] = np.clip((vals - low) / (high - low), 0.0, 1.0) if high > low else 1.0
    return rel
