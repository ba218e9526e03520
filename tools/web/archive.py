"""A web archive on disk (`--web-dir`): search results and fetched pages, one JSON file each.

`record` mode writes to it while searching and fetching live; `replay` mode serves it back with
no network at all. Test fixtures (`tests/fixtures/web/`) are archives recorded from local pages.
One file per entry (named by a hash of the query or URL) keeps writes atomic and diffs readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from placecell.tools.kvcache import content_key
from placecell.tools.web.fetch import FetchedPage, good_page
from placecell.tools.web.safety import FetchError


def normalise_query(query: str) -> str:
    return " ".join(query.lower().split())


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a killed run never leaves half a file


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
        path = self._search_path(query)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["hits"]

    def save_page(self, page: FetchedPage) -> None:
        if good_page(page):  # only good pages, as in the fetch cache
            _write_json(self._page_path(page.url), page.to_dict())

    def load_page(self, url: str) -> FetchedPage:
        path = self._page_path(url)
        if not path.is_file():
            raise FetchError("not in the recorded web archive", url)
        return FetchedPage.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def counts(self) -> dict[str, int]:
        return {
            kind: len(list((self.root / kind).glob("*.json"))) if (self.root / kind).is_dir() else 0
            for kind in ("searches", "pages")
        }
