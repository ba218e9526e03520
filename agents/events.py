"""Custom stream events (`stream_mode="custom"`): how nodes show their steps live in the CLI
and in Studio (path tracking hops, routing, web searches and fetches)."""

from __future__ import annotations

from langgraph.config import get_stream_writer


def emit(event: dict) -> None:
    """Send `event` to the run's custom stream; a no-op outside a graph run (a node called
    directly, as unit tests do)."""
    try:
        get_stream_writer()(event)
    except RuntimeError:
        pass
