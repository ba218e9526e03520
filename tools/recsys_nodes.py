"""Recommendation tool nodes: CTR scoring (SGCTR on onnxruntime) and carousel pages, with pydantic I/O.

    from placecell.tools.recsys_nodes import score_candidates, build_carousels
    scored = score_candidates("8", ["15", "40"], {"40": {"web_evidence": 0.7}}, catalog="goodbooks_399")
    page = build_carousels("8", scored.scores, k=5, strategy="combined", catalog="goodbooks_399")

- `score_candidates(user, candidates, features)`: click probability from the shipped SGCTR model of
  the catalog (K refinement passes, default chosen on validation), then
  score = sigmoid(logit(ctr) + feature_weight * sum(features[item].values())), so extra per-item
  signals (e.g. WebRec's web-evidence score in [0, 1]) shift the ranking on the logit scale.
  Unknown items and users score (their fields map to the "unseen" embedding); the result notes it.
- `build_carousels(user, scored_candidates, k, strategy)`: a page of carousels filled from the scored
  candidates (or from EASE CF when none are given); no item repeats across carousels. Users with no
  history get popularity and `fallback = "popularity"`.
- `ScoreRequest -> ScoreResult` and `CarouselRequest -> CarouselPage` are the typed node I/O;
  `recsys_tools()` wraps both as LangChain StructuredTools for a LangGraph ToolNode.
Models, catalogs and CF load lazily, once per process (functools caches).
"""

from __future__ import annotations

import numbers
from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FiniteFloat, ValidationError

from placecell.errors import InputError
from placecell.tools.once import PerProcess

CatalogName = Literal["goodbooks_399", "movielens"]
StrategyName = Literal["accuracy", "diversity", "xquad", "novelty", "serendipity", "combined"]
STRATEGIES: tuple[str, ...] = get_args(StrategyName)
# EASE L2 weight per catalog, chosen on validation by `placecell eval carousels` (see its reports).
EASE_LAMBDA = {"goodbooks_399": 200.0, "movielens": 500.0}


