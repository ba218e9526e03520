"""State, input/output schemas and run settings of the QA graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from typing_extensions import TypedDict

from placecell.agents.checks import KnownSettings
from placecell.agents.reducers import add_notes  # noqa: F401 - resolved from the annotations

Method = Literal["neuropath", "dense", "bm25", "hybrid", "ppr", "ircot"]
METHODS: tuple[str, ...] = ("neuropath", "dense", "bm25", "hybrid", "ppr", "ircot")
PROBES: tuple[str, ...] = ("each", "list", "none")  # neuropath scored mode's path judging (neuropath.llm_path_scores)


@dataclass
class QAContext(KnownSettings):
    """Run settings (Studio shows these as the graph's context)."""

    method: str = field(default="neuropath", metadata={
        "description": "retriever: neuropath | dense | bm25 | hybrid | ppr | ircot"})
    mode: str = field(default="scored", metadata={
        "description": "neuropath path judging: scored (logprob+embedding fusion, for small models) | faithful (the paper)"})
    max_hop: int = field(default=2, metadata={"description": "path-tracking rounds"})
    prune_width: int = field(default=30, metadata={"description": "new paths kept per round"})
    top_k: int = field(default=5, metadata={"description": "passages given to the reader"})
    rank_k: int = field(default=10, metadata={"description": "length of the returned ranking"})
    # On by default since the MuSiQue slice, held out when it was designed, confirmed it
    # (evals/RESULTS.md); faithful mode ignores it.
    fuse_bm25: bool = field(default=True, metadata={
        "description": "neuropath scored mode: fuse the final ranking with BM25 by reciprocal rank (see evals/RESULTS.md)"})
    # On by default since fresh runs on the three slices and the held-out set passed the rule written
    # before them (evals/RESULTS.md, "Cover the question's entities"): R@2 +1.5 to +16.7 points.
    cover_entities: bool = field(default=True, metadata={
        "description": "neuropath scored mode: rank first the pair of top passages that mention the most "
                       "question entities (see evals/RESULTS.md, \"Cover the question's entities\")"})
    # On by default since fresh runs on the three slices passed the rule written before them
    # (evals/RESULTS.md, "Follow title links"): R@5 +3.0, +19.5, +1.0 points, R@2 unchanged.
    title_links: bool = field(default=True, metadata={
        "description": "neuropath scored mode: after the top two passages, rank the passages whose titles "
                       "they name (see evals/RESULTS.md, \"Follow title links\")"})
    link_depth: int = field(default=1, metadata={
        "description": "neuropath title links: 1 = the passages the top two name; 2 = places left free go "
                       "to the passages those name (see evals/RESULTS.md, \"Follow title links\")"})
    # On (1) by default since a fresh 30-question MuSiQue confirmation set and fresh runs on the
    # three slices passed the rules written before them (evals/RESULTS.md, "Keep the nearest
    # passage"): R@5 +1.7 / +0.5 / 0 points on the slices, R@1 and R@2 unchanged by construction.
    keep_nearest: int = field(default=1, metadata={
        "description": "neuropath scored mode: the question's N nearest passages by embedding always get a "
                       "place among the top_k the reader sees (see evals/RESULTS.md, \"Keep the nearest passage\")"})
    # The lean setting (no probes, one reasoning call) is the default since its slice runs passed the
    # rule written before them (evals/RESULTS.md, "NeuroPath lean"): a third of the tokens per question.
    path_probe: str = field(default="none", metadata={
        "description": "neuropath scored mode: how the LLM judges paths: each (a yes/no probe per path) | "
                       "list (one numbered listing, read twice) | none (no LLM: similarity + structure)"})
    # Rounds after the last one reuse its reasoning: the reasoning call is about half of the
    # retrieval-time tokens once the probes are off (evals/RESULTS.md, "lean").
    reason_rounds: int = field(default=1, metadata={
        "description": "neuropath scored mode: path-tracking rounds that end with an LLM reasoning call "
                       "(current_chain, expansion_requirements); later rounds reuse the last one"})
    answer: bool = field(default=True, metadata={"description": "run the reader (off: retrieval only)"})
    model: str = field(default="", metadata={"description": "model preset/path (empty: settings)"})

    def __post_init__(self) -> None:
        from placecell.agents import checks
        from placecell.errors import InputError

        checks.choice(self, "method", METHODS)
        checks.choice(self, "mode", ("scored", "faithful"))
        checks.choice(self, "path_probe", PROBES)
        checks.integer(self, "max_hop", 1, 5)
        checks.integer(self, "prune_width", 1)
        checks.integer(self, "top_k", 1, 20)
        checks.integer(self, "rank_k", 1)
        if self.answer and self.top_k > self.rank_k:  # the reader reads the ranking's head: it got rank_k in silence
            raise InputError(f"top_k {self.top_k} is more than rank_k {self.rank_k}: the reader reads the top_k "
                             f"head of the rank_k-long ranking; lower top_k or raise rank_k")
        checks.integer(self, "link_depth", 1, 2)
        checks.integer(self, "keep_nearest", 0, 5)
        checks.integer(self, "reason_rounds", 0, 5)


class PathItem(TypedDict):
    triples: list[list[str]]      # [[head, relation, tail], ...]
    passage_ids: list[str]        # one per triple, hop order
    frontier: str                 # the entity the next hop expands from
    score: float


class Citation(TypedDict):
    title: str
    passage_id: str
    source: str  # where it was ingested from: a file path, `corpus.jsonl:LINE`, a URL ("" for an app's own)


class QAInput(TypedDict):
    question: str


class QAOutput(TypedDict, total=False):
    question: str
    answer: str
    citations: list[Citation]
    paths: list[dict]             # [{"triples": [[h, r, t], ...], "passage_ids": [...]}]
    ranking: list[str]            # passage ids, best first (rank_k long)
    method: str
    notes: Annotated[list[str], add_notes]


class QAState(TypedDict, total=False):
    question: str
    method: str
    entities: list[str]
    seeds: list[str]
    seen_paths: list[PathItem]     # every path made so far (pruned ones included)
    paths: list[dict]              # output: the valid paths, {"triples", "passage_ids"}
    new_paths: list[PathItem]      # made this round, before/after pruning
    expand: list[PathItem]         # chosen for expansion next round
    valid: list[PathItem]          # judged helpful, best first
    hop: int
    keep_going: bool
    chain: str                     # the LLM's reasoning so far (current_chain)
    requirements: str              # what is still missing (expansion_requirements)
    ranking: list[str]
    answer: str
    citations: list[Citation]
    notes: Annotated[list[str], add_notes]
