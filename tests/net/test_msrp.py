"""Tests for sylkbox/net/msrp.py: the shared MSRP port (demultiplexing by session-id, 481 for
unknown sessions), the active side's connect and bind, TLS, back-pressure, keep-alive and
dropped connections (RFC 4975 5.4 and 8.1, BLINK.md 7).

The peer is written here at the byte level with asyncio streams on 127.0.0.1; the sessions are
the real `sylkbox.msrp.session.MsrpSession`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.msrp.message import MsrpRequest
from sylkbox.msrp.parser import MsrpParser
from sylkbox.msrp.session import MessageReceived, MsrpEvent, ResponseReceived, SessionConfig
from sylkbox.msrp.uri import MsrpUri
from sylkbox.net.certs import ensure_certificate
from sylkbox.net.msrp import (
    MsrpBindError,
    MsrpConnection,
    MsrpConnectionLost,
    MsrpListener,
    default_session_factory,
)

HOST = "127.0.0.1"
BLINK_SID = "0e5a9b1c7d3f8e2a4b6c"


def bind_send(to: str, from_: str, tid: str = "a1b2c3d4") -> bytes:
    """The empty SEND Blink's active side opens a session with (BLINK.md 7)."""
    return (
        f"MSRP {tid} SEND\r\n"
        f"To-Path: {to}\r\n"
        f"From-Path: {from_}\r\n"
        "Message-ID: 5f3e2d1c0b0a0908\r\n"
        "Byte-Range: 1-0/0\r\n"
        f"-------{tid}$\r\n"
    ).encode()


