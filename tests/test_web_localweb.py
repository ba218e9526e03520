"""The local web: deterministic pages from metadata only, distractors, injections, served on 127.0.0.1."""

from __future__ import annotations

import httpx

from placecell.tools.web.client import WebClient
from placecell.tools.web.fetch import FetchedPage
from placecell.tools.web.localweb import (
    LocalWebServer,
    WebItem,
    build_local_web,
    default_injection_count,
    page_routes,
    pick_injection_target,
)

ITEMS = [
    WebItem(str(i), f"Book Number {i}", (f"Author {i}",), 1990 + i, (f"tag{i}", "memoir", "history"), f"About book {i}.")
    for i in range(12)
]


def test_build_is_deterministic_and_counts_are_fixed():
    a = build_local_web(ITEMS, injections=3)
    b = build_local_web(list(reversed(ITEMS)), injections=3)
    assert a == b
    kinds = [p.kind for p in a]
    assert kinds.count("item") == 12 and kinds.count("distractor") == 12 and kinds.count("injection") == 3
    assert len({p.path for p in a}) == len(a)
    assert default_injection_count(399) == 19 and default_injection_count(10) == 3


def test_item_pages_hold_metadata_only_and_the_same_template():
    pages = {p.item_id: p for p in build_local_web(ITEMS, distractors=False)}
    page = pages["3"]
    for fact in ("Book Number 3", "Author 3", "1993", "tag3", "About book 3."):
        assert fact in page.text
    skeleton = {pid: p.text.replace(f"Book Number {pid}", "T").replace(f"Author {pid}", "A")
                .replace(str(1990 + int(pid)), "Y").replace(f"tag{pid}", "G").replace(f"book {pid}", "b")
                for pid, p in pages.items()}
    assert len(set(skeleton.values())) == 1


def test_injection_pages_target_one_item_visibly_or_hidden():
    target = pick_injection_target(ITEMS)
    inj = [p for p in build_local_web(ITEMS, injections=4) if p.kind == "injection"]
    assert all(target.title in p.text for p in inj)
    assert "Ignore previous instructions" in inj[0].text and not inj[0].hidden
    assert "Ignore previous instructions" not in inj[1].text and "SYSTEM:" in inj[1].hidden


def test_server_serves_pages_and_robots_and_stops():
    pages = build_local_web(ITEMS[:2])
    with LocalWebServer(page_routes(pages)) as srv:
        base = srv.base_url
        assert httpx.get(srv.url(pages[0].path)).status_code == 200
        assert "Disallow: /private/" in httpx.get(srv.url("/robots.txt")).text
        assert httpx.get(srv.url("/nope")).status_code == 404
    try:
        httpx.get(base + "/robots.txt", timeout=1)
        assert False, "server still running"
    except httpx.HTTPError:
        pass


def test_local_mode_searches_and_fetches_through_the_safe_fetcher():
    pages = build_local_web(ITEMS, injections=3)
    with WebClient("local", local_pages=pages) as web:
        hits = web.search("tag5 memoir", 4)
        results = web.fetch_many([h.url for h in hits])
    assert hits[0].title.startswith("Book Number 5")
    assert all(isinstance(r, FetchedPage) for r in results)
    flagged = [r for r in results if r.flags]
    assert all("/deals/" in r.url for r in flagged)


def test_the_same_local_web_gets_the_same_urls_in_every_run():
    """Evidence URLs (and the explanation prompt that quotes them) repeat from run to run; a second
    copy running at the same time falls back to another port and still serves."""
    pages = build_local_web(ITEMS, injections=3)
    with WebClient("local", local_pages=pages) as web:
        first = [h.url for h in web.search("tag5 memoir", 4)]
        with WebClient("local", local_pages=pages) as twin:  # the stable port is taken by `web`
            twin_urls = [h.url for h in twin.search("tag5 memoir", 4)]
            assert all(isinstance(r, FetchedPage) for r in twin.fetch_many(twin_urls))
    with WebClient("local", local_pages=pages) as again:
        second = [h.url for h in again.search("tag5 memoir", 4)]
    with WebClient("local", local_pages=build_local_web(ITEMS[:6])) as other:
        other_urls = [h.url for h in other.search("tag5 memoir", 4)]
    port = lambda urls: {httpx.URL(u).port for u in urls}  # noqa: E731
    assert first == second and len(port(first)) == 1
    assert port(twin_urls) != port(first) and port(other_urls) != port(first)
