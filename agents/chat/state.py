"""State, input/output schemas and run settings of the chat router graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from placecell.agents.checks import KnownSettings

Route = Literal["qa", "recommend", "ingest", "reply"]
ROUTES: tuple[str, ...] = ("qa", "recommend", "ingest", "reply")


@dataclass
class ChatContext(KnownSettings):
    """Run settings (Studio shows these as the graph's context)."""

    router: str = field(default="llm", metadata={
        "description": "llm (schema-constrained decision, keywords when unsure) | keywords (no LLM call)"})
    min_confidence: float = field(default=0.6, metadata={
        "description": "below this the router's decision is replaced by the keyword rules"})
    method: str = field(default="neuropath", metadata={
        "description": "QA retriever: neuropath | dense | bm25 | hybrid | ppr | ircot"})
    mode: str = field(default="scored", metadata={"description": "neuropath path judging: scored | faithful"})
    top_k: int = field(default=5, metadata={"description": "passages given to the reader"})
    max_hop: int = field(default=2, metadata={"description": "path-tracking rounds"})
    web: str = field(default="off", metadata={
        "description": "recommendation web evidence: off | live (ddgs) | local (local web on 127.0.0.1) | replay"})
    web_dir: str = field(default="", metadata={"description": "archive folder for web=replay"})
    extract: bool = field(default=True, metadata={"description": "ingest: run LLM triple extraction"})
    encoding: str = field(default="utf-8", metadata={
        "description": "ingest: text and HTML files that are not UTF-8 are read in this codec (cp1252, ...)"})
    history_turns: int = field(default=6, metadata={"description": "previous messages a plain reply sees"})

    def __post_init__(self) -> None:
        # Checked when the session starts, not in the first QA turn (an unknown method was a KeyError there).
        from placecell.agents import checks
        from placecell.agents.qa.state import METHODS

        checks.choice(self, "router", ("llm", "keywords"))
        checks.choice(self, "method", METHODS)
        checks.choice(self, "mode", ("scored", "faithful"))
        checks.choice(self, "web", ("off", "live", "local", "replay"))
        checks.integer(self, "top_k", 1, 20)
        checks.integer(self, "max_hop", 1, 5)
        checks.integer(self, "history_turns", 0)
        checks.number(self, "min_confidence", 0.0, 1.0)
        checks.encoding(self, "encoding")


class RouteDecision(BaseModel):
    """The router's schema-constrained output."""

    route: Route = Field(description="qa: a question about the user's documents; recommend: asks for "
                         "books/films to enjoy; ingest: add a file/folder/URL; reply: anything else")
    confidence: float = Field(ge=0.0, le=1.0)


class ChatInput(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class ChatOutput(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    route: str
    citations: list[dict]
    problems: int  # an ingest turn's inputs that could not be used (the chat CLI's exit status counts them)


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    route: str              # this turn's route
    routed_by: str          # llm | keywords
    question: str           # this turn's standalone question (follow-ups rewritten)
    citations: list[dict]   # this turn's numbered sources: {"n", "title", "passage_id", "source"}
    problems: int           # this turn's inputs that could not be used (an ingest's skipped files); 0 otherwise
