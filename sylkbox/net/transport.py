"""The SIP transport manager: every listening socket and connection, one `send` for all of them.

RFC 3261 section 18 asks a transport layer to send requests and responses over UDP, TCP and TLS,
to reuse an existing connection to a peer (18.1.1, 18.2.2: responses go back over the connection
the request came in on) and to report transport errors to the transaction layer (18.4). Here:

* connections are indexed by (transport, remote address), inbound and outbound alike, so a
  response addressed to the request's source address reuses the inbound connection;
* `send` never blocks: a missing TCP/TLS connection is opened in the background, the data queued
  until it is up; failures go to `on_send_error(dest, transport, error)`, once per message
  that could not be sent, always from a fresh loop callback (never from inside `send`);
* the source address of every message goes to `on_message`, for Via received/rport (18.2.1).

Nothing here parses SIP beyond the stream framer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sylkbox.net.stream import StreamConnection
from sylkbox.net.udp import (
    MAX_UDP_PAYLOAD,
    Address,
    UdpEndpoint,
    address_family,
    normalize_address,
    open_udp_endpoint,
)
from sylkbox.sip.parser import ParserLimits

__all__ = [
    "TRANSPORTS",
    "ConnectionInfo",
    "MessageHandler",
    "SendErrorHandler",
    "SipTransports",
    "TransportLimits",
    "default_client_ssl_context",
]

log = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportLimits:
    """Resource limits of the transport layer."""

    parser: ParserLimits = field(default_factory=ParserLimits)
    idle_timeout: float | None = 600.0
    """Inbound stream connections without traffic for this long are closed (None: never)."""
    write_high_water: int = 1 << 20
    """A connection whose unsent data exceeds this many bytes is closed."""
    connect_timeout: float = 10.0
    """Outbound TCP connect plus TLS handshake."""
    tls_handshake_timeout: float = 10.0
    """Inbound TLS handshake."""
    close_timeout: float = 2.0
    """How long `close()` lets connections flush before aborting them."""

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "tls_handshake_timeout", "close_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive or None")
        if self.write_high_water <= 0:
            raise ValueError("write_high_water must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """Where a message came from and over what."""

    transport: str
    local: Address
    remote: Address
    connection_id: int | None = None
    """Stream connection number, None for UDP."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}")

    @property
    def secure(self) -> bool:
        """True for TLS (the sips/secure flag of RFC 3261 section 26.2)."""
        return self.transport == "tls"


MessageHandler = Callable[[bytes, Address, str, ConnectionInfo], None]
SendErrorHandler = Callable[[Address, str, Exception], None]


