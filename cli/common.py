"""Shared CLI helpers: settings from flags, console output that degrades to plain text."""

from __future__ import annotations

import json
import os
import sys

from rich.console import Console

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
    return get_settings(model=model, home=home, **extra)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err_console.print(f"warning: {message}", markup=False)
