"""One MSRP session, sans-I/O (RFC 4975 sections 5, 7 and 8; RFC 7701; BLINK.md 4.3, 5, 7).

`MsrpSession` sits between the connection owner (which parses the stream with
`sylkbox.msrp.parser.MsrpParser`, finds the session with `matches` and passes each chunk to
`receive_message`) and the application (which pulls typed events with `next_event` and calls
`send_message`, `report`, `respond`...). Bytes to write come out of `data_to_send`.

Receiving (RFC 4975 7.1.1, 7.2): every SEND chunk gets its transaction response at once (200,
or the error), unless Failure-Report is ``no``, or ``partial`` and the code is 200. Chunks are
reassembled by Byte-Range (``+`` gathered until ``$``; ``#`` aborts; out-of-order ranges are
placed by offset; duplicates are tolerated; the total may stay ``*`` until the last chunk).
Partial chunks asking for a Success-Report are acknowledged with a 200 REPORT for their byte
range (BLINK.md 4.3 and 7, msrplib); the REPORT for the whole message is sent by the
application through `report` (it decides between 200, 413 Unwanted message, 415...), or
automatically when `SessionConfig.auto_success_report` is set. A message whose Byte-Range
total or reassembled size exceeds `SessionConfig.max_message_size` gets 413 and is aborted.

Sending (RFC 4975 7.1.1, BLINK.md 4.3 and 5): bodies go out in chunks of at most
`chunk_size` (64 KiB); several outgoing messages are interleaved round-robin, one chunk each,
so chat keeps flowing during a file transfer. Bodies of up to 2048 bytes are written
``1-N/N``, larger ones ``start-*/total`` as msrplib does. Transaction and message ids are 64
random bits in hex. Requests that expect a response time out after 30 s; an empty SEND with
``Keep-Alive: yes`` goes out after 60 s without traffic (BLINK.md 7) and its timeout is
reported as `TransactionTimedOut(keep_alive=True)`: the connection owner closes (408).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from sylkbox.msrp.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.msrp.message import (
    ByteRange,
    MsrpRequest,
    MsrpResponse,
    Status,
    default_comment,
    encode_request,
)
from sylkbox.msrp.uri import MsrpUri, path_to_str

__all__ = [
    "ChunkReceived",
    "ChunkSource",
    "FileOffsetRequested",
    "MessageAborted",
    "MessageReceived",
    "MsrpEvent",
    "MsrpSession",
    "NicknameRequested",
    "ReportReceived",
    "ResponseReceived",
    "SessionConfig",
    "SessionState",
    "TransactionTimedOut",
]

logger = logging.getLogger(__name__)

_FAILURE_VALUES = ("yes", "no", "partial")


# ----------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class MsrpEvent:
    """Base class of the events produced by `MsrpSession`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(MsrpEvent):
    """A complete message (RFC 4975 7.1.1). With `SessionConfig.deliver_chunks` the body was
    delivered by `ChunkReceived` events and ``body`` is empty (``chunked`` is true).
    ``reply_path`` is the From-Path of the SEND: the To-Path of its REPORTs."""

    message_id: str
    content_type: str | None
    body: bytes
    headers: dict[str, str]
    size: int
    success_report: bool
    failure_report: str
    reply_path: tuple[MsrpUri, ...]
    chunked: bool = False

    def __post_init__(self) -> None:
        if self.failure_report not in _FAILURE_VALUES:
            raise ValueError(f"bad failure_report {self.failure_report!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkReceived(MsrpEvent):
    """One chunk of a message, in `SessionConfig.deliver_chunks` mode (files): ``offset`` is
    0-based, ``total`` None while the sender writes ``*``."""

    message_id: str
    content_type: str | None
    offset: int
    data: bytes
    total: int | None

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError("negative chunk offset")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAborted(MsrpEvent):
    """An incoming message was given up: ``status`` None when the sender aborted it with a
    ``#`` chunk, 413 when it was too large."""

    message_id: str
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportReceived(MsrpEvent):
    """A REPORT about one of our messages (RFC 4975 7.1.2); ``status.code`` 200 means
    delivered."""

    message_id: str
    status: Status
    byte_range: ByteRange | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class NicknameRequested(MsrpEvent):
    """NICKNAME request (RFC 7701 3): answer with `MsrpSession.respond` (200, or 425);
    an empty ``nickname`` clears it."""

    transaction_id: str
    nickname: str
    request: MsrpRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class FileOffsetRequested(MsrpEvent):
    """msrplib's FILE_OFFSET (BLINK.md 5): answer with `MsrpSession.respond_file_offset`."""

    transaction_id: str
    message_id: str | None
    request: MsrpRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived(MsrpEvent):
    """The response to one of our requests (RFC 4975 7.2). For FILE_OFFSET the ``Offset``
    header is in ``headers``."""

    transaction_id: str
    method: str
    message_id: str | None
    status: int
    comment: str | None
    headers: dict[str, str]

    @property
    def offset(self) -> int | None:
        value = self.headers.get("Offset")
        return int(value) if value is not None and value.strip().isdigit() else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut(MsrpEvent):
    """No response within `SessionConfig.transaction_timeout` (RFC 4975 7.1.1: 408). With
    ``keep_alive`` the connection is dead (BLINK.md 7) and must be closed."""

    transaction_id: str
    method: str
    message_id: str | None
    keep_alive: bool = False


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Tunables of one session (defaults from RFC 4975 and msrplib, BLINK.md 4.3, 5, 7)."""

    max_message_size: int = 16 * 1024 * 1024
    chunk_size: int = 64 * 1024
    star_end_threshold: int = 2048  # bodies larger than this are written start-*/total
    transaction_timeout: float = 30.0
    keepalive_interval: float | None = 60.0
    deliver_chunks: bool = False
    report_partial_chunks: bool = True
    auto_success_report: bool = False
    max_incoming_messages: int = 64

    def __post_init__(self) -> None:
        if self.max_message_size <= 0 or self.chunk_size <= 0 or self.max_incoming_messages <= 0:
            raise ValueError("session limits must be positive")
        if self.transaction_timeout <= 0:
            raise ValueError("transaction_timeout must be positive")
        if self.keepalive_interval is not None and self.keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive or None")


class SessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


class ChunkSource(Protocol):
    """A body read on demand (a file being sent): ``size`` bytes, `read(offset, length)`."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


# ---------------------------------------------------------------------------- private state


@dataclass(slots=True)
class _Incoming:
    message_id: str
    content_type: str | None
    headers: dict[str, str]
    reply_path: tuple[MsrpUri, ...]
    success_report: bool
    failure_report: str
    total: int | None = None
    ranges: list[list[int]] = field(default_factory=list)
    buffer: bytearray = field(default_factory=bytearray)

    def add_range(self, start: int, end: int) -> None:
        ranges = self.ranges
        if not ranges or start > ranges[-1][1]:
            if ranges and start < ranges[-1][0]:
                self._insert(start, end)
            else:
                ranges.append([start, end])
        elif start >= ranges[-1][0]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            self._insert(start, end)

    def _insert(self, start: int, end: int) -> None:
        bisect.insort(self.ranges, [start, end])
        merged: list[list[int]] = []
        for s, e in self.ranges:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.ranges = merged

    @property
    def complete(self) -> bool:
        return (
            self.total is not None
            and len(self.ranges) == 1
            and self.ranges[0][0] == 0
            and self.ranges[0][1] >= self.total
        )


@dataclass(slots=True)
class _Outgoing:
    message_id: str
    content_type: str
    body: bytes | ChunkSource
    total: int
    offset: int
    success_report: bool
    failure_report: str
    headers: dict[str, str]
    started: bool = False


@dataclass(slots=True)
class _Pending:
    method: str
    message_id: str | None
    deadline: float
    keep_alive: bool = False
    quiet: bool = False  # Failure-Report: partial, a missing response is not an error


def _should_respond(failure_report: str, status: int) -> bool:
    """RFC 4975 7.2 / msrplib: no response with Failure-Report no, nor a 200 with partial."""
    if failure_report == "no":
        return False
    return not (failure_report == "partial" and status == 200)


def _lenient_failure_report(request: MsrpRequest) -> str:
    value = request.headers.get("Failure-Report", "yes").strip().lower()
    return value if value in _FAILURE_VALUES else "yes"


def _unquote(value: str) -> str:
    """RFC 7701 quotes the nickname, msrplib does not: accept both."""
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


class _BoundedSet:
    """Recently finished message ids (duplicate chunks after the end are ignored)."""

    __slots__ = ("_items", "_limit")

    def __init__(self, limit: int) -> None:
        self._items: dict[str, int | None] = {}
        self._limit = limit

    def add(self, key: str, status: int | None = None) -> None:
        self._items[key] = status
        if len(self._items) > self._limit:
            del self._items[next(iter(self._items))]

    def get(self, key: str) -> tuple[bool, int | None]:
        if key in self._items:
            return True, self._items[key]
        return False, None


# ----------------------------------------------------------------------------------- session


class MsrpSession:
    """One MSRP session between our URI (`local_path`) and the peer's path from its SDP
    (`remote_path`, relays first, RFC 4976)."""

    def __init__(
        self,
        local_path: MsrpUri | tuple[MsrpUri, ...],
        remote_path: tuple[MsrpUri, ...],
        *,
        config: SessionConfig | None = None,
        now: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(local_path, MsrpUri):
            local_path = (local_path,)
        if not local_path or not remote_path:
            raise ValueError("MSRP paths must not be empty")
        self.local_path: tuple[MsrpUri, ...] = local_path
        self.remote_path: tuple[MsrpUri, ...] = ()
        self.config = config or SessionConfig()
        self.state = SessionState.OPEN
        self._rng = rng or random.Random(secrets.randbits(128))
        self._now = now
        self._last_send = now
        self._events: deque[MsrpEvent] = deque()
        self._control: list[bytes] = []
        self._queue: deque[_Outgoing] = deque()
        self._active: dict[str, _Outgoing] = {}
        self._pending: dict[str, _Pending] = {}
        self._incoming: dict[str, _Incoming] = {}
        self._finished = _BoundedSet(1024)
        self._keepalive_tid: str | None = None
        self._paths = ""
        self.set_remote_path(remote_path)

    # ---------------------------------------------------------------- identity and binding

    @property
    def local_uri(self) -> MsrpUri:
        """Our own URI (the last of the local path)."""
        return self.local_path[-1]

    @property
    def session_id(self) -> str:
        return self.local_uri.session_id

    def set_remote_path(self, remote_path: tuple[MsrpUri, ...]) -> None:
        """Set (or update after a re-INVITE) the peer's path."""
        if not remote_path:
            raise ValueError("MSRP paths must not be empty")
        self.remote_path = tuple(remote_path)
        self._paths = (
            f"To-Path: {path_to_str(self.remote_path)}\r\n"
            f"From-Path: {path_to_str(self.local_path)}\r\n"
        )

    def matches(
        self, to_path: tuple[MsrpUri, ...], from_path: tuple[MsrpUri, ...], *, exact: bool
    ) -> bool:
        """Does a request with these paths belong to this session (BLINK.md 7)?

        ``exact`` (passive side without sessmatch, msrplib ``DirectAcceptor``): To-Path must
        equal our path and From-Path the path from the remote SDP, URI by URI as RFC 4975 6.1
        compares them. Otherwise (sessmatch) only the session-ids are compared. A request
        that does not match is answered with 481.
        """
        if not to_path or not from_path:
            return False
        if exact:
            return to_path == self.local_path and from_path == self.remote_path
        return (
            to_path[-1].session_id == self.local_uri.session_id
            and from_path[-1].session_id == self.remote_path[-1].session_id
        )

    # ------------------------------------------------------------------------- receiving

    def receive_message(self, message: MsrpRequest | MsrpResponse, now: float) -> None:
        """Handle one parsed chunk from the peer."""
        self._now = now
        if self.state is SessionState.CLOSED:
            logger.debug("x chunk for closed session %s dropped", self.session_id)
            return
        if isinstance(message, MsrpResponse):
            self._on_response(message)
            return
        try:
            self._on_request(message)
        except RemoteProtocolError as exc:  # the single conversion point (h11 style)
            logger.debug("x MSRP %s refused: %s", message.method, exc.reason)
            if message.method != "REPORT":
                fr = _lenient_failure_report(message)
                if _should_respond(fr, exc.status):
                    self._respond(message, exc.status)

    def _on_request(self, req: MsrpRequest) -> None:
        method = req.method
        if method == "REPORT":  # never answered (RFC 4975 7.1.2)
            self._on_report(req)
            return
        if req.to_path[-1].session_id != self.local_uri.session_id:
            raise RemoteProtocolError("Session does not exist", 481)
        if method == "SEND":
            self._on_send(req)
        elif method == "NICKNAME":
            if "Success-Report" in req.headers or "Failure-Report" in req.headers:
                raise RemoteProtocolError("NICKNAME must not carry report headers", 400)
            value = req.headers.get("Use-Nickname")
            if value is None:
                raise RemoteProtocolError("NICKNAME without Use-Nickname", 400)
            self._events.append(
                NicknameRequested(
                    transaction_id=req.transaction_id, nickname=_unquote(value), request=req
                )
            )
        elif method == "FILE_OFFSET":
            self._events.append(
                FileOffsetRequested(
                    transaction_id=req.transaction_id, message_id=req.message_id, request=req
                )
            )
        else:
            raise RemoteProtocolError(f"Method {method} not implemented", 501)

    def _on_report(self, req: MsrpRequest) -> None:
        message_id = req.message_id
        status = req.status
        if message_id is None or status is None:
            logger.debug("x REPORT without Message-ID or Status dropped")
            return
        self._events.append(
            ReportReceived(
                message_id=message_id,
                status=status,
                byte_range=req.byte_range,
                headers=req.headers,
            )
        )

    def _on_send(self, req: MsrpRequest) -> None:
        headers = req.headers
        message_id = headers.get("Message-ID")
        if not message_id:
            raise RemoteProtocolError("SEND without Message-ID", 400)
        failure_report = req.failure_report
        success_report = req.success_report
        byte_range = req.byte_range
        body = req.body
        size = len(body)
        flag = req.continuation
        config = self.config
        if (
            not body
            and flag == "$"
            and "Content-Type" not in headers
            and message_id not in self._incoming
        ):
            # session binding or keep-alive (BLINK.md 7); just acknowledge it
            self._respond_if(req, failure_report, 200)
            return
        start = 1 if byte_range is None else byte_range.start
        total = None if byte_range is None else byte_range.total
        if (
            flag == "$"
            and start == 1
            and (total is None or total == size)
            and message_id not in self._incoming
        ):
            # the common case: a whole message in one chunk
            done, status = self._finished.get(message_id)
            if done:  # a duplicate
                self._respond_if(req, failure_report, status or 200)
                return
            self._finished.add(message_id)
            if size > config.max_message_size:
                self._reject(req, message_id, failure_report, success_report)
                return
            self._respond_if(req, failure_report, 200)
            self._deliver(
                message_id,
                req.content_type,
                body,
                headers,
                size,
                success_report,
                failure_report,
                req.from_path,
            )
            return
        self._on_chunk(req, message_id, start, total, success_report, failure_report)

    def _on_chunk(
        self,
        req: MsrpRequest,
        message_id: str,
        start: int,
        total: int | None,
        success_report: bool,
        failure_report: str,
    ) -> None:
        config = self.config
        body = req.body
        flag = req.continuation
        inc = self._incoming.get(message_id)
        if inc is None:
            done, status = self._finished.get(message_id)
            if done:  # a late duplicate, or more of a message we refused
                self._respond_if(req, failure_report, status or 200)
                return
            if flag == "#":
                self._respond_if(req, failure_report, 200)
                return
            if len(self._incoming) >= config.max_incoming_messages:
                self._reject(req, message_id, failure_report, success_report)
                return
            inc = _Incoming(
                message_id,
                req.content_type,
                req.headers,
                req.from_path,
                success_report,
                failure_report,
            )
            self._incoming[message_id] = inc
        elif inc.content_type is None and req.content_type is not None:
            inc.content_type = req.content_type
            inc.headers = req.headers
        if flag == "#":
            del self._incoming[message_id]
            self._finished.add(message_id)
            self._respond_if(req, failure_report, 200)
            self._events.append(
                MessageAborted(message_id=message_id, status=None, reason="aborted by sender")
            )
            return
        offset = start - 1
        end = offset + len(body)
        if total is not None:
            if inc.total is not None and inc.total != total:
                raise RemoteProtocolError("Byte-Range total changed", 400)
            inc.total = total
        if (inc.total or end) > config.max_message_size or end > config.max_message_size:
            self._reject(req, message_id, failure_report, success_report)
            return
        if inc.total is not None and end > inc.total:
            raise RemoteProtocolError("Byte-Range beyond the total", 400)
        if flag == "$" and inc.total is None:
            inc.total = end
        if config.deliver_chunks:
            if body:
                self._events.append(
                    ChunkReceived(
                        message_id=message_id,
                        content_type=inc.content_type,
                        offset=offset,
                        data=body,
                        total=inc.total,
                    )
                )
        else:
            buf = inc.buffer
            if offset == len(buf):
                buf += body
            else:
                if len(buf) < end:
                    buf.extend(bytes(end - len(buf)))
                buf[offset:end] = body
        if body:
            inc.add_range(offset, end)
        self._respond_if(req, failure_report, 200)
        if inc.complete:
            del self._incoming[message_id]
            self._finished.add(message_id)
            assert inc.total is not None
            self._deliver(
                message_id,
                inc.content_type,
                b"" if config.deliver_chunks else bytes(inc.buffer[: inc.total]),
                inc.headers,
                inc.total,
                inc.success_report,
                inc.failure_report,
                inc.reply_path,
                chunked=config.deliver_chunks,
            )
        elif success_report and config.report_partial_chunks and body:
            # BLINK.md 4.3: each partial chunk is acknowledged with a 200 REPORT
            rng = f"{start}-{end}/{'*' if inc.total is None else inc.total}"
            self._queue_report(req.from_path, message_id, rng, 200, "OK")

    def _deliver(
        self,
        message_id: str,
        content_type: str | None,
        body: bytes,
        headers: dict[str, str],
        size: int,
        success_report: bool,
        failure_report: str,
        reply_path: tuple[MsrpUri, ...],
        *,
        chunked: bool = False,
    ) -> None:
        event = MessageReceived(
            message_id=message_id,
            content_type=content_type,
            body=body,
            headers=headers,
            size=size,
            success_report=success_report,
            failure_report=failure_report,
            reply_path=reply_path,
            chunked=chunked,
        )
        self._events.append(event)
        if self.config.auto_success_report:
            self.report(event, 200)

    def _reject(
        self, req: MsrpRequest, message_id: str, failure_report: str, success_report: bool
    ) -> None:
        """413: the message is too large; abort it (RFC 4975 7.1.1 and 10)."""
        self._incoming.pop(message_id, None)
        self._finished.add(message_id, 413)
        self._respond_if(req, failure_report, 413)
        if failure_report in ("yes", "partial"):
            br = req.headers.get("Byte-Range", "1-*/*")
            self._queue_report(req.from_path, message_id, br, 413, default_comment(413))
        self._events.append(
            MessageAborted(message_id=message_id, status=413, reason="message too large")
        )

    def _on_response(self, response: MsrpResponse) -> None:
        pending = self._pending.pop(response.transaction_id, None)
        if pending is None:
            logger.debug("x response to unknown transaction %s", response.transaction_id)
            return
        if pending.keep_alive:
            self._keepalive_tid = None
            return
        if response.status != 200 and pending.method == "SEND" and pending.message_id:
            self._stop_sending(pending.message_id)
        self._events.append(
            ResponseReceived(
                transaction_id=response.transaction_id,
                method=pending.method,
                message_id=pending.message_id,
                status=response.status,
                comment=response.comment,
                headers=response.headers,
            )
        )

    def next_event(self) -> MsrpEvent | None:
        """The next event, or None."""
        events = self._events
        return events.popleft() if events else None

    # ---------------------------------------------------------------------- answering

    def _respond_if(self, req: MsrpRequest, failure_report: str, status: int) -> None:
        if _should_respond(failure_report, status):
            self._respond(req, status)

    def _respond(
        self,
        req: MsrpRequest,
        status: int,
        comment: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if comment is None:
            comment = default_comment(status)
        tid = req.transaction_id
        if headers:
            response = MsrpResponse(
                tid, status, comment, req.from_path[:1], (self.local_uri,), dict(headers)
            )
            self._control.append(response.to_bytes())
            return
        line = f"MSRP {tid} {status} {comment}" if comment else f"MSRP {tid} {status}"
        self._control.append(
            f"{line}\r\nTo-Path: {req.from_path[0]}\r\nFrom-Path: {self.local_uri}\r\n"
            f"-------{tid}$\r\n".encode()
        )

    def respond(
        self,
        request: MsrpRequest,
        status: int,
        comment: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer a request handed to the application (NICKNAME: 200 or 425, RFC 7701 3.2;
        FILE_OFFSET), honouring its Failure-Report (RFC 4975 7.2)."""
        self._check_open()
        if not 200 <= status <= 699:
            raise LocalProtocolError(f"bad status {status}")
        if _should_respond(_lenient_failure_report(request), status):
            self._respond(request, status, comment, headers)

    def respond_file_offset(self, request: MsrpRequest, offset: int) -> None:
        """200 with ``Offset: <bytes already received>`` (BLINK.md 5)."""
        if offset < 0:
            raise LocalProtocolError("negative file offset")
        self.respond(request, 200, headers={"Offset": str(offset)})

    def report(
        self, message: MessageReceived, status: int = 200, comment: str | None = None
    ) -> bool:
        """Send the REPORT for a received message if its report headers ask for one (RFC 4975
        7.1.2, BLINK.md 7): a 200 only with Success-Report yes, an error unless
        Failure-Report is no. Returns whether a REPORT was queued."""
        self._check_open()
        if status == 200:
            if not message.success_report:
                return False
        elif message.failure_report == "no":
            return False
        if comment is None:
            comment = default_comment(status)
        size = message.size
        self._queue_report(
            message.reply_path, message.message_id, f"1-{size}/{size}", status, comment
        )
        return True

    def _queue_report(
        self,
        to_path: tuple[MsrpUri, ...],
        message_id: str,
        byte_range: str,
        status: int,
        comment: str,
    ) -> None:
        tid = self._new_id()
        status_text = f"000 {status} {comment}" if comment else f"000 {status}"
        self._control.append(
            f"MSRP {tid} REPORT\r\nTo-Path: {path_to_str(to_path)}\r\n"
            f"From-Path: {path_to_str(self.local_path)}\r\nMessage-ID: {message_id}\r\n"
            f"Byte-Range: {byte_range}\r\nStatus: {status_text}\r\n-------{tid}$\r\n".encode()
        )

    # ------------------------------------------------------------------------- sending

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _check_open(self) -> None:
        if self.state is not SessionState.OPEN:
            raise LocalProtocolError("MSRP session is closed")

    def send_message(
        self,
        content_type: str,
        body: bytes | ChunkSource,
        *,
        success_report: bool = True,
        failure_report: str = "yes",
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
        offset: int = 0,
    ) -> str:
        """Queue a message; returns its Message-ID. ``offset`` skips bytes the peer already
        has (FILE_OFFSET, BLINK.md 5). Extra ``headers`` (e.g. Content-Disposition) are
        written before Content-Type."""
        self._check_open()
        if failure_report not in _FAILURE_VALUES:
            raise LocalProtocolError(f"bad Failure-Report {failure_report!r}")
        if not content_type or "\r" in content_type or "\n" in content_type:
            raise LocalProtocolError("bad Content-Type")
        total = len(body) if isinstance(body, bytes | bytearray | memoryview) else body.size
        if not 0 <= offset <= total:
            raise LocalProtocolError("offset beyond the body")
        if isinstance(body, bytearray | memoryview):
            body = bytes(body)
        message_id = message_id or self._new_id()
        out = _Outgoing(
            message_id,
            content_type,
            body,
            total,
            offset,
            success_report,
            failure_report,
            dict(headers) if headers else {},
        )
        self._queue.append(out)
        self._active[message_id] = out
        return message_id

    def abort_message(self, message_id: str) -> bool:
        """Stop sending a queued message; once chunks are out, a ``#`` chunk tells the peer
        (RFC 4975 7.1.1). Returns False if the message is not being sent."""
        out = self._stop_sending(message_id)
        if out is None:
            return False
        if out.started:
            tid = self._new_id()
            self._control.append(
                encode_request(
                    tid,
                    "SEND",
                    self._paths,
                    {
                        "Message-ID": message_id,
                        "Byte-Range": f"{out.offset + 1}-*/{out.total}",
                    },
                    b"",
                    "#",
                )
            )
        return True

    def _stop_sending(self, message_id: str) -> _Outgoing | None:
        out = self._active.pop(message_id, None)
        if out is not None:
            with contextlib.suppress(ValueError):
                self._queue.remove(out)
        return out

    def send_bind(self) -> str:
        """The active side's empty SEND that binds the connection (BLINK.md 7): Byte-Range
        1-0/0, no body, no report headers. Returns the transaction id; the 200 arrives as
        `ResponseReceived`."""
        return self._send_request(
            "SEND", {"Message-ID": self._new_id(), "Byte-Range": "1-0/0"}, expect=True
        )

    def send_nickname(self, nickname: str, *, quote: bool = True) -> str:
        """NICKNAME with Use-Nickname (RFC 7701 3.1); msrplib writes it unquoted."""
        if "\r" in nickname or "\n" in nickname:
            raise LocalProtocolError("bad nickname")
        value = (
            '"' + nickname.replace("\\", "\\\\").replace('"', '\\"') + '"' if quote else nickname
        )
        return self._send_request("NICKNAME", {"Use-Nickname": value}, expect=True)

    def send_file_offset(self, message_id: str | None = None) -> str:
        """FILE_OFFSET (msrplib, BLINK.md 5); the `ResponseReceived` carries ``Offset``."""
        headers = {"Message-ID": message_id} if message_id else {}
        return self._send_request("FILE_OFFSET", headers, expect=True)

    def _send_request(
        self, method: str, headers: dict[str, str], *, expect: bool, keep_alive: bool = False
    ) -> str:
        self._check_open()
        tid = self._new_id()
        self._control.append(encode_request(tid, method, self._paths, headers, b"", "$"))
        if expect:
            self._pending[tid] = _Pending(
                method,
                headers.get("Message-ID"),
                self._now + self.config.transaction_timeout,
                keep_alive=keep_alive,
            )
        return tid

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._control or self._queue)

    @property
    def queued_messages(self) -> int:
        """Outgoing messages not completely sent yet."""
        return len(self._queue)

    def data_to_send(self, max_chunks: int | None = None, *, now: float | None = None) -> bytes:
        """Bytes to write: responses, REPORTs and other control requests first, then at most
        ``max_chunks`` message chunks taken round-robin from the outgoing messages."""
        if now is not None:
            self._now = now
        out = self._control
        self._control = []
        queue = self._queue
        sent = 0
        while queue and (max_chunks is None or sent < max_chunks):
            message = queue.popleft()
            out.append(self._next_chunk(message))
            sent += 1
            if message.offset < message.total:
                queue.append(message)
            else:
                self._active.pop(message.message_id, None)
        if not out:
            return b""
        self._last_send = self._now
        return out[0] if len(out) == 1 else b"".join(out)

    def _next_chunk(self, message: _Outgoing) -> bytes:
        config = self.config
        total = message.total
        offset = message.offset
        size = min(config.chunk_size, total - offset)
        body = message.body
        data: bytes | memoryview
        if isinstance(body, bytes):
            # a view, not a copy: the join below is the only copy of the chunk
            data = memoryview(body)[offset : offset + size] if (offset or size != total) else body
            source, start = body, offset
        else:
            data = body.read(offset, size)
            if len(data) != size:
                raise LocalProtocolError("chunk source returned a short read")
            source, start = data, 0
        end = offset + size
        flag = "$" if end >= total else "+"
        end_text = "*" if total > config.star_end_threshold else str(end)
        fr = message.failure_report
        head = (
            f"{self._paths}Message-ID: {message.message_id}\r\n"
            f"Byte-Range: {offset + 1}-{end_text}/{total}\r\n"
            f"Success-Report: {'yes' if message.success_report else 'no'}\r\n"
            f"Failure-Report: {fr}\r\n"
        )
        extra = "".join(f"{k}: {v}\r\n" for k, v in message.headers.items())
        head = f"{head}{extra}Content-Type: {message.content_type}\r\n\r\n"
        while True:
            tid = self._new_id()
            end_line = f"-------{tid}".encode()
            if source.find(end_line, start, start + size) < 0:
                break
        message.offset = end
        message.started = True
        if fr != "no":
            self._pending[tid] = _Pending(
                "SEND",
                message.message_id,
                self._now + config.transaction_timeout,
                quiet=fr == "partial",
            )
        return b"".join(
            (f"MSRP {tid} SEND\r\n{head}".encode(), data, b"\r\n", end_line, flag.encode(), b"\r\n")
        )

    # --------------------------------------------------------------------------- timers

    def get_timer(self) -> float | None:
        """When `handle_timer` must run next: the oldest transaction deadline or the next
        keep-alive."""
        if self.state is not SessionState.OPEN:
            return None
        deadline: float | None = None
        if self._pending:
            deadline = next(iter(self._pending.values())).deadline
        interval = self.config.keepalive_interval
        if interval is not None and self._keepalive_tid is None:
            due = self._last_send + interval
            if deadline is None or due < deadline:
                deadline = due
        return deadline

    def handle_timer(self, now: float) -> None:
        """Expire transactions (408) and send a keep-alive when the line was idle."""
        self._now = now
        if self.state is not SessionState.OPEN:
            return
        pending = self._pending
        while pending:
            tid, item = next(iter(pending.items()))
            if item.deadline > now:
                break
            del pending[tid]
            if item.keep_alive:
                self._keepalive_tid = None
            elif item.method == "SEND" and item.message_id:
                self._stop_sending(item.message_id)
            if not item.quiet:
                self._events.append(
                    TransactionTimedOut(
                        transaction_id=tid,
                        method=item.method,
                        message_id=item.message_id,
                        keep_alive=item.keep_alive,
                    )
                )
        interval = self.config.keepalive_interval
        if (
            interval is not None
            and self._keepalive_tid is None
            and now >= self._last_send + interval
            and not self.has_data_to_send
        ):
            self._keepalive_tid = self._send_request(
                "SEND",
                {"Message-ID": self._new_id(), "Byte-Range": "1-0/0", "Keep-Alive": "yes"},
                expect=True,
                keep_alive=True,
            )

    def close(self) -> None:
        """Forget everything; later input is ignored and sending raises."""
        self.state = SessionState.CLOSED
        self._queue.clear()
        self._active.clear()
        self._pending.clear()
        self._incoming.clear()
        self._control.clear()
