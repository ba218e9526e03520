"""The checkpointer chosen by configuration: chat threads in SQLite, or in Postgres.

`PLACECELL_CHECKPOINT_URL=postgresql://user:pass@host:5432/db` puts every thread in Postgres
(LangGraph's `PostgresSaver`, tables created on first use), so several machines or processes
share them; empty (the default) keeps them in PLACECELL_HOME/chat.sqlite. Both the CLI
(`placecell chat`, `placecell threads`) and embedding apps use it:

    from placecell import build_chat_graph, open_checkpointer
    with open_checkpointer() as saver:
        graph = build_chat_graph(checkpointer=saver)
        graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t1"}})

A bad URL, a missing `postgres` extra or an unreachable server is a one-line `PlacecellError`.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from placecell.errors import InputError, PlacecellError

SQLITE_FILE = "chat.sqlite"
CONNECT_TIMEOUT = 10  # seconds: an unreachable server fails fast instead of hanging the CLI


def sqlite_path(settings) -> Path:
    return Path(settings.data_dir) / SQLITE_FILE


def _is_postgres(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("postgres", "postgresql")


def _first_line(exc: Exception, url: str = "") -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    password = re.match(r"^[A-Za-z]+://[^:/@]*:([^@/]+)@", url)
    return line.replace(password.group(1), "***") if password else line  # messages may quote the URL


@contextmanager
def open_checkpointer(settings=None, *, setup: bool = True) -> Iterator:
    """A LangGraph checkpointer for `settings` (default: env/.env), closed on exit.

    `settings.checkpoint_url` set: a `PostgresSaver` on one connection (autocommit, dict rows, as
    LangGraph requires), its tables created or migrated when `setup`. Empty: a `SqliteSaver` on
    PLACECELL_HOME/chat.sqlite. Postgres connection failures inside the block, too, become `PlacecellError`."""
    if settings is None:
        from placecell.settings import get_settings

        settings = get_settings()
    url = (settings.checkpoint_url or "").strip()
    if url:
        with _postgres(url, setup=setup) as saver:
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = sqlite_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteSaver.from_conn_string(str(path)) as saver:
        if setup:
            saver.setup()
        yield saver


@contextmanager
def _postgres(url: str, *, setup: bool):
    if not _is_postgres(url):
        raise InputError(f"PLACECELL_CHECKPOINT_URL must be a postgres:// or postgresql:// URL "
                         f"(got a {url.split('://', 1)[0]!r} URL); leave it empty for SQLite")
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError:
        raise PlacecellError("PLACECELL_CHECKPOINT_URL needs the postgres extra: "
                             "pip install 'placecell[postgres]'") from None
    try:
        # What PostgresSaver.from_conn_string opens, plus a connect timeout.
        conn = psycopg.Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                                          connect_timeout=CONNECT_TIMEOUT)
    except psycopg.ProgrammingError as exc:  # malformed conninfo
        raise InputError(f"PLACECELL_CHECKPOINT_URL is not a valid Postgres URL: {_first_line(exc, url)}") from None
    except psycopg.Error as exc:
        raise PlacecellError(f"checkpoint database unreachable: {_first_line(exc, url)}") from None
    with conn:
        saver = PostgresSaver(conn)
        if setup:
            try:
                saver.setup()
            except psycopg.Error as exc:  # e.g. no CREATE privilege
                raise PlacecellError(f"checkpoint database: cannot create its tables: "
                                     f"{_first_line(exc, url)}") from None
        try:
            yield saver
        except psycopg.OperationalError as exc:  # the server went away mid-session
            raise PlacecellError(f"checkpoint database: {_first_line(exc, url)}") from None

MAX_THREAD_NAME = 100


def check_thread_name(name: str) -> str:
    """A thread name is stored in every checkpoint and printed by `placecell threads`, one per
    line: it must be printable text of reasonable length."""
    import unicodedata

    from placecell.agents.checks import require_utf8

    require_utf8(name, "the thread name")
    if not name.strip():
        raise InputError("the thread name is empty")
    if len(name) > MAX_THREAD_NAME:
        raise InputError(f"the thread name is {len(name)} characters long; at most {MAX_THREAD_NAME}")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise InputError(f"the thread name holds a control character ({bad!r}); use letters, digits, - or _")
    return name


def list_threads(saver) -> list[tuple[str, int]]:
    """(thread id, checkpoints) in `saver`, most recently used first (SQLite or Postgres)."""
    conn = getattr(saver, "conn", None)
    if isinstance(conn, sqlite3.Connection):
        try:
            with closing(conn.cursor()) as cur:
                rows = cur.execute("SELECT thread_id, count(*), max(rowid) FROM checkpoints GROUP BY thread_id "
                                   "ORDER BY max(rowid) DESC").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a new home: no thread was saved yet
                return []
            raise
        return [(r[0], r[1]) for r in rows]
    if type(saver).__module__.startswith("langgraph.checkpoint.postgres"):
        # checkpoint ids are uuid6: their text order is their time order
        with saver._cursor() as cur:
            cur.execute("SELECT thread_id, count(*) AS n, max(checkpoint_id) AS last FROM checkpoints "
                        "GROUP BY thread_id ORDER BY last DESC")
            return [(r["thread_id"], r["n"]) for r in cur.fetchall()]
    # any other saver: its own listing (newest first)
    counts: dict[str, int] = {}
    for item in saver.list(None):
        tid = item.config["configurable"]["thread_id"]
        counts[tid] = counts.get(tid, 0) + 1
    return list(counts.items())
