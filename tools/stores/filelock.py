"""An exclusive lock between processes on one file (flock), for work that two processes would
otherwise both do: two `placecell ingest` runs over one home would both extract the same passages."""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def exclusive(path: str | Path, *, on_wait: Callable[[], None] | None = None,
              while_waiting: Callable[[], None] | None = None, poll_seconds: float = 0.25) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block.

    When another process holds it, `on_wait` is called once and the lock is polled rather than
    waited on in one blocking call: `while_waiting` runs between polls and may raise (the ingest
    node raises on Ctrl-C, which a blocked flock in a worker thread would never see). A crashed
    holder releases the lock with its file descriptor, so a stale lock file blocks nobody."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            while True:
                if while_waiting is not None:
                    while_waiting()
                time.sleep(poll_seconds)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
        yield  # closing the file at the end of `with` releases the lock
