"""robots.txt, fetched once per host and cached for the process (RFC 9309 reading rules).

- 2xx: parsed; 4xx (no robots.txt): everything allowed; 5xx, a refused target or a network
  error: everything disallowed (RFC 9309 2.3.1.4: treat an unreachable robots.txt as complete
  disallow; the page fetch would most likely fail anyway).
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from placecell.tools.web.safety import FetchError
from placecell.tools.web.transport import DEFAULT_USER_AGENT, get_capped

ROBOTS_MAX_BYTES = 512_000  # RFC 9309 asks parsers to read at least 500 KiB


def _agent_token(user_agent: str) -> str:
    # "placecell/0.1 (...)" -> "placecell": robots.txt groups name the product token only.
    return user_agent.split("/", 1)[0].split()[0]


class RobotsCache:
    """Thread-safe per-origin cache of parsed robots.txt files."""

    def __init__(self) -> None:
        self._parsers: dict[str, RobotFileParser] = {}
        self._unreachable: dict[str, str] = {}  # origin -> why its robots.txt could not be read
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

    def _origin_lock(self, origin: str) -> threading.Lock:
        with self._lock:
            return self._origin_locks.setdefault(origin, threading.Lock())

    def _load(self, client: httpx.Client, origin: str, allow_hosts: tuple[str, ...], timeout: float, user_agent: str) -> RobotFileParser:
        parser = RobotFileParser()
        self._unreachable.pop(origin, None)  # from an earlier lookup that timed out
        try:
            raw = get_capped(
                client, f"{origin}/robots.txt", allow_hosts=allow_hosts, timeout=timeout,
                max_bytes=ROBOTS_MAX_BYTES, user_agent=user_agent,
            )
        except FetchError as exc:
            parser.disallow_all = True
            self._unreachable[origin] = exc.reason
            return parser
        if 200 <= raw.status < 300:
            parser.parse(raw.body.decode("utf-8", errors="replace").splitlines())
        elif 400 <= raw.status < 500:
            parser.allow_all = True
        else:
            parser.disallow_all = True
            self._unreachable[origin] = f"HTTP {raw.status}"
        return parser

    def refusal(
        self,
        client: httpx.Client,
        url: str,
        *,
        allow_hosts: tuple[str, ...] = (),
        timeout: float = 10.0,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> str | None:
        """Why robots.txt forbids fetching `url`, or None when it may be fetched."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._origin_lock(origin):
            parser = self._parsers.get(origin)
            if parser is None:
                parser = self._load(client, origin, allow_hosts, timeout, user_agent)
                # A lookup cut short by the page's own time budget says nothing about the site:
                # the next page of this origin asks again.
                if not _transient(self._unreachable.get(origin)):
                    self._parsers[origin] = parser
            why = self._unreachable.get(origin)  # read under the lock: another page's lookup may clear it
        if parser.can_fetch(_agent_token(user_agent), url):
            return None
        if _transient(why) and why != "timed out":
            return why  # the site itself cannot be reached: no robots.txt policy involved
        if why:
            return f"robots.txt unreachable ({why}), treated as disallow"
        return "disallowed by robots.txt"

    def clear(self) -> None:
        with self._lock:
            self._parsers.clear()
            self._unreachable.clear()


def _transient(reason: str | None) -> bool:
    """A lookup that says nothing about the site's policy (time ran out, the host was down or did not
    resolve): not remembered, so the next page of this origin asks again."""
    return bool(reason) and reason.startswith(("timed out", "connection failed", "cannot resolve host"))


ROBOTS = RobotsCache()
