"""Our address as one peer reaches it, for Contact, Via, SDP ``c=``/``o=``, MSRP paths and URLs.

With ``[sip] bind`` unspecified (``0.0.0.0`` or ``::``) and no ``[sip] advertised_address``, one
box-wide address is wrong: a LAN without a default route would be told ``127.0.0.1``, a peer on a
second link would get the first link's address, and after a DHCP change every new Contact would
name a dead address while the Bonjour records (which follow the links) are right (issue 5).
So the address is chosen per peer: the source address the kernel would use to reach it (route
lookup and RFC 6724 source address selection), found by ``connect()`` on a UDP socket and
``getsockname()``: nothing is sent. It is computed when needed and kept a short while (`ttl`) per
peer host, so that an address change is followed within `ttl` seconds.

When no peer is known (or the peer is a host name, which is not resolved here: that would block),
the default route's source address is used, else loopback. A configured advertised address, or a
specific bind address, is used for every peer, as before.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable

__all__ = ["DEFAULT_TTL", "LocalAddresses", "source_address"]

log = logging.getLogger(__name__)

DEFAULT_TTL = 2.0
MAX_ENTRIES = 1024
# RFC 5737 / RFC 3849 documentation addresses: only routed by a default route
_PROBES = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
_LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def source_address(peer: str) -> str | None:
    """The local address the kernel picks to send to `peer` (an IP literal), None when there is
    no route. ``connect()`` on a UDP socket only selects the route and source: nothing is sent."""
    ip = ipaddress.ip_address(peer)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((peer, 9))
            host = str(sock.getsockname()[0])
        except OSError:
            return None
    host = host.split("%", 1)[0]  # a link-local source comes with its zone: not for a URI
    return None if ipaddress.ip_address(host).is_unspecified else host


class LocalAddresses:
    """Picks the address to give a peer (see the module docstring).

    `bind`: the SIP bind address; `advertised`: ``[sip] advertised_address`` ("" when unset).
    `clock` is injectable for tests (monotonic seconds).
    """

    def __init__(
        self,
        *,
        bind: str,
        advertised: str = "",
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bound = ipaddress.ip_address(bind.strip("[]"))
        self._family = socket.AF_INET6 if bound.version == 6 else socket.AF_INET
        self._fixed = advertised or (None if bound.is_unspecified else str(bound))
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    @property
    def per_peer(self) -> bool:
        """True when the address depends on the peer (nothing configured, wildcard bind)."""
        return self._fixed is None

    def for_peer(self, peer_host: str | None) -> str:
        """Our address as `peer_host` (an IP literal, brackets allowed) reaches it; the default
        address when `peer_host` is None, empty or a host name."""
        if self._fixed is not None:
            return self._fixed
        ip = _parse(peer_host)
        if ip is None:
            return self.default()
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 peer on a dual-stack socket sees our IPv4 address
        key = str(ip)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        address = source_address(key)
        if address is None:
            log.debug("no route to %s: using the default address", key)
            address = self._default(socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
        self._remember(key, address, now)
        return address

    def default(self) -> str:
        """The address when no peer is known: the default route's source, else loopback
        (in the bind address's family)."""
        if self._fixed is not None:
            return self._fixed
        return self._default(self._family)

    def _default(self, family: socket.AddressFamily) -> str:
        key = f"default/{family.name}"
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        address = source_address(_PROBES[family]) or _LOOPBACK[family]
        self._remember(key, address, now)
        return address

    def _remember(self, key: str, address: str, now: float) -> None:
        if len(self._cache) >= MAX_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = (address, now + self._ttl)


def _parse(host: str | None) -> _IP | None:
    if not host:
        return None
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
