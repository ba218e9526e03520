"""Token, call and time accounting per node.

Every LLM call records into the process-wide tracker and into the innermost `usage_scope()`
(a context variable), so one `ask` or one eval question can report its own usage even when
other questions run concurrently.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class NodeUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    fallbacks: int = 0
    # Time spent waiting for the model's turn (another thread or process was using it): not
    # model time, and not this request's own work either.
    wait_seconds: float = 0.0


@dataclass
class Usage:
    nodes: dict[str, NodeUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, node: str, prompt_tokens: int, completion_tokens: int, seconds: float, fallback: bool = False,
               wait_seconds: float = 0.0):
        with self._lock:
            u = self.nodes.setdefault(node, NodeUsage())
            u.calls += 1
            u.prompt_tokens += prompt_tokens
            u.completion_tokens += completion_tokens
            u.seconds += seconds
            u.fallbacks += int(fallback)
            u.wait_seconds += wait_seconds

    def note_fallback(self, node: str) -> None:
        with self._lock:
            self.nodes.setdefault(node, NodeUsage()).fallbacks += 1

    def totals(self) -> dict:
        with self._lock:
            vals = list(self.nodes.values())
        return {
            "llm_calls": sum(v.calls for v in vals),
            "prompt_tokens": sum(v.prompt_tokens for v in vals),
            "completion_tokens": sum(v.completion_tokens for v in vals),
            "seconds": round(sum(v.seconds for v in vals), 3),
            "wait_seconds": round(sum(v.wait_seconds for v in vals), 3),
        }

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(vars(v)) for k, v in self.nodes.items()}


GLOBAL_USAGE = Usage()
_scope: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("placecell_usage", default=None)


@contextmanager
def usage_scope():
    """Collect the usage of the LLM calls made inside the block (and in threads it spawns
    with a copied context, as LangGraph does for sync nodes)."""
    usage = Usage()
    token = _scope.set(usage)
    try:
        yield usage
    finally:
        _scope.reset(token)


def record(node: str, prompt_tokens: int, completion_tokens: int, seconds: float, fallback: bool = False,
           wait_seconds: float = 0.0):
    GLOBAL_USAGE.record(node, prompt_tokens, completion_tokens, seconds, fallback, wait_seconds)
    scoped = _scope.get()
    if scoped is not None:
        scoped.record(node, prompt_tokens, completion_tokens, seconds, fallback, wait_seconds)


def record_fallback(node: str) -> None:
    GLOBAL_USAGE.note_fallback(node)
    scoped = _scope.get()
    if scoped is not None:
        scoped.note_fallback(node)
