"""State and run settings of the ingest graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from typing_extensions import TypedDict

from placecell.agents.checks import KnownSettings
from placecell.agents.reducers import add_notes  # noqa: F401 - resolved from the annotations


@dataclass
class IngestContext(KnownSettings):
    """Run settings (shown in LangGraph Studio)."""

    chunk_chars: int = field(default=1200, metadata={"description": "max characters per file/page passage"})
    allow_hosts: list[str] = field(default_factory=list, metadata={
        "description": "hosts URL fetches may reach although loopback/private (e.g. 127.0.0.1)"})
    encoding: str = field(default="utf-8", metadata={
        "description": "text and HTML files that are not UTF-8: read them in this codec (cp1252, latin-1, "
                       "...); utf-8 skips them, named"})
    extract: bool = field(default=True, metadata={"description": "run LLM triple extraction (the KG)"})
    alias_threshold: float = field(default=0.8, metadata={"description": "cosine for alias edges"})
    alias_containment: bool = field(default=False, metadata={
        "description": "also alias an entity name to the shorter entity names it contains (KnowledgeGraph.add_containment_aliases)"})

    def __post_init__(self) -> None:
        from placecell.agents import checks
        from placecell.tools.web.safety import check_allow_hosts

        checks.integer(self, "chunk_chars", 100)  # 0 or less never ends a chunk
        checks.string_list(self, "allow_hosts")
        check_allow_hosts(self.allow_hosts, "allow_hosts entry")
        checks.encoding(self, "encoding")
        checks.number(self, "alias_threshold", 0.0, 1.0)


class IngestInput(TypedDict):
    sources: list[str]


class IngestOutput(TypedDict, total=False):
    loaded: int          # passages read from this run's inputs
    passages: int        # passages in the store
    new_passages: int
    removed_passages: int  # passages deleted: a document read again in full no longer has them
    documents: int         # documents read in full (their stored passages replaced)
    extracted: int
    extraction_failed: int
    cached: int
    warnings: list[str]
    skipped_inputs: int  # inputs (or lines of them) that were not loaded; each has a warning
    kg: dict


class IngestState(TypedDict, total=False):
    sources: list[str]
    passage_ids: list[str]
    loaded: int
    passages: int
    new_passages: int
    removed_passages: int
    documents: int
    extracted: int
    extraction_failed: int
    cached: int
    warnings: Annotated[list[str], add_notes]
    skipped_inputs: int
    kg: dict
