"""One search interface, several backends: `backend.search(query, max_results) -> SearchResults`.

`SearchResults` is a list of `SearchHit(title, url, snippet)` that also says where it came from
and, when the search failed, why (`error`). Backends never raise for a failed search: a rate
limit or an offline machine becomes an empty result with `error` set, so a graph can go on with
what it has and tell the user.

- `DDGSSearch`: live web via `ddgs` (the maintained successor of duckduckgo-search), with
  exponential backoff on rate limits and timeouts, de-duplication and a disk cache of good results.
- `LocalBM25Search`: BM25 (rank-bm25) over local-web pages.
- `RecordingSearch` / `ReplaySearch`: save results to a `WebArchive` / serve them back offline.
- `NoSearch`: `--web off`.
"""

from __future__ import annotations

import math

import time
from dataclasses import asdict, dataclass
from typing import Callable, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from placecell.tools.kvcache import KVCache, content_key
from placecell.tools.web.archive import ArchiveError, WebArchive, normalise_query
from placecell.tools.web.text import content_words


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str


class SearchResults(list):
    """A list of SearchHit, plus `backend`, `error` (None when the search worked) and `cached`."""

    def __init__(self, hits=(), *, backend: str = "", error: str | None = None, cached: bool = False):
        super().__init__(hits)
        self.backend = backend
        self.error = error
        self.cached = cached


class SearchBackend(Protocol):
    name: str

    def search(self, query: str, max_results: int = 8) -> SearchResults: ...


_TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "ref", "ref_src")


def canonical_url(url: str) -> str:
    """The form two hits are compared in: lower-case host, no fragment, no tracking
    parameters, no trailing slash, http and https equal."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # untrusted text that is no URL: compared as it is (the fetch refuses it)
        return url.strip()
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.lower().startswith(_TRACKING_PARAMS)]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("http", parts.netloc.lower().removeprefix("www."), path, urlencode(query), ""))


def dedupe_hits(hits: list[SearchHit]) -> list[SearchHit]:
    """First occurrence of each canonical URL, order kept."""
    seen: set[str] = set()
    out = []
    for hit in hits:
        key = canonical_url(hit.url)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


class NoSearch:
    name = "off"

    def search(self, query: str, max_results: int = 8) -> SearchResults:
        return SearchResults(backend=self.name, error="web search is off (--web off)")


class DDGSSearch:
    """Live search through ddgs. Retries rate limits and timeouts with exponential backoff."""

    name = "ddgs"

    def __init__(
        self,
        cache_path=None,
        *,
        retries: int = 3,
        backoff: float = 2.0,
        region: str = "wt-wt",
        timeout: int = 10,
        cache_ttl: float = 24 * 3600,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cache = KVCache(cache_path, table="web_search") if cache_path else None
        self.retries = retries
        self.backoff = backoff
        self.region = region
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.sleep = sleep

    def _raw_search(self, query: str, max_results: int) -> list[dict]:
        from ddgs import DDGS

        return DDGS(timeout=self.timeout).text(query, region=self.region, max_results=max_results) or []

    def search(self, query: str, max_results: int = 8) -> SearchResults:
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        key = content_key(self.name, normalise_query(query), str(max_results))
        cached = self.cache.get_json(key) if self.cache is not None else None
        if cached and time.time() - cached["at"] < self.cache_ttl:
            return SearchResults([SearchHit(**h) for h in cached["hits"]], backend=self.name, cached=True)
        last_error = ""
        for attempt in range(self.retries + 1):
            try:
                raw = self._raw_search(query, max_results)
            except (RatelimitException, TimeoutException) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    self.sleep(self.backoff * (2**attempt))
                continue
            except DDGSException as exc:
                return SearchResults(backend=self.name, error=f"search failed: {exc}")
            hits = dedupe_hits([
                SearchHit(str(r.get("title", "")), str(r.get("href") or r.get("url") or ""), str(r.get("body", "")))
                for r in raw if r.get("href") or r.get("url")
            ])[:max_results]
            if hits and self.cache is not None:
                self.cache.put_json(key, {"at": time.time(), "hits": [asdict(h) for h in hits]})
            return SearchResults(hits, backend=self.name, error=None if hits else "no results")
        return SearchResults(backend=self.name, error=f"rate-limited after {self.retries + 1} tries ({last_error})")


class LocalBM25Search:
    """BM25 over documents (url, title, text). Ties break by URL, so results are deterministic.

    `background` (URLs) fixes the engine's term statistics (IDF, mean length) to those pages:
    a real engine's statistics come from billions of pages, so a handful of pages planted by
    someone cannot shift how every other page ranks; planted pages are still indexed and ranked.
    The local web passes its item and distractor pages."""

    name = "local"

    def __init__(self, docs: list[tuple[str, str, str]], snippet_chars: int = 200,
                 background: set[str] | None = None):
        from rank_bm25 import BM25Okapi

        self.docs = sorted(docs, key=lambda d: d[0])
        self.snippet_chars = snippet_chars
        corpus = [content_words(f"{title} {text}") or ["_empty_"] for _, title, text in self.docs]
        self.bm25 = BM25Okapi(corpus) if self.docs else None
        if self.bm25 is not None and background is not None:
            stats_docs = [words for (url, _, _), words in zip(self.docs, corpus) if url in background]
            if stats_docs:
                stats = BM25Okapi(stats_docs)
                unseen_idf = math.log((stats.corpus_size + 0.5) / 0.5)  # a term no background page has
                self.bm25.idf = {t: stats.idf.get(t, unseen_idf) for t in self.bm25.idf}
                self.bm25.avgdl = stats.avgdl

    def search(self, query: str, max_results: int = 8) -> SearchResults:
        terms = content_words(query)
        if not self.docs or not terms:
            return SearchResults(backend=self.name, error="no results" if self.docs else "empty local web")
        scores = self.bm25.get_scores(terms)
        order = sorted(range(len(self.docs)), key=lambda i: (-scores[i], self.docs[i][0]))
        hits = [
            SearchHit(self.docs[i][1], self.docs[i][0], " ".join(self.docs[i][2].split())[: self.snippet_chars])
            for i in order[:max_results]
            if scores[i] > 0
        ]
        return SearchResults(hits, backend=self.name, error=None if hits else "no results")


class RecordingSearch:
    """Searches with `inner` and saves every successful result to the archive."""

    def __init__(self, inner: SearchBackend, archive: WebArchive):
        self.inner = inner
        self.archive = archive
        self.name = f"record:{inner.name}"

    def search(self, query: str, max_results: int = 8) -> SearchResults:
        results = self.inner.search(query, max_results)
        if not results.error:
            self.archive.save_search(query, [asdict(h) for h in results])
        return results


class ReplaySearch:
    """Serves archived results; a query that was never recorded is an empty result with an error."""

    name = "replay"

    def __init__(self, archive: WebArchive):
        self.archive = archive

    def search(self, query: str, max_results: int = 8) -> SearchResults:
        try:
            saved = self.archive.load_search(query)
        except ArchiveError as exc:
            return SearchResults(backend=self.name, error=exc.reason)
        if saved is None:
            return SearchResults(backend=self.name, error="query not in the recorded web archive")
        return SearchResults([SearchHit(**h) for h in saved[:max_results]], backend=self.name)
