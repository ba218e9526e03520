"""Shared CLI helpers: settings from flags, console output that degrades to plain text."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.console import Console

from placecell.errors import InputError
from placecell.settings import Settings, get_settings

# Plain text without colour when stdout is not a terminal (pipes, CI, tests).
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def settings_from(model: str | None = None, home: str | None = None, **extra) -> Settings:
    # Exported so every component (and subprocesses) agree: graph nodes that load the LLM lazily
    # call get_llm() with the process settings, and would otherwise get the default model.
    if home:
        os.environ["PLACECELL_HOME"] = home
    if model:
        os.environ["PLACECELL_MODEL"] = model
    settings = get_settings(model=model, home=home, **extra)
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        from placecell.errors import InputError

        raise InputError(f"PLACECELL_HOME {settings.data_dir} is a file, not a folder")
    from placecell.tools.web.safety import check_allow_hosts

    check_allow_hosts(settings.allow_hosts, "PLACECELL_ALLOW_HOSTS entry")
    return settings


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err_console.print(f"warning: {message}", markup=False)


def writable_dir(path: Path) -> Path:
    """Fail before the work, not after it: the output folder, or the nearest folder it would be
    made in, must be a writable directory. Nothing is created (a failed run leaves no empty folder)."""
    import tempfile

    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--out {path}: {existing} exists and is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise InputError(f"--out {path}: cannot write in {existing} ({exc.strerror.lower()})") from None
    return path
