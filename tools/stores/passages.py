"""The passage registry: every passage once, keyed by the sha256 of its text.

SQLite with one committed transaction per batch; `INSERT OR IGNORE` makes re-ingesting the
same content (or resuming a killed run) a no-op.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


def passage_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str  # the full passage string: title + "\n" + body for titled records
    source: str = ""


class PassageRegistry:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS passages (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
            "text TEXT NOT NULL, source TEXT NOT NULL DEFAULT '')"
        )
        self._conn.commit()

    def add_many(self, passages: list[Passage]) -> int:
        """Insert new passages; returns how many were new."""
        with self._lock, self._conn:
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO passages (id, title, text, source) VALUES (?, ?, ?, ?)",
                [(p.id, p.title, p.text, p.source) for p in passages],
            )
            return self._conn.total_changes - before

    def get(self, pid: str) -> Passage | None:
        with self._lock:
            row = self._conn.execute("SELECT id, title, text, source FROM passages WHERE id=?", (pid,)).fetchone()
        return Passage(*row) if row else None

    def get_many(self, ids: list[str]) -> dict[str, Passage]:
        out: dict[str, Passage] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id, title, text, source FROM passages WHERE id IN ({','.join('?' * len(chunk))})"
                for row in self._conn.execute(q, chunk):
                    out[row[0]] = Passage(*row)
        return out

    def all(self) -> list[Passage]:
        with self._lock:
            rows = self._conn.execute("SELECT id, title, text, source FROM passages ORDER BY rowid").fetchall()
        return [Passage(*r) for r in rows]

    def ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM passages ORDER BY rowid")]

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
