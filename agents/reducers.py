"""State reducers shared by the graphs.

`notes` and `usage` add up over the nodes of one run. On a checkpointed thread (LangGraph Studio, the
server, an app's checkpointer) the channel outlives the run, so a plain `operator.add` repeated every
earlier run's notes in each later one. The first node of a run hands in `Fresh()` / `FreshUsage()`:
that update replaces the channel instead of adding to it.
"""

from __future__ import annotations


class Fresh(list):
    """A notes update that starts the run's list over."""


class FreshUsage(dict):
    """A usage update that starts the run's totals over."""


def add_notes(left: list | None, right: list | None) -> list:
    if isinstance(right, Fresh):
        return list(right)
    return list(left or []) + list(right or [])


def merge_usage(left: dict | None, right: dict | None) -> dict:
    """Per-node LLM usage summed across updates: {node: {calls, prompt_tokens, completion_tokens, seconds}}."""
    out = {} if isinstance(right, FreshUsage) else {k: dict(v) for k, v in (left or {}).items()}
    for node, usage in (right or {}).items():
        slot = out.setdefault(node, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0})
        for key, value in usage.items():
            slot[key] = round(slot.get(key, 0) + value, 3)
    return out
