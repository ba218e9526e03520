"""Catalogs for recommendations: items with metadata plus user interactions, shipped as package data.

API (what the WebRec feature and the recsys tools read):

    from placecell.tools.recsys_data import load_catalog, CATALOGS
    cat = load_catalog("goodbooks_399")          # or "movielens"; cached, loaded once per process
    item = cat.items["15"]                       # Item(id, title, creators, year, tags, description)
    cat.history("8")                             # the user's positive item ids, oldest first
    cat.interactions.users / .items / .values / .order   # parallel numpy arrays, time order
    cat.positives()                              # the interactions that count as positive
    cat.tag_weights["15"]                        # {"memoir": 1.0, "history": 0.31, ...}

- Ids are strings everywhere (`book_id` for goodbooks, `movieId` for MovieLens; user ids likewise).
- `Item.creators`: book authors; empty for MovieLens (ml-latest-small has no cast).
- `Item.tags`: goodbooks shelves most-used first with non-genre shelves ("to-read", "owned", "kindle",
  ...) removed; MovieLens genres then the movie's most frequent user tags.
- `Item.description`: empty for both shipped catalogs (neither source has descriptions).
- `positive_threshold`: ratings >= it are positives (4 for both); `None` for implicit events
  (every event is positive, e.g. goodbooks "to-read").
- `load_goodbooks_files(...)` reads any data in the goodbooks layout (ratings `user_id,book_id[,rating]`,
  `books.csv`, `book_tags.csv` by `goodreads_book_id`, `tags.csv`); plain or .gz files.
Sources and licences: `SOURCE.md` next to this file.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from placecell.errors import InputError

CATALOGS = ("goodbooks_399", "movielens")
MAX_ITEM_TAGS = 20
POSITIVE_RATING = 4.0

# Goodreads shelves that describe the reader's bookkeeping, not the book.
_NON_GENRE = re.compile(
    r"(^|-)(to-?read|currently|reading|read-?in|read-?\d|\d{4}|own|owned|i-own|my-|books-i|kindle|e-?books?|"
    r"audio|audible|library|book-?club|favou?rites?|fav|wish|to-buy|buy|default|dnf|did-not-finish|abandon|"
    r"re-?read|tbr|shelf|maybe|borrowed|giveaway|on-hold|have|school|made-me|must-read|"
    r"finished|unfinished|didn|book-?group|listened|all-time|bookshelf|paperback|hardcover|nook|general|books?$)"
)


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    creators: tuple[str, ...] = ()
    year: int | None = None
    tags: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays in time order (timestamp, or file order when the source has no timestamps)."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    order: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def select(self, mask: np.ndarray) -> "Interactions":
        return Interactions(self.users[mask], self.items[mask], self.values[mask], self.order[mask])


@dataclass
class Catalog:
    name: str
    kind: Literal["books", "movies"]
    items: dict[str, Item]
    interactions: Interactions
    tag_weights: dict[str, dict[str, float]]
    positive_threshold: float | None
    _histories: dict[str, list[str]] | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)  # what loading skipped, for reports to repeat

    def positives(self) -> Interactions:
        if self.positive_threshold is None:
            return self.interactions
        return self.interactions.select(self.interactions.values >= self.positive_threshold)

    def history(self, user_id: str) -> list[str]:
        """Positive item ids of `user_id`, oldest first; [] for unknown users."""
        if self._histories is None:
            hist: dict[str, list[str]] = defaultdict(list)
            pos = self.positives()
            for user, item in zip(pos.users.tolist(), pos.items.tolist()):
                hist[user].append(item)
            self._histories = dict(hist)
        return list(self._histories.get(str(user_id), []))


_SNIFF_BYTES = 65536


def _check_text_start(path: Path, start: bytes) -> None:
    """InputError when the file's first bytes are not UTF-8 text (a binary or wrongly encoded file)."""
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows tools save CSV as UTF-16; its zero bytes are not binary
        raise InputError(f"{path}: UTF-16 text; save it as UTF-8")
    if b"\x00" in start:
        raise InputError(f"{path}: not a text file (binary data)")
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(start) - 3 or len(start) < _SNIFF_BYTES:  # not just a character cut by the sniff
            raise _not_utf8(path, exc) from None


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> InputError:
    return InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8")


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file, BOM dropped; InputError if it is binary or not UTF-8 (the caller
    checks that it exists, to name what is missing)."""
    raw = Path(path).read_bytes()
    _check_text_start(Path(path), raw[:_SNIFF_BYTES])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # past the checked start
        raise _not_utf8(Path(path), exc) from None


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a text file, transparently gunzipping `*.gz`; InputError if it is missing, binary or not UTF-8."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as raw:
                _check_text_start(path, raw.read(_SNIFF_BYTES))
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        with open(path, "rb") as raw:
            _check_text_start(path, raw.read(_SNIFF_BYTES))
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: cannot read ({exc})") from None
    # utf-8-sig: spreadsheet exports start with a byte-order mark that would otherwise stick to the
    # first column's name and make "label column 'label' not found" look self-contradictory
    return open(path, encoding="utf-8-sig", newline="")


def read_csv_rows(
    path: str | Path, required: tuple[str, ...], ids: tuple[str, ...] = (), numbers: tuple[str, ...] = ()
) -> Iterator[dict[str, str]]:
    """Rows as dicts. InputError naming the line for a row with the wrong field count, an empty value
    in an `ids` column, or a value that is not a number in a `numbers` column (when the file has it)."""
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [col for col in required if col not in header]
        if not header:
            raise InputError(f"{path}: empty file")
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(header)}")
        numbers = tuple(col for col in numbers if col in header)
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or None in row.values():  # DictReader's marks for extra / missing fields
                n = len(header) + len(row.get(None) or []) - sum(v is None for v in row.values())
                raise InputError(f"{where}: {n} fields, the header has {len(header)}")
            for col in ids:
                if not row[col].strip():
                    raise InputError(f"{where}: empty {col}")
            for col in numbers:
                _number(row[col], f"{where}: {col}")
            yield row


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where} {text!r} is not a finite number")
    return value


def canonical_tag(name: str) -> str | None:
    """Lower-case shelf name with bookkeeping shelves dropped (None) and '-'/plural variants merged."""
    name = name.strip().lower()
    if not name or _NON_GENRE.search(name):
        return None
    key = name.replace("-", "").replace("_", "")
    return key[:-1] if key.endswith("s") and len(key) > 4 else key


def _year(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _book_tags(book_tags: Path, tags: Path, notes: list[str]) -> dict[str, dict[str, float]]:
    """goodreads_book_id -> {display tag: count}, counts of merged variants summed. Rows whose
    tag id has no name in `tags` are skipped and counted in `notes`."""
    names = {row["tag_id"]: row["tag_name"] for row in read_csv_rows(tags, ("tag_id", "tag_name"), ids=("tag_id",))}
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    display: dict[str, str] = {}
    unnamed: set[str] = set()
    for row in read_csv_rows(book_tags, ("goodreads_book_id", "tag_id", "count"), ids=("goodreads_book_id", "tag_id"), numbers=("count",)):
        if row["tag_id"] not in names:
            unnamed.add(row["tag_id"])
            continue
        name = names[row["tag_id"]]
        key = canonical_tag(name)
        if key is None:
            continue
        display.setdefault(key, name.strip().lower())
        shelf = counts[row["goodreads_book_id"]]
        shelf[display[key]] = shelf.get(display[key], 0.0) + max(float(row["count"] or 0), 0.0)
    if unnamed:
        notes.append(f"{book_tags}: {len(unnamed)} tag id(s) have no name in {tags} and were skipped "
                     f"(e.g. {', '.join(sorted(unnamed)[:3])})")
    return counts


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    top = sorted(weights.items(), key=lambda kv: -kv[1])[:MAX_ITEM_TAGS]
    peak = top[0][1] if top and top[0][1] > 0 else 1.0
    return {tag: round(w / peak, 4) for tag, w in top}


def _interactions(users: list[str], items: list[str], values: list[float], order: list[int]) -> Interactions:
    idx = np.argsort(np.asarray(order, dtype=np.int64), kind="stable")
    return Interactions(
        np.asarray(users, dtype=object)[idx],
        np.asarray(items, dtype=object)[idx],
        np.asarray(values, dtype=np.float32)[idx],
        np.asarray(order, dtype=np.int64)[idx],
    )


def load_goodbooks_files(
    ratings: str | Path, books: str | Path, book_tags: str | Path, tags: str | Path, name: str = "goodbooks"
) -> Catalog:
    """A catalog from files in the goodbooks-10k layout; ratings without a `rating` column are implicit."""
    notes: list[str] = []
    shelves = _book_tags(Path(book_tags), Path(tags), notes)
    items: dict[str, Item] = {}
    tag_weights: dict[str, dict[str, float]] = {}
    for row in read_csv_rows(books, ("book_id", "goodreads_book_id", "authors", "title"), ids=("book_id",)):
        weights = _normalised(shelves.get(row["goodreads_book_id"], {}))
        authors = tuple(a.strip() for a in row["authors"].split(",") if a.strip())
        year = _year(row.get("original_publication_year", ""))
        items[row["book_id"]] = Item(row["book_id"], row["title"], authors, year, tuple(weights))
        tag_weights[row["book_id"]] = weights
    if not items:
        raise InputError(f"{books}: no books")
    users, item_ids, values, order = [], [], [], []
    implicit = None
    outside: list[str] = []
    for pos, row in enumerate(read_csv_rows(ratings, ("user_id", "book_id"), ids=("user_id", "book_id"), numbers=("rating",))):
        implicit = "rating" not in row if implicit is None else implicit
        if row["book_id"] not in items:
            outside.append(row["book_id"])
            continue  # ratings of books outside the catalog carry no metadata; skip them
        users.append(row["user_id"])
        item_ids.append(row["book_id"])
        values.append(1.0 if implicit else float(row["rating"]))
        order.append(pos)
    if not users:
        raise InputError(f"{ratings}: no interactions with books listed in {books}")
    threshold = None if implicit else POSITIVE_RATING
    if outside:  # said, not silent: a typo in an id column drops rows
        notes.append(f"{Path(ratings).name}: {len(outside)} row(s) name a book_id not in {Path(books).name} "
                     f"(e.g. {outside[0]!r}): skipped")
    if threshold is not None:
        notes.append(f"{Path(ratings).name}: ratings of {threshold:g} or more are the positives; lower ratings are not used")
    untagged = sum(not w for w in tag_weights.values())
    if untagged:
        notes.append(f"{untagged} of {len(items)} books have no tags: tag-based diversity counts them as unlike every other book")
    return Catalog(name, "books", items, _interactions(users, item_ids, values, order), tag_weights, threshold, notes=notes)


def _movie_user_tags(path: Path) -> dict[str, list[str]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for row in read_csv_rows(path, ("movieId", "tag"), ids=("movieId",)):
        tag = row["tag"].strip().lower()
        if tag:
            counts[row["movieId"]][tag] = counts[row["movieId"]].get(tag, 0) + 1
    return {mid: [t for t, _ in sorted(c.items(), key=lambda kv: -kv[1])] for mid, c in counts.items()}


def load_movielens_files(ratings: str | Path, movies: str | Path, tags: str | Path | None, name: str = "movielens") -> Catalog:
    """A catalog from MovieLens `ratings.csv`, `movies.csv` and (optional) `tags.csv`."""
    user_tags = _movie_user_tags(Path(tags)) if tags else {}
    items: dict[str, Item] = {}
    tag_weights: dict[str, dict[str, float]] = {}
    for row in read_csv_rows(movies, ("movieId", "title", "genres"), ids=("movieId",)):
        genres = tuple(g for g in row["genres"].split("|") if g and g != "(no genres listed)")
        match = re.search(r"\((\d{4})\)\s*$", row["title"])
        title = re.sub(r"\s*\(\d{4}\)\s*$", "", row["title"]).strip()
        extra = tuple(t for t in user_tags.get(row["movieId"], []) if t not in genres)[: MAX_ITEM_TAGS - len(genres)]
        items[row["movieId"]] = Item(row["movieId"], title, (), int(match.group(1)) if match else None, genres + extra)
        # Genres only: user tags cover few movies and would make tag similarity depend on who tagged.
        tag_weights[row["movieId"]] = {g.lower(): 1.0 for g in genres}
    users, item_ids, values, order = [], [], [], []
    for row in read_csv_rows(ratings, ("userId", "movieId", "rating", "timestamp"), ids=("userId", "movieId"), numbers=("rating", "timestamp")):
        if row["movieId"] in items:
            users.append(row["userId"])
            item_ids.append(row["movieId"])
            values.append(float(row["rating"]))
            order.append(int(row["timestamp"]))
    if not users:
        raise InputError(f"{ratings}: no ratings of movies listed in {movies}")
    return Catalog(name, "movies", items, _interactions(users, item_ids, values, order), tag_weights, POSITIVE_RATING)


def data_dir() -> Path:
    return Path(str(resources.files("placecell.tools.recsys_data")))


@lru_cache(maxsize=None)
def load_catalog(name: str) -> Catalog:
    """One of CATALOGS, loaded from package data once per process."""
    root = data_dir()
    if name == "goodbooks_399":
        d = root / "goodbooks_399"
        return load_goodbooks_files(
            d / "ratings.csv.gz", d / "books.csv.gz", d / "book_tags.csv.gz", d / "tags.csv.gz", name
        )
    if name == "movielens":
        d = root / "movielens"
        return load_movielens_files(d / "ratings.csv.gz", d / "movies.csv.gz", d / "tags.csv.gz", name)
    raise InputError(f"unknown catalog {name!r}; choose one of {', '.join(CATALOGS)}")


def split_by_user(users: np.ndarray, share: float = 0.2, min_events: int = 5) -> np.ndarray:
    """Boolean test mask: each user's last floor(share * n) rows (rows are in time order).

    Users with fewer than `min_events` rows keep everything in training, as in the upstream split.
    """
    _, codes, counts = np.unique(np.asarray(users, dtype=str), return_inverse=True, return_counts=True)
    order = np.argsort(codes, kind="stable")
    rank = np.empty(len(codes), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(codes)) - np.repeat(starts, counts)
    n = counts[codes]
    n_test = np.floor(share * n).astype(np.int64)
    return (n >= min_events) & (rank >= n - n_test)
