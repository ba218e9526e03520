"""The catalog side of the recommendation graph: history resolution, item texts, CF, CTR, carousels.

`CatalogRecsys` wraps the issue-4 tool nodes (`score_candidates`, `build_carousels` in
`placecell.tools.recsys_nodes`) and an EASE CF model. The CF model is an argument so the
evaluation can pass one trained without the held-out interactions.
"""

from __future__ import annotations

import re
from functools import cached_property

import numpy as np

from placecell.errors import InputError
from placecell.tools.web.localweb import WebItem
from placecell.tools.textnorm import fold
from placecell.tools.web.text import drop_parenthesised, normalise_title, words


def item_text(item) -> str:
    """What an item is, for embeddings: title, creators, year, tags (metadata only)."""
    by = f" by {', '.join(item.creators[:3])}" if item.creators else ""
    year = f" ({item.year})" if item.year else ""
    tags = f". {', '.join(item.tags[:10])}" if item.tags else ""
    return f"{item.title}{by}{year}{tags}"


def web_items(catalog) -> list[WebItem]:
    kind = "film" if catalog.kind == "movies" else "book"
    return [WebItem(i.id, i.title, tuple(i.creators), i.year, tuple(i.tags), i.description, kind)
            for i in catalog.items.values()]


# MovieLens writes "Matrix, The" and "Cité des enfants perdus, La"; people write "The Matrix".
_ARTICLES = frozenset("the a an la le les l' el los las il lo gli der die das det den en un une i o os".split())
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.*\S),\s*(?P<article>[^\s,]+)\s*$")
_ALTERNATE = re.compile(r"\(([^()]*)\)")
_AKA = re.compile(r"^\s*a\.?\s*k\.?\s*a\.?\s+", re.IGNORECASE)


def front_article(title: str) -> str | None:
    """"Matrix, The" -> "The Matrix", "Atalante, L'" -> "L'Atalante"; None when there is no
    trailing article."""
    match = _TRAILING_ARTICLE.match(title.strip())
    if not match or match["article"].lower() not in _ARTICLES:
        return None
    article = match["article"]
    return f"{article}{'' if article.endswith(chr(39)) else ' '}{match['body']}"


def _capitalised_count(title: str, folded_text: str) -> int:
    """How often `title` (normalised) occurs in the text with a capital on a word after the first."""
    pattern = r"(?<![\w'])" + r"[^\w']+".join(re.escape(w) for w in title.split()) + r"(?![\w'])"
    return sum(any(w[:1].isupper() for w in m.group(0).split()[1:])
               for m in re.finditer(pattern, folded_text, flags=re.IGNORECASE))


