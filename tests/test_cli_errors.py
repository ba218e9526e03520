"""The command line's failure modes: usage errors, Ctrl-C, bad numbers and unwritable folders give
one line and a non-zero exit, checked before any work; never a traceback."""

from __future__ import annotations

import pytest

from support import synthetic_rows, write_csv


def run_cli(args) -> int:
    from placecell.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return exit_info.value.code


@pytest.mark.parametrize("args, message", [
    (["recommend", "--bogus"], "No such option: --bogus"),
    (["recommend", "--k"], "requires an argument"),
    (["eval", "ctr", "--seeds", "x"], "Invalid value for '--seeds'"),
    (["no-such-command"], "No such command"),
])
def test_usage_errors_are_messages_not_tracebacks(capsys, args, message):
    # typer 0.29 raises the errors of its vendored click, which are not click.ClickException
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ctrl_c_exits_130_with_one_line(monkeypatch, tmp_path, capsys):
    from placecell.agents.recommend import catalog

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "load_recsys", interrupted)
    code = run_cli(["recommend", "--likes", "sea stories", "--web", "off", "--home", str(tmp_path / "home")])
    assert code == 130
    assert capsys.readouterr().err.strip() == "interrupted"


@pytest.mark.parametrize("args, message", [
    (["train", "ctr", "--data", "DATA", "--format", "csv", "--label", "click", "--threads", "0"], "--threads must be at least 1"),
    (["train", "ctr", "--data", "DATA", "--format", "csv", "--label", "click", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "ctr", "--data", "DATA", "--format", "csv", "--label", "click", "--name", "../escape"], "--name '../escape'"),
    (["eval", "ctr", "--train", "DATA", "--test", "DATA", "--format", "csv", "--label", "click", "--threads", "0"],
     "--threads must be at least 1"),
    (["eval", "ctr", "--data", "movielens", "--train", "DATA", "--test", "DATA", "--format", "csv", "--label", "click"],
     "--data and --train/--test are alternatives"),
    (["eval", "carousels", "--data", "goodbooks_399", "--max-users", "0"], "--max-users must be at least 1"),
    (["eval", "carousels", "--data", "goodbooks_399", "--max-users", "-5"], "--max-users must be at least 1"),
    (["eval", "recommend", "--users", "0"], "--users must be at least 1"),
    (["recommend", "--likes", "sea stories", "--web", "off", "--k", "0"], "k must be between 1 and 50, not 0"),
    (["recommend", "--likes", "sea stories", "--web", "off", "--strategy", "bogus"], "strategy must be one of"),
    (["recommend", "--likes", "   ", "--web", "off"], "give --history FILE, --likes TEXT or --user ID"),
    (["ask", "   "], "the question is empty"),
    (["ask", "why? " * 1000], "the question is 4999 characters long; ask in at most 2000"),
])
def test_bad_numbers_and_names_fail_before_any_work(tmp_path, capsys, args, message):
    data = write_csv(tmp_path / "clicks.csv", synthetic_rows(50, 0))
    args = [str(data) if a == "DATA" else a for a in args]
    assert run_cli([*args, "--home", str(tmp_path / "home")] if args[0] in ("recommend", "ask") else args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not (tmp_path / "escape").exists() and not (tmp_path / "ctr_model").exists()


def test_unwritable_out_fails_before_training(tmp_path, capsys):
    data = write_csv(tmp_path / "clicks.csv", synthetic_rows(50, 0))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for args in (["train", "ctr", "--data", str(data), "--format", "csv", "--label", "click", "--out", str(blocker)],
                 ["eval", "carousels", "--data", "goodbooks_399", "--out", str(blocker / "sub")],
                 # these two checked it only after their ingest / LLM runs, hours in
                 ["eval", "multihop", "--questions", str(data), "--corpus", str(data), "--out", str(blocker)],
                 ["eval", "recommend", "--data", "goodbooks_399", "--out", str(blocker / "sub"),
                  "--home", str(tmp_path / "home")]):
        assert run_cli(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: --out {blocker}") and "\n" not in err
    assert blocker.read_text() == "not a folder"


def test_damaged_or_full_stores_are_one_line(monkeypatch, tmp_path, capsys):
    import sqlite3

    from placecell.agents import backends
    from placecell.errors import NoDataError
    from placecell.tools.stores.kg import KnowledgeGraph

    for problem, expected in ((sqlite3.DatabaseError("file is not a database"), "is damaged (sqlite: file is not a database)"),
                              (sqlite3.OperationalError("database or disk is full"), "cannot write the store")):
        def broken(self, problem=problem):
            raise problem

        monkeypatch.setattr(backends.Backends, "get_registry", broken)
        assert run_cli(["status", "--home", str(tmp_path / "home")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and expected in err and "\n" not in err
    kg = tmp_path / "kg.json"
    kg.write_bytes(b"\x89\x00garbage")
    with pytest.raises(NoDataError, match="knowledge graph file .* is damaged.*rerun `placecell ingest`"):
        KnowledgeGraph.load(kg)


def test_a_damaged_vector_store_says_how_to_rebuild_it(tmp_path, capsys):
    """The vectors are derived from passages.sqlite: moving the damaged folder aside and ingesting
    anything embeds every stored passage again."""
    home = tmp_path / "home"
    (tmp_path / "a.txt").write_text("Alice lives in Paris, the capital of France.\n")
    (tmp_path / "b.txt").write_text("Bob lives in Rome, the capital of Italy.\n")
    assert run_cli(["ingest", str(tmp_path / "a.txt"), "--no-extract", "--home", str(home)]) == 0
    store = home / "chroma" / "chroma.sqlite3"
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    capsys.readouterr()
    assert run_cli(["ingest", str(tmp_path / "b.txt"), "--no-extract", "--home", str(home)]) == 1
    err = capsys.readouterr().err.strip()
    assert "malformed" in err and "move that folder aside and rerun `placecell ingest`" in err and "\n" not in err
    (home / "chroma").rename(tmp_path / "chroma.bad")
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # the next command is a new process, with no cached client
    assert run_cli(["ingest", str(tmp_path / "b.txt"), "--no-extract", "--home", str(home)]) == 0
    from placecell.agents.backends import Backends
    from placecell.settings import Settings

    assert Backends(settings=Settings(home=home)).get_vectors().count() == 2  # a.txt's passage came back


def test_a_read_only_store_is_not_called_damaged(tmp_path, monkeypatch):
    """'unable to open database file' (a read-only mount) told users to delete an intact store."""
    import sqlite3

    from placecell.cli import store_failure

    message = store_failure(sqlite3.OperationalError("unable to open database file"))
    assert "writable" in message and "delete" not in message and "damaged" not in message
    home = tmp_path / "home"
    home.mkdir()
    (home / "chat.sqlite").write_bytes(b"not sqlite at all" * 100)
    sqlite3.connect(home / "passages.sqlite").execute("CREATE TABLE t (x)").connection.close()
    monkeypatch.setenv("PLACECELL_HOME", str(home))
    message = store_failure(sqlite3.DatabaseError("file is not a database"))
    assert message.startswith(f"{home / 'chat.sqlite'} is damaged") and "chat threads" in message
    assert "passages.sqlite" not in message


def test_threads_does_not_hide_an_unreadable_store(tmp_path):
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    from placecell.errors import InputError
    from placecell.tools.stores.checkpoints import check_thread_name, list_threads

    with SqliteSaver.from_conn_string(str(tmp_path / "new.sqlite")) as saver:
        assert list_threads(saver) == []  # no table yet: a home without threads
    conn = sqlite3.connect(tmp_path / "t.sqlite")
    conn.execute("CREATE TABLE checkpoints (x)")  # not the saver's columns: an error that is not 'no such table'
    with pytest.raises(sqlite3.OperationalError):
        list_threads(SqliteSaver(conn))
    assert check_thread_name("reading-list") == "reading-list"
    for name in ("", " ", "a\nb", "a\u200bb", "x" * 101):
        with pytest.raises(InputError):
            check_thread_name(name)


def test_a_home_that_is_a_file_is_named(tmp_path, capsys):
    home = tmp_path / "homefile"
    home.write_text("not a folder")
    for args in (["status"], ["threads"], ["documents"]):
        assert run_cli([*args, "--home", str(home)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: PLACECELL_HOME {home} is a file, not a folder"
    assert home.read_text() == "not a folder"


def test_ctrl_c_while_the_commands_load_is_an_interrupt(monkeypatch, capsys):
    """The first second or two of every command imports its modules: a Ctrl-C there printed a
    40-line traceback from inside `re` or importlib."""
    import pytest

    from placecell import cli

    def interrupted_import():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_register_commands", interrupted_import)
    with pytest.raises(SystemExit) as exc:
        cli.main(["status"])
    assert exc.value.code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
