"""Prompt templates as files. `load("name")` reads prompts/name.txt from the installed package."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load(name: str) -> str:
    return (resources.files("placecell.prompts") / f"{name}.txt").read_text(encoding="utf-8")


def version(*names: str, extra: str = "") -> str:
    """A short hash of the prompt texts (and e.g. a schema): cache keys change when they do."""
    h = hashlib.sha256()
    for n in names:
        h.update(load(n).encode("utf-8"))
    h.update(extra.encode("utf-8"))
    return h.hexdigest()[:12]
