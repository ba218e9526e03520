"""The `placecell` command. Sub-commands live in sibling modules and register on these apps.

Expected failures are `PlacecellError`s: printed as one line (`error: ...`) with their exit code,
never as a traceback.
"""

from __future__ import annotations

import sys
import threading

import typer

app = typer.Typer(
    name="placecell",
    help="Local-first agentic RAG: multi-hop QA over your documents, recommendations with web evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List, install and verify local GGUF models.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluations that write results.json and report.md.", no_args_is_help=True)
train_app = typer.Typer(help="Train tool models on your own data.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")


def _register_commands() -> None:
    # Each module adds its commands to the apps above on import.
    import importlib

    for name in ("models", "docs", "recsys", "recommend", "multihop", "chat"):
        try:
            importlib.import_module(f"placecell.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"placecell.cli.{name}":
                raise


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage-error classes: typer 0.29 (the pin) raises those of its vendored click (`typer._click`), which
    are not `click.ClickException`s, so checking click's own class let them through as tracebacks."""
    import click

    try:
        from typer._click.exceptions import ClickException as VendoredClickException
    except ImportError:
        return (click.ClickException,)
    return (click.ClickException, VendoredClickException)


# What to do with a damaged SQLite file, by name (anything else under the home is a rebuilt cache).
_STORE_ADVICE = {"passages.sqlite": "delete it and rerun `placecell ingest` with the same files (extractions "
                                    "come from the cache)",
                 "chat.sqlite": "it holds only the chat threads: move it away to start without them"}


def store_failure(exc: Exception) -> str | None:
    """One line for a store that cannot be read or written (SQLite files under PLACECELL_HOME, the
    Chroma store): a full disk, a read-only home or a damaged file, which a traceback would only hide."""
    import sqlite3

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError):
        if "full" in text or "I/O" in text:
            return f"cannot write the store under PLACECELL_HOME (sqlite: {text}); free space and rerun"
        if "unable to open" in text or "readonly" in text:  # not damage: telling the user to delete would lose data
            return (f"cannot open or write a store file under PLACECELL_HOME (sqlite: {text}); check that the "
                    "folder is writable (not a read-only mount, owned by you)")
        damaged = _damaged_sqlite_files()
        if damaged:
            return "; ".join(f"{path} is damaged (sqlite: {text}); "
                             + _STORE_ADVICE.get(path.name, "it is a cache: delete it, it is rebuilt") for path in damaged)
        return (f"a store file under PLACECELL_HOME is damaged (sqlite: {text}); files under cache/ can be "
                f"deleted (they are rebuilt); a damaged passages.sqlite: {_STORE_ADVICE['passages.sqlite']}")
    if type(exc).__module__.startswith("chromadb"):
        return f"the vector store failed ({type(exc).__name__}: {text}); a full disk or a damaged chroma/ folder"
    return None


def _damaged_sqlite_files() -> list:
    """The SQLite files under PLACECELL_HOME that SQLite cannot read (read-only, nothing changed)."""
    import sqlite3
    from contextlib import closing

    try:
        from placecell.settings import get_settings

        home = get_settings().data_dir
        files = sorted([*home.glob("*.sqlite"), *(home / "cache").glob("*.sqlite")])
    except Exception:  # naming the file is a courtesy: the generic message still stands
        return []
    damaged = []
    for path in files:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                damaged.append(path)
    return damaged


def _interrupted(threads_before: set) -> None:
    """Say `interrupted` and exit 130, after the threads this command started have ended or the
    grace period has passed (`cli.interrupts`; a process that embeds `main`, such as a test run,
    keeps its own threads)."""
    import os
    import time

    from placecell.cli.interrupts import GRACE_SECONDS, say_interrupted

    say_interrupted()
    deadline = time.monotonic() + GRACE_SECONDS
    ours = [t for t in threading.enumerate() if t not in threads_before and not t.daemon]
    for thread in ours:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in ours):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(130)


def main(argv: list[str] | None = None) -> None:
    from placecell.cli.interrupts import ctrl_c_handled

    with ctrl_c_handled():  # also while an interrupted command waits for its threads
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from placecell.errors import PlacecellError

    threads_before = set(threading.enumerate())
    try:
        _register_commands()  # imports for a second or two: Ctrl-C here is an interrupt too, not a traceback
        # Without standalone mode, click turns Ctrl-C into Abort and typer returns its exit code (130)
        # instead of raising: a return value that is an exit code must reach the shell.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:
                _interrupted(threads_before)
            sys.exit(code)
    except PlacecellError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted(threads_before)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, _click_errors()):
            exc.show()  # "Usage: ... Error: No such option: --x", as in standalone mode
            sys.exit(exc.exit_code)
        if isinstance(exc, typer.Abort):
            print("aborted", file=sys.stderr)
            sys.exit(130)
        if isinstance(exc, UnicodeDecodeError):  # past the first 64 KB that open_text checks
            print(f"error: input is not UTF-8 text (byte {exc.start} of a read block); save it as UTF-8", file=sys.stderr)
            sys.exit(2)
        if isinstance(exc, OSError) and exc.errno == 28:
            print("error: no space left on device; nothing already stored was changed", file=sys.stderr)
            sys.exit(1)
        if isinstance(exc, (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError)) or (
                isinstance(exc, OSError) and exc.errno == 30):  # 30: read-only file system
            print(f"error: cannot write {exc.filename}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
            sys.exit(1)
        message = store_failure(exc)
        if message:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)
        raise
