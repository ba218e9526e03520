"""One capped HTTP GET: redirects followed by hand so every hop passes the address check,
a byte cap enforced while streaming, and one deadline for the whole exchange.

httpx's own `follow_redirects` would connect to the next hop before we could look at it, and its
timeouts are per operation (a server that sends one byte every few seconds never trips them),
hence the manual loop and the deadline checked between chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from placecell.tools.web.safety import FetchError, check_url

DEFAULT_USER_AGENT = "placecell/0.1 (local-first research assistant)"
REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class RawResponse:
    url: str
    final_url: str
    status: int
    content_type: str  # media type only, lower case, no parameters
    charset: str | None
    body: bytes


def split_content_type(header: str) -> tuple[str, str | None]:
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"' ").lower()
    return media.strip().lower(), charset


def make_client(user_agent: str = DEFAULT_USER_AGENT) -> httpx.Client:
    """A client that never follows redirects itself and ignores proxy env variables
    (a proxy would hide the real target from the address check)."""
    return httpx.Client(follow_redirects=False, trust_env=False, headers={"User-Agent": user_agent})


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timed out", url)
    return left


def _read_capped(resp: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"page is {int(declared)} bytes, over the {max_bytes}-byte cap", url)
    chunks: list[bytes] = []
    size = 0
    # iter_bytes yields decoded bytes, so the cap also bounds gzip bombs.
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"page is over the {max_bytes}-byte cap", url)
        _remaining(deadline, url)
        chunks.append(chunk)
    return b"".join(chunks)


def get_capped(
    client: httpx.Client,
    url: str,
    *,
    allow_hosts: tuple[str, ...] = (),
    timeout: float = 20.0,
    max_bytes: int = 5_000_000,
    max_redirects: int = 5,
    accept_types: tuple[str, ...] | None = None,
    user_agent: str | None = None,
) -> RawResponse:
    """GET `url` following at most `max_redirects` checked redirects. Raises FetchError for a
    refused target, a redirect loop, an over-size or over-time body, or (when `accept_types` is
    given) a content type not in it. Non-2xx statuses are returned, not raised."""
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": user_agent} if user_agent else {}
    seen: set[str] = set()
    current = url
    for hop in range(max_redirects + 1):
        check_url(current, allow_hosts)
        seen.add(current)
        per_op = httpx.Timeout(_remaining(deadline, url))
        try:
            with client.stream("GET", current, headers=headers, timeout=per_op) as resp:
                if resp.status_code in REDIRECT_CODES:
                    location = resp.headers.get("location")
                    if not location:
                        raise FetchError(f"HTTP {resp.status_code} redirect without a Location", url)
                    nxt = urljoin(current, location)
                    if nxt in seen:
                        raise FetchError("redirect loop", url)
                    current = nxt
                    continue
                media, charset = split_content_type(resp.headers.get("content-type", ""))
                if accept_types is not None and resp.status_code < 300 and media not in accept_types:
                    raise FetchError(f"content type {media or '(none)'!r} is not HTML or text", url)
                body = _read_capped(resp, url, max_bytes, deadline)
                return RawResponse(url, current, resp.status_code, media, charset, body)
        except httpx.TimeoutException:
            raise FetchError("timed out", url) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"connection failed: {type(exc).__name__}: {exc}".rstrip(": "), url) from None
    raise FetchError(f"more than {max_redirects} redirects", url)
