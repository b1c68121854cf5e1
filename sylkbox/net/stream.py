"""SIP over TCP and TLS: one asyncio stream protocol for both (RFC 3261 section 18.3).

Framing (Content-Length delimiting, RFC 5626 section 4.4.1 double-CRLF pings) is done by the
sans-I/O `sylkbox.sip.parser.StreamFramer`; this adapter only moves bytes, answers pings with a
single CRLF, closes connections that cannot be framed, that stay idle too long (inbound only) or
whose write buffer grows past a high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sylkbox.net.udp import Address, to_address
from sylkbox.sip.errors import ParseError
from sylkbox.sip.parser import KeepAlivePing, ParserLimits, SipFrame, StreamFramer

__all__ = ["CRLF", "StreamConnection"]

log = logging.getLogger(__name__)

CRLF = b"\r\n"
"""The keep-alive pong (RFC 5626 section 4.4.1)."""

FrameHandler = Callable[["StreamConnection", bytes], None]
ConnectionHandler = Callable[["StreamConnection"], None]


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection carrying SIP messages.

    Outbound connections exist before the socket does: data sent while connecting is queued
    (bounded by `write_high_water`) and flushed in `connection_made`.
    """

    def __init__(
        self,
        *,
        transport_name: str,
        inbound: bool,
        connection_id: int,
        parser_limits: ParserLimits,
        idle_timeout: float | None,
        write_high_water: int,
        on_frame: FrameHandler,
        on_open: ConnectionHandler,
        on_close: ConnectionHandler,
    ) -> None:
        self.transport_name = transport_name
        self.inbound = inbound
        self.connection_id = connection_id
        self.local: Address = ("", 0)
        self.remote: Address = ("", 0)
        self._framer = StreamFramer(parser_limits)
        self._idle_timeout = idle_timeout
        self._high_water = write_high_water
        self._on_frame = on_frame
        self._on_open = on_open
        self._on_close = on_close
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._closing = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self._lost = asyncio.Event()

    def __repr__(self) -> str:
        direction = "in" if self.inbound else "out"
        return (
            f"<StreamConnection #{self.connection_id} {self.transport_name} {direction} "
            f"{self.remote[0]}:{self.remote[1]}>"
        )

    @property
    def usable(self) -> bool:
        """True while the connection is connecting or open and not being closed."""
        return not self._closing

    @property
    def connected(self) -> bool:
        """True once the socket (and TLS handshake) is up."""
        return self._transport is not None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self.local = to_address(transport.get_extra_info("sockname"))
        self.remote = to_address(transport.get_extra_info("peername"))
        self._touch()
        log.debug("%s connected (local %s:%d)", self, *self.local)
        self._on_open(self)
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            self._write(data)
        if self.inbound and self._idle_timeout is not None:
            self._arm_idle(self._idle_timeout)

    def data_received(self, data: bytes) -> None:
        self._touch()
        self._framer.feed(data)
        while not self._closing:
            try:
                frame = self._framer.next_frame()
            except ParseError as exc:
                log.warning("x %s: cannot frame SIP stream (%s), closing", self, exc)
                if exc.error_response:
                    self._write(exc.error_response)
                self.close()
                return
            match frame:
                case None:
                    return
                case SipFrame(data=message):
                    log.debug("< %s %d bytes", self, len(message))
                    self._on_frame(self, message)
                case KeepAlivePing():
                    log.debug("< %s keep-alive ping, > pong", self)
                    self._write(CRLF)

    def eof_received(self) -> bool | None:
        log.debug("< %s end of stream", self)
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("x %s lost: %s", self, exc)
        else:
            log.debug("x %s closed", self)
        self._closing = True
        self._transport = None
        self._cancel_idle()
        self._lost.set()
        self._on_close(self)

    # API for the manager

    def send(self, data: bytes) -> None:
        """Write (or queue while connecting) one message; raises ConnectionError when the
        connection is closing or the connect queue is over the high-water mark."""
        if self._closing:
            raise ConnectionError(f"{self} is closed")
        if self._transport is None:
            if self._pending_size + len(data) > self._high_water:
                raise ConnectionError(f"{self}: connect queue over {self._high_water} bytes")
            self._pending.append(data)
            self._pending_size += len(data)
            return
        log.debug("> %s %d bytes", self, len(data))
        self._write(data)

    def abandon(self) -> int:
        """Mark a connection whose connect attempt failed or was cancelled as dead; returns the
        number of queued messages that are dropped."""
        dropped = len(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._closing = True
        self._lost.set()
        return dropped

    def close(self) -> None:
        """Close after flushing what is already written."""
        self._closing = True
        self._cancel_idle()
        if self._transport is not None:
            self._transport.close()
        else:
            self.abandon()

    def abort(self) -> None:
        """Close at once, dropping buffered data."""
        self._closing = True
        self._cancel_idle()
        if self._transport is not None:
            self._transport.abort()
        else:
            self.abandon()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone."""
        await self._lost.wait()

    # internals

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        self._touch()
        buffered = transport.get_write_buffer_size()
        if buffered > self._high_water:
            log.warning(
                "x %s: %d bytes waiting to be written (high-water mark %d), closing",
                self,
                buffered,
                self._high_water,
            )
            self.abort()

    def _touch(self) -> None:
        if self._loop is not None:
            self._last_activity = self._loop.time()

    def _arm_idle(self, delay: float) -> None:
        assert self._loop is not None
        self._idle_handle = self._loop.call_later(delay, self._check_idle)

    def _cancel_idle(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _check_idle(self) -> None:
        assert self._loop is not None and self._idle_timeout is not None
        self._idle_handle = None
        idle_for = self._loop.time() - self._last_activity
        if idle_for >= self._idle_timeout:
            log.info("x %s idle for %.0f s, closing", self, idle_for)
            self.close()
        else:
            self._arm_idle(self._idle_timeout - idle_for)
