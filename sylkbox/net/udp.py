"""SIP over UDP: one asyncio datagram endpoint per listening socket (RFC 3261 section 18).

The endpoint only moves datagrams; parsing is the job of `sylkbox.sip.parser.parse_message` in the
layer above. Bare CRLF datagrams (keep-alives some user agents send, RFC 5626 section 4.4.1 uses
STUN on UDP and CRLF only on streams) are dropped here.

This module also holds the address helpers shared by the stream adapter and the manager.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

__all__ = [
    "MAX_UDP_PAYLOAD",
    "Address",
    "UdpEndpoint",
    "address_family",
    "normalize_address",
    "open_udp_endpoint",
    "to_address",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]
"""(host, port); an IPv6 host is written without brackets."""

MAX_UDP_PAYLOAD = 65507
"""Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP); larger messages need a stream."""

DatagramHandler = Callable[["UdpEndpoint", bytes, Address], None]


def address_family(host: str) -> socket.AddressFamily | None:
    """The address family of an IP literal, or None when `host` is a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def normalize_address(address: Address) -> Address:
    """Canonical form of an address, used as a dictionary key (compressed IPv6, lower case)."""
    host = address[0].strip("[]")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = host.lower()
    return (host, int(address[1]))


def to_address(sockaddr: Any) -> Address:
    """Turn a socket address (2-tuple for IPv4, 4-tuple for IPv6) into an `Address`."""
    return normalize_address((str(sockaddr[0]), int(sockaddr[1])))


class UdpEndpoint(asyncio.DatagramProtocol):
    """A bound UDP socket carrying SIP datagrams in both directions."""

    def __init__(self, *, on_datagram: DatagramHandler) -> None:
        self._on_datagram = on_datagram
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = asyncio.Event()
        self.local: Address = ("", 0)

    @property
    def family(self) -> socket.AddressFamily:
        """AF_INET or AF_INET6, from the bound address."""
        family = address_family(self.local[0])
        assert family is not None
        return family

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.local = to_address(transport.get_extra_info("sockname"))
        log.debug("udp listening on %s:%d", *self.local)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source = to_address(addr)
        if not data.strip(b"\r\n"):
            log.debug("< udp %s:%d keep-alive (%d bytes), ignored", *source, len(data))
            return
        log.debug("< udp %s:%d %d bytes", *source, len(data))
        self._on_datagram(self, data, source)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors arrive here without the datagram they belong to.
        log.warning("x udp %s:%d socket error: %s", *self.local, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._closed.set()

    def send(self, data: bytes, dest: Address) -> None:
        """Send one datagram; raises ConnectionError when the endpoint is closed."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError(f"udp endpoint {self.local[0]}:{self.local[1]} is closed")
        log.debug("> udp %s:%d %d bytes", dest[0], dest[1], len(data))
        self._transport.sendto(data, dest)

    def close(self) -> None:
        """Close the socket; `wait_closed` returns once it is released."""
        if self._transport is not None:
            self._transport.close()
        else:
            self._closed.set()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        await self._closed.wait()


async def open_udp_endpoint(host: str, port: int, on_datagram: DatagramHandler) -> UdpEndpoint:
    """Bind a UDP socket on an IP literal (IPv6 sockets are v6-only so both families can share
    a port number) and wrap it in a `UdpEndpoint`."""
    family = address_family(host)
    if family is None:
        raise ValueError(f"listening address must be an IP literal, not {host!r}")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host.strip("[]"), port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(on_datagram=on_datagram), sock=sock
    )
    return endpoint
