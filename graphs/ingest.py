"""The ingest graph: load -> embed -> extract -> build_kg."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from placecell.agents.backends import Backends
from placecell.agents.ingest.nodes import make_nodes
from placecell.agents.ingest.state import IngestContext, IngestInput, IngestOutput, IngestState


def build_ingest_graph(backends: Backends | None = None, checkpointer=None):
    nodes = make_nodes(backends or Backends())
    builder = StateGraph(IngestState, context_schema=IngestContext, input_schema=IngestInput,
                         output_schema=IngestOutput)
    for name, fn in nodes.items():
        builder.add_node(name, fn)
    builder.add_edge(START, "load")
    # Nothing loaded (a mistyped path): stop. Going on would still extract every stored passage
    # that lacks an extraction by this run's model (hours, for a large store), for no new input.
    builder.add_conditional_edges("load", lambda state: "embed" if state.get("loaded") else END, ["embed", END])
    builder.add_edge("embed", "extract")
    builder.add_edge("extract", "build_kg")
    builder.add_edge("build_kg", END)
    return builder.compile(checkpointer=checkpointer, name="ingest")


def __getattr__(name: str):
    # `graph`: this graph over default backends, built on first access (no model loads at import).
    # langgraph.json serves graphs/server.py instead (the server reads module variables only).
    if name == "graph":
        return build_ingest_graph()
    raise AttributeError(name)
