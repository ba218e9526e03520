"""Search backends: ddgs failure handling (monkeypatched, no network), BM25, record and replay."""

from __future__ import annotations

import pytest
from ddgs.exceptions import DDGSException, RatelimitException

from placecell.errors import InputError
from placecell.tools.web.client import WebClient
from placecell.tools.web.fetch import FetchedPage
from placecell.tools.web.localweb import WebItem, build_local_web
from placecell.tools.web.safety import FetchError
from placecell.tools.web.search import DDGSSearch, LocalBM25Search, SearchHit, canonical_url, dedupe_hits

RAW = [
    {"title": "A", "href": "https://www.example.com/a/?utm_source=x", "body": "first"},
    {"title": "A again", "href": "http://example.com/a#top", "body": "dup"},
    {"title": "B", "href": "https://example.org/b", "body": "second"},
]


def ddgs(monkeypatch, behaviour, **kw):
    calls = []

    def fake(self, query, max_results):
        calls.append(query)
        return behaviour(len(calls))

    monkeypatch.setattr(DDGSSearch, "_raw_search", fake)
    sleeps: list[float] = []
    return DDGSSearch(sleep=sleeps.append, **kw), calls, sleeps


def test_ddgs_failure_is_reported_not_raised(monkeypatch):
    def boom(n):
        raise DDGSException("https://duckduckgo.com ConnectError")

    backend, calls, sleeps = ddgs(monkeypatch, boom)
    results = backend.search("memoir about war", 5)
    assert list(results) == [] and "search failed" in results.error and "ConnectError" in results.error
    assert sleeps == []  # a hard failure is not retried


def test_ddgs_rate_limit_backs_off_then_succeeds(monkeypatch):
    def flaky(n):
        if n < 3:
            raise RatelimitException("202 Ratelimit")
        return RAW

    backend, calls, sleeps = ddgs(monkeypatch, flaky, retries=3, backoff=1.0)
    results = backend.search("q", 5)
    assert results.error is None and [h.title for h in results] == ["A", "B"]  # de-duplicated
    assert sleeps == [1.0, 2.0] and len(calls) == 3


def test_ddgs_rate_limit_exhausted_says_so(monkeypatch):
    def limited(n):
        raise RatelimitException("202 Ratelimit")

    backend, calls, sleeps = ddgs(monkeypatch, limited, retries=2, backoff=0.5)
    results = backend.search("q", 5)
    assert list(results) == [] and results.error.startswith("rate-limited after 3 tries")
    assert sleeps == [0.5, 1.0]


def test_ddgs_disk_cache_keeps_good_results_only(monkeypatch, tmp_path):
    backend, calls, _ = ddgs(monkeypatch, lambda n: RAW if n > 1 else [], cache_path=tmp_path / "s.sqlite")
    assert backend.search("q", 5).error == "no results"  # empty: not cached
    first = backend.search("q", 5)
    again = backend.search("q", 5)
    assert len(calls) == 2 and again.cached and list(again) == list(first)


def test_canonical_url_and_dedupe():
    assert canonical_url("https://www.Example.com/a/?utm_source=x&id=3#frag") == "http://example.com/a?id=3"
    hits = [SearchHit("1", "https://x.org/p", ""), SearchHit("2", "http://x.org/p/", ""), SearchHit("3", "https://x.org/q", "")]
    assert [h.title for h in dedupe_hits(hits)] == ["1", "3"]


def test_bm25_ranks_matching_page_first_and_is_deterministic():
    docs = [
        ("http://l/1", "Anne Frank diary", "diary of a girl hiding in amsterdam during the war"),
        ("http://l/2", "Cooking", "recipes for pasta and bread"),
        ("http://l/3", "War history", "the second world war in europe"),
    ]
    backend = LocalBM25Search(docs)
    first = backend.search("amsterdam war diary", 3)
    assert first[0].url == "http://l/1" and first.error is None
    assert list(LocalBM25Search(list(reversed(docs))).search("amsterdam war diary", 3)) == list(first)
    assert backend.search("quantum chromodynamics", 3).error == "no results"


ITEMS = [
    WebItem("1", "The Diary of a Young Girl", ("Anne Frank",), 1947, ("memoir", "history", "holocaust")),
    WebItem("2", "Kitchen Confidential", ("Anthony Bourdain",), 2000, ("food", "memoir", "humor")),
    WebItem("3", "Into Thin Air", ("Jon Krakauer",), 1997, ("adventure", "mountaineering", "nonfiction")),
]


