"""Ctrl-C on the command line.

The nodes run in LangGraph's worker threads, which never see a KeyboardInterrupt, and the
stream waits for them when it is left: an in-process model finishes its current passage, and a
call to a remote endpoint cannot be interrupted at all (it could hold the exit for
PLACECELL_LLM_TIMEOUT, 300 s by default). So the first Ctrl-C tells long loops to stop at their
next item (`agents.events.STOP`) and raises KeyboardInterrupt in the main thread, and a command
that has not ended GRACE_SECONDS later ends there; a second Ctrl-C ends it at once. Ending early
loses nothing stored: caches append whole lines, SQLite commits or rolls back, the KG file is
replaced atomically. Chat is a session: its first Ctrl-C stops the answer, not the session, so
there only the second Ctrl-C ends the process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

from placecell.agents.events import STOP

GRACE_SECONDS = 5.0
_said = threading.Event()
_state = {"count": 0, "session": False, "busy": False}


def say_interrupted() -> None:
    """Print `interrupted` once per process, whichever path gets there first."""
    if not _said.is_set():
        _said.set()
        print("interrupted", file=sys.stderr, flush=True)


def end_now() -> None:
    say_interrupted()
    sys.stdout.flush()
    os._exit(130)


def _on_sigint(signum, frame) -> None:
    STOP.set()
    _state["count"] += 1
    if _state["count"] > 1:
        end_now()
    if _state["session"]:
        if _state["busy"]:  # the answer may be waiting for a remote call to end
            print("(stopping; Ctrl-C again to quit)", file=sys.stderr, flush=True)
    else:
        timer = threading.Timer(GRACE_SECONDS, end_now)
        timer.daemon = True
        timer.start()
    raise KeyboardInterrupt


@contextmanager
def ctrl_c_handled():
    """Install the handler for one command (only the main thread may set signal handlers; a
    process that embeds `main` in another thread keeps Python's default)."""
    _said.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state.update(count=0, session=False, busy=False)
        STOP.clear()


def session() -> None:
    """This command is a session (chat): the first Ctrl-C stops the current step only."""
    _state["session"] = True


def handled() -> None:
    """The session has stopped its step after a Ctrl-C: the next Ctrl-C is a first one again."""
    _state["count"] = 0
    STOP.clear()


@contextmanager
def step():
    """A session's step (an answer, an ingest) runs inside: a first Ctrl-C says it is stopping."""
    _state["busy"] = True
    try:
        yield
    finally:
        _state["busy"] = False
