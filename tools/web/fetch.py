"""A safe page fetcher: `fetch_page(url, ...) -> FetchedPage` or `FetchError` with a one-line reason.

Refuses non-http(s) and loopback/private/link-local/reserved targets on every redirect hop unless
the host is allowed (`safety.py`), caps bytes while streaming and time over the whole exchange
(`transport.py`), accepts HTML and plain text only, honours robots.txt (`robots.py`), extracts
the main text with trafilatura after dropping hidden elements, and caches good pages only:
an error, an empty extraction or a non-2xx status is never written to the cache.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from placecell.tools.kvcache import KVCache, content_key
from placecell.tools.web.robots import ROBOTS, RobotsCache
from placecell.tools.web.safety import FetchError, check_url
from placecell.tools.web.transport import DEFAULT_USER_AGENT, get_capped, make_client
from placecell.tools.web.untrusted import hidden_text_of, instruction_like, strip_hidden_html

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)
ACCEPTED_TYPES = HTML_TYPES + TEXT_TYPES
CACHE_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class FetchedPage:
    url: str
    final_url: str
    status: int
    content_type: str
    title: str
    text: str
    # "instructions" / "hidden_instructions": the page addresses a model (see untrusted.py);
    # evidence selection drops flagged pages.
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FetchedPage":
        fields = {k: data[k] for k in ("url", "final_url", "status", "content_type", "title", "text")}
        return cls(**fields, flags=tuple(data.get("flags", ())))


class PageCache:
    """Disk cache of successfully fetched pages (SQLite via KVCache), with a time-to-live."""

    def __init__(self, path: str | Path, ttl_seconds: float = CACHE_TTL_SECONDS):
        self.kv = KVCache(path, table="web_pages")
        self.ttl = ttl_seconds

    @staticmethod
    def key(url: str) -> str:
        return content_key("page", url)

    def get(self, url: str) -> FetchedPage | None:
        entry = self.kv.get_json(self.key(url))
        if not entry or time.time() - entry.get("fetched_at", 0) > self.ttl:
            return None
        return FetchedPage.from_dict(entry["page"])

    def put(self, page: FetchedPage) -> None:
        if not good_page(page):  # the one gate: broken results never reach the disk
            return
        self.kv.put_json(self.key(page.url), {"fetched_at": time.time(), "page": page.to_dict()})


def good_page(page: FetchedPage) -> bool:
    return 200 <= page.status < 300 and bool(page.text.strip())


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _codec(name: str | None) -> str | None:
    import codecs

    try:
        return codecs.lookup(name).name if name else None
    except LookupError:  # an unknown charset label is ignored, as browsers do
        return None


def page_charset(body: bytes, header_charset: str | None, html: bool) -> str | None:
    """The page's declared encoding, in the order browsers use: a byte-order mark, the HTTP header,
    then (HTML) a `<meta charset>` or `<meta http-equiv=Content-Type>` in the first 4 KB."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    if _codec(header_charset):
        return _codec(header_charset)
    if html:
        from placecell.tools.loaders import _declared_charset  # the same reading as for an HTML file on disk

        found = _declared_charset(body)
        # A meta tag readable as ASCII cannot truly be UTF-16/32 (the page would be in NUL-padded bytes).
        return None if found and found.startswith(("utf-16", "utf-32")) else found
    return None


def _wide(charset: str | None) -> bool:
    return bool(charset) and charset.startswith(("utf-16", "utf-32"))


def _decode(body: bytes, charset: str | None) -> str:
    for enc in (charset, "utf-8"):
        if not enc:
            continue
        try:
            return body.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    # Undeclared and not UTF-8: windows-1252, what browsers assume for such pages. Not guessed
    # (detectors read short Western text as Baltic or Cyrillic codepages); latin-1 takes any byte.
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError:
        return body.decode("latin-1")


# Text has almost no control characters besides tab and newlines; a binary body served as
# text/html without NUL bytes (which the first check catches) has many once decoded.
MAX_CONTROL_SHARE = 0.05
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _control_share(text: str) -> float:
    return len(_CONTROL.findall(text)) / len(text) if text else 0.0


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _plain_text_of(html: str) -> str:
    import lxml.html

    try:
        return lxml.html.fromstring(html).text_content()
    except (ValueError, lxml.etree.ParserError):
        return ""


def extract_text(html: str, url: str = "") -> tuple[str, str]:
    """(title, main text) of an HTML page, hidden elements removed. Short pages that
    trafilatura judges too small fall back to the visible text of the document."""
    import html as html_lib

    import trafilatura

    visible = strip_hidden_html(html)
    text = trafilatura.extract(visible, url=url or None, include_comments=False, include_tables=True, favor_recall=True) or ""
    if not text.strip():
        text = _plain_text_of(visible)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n", text).strip()
    match = _TITLE.search(html)
    title = html_lib.unescape(re.sub(r"\s+", " ", match.group(1))).strip() if match else ""
    return title, text