def test_record_then_replay_offline(tmp_path):
    pages = build_local_web(ITEMS)
    with WebClient("record", web_dir=tmp_path, local_pages=pages, record_source="local") as web:
        hits = web.search("mountaineering adventure", 3)
        fetched = web.fetch_many([h.url for h in hits])
    assert hits and all(isinstance(p, FetchedPage) for p in fetched)
    # The local server is gone now: replay must serve everything from the archive.
    with WebClient("replay", web_dir=tmp_path) as replay:
        again = replay.search("Mountaineering  adventure", 3)
        assert list(again) == list(hits)
        assert replay.fetch_many([h.url for h in again]) == fetched
        missing = replay.search("never recorded", 3)
        assert list(missing) == [] and "not in the recorded web archive" in missing.error
        assert isinstance(replay.fetch_many(["http://127.0.0.1:1/nope"])[0], FetchError)


def test_off_mode_and_bad_modes(tmp_path):
    with WebClient("off") as web:
        assert web.search("x").error.startswith("web search is off")
        assert isinstance(web.fetch_many(["http://example.com"])[0], FetchError)
    with pytest.raises(InputError):
        WebClient("sometimes")
    with pytest.raises(InputError, match="--web-dir"):
        WebClient("replay")
    with pytest.raises(InputError, match="does not exist"):
        WebClient("replay", web_dir=tmp_path / "nope")


def test_local_search_matches_a_query_typed_without_accents():
    engine = LocalBM25Search([("http://a/1", "Les Misérables", "A novel by Victor Hugo set in Paris."),
                              ("http://a/2", "Moby-Dick", "A whaling novel by Herman Melville."),
                              ("http://a/3", "Dracula", "A novel by Bram Stoker.")])
    assert [h.url for h in engine.search("Miserables")][:1] == ["http://a/1"]


def test_damaged_archive_entries_fail_that_search_or_page_only(tmp_path):
    import json

    pages = build_local_web(ITEMS)
    with WebClient("record", web_dir=tmp_path, local_pages=pages, record_source="local") as web:
        hits = web.search("mountaineering adventure", 3)
        urls = [h.url for h in hits]
        web.fetch_many(urls)
        web.search("kitchen food memoir", 3)
    page_files = sorted((tmp_path / "pages").glob("*.json"))
    search_files = sorted((tmp_path / "searches").glob("*.json"))
    assert len(page_files) >= 2 and len(search_files) == 2
    page_files[0].write_bytes(b"\x89PNG\x00\x01 not json")
    broken = json.loads(page_files[1].read_text())
    page_files[1].write_text(json.dumps({**broken, "status": 500}))
    for f in search_files:  # one search without hits, one whose hits lack keys
        data = json.loads(f.read_text())
        f.write_text(json.dumps({"query": data["query"]} if "mountain" in data["query"] else {**data, "hits": [{"url": 3}]}))
    with WebClient("replay", web_dir=tmp_path) as replay:
        for query in ("mountaineering adventure", "kitchen food memoir"):
            results = replay.search(query, 3)
            assert list(results) == [] and "damaged archive entry" in results.error
        fetched = replay.fetch_many(urls)
    errors = [r.reason for r in fetched if isinstance(r, FetchError)]
    assert any("not JSON" in e for e in errors) and any("not a usable page (HTTP 500" in e for e in errors)


def test_record_makes_its_folder_even_when_nothing_is_found(tmp_path):
    pages = build_local_web(ITEMS)
    with WebClient("record", web_dir=tmp_path / "archive", local_pages=pages, record_source="local"):
        pass
    assert (tmp_path / "archive").is_dir()
    with WebClient("replay", web_dir=tmp_path / "archive") as replay:
        assert "not in the recorded web archive" in replay.search("anything", 3).error


def test_a_doctored_archive_cannot_have_a_file_or_script_url_cited(tmp_path):
    """Replay served any URL an archive held: a file: or javascript: page became cited evidence."""
    from placecell.tools.web.archive import WebArchive

    archive = WebArchive(tmp_path)
    urls = ["file:///etc/passwd", "javascript:alert(1)", "http://user:pw@example.com/", "http://example.com/ok"]
    archive.save_search("q", [{"title": "t", "url": u, "snippet": ""} for u in urls])
    for url in urls:
        archive.save_page(FetchedPage(url, url, 200, "text/html", "t", "page text about mountains"))
    with WebClient("replay", web_dir=tmp_path) as replay:
        fetched = replay.fetch_many([h.url for h in replay.search("q")])
    reasons = [r.reason if isinstance(r, FetchError) else "served" for r in fetched]
    assert reasons == ["refused: scheme 'file' is not http or https", "refused: scheme 'javascript' is not http or https",
                       "refused: credentials in the URL", "served"]
