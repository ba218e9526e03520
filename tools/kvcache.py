"""A small persistent key -> value cache on SQLite.

Used for embeddings, LLM extraction results and web fetches. Every `put` is its own committed
transaction (WAL journal), so a process killed at any point loses at most the value being
written and never leaves a half-written one: reruns pick up where the last commit left off.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable


def content_key(*parts: str) -> str:
    """sha256 over the parts, separated so that ("ab", "c") != ("a", "bc")."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


class KVCache:
    def __init__(self, path: str | Path, table: str = "kv"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.table = table
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self._conn.commit()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute(f"SELECT v FROM {self.table} WHERE k=?", (key,)).fetchone()
        return row[0] if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        out: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for k, v in self._conn.execute(
                    f"SELECT k, v FROM {self.table} WHERE k IN ({marks})", chunk
                ):
                    out[k] = v
        return out

    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {self.table} (k, v) VALUES (?, ?)", list(items)
            )

    def get_json(self, key: str) -> Any | None:
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
