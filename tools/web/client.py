"""`WebClient`: one search backend plus one page fetcher, chosen by `--web MODE`.

| mode   | search                      | pages                                         |
|--------|-----------------------------|-----------------------------------------------|
| live   | ddgs                        | safe fetch (+ disk cache of good pages)       |
| record | ddgs, saved to `--web-dir`  | safe fetch, good pages saved to `--web-dir`   |
| replay | `--web-dir`                 | `--web-dir` (no network at all)               |
| local  | BM25 over the local web     | safe fetch from the local server on 127.0.0.1 |
| off    | none (says so)              | none                                          |

Use it as a context manager: local mode starts its HTTP server on enter and stops it on exit.
Local mode allows fetching from 127.0.0.1 (the server it started); other modes allow only the
hosts passed in `allow_hosts`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from placecell.errors import InputError
from placecell.tools.web.archive import WebArchive
from placecell.tools.web.fetch import FetchedPage, PageCache, fetch_many
from placecell.tools.web.localweb import LocalPage, LocalWebServer, page_routes, stable_port
from placecell.tools.web.robots import RobotsCache
from placecell.tools.web.safety import FetchError
from placecell.tools.web.search import (
    DDGSSearch,
    LocalBM25Search,
    NoSearch,
    RecordingSearch,
    ReplaySearch,
    SearchBackend,
    SearchResults,
)

WEB_MODES = ("live", "record", "replay", "local", "off")
LOCAL_HOST = "127.0.0.1"


@dataclass
class FetchOptions:
    timeout: float = 20.0
    max_bytes: int = 5_000_000
    concurrency: int = 4
    allow_hosts: tuple[str, ...] = ()
    budget: float = 60.0  # seconds for all the fetches of one run (per page: `timeout`)


@dataclass
class WebClient:
    mode: str
    web_dir: Path | None = None
    cache_dir: Path | None = None
    local_pages: list[LocalPage] | None = None
    record_source: str = "live"  # record mode: "live" (ddgs) or "local" (how test fixtures are made)
    options: FetchOptions = field(default_factory=FetchOptions)
    _search: SearchBackend | None = field(default=None, init=False)
    _server: LocalWebServer | None = field(default=None, init=False)
    _archive: WebArchive | None = field(default=None, init=False)
    _page_cache: PageCache | None = field(default=None, init=False)
    _robots: RobotsCache = field(default_factory=RobotsCache, init=False)  # per client: ports get reused

    def __post_init__(self) -> None:
        if self.mode not in WEB_MODES:
            raise InputError(f"unknown --web mode {self.mode!r}; use one of {', '.join(WEB_MODES)}")
        if self.mode in ("record", "replay") and not self.web_dir:
            raise InputError(f"--web {self.mode} needs --web-dir DIR")
        if self.mode == "replay" and Path(self.web_dir).exists() and not Path(self.web_dir).is_dir():
            raise InputError(f"--web-dir {self.web_dir} is a file, not a folder saved by --web record")
        if self.mode == "replay" and not Path(self.web_dir).is_dir():
            raise InputError(f"--web-dir {self.web_dir} does not exist (record it first with --web record)")
        if self.mode == "record":  # made up front: a recording that found nothing still leaves its (empty) archive
            try:
                Path(self.web_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"--web-dir {self.web_dir}: cannot create it ({exc.strerror.lower()})") from None
        uses_local = self.mode == "local" or (self.mode == "record" and self.record_source == "local")
        if uses_local and not self.local_pages:
            raise InputError("--web local needs a catalog to build the local web from")
        if self.web_dir:
            self._archive = WebArchive(self.web_dir)
        if self.cache_dir and self.mode in ("live", "record"):
            self._page_cache = PageCache(Path(self.cache_dir) / "web_pages.sqlite")

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "WebClient":
        self._search = self._make_search()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.__exit__(*exc)
            self._server = None

    def _start_local(self) -> LocalBM25Search:
        routes = page_routes(self.local_pages)
        self._server = LocalWebServer(routes, port=stable_port(routes)).__enter__()
        if LOCAL_HOST not in self.options.allow_hosts:
            self.options.allow_hosts = (*self.options.allow_hosts, LOCAL_HOST)
        docs = [(self._server.url(p.path), p.title, p.text) for p in self.local_pages]
        background = {self._server.url(p.path) for p in self.local_pages if p.kind != "injection"}
        return LocalBM25Search(docs, background=background)

    def _make_search(self) -> SearchBackend:
        if self.mode == "off":
            return NoSearch()
        if self.mode == "replay":
            return ReplaySearch(self._archive)
        if self.mode == "local":
            return self._start_local()
        live_cache = Path(self.cache_dir) / "web_search.sqlite" if self.cache_dir else None
        if self.mode == "live":
            return DDGSSearch(live_cache)
        inner = self._start_local() if self.record_source == "local" else DDGSSearch(live_cache)
        return RecordingSearch(inner, self._archive)

    # -- the two operations ----------------------------------------------------------------------
    def search(self, query: str, max_results: int = 8) -> SearchResults:
        if self._search is None:
            raise RuntimeError("use WebClient as a context manager")
        return self._search.search(query, max_results)

    def fetch_deadline(self) -> float:
        """The `time.monotonic()` by which one run's fetches must be done (options.budget from now)."""
        return time.monotonic() + self.options.budget

    def fetch_many(self, urls: list[str], deadline: float | None = None) -> list[FetchedPage | FetchError]:
        """One FetchedPage or FetchError per URL, input order; live fetches stop at `deadline`
        (default: the budget from now)."""
        if self.mode == "off":
            return [FetchError("web is off", u) for u in urls]
        if self.mode == "replay":
            return [self._replayed(u) for u in urls]
        opts = self.options
        results = fetch_many(
            urls, concurrency=opts.concurrency, allow_hosts=opts.allow_hosts, timeout=opts.timeout,
            max_bytes=opts.max_bytes, cache=self._page_cache, robots=self._robots,
            deadline=self.fetch_deadline() if deadline is None else deadline,
        )
        if self.mode == "record":
            for page in results:
                if isinstance(page, FetchedPage):
                    self._archive.save_page(page)
        return results

    def _replayed(self, url: str) -> FetchedPage | FetchError:
        # No fetch happens, so no address check; the URL's form is checked as a live fetch would.
        from placecell.tools.web.safety import check_form

        try:
            check_form(url)
            return self._archive.load_page(url)
        except FetchError as exc:
            return exc

    @property
    def backend_name(self) -> str:
        return self._search.name if self._search else self.mode