class CatalogRecsys:
    def __init__(self, catalog, cf=None, space=None):
        self.catalog = catalog
        self._cf = cf
        self._space = space  # an ItemSpace; given with `cf` so the carousel engine is not built
        self.ctr_problem = ""  # why the CTR model could not be used, when it could not

    @property
    def name(self) -> str:
        return self.catalog.name

    @property
    def kind_noun(self) -> str:
        return "films" if self.catalog.kind == "movies" else "books"

    @property
    def shipped(self) -> bool:
        """A bundled demo catalog (has a trained CTR model); explicit files do not."""
        from placecell.tools.recsys_data import CATALOGS

        return self.catalog.name in CATALOGS

    @cached_property
    def engine(self):
        if self.shipped:
            from placecell.tools.recsys_nodes import engine_for

            return engine_for(self.catalog.name)
        from placecell.tools.carousels.cf import EASE
        from placecell.tools.carousels.data import item_space, positives_of, split_positives
        from placecell.tools.carousels.layout import CarouselEngine

        space = item_space(self.catalog)
        cf = self._cf or EASE().fit(split_positives(positives_of(self.catalog), space, share=0.0).train)
        return CarouselEngine(self.catalog, space, cf)

    @property
    def cf(self):
        return self._cf if self._cf is not None else self.engine.cf

    @property
    def space(self):
        return self._space if self._space is not None else self.engine.space

    @cached_property
    def _title_forms(self) -> tuple[dict[str, str], frozenset[str]]:
        """(normalised title -> id, the keys that exist only as article-fronted forms), for titles
        in free text: the title, the title with a trailing article put in front ("Matrix, The" is
        "The Matrix"), and the part before a colon when it has two words or more. Earlier forms
        win, so no alias hides another item's own title."""
        index: dict[str, str] = {}
        ordered = sorted(self.catalog.items.values(), key=lambda i: (len(i.id), i.id))
        for item in ordered:
            index.setdefault(normalise_title(item.title), item.id)
        fronted: set[str] = set()
        for item in ordered:
            form = front_article(drop_parenthesised(item.title))
            if form and normalise_title(form) not in index:
                index[normalise_title(form)] = item.id
                fronted.add(normalise_title(form))
        for item in ordered:  # "Kitchen Confidential: Adventures in ..." is also "Kitchen Confidential"
            short = normalise_title(item.title.split(":")[0])
            if " " in short:
                index.setdefault(short, item.id)
        return index, frozenset(fronted)

    @property
    def _title_index(self) -> dict[str, str]:
        return self._title_forms[0]

    @cached_property
    def _alias_index(self) -> dict[str, str]:
        """Alternative titles in parentheses ("Léon: The Professional (a.k.a. The Professional)
        (Léon)", "Amelie (Fabuleux destin d'Amélie Poulain, Le)"), for a history entry that is a
        whole title. Not searched for in free text: "the professional" is also an ordinary phrase."""
        index: dict[str, str] = {}
        for item in sorted(self.catalog.items.values(), key=lambda i: (len(i.id), i.id)):
            for alt in _ALTERNATE.findall(item.title):
                if "#" in alt:  # "(Frank McCourt, #1)" is a series, not another title
                    continue
                alt = _AKA.sub("", alt)
                for form in (alt, front_article(alt)):
                    if form and normalise_title(form):
                        index.setdefault(normalise_title(form), item.id)
        return index

    # -- history -------------------------------------------------------------------------------
    def resolve(self, ref: str) -> str | None:
        """A catalog id for an id or a title (case, punctuation, accents and a leading or trailing
        article ignored; alternative titles too), or None."""
        ref = str(ref).strip()
        if ref in self.catalog.items:
            return ref
        key = normalise_title(ref)
        return self._title_index.get(key) or self._alias_index.get(key)

    def titles_in(self, text: str) -> list[str]:
        """Catalog items whose full title (two words or more) appears in free text. A title found
        only with its article put in front ("The Professional" for "Professional, The") counts
        when written as a title, capitalised: "the professional approach" names no film."""
        index, fronted = self._title_forms
        padded = f" {' '.join(words(text))} "
        folded = fold(text)

        def count(title: str, within: str) -> int:
            return len(re.findall(f"(?= {re.escape(title)} )", within))

        found = {t: n for t in index if " " in t and f" {t} " in padded
                 and (n := _capitalised_count(t, folded) if t in fronted else count(t, padded))}
        # "Toy Story" inside "Toy Story 2", "The Professional" inside "Léon: The Professional": a
        # shorter title counts only where it is written outside the longest titles found.
        longest = [t for t in found if not any(t != u and f" {t} " in f" {u} " for u in found)]
        kept = [t for t, n in found.items()
                if n > sum(found[u] * count(t, f" {u} ") for u in longest if u != t)]
        return list(dict.fromkeys(index[t] for t in kept))

    def is_positive(self, rating: float | None) -> bool:
        threshold = self.catalog.positive_threshold
        return rating is None or threshold is None or float(rating) >= threshold

    # -- scores --------------------------------------------------------------------------------
    def cf_scores(self, liked: list[str]) -> tuple[dict[str, float], bool]:
        """CF score of every unseen item, and whether it fell back to popularity (no usable history)."""
        space = self.space
        history = [space.index[i] for i in liked if i in space.index]
        result = self.cf.score(history)
        scores = {space.ids[j]: float(s) for j, s in enumerate(result.scores) if np.isfinite(s)}
        return scores, result.fallback is not None

    def ctr(self, user: str, candidates: list[str], features: dict[str, dict[str, float]], ctr_weight: float = 1.0):
        """The CTR tool node's ScoreResult (ctr_weight * its logit + the features), or None without a model."""
        if not self.shipped:
            return None
        from placecell.errors import ModelError
        from placecell.tools.recsys_nodes import score_candidates

        try:
            return score_candidates(user or "", candidates, features, catalog=self.catalog.name, ctr_weight=ctr_weight)
        except ModelError as exc:  # the trained model is not installed: rank without it, say so
            self.ctr_problem = str(exc)
            return None

    def carousels(self, user: str, scored: list[dict], liked: list[str], k: int, strategy: str, n: int):
        """The carousel tool node's page (`CarouselPage`), or None for catalogs it does not serve."""
        if not self.shipped:
            return None
        from placecell.tools.recsys_nodes import ScoredCandidate, build_carousels

        cands = [ScoredCandidate(item_id=s["item_id"], score=s["score"], title=s.get("title", "")) for s in scored]
        return build_carousels(user or "", cands, k=k, strategy=strategy, catalog=self.catalog.name,
                               n_carousels=n, history=liked)


