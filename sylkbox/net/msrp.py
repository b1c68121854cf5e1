"""MSRP over TCP and TLS: the asyncio adapter for the sans-I/O `sylkbox.msrp` core.

One listening port (``[msrp] port``, 2855 by default, on the SIP bind address) carries every
MSRP session of the box (RFC 4975 8.1, BLINK.md 7):

* **passive** (the remote offered ``a=setup:active``): the focus registers the session with
  `MsrpListener.expect(local_uri, remote_path)`; an inbound connection's first request is
  parsed here, its To-Path session-id picks the registered session, and with ``exact=True``
  the To-Path must equal our URI and the From-Path the remote's SDP path (no "sessmatch",
  as SylkServer with Bonjour on).  No match: ``481`` and the connection is closed.
* **active** (the remote offered ``actpass`` or ``passive``): `MsrpListener.connect()` opens a
  connection to the first hop of the remote path (TLS without certificate verification, as
  Blink's Bonjour account does), binds the session with an empty SEND (``Byte-Range: 1-0/0``,
  no body, RFC 4975 5.4 / BLINK.md 7) and waits for its ``200``.

Afterwards `MsrpConnection` only pumps: received bytes are parsed here and each chunk goes to the
session core (`MsrpSession.receive_message`), the
core's events go to the owner's handler, the core's output is written while the transport is
below its high-water mark (back-pressure: the core keeps what is not yet pulled, and
`MsrpConnection.drain()` lets a sender wait), the core's timer is re-armed with
``loop.call_at``.  Small output (responses, REPORTs, chat messages) is gathered per
connection and written once at the end of the event-loop iteration (``loop.call_soon``), so
a busy room's fan-out costs one TLS record and one ``send`` per connection and iteration
rather than one per message; 64 KiB or more is written at once.  A connection that drops,
or whose write buffer grows past a hard limit, ends with one `MsrpConnectionLost` event to
the owner.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sylkbox.msrp.errors import ParseError
from sylkbox.msrp.message import MsrpRequest, MsrpResponse
from sylkbox.msrp.parser import DEFAULT_LIMITS, MsrpParser, ParserLimits
from sylkbox.msrp.session import (
    MsrpEvent,
    MsrpSession,
    ResponseReceived,
    SessionConfig,
    TransactionTimedOut,
)
from sylkbox.msrp.uri import MsrpUri, new_session_id, parse_path
from sylkbox.net.local_address import LocalAddresses
from sylkbox.net.transport import default_client_ssl_context
from sylkbox.net.udp import Address, address_family, to_address

__all__ = [
    "MsrpBindError",
    "MsrpConnection",
    "MsrpConnectionLost",
    "MsrpListener",
    "SessionFactory",
    "default_session_factory",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
BIND_TIMEOUT = 30.0  # RFC 4975 7.1.1: 30 s transaction timeout
ACCEPT_TIMEOUT = 30.0  # an inbound connection must send its first request within this
WRITE_HIGH_WATER = 256 * 1024
WRITE_LIMIT = 32 * 1024 * 1024
MAX_PENDING_EVENTS = 1024
CHUNKS_PER_WRITE = 4  # 64 KiB chunks pulled from the session per write while writable
COALESCE_LIMIT = 64 * 1024  # small output is gathered until the end of the loop iteration

SessionFactory = Callable[[MsrpUri, tuple[MsrpUri, ...], float], MsrpSession]
"""Builds the session core: (local URI, remote path, now)."""

EventHandler = Callable[[MsrpEvent], None]
LostHandler = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class MsrpConnectionLost(MsrpEvent):
    """The connection of an MSRP session is gone (peer closed, network error, unframeable
    input, keep-alive unanswered, write buffer overflow).  Sent once, never after the owner's
    own `close()`."""

    reason: str


class MsrpBindError(ConnectionError):
    """The active side could not connect or bind the session (RFC 4975 5.4)."""


@dataclass(slots=True)
class _Expectation:
    local_uri: MsrpUri
    remote_path: tuple[MsrpUri, ...]
    exact: bool
    future: asyncio.Future[MsrpConnection]
    session: MsrpSession | None = None


def default_session_factory(
    config: SessionConfig | None = None,
) -> SessionFactory:
    """A factory building `MsrpSession` with `config` (e.g. ``[msrp] max_message_size``)."""

    def build(local: MsrpUri, remote: tuple[MsrpUri, ...], now: float) -> MsrpSession:
        return MsrpSession(local, remote, config=config, now=now)

    return build


class MsrpConnection(asyncio.Protocol):
    """One TCP/TLS connection carrying one MSRP session.

    The connection owns the stream parser; each parsed chunk goes to the session core
    (`MsrpSession.receive_message`).  The owner acts on the core through `call()` (or uses
    `session` and then `flush()`), and receives the core's events, then `MsrpConnectionLost`,
    through the handler given to `set_handler()`.
    """

    def __init__(
        self,
        listener: MsrpListener,
        *,
        inbound: bool,
        tls: bool,
        connection_id: int,
    ) -> None:
        self._listener = listener
        self.inbound = inbound
        self.tls = tls
        self.connection_id = connection_id
        self.local: Address = ("", 0)
        self.remote: Address = ("", 0)
        self._parser = MsrpParser(listener.limits)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._session: MsrpSession | None = None
        self._handler: EventHandler | None = None
        self._on_lost: LostHandler | None = None
        self._pending_events: collections.deque[MsrpEvent] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []  # output gathered until the end of the loop iteration
        self._out_size = 0
        self._flush_scheduled = False
        self._accept_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._closed_by_owner = False
        self._lost_reported = False
        self._closed = asyncio.Event()
        self._bind_tid: str | None = None
        self._bound: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        direction = "in" if self.inbound else "out"
        scheme = "msrps" if self.tls else "msrp"
        return f"<MsrpConnection #{self.connection_id} {scheme} {direction} {self.remote}>"

    # ------------------------------------------------------------------ owner API
    @property
    def session(self) -> MsrpSession:
        """The session core; after calling one of its methods, call `flush()`."""
        if self._session is None:
            raise RuntimeError(f"{self} has no session yet")
        return self._session

    @property
    def local_uri(self) -> MsrpUri:
        return self.session.local_uri

    @property
    def remote_path(self) -> tuple[MsrpUri, ...]:
        return self.session.remote_path

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._closed.is_set()

    @property
    def writable(self) -> bool:
        """False while the transport is over its high-water mark (back-pressure)."""
        return self.is_open and not self._paused

    def set_handler(self, handler: EventHandler, on_lost: LostHandler | None = None) -> None:
        """Where the session's events go; events that arrived before are delivered now, in
        order.  The end of the connection goes to `on_lost` (with its reason) when given,
        else to `handler` as `MsrpConnectionLost`."""
        self._handler, self._on_lost = handler, on_lost
        while self._pending_events and self._handler is handler:
            self._dispatch(self._pending_events.popleft())

    def call(self, action: Callable[[MsrpSession], T]) -> T:
        """Run `action` on the session core, then write its output and deliver its events."""
        result = action(self.session)
        self._pump()
        return result

    def flush(self) -> None:
        """Write what the session core has to send and deliver its events."""
        self._pump()

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark (or the connection is
        gone: check `is_open`)."""
        while self._paused and self.is_open:
            waiter = self._loop.create_task(self._resumed.wait())
            closed = self._loop.create_task(self._closed.wait())
            try:
                await asyncio.wait((waiter, closed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                closed.cancel()

    def close(self) -> None:
        """Close after writing what is buffered; no `MsrpConnectionLost` is reported."""
        self._closed_by_owner = True
        self._write_out()
        if self._session is not None:
            self._session.close()
        self._shutdown(abort=False)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self._listener.write_high_water)
        self.local = to_address(transport.get_extra_info("sockname"))
        self.remote = to_address(transport.get_extra_info("peername"))
        log.debug("%s connected", self)
        if self.inbound:
            self._accept_timer = self._loop.call_later(
                self._listener.accept_timeout, self._accept_timed_out
            )

    def data_received(self, data: bytes) -> None:
        if self._closed.is_set() or self._closed_by_owner:
            return
        log.debug("< %s %d bytes", self, len(data))
        self._parser.feed(data)
        while self.is_open:
            try:
                message = self._parser.next_message()
            except ParseError as exc:
                if exc.response is not None:
                    self._write(exc.response.to_bytes())
                if exc.recoverable and self._session is not None:
                    log.info("x %s: bad MSRP message (%s), answered", self, exc.reason)
                    continue
                self._fail(f"cannot parse the MSRP stream: {exc.reason}", abort=False)
                return
            if message is None:
                break
            if self._session is None:
                if not self._first_message(message):
                    return
                assert self._session is not None
            self._session.receive_message(message, self._loop.time())
        self._pump()

    def eof_received(self) -> bool | None:
        log.debug("< %s end of stream", self)
        return None

    def pause_writing(self) -> None:
        self._paused = True
        self._resumed.clear()

    def resume_writing(self) -> None:
        self._paused = False
        self._resumed.set()
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = str(exc) if exc is not None else "connection closed by peer"
        log.info("x %s %s", self, "closed" if self._closed_by_owner else f"lost: {reason}")
        self._transport = None
        self._cleanup()
        binding = self._bound is not None and not self._bound.done()
        self._bind_failed(f"connection lost while binding: {reason}")
        if self._session is not None:
            self._session.close()
            if not binding:
                self._report_lost(reason)

    # ------------------------------------------------------------------ internals
    def _cleanup(self) -> None:
        self._out.clear()
        self._out_size = 0
        for handle in (self._timer, self._accept_timer):
            if handle is not None:
                handle.cancel()
        self._timer = self._accept_timer = None
        self._resumed.set()
        self._closed.set()
        self._listener._forget(self)

    def _shutdown(self, *, abort: bool) -> None:
        transport = self._transport
        if transport is None:
            self._cleanup()
            return
        if abort:
            transport.abort()
        else:
            transport.close()

    def _report_lost(self, reason: str) -> None:
        if self._lost_reported or self._closed_by_owner:
            return
        self._lost_reported = True
        self._deliver(MsrpConnectionLost(reason=reason))

    def _fail(self, reason: str, *, abort: bool = True) -> None:
        """Close because of an error of ours or the peer's; the owner hears of it."""
        log.warning("x %s: %s, closing", self, reason)
        binding = self._bound is not None and not self._bound.done()
        self._bind_failed(reason)
        if self._session is not None and not binding:
            self._report_lost(reason)
        self._shutdown(abort=abort)

    def _bind_failed(self, reason: str) -> None:
        if self._bound is not None and not self._bound.done():
            self._bound.set_exception(MsrpBindError(reason))

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if self._out:  # what was gathered goes first
            if data:
                self._out.append(data)
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            self._out_size = 0
        if not data or transport is None or transport.is_closing():
            return
        log.debug("> %s %d bytes", self, len(data))
        transport.write(data)
        if transport.get_write_buffer_size() > self._listener.write_limit:
            self._fail(f"write buffer over {self._listener.write_limit} bytes (peer too slow)")

    def _dispatch(self, event: MsrpEvent) -> None:
        if isinstance(event, MsrpConnectionLost) and self._on_lost is not None:
            self._on_lost(event.reason)
        elif self._handler is not None:
            self._handler(event)

    def _deliver(self, event: MsrpEvent) -> None:
        if self._handler is not None:
            self._dispatch(event)
        elif len(self._pending_events) < MAX_PENDING_EVENTS:
            self._pending_events.append(event)
        else:
            log.warning("x %s: no handler, event %s dropped", self, type(event).__name__)

    def _pump(self) -> None:
        """Deliver the core's events, write its output while writable, re-arm its timer."""
        session = self._session
        if session is None:
            return
        while (event := session.next_event()) is not None:
            if self._bind_event(event):
                continue
            if isinstance(event, TransactionTimedOut) and event.keep_alive:
                self._fail("keep-alive unanswered (408)")
                return
            self._deliver(event)
        if session.has_data_to_send:
            now = self._loop.time()
            out = self._out
            while self.is_open and not self._paused and session.has_data_to_send:
                data = session.data_to_send(CHUNKS_PER_WRITE, now=now)
                out.append(data)
                self._out_size += len(data)
                if self._out_size >= COALESCE_LIMIT:
                    self._write_out()
            if out and not self._flush_scheduled:
                self._flush_scheduled = True
                self._listener._schedule_flush(self)
        self._arm_timer()

    def _write_out(self) -> None:
        """Write the gathered output now."""
        if self._out:
            self._write(b"")

    def _flush(self) -> None:
        """End of the loop iteration: write the gathered output."""
        self._flush_scheduled = False
        self._write_out()

    def _bind_event(self, event: MsrpEvent) -> bool:
        """Our bind SEND's outcome (BLINK.md 7); True when the event was about it."""
        tid = self._bind_tid
        if tid is None:
            return False
        if isinstance(event, ResponseReceived) and event.transaction_id == tid:
            self._bind_tid = None
            if event.status == 200:
                if self._bound is not None and not self._bound.done():
                    self._bound.set_result(None)
            else:
                comment = f"{event.status} {event.comment or ''}".strip()
                self._fail(f"bind SEND answered {comment}", abort=False)
            return True
        if isinstance(event, TransactionTimedOut) and event.transaction_id == tid:
            self._bind_tid = None
            self._fail("no response to the bind SEND")
            return True
        return False

    def _arm_timer(self) -> None:
        timer = self._timer
        when = None
        if self._session is not None and self.is_open:
            when = self._session.get_timer()
        if timer is not None:
            if when is not None and timer.when() <= when:
                return  # fires early enough: `_on_timer` runs the core and re-arms
            timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._session is None or not self.is_open:
            return
        self._session.handle_timer(self._loop.time())
        self._pump()

    # --- passive side: the first request picks the session ----------------------------
    def _accept_timed_out(self) -> None:
        self._accept_timer = None
        if self._session is None:
            log.info("x %s sent no MSRP request within %.0f s", self, self._listener.accept_timeout)
            self._shutdown(abort=True)

    def _first_message(self, message: MsrpRequest | MsrpResponse) -> bool:
        """Attach the session the first request is for; False when the connection closes."""
        if not isinstance(message, MsrpRequest):
            log.info("x %s: first MSRP message is a response, closing", self)
            self._shutdown(abort=True)
            return False
        expectation = self._listener._match(message)
        if expectation is None:
            log.info("< %s %s for an unknown session, > 481", self, message.method)
            self._write(message.response(481, "Session does not exist").to_bytes())
            self._shutdown(abort=False)
            return False
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        self._session = expectation.session
        if not expectation.future.done():
            expectation.future.set_result(self)
        return True

    # --- active side: bind with an empty SEND and wait for its 200 ----------------------
    def _send_bind(self, session: MsrpSession) -> asyncio.Future[None]:
        self._session = session
        self._bound = self._loop.create_future()
        # connect() may have given up already: never leave an exception unretrieved
        self._bound.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        self._bind_tid = session.send_bind()
        log.debug("> %s bind SEND %s", self, self._bind_tid)
        self._pump()
        return self._bound


class MsrpListener:
    """The MSRP port of the box and every MSRP connection (passive and active).

    `session_factory` builds the sans-I/O core for a session (default: `MsrpSession`).
    `addresses` picks the host of our URIs per peer; without it, `advertised_host` or the bind
    address (the default route's source for a wildcard bind).
    """

    def __init__(
        self,
        *,
        bind: str,
        port: int,
        advertised_host: str = "",
        addresses: LocalAddresses | None = None,
        server_ssl: ssl.SSLContext | None,
        client_ssl: ssl.SSLContext | None = None,
        limits: ParserLimits = DEFAULT_LIMITS,
        session_factory: SessionFactory | None = None,
        accept_timeout: float = ACCEPT_TIMEOUT,
        bind_timeout: float = BIND_TIMEOUT,
        write_high_water: int = WRITE_HIGH_WATER,
        write_limit: int = WRITE_LIMIT,
    ) -> None:
        self.tls = server_ssl is not None
        self._bind = bind
        self._port = port
        self._addresses = addresses or LocalAddresses(bind=bind, advertised=advertised_host)
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl or default_client_ssl_context()
        self.limits = limits
        self.session_factory: SessionFactory = session_factory or default_session_factory()
        self.accept_timeout = accept_timeout
        self.bind_timeout = bind_timeout
        self.write_high_water = write_high_water
        self.write_limit = max(write_limit, write_high_water)
        self._server: asyncio.Server | None = None
        self._expected: dict[str, _Expectation] = {}
        self._connections: set[MsrpConnection] = set()
        self._ids = 0
        self._to_flush: list[MsrpConnection] = []

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the kernel chose for port 0)."""
        return self._port

    async def start(self) -> Address:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._new_connection(inbound=True, tls=self.tls),
            self._bind,
            self._port,
            family=address_family(self._bind) or socket.AF_UNSPEC,
            ssl=self._server_ssl,
            reuse_address=True,
        )
        sockname = to_address(self._server.sockets[0].getsockname())
        self._port = sockname[1]
        log.info("MSRP listening on %s:%d (%s)", sockname[0], sockname[1],
                 "msrps" if self.tls else "msrp")
        return sockname

    async def close(self) -> None:
        """Stop listening, close every connection, fail every expectation."""
        if self._server is not None:
            self._server.close()
        for expectation in list(self._expected.values()):
            if not expectation.future.done():
                expectation.future.cancel()
        self._expected.clear()
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        for connection in connections:
            try:
                await asyncio.wait_for(connection.wait_closed(), 1.0)
            except TimeoutError:
                connection._shutdown(abort=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def new_local_uri(self, peer_host: str | None = None) -> MsrpUri:
        """A fresh URI for a session: ``msrp[s]://<our host>:<port>/<80-bit id>;tcp``, our host
        as `peer_host` (the SIP peer of the session) reaches it (`LocalAddresses`)."""
        address = self._addresses.for_peer(peer_host)
        host = f"[{address}]" if ":" in address else address
        return MsrpUri(secure=self.tls, host=host, port=self._port, session_id=new_session_id())

    # ---------------------------------------------------------------- passive
    def expect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        exact: bool = True,
        config: SessionConfig | None = None,
    ) -> asyncio.Future[MsrpConnection]:
        """Wait for the remote to connect for this session (we are ``passive``).  Cancel the
        future (or call `forget_expected`) when the session goes away before that.  `config`
        replaces the factory's session configuration (file transfers deliver chunks)."""
        path = parse_path(remote_path) if isinstance(remote_path, str) else remote_path
        future: asyncio.Future[MsrpConnection] = asyncio.get_running_loop().create_future()
        sid = local_uri.session_id
        if sid in self._expected:
            raise ValueError(f"session {sid} is already expected")
        session = self.session_factory(local_uri, path, asyncio.get_running_loop().time())
        if config is not None:
            session.config = config
        self._expected[sid] = _Expectation(local_uri, path, exact, future, session)
        future.add_done_callback(lambda _: self._drop_expectation(sid, future))
        return future

    def forget_expected(self, local_uri: MsrpUri) -> None:
        expectation = self._expected.pop(local_uri.session_id, None)
        if expectation is not None and not expectation.future.done():
            expectation.future.cancel()

    def _drop_expectation(self, sid: str, future: asyncio.Future[MsrpConnection]) -> None:
        expectation = self._expected.get(sid)
        if expectation is not None and expectation.future is future:
            del self._expected[sid]

    def _match(self, request: MsrpRequest) -> _Expectation | None:
        """The session a first request is for (BLINK.md 7): by To-Path session-id; exact
        matching also wants To-Path = our URI and From-Path = the remote's SDP path."""
        if not request.to_path:
            return None
        to = request.to_path[0]
        expectation = self._expected.get(to.session_id)
        if expectation is None or expectation.future.done():
            return None
        assert expectation.session is not None
        if not expectation.session.matches(
            request.to_path, request.from_path, exact=expectation.exact
        ):
            log.info("x %s: path mismatch for session %s", request.method, to.session_id)
            return None
        del self._expected[to.session_id]
        return expectation

    # ----------------------------------------------------------------- active
    async def connect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        config: SessionConfig | None = None,
    ) -> MsrpConnection:
        """Connect to the first hop of `remote_path` and bind the session (we are
        ``active``); raises `MsrpBindError`.  `config` as for `expect`."""
        path = parse_path(remote_path) if isinstance(remote_path, str) else remote_path
        hop = path[0]
        host, port = hop.address
        loop = asyncio.get_running_loop()
        connection: MsrpConnection | None = None

        def factory() -> MsrpConnection:
            nonlocal connection
            connection = self._new_connection(inbound=False, tls=hop.secure)
            return connection

        try:
            await asyncio.wait_for(
                loop.create_connection(
                    factory, host, port, ssl=self._client_ssl if hop.secure else None
                ),
                self.bind_timeout,
            )
        except (OSError, TimeoutError) as exc:
            if connection is not None:
                connection._shutdown(abort=True)
            raise MsrpBindError(f"cannot connect to {host}:{port}: {exc}") from exc
        assert connection is not None
        session = self.session_factory(local_uri, path, loop.time())
        if config is not None:
            session.config = config
        bound = connection._send_bind(session)
        try:
            await asyncio.wait_for(asyncio.shield(bound), self.bind_timeout)
        except TimeoutError:
            connection._shutdown(abort=True)
            raise MsrpBindError(f"no response to the bind SEND from {host}:{port}") from None
        except BaseException:
            connection._shutdown(abort=True)
            raise
        log.info("%s bound session %s", connection, local_uri.session_id)
        return connection

    # -------------------------------------------------------------- internals
    def _new_connection(self, *, inbound: bool, tls: bool) -> MsrpConnection:
        self._ids += 1
        connection = MsrpConnection(self, inbound=inbound, tls=tls, connection_id=self._ids)
        self._connections.add(connection)
        return connection

    def _forget(self, connection: MsrpConnection) -> None:
        self._connections.discard(connection)

    def _schedule_flush(self, connection: MsrpConnection) -> None:
        """Write `connection`'s gathered output at the end of this loop iteration (one
        callback for all connections)."""
        if not self._to_flush:
            asyncio.get_running_loop().call_soon(self._flush_all)
        self._to_flush.append(connection)

    def _flush_all(self) -> None:
        connections, self._to_flush = self._to_flush, []
        for connection in connections:
            connection._flush()
