"""An append-only JSONL cache: `{"key": ..., "value": ...}` per line.

Git-friendly (committed eval caches diff line by line) and crash-safe: each record is one
flushed, fsynced line, and a torn last line from a killed process is ignored (and cut) on load,
so reruns resume without losing or duplicating anything.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def stored_keys(path: str | Path) -> set[str]:
    """The keys of a cache file's complete records, read only: opening a JsonlCache truncates a torn
    last line, which in a reader beside a writing process would cut the line being written."""
    keys: set[str] = set()
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                try:
                    keys.add(json.loads(raw)["key"])
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    continue
    except FileNotFoundError:
        pass
    return keys


class JsonlCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        self.skipped_lines = 0  # complete but unreadable lines seen by _load
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        complete_bytes = 0
        good: list[bytes] = []
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn write from a killed process: the only part ever cut
                complete_bytes += len(raw)
                try:
                    rec = json.loads(raw)
                    self._data[rec["key"]] = rec["value"]
                    good.append(raw)
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    # a damaged line in the middle costs that record only, never the ones after it
                    self.skipped_lines += 1
        if self.skipped_lines:
            # Dropped from the file, so the warning comes once (it came on every open, forever), and a
            # record recomputed later is appended after the good ones.
            from placecell.tools.stores.atomic import write_bytes_atomic

            write_bytes_atomic(self.path, b"".join(good))
            log.warning("%s: dropped %d unreadable line(s); their records will be recomputed", self.path, self.skipped_lines)
            return
        if complete_bytes < self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(complete_bytes)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default=None):
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if key in self._data and self._data[key] == value:
                return
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._data[key] = value
