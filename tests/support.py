"""Shared test helpers (importable as `support`: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
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


# -- CTR: synthetic click data ---------------------------------------------------------------

FIELDS = ["site", "slot", "hour", "device", "noise"]


WEIGHTS = np.random.default_rng(42)
SITE_W, SLOT_W = WEIGHTS.normal(0, 1.5, 20), WEIGHTS.normal(0, 1.0, 8)


def synthetic_rows(n: int, seed: int) -> list[list[str]]:
    """Clicks driven by site and slot (plus their interaction); `noise` carries no signal."""
    rng = np.random.default_rng(seed)
    site_w, slot_w = SITE_W, SLOT_W
    rows = []
    for _ in range(n):
        site, slot, hour, device = rng.integers(20), rng.integers(8), rng.integers(24), rng.integers(3)
        logit = site_w[site] + slot_w[slot] + (1.5 if (site + slot) % 5 == 0 else 0.0) - 1.0
        click = int(rng.random() < 1 / (1 + np.exp(-logit)))
        rows.append([str(click), f"s{site}", f"b{slot}", str(hour), f"d{device}", f"n{rng.integers(50)}"])
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["click"] + FIELDS)
        writer.writerows(rows)
    return path
