"""The QA graph.

neuropath: start -> ner -> seed -> prune -> judge -> (expand -> prune -> judge)* -> complete -> read
baselines: start -> retrieve -> read
The hop counter in the state bounds the loop (`max_hop` in the context).
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from placecell.agents.backends import Backends
from placecell.agents.qa.nodes import make_nodes
from placecell.agents.qa.state import QAContext, QAInput, QAOutput, QAState


def _after_start(state: QAState) -> str:
    return "ner" if state["method"] == "neuropath" else "retrieve"


def _after_ner(state: QAState) -> str:
    return "seed" if state.get("entities") else "complete"  # no entities: dense fallback


def _after_seed(state: QAState) -> str:
    return "prune" if state.get("new_paths") else "complete"


def _after_judge(state: QAState) -> str:
    return "expand" if state.get("keep_going") else "complete"


def _after_expand(state: QAState) -> str:
    return "prune" if state.get("new_paths") else "complete"


def build_qa_graph(backends: Backends | None = None, checkpointer=None):
    nodes = make_nodes(backends or Backends())
    b = StateGraph(QAState, context_schema=QAContext, input_schema=QAInput, output_schema=QAOutput)
    for name, fn in nodes.items():
        b.add_node(name, fn)
    b.add_edge(START, "start")
    b.add_conditional_edges("start", _after_start, ["ner", "retrieve"])
    b.add_conditional_edges("ner", _after_ner, ["seed", "complete"])
    b.add_conditional_edges("seed", _after_seed, ["prune", "complete"])
    b.add_edge("prune", "judge")
    b.add_conditional_edges("judge", _after_judge, ["expand", "complete"])
    b.add_conditional_edges("expand", _after_expand, ["prune", "complete"])
    b.add_edge("complete", "read")
    b.add_edge("retrieve", "read")
    b.add_edge("read", END)
    return b.compile(checkpointer=checkpointer, name="qa")


def __getattr__(name: str):
    if name == "graph":
        return build_qa_graph()
    raise AttributeError(name)
