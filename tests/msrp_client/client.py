"""An asyncio MSRP endpoint for tests, speaking bytes built by `tests.msrp_client.wire`.

It behaves like Blink's msrplib/sipsimple (BLINK.md 4 to 7) and records everything it receives
with `loop.time()` timestamps. Usage in an end-to-end test::

    uri = local_uri(tls=True)                     # active side: port 2855 is a placeholder
    offer = sdp_body(sdp_media([uri], setup="active"))
    ... INVITE with `offer`, read the answer's a=path ...
    client = await MsrpTestClient.connect(remote_path, local_uri=uri,
                                          identity="Alice <sip:alice@127.0.0.1>",
                                          peer_identity="<sip:room@127.0.0.1>")
    await client.send_chat("hello")
    message = await client.wait_for(lambda m: m.text == "welcome", timeout=5)
    await client.close()

Passive side: `client = await MsrpTestClient.listen(tls=True)`, put `client.local_uri` in the
SDP, then `await client.accept(remote_path)` once the focus has the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import ssl
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

from tests.msrp_client.cpim import (
    CpimMessage,
    build_cpim,
    iscomposing_xml,
    now_timestamp,
    parse_cpim,
)
from tests.msrp_client.wire import (
    ByteRange,
    Chunk,
    WireError,
    WireParser,
    build_report,
    build_request,
    build_response,
    byte_range_for,
    format_uri,
    new_message_id,
    new_session_id,
    parse_uri,
)

__all__ = [
    "FILE_CHUNK_SIZE",
    "ClientOptions",
    "Message",
    "MsrpTestClient",
    "Received",
    "SendOptions",
    "SentMessage",
    "local_uri",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

FILE_CHUNK_SIZE = 64 * 1024
"""sipsimple `OutgoingFileTransferHandler.file_part_size` (BLINK.md 5)."""
NICKNAME_IN_USE = "Nickname reserved or already in use"


def local_uri(*, tls: bool = True, host: str = "127.0.0.1", port: int = 2855) -> str:
    """A fresh local path URI; 2855 is the placeholder port an active side advertises."""
    return format_uri(host, port, new_session_id(), tls=tls)


@functools.cache
def _server_certificate() -> tuple[str, str]:
    from sylkbox.net.certs import ensure_certificate  # test helper only: a self-signed pair

    directory = Path(tempfile.mkdtemp(prefix="msrp-client-tls-"))
    cert, key = ensure_certificate(directory, "127.0.0.1", key_type="ec")
    return str(cert), str(key)


def _client_ssl() -> ssl.SSLContext:
    """Blink's Bonjour account does not verify the peer (BLINK.md 7)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(slots=True)
class Received:
    at: float
    chunk: Chunk


@dataclass
class Message:
    """A complete incoming message (all its SEND chunks reassembled) or an aborted one."""

    message_id: str
    content_type: str | None
    body: bytes
    chunks: list[Chunk]
    at: float
    aborted: bool = False

    @functools.cached_property
    def cpim(self) -> CpimMessage | None:
        if (self.content_type or "").split(";")[0].strip().lower() != "message/cpim":
            return None
        return parse_cpim(self.body)

    @property
    def text(self) -> str:
        """The chat text: the CPIM payload when wrapped, else the body."""
        cpim = self.cpim
        return cpim.text if cpim is not None else self.body.decode("utf-8", "replace")


@dataclass(slots=True)
class SentMessage:
    message_id: str
    chunks: list[Chunk]
    responses: list[Chunk] = field(default_factory=list)

    @property
    def codes(self) -> list[int]:
        return [r.code or 0 for r in self.responses]


