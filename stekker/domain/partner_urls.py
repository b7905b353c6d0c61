"""Which URLs and addresses we may call a roaming partner at.

A partner names URLs we then fetch (its versions URL, its endpoints, a command's
`response_url`): without a rule it could make our server call anything inside our own
network. Two checks, both pure: `url_problem` on the text of a URL (one rule for the operator
API and the OCPI credentials, so a URL httpx cannot even parse never reaches it), and
`address_problem` on every address a partner's host resolves to, which the outbound guard
applies just before it connects.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

MAX_URL = 255  # OCPI: URL is a string(255)
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as a partner's URL (None: nothing): an absolute http(s) URL
    with a host and no user info, without spaces or control characters, its host a valid
    (IDNA-encodable) name or an IP address, at most 255 characters."""
    if len(url) > MAX_URL:
        return f"a URL is at most {MAX_URL} characters"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "a URL cannot hold spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"not a URL: {exc}"
    del port
    if parts.scheme.lower() not in ("http", "https"):
        return "a URL must start with http:// or https://"
    host = parts.hostname
    if not host:
        return "a URL needs a host"
    if _literal_ip(host) is None:
        problem = _host_problem(host)
        if problem is not None:
            return problem
    if parts.username is not None or parts.password is not None:
        return "a URL cannot carry a user name or password"
    return None


def checked_url(url: str) -> str:
    """`url` as it is when usable, else ValueError with the problem: a pydantic validator for
    every model that takes a partner's URL."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def _host_problem(host: str) -> str | None:
    """A host name as httpx and DNS will take it: ASCII labels of 1-63 letters, digits, hyphens
    (and underscores, which some private names carry), or an IDNA 2008 name (as httpx encodes it)."""
    if host.isascii():
        encoded = host.rstrip(".")
        if not all(_LABEL.match(label) for label in encoded.split(".")):
            return f"the host {host[:60]!r} is not a valid domain name"
    else:
        try:
            encoded = idna.encode(host.lower()).decode()
        except (idna.IDNAError, UnicodeError):
            return f"the host {host[:60]!r} is not a valid international domain name (IDNA)"
    if len(encoded) > 253:
        return "the host name is too long"
    return None


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def address_problem(address: str) -> str | None:
    """Why we must not connect to `address` (an IP address as text), None when it is a public
    unicast address: loopback, link-local (cloud metadata at 169.254.169.254), private,
    shared (carrier NAT), multicast, unspecified, reserved and documentation ranges are not."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"{address[:60]!r} is not an IP address"
    # an IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return f"{ip} is a {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None
