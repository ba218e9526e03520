"""Shared test helpers (importable as `support`: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class _FixedQAState(TypedDict, total=False):
    question: str
    answer: str
    citations: list


def fixed_answer_qa_graph(seen: list, citations: list[dict]):
    """The QA subgraph replaced by a fixed answer, recording each question it is asked: for tests
    about routing and where threads live, not about answers."""
    def answer(state):
        seen.append(state["question"])
        return {"answer": "Viscount Weymouth.", "citations": list(citations)}

    b = StateGraph(_FixedQAState)
    b.add_node("answer", answer)
    b.add_edge(START, "answer")
    b.add_edge("answer", END)
    return b.compile()