def default_client_ssl_context() -> ssl.SSLContext:
    """TLS client context that does not verify the peer: LAN appliance, self-signed peers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SipTransports:
    """UDP, TCP and TLS listeners and connections for SIP, on IPv4 and IPv6."""

    def __init__(
        self,
        on_message: MessageHandler,
        *,
        limits: TransportLimits | None = None,
        on_send_error: SendErrorHandler | None = None,
        client_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_send_error = on_send_error
        self._limits = limits if limits is not None else TransportLimits()
        self._client_ssl = client_ssl_context or default_client_ssl_context()
        self._udp: list[UdpEndpoint] = []
        self._servers: list[asyncio.Server] = []
        self._local: dict[tuple[str, int], Address] = {}
        self._connections: dict[tuple[str, Address], StreamConnection] = {}
        self._all: set[StreamConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False

    # listening

    async def listen_udp(self, host: str, port: int) -> Address:
        """Listen for SIP over UDP; returns the bound address (port 0 picks one)."""
        self._check_open()
        endpoint = await open_udp_endpoint(host, port, self._datagram_received)
        self._udp.append(endpoint)
        self._local.setdefault(("udp", endpoint.family), endpoint.local)
        return endpoint.local

    async def listen_tcp(self, host: str, port: int) -> Address:
        """Listen for SIP over TCP; returns the bound address."""
        return await self._listen_stream("tcp", host, port, None)

    async def listen_tls(self, host: str, port: int, ssl_context: ssl.SSLContext) -> Address:
        """Listen for SIP over TLS with a server-side `ssl_context`; returns the bound address."""
        return await self._listen_stream("tls", host, port, ssl_context)

    async def _listen_stream(
        self, transport: str, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> Address:
        self._check_open()
        family = address_family(host)
        if family is None:
            raise ValueError(f"listening address must be an IP literal, not {host!r}")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: self._new_connection(transport, inbound=True),
            host.strip("[]"),
            port,
            family=family,
            ssl=ssl_context,
            ssl_handshake_timeout=self._limits.tls_handshake_timeout if ssl_context else None,
        )
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        bound = normalize_address((sockname[0], sockname[1]))
        self._local.setdefault((transport, family), bound)
        log.debug("%s listening on %s:%d", transport, *bound)
        return bound

    def local_address(self, transport: str, family: int) -> Address:
        """The first listening address for `transport` and `family`, for Via and Contact.

        A wildcard bind returns the wildcard address; the caller substitutes the advertised one.
        Raises LookupError when nothing listens there.
        """
        try:
            return self._local[(transport, family)]
        except KeyError:
            name = socket.AddressFamily(family).name
            raise LookupError(f"no {transport} listener for {name}") from None

    # sending

    def send(self, data: bytes, dest: Address, transport: str) -> None:
        """Send one SIP message; never blocks, errors go to `on_send_error` (RFC 3261 18.4)."""
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        if self._closed:
            self._report(dest, transport, ConnectionError("transports are closed"))
        elif transport == "udp":
            self._send_udp(data, dest)
        else:
            self._send_stream(data, dest, transport)

    def _send_udp(self, data: bytes, dest: Address) -> None:
        if len(data) > MAX_UDP_PAYLOAD:
            self._report(dest, "udp", ValueError(f"{len(data)} bytes is too large for UDP"))
            return
        family = address_family(dest[0])
        if family is None:
            self._spawn(self._resolve_and_send_udp(data, dest))
            return
        self._sendto(data, normalize_address(dest), family, dest)

    def _sendto(
        self, data: bytes, target: Address, family: socket.AddressFamily, dest: Address
    ) -> None:
        endpoint = next((e for e in self._udp if e.family == family), None)
        if endpoint is None:
            self._report(dest, "udp", ConnectionError(f"no udp listener for {family.name}"))
            return
        try:
            endpoint.send(data, target)
        except OSError as exc:
            self._report(dest, "udp", exc)

    async def _resolve_and_send_udp(self, data: bytes, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(dest[0], dest[1], type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("x udp %s:%d: cannot resolve: %s", *dest, exc)
            self._report(dest, "udp", exc)
            return
        families = {e.family for e in self._udp}
        for family, _, _, _, sockaddr in infos:
            if family in families:
                self._sendto(data, (str(sockaddr[0]), int(sockaddr[1])), family, dest)
                return
        self._report(dest, "udp", ConnectionError(f"no udp listener for any address of {dest[0]}"))

    def _send_stream(self, data: bytes, dest: Address, transport: str) -> None:
        key = (transport, normalize_address(dest))
        conn = self._connections.get(key)
        if conn is None or not conn.usable:
            conn = self._connect(transport, key[1])
        try:
            conn.send(data)
        except ConnectionError as exc:
            log.warning("x %s:%d %s: %s", dest[0], dest[1], transport, exc)
            self._report(dest, transport, exc)

    def _connect(self, transport: str, dest: Address) -> StreamConnection:
        conn = self._new_connection(transport, inbound=False)
        conn.remote = dest
        self._connections[(transport, dest)] = conn
        self._spawn(self._open(conn, transport, dest))
        return conn

    async def _open(self, conn: StreamConnection, transport: str, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        tls = transport == "tls"
        log.debug("> %s %s:%d connecting", transport, *dest)
        try:
            async with asyncio.timeout(self._limits.connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    dest[0],
                    dest[1],
                    ssl=self._client_ssl if tls else None,
                    ssl_handshake_timeout=self._limits.connect_timeout if tls else None,
                )
        except asyncio.CancelledError:
            self._forget(conn)
            conn.abort()  # the connect may have completed just before the cancellation
            raise
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            self._forget(conn)
            dropped = conn.abandon()
            log.warning("x %s %s:%d connect failed: %r", transport, dest[0], dest[1], exc)
            for _ in range(max(dropped, 1)):
                self._report(dest, transport, exc)
            return
        if conn.usable:  # also index under the address actually connected to (dest may be a name)
            self._connections.setdefault((transport, conn.remote), conn)

    def _report(self, dest: Address, transport: str, error: Exception) -> None:
        if self._on_send_error is not None:
            asyncio.get_running_loop().call_soon(self._on_send_error, dest, transport, error)

    # connections

    def _new_connection(self, transport: str, *, inbound: bool) -> StreamConnection:
        return StreamConnection(
            transport_name=transport,
            inbound=inbound,
            connection_id=next(self._ids),
            parser_limits=self._limits.parser,
            idle_timeout=self._limits.idle_timeout,
            write_high_water=self._limits.write_high_water,
            on_frame=self._frame_received,
            on_open=self._connection_opened,
            on_close=self._forget,
        )

    def _connection_opened(self, conn: StreamConnection) -> None:
        self._all.add(conn)
        if conn.inbound:
            key = (conn.transport_name, conn.remote)
            previous = self._connections.get(key)
            if previous is not None and previous is not conn:
                log.info("%r replaces %r for the same address", conn, previous)
            self._connections[key] = conn
        if self._closed:
            conn.abort()

    def _forget(self, conn: StreamConnection) -> None:
        self._all.discard(conn)
        for key in [k for k, c in self._connections.items() if c is conn]:
            del self._connections[key]

    # receiving

    def _datagram_received(self, endpoint: UdpEndpoint, data: bytes, source: Address) -> None:
        info = ConnectionInfo(transport="udp", local=endpoint.local, remote=source)
        self._deliver(data, source, "udp", info)

    def _frame_received(self, conn: StreamConnection, data: bytes) -> None:
        info = ConnectionInfo(
            transport=conn.transport_name,
            local=conn.local,
            remote=conn.remote,
            connection_id=conn.connection_id,
        )
        self._deliver(data, conn.remote, conn.transport_name, info)

    def _deliver(self, data: bytes, source: Address, transport: str, info: ConnectionInfo) -> None:
        try:
            self._on_message(data, source, transport, info)
        except Exception:
            log.exception("x %s %s:%d: message handler failed", transport, *source)

    # lifecycle

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SipTransports is closed")

    async def close(self) -> None:
        """Close every listener and connection; ports are released when this returns."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            server.close()
        for endpoint in self._udp:
            endpoint.close()
        conns = list(self._all)
        for conn in conns:
            conn.close()
        waiters = [c.wait_closed() for c in conns] + [e.wait_closed() for e in self._udp]
        try:
            async with asyncio.timeout(self._limits.close_timeout):
                await asyncio.gather(*waiters)
        except TimeoutError:
            for conn in conns:
                conn.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._limits.close_timeout):
                    await asyncio.gather(*(c.wait_closed() for c in conns))
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._udp.clear()
        self._connections.clear()
        self._all.clear()
        self._local.clear()