def text_send(to: str, from_: str, tid: str, body: bytes) -> bytes:
    return (
        f"MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from_}\r\n"
        f"Message-ID: m{tid}\r\nByte-Range: 1-{len(body)}/{len(body)}\r\n"
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + body + f"\r\n-------{tid}$\r\n".encode()


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One MSRP message as raw bytes: up to its end-line (the first line names the tid)."""
    first = await reader.readline()
    tid = first.split()[1].decode()
    rest = await reader.readuntil(f"-------{tid}".encode())
    tail = await reader.readline()
    return first + rest + tail


class Owner:
    """Records what the listener hands to the owner of a session."""

    def __init__(self) -> None:
        self.events: list[MsrpEvent] = []
        self.lost = asyncio.Event()

    def messages(self) -> list[MessageReceived]:
        return [e for e in self.events if isinstance(e, MessageReceived)]

    def __call__(self, event: MsrpEvent) -> None:
        self.events.append(event)
        if isinstance(event, MsrpConnectionLost):
            self.lost.set()


def make_listener(**kwargs: object) -> MsrpListener:
    options: dict[str, object] = {
        "bind": HOST,
        "port": 0,
        "advertised_host": HOST,
        "server_ssl": None,
    }
    options.update(kwargs)
    return MsrpListener(**options)  # type: ignore[arg-type]


@pytest.fixture
async def listener() -> AsyncIterator[MsrpListener]:
    listener = make_listener()
    await listener.start()
    yield listener
    await listener.close()


def blink_uri(port: int = 2855, *, secure: bool = False) -> MsrpUri:
    return MsrpUri(secure=secure, host="127.0.0.1", port=port, session_id=BLINK_SID)


# ------------------------------------------------------------------------ passive side
async def test_first_send_picks_the_session_by_session_id(listener: MsrpListener) -> None:
    first, second = listener.new_local_uri(), listener.new_local_uri()
    assert first.port == listener.port and not first.secure
    remote = blink_uri()
    waiting_first = listener.expect(first, (remote,))
    waiting_second = listener.expect(second, str(remote))
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(bind_send(str(second), str(remote)))
    response = await read_message(reader)
    assert response == (
        f"MSRP a1b2c3d4 200 OK\r\nTo-Path: {remote}\r\nFrom-Path: {second}\r\n"
        "-------a1b2c3d4$\r\n"
    ).encode()
    connection = await waiting_second
    assert not waiting_first.done()
    assert connection.inbound and connection.local_uri == second
    assert connection.remote_path == (remote,)
    writer.write(text_send(str(second), str(remote), "t2", b"hello"))
    assert (await read_message(reader)).startswith(b"MSRP t2 200 OK\r\n")
    owner = Owner()
    connection.set_handler(owner)  # what arrived before the handler is delivered now
    [message] = owner.messages()
    assert message.body == b"hello" and message.content_type == "text/plain"
    writer.close()
    await owner.lost.wait()
    waiting_first.cancel()


async def test_bytes_after_the_first_send_reach_the_session(listener: MsrpListener) -> None:
    local, remote = listener.new_local_uri(), blink_uri()
    waiting = listener.expect(local, (remote,))
    _, writer = await asyncio.open_connection(HOST, listener.port)
    data = bind_send(str(local), str(remote)) + text_send(str(local), str(remote), "t9", b"x")
    for i in range(0, len(data), 7):  # dribbled in small pieces
        writer.write(data[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    connection = await waiting
    owner = Owner()
    connection.set_handler(owner)
    for _ in range(50):
        if owner.messages():
            break
        await asyncio.sleep(0.01)
    assert [m.body for m in owner.messages()] == [b"x"]
    writer.close()


async def test_unknown_session_gets_481_and_the_connection_closes(
    listener: MsrpListener,
) -> None:
    local = listener.new_local_uri()
    waiting = listener.expect(local, (blink_uri(),))
    stranger = MsrpUri(secure=False, host=HOST, port=listener.port, session_id="f" * 20)
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(bind_send(str(stranger), str(blink_uri()), tid="zz1"))
    response = await read_message(reader)
    assert response.startswith(b"MSRP zz1 481 ")
    assert f"To-Path: {blink_uri()}\r\nFrom-Path: {stranger}\r\n".encode() in response
    assert await reader.read() == b""  # closed
    assert not waiting.done()
    writer.close()
    waiting.cancel()


@pytest.mark.parametrize("field", ["to", "from"])
async def test_exact_match_wants_both_paths(listener: MsrpListener, field: str) -> None:
    local, remote = listener.new_local_uri(), blink_uri()
    waiting = listener.expect(local, (remote,))
    other_remote = blink_uri(port=2900)
    to = MsrpUri(secure=False, host="10.9.9.9", port=local.port, session_id=local.session_id)
    if field == "to":
        request = bind_send(str(to), str(remote))
    else:
        request = bind_send(str(local), str(other_remote))
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(request)
    assert (await read_message(reader)).startswith(b"MSRP a1b2c3d4 481 ")
    assert not waiting.done()
    writer.close()
    # the session is still expected: the right peer can still connect
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(bind_send(str(local), str(remote)))
    assert (await read_message(reader)).startswith(b"MSRP a1b2c3d4 200 ")
    assert (await waiting).local_uri == local
    writer.close()


async def test_sessmatch_compares_session_ids_only(listener: MsrpListener) -> None:
    local = listener.new_local_uri()
    waiting = listener.expect(local, (blink_uri(),), exact=False)
    to = MsrpUri(secure=False, host="10.9.9.9", port=1234, session_id=local.session_id)
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(bind_send(str(to), str(blink_uri(port=3000))))
    assert (await read_message(reader)).startswith(b"MSRP a1b2c3d4 200 ")
    await waiting
    writer.close()


async def test_garbage_first_message_closes(listener: MsrpListener) -> None:
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.read(), 2)  # whatever it answers, it closes
    writer.close()


async def test_silent_inbound_connection_is_closed() -> None:
    listener = make_listener(accept_timeout=0.1)
    await listener.start()
    try:
        reader, writer = await asyncio.open_connection(HOST, listener.port)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        await listener.close()


async def test_expecting_the_same_session_twice_is_refused(listener: MsrpListener) -> None:
    local = listener.new_local_uri()
    waiting = listener.expect(local, (blink_uri(),))
    with pytest.raises(ValueError, match="already expected"):
        listener.expect(local, (blink_uri(),))
    listener.forget_expected(local)
    assert waiting.cancelled()
    listener.expect(local, (blink_uri(),)).cancel()


# ------------------------------------------------------------------------- active side
class PassivePeer:
    """A remote that listens (it answered ``passive``): checks the bind SEND, answers it."""

    def __init__(self, status: bytes = b"200 OK", ssl_context: ssl.SSLContext | None = None):
        self.status = status
        self.ssl = ssl_context
        self.bind: bytes = b""
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None
        self.connected = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, HOST, 0, ssl=self.ssl)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.bind = await read_message(reader)
        tid = self.bind.split()[1].decode()
        lines = self.bind.decode().split("\r\n")
        to = lines[1].removeprefix("To-Path: ")
        from_ = lines[2].removeprefix("From-Path: ")
        response = f"MSRP {tid} {self.status.decode()}\r\nTo-Path: {from_}\r\nFrom-Path: {to}\r\n"
        # the 200 and the peer's first message arrive in one segment
        follow = text_send(from_, to, "p1", b"first") if self.status.startswith(b"200") else b""
        writer.write(f"{response}-------{tid}$\r\n".encode() + follow)
        self.connected.set()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_active_connect_binds_with_an_empty_send(listener: MsrpListener) -> None:
    peer = PassivePeer()
    port = await peer.start()
    local, remote = listener.new_local_uri(), blink_uri(port)
    connection = await listener.connect(local, (remote,))
    lines = peer.bind.decode().split("\r\n")
    tid = lines[0].split()[1]
    assert lines[0] == f"MSRP {tid} SEND"
    assert lines[1:3] == [f"To-Path: {remote}", f"From-Path: {local}"]
    assert lines[3].startswith("Message-ID: ")
    assert lines[4:] == ["Byte-Range: 1-0/0", f"-------{tid}$", ""]  # no body, no reports
    assert not connection.inbound and connection.remote_path == (remote,)
    owner = Owner()
    connection.set_handler(owner)
    await asyncio.sleep(0.05)
    # the bind response is the adapter's; the message behind it goes to the session
    [message] = owner.messages()
    assert message.body == b"first"
    assert not any(isinstance(e, ResponseReceived) for e in owner.events)
    assert peer.reader is not None
    assert (await read_message(peer.reader)).startswith(b"MSRP p1 200 OK")
    connection.close()
    await connection.wait_closed()
    assert not owner.lost.is_set()  # closed by its owner: nothing to report
    await peer.close()


async def test_bind_refused_raises(listener: MsrpListener) -> None:
    peer = PassivePeer(status=b"481 Session does not exist")
    port = await peer.start()
    with pytest.raises(MsrpBindError, match="481"):
        await listener.connect(listener.new_local_uri(), (blink_uri(port),))
    await peer.close()


async def test_connect_refused_raises(listener: MsrpListener) -> None:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(MsrpBindError, match="cannot connect"):
        await listener.connect(listener.new_local_uri(), f"msrp://{HOST}:{port}/abc;tcp")


async def test_bind_times_out() -> None:
    listener = make_listener(bind_timeout=0.2)
    await listener.start()
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(MsrpBindError, match="no response"):
            await listener.connect(listener.new_local_uri(), (blink_uri(port),))
    finally:
        server.close()
        await listener.close()


# -------------------------------------------------------------------------------- TLS
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = ensure_certificate(tmp_path, "sylkbox.local", key_type="ec")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # as Blink's Bonjour account (BLINK.md 7)
    return server, client


async def test_tls_listener_and_tls_connect(tmp_path: Path) -> None:
    server_ctx, client_ctx = tls_contexts(tmp_path)
    listener = make_listener(server_ssl=server_ctx)
    await listener.start()
    try:
        local = listener.new_local_uri()
        assert local.secure and str(local).startswith("msrps://127.0.0.1:")
        remote = blink_uri(secure=True)
        waiting = listener.expect(local, (remote,))
        reader, writer = await asyncio.open_connection(HOST, listener.port, ssl=client_ctx)
        writer.write(bind_send(str(local), str(remote)))
        assert (await read_message(reader)).startswith(b"MSRP a1b2c3d4 200 OK")
        connection = await waiting
        assert connection.tls
        writer.close()

        # active side over TLS to a self-signed peer: no verification
        peer = PassivePeer(ssl_context=server_ctx)
        port = await peer.start()
        active = await listener.connect(listener.new_local_uri(), (blink_uri(port, secure=True),))
        assert active.tls and active.is_open
        active.close()
        await peer.close()
    finally:
        await listener.close()


# ----------------------------------------------------------------- lost, timers, writes
async def connected_pair(
    listener: MsrpListener,
) -> tuple[MsrpConnection, Owner, asyncio.StreamReader, asyncio.StreamWriter]:
    local, remote = listener.new_local_uri(), blink_uri()
    waiting = listener.expect(local, (remote,))
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(bind_send(str(local), str(remote)))
    await read_message(reader)
    connection = await waiting
    owner = Owner()
    connection.set_handler(owner)
    return connection, owner, reader, writer


async def test_dropped_connection_is_reported_once(listener: MsrpListener) -> None:
    connection, owner, _, writer = await connected_pair(listener)
    writer.transport.abort()
    await asyncio.wait_for(owner.lost.wait(), 2)
    lost = [e for e in owner.events if isinstance(e, MsrpConnectionLost)]
    assert len(lost) == 1 and lost[0].reason
    assert not connection.is_open
    connection.close()  # harmless afterwards
    assert len([e for e in owner.events if isinstance(e, MsrpConnectionLost)]) == 1


async def test_unanswered_keep_alive_drops_the_connection() -> None:
    config = SessionConfig(keepalive_interval=0.1, transaction_timeout=0.2)
    listener = make_listener(session_factory=default_session_factory(config))
    await listener.start()
    try:
        connection, owner, reader, writer = await connected_pair(listener)
        keep_alive = await asyncio.wait_for(read_message(reader), 2)  # never answered
        assert b"Keep-Alive: yes" in keep_alive or b"Byte-Range: 1-0/0" in keep_alive
        await asyncio.wait_for(owner.lost.wait(), 2)
        [lost] = [e for e in owner.events if isinstance(e, MsrpConnectionLost)]
        assert "keep-alive" in lost.reason
        assert not connection.is_open
        writer.close()
    finally:
        await listener.close()


async def test_session_output_is_written(listener: MsrpListener) -> None:
    connection, owner, reader, writer = await connected_pair(listener)
    message_id = connection.call(lambda s: s.send_message("text/plain", b"hi there"))
    sent = await read_message(reader)
    lines = sent.split(b"\r\n")
    assert lines[1] == f"To-Path: {blink_uri()}".encode()
    assert lines[2] == f"From-Path: {connection.local_uri}".encode()
    assert f"Message-ID: {message_id}".encode() in lines
    assert b"hi there" in lines
    tid = lines[0].split()[1].decode()
    writer.write(
        f"MSRP {tid} 200 OK\r\nTo-Path: {connection.local_uri}\r\nFrom-Path: {blink_uri()}\r\n"
        f"-------{tid}$\r\n".encode()
    )
    for _ in range(50):
        if any(isinstance(e, ResponseReceived) for e in owner.events):
            break
        await asyncio.sleep(0.01)
    [response] = [e for e in owner.events if isinstance(e, ResponseReceived)]
    assert response.status == 200 and response.message_id == message_id
    writer.close()


async def test_slow_peer_past_the_write_limit_is_dropped() -> None:
    listener = make_listener(write_high_water=16 * 1024, write_limit=16 * 1024)
    await listener.start()
    try:
        connection, owner, _, writer = await connected_pair(listener)
        big = b"x" * (64 * 1024 * 1024)  # the peer never reads
        connection.call(lambda s: s.send_message("application/octet-stream", big))
        await asyncio.wait_for(owner.lost.wait(), 5)
        [lost] = [e for e in owner.events if isinstance(e, MsrpConnectionLost)]
        assert "write buffer" in lost.reason
        writer.close()
    finally:
        await listener.close()


async def test_back_pressure_keeps_chunks_in_the_session() -> None:
    listener = make_listener(write_high_water=64 * 1024)
    await listener.start()
    try:
        connection, owner, reader, writer = await connected_pair(listener)
        size = 48 * 1024 * 1024
        connection.call(lambda s: s.send_message("application/octet-stream", b"y" * size))
        assert not connection.writable  # paused over the high-water mark
        assert connection.session.queued_messages == 1  # the rest waits in the core
        chat = connection.call(lambda s: s.send_message("text/plain", b"still chatting"))
        drained = asyncio.ensure_future(connection.drain())
        parser = MsrpParser()
        body = 0
        chat_seen = False
        while body < size or not chat_seen:
            data = await asyncio.wait_for(reader.read(1 << 20), 5)
            assert data
            parser.feed(data)
            while (chunk := parser.next_message()) is not None:
                assert isinstance(chunk, MsrpRequest)
                if chunk.message_id == chat:
                    chat_seen = True
                    assert body < size  # interleaved with the big transfer
                else:
                    body += len(chunk.body)
                    assert len(chunk.body) <= 64 * 1024
        await asyncio.wait_for(drained, 5)
        assert connection.writable and not connection.session.has_data_to_send
        assert not owner.lost.is_set()
        writer.close()
    finally:
        await listener.close()


async def test_close_fails_expectations_and_closes_connections() -> None:
    listener = make_listener()
    await listener.start()
    connection, owner, reader, _ = await connected_pair(listener)
    waiting = listener.expect(listener.new_local_uri(), (blink_uri(),))
    await listener.close()
    assert waiting.cancelled()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    assert not connection.is_open and not owner.lost.is_set()
