"""Webhook targets: which URLs may be called (server-side request forgery).

A target is an http(s) URL whose host resolves only to public addresses, checked when a
webhook is created and again before every delivery (a name may resolve elsewhere later).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from api.errors import Unprocessable


class UnsafeTarget(ValueError):
    """A webhook URL that must not be called."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 smuggled in IPv6 (::ffff:127.0.0.1, 6to4, Teredo) is judged as that IPv4.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not _is_public(embedded):
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # also shared (100.64/10), documentation, benchmarking ranges
    )


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UnsafeTarget when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeTarget("must name a host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def public_addresses(url: str) -> list[str]:
    """The addresses the URL's host resolves to, refusing it when any of them is not public.

    Every address must be public, not just the first: a resolver may answer in any order.
    """
    _scheme, host, port = split_target(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeTarget(f"host {host!r} does not resolve") from None
        candidates = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not candidates:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    for address in candidates:
        if not _is_public(address):
            raise UnsafeTarget(
                f"resolves to a loopback, private, link-local or otherwise non-public address "
                f"({address})"
            )
    return [str(address) for address in candidates]


def check_target(url: str, allow_private: bool) -> None:
    """422 (naming the `url` field) unless the URL is http(s) and, unless allowed, public.

    Resolves the host (up to the resolver's timeout): call it before any write transaction."""
    try:
        split_target(url)
        if not allow_private:
            public_addresses(url)
    except UnsafeTarget as error:
        raise Unprocessable(
            f"url: {error}", [{"loc": ["body", "url"], "msg": str(error)}]
        ) from None
