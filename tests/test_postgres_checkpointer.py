"""Chat threads in Postgres: a real PostgreSQL server started for this module on 127.0.0.1, the
chat graph run on it for two turns, a fresh connection that finds the thread again, and the CLI
(`placecell threads`, `placecell chat`) reading it through PLACECELL_CHECKPOINT_URL. Bad URLs
and an unreachable server are one-line errors. Skips (with the reason) where PostgreSQL's
binaries, the `postgres` extra or a non-root user to run the server as are missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from placecell.agents.backends import Backends
from placecell.agents.chat.state import ChatContext
from placecell.errors import InputError, PlacecellError
from placecell.graphs.chat import build_chat_graph
from placecell.settings import Settings
from placecell.tools.stores.checkpoints import list_threads, open_checkpointer
from support import fixed_answer_qa_graph


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def pg_url():
    """postgresql://... of a throwaway server (trust auth, fsync off), stopped after the module."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is not installed")
    import psycopg

    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    run_as: list[str] = []
    # Not under pytest's tmp_path: that lives in a 0700 folder the server's user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="placecell-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the `postgres` user
        import pwd

        runuser = shutil.which("runuser")
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pg_user = None
        if pg_user is None or runuser is None:
            shutil.rmtree(base, ignore_errors=True)
            pytest.skip("running as root without a `postgres` user and runuser: PostgreSQL refuses to run as root")
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
    data, log, port = base / "data", base / "server.log", free_port()

    def run(*cmd):
        return subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {(init.stderr or init.stdout).strip()[-300:]}")
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                f"-k {base} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", "start")
    try:
        if start.returncode != 0:
            pytest.skip(f"PostgreSQL did not start: {log.read_text()[-300:] if log.exists() else start.stderr}")
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE placecell")
        yield f"postgresql://postgres@127.0.0.1:{port}/placecell"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _fake_qa_graph(seen: list):
    return fixed_answer_qa_graph(seen, [{"title": "Longleat", "passage_id": "p2"}])


def _cli(args, home: Path, url: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PLACECELL_HOME": str(home), "PLACECELL_CHECKPOINT_URL": url}
    return subprocess.run([sys.executable, "-m", "placecell.cli", *args], capture_output=True, text=True, env=env,
                          input=stdin, cwd=home.parent, timeout=300)


def test_chat_threads_persist_in_postgres(pg_url, tmp_path):
    from langgraph.checkpoint.postgres import PostgresSaver

    settings = Settings(home=tmp_path / "home", checkpoint_url=pg_url)
    ctx, config, seen = ChatContext(router="keywords"), {"configurable": {"thread_id": "longleat-pg"}}, []
    with open_checkpointer(settings) as saver:
        assert isinstance(saver, PostgresSaver)
        graph = build_chat_graph(Backends(settings=settings), qa_graph=_fake_qa_graph(seen),
                                 recommend_graph=lambda: None, checkpointer=saver)
        graph.invoke({"messages": [("user", "Which title was the owner of Longleat styled?")]}, config, context=ctx)
        out = graph.invoke({"messages": [("user", "And what about his father?")]}, config, context=ctx)
        assert len(out["messages"]) == 4
    assert seen[1] == "Which title was the owner of Longleat styled? And what about his father?"  # saw turn 1

    with open_checkpointer(settings) as saver:  # a new connection, as a later process would open
        graph = build_chat_graph(Backends(settings=settings), qa_graph=_fake_qa_graph([]),
                                 recommend_graph=lambda: None, checkpointer=saver)
        messages = graph.get_state(config).values["messages"]
        assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
        assert messages[0].content == "Which title was the owner of Longleat styled?"
        assert messages[3].content.startswith("Viscount Weymouth.\n\nSources:\n[1] Longleat")
        assert "longleat-pg" in [name for name, _ in list_threads(saver)]
    assert not (tmp_path / "home" / "chat.sqlite").exists()  # nothing went to SQLite


def test_cli_threads_and_chat_resume_from_postgres(pg_url, tmp_path):
    settings = Settings(home=tmp_path / "home", checkpoint_url=pg_url)
    with open_checkpointer(settings) as saver:
        graph = build_chat_graph(Backends(settings=settings), qa_graph=_fake_qa_graph([]),
                                 recommend_graph=lambda: None, checkpointer=saver)
        for thread in ("older-pg", "newer-pg"):
            graph.invoke({"messages": [("user", "Who owns Longleat?")]}, {"configurable": {"thread_id": thread}},
                         context=ChatContext(router="keywords"))

    listed = _cli(["threads"], tmp_path / "home", pg_url)
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert names.index("newer-pg") < names.index("older-pg")  # most recently used first
    # `placecell chat` resumes the thread from Postgres (no model loads: the session ends at once)
    resumed = _cli(["chat", "--thread", "newer-pg"], tmp_path / "home", pg_url, stdin="/exit\n")
    assert resumed.returncode == 0, resumed.stderr
    assert "thread newer-pg (resumed, 2 messages)" in resumed.stdout
    assert not (tmp_path / "home" / "chat.sqlite").exists()


@pytest.mark.parametrize("url,code,message", [
    ("postgresql://nobody@127.0.0.1:{closed}/db", 1, "error: checkpoint database unreachable: "),
    ("postgresql://u:s3cret@[::1/db", 2, "error: PLACECELL_CHECKPOINT_URL is not a valid Postgres URL: "),
    ("mysql://u@127.0.0.1/db", 2, "error: PLACECELL_CHECKPOINT_URL must be a postgres:// or postgresql:// URL"),
], ids=["unreachable", "malformed", "not-postgres"])
def test_bad_checkpoint_urls_are_one_line(tmp_path, url, code, message):
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    (tmp_path / "home").mkdir()
    proc = _cli(["threads"], tmp_path / "home", url.format(closed=free_port()))
    assert proc.returncode == code
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert "s3cret" not in proc.stderr  # the password never reaches the terminal


def test_open_checkpointer_errors_are_placecell_errors(tmp_path):
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    with pytest.raises(PlacecellError, match="unreachable"):
        with open_checkpointer(Settings(home=tmp_path, checkpoint_url=f"postgres://u@127.0.0.1:{free_port()}/d")):
            pass
    with pytest.raises(InputError):
        with open_checkpointer(Settings(home=tmp_path, checkpoint_url="sqlite:///x.db")):
            pass


def test_without_a_url_threads_stay_in_sqlite(tmp_path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings = Settings(home=tmp_path / "home")
    with open_checkpointer(settings) as saver:
        assert isinstance(saver, SqliteSaver)
        graph = build_chat_graph(Backends(settings=settings), qa_graph=_fake_qa_graph([]),
                                 recommend_graph=lambda: None, checkpointer=saver)
        graph.invoke({"messages": [("user", "Who owns Longleat?")]}, {"configurable": {"thread_id": "local"}},
                     context=ChatContext(router="keywords"))
    assert (tmp_path / "home" / "chat.sqlite").exists()
    with open_checkpointer(settings) as saver:
        assert [name for name, _ in list_threads(saver)] == ["local"]
