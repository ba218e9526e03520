"""Which URLs a fetch may reach: http(s) only, and no loopback/private/link-local/reserved targets.

The check resolves the host and looks at *every* address it resolves to (a name with one public
and one private address is refused), and the fetcher repeats it on each redirect hop, so a public
page cannot bounce the fetcher to `http://127.0.0.1/` or a cloud metadata address.
Hosts in `allow_hosts` skip the address check (tests and the offline eval pass `127.0.0.1`).

Residual risk, stated: the fetcher connects by name after the check, so a DNS server that answers
differently within the same second (rebinding) is not covered. Pinning the connection to the
checked address would need a custom transport; not done here.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from placecell.errors import PlacecellError

ALLOWED_SCHEMES = ("http", "https")


class FetchError(PlacecellError):
    """A page that was refused or could not be fetched; the message is one line naming why."""

    def __init__(self, message: str, url: str = ""):
        super().__init__(f"{message} ({url})" if url else message)
        self.reason = message
        self.url = url


def _normalise_host(host: str) -> str:
    """Lower case, without brackets or a trailing dot; a name in other scripts in its IDNA form, so
    `bücher.intern` and `xn--bcher-kva.intern` are one host."""
    name = host.strip().strip("[]").lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return name


def _allow_entry(entry: str) -> tuple[str, int | None]:
    """An --allow-host entry as (host, port): `HOST` allows every port, `HOST:PORT` and
    `[IPV6]:PORT` one port; a bare IPv6 address (`::1`) allows every port."""
    entry = entry.strip()
    if entry.startswith("[") and "]:" in entry:
        host, _, port = entry[1:].partition("]:")
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        return _normalise_host(entry), None
    return _normalise_host(host), int(port) if port.isdigit() else -1  # -1: a bad port matches nothing


_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")


def allow_host_problem(entry: str) -> str | None:
    """Why an --allow-host entry can match no URL (a typo would otherwise be ignored in silence and the
    fetch refused later with advice to pass the same flag), or None for HOST, HOST:PORT, IPV6 or
    [IPV6]:PORT."""
    if not isinstance(entry, str) or not entry.strip():
        return "is empty; give a host such as 127.0.0.1 or 127.0.0.1:8000"
    text = entry.strip()
    if "/" in text or "@" in text:
        return "is not a host: give the host (and port) alone, e.g. 127.0.0.1:8000, not a URL"
    if "*" in text:
        return "has a wildcard; give each host (and port) to allow"
    if text.startswith("[") and "]:" not in text and not text.endswith("]"):
        return "has an unclosed ["
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    host, port = _allow_entry(text)
    if port == -1 or (port is not None and not 1 <= port <= 65535):
        return "has a port that is not 1-65535"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host or set(host) - _HOST_CHARS or ":" in host:  # host is in its IDNA form (_normalise_host)
        return "is not a host name or IP address"
    return None


def check_allow_hosts(entries, option: str = "--allow-host") -> list[str]:
    """The entries, or PlacecellError naming the first one that can match nothing."""
    from placecell.errors import InputError

    entries = list(entries or [])
    for entry in entries:
        problem = allow_host_problem(entry)
        if problem:
            raise InputError(f"{option} {entry!r} {problem}")
    return entries


def host_is_allowed(host: str, allow_hosts: tuple[str, ...] | list[str], port: int | None = None) -> bool:
    """True when `host` (on `port`) is listed in allow_hosts (names compared case-insensitively)."""
    wanted = _normalise_host(host)
    for entry in allow_hosts:
        name, allowed_port = _allow_entry(entry)
        if name == wanted and (allowed_port is None or allowed_port == port):
            return True
    return False


def _allow_hint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be fetched, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address: mapped (::ffff:a.b.c.d), 6to4 (2002:aabb:ccdd::)
        # and Teredo (its client address); each is as unsafe as the address it carries.
        if ip.ipv4_mapped is not None:
            return address_problem(ip.ipv4_mapped)
        if ip.sixtofour is not None and (inner := address_problem(ip.sixtofour)):
            return f"{inner} (in a 6to4 address)"
        if ip.teredo is not None and (inner := address_problem(ip.teredo[1])):
            return f"{inner} (in a Teredo address)"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-public address"
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}") from None
    return sorted({info[4][0] for info in infos})


MAX_URL_CHARS = 2048  # longer "URLs" from a search result are junk (and httpx refuses them)


def parse_url(url: str):
    """`urlsplit(url)`, or FetchError for text that is no URL at all: too long, with control
    characters, or unparseable (`http://[::1`). Search results are untrusted input."""
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"malformed URL: longer than {MAX_URL_CHARS} characters", url[:80] + "...")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise FetchError("malformed URL: contains control characters", url.encode("unicode_escape").decode()[:200])
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed lazily; raises ValueError for a bad port
    except ValueError as exc:
        raise FetchError(f"malformed URL: {exc}", url) from None
    return parts


def check_form(url: str):
    """The parsed URL, or FetchError unless it is an http(s) URL with a host and no credentials: the
    part of the check that needs no name lookup (replayed archive entries get this much, so an edited
    archive cannot have a `file:` or `javascript:` URL cited as a source)."""
    parts = parse_url(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError(f"refused: scheme {scheme or '(none)'!r} is not http or https", url)
    if not parts.hostname:
        raise FetchError("refused: URL has no host", url)
    if parts.username or parts.password:
        raise FetchError("refused: credentials in the URL", url)
    return parts


def check_url(url: str, allow_hosts: tuple[str, ...] | list[str] = ()) -> None:
    """Raise FetchError unless `url` is http(s) and every address of its host is public
    (or the host is in allow_hosts)."""
    parts = check_form(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    port = parts.port or (443 if scheme == "https" else 80)
    if host_is_allowed(host, allow_hosts, port):
        return
    for addr in resolve_host(host, port):
        problem = address_problem(ipaddress.ip_address(addr.split("%", 1)[0]))
        if problem:
            raise FetchError(
                f"refused: {host} resolves to {'an' if problem[0] in 'aeiou' else 'a'} {problem} ({addr}); pass --allow-host {_allow_hint(host, port)} to "
                "allow it",
                url,
            )