@dataclass(slots=True)
class _Partial:
    """One message arriving in chunks (any order).  The contiguous prefix is tracked as chunks
    land (no sort per chunk), and pieces that tile the message exactly are joined in one copy."""

    chunks: list[Chunk] = field(default_factory=list)
    total: int | None = None
    last_end: int | None = None
    pieces: dict[int, bytes] = field(default_factory=dict)  # start (1-based) -> body
    ahead: dict[int, int] = field(default_factory=dict)  # start -> end of out-of-order pieces
    contiguous: int = 0  # bytes 1..contiguous have arrived

    def add(self, start: int, body: bytes) -> None:
        self.pieces[start] = body
        end = start - 1 + len(body)
        if start > self.contiguous + 1:
            self.ahead[start] = max(end, self.ahead.get(start, 0))
            return
        self.contiguous = max(self.contiguous, end)
        while self.ahead:  # absorb out-of-order pieces that now touch the prefix
            reachable = [s for s in self.ahead if s <= self.contiguous + 1]
            if not reachable:
                break
            for s in reachable:
                self.contiguous = max(self.contiguous, self.ahead.pop(s))

    def covered(self) -> int:
        """Bytes contiguous from byte 1."""
        return self.contiguous

    def assemble(self, size: int) -> bytes:
        ordered = [self.pieces[start] for start in sorted(self.pieces)]
        position = 1
        for start in sorted(self.pieces):
            if start != position:
                break
            position += len(self.pieces[start])
        else:
            if position - 1 == size:  # the pieces tile the message: one copy
                return b"".join(ordered)
        data = bytearray(size)
        for start, piece in self.pieces.items():
            data[start - 1:start - 1 + len(piece)] = piece[: max(0, size - start + 1)]
        return bytes(data)


StatusPolicy = Callable[[Chunk], tuple[int, str]]


class SendOptions(TypedDict, total=False):
    """The keyword options of `MsrpTestClient.send_message` that `send_chat` passes on."""

    success_report: str | None
    failure_report: str | None
    report_order: str
    chunk_size: int | None
    message_id: str | None
    wait: bool
    timeout: float
    abort_at: int | None


class ClientOptions(TypedDict, total=False):
    """The keyword options of `MsrpTestClient` that `connect` and `listen` pass on."""

    identity: str | None
    peer_identity: str | None
    send_reports: bool
    status_policy: StatusPolicy | None


