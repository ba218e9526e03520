"""Values built once per key per process, safe under threads.

`functools.lru_cache` lets threads that make their first call at the same moment each build the
value (8 threads fitted EASE 8 times). Here they wait for one build, and a value already built is
returned without waiting for another key's build.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class PerProcess(Generic[V]):
    def __init__(self, build: Callable[[Hashable], V]):
        self._build = build
        self._values: dict = {}
        self._lock = threading.Lock()

    def __call__(self, key: Hashable) -> V:
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = self._values[key] = self._build(key)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
