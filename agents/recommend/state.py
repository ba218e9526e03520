"""State, input/output schemas and run settings of the recommendation (WebRec) graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from typing_extensions import TypedDict

from placecell.agents.checks import KnownSettings
from placecell.agents.reducers import add_notes, merge_usage  # noqa: F401 - resolved from the annotations

QUERY_MODES = ("reasoned", "direct", "both", "none")


@dataclass
class RecommendContext(KnownSettings):
    """Run settings (Studio shows these as the graph's context)."""

    # A graph is built over one catalog (build_recommend_graph(catalog=...)); a run naming another
    # one is refused rather than silently answered from the graph's catalog.
    catalog: str = field(default="", metadata={
        "description": "the catalog this run expects (empty: the graph's own, goodbooks_399 for the shipped graph)"})
    query_mode: str = field(default="reasoned", metadata={
        "description": "reasoned (LLM reasoning + s_att*s_ent keywords) | direct (history titles) | "
                       "both (the title queries, then the reasoned ones) | none (no web)"})
    message_passing: bool = field(default=True, metadata={"description": "MP-Head analog in evidence selection"})
    use_ctr: bool = field(default=True, metadata={"description": "score with the CTR tool node (off: CF + evidence only)"})
    explain: bool = field(default=True, metadata={"description": "write a reason per recommended item"})
    explain_items: int = field(default=8, metadata={"description": "items whose reason the LLM writes (others: template)"})
    n_queries: int = field(default=3, metadata={"description": "web queries per user"})
    top_keywords: int = field(default=9, metadata={"description": "keywords kept from the reasoning"})
    results_per_query: int = field(default=6, metadata={"description": "search hits asked per query"})
    max_pages: int = field(default=12, metadata={"description": "pages fetched (after de-duplication)"})
    top_spans: int = field(default=12, metadata={"description": "evidence spans kept"})
    spans_per_page: int = field(default=3, metadata={"description": "evidence spans kept per page"})
    n_candidates: int = field(default=100, metadata={"description": "CF candidates (plus items the evidence names)"})
    # None: the weights fitted for the catalog's CTR model (agents/recommend/fusion.py).
    evidence_weight: float | None = field(default=None, metadata={
        "description": "weight of the evidence feature (logit scale; empty: fitted for the catalog)"})
    cf_weight: float | None = field(default=None, metadata={
        "description": "weight of the z-scored CF score (logit scale; empty: fitted for the catalog)"})
    ctr_weight: float | None = field(default=None, metadata={
        "description": "weight of logit(CTR) (empty: fitted for the catalog)"})
    layout: bool = field(default=True, metadata={"description": "lay the ranking out as carousels (off: ranked items only)"})
    k: int = field(default=5, metadata={"description": "items per carousel"})
    n_carousels: int = field(default=3, metadata={"description": "carousels on the page"})
    strategy: str = field(default="combined", metadata={"description": "carousel fill strategy"})
    reason_max_tokens: int = field(default=160, metadata={"description": "length cap of the preference reasoning"})

    def __post_init__(self) -> None:
        # Checked when the run starts (CLI, Studio or an app's `context=`), not in the last node
        # after the LLM work: the carousel limits are the tool node's (tools/recsys_nodes.py).
        from placecell.agents import checks
        from placecell.tools.recsys_nodes import STRATEGIES

        checks.choice(self, "query_mode", QUERY_MODES)
        checks.choice(self, "strategy", STRATEGIES)
        checks.integer(self, "k", 1, 50)
        checks.integer(self, "n_carousels", 1, 12)
        for name in ("explain_items", "n_queries", "top_keywords", "results_per_query", "max_pages", "top_spans",
                     "spans_per_page", "reason_max_tokens"):
            checks.integer(self, name, 0)
        checks.integer(self, "n_candidates", 1)
        for name in ("evidence_weight", "cf_weight", "ctr_weight"):
            checks.number(self, name, optional=True)


class HistoryEntry(TypedDict, total=False):
    item: str  # catalog id or title
    rating: float | None


class ScoredItem(TypedDict, total=False):
    item_id: str
    title: str
    score: float  # the final item score
    cf: float  # z-scored CF score among the candidates
    ctr: float | None
    evidence: float  # the evidence feature in [0, 1]
    evidence_urls: list[str]
    reason: str


class CarouselOut(TypedDict):
    title: str
    items: list[ScoredItem]


class RecommendInput(TypedDict, total=False):
    history: list[HistoryEntry]
    likes: str
    user_id: str
    candidates: list[str]  # score exactly these items (evaluation); default: CF + evidence matches


class RecommendOutput(TypedDict, total=False):
    carousels: list[CarouselOut]
    items: list[ScoredItem]  # every scored candidate, best first
    queries: list[str]
    keywords: list[dict]
    reasoning: str
    evidence: list[dict]  # selected spans: url, text, relevance, message, score
    web: dict  # backend, search errors, fetch errors, pages dropped as injections
    model: str  # id of the LLM that reasoned / explained (absent when no LLM ran)
    notes: Annotated[list[str], add_notes]
    usage: Annotated[dict, merge_usage]


class RecommendState(TypedDict, total=False):
    history: list[HistoryEntry]
    likes: str
    user_id: str
    candidates: list[str]
    liked: list[str]  # resolved positive item ids
    seen: list[str]  # every resolved item id (never recommended again)
    reasoning: str
    trace_tokens: list[str]
    trace_entropies: list[float]
    keywords: list[dict]
    queries: list[str]
    hits: list[dict]
    pages: list[dict]
    evidence: list[dict]
    web: dict
    candidate_ids: list[str]
    items: list[ScoredItem]
    carousels: list[CarouselOut]
    model: str
    notes: Annotated[list[str], add_notes]
    usage: Annotated[dict, merge_usage]