class MsrpTestClient:
    """One MSRP session over one TCP or TLS connection (RFC 4975, RFC 6135 direct path)."""

    def __init__(
        self,
        local: str,
        *,
        identity: str | None = None,
        peer_identity: str | None = None,
        send_reports: bool = True,
        status_policy: StatusPolicy | None = None,
    ) -> None:
        self.local_uri = local
        self.tls = parse_uri(local).tls
        self.identity = identity
        self.peer_identity = peer_identity
        self.remote_path: list[str] = []
        self.send_reports = send_reports
        self.status_policy = status_policy
        self.taken_nicknames: set[str] = set()
        self.nicknames: list[str] = []
        self.file_offset = 0
        self.received: list[Received] = []
        self.sent: list[Chunk] = []
        self.parse_error: WireError | None = None
        self.closed = asyncio.Event()
        self._messages: list[Message] = []
        self._partials: dict[str, _Partial] = {}
        self._pending: dict[str, asyncio.Future[Chunk]] = {}
        self._changed = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connected = asyncio.Event()
        self._bound: asyncio.Future[Chunk] | None = None
        self._expected_from: list[str] | None = None
        self._sessmatch = False
        self._parser = WireParser()
        self._batch: list[bytes] = []  # answers to one read, written together

    # ------------------------------------------------------------------ set-up

    @classmethod
    async def connect(
        cls,
        remote_path: Sequence[str] | str,
        *,
        local_uri: str | None = None,
        tls: bool | None = None,
        bind: bool = True,
        timeout: float = 5.0,
        **options: Unpack[ClientOptions],
    ) -> MsrpTestClient:
        """Active side (BLINK.md 7): connect to the first hop of `remote_path` and, when `bind`,
        send the empty binding SEND (`Byte-Range: 1-0/0`) and wait for its 200."""
        path = remote_path.split() if isinstance(remote_path, str) else list(remote_path)
        first = parse_uri(path[0])
        if tls is None:
            tls = first.tls
        local = local_uri or format_uri("127.0.0.1", 2855, new_session_id(), tls=tls)
        client = cls(local, **options)
        client.remote_path = path
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                first.host, first.port or 2855, ssl=_client_ssl() if tls else None
            ),
            timeout,
        )
        client._attach(reader, writer)
        if bind:
            response = await client.bind(timeout=timeout)
            if response.code != 200:
                await client.close()
                raise ConnectionError(f"binding SEND answered {response.code} {response.comment}")
        return client

    @classmethod
    async def listen(
        cls, *, tls: bool = True, host: str = "127.0.0.1", **options: Unpack[ClientOptions]
    ) -> MsrpTestClient:
        """Passive side: listen on an ephemeral port; `local_uri` carries it for the SDP."""
        context = None
        if tls:
            cert, key = _server_certificate()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        placeholder = cls(format_uri(host, 2855, new_session_id(), tls=tls), **options)

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if placeholder._writer is not None:  # one connection per session
                writer.close()
                return
            placeholder._attach(reader, writer)

        server = await asyncio.start_server(on_connection, host, 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        placeholder.local_uri = format_uri(
            host, port, parse_uri(placeholder.local_uri).session_id, tls=tls
        )
        placeholder._server = server
        placeholder._bound = asyncio.get_running_loop().create_future()
        return placeholder

    async def accept(
        self, remote_path: Sequence[str] | str | None = None, *, sessmatch: bool = False,
        timeout: float = 5.0,
    ) -> Chunk:
        """Wait for the peer's connection and first SEND (answered 200 when its paths match:
        exact URIs, or session-ids only with `sessmatch`; else 481, BLINK.md 7)."""
        if remote_path is not None:
            path = remote_path.split() if isinstance(remote_path, str) else list(remote_path)
            self.remote_path = path
            self._expected_from = path
        self._sessmatch = sessmatch
        assert self._bound is not None, "accept() is for clients made by listen()"
        return await asyncio.wait_for(asyncio.shield(self._bound), timeout)

    def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._connected.set()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for future in self._pending.values():
            future.cancel()
        self.closed.set()

    async def __aenter__(self) -> MsrpTestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ sending

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (hostile-input tests)."""
        assert self._writer is not None, "not connected"
        async with self._write_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def send_chunk(self, chunk: Chunk) -> asyncio.Future[Chunk] | None:
        """Write one chunk; for a request that expects a response (RFC 4975 7.2: not when
        Failure-Report is `no`), return a future for it."""
        future: asyncio.Future[Chunk] | None = None
        if chunk.method is not None and chunk.method != "REPORT" and chunk.failure_report != "no":
            future = asyncio.get_running_loop().create_future()
            self._pending[chunk.transaction_id] = future
        self.sent.append(chunk)
        await self.send_raw(chunk.to_bytes())
        return future

    async def request(self, chunk: Chunk, *, timeout: float = 5.0) -> Chunk | None:
        future = await self.send_chunk(chunk)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(chunk.transaction_id, None)

    def make_request(
        self, method: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"",
        *, content_type: str | None = None, flag: str = "$",
    ) -> Chunk:
        return build_request(
            method, self.remote_path, [self.local_uri], headers, body,
            content_type=content_type, flag=flag,
        )

    async def bind(self, *, timeout: float = 5.0) -> Chunk:
        """The empty SEND that binds the connection (BLINK.md 7: no report headers)."""
        chunk = self.make_request(
            "SEND", [("Byte-Range", "1-0/0"), ("Message-ID", new_message_id())]
        )
        response = await self.request(chunk, timeout=timeout)
        assert response is not None
        return response

    async def send_keepalive(self, *, timeout: float = 5.0) -> Chunk:
        """msrplib's keep-alive: an empty SEND with `Keep-Alive: yes` (BLINK.md 7)."""
        chunk = self.make_request(
            "SEND",
            [("Byte-Range", "1-0/0"), ("Message-ID", new_message_id()), ("Keep-Alive", "yes")],
        )
        response = await self.request(chunk, timeout=timeout)
        assert response is not None
        return response

    async def send_message(
        self,
        body: bytes,
        content_type: str,
        *,
        success_report: str | None = "yes",
        failure_report: str | None = "yes",
        report_order: str = "chat",
        chunk_size: int | None = None,
        message_id: str | None = None,
        wait: bool = True,
        timeout: float = 5.0,
        abort_at: int | None = None,
    ) -> SentMessage:
        """Send `body` as one SEND (msrplib never splits chat, BLINK.md 4.3) or in chunks of
        `chunk_size`; headers in msrplib's order. `report_order` "chat" writes Failure-Report
        before Success-Report (sipsimple ChatStream), "file" the reverse (file transfer).
        `abort_at`: stop at that byte offset, ending the cut chunk with `#` (RFC 4975 7.1.1)."""
        message_id = message_id or new_message_id()
        total = len(body)
        size = chunk_size or max(total, 1)
        sent = SentMessage(message_id, [])
        futures: list[asyncio.Future[Chunk]] = []
        offset = 0
        while True:
            piece = body[offset:offset + size]
            flag = "$" if offset + len(piece) >= total else "+"
            if abort_at is not None and offset + len(piece) >= abort_at:
                piece = body[offset:abort_at]
                flag = "#"
            headers = [
                ("Byte-Range", str(byte_range_for(offset + 1, len(piece), total))),
                ("Message-ID", message_id),
            ]
            reports = [("Failure-Report", failure_report), ("Success-Report", success_report)]
            if report_order == "file":
                reports.reverse()
            headers += [(name, value) for name, value in reports if value is not None]
            chunk = self.make_request(
                "SEND", headers, piece, content_type=content_type, flag=flag
            )
            sent.chunks.append(chunk)
            future = await self.send_chunk(chunk)
            if future is not None:
                futures.append(future)
            offset += len(piece)
            if flag != "+":
                break
        if wait and futures:
            try:
                sent.responses = list(
                    await asyncio.wait_for(asyncio.gather(*futures), timeout)
                )
            finally:
                for chunk in sent.chunks:
                    self._pending.pop(chunk.transaction_id, None)
        return sent

    async def send_chat(
        self,
        text: str | bytes,
        to: str | None = None,
        *,
        content_type: str = "text/plain",
        cpim: bool = True,
        sender: str | None = None,
        datetime: str | None = None,
        ns_headers: Sequence[tuple[str, str, str, str]] = (),
        **options: Unpack[SendOptions],
    ) -> SentMessage:
        """A chat message CPIM-wrapped as Blink does (BLINK.md 4.2): `From` our identity, `To`
        the recipient (a participant for a private message) or the room, a DateTime."""
        if not cpim:
            data = text.encode() if isinstance(text, str) else text
            return await self.send_message(data, content_type, **options)
        recipient = to or self.peer_identity
        payload = build_cpim(
            text,
            sender=sender or self.identity,
            recipients=[recipient] if recipient else [],
            content_type=content_type,
            datetime=datetime or now_timestamp(),
            ns_headers=ns_headers,
        )
        return await self.send_message(payload, "message/cpim", **options)

    async def send_composing(self, state: str = "active", to: str | None = None) -> SentMessage:
        """Is-composing (RFC 3994) with both report headers `no` (BLINK.md 4.3)."""
        return await self.send_chat(
            iscomposing_xml(state),
            to,
            content_type="application/im-iscomposing+xml",
            success_report="no",
            failure_report="no",
        )

    async def send_nickname(self, name: str, *, timeout: float = 5.0) -> int:
        """NICKNAME (RFC 7701) with `Use-Nickname` unquoted, no report headers; the status."""
        response = await self.request(
            self.make_request("NICKNAME", [("Use-Nickname", name)]), timeout=timeout
        )
        assert response is not None and response.code is not None
        return response.code

    async def send_file_offset(self, *, timeout: float = 5.0) -> tuple[int, int | None]:
        """sipsimple's FILE_OFFSET; returns (status, Offset header value)."""
        response = await self.request(self.make_request("FILE_OFFSET"), timeout=timeout)
        assert response is not None and response.code is not None
        offset = response.header("Offset")
        return response.code, int(offset) if offset is not None else None

    async def send_file(
        self,
        source: bytes | Path | str,
        *,
        content_type: str = "application/octet-stream",
        chunk_size: int = FILE_CHUNK_SIZE,
        use_file_offset: bool = False,
        wait_report: bool = True,
        timeout: float = 10.0,
        abort_at: int | None = None,
    ) -> SentMessage:
        """Send a file as sipsimple does (BLINK.md 5): optional FILE_OFFSET first, then 64 KiB
        SEND chunks with one Message-ID and both reports `yes`; when `wait_report`, wait for the
        200 REPORT covering the last byte."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        start = 0
        if use_file_offset:
            code, offset = await self.send_file_offset(timeout=timeout)
            if code == 200 and offset:
                start = offset
        message_id = new_message_id()
        sent = await self._send_file_from(
            data, start, message_id, content_type, chunk_size, timeout, abort_at
        )
        if wait_report and abort_at is None:
            total = len(data)
            await self.wait_for_chunk(
                lambda c: c.method == "REPORT" and c.message_id == message_id
                and (c.status or (0, None))[0] == 200
                and (c.byte_range or ByteRange(1, 0, 0)).end == total,
                timeout=timeout,
            )
        return sent

    async def _send_file_from(
        self, data: bytes, start: int, message_id: str, content_type: str, chunk_size: int,
        timeout: float, abort_at: int | None,
    ) -> SentMessage:
        total = len(data)
        sent = SentMessage(message_id, [])
        futures = []
        offset = start
        while offset < total or (offset == 0 and total == 0):
            piece = data[offset:offset + chunk_size]
            flag = "$" if offset + len(piece) >= total else "+"
            if abort_at is not None and offset + len(piece) >= abort_at:
                piece, flag = data[offset:abort_at], "#"
            chunk = self.make_request(
                "SEND",
                [
                    ("Byte-Range", str(byte_range_for(offset + 1, len(piece), total))),
                    ("Message-ID", message_id),
                    ("Success-Report", "yes"),
                    ("Failure-Report", "yes"),
                ],
                piece,
                content_type=content_type,
                flag=flag,
            )
            sent.chunks.append(chunk)
            future = await self.send_chunk(chunk)
            assert future is not None
            futures.append(future)
            offset += len(piece)
            await asyncio.sleep(0)  # let other senders (chat) interleave between chunks
            if flag != "+":
                break
        sent.responses = list(await asyncio.wait_for(asyncio.gather(*futures), timeout))
        return sent

    # ------------------------------------------------------------------ receiving

    def messages(self) -> list[Message]:
        return [m for m in self._messages if not m.aborted]

    def aborted(self) -> list[Message]:
        return [m for m in self._messages if m.aborted]

    def chunks(self, method: str | None = None) -> list[Chunk]:
        return [r.chunk for r in self.received if method is None or r.chunk.method == method]

    def reports(self, message_id: str | None = None) -> list[Chunk]:
        return [
            c for c in self.chunks("REPORT") if message_id is None or c.message_id == message_id
        ]

    async def wait_for(
        self, predicate: Callable[[Message], bool] = lambda m: True, timeout: float = 5.0
    ) -> Message:
        """The first complete received message matching `predicate` (already received or not)."""
        def find() -> Message | None:
            return next((m for m in self.messages() if predicate(m)), None)

        return await self._wait(find, timeout)

    async def wait_for_chunk(
        self, predicate: Callable[[Chunk], bool], timeout: float = 5.0
    ) -> Chunk:
        def find() -> Chunk | None:
            return next((r.chunk for r in self.received if predicate(r.chunk)), None)

        return await self._wait(find, timeout)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def _wait(self, find: Callable[[], _T | None], timeout: float) -> _T:
        async with self._changed:
            result: _T | None = None

            def ready() -> bool:
                nonlocal result
                result = find()
                return result is not None or self.closed.is_set()

            await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            if result is None:
                raise ConnectionError("connection closed before the awaited input arrived")
            return result

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(256 * 1024)
                if not data:
                    self._parser.eof()
                    break
                self._parser.feed(data)
                now = asyncio.get_running_loop().time()
                error: WireError | None = None
                try:
                    while (chunk := self._parser.next_chunk()) is not None:
                        self._handle(chunk, now)
                except WireError as exc:
                    error = exc  # answer what came before it first
                if self._batch:  # the responses and REPORTs of this read, in one write
                    batch = b"".join(self._batch)
                    self._batch.clear()
                    if self._writer is not None and not self._writer.is_closing():
                        await self.send_raw(batch)
                async with self._changed:
                    self._changed.notify_all()
                if error is not None:
                    raise error
        except WireError as error:
            log.warning("x unparsable input from peer: %s", error)
            self.parse_error = error
        except (ConnectionError, ssl.SSLError) as error:
            log.debug("x connection error: %s", error)
        finally:
            self.closed.set()
            if self._bound is not None and not self._bound.done():
                self._bound.set_exception(ConnectionError("closed before binding"))
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            async with self._changed:
                self._changed.notify_all()
            if self._writer is not None:
                self._writer.close()

    def _handle(self, chunk: Chunk, now: float) -> None:
        """One received chunk; answers go to `_batch`, written after the whole read."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("< %s", chunk.raw[:200])
        self.received.append(Received(now, chunk))
        if chunk.method is None:
            future = self._pending.pop(chunk.transaction_id, None)
            if future is not None and not future.done():
                future.set_result(chunk)
        elif chunk.method == "SEND":
            self._on_send(chunk, now)
        elif chunk.method == "REPORT":
            pass  # recorded; RFC 4975 7.1.2: REPORTs get no response
        elif chunk.method == "NICKNAME":
            self._on_nickname(chunk)
        elif chunk.method == "FILE_OFFSET":
            self._respond(chunk, 200, "OK", [("Offset", str(self.file_offset))])
        else:
            self._respond(chunk, 501, "Method unknown")

    def _emit(self, chunk: Chunk) -> None:
        """Queue an answer (a response or a REPORT: nothing to wait for) for the batch."""
        self.sent.append(chunk)
        self._batch.append(chunk.to_bytes())

    def _respond(
        self, chunk: Chunk, code: int, comment: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """RFC 4975 7.2: no response when Failure-Report is `no`, or `partial` with a 200."""
        failure_report = chunk.failure_report
        if failure_report == "no" or (failure_report == "partial" and code == 200):
            return
        self._emit(build_response(chunk, code, comment, local_uri=self.local_uri,
                                  headers=headers))

    def _path_error(self, chunk: Chunk) -> bool:
        """True when the To-Path does not name this session (RFC 4975 7.3 -> 481), or, on the
        binding SEND of a passive side, the From-Path is not the SDP path (BLINK.md 7)."""
        try:
            own, target = parse_uri(self.local_uri), parse_uri(chunk.to_path[-1])
            if self._sessmatch:
                if own.session_id != target.session_id:
                    return True
            elif not own.same_as(target):
                return True
            if self._bound is not None and not self._bound.done() and self._expected_from:
                got = [parse_uri(u) for u in chunk.from_path]
                want = [parse_uri(u) for u in self._expected_from]
                if self._sessmatch:
                    return got[0].session_id != want[0].session_id
                return len(got) != len(want) or not all(
                    a.same_as(b) for a, b in zip(got, want, strict=True)
                )
        except (WireError, IndexError):
            return True
        return False

    def _on_send(self, chunk: Chunk, now: float) -> None:
        if self._path_error(chunk):
            self._respond(chunk, 481, "No such session")
            return
        if self.status_policy is not None and (chunk.body or chunk.content_type):
            code, comment = self.status_policy(chunk)  # never for binding or keep-alive SENDs
        else:
            code, comment = 200, "OK"
        self._respond(chunk, code, comment)
        if self._bound is not None and not self._bound.done():
            if not self.remote_path:
                self.remote_path = chunk.from_path
            self._bound.set_result(chunk)
        if self.send_reports:
            wants = chunk.success_report == "yes" or (
                code != 200 and chunk.failure_report in ("yes", "partial")
            )
            if wants and chunk.message_id is not None:
                self._emit(build_report(chunk, code, comment, local_uri=self.local_uri))
        if code != 200 or (not chunk.body and chunk.content_type is None):
            return  # binding or keep-alive SEND, or refused
        self._reassemble(chunk, now)

    def _reassemble(self, chunk: Chunk, now: float) -> None:
        message_id = chunk.message_id or ""
        byte_range = chunk.byte_range or ByteRange(1, len(chunk.body), len(chunk.body))
        if (
            chunk.flag == "$"
            and byte_range.start == 1
            and byte_range.total in (None, len(chunk.body))
            and message_id not in self._partials
        ):  # the whole message in one chunk (chat)
            self._messages.append(
                Message(message_id, chunk.content_type, chunk.body, [chunk], now)
            )
            return
        partial = self._partials.setdefault(message_id, _Partial())
        partial.chunks.append(chunk)
        if chunk.flag == "#":
            del self._partials[message_id]
            self._messages.append(
                Message(message_id, chunk.content_type, b"", partial.chunks, now, aborted=True)
            )
            return
        if byte_range.total is not None and partial.total is None:
            partial.total = byte_range.total
        partial.add(byte_range.start, chunk.body)
        if chunk.flag == "$":
            partial.last_end = byte_range.start - 1 + len(chunk.body)
        size = partial.total if partial.total is not None else partial.last_end
        if size is not None and partial.covered() >= size:
            del self._partials[message_id]
            content_type = next(
                (c.content_type for c in partial.chunks if c.content_type), None
            )
            self._messages.append(
                Message(message_id, content_type, partial.assemble(size), partial.chunks, now)
            )

    def _on_nickname(self, chunk: Chunk) -> None:
        """A focus's NICKNAME handling (BLINK.md 4.3): 400 with report headers or without
        Use-Nickname, 425 when taken, else 200."""
        name = chunk.header("Use-Nickname")
        if name is None or chunk.header("Success-Report") or chunk.header("Failure-Report"):
            self._respond(chunk, 400, "Bad request")
            return
        name = name.strip().strip('"')
        if name in self.taken_nicknames:
            self._respond(chunk, 425, NICKNAME_IN_USE)
            return
        self.nicknames.append(name)
        self._respond(chunk, 200, "OK")


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
