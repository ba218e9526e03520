"""One capped HTTP GET: redirects followed by hand so every hop passes the address check,
a byte cap enforced while streaming, and one deadline for the whole exchange.

httpx's own `follow_redirects` would connect to the next hop before we could look at it, and its
timeouts are per operation (a server that sends one byte every few seconds never trips them, and
a read that starts just before the deadline may wait a whole timeout past it), hence the manual
loop and a watchdog that shuts the socket down at the deadline.

Bodies are read raw and decompressed here, with the cap applied to the *output* of each step:
httpx decodes a whole compressed chunk at once, so a 2 KB gzip bomb (1 GiB of zeros, gzipped
twice) made it allocate gigabytes before any cap could look at the size. Only identity, gzip
and deflate are asked for and accepted, and one of them at a time.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urljoin

import httpx

from placecell.tools.web.safety import FetchError, check_url, host_is_allowed, parse_url

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


ACCEPT_ENCODING = "gzip, deflate"


class _OverCap(Exception):
    pass


class _BoundedDecoder:
    """Content-Encoding undone chunk by chunk, never producing more than the bytes still allowed."""

    def __init__(self, header: str, url: str):
        codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(f"content encoding {header.strip()!r} is not supported (identity, gzip or deflate)", url)
        self.coding = codings[0] if codings else None
        self.url = url
        self._fresh = True
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.coding in ("gzip", "x-gzip") else zlib.MAX_WBITS)

    def feed(self, data: bytes, allowed: int) -> bytes:
        """The decoded bytes of `data`; _OverCap when they would exceed `allowed`."""
        if self.coding is None:
            out = data
        else:
            try:
                out = self._inflater.decompress(data, allowed + 1)
            except zlib.error:
                if not (self.coding == "deflate" and self._fresh):
                    raise FetchError(f"damaged {self.coding} body", self.url) from None
                # "deflate" without its zlib header, which some servers send
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                try:
                    out = self._inflater.decompress(data, allowed + 1)
                except zlib.error:
                    raise FetchError("damaged deflate body", self.url) from None
            if self._inflater.unconsumed_tail:  # more output is waiting than the cap allows
                raise _OverCap
        self._fresh = False
        if len(out) > allowed:
            raise _OverCap
        return out


class Watchdog:
    """Shuts the response's socket down at the deadline: a read blocked in recv() returns at once
    (closing the response from another thread would not wake it). A body without Content-Length
    then simply ends, so `fired` is what tells a cut body from a complete one."""

    def __init__(self, resp: httpx.Response, deadline: float):
        self.fired = False
        stream = resp.extensions.get("network_stream")
        self._sock = stream.get_extra_info("socket") if stream is not None else None
        self._timer = None
        if self._sock is not None:
            self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._shut)
            self._timer.daemon = True
            self._timer.start()

    def _shut(self) -> None:
        self.fired = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _read_capped(resp: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"page is {int(declared)} bytes, over the {max_bytes}-byte cap", url)
    decoder = _BoundedDecoder(resp.headers.get("content-encoding", ""), url)
    chunks: list[bytes] = []
    size = raw_size = 0
    watchdog = Watchdog(resp, deadline)
    try:
        for chunk in resp.iter_raw():
            raw_size += len(chunk)
            try:
                if raw_size > max_bytes:
                    raise _OverCap
                out = decoder.feed(chunk, max_bytes - size)
            except _OverCap:
                raise FetchError(f"page is over the {max_bytes}-byte cap", url) from None
            size += len(out)
            _remaining(deadline, url)
            chunks.append(out)
    except httpx.HTTPError:
        if watchdog.fired:
            raise FetchError("timed out", url) from None
        raise
    finally:
        watchdog.cancel()
    if watchdog.fired:  # a body with no length, cut by the watchdog, looks complete
        raise FetchError("timed out", url)
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
    deadline: float | None = None,
    before_hop: Callable[[str, float], None] | None = None,
) -> RawResponse:
    """GET `url` following at most `max_redirects` checked redirects. Raises FetchError for a
    refused target, a redirect loop, an over-size or over-time body, or (when `accept_types` is
    given) a content type not in it. Non-2xx statuses are returned, not raised. `deadline` (a
    `time.monotonic()` value) overrides `timeout`; `before_hop(url, seconds_left)` runs before
    each request, redirects included, and may raise FetchError (the robots.txt check)."""
    deadline = deadline if deadline is not None else time.monotonic() + timeout
    headers = {"Accept-Encoding": ACCEPT_ENCODING, **({"User-Agent": user_agent} if user_agent else {})}
    seen: set[str] = set()
    current = url
    exempt = tuple(allow_hosts)
    for hop in range(max_redirects + 1):
        check_url(current, exempt)
        # A host outside the allow list (a public page) cannot send the fetcher into one inside it:
        # after such a hop, every later hop gets the full address check.
        parts = parse_url(current)
        if not host_is_allowed(parts.hostname or "", exempt, parts.port or (443 if parts.scheme == "https" else 80)):
            exempt = ()
        seen.add(current)
        if before_hop is not None:
            before_hop(current, _remaining(deadline, url))
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
                if resp.status_code == 204 and accept_types is not None:  # a page; an empty robots.txt is no rule
                    raise FetchError("empty response (HTTP 204 No Content)", url)
                if accept_types is not None and resp.status_code < 300 and media not in accept_types:
                    raise FetchError(f"content type {media or '(none)'!r} is not HTML or text", url)
                body = _read_capped(resp, url, max_bytes, deadline)
                return RawResponse(url, current, resp.status_code, media, charset, body)
        except httpx.TimeoutException:
            raise FetchError("timed out", url) from None
        except httpx.RemoteProtocolError as exc:  # the server answered, but not in HTTP httpx can read
            if "disconnected" in str(exc).lower():  # or it hung up first: the connection failed
                raise FetchError(f"connection failed: {type(exc).__name__}: {exc}", url) from None
            raise FetchError(f"malformed response from the server: {exc}".rstrip(": ")[:200], url) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"connection failed: {type(exc).__name__}: {exc}".rstrip(": "), url) from None
        except httpx.InvalidURL as exc:  # not an HTTPError: a Location httpx cannot parse
            raise FetchError(f"malformed URL in the response: {str(exc)[:120]}", url) from None
    raise FetchError(f"more than {max_redirects} redirects", url)
