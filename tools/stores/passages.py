"""The passage registry: every passage once, keyed by the sha256 of its text, and which
documents (a file's absolute path, a URL) hold each passage.

SQLite with one committed transaction per batch; `INSERT OR IGNORE` makes re-ingesting the
same content (or resuming a killed run) a no-op. A document that is ingested again in full
replaces its passages: the ones its new text no longer has lose that document, and a passage no
document holds any more is deleted (the vectors and knowledge graphs follow, see
`agents/ingest/documents.py`). Passages stored before documents were recorded get theirs from
their `source` when the registry is first opened by this version.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
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


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def document_of_source(source: str) -> str:
    """The document a stored `source` came from, for passages stored before documents were
    recorded: a URL as it is, a JSONL record's file without its `:line`, a path made absolute
    (relative paths against the working folder: a best guess, it was not stored)."""
    if not source or _URL.match(source):
        return source
    return document_key(re.sub(r"(\.jsonl):\d+$", r"\1", source, flags=re.IGNORECASE))


def document_key(path: str | Path) -> str:
    """A file's document name: its absolute path, `..` folded, symlinks kept (the name the user
    gave is the one they will ingest or remove again)."""
    return os.path.abspath(os.path.expanduser(str(path)))


@dataclass(frozen=True)
class StoreResult:
    new: int              # passages that were not stored before
    removed: list[str]    # passages deleted: their documents no longer hold them


class PassageRegistry:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS passages (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
                "text TEXT NOT NULL, source TEXT NOT NULL DEFAULT '')"
            )
            had_documents = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='document_passages'").fetchone()
            self._conn.execute("CREATE TABLE IF NOT EXISTS document_passages (document TEXT NOT NULL, "
                               "passage_id TEXT NOT NULL, PRIMARY KEY (document, passage_id))")
            self._conn.execute("CREATE INDEX IF NOT EXISTS document_passages_by_passage "
                               "ON document_passages (passage_id)")
            if not had_documents:  # a registry from before documents were recorded
                rows = self._conn.execute("SELECT id, source FROM passages").fetchall()
                self._conn.executemany("INSERT OR IGNORE INTO document_passages VALUES (?, ?)",
                                       [(document_of_source(src), pid) for pid, src in rows if src])

    def add_many(self, passages: list[Passage]) -> int:
        """Insert new passages that belong to no document (an app's own); returns how many were new."""
        return self.store(passages).new

    def store(self, passages: list[Passage], documents: Mapping[str, Iterable[str]] | None = None,
              replace: Iterable[str] = ()) -> StoreResult:
        """Insert new passages and record which documents hold them (`documents`: document ->
        passage ids). Each document in `replace` was read in full: its stored passages that are not
        among its ids now are dropped from it, and deleted when no document holds them.
        One transaction: a crash leaves the registry as it was before or as it is after."""
        documents = {doc: list(ids) for doc, ids in (documents or {}).items()}
        with self._lock, self._conn:
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO passages (id, title, text, source) VALUES (?, ?, ?, ?)",
                [(p.id, p.title, p.text, p.source) for p in passages],
            )
            new = self._conn.total_changes - before
            self._conn.executemany("INSERT OR IGNORE INTO document_passages VALUES (?, ?)",
                                   [(doc, pid) for doc, ids in documents.items() for pid in ids])
            stale: list[tuple[str, str]] = []
            for doc in replace:
                keep = set(documents.get(doc, ()))
                stale += [(doc, pid) for (pid,) in self._conn.execute(
                    "SELECT passage_id FROM document_passages WHERE document=?", (doc,)) if pid not in keep]
            return StoreResult(new=new, removed=self._drop_memberships(stale))

    def _drop_memberships(self, pairs: list[tuple[str, str]]) -> list[str]:
        """Delete (document, passage) rows, then the passages no document holds any more. Call
        inside a transaction. Passages that never had a document (stored by an app through
        `add_many` without documents) are left alone."""
        self._conn.executemany("DELETE FROM document_passages WHERE document=? AND passage_id=?", pairs)
        candidates = sorted({pid for _, pid in pairs})
        orphans = [pid for pid in candidates if not self._conn.execute(
            "SELECT 1 FROM document_passages WHERE passage_id=? LIMIT 1", (pid,)).fetchone()]
        self._conn.executemany("DELETE FROM passages WHERE id=?", [(pid,) for pid in orphans])
        return orphans

    def documents(self) -> dict[str, int]:
        """Every recorded document and how many passages it holds, by document."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT document, COUNT(*) FROM document_passages GROUP BY document ORDER BY document").fetchall()
        return dict(rows)

    def matching_documents(self, target: str) -> list[str]:
        """The documents `target` names: itself, or every document under it when it is a folder
        (a URL names itself only)."""
        if not target.strip():  # '' was the folder '/', so every document: `remove "$UNSET"` emptied the home
            return []
        folder = None if _URL.match(target) else target.rstrip(os.sep) + os.sep
        return [doc for doc in self.documents() if doc == target or (folder and doc.startswith(folder))]

    def remove_documents(self, documents: Iterable[str]) -> list[str]:
        """Forget these documents; returns the passage ids deleted (held by no other document)."""
        with self._lock, self._conn:
            pairs = [(doc, pid) for doc in documents for (pid,) in self._conn.execute(
                "SELECT passage_id FROM document_passages WHERE document=?", (doc,))]
            return self._drop_memberships(pairs)

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