def _as_id(value):
    """An item or user id: text, or a whole number (a model calling the tool often writes ids as
    numbers); None, a list, a bool or blank text is refused (str(None) became the item 'None')."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy's integers too
        return str(int(value))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be an id (text or a whole number), not {value!r}"[:120])
    return value.strip()


Id = Annotated[str, BeforeValidator(_as_id)]


class ScoreRequest(BaseModel):
    # extra="forbid": a misspelt option (refine_pass=2) is an error, not silently ignored
    model_config = ConfigDict(extra="forbid")

    user: str = Field(description="user id in the catalog (unknown users still score)")
    candidates: list[Id] = Field(min_length=1, description="item ids to score")
    # finite: a NaN signal would make a NaN score, which sorts anywhere
    features: dict[str, dict[str, FiniteFloat]] = Field(default_factory=dict, description="item id -> {signal: value}")
    catalog: CatalogName = "goodbooks_399"
    feature_weight: FiniteFloat = Field(1.0, description="weight of the summed extra signals on the logit scale")
    ctr_weight: FiniteFloat = Field(1.0, description="weight of the model's own logit in the final score")
    refine_passes: int | None = Field(None, ge=0, le=3, description="SGCTR refinement passes K (None: model default)")


class ScoredCandidate(BaseModel):
    item_id: Id
    score: FiniteFloat
    ctr: float | None = None
    title: str = ""
    signals: dict[str, float] = Field(default_factory=dict)


class ScoreResult(BaseModel):
    catalog: str
    user: str
    model: str
    refine_passes: int
    scores: list[ScoredCandidate]
    cold_start: bool = False
    notes: list[str] = Field(default_factory=list)


class CarouselRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str
    scored_candidates: list[ScoredCandidate] = Field(default_factory=list, description="empty: rank by CF")
    k: int = Field(5, ge=1, le=50, description="items per carousel")
    strategy: StrategyName = "combined"
    n_carousels: int = Field(4, ge=1, le=12)
    catalog: CatalogName = "goodbooks_399"
    history: list[Id] | None = Field(None, description="liked item ids; default: the user's catalog history")


class CarouselItem(BaseModel):
    item_id: str
    title: str
    creators: list[str] = Field(default_factory=list)
    year: int | None = None
    tags: list[str] = Field(default_factory=list)
    relevance: float


class CarouselOut(BaseModel):
    kind: str
    key: str
    title: str
    items: list[CarouselItem]


class CarouselPage(BaseModel):
    catalog: str
    user: str
    strategy: str
    k: int
    carousels: list[CarouselOut]
    fallback: Literal["popularity"] | None = None
    notes: list[str] = Field(default_factory=list)


def engine_for(catalog_name: str):
    """Catalog + tag space + EASE on all the catalog's positives, built once per process (also when
    threads make their first call at once: `placecell.tools.once`)."""
    return _engines(catalog_name)


def _build_engine(catalog_name: str):
    from placecell.tools.carousels.cf import EASE
    from placecell.tools.carousels.data import item_space, positives_of, split_positives
    from placecell.tools.carousels.layout import CarouselEngine
    from placecell.tools.recsys_data import load_catalog

    catalog = load_catalog(catalog_name)
    space = item_space(catalog)
    everything = split_positives(positives_of(catalog), space, share=0.0)
    cf = EASE(lam=EASE_LAMBDA.get(catalog_name, 200.0)).fit(everything.train)
    return CarouselEngine(catalog, space, cf)


_engines = PerProcess(_build_engine)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def run_score(req: ScoreRequest) -> ScoreResult:
    from placecell.tools.ctr.derived import pair_row
    from placecell.tools.ctr.scorer import shipped_scorer
    from placecell.tools.recsys_data import load_catalog

    catalog, scorer = load_catalog(req.catalog), shipped_scorer(req.catalog)
    candidates = list(dict.fromkeys(req.candidates))  # one score per item, in first-seen order
    notes = [f"{len(req.candidates) - len(candidates)} repeated candidate id(s) scored once"] \
        if len(candidates) < len(req.candidates) else []
    rows = [dict(zip(scorer.fields, pair_row(catalog, req.user, item))) for item in candidates]
    scored = scorer.score(rows, req.refine_passes)
    signals = [req.features.get(item, {}) for item in candidates]
    with np.errstate(over="ignore", invalid="ignore"):  # checked below; exp overflow is a score of 0, as it should be
        boost = np.array([sum(s.values()) for s in signals], dtype=np.float64)
        z = req.ctr_weight * logit(scored.probs) + req.feature_weight * boost
        final = 1.0 / (1.0 + np.exp(-z))
    bad = [item for item, v in zip(candidates, z) if not np.isfinite(v)]
    if bad:  # finite inputs can still overflow (1e308 + 1e308), or make 0 * inf
        raise InputError(f"the features and weights of {len(bad)} candidate(s) (first: {bad[0]!r}) add up to a "
                         "score that is not a finite number; scale the signals down")
    out = [
        ScoredCandidate(item_id=item, score=float(f), ctr=float(p), title=getattr(catalog.items.get(item), "title", ""), signals=s)
        for item, f, p, s in zip(candidates, final, scored.probs, signals)
    ]
    out.sort(key=lambda c: -c.score)
    cold = req.user not in scorer.encoder.vocabs[scorer.fields.index("user")]
    if cold:
        who = f"user {req.user!r} is not in the model's training data" if req.user else "no dataset user id (a history or likes)"
        notes.append(f"{who}: scored as an unseen user (item-level prior)")
    unknown = [i for i in candidates if i not in catalog.items]
    if unknown:
        notes.append(f"{len(unknown)} candidate(s) not in the catalog scored with unseen item fields: {unknown[:5]}")
    return ScoreResult(catalog=req.catalog, user=req.user, model=f"sgctr:{req.catalog}", refine_passes=scored.passes, scores=out, cold_start=cold, notes=notes)


def _item_out(catalog, item_id: str, relevance: float) -> CarouselItem:
    item = catalog.items[item_id]
    return CarouselItem(item_id=item_id, title=item.title, creators=list(item.creators), year=item.year, tags=list(item.tags[:5]), relevance=round(float(relevance), 4))


def run_carousels(req: CarouselRequest) -> CarouselPage:
    engine = engine_for(req.catalog)
    index, catalog = engine.space.index, engine.catalog
    liked = req.history if req.history is not None else catalog.history(req.user)
    history = [index[i] for i in liked if i in index]
    notes: list[str] = []
    if len(history) < len(liked):
        notes.append(f"{len(liked) - len(history)} history item(s) not in the {req.catalog} catalog were ignored"
                     + (" (none matched: laid out as for a new user)" if not history else ""))
    scores = candidates = None
    if req.scored_candidates:
        given = {c.item_id: c for c in req.scored_candidates}  # the last score of a repeated id counts
        if len(given) < len(req.scored_candidates):
            notes.append(f"{len(req.scored_candidates) - len(given)} repeated candidate id(s): the last score of each was used")
        known = [c for c in given.values() if c.item_id in index]
        if len(known) < len(given):
            notes.append(f"{len(given) - len(known)} candidate(s) not in the catalog were dropped")
        liked_ids = set(liked)
        if seen := sum(c.item_id in liked_ids for c in known):
            notes.append(f"{seen} candidate(s) already in the history were not shown")
        titled = [c for c in known if c.title]
        if titled and (off := sum(c.title.strip().lower() != catalog.items[c.item_id].title.strip().lower()
                                  for c in titled)) * 2 > len(titled):
            notes.append(f"{off} of {len(titled)} candidate titles differ from the {req.catalog} catalog's: were "
                         "they scored in another catalog?")
        candidates = np.array([index[c.item_id] for c in known], dtype=np.int64)
        scores = np.full(len(engine.space.ids), -np.inf)
        scores[candidates] = [c.score for c in known]
    if not history and scores is not None:
        notes.append("no history for this user: carousels come from the given scores and popular shelves")
    page = engine.page(history, req.strategy, req.k, req.n_carousels, scores=scores, candidates=candidates)
    if not page.carousels and scores is not None:  # every given candidate unknown or already liked
        notes.append("none of the given candidates could be shown (not in the catalog or already in the history): "
                     "carousels from collaborative filtering instead")
        page = engine.page(history, req.strategy, req.k, req.n_carousels)
        scores = None
    carousels = [
        CarouselOut(kind=c.kind, key=c.key, title=c.title, items=[_item_out(catalog, engine.space.ids[i], page.relevance[i]) for i in c.items])
        for c in page.carousels
    ]
    short = sum(len(c.items) < req.k for c in carousels)
    if carousels and (len(carousels) < req.n_carousels or short):
        notes.append(f"{len(carousels)} of {req.n_carousels} carousels" + (f", {short} with fewer than {req.k} items" if short else "")
                     + ": too few candidates to fill the page")
    fallback = page.fallback or ("popularity" if not history and scores is None else None)
    return CarouselPage(catalog=req.catalog, user=req.user, strategy=req.strategy, k=req.k, carousels=carousels, fallback=fallback, notes=page.notes + notes)


def score_candidates(user: str, candidates: list[str], features: dict[str, dict[str, float]] | None = None, **options) -> ScoreResult:
    """Typed entry point; `options` are the other ScoreRequest fields (catalog, refine_passes, ...)."""
    if isinstance(candidates, (str, bytes)):  # list("1234") would score items 1, 2, 3 and 4
        raise InputError("score_candidates takes a list of item ids, not one string")
    try:
        candidates = list(candidates)
    except TypeError:
        raise InputError(f"score_candidates takes a list of item ids, not {type(candidates).__name__}") from None
    if not candidates:
        raise InputError("score_candidates needs at least one candidate item id")
    return run_score(_request(ScoreRequest, user=str(user), candidates=candidates, features=features or {}, **options))


def build_carousels(user: str, scored_candidates: list[ScoredCandidate] | None = None, k: int = 5, strategy: str = "combined", **options) -> CarouselPage:
    """Typed entry point; `options` are the other CarouselRequest fields (catalog, n_carousels, history)."""
    return run_carousels(_request(CarouselRequest, user=str(user), scored_candidates=scored_candidates or [], k=k, strategy=strategy, **options))


def _request(model: type[BaseModel], **fields):
    """The request, or an InputError naming the first bad field in one line (the typed entry points
    are for apps; the LangChain tools keep pydantic's full message for the model that called them)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "?"
        raise InputError(f"{model.__name__}.{where}: {first['msg']} (got {first.get('input')!r})"[:300]) from None


def recsys_tools() -> list:
    """Both nodes as LangChain StructuredTools (JSON in, JSON out) for LangGraph's ToolNode."""
    from langchain_core.tools import StructuredTool

    def _score(**kwargs) -> dict:
        return run_score(ScoreRequest(**kwargs)).model_dump()

    def _carousels(**kwargs) -> dict:
        return run_carousels(CarouselRequest(**kwargs)).model_dump()

    return [
        StructuredTool.from_function(_score, name="score_candidates", description="Click probability of candidate items for a user (SGCTR), optionally boosted by extra per-item signals.", args_schema=ScoreRequest),
        StructuredTool.from_function(_carousels, name="build_carousels", description="Lay out scored candidates as diversified carousels for one user; no item repeats.", args_schema=CarouselRequest),
    ]
