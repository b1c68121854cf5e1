"""The asyncio edge of the SIP stack: bytes from the transports into the sans-I/O core, events out.

`SipEndpoint` parses what the transports deliver, stamps Via `received`/`rport` (RFC 3581),
feeds the `TransactionLayer`, sends what it produces and re-arms one `loop.call_at` timer for it.
Requests are handed to a `RequestHandler` (the focus); client transactions are awaited through
futures, as aioice does with its `Transaction`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sylkbox import __version__
from sylkbox.net.local_address import LocalAddresses
from sylkbox.net.transport import SipTransports
from sylkbox.sip.errors import ParseError, RemoteProtocolError
from sylkbox.sip.headers import Via
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import ParserLimits, parse_message
from sylkbox.sip.transaction import (
    AckTimedOut,
    ClientKey,
    RequestCancelled,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimedOut,
)

__all__ = ["USER_AGENT", "RequestHandler", "SipEndpoint", "new_branch", "new_tag"]

log = logging.getLogger(__name__)

USER_AGENT = f"sylkbox/{__version__}"
Address = tuple[str, int]


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


class RequestHandler(Protocol):
    def handle_request(self, event: RequestReceived) -> None: ...

    def handle_cancel(self, event: RequestCancelled) -> None: ...

    def handle_ack_timeout(self, event: AckTimedOut) -> None: ...


@dataclass(slots=True)
class _Pending:
    request: Request
    dest: Address
    transport: str
    future: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None


class SipEndpoint:
    """Runs one `TransactionLayer` over `SipTransports` on the running loop.

    `addresses` picks our address per peer (Via, Contact, SDP); without it the listener's
    bound address is used.
    """

    def __init__(
        self,
        layer: TransactionLayer,
        *,
        limits: ParserLimits,
        addresses: LocalAddresses | None = None,
    ) -> None:
        self._transports: SipTransports | None = None
        self._layer = layer
        self._limits = limits
        self._addresses = addresses
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending: dict[ClientKey, _Pending] = {}
        self.handler: RequestHandler | None = None

    def attach(self, transports: SipTransports) -> None:
        """Connect the transports (built with this endpoint's callbacks)."""
        self._transports = transports

    @property
    def transports(self) -> SipTransports:
        if self._transports is None:
            raise RuntimeError("SipEndpoint used before attach()")
        return self._transports

    # ----------------------------------------------------------------- inbound
    def on_message(self, data: bytes, source: Address, transport: str, _info: object) -> None:
        """Callback for `SipTransports`: one complete message from `source`."""
        try:
            message = parse_message(data, self._limits)
        except ParseError as exc:
            log.warning("x dropped message from %s/%s: %s", transport, source, exc.reason)
            if exc.error_response is not None:
                self.transports.send(exc.error_response, source, transport)
            return
        if isinstance(message, Request):
            try:
                _stamp_via(message, source)
            except RemoteProtocolError as exc:
                log.warning("x dropped request from %s: %s", source, exc.reason)
                return
            log.debug("< %s %s from %s/%s", message.method, message.uri, transport, source)
        else:
            log.debug("< %d %s from %s/%s", message.status, message.reason, transport, source)
        self._layer.receive(message, source, transport, self._loop.time())
        self._pump()

    # ---------------------------------------------------------------- outbound
    def respond(self, response: Response) -> None:
        """Send a response through its server transaction."""
        if "Server" not in response.headers:
            response.headers.set("Server", USER_AGENT)
        self._layer.send_response(response, self._loop.time())
        self._pump()

    def local_address(
        self, transport: str, family: int = socket.AF_INET, peer_host: str | None = None
    ) -> Address:
        """Our listening port for `transport` and the address `peer_host` reaches us at (the
        default address when no peer is given)."""
        host, port = self.transports.local_address(transport, family)
        if self._addresses is not None:
            host = self._addresses.for_peer(peer_host)
        return host, port

    def contact_host(self, transport: str, peer_host: str) -> Address:
        """Our address as the peer should reach it (its link, its family), computed now: the
        box's addresses change (DHCP) and differ per link."""
        family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
        return self.local_address(transport, family, peer_host)

    async def resolve(self, host: str, port: int, transport: str) -> Address:
        """Resolve a target host (A/AAAA; no NAPTR/SRV on a LAN box)."""
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
            infos = await self._loop.getaddrinfo(host, port, type=kind)
            if not infos:
                raise OSError(f"cannot resolve {host}") from None
            addr = infos[0][4]
            return str(addr[0]), int(addr[1])
        return host, port

    def prepare_request(self, request: Request, transport: str, dest_host: str) -> None:
        """Add our Via (fresh branch, rport), Max-Forwards and User-Agent."""
        host, port = self.contact_host(transport, dest_host)
        via = Via.parse(
            f"SIP/2.0/{transport.upper()} {_host_for_uri(host)}:{port};rport;branch={new_branch()}"
        )
        request.headers.remove("Via")
        request.headers.prepend("Via", str(via))
        if "Max-Forwards" not in request.headers:
            request.headers.set("Max-Forwards", "70")
        if "User-Agent" not in request.headers:
            request.headers.set("User-Agent", USER_AGENT)

    def request(
        self,
        request: Request,
        dest: Address,
        transport: str,
        *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> asyncio.Future[Response]:
        """Start a client transaction; the future gets the final response.

        A timeout gives a synthetic 408 and a transport failure a 503 (RFC 3261 8.1.3.1), so
        callers handle one kind of result.
        """
        self.prepare_request(request, transport, dest[0])
        future: asyncio.Future[Response] = self._loop.create_future()
        log.debug("> %s %s to %s/%s", request.method, request.uri, transport, dest)
        key = self._layer.send_request(request, dest, transport, self._loop.time())
        self._pending[key] = _Pending(request, dest, transport, future, on_provisional)
        self._pump()
        return future

    def cancel(self, future: asyncio.Future[Response]) -> None:
        """CANCEL the INVITE whose final response `future` waits for (RFC 3261 9.1)."""
        for key, pending in self._pending.items():
            if pending.future is future:
                self._layer.send_cancel(key, self._loop.time())
                self._pump()
                return

    def send_stateless(self, request: Request, dest: Address, transport: str) -> None:
        """Send a request outside any transaction (ACK for a 2xx, RFC 3261 13.2.2.4)."""
        self.prepare_request(request, transport, dest[0])
        self.transports.send(request.to_bytes(), dest, transport)

    def on_send_error(self, dest: Address, transport: str, error: Exception) -> None:
        """Transport failure: fail the client transactions waiting on that peer with 503."""
        log.warning("x cannot send to %s/%s: %s", transport, dest, error)
        for key, pending in list(self._pending.items()):
            if pending.dest == dest and pending.transport == transport:
                if not pending.future.done():
                    pending.future.set_result(
                        pending.request.create_response(503, "Service Unavailable")
                    )
                self._pending.pop(key, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_result(
                    pending.request.create_response(503, "Service Unavailable")
                )
        self._pending.clear()

    # -------------------------------------------------------------- internals
    def _pump(self) -> None:
        while (event := self._layer.next_event()) is not None:
            match event:
                case RequestReceived():
                    if self.handler is not None:
                        try:
                            self.handler.handle_request(event)
                        except Exception:
                            log.exception("request handler failed for %s", event.request.method)
                case RequestCancelled():
                    if self.handler is not None:
                        self.handler.handle_cancel(event)
                case ResponseReceived():
                    self._on_response(event)
                case TransactionTimedOut():
                    pending = self._pending.pop(event.client_key, None)
                    if pending is not None and not pending.future.done():
                        pending.future.set_result(
                            pending.request.create_response(408, "Request Timeout")
                        )
                case AckTimedOut():
                    if self.handler is not None:
                        self.handler.handle_ack_timeout(event)
                case _:
                    log.debug("unhandled transaction event %r", event)
        for out in self._layer.data_to_send():
            self.transports.send(out.data, out.dest, out.transport)
        self._rearm()

    def _on_response(self, event: ResponseReceived) -> None:
        key = event.client_key
        pending = self._pending.get(key) if key is not None else None
        if key is None or pending is None:
            return
        response = event.response
        if response.status < 200:
            if pending.on_provisional is not None:
                pending.on_provisional(response)
            return
        if not pending.future.done():
            pending.future.set_result(response)
        self._pending.pop(key, None)

    def _rearm(self) -> None:
        when = self._layer.get_timer()
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._layer.handle_timer(self._loop.time())
        self._pump()


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _stamp_via(request: Request, source: Address) -> None:
    """RFC 3261 18.2.1 `received` and RFC 3581 `rport` on the top Via."""
    via = request.top_via
    changes: dict[str, str] = {}
    if via.host.strip("[]").lower() != source[0].lower():
        changes["received"] = source[0]
    if via.rport is not None:
        changes["rport"] = str(source[1])
        changes.setdefault("received", source[0])
    if not changes:
        return
    rest = request.headers.get_all("Via")[1:]
    request.headers.remove("Via")
    for value in reversed(rest):
        request.headers.prepend("Via", value)
    request.headers.prepend("Via", str(via.with_params(**changes)))
