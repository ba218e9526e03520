"""The recommendation (WebRec) graph.

resolve -> reason -> make_queries -> search -> fetch -> select_evidence -> candidates -> score
        -> carousels -> explain
`query_mode=direct` skips `reason` (`both` runs it); `query_mode=none` (or no web client) skips the web steps;
no hits skip fetching and evidence; `layout=False` ends after scoring, `explain=False` after the
carousels.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from placecell.agents.recommend.nodes import RecommendDeps, make_nodes
from placecell.agents.recommend.state import (
    RecommendContext,
    RecommendInput,
    RecommendOutput,
    RecommendState,
)


def _ctx(runtime: Runtime[RecommendContext] | None) -> RecommendContext:
    return (runtime.context if runtime is not None else None) or RecommendContext()


def build_recommend_graph(recsys=None, *, web=None, llm=None, embedder=None, catalog: str = "goodbooks_399",
                          checkpointer=None):
    """Compile the graph over the given backends: `recsys` (a CatalogRecsys; default: the named
    shipped catalog), `web` (an entered WebClient, or None for no web), `llm`, `embedder`
    (default: the process-wide ones from settings, loaded when first needed)."""
    if recsys is None:
        from placecell.agents.recommend.catalog import load_recsys

        recsys = load_recsys(catalog)
    nodes = make_nodes(RecommendDeps(recsys=recsys, web=web, llm=llm, embedder=embedder))

    def after_resolve(state: RecommendState, runtime: Runtime[RecommendContext]) -> str:
        mode = _ctx(runtime).query_mode
        if web is None or mode == "none":
            return "candidates"
        return "reason" if mode in ("reasoned", "both") else "make_queries"

    def after_queries(state: RecommendState) -> str:
        return "search" if state.get("queries") else "candidates"

    def after_search(state: RecommendState) -> str:
        return "fetch" if state.get("hits") else "candidates"

    def after_score(state: RecommendState, runtime: Runtime[RecommendContext]) -> str:
        return "carousels" if _ctx(runtime).layout and state.get("items") else END

    def after_carousels(state: RecommendState, runtime: Runtime[RecommendContext]) -> str:
        return "explain" if _ctx(runtime).explain and state.get("carousels") else END

    b = StateGraph(RecommendState, context_schema=RecommendContext, input_schema=RecommendInput,
                   output_schema=RecommendOutput)
    for name, fn in nodes.items():
        b.add_node(name, fn)
    b.add_edge(START, "resolve")
    b.add_conditional_edges("resolve", after_resolve, ["reason", "make_queries", "candidates"])
    b.add_edge("reason", "make_queries")
    b.add_conditional_edges("make_queries", after_queries, ["search", "candidates"])
    b.add_conditional_edges("search", after_search, ["fetch", "candidates"])
    b.add_edge("fetch", "select_evidence")
    b.add_edge("select_evidence", "candidates")
    b.add_edge("candidates", "score")
    b.add_conditional_edges("score", after_score, ["carousels", END])
    b.add_conditional_edges("carousels", after_carousels, ["explain", END])
    b.add_edge("explain", END)
    return b.compile(checkpointer=checkpointer, name="recommend")


def __getattr__(name: str):
    # `graph`: this graph over default backends, built on first access (no model loads at import).
    # langgraph.json serves graphs/server.py instead (the server reads module variables only).
    if name == "graph":
        return build_recommend_graph()
    raise AttributeError(name)
