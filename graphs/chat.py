"""The chat router graph.

route -> qa | recommend | ingest | reply
Messages accumulate in the state (`add_messages`); the caller brings the checkpointer (the CLI
uses SQLite, LangGraph's server its own), so the exported graph has none compiled in.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from placecell.agents.backends import Backends
from placecell.agents.chat.nodes import make_nodes
from placecell.agents.chat.state import ROUTES, ChatContext, ChatInput, ChatOutput, ChatState


def _after_route(state: ChatState) -> str:
    return state.get("route") if state.get("route") in ROUTES else "reply"


def build_chat_graph(backends: Backends | None = None, *, qa_graph=None, recommend_graph=None, ingest_graph=None,
                     checkpointer=None):
    """Compile the router over `backends`. The QA, recommendation and ingest graphs default to
    placecell's own over the same backends (recommendation: the shipped catalog, loaded on first
    use, with web evidence when the context's `web` mode is not "off"); pass compiled graphs to
    replace them."""
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.graphs.qa import build_qa_graph

    backends = backends or Backends()
    if recommend_graph is None:
        def recommend_graph():
            from placecell.graphs.recommend import build_recommend_graph

            return build_recommend_graph(llm=backends.get_llm(), embedder=backends.get_embedder())
    def web_recommend_graph(recsys, web):
        from placecell.graphs.recommend import build_recommend_graph

        return build_recommend_graph(recsys, web=web, llm=backends.get_llm(), embedder=backends.get_embedder())

    nodes = make_nodes(backends, qa_graph=qa_graph or build_qa_graph(backends), recommend_graph=recommend_graph,
                       ingest_graph=ingest_graph or (lambda: build_ingest_graph(backends)),
                       web_recommend_graph=web_recommend_graph)
    b = StateGraph(ChatState, context_schema=ChatContext, input_schema=ChatInput, output_schema=ChatOutput)
    for name, fn in nodes.items():
        b.add_node(name, fn)
    b.add_edge(START, "route")
    b.add_conditional_edges("route", _after_route, list(ROUTES))
    for name in ROUTES:
        b.add_edge(name, END)
    return b.compile(checkpointer=checkpointer, name="chat")


def __getattr__(name: str):
    if name == "graph":
        return build_chat_graph()
    raise AttributeError(name)