def load_recsys(name: str) -> CatalogRecsys:
    from placecell.tools.recsys_data import CATALOGS, load_catalog

    if name not in CATALOGS:
        raise InputError(f"unknown catalog {name!r}; choose one of {', '.join(CATALOGS)}")
    return CatalogRecsys(load_catalog(name))


def zscore(values: dict[str, float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.array(list(values.values()), dtype=np.float64)
    std = arr.std() or 1.0
    return {k: float((v - arr.mean()) / std) for k, v in values.items()}


def read_history_file(path) -> list[dict]:
    """A history file: CSV with an `item` column (catalog id or title) and an optional `rating`
    column, JSONL with {"item": ..., "rating": ...} per line, or a .json file holding an array of
    those. An empty file is an empty history."""
    import csv
    import json
    from pathlib import Path

    from placecell.agents import checks
    from placecell.tools.recsys_data import read_text

    path = Path(path)
    if path.is_dir():
        raise InputError(f"history file {path} is a directory; give a CSV or JSONL file")
    if not path.is_file():
        raise InputError(f"history file not found: {path}")
    text = read_text(path)
    if not text.strip():
        return []
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):  # one JSON array of entries
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not a JSON array ({exc.msg})") from None
    elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not a JSON object ({exc.msg}); give one object per line, "
                                 "or a .json file holding one array") from None
    else:
        reader = csv.DictReader(text.splitlines())
        rows = []
        for row in reader:
            # More cells than the header: an unquoted comma has shifted the cells after it (a title
            # "Dune, Part Two" became "Dune"). Empty extra cells are a spreadsheet's trailing commas.
            if any((cell or "").strip() for cell in row.pop(None, [])):
                raise InputError(f"{path}:{reader.line_num}: more cells than the {len(reader.fieldnames)} columns "
                                 f"({', '.join(reader.fieldnames)}); put a cell that holds a comma in double quotes")
            rows.append(row)
        if rows and "item" not in rows[0]:
            raise InputError(f"{path}: needs an 'item' column (catalog id or title); found {', '.join(rows[0])}")
    history = []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{path}: entry {n} is not an object with an 'item' ({type(row).__name__})")
        if row.get("item") is None or (isinstance(row["item"], str) and not row["item"].strip()):
            raise InputError(f"{path}: entry {n} has no 'item'")
        rating = row.get("rating")
        if isinstance(rating, str):  # a CSV cell; blank is no rating
            rating = rating.strip() or None
        try:
            rating = rating if rating is None or isinstance(rating, bool) else float(rating)  # True is refused below
        except (TypeError, ValueError):
            raise InputError(f"{path}: entry {n} has a rating that is not a number: {row.get('rating')!r}"[:200]) from None
        entry = {"item": row["item"].strip() if isinstance(row["item"], str) else row["item"], "rating": rating}
        try:
            checks.history_entry(entry)
        except InputError as exc:
            raise InputError(f"{path}: entry {n}: {str(exc).removeprefix('history entry ')}") from None
        history.append({**entry, "item": str(entry["item"])})
    return history
