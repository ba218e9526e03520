"""One user's carousel page: which carousels to show, then fill each by a strategy, no repeats.

Carousel selection (the paper's first 2-D step): candidates are "Top picks" (all items), the user's
strongest shelves / genres, the authors they liked, and "Because you liked X" (EASE neighbours of
recent likes). Each candidate carousel is valued by the mean relevance of its best k items; the page
takes "Top picks" first, then the best-valued others, skipping any whose best items overlap a chosen
carousel's by Jaccard > 0.5 and keeping at most two of a kind. Users without history get popularity
and popular shelves, and the page says so (`fallback = "popularity"`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from placecell.tools.carousels.cf import EASE
from placecell.tools.carousels.data import ItemSpace
from placecell.tools.carousels.strategies import PageState, StrategyParams, UserContext, fill, scale_relevance
from placecell.tools.recsys_data import Catalog

MAX_OF_KIND = 2
MAX_OVERLAP = 0.5
TAG_MIN_WEIGHT = 0.1  # an item "has" a shelf when it is >= 10 % of the item's top shelf count
NEIGHBOURS = 50
N_ASPECTS = 20  # the user's strongest tags are xQuAD's aspects (and the carousel shelf candidates)


@dataclass
class CarouselSpec:
    kind: str  # top | tag | author | because
    key: str
    title: str
    pool: np.ndarray


@dataclass
class Carousel:
    kind: str
    key: str
    title: str
    items: list[int]


@dataclass
class Page:
    carousels: list[Carousel]
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)
    relevance: np.ndarray | None = None  # the per-item relevance in [0, 1] the page was filled with

    def items(self) -> list[int]:
        """The page read carousel by carousel, in position order."""
        return [i for c in self.carousels for i in c.items]


@dataclass
class Prepared:
    history: list[int]
    ctx: UserContext
    fallback: str | None
    specs: list[CarouselSpec]


class CarouselEngine:
    def __init__(self, catalog: Catalog, space: ItemSpace, cf: EASE):
        self.catalog, self.space, self.cf = catalog, space, cf
        info = cf.self_information()
        self.novelty = (info - info.min()) / max(info.max() - info.min(), 1e-9)
        self.first_author = [(catalog.items[i].creators or ("",))[0] for i in space.ids]
        self.by_author: dict[str, list[int]] = {}
        for i, name in enumerate(self.first_author):
            self.by_author.setdefault(name, []).append(i)
        sums = space.raw_tags.sum(1, keepdims=True)
        self.item_aspects = np.divide(space.raw_tags, sums, out=np.zeros_like(space.raw_tags), where=sums > 0)

    # -- per-user quantities ---------------------------------------------------------------------
    def context(self, history: list[int], scores: np.ndarray | None = None, candidates: np.ndarray | None = None) -> tuple[UserContext, str | None]:
        """Relevance from `scores` (caller's, e.g. CTR) or from CF; popularity when there is no history."""
        n_items = len(self.space.ids)
        fallback = None
        if scores is None:
            cf = self.cf.score(history)
            scores, fallback = cf.scores, cf.fallback
        available = np.isfinite(scores)
        available[np.asarray(history, dtype=np.int64)] = False
        if candidates is not None:
            mask = np.zeros(n_items, dtype=bool)
            mask[candidates] = True
            available &= mask
        if history:
            unexpected = 1.0 - self.space.similarity_to(history).max(1)
            profile = self.space.raw_tags[history].sum(0)
        else:
            unexpected = np.ones(n_items, dtype=np.float32)
            profile = self.cf.popularity @ self.space.raw_tags
        aspects = np.zeros_like(profile)
        top = np.argsort(-profile)[:N_ASPECTS]
        aspects[top] = profile[top] / max(profile[top].sum(), 1e-9)
        rel = scale_relevance(np.where(available, scores, 0.0), available)
        return UserContext(rel, available, self.novelty, np.clip(unexpected, 0.0, 1.0), aspects), fallback

    # -- carousel selection ------------------------------------------------------------------------
    def _tag_specs(self, ctx: UserContext, n: int = 8) -> list[CarouselSpec]:
        specs = []
        for t in np.argsort(-ctx.aspects)[:n]:
            if ctx.aspects[t] <= 0:
                break
            pool = np.flatnonzero(self.space.raw_tags[:, t] >= TAG_MIN_WEIGHT)
            tag = self.space.tags[t]
            specs.append(CarouselSpec("tag", tag, f"More {tag}", pool))
        return specs

    def _author_specs(self, history: list[int]) -> list[CarouselSpec]:
        counts = Counter(self.first_author[i] for i in reversed(history) if self.first_author[i])
        return [
            CarouselSpec("author", name, f"More by {name}", np.asarray(self.by_author[name], dtype=np.int64))
            for name, _ in counts.most_common(4)
        ]

    def _because_specs(self, history: list[int]) -> list[CarouselSpec]:
        specs = []
        for item in list(reversed(history))[:3]:
            pool = self.cf.neighbours(item, NEIGHBOURS)
            title = self.catalog.items[self.space.ids[item]].title
            specs.append(CarouselSpec("because", self.space.ids[item], f"Because you liked {title}", pool))
        return specs

    def propose(self, history: list[int], ctx: UserContext, k: int, fallback: str | None) -> list[CarouselSpec]:
        """Carousel candidates in page order: top picks, then themes by value (overlap and kind rules)."""
        everything = np.arange(len(self.space.ids))
        top_title = "Popular right now" if fallback else "Top picks for you"
        chosen = [CarouselSpec("top", "top", top_title, everything)]
        others = self._tag_specs(ctx) + self._author_specs(history) + self._because_specs(history)
        best: dict[int, set[int]] = {}
        values = []
        for i, spec in enumerate(others):
            pool = spec.pool[ctx.available[spec.pool]]
            if len(pool) < k:
                continue
            top = pool[np.argsort(-ctx.rel[pool])[: 2 * k]]
            best[i] = set(top.tolist())
            values.append((float(ctx.rel[top[:k]].mean()), i))
        picked: list[set[int]] = []
        kinds: Counter = Counter()
        for _, i in sorted(values, key=lambda v: (-v[0], v[1])):
            spec = others[i]
            overlap = max((len(best[i] & s) / len(best[i] | s) for s in picked), default=0.0)
            if kinds[spec.kind] >= MAX_OF_KIND or overlap > MAX_OVERLAP:
                continue
            chosen.append(spec)
            picked.append(best[i])
            kinds[spec.kind] += 1
        return chosen

    # -- the page ----------------------------------------------------------------------------------
    def prepare(self, history: list[int], scores: np.ndarray | None = None, candidates: np.ndarray | None = None, k: int = 5) -> "Prepared":
        """The strategy-independent part of a page (relevance, carousel candidates); reusable across strategies."""
        ctx, fallback = self.context(history, scores, candidates)
        return Prepared(history, ctx, fallback, self.propose(history, ctx, k, fallback))

    def page(
        self,
        history: list[int],
        strategy: str,
        k: int = 5,
        n_carousels: int = 4,
        params: StrategyParams | None = None,
        scores: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Page:
        return self.fill_page(self.prepare(history, scores, candidates, k), strategy, k, n_carousels, params)

    def fill_page(self, prep: "Prepared", strategy: str, k: int = 5, n_carousels: int = 4, params: StrategyParams | None = None) -> Page:
        params = params or StrategyParams()
        ctx, fallback = prep.ctx, prep.fallback
        state = PageState(self.space, self.item_aspects, np.flatnonzero(ctx.aspects > 0))
        carousels: list[Carousel] = []
        for spec in prep.specs:
            if len(carousels) == n_carousels:
                break
            # Earlier carousels may have taken this theme's items; skip themes that cannot fill k.
            if np.count_nonzero(ctx.available[spec.pool] & ~state.taken[spec.pool]) >= k:
                carousels.append(Carousel(spec.kind, spec.key, spec.title, fill(spec.pool, k, strategy, ctx, state, params)))
        everything = np.arange(len(self.space.ids))
        while len(carousels) < n_carousels:  # too few distinct themes: continue the top picks
            items = fill(everything, k, strategy, ctx, state, params)
            if not items:
                break
            first = "Popular right now" if fallback else "Top picks for you"  # the page's head, when no theme could fill k
            carousels.append(Carousel("top", f"more{len(carousels)}", "More picks for you" if carousels else first, items))
        notes = ["no history for this user: ranked by popularity"] if fallback else []
        return Page(carousels, fallback, notes, ctx.rel)

    def cf_list(self, history: list[int], n: int) -> tuple[list[int], str | None]:
        """Plain CF: the top-n unseen items as one list (the baseline every strategy is compared with)."""
        cf = self.cf.score(history)
        order = np.argsort(-cf.scores, kind="stable")
        return [int(i) for i in order[:n] if np.isfinite(cf.scores[i])], cf.fallback
