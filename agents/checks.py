"""Checks for run settings (the graphs' context dataclasses) and graph inputs.

A context is checked when it is built (CLI, Studio, an app's `context=`), so a bad value is one
`InputError` naming the setting before any LLM work, not a KeyError or a silent slice
(`top_k=-1`) deep inside a node. Graph inputs are checked by each graph's first node.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from placecell.errors import InputError


class KnownSettings:
    """Base of the context dataclasses: a setting they do not have is an InputError naming it.

    LangGraph builds a context given as a dict with `Context(**context)`; a misspelt key (`topk`)
    was Python's bare TypeError. `__new__` sees the same keywords before the dataclass `__init__`."""

    def __new__(cls, *args, **kwargs):
        import dataclasses
        import difflib

        known = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        for key in kwargs:
            if known and key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                raise InputError(f"{cls.__name__} has no setting {key!r}"
                                 + (f"; did you mean {near[0]!r}?" if near else f" (settings: {', '.join(known)})"))
        return super().__new__(cls)


def choice(obj: Any, name: str, known: Iterable[str]) -> None:
    value, known = getattr(obj, name), tuple(known)
    if value not in known:
        raise InputError(f"{name} must be one of {', '.join(known)}, not {value!r}")


def integer(obj: Any, name: str, low: int, high: int | None = None) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InputError(f"{name} must be {span}, not {value}")


def number(obj: Any, name: str, low: float | None = None, high: float | None = None, optional: bool = False) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be between {low if low is not None else '-inf'} and "
                         f"{high if high is not None else 'inf'}, not {value}")


def string_list(obj: Any, name: str) -> None:
    """A list of strings; one string is refused (it would be read character by character)."""
    value = getattr(obj, name)
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{name} must be a list of strings, not {value!r}"[:200])


def encoding(obj: Any, name: str) -> None:
    """A text codec Python knows (`utf-8`, `cp1252`, `latin-1`, ...)."""
    from placecell.tools.loaders import check_encoding

    value = getattr(obj, name)
    if not isinstance(value, str):
        raise InputError(f"{name} must be a codec name, not {value!r}"[:200])
    try:
        check_encoding(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None


RATING_SCALE = (0.0, 5.0)  # the demo catalogs' stars (goodbooks 1-5, MovieLens 0.5-5); 4 or more is a like


def history_entry(entry: dict) -> None:
    """An {item, rating} entry: the item a catalog id or title, the rating a number on the star
    scale. A list item became the text "['81']" (an unknown title), a rating of True was 1.0 and
    -1e308 a silent dislike."""
    item, rating = entry.get("item"), entry.get("rating")
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise InputError(f"history entry {item!r}: 'item' must be a catalog id or title (text or a number), "
                         f"not {type(item).__name__}"[:200])
    if rating is None:
        return
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not math.isfinite(rating):
        raise InputError(f"history entry {item!r}: rating must be a number, not {rating!r}"[:200])
    low, high = RATING_SCALE
    if not low <= rating <= high:
        raise InputError(f"history entry {item!r}: rating {rating:g} is outside the {low:g}-{high:g} star scale"[:200])


def text_input(state: dict, key: str, *, required: bool) -> str:
    """A graph input that must be text (a question, likes)."""
    value = state.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f"input '{key}' must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise InputError(f"input '{key}' is empty")
    require_utf8(value, f"input '{key}'")
    return value


def require_utf8(text: str, what: str) -> None:
    """Refuse text holding lone surrogates: bytes that were not UTF-8 (a terminal or pipe in
    another encoding, an odd file name) arrive that way and fail much later, in a cache key or
    a SQLite write, as a traceback."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (character {exc.start}); use a UTF-8 terminal or file") from None


def list_input(state: dict, key: str, item_type: type, what: str) -> list:
    """A graph input that must be a list of `item_type` (one string is not a list of sources)."""
    value = state.get(key)
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise InputError(f"input '{key}' must be a list of {what}, not {type(value).__name__}")
    bad = [v for v in value if not isinstance(v, item_type)]
    if bad:
        raise InputError(f"input '{key}' must be a list of {what}; got {bad[0]!r}"[:200])
    return list(value)