def _page_from_response(raw, url: str) -> FetchedPage:
    if not 200 <= raw.status < 300:
        raise FetchError(f"HTTP {raw.status}", url)
    charset = page_charset(raw.body, raw.charset, raw.content_type in HTML_TYPES)
    if b"\x00" in raw.body[:2048] and not _wide(charset):  # UTF-16/32 text is full of NUL bytes
        raise FetchError("binary content, not HTML or text", url)
    decoded = _decode(raw.body, charset)
    if _control_share(decoded[:4096]) > MAX_CONTROL_SHARE:
        raise FetchError("binary content, not HTML or text", url)
    if raw.content_type in HTML_TYPES:
        title, text = extract_text(decoded, raw.final_url)
    else:
        title, text = "", decoded.strip()
    if not text:
        raise FetchError("no text could be extracted", url)
    flags = []
    if instruction_like(text):
        flags.append("instructions")
    if raw.content_type in HTML_TYPES and instruction_like(hidden_text_of(decoded)):
        flags.append("hidden_instructions")
    return FetchedPage(url, raw.final_url, raw.status, raw.content_type, title, text, tuple(flags))


def fetch_page(
    url: str,
    *,
    allow_hosts: tuple[str, ...] | list[str] = (),
    timeout: float = 20.0,
    max_bytes: int = 5_000_000,
    user_agent: str = DEFAULT_USER_AGENT,
    max_redirects: int = 5,
    respect_robots: bool = True,
    cache: PageCache | None = None,
    client: httpx.Client | None = None,
    robots: RobotsCache | None = None,
) -> FetchedPage:
    """Fetch one page safely. Raises FetchError (a PlacecellError) with a one-line reason.
    `timeout` bounds the whole exchange, robots.txt lookups included."""
    allow = tuple(allow_hosts)
    deadline = time.monotonic() + timeout
    # Before the cache too: a page cached by a run that allowed its host is not served to one that
    # does not. A host that cannot be resolved now (offline) passed the check when it was cached.
    try:
        check_url(url, allow)
    except FetchError as exc:
        hit = cache.get(url) if cache is not None and exc.reason.startswith("cannot resolve host") else None
        if hit is None:
            raise
        return hit
    if cache is not None:
        hit = cache.get(url)
        if hit is not None:
            return hit
    own_client = client is None
    client = client or make_client(user_agent)

    def robots_allow(hop_url: str, seconds_left: float) -> None:
        # every hop: a redirect must not lead around a Disallow (of this site or another)
        refusal = (robots or ROBOTS).refusal(client, hop_url, allow_hosts=allow, timeout=min(seconds_left, 10.0),
                                             user_agent=user_agent)
        if refusal:
            raise FetchError(refusal, url)

    try:
        raw = get_capped(
            client, url, allow_hosts=allow, deadline=deadline, max_bytes=max_bytes, max_redirects=max_redirects,
            accept_types=ACCEPTED_TYPES, user_agent=user_agent, before_hop=robots_allow if respect_robots else None,
        )
        page = _page_from_response(raw, url)
    finally:
        if own_client:
            client.close()
    if cache is not None:
        cache.put(page)
    return page


def fetch_many(
    urls: list[str],
    *,
    concurrency: int = 4,
    deadline: float | None = None,
    **kwargs,
) -> list[FetchedPage | FetchError]:
    """Fetch pages in parallel (at most `concurrency` at once), one result per URL in input
    order: a FetchedPage or the FetchError that explains the failure. Never raises for a page.
    `deadline` (a `time.monotonic()` value) bounds the whole batch, not just each page: a page
    starts with at most the time left, and pages not started by then are skipped, so a result list
    of slow pages costs one budget, not 20 s per four pages."""
    unique = list(dict.fromkeys(urls))
    user_agent = kwargs.get("user_agent", DEFAULT_USER_AGENT)
    per_page_timeout = kwargs.pop("timeout", 20.0)
    results: dict[str, FetchedPage | FetchError] = {}
    lock = threading.Lock()

    with make_client(user_agent) as client:

        def one(u: str) -> None:
            left = per_page_timeout if deadline is None else min(per_page_timeout, deadline - time.monotonic())
            try:
                if left <= 0:
                    raise FetchError("skipped: the fetch time budget was used up", u)
                outcome: FetchedPage | FetchError = fetch_page(u, client=client, timeout=left, **kwargs)
            except FetchError as exc:
                outcome = exc
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError covers UnicodeError
                # what slips past fetch_page's own checks must not cost the other pages
                outcome = FetchError(f"fetch failed: {type(exc).__name__}: {str(exc)[:120]}", u)
            with lock:
                results[u] = outcome

        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="fetch") as pool:
            list(pool.map(one, unique))
    return [results[u] for u in urls]
