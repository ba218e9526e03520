"""Custom stream events (`stream_mode="custom"`): how nodes show their steps live in the CLI
and in Studio (path tracking hops, routing, web searches and fetches)."""

from __future__ import annotations

import threading

from langgraph.config import get_stream_writer

# Set by the CLI's Ctrl-C handler: long loops inside nodes (extraction) stop at the next item.
# Nodes run in LangGraph's worker threads, which never see the KeyboardInterrupt themselves.
STOP = threading.Event()


def emit(event: dict) -> None:
    """Send `event` to the run's custom stream; a no-op outside a graph run (a node called
    directly, as unit tests do)."""
    try:
        get_stream_writer()(event)
    except RuntimeError:
        pass
