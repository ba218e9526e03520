"""A web archive on disk (`--web-dir`): search results and fetched pages, one JSON file each.

`record` mode writes to it while searching and fetching live; `replay` mode serves it back with
no network at all. Test fixtures (`tests/fixtures/web/`) are archives recorded from local pages.
One file per entry (named by a hash of the query or URL) keeps writes atomic and diffs readable.
"""

from __future__ import annotations

import json
from pathlib import Path

from placecell.tools.kvcache import content_key
from placecell.tools.stores.atomic import write_bytes_atomic
from placecell.tools.web.fetch import FetchedPage, good_page
from placecell.tools.web.safety import FetchError


def normalise_query(query: str) -> str:
    return " ".join(query.lower().split())


def _write_json(path: Path, data: dict) -> None:
    """Atomic (a killed run never leaves half a file) and never through a symlink: entry names
    are predictable hashes, so anyone who can write in a shared --web-dir could otherwise plant
    `pages/<hash>.tmp -> ~/.bashrc` and have `record` overwrite the target. (The --web-dir itself
    may be a link: the user chose it.)"""
    if path.parent.is_symlink():
        raise ArchiveError(f"web archive folder {path.parent} is a symlink; refusing to write through it", str(path))
    # a fresh name made with O_EXCL, then a rename that replaces a link at `path` instead of following it
    write_bytes_atomic(path, json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))


class ArchiveError(FetchError):
    """A damaged or edited archive entry: that search or page fails, the run goes on."""


def _read_entry(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"damaged archive entry {path}: not JSON ({type(exc).__name__})", str(path)) from None
    if not isinstance(data, dict):
        raise ArchiveError(f"damaged archive entry {path}: not a JSON object", str(path))
    return data


class WebArchive:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _search_path(self, query: str) -> Path:
        return self.root / "searches" / f"{content_key('search', normalise_query(query))[:24]}.json"

    def _page_path(self, url: str) -> Path:
        return self.root / "pages" / f"{content_key('page', url)[:24]}.json"

    def save_search(self, query: str, hits: list[dict]) -> None:
        _write_json(self._search_path(query), {"query": normalise_query(query), "hits": hits})

    def load_search(self, query: str) -> list[dict] | None:
        """The recorded hits (dicts with title, url, snippet), or None when the query was never
        recorded. ArchiveError for an entry that is not what `record` writes (edited or damaged)."""
        path = self._search_path(query)
        if not path.is_file():
            return None
        data = _read_entry(path)
        hits = data.get("hits")
        if not isinstance(hits, list) or not all(
            isinstance(h, dict) and all(isinstance(h.get(k), str) for k in ("title", "url", "snippet")) for h in hits
        ):
            raise ArchiveError(f"damaged archive entry {path}: 'hits' must be a list of {{title, url, snippet}}", str(path))
        return [{k: h[k] for k in ("title", "url", "snippet")} for h in hits]

    def save_page(self, page: FetchedPage) -> None:
        if good_page(page):  # only good pages, as in the fetch cache
            _write_json(self._page_path(page.url), page.to_dict())

    def load_page(self, url: str) -> FetchedPage:
        path = self._page_path(url)
        if not path.is_file():
            raise FetchError("not in the recorded web archive", url)
        data = _read_entry(path)
        try:
            page = FetchedPage.from_dict(data)
        except (KeyError, TypeError):
            raise ArchiveError(f"damaged archive entry {path}: not a recorded page", url) from None
        if not good_page(page):  # `record` keeps good pages only; an edited entry is not served
            raise ArchiveError(f"archive entry {path} is not a usable page (HTTP {page.status}, {len(page.text)} characters)", url)
        return page

    def counts(self) -> dict[str, int]:
        return {
            kind: len(list((self.root / kind).glob("*.json"))) if (self.root / kind).is_dir() else 0
            for kind in ("searches", "pages")
        }
