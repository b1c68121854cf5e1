"""Tests for sylkbox.net.transport: real sockets on 127.0.0.1 (and ::1) only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.net import (
    Address,
    ConnectionInfo,
    SipTransports,
    TransportLimits,
    ensure_certificate,
)
from sylkbox.sip.parser import ParserLimits

TIMEOUT = 5.0


def request(n: int, body: bytes = b"") -> bytes:
    """A minimal SIP request, numbered so tests can tell messages apart."""
    return (
        f"OPTIONS sip:room@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag={n}\r\n"
        f"To: <sip:room@127.0.0.1>\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response(n: int) -> bytes:
    return (
        f"SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag={n}\r\n"
        f"To: <sip:room@127.0.0.1>;tag=x\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Sink:
    """Collects what SipTransports hands up."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[bytes, Address, str, ConnectionInfo]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[Address, str, Exception]] = asyncio.Queue()

    def on_message(
        self, data: bytes, source: Address, transport: str, info: ConnectionInfo
    ) -> None:
        self.messages.put_nowait((data, source, transport, info))

    def on_send_error(self, dest: Address, transport: str, error: Exception) -> None:
        self.errors.put_nowait((dest, transport, error))

    async def message(self) -> tuple[bytes, Address, str, ConnectionInfo]:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT)

    async def error(self) -> tuple[Address, str, Exception]:
        return await asyncio.wait_for(self.errors.get(), TIMEOUT)


@contextlib.asynccontextmanager
async def running(
    limits: TransportLimits | None = None, client_ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[SipTransports, Sink]]:
    sink = Sink()
    transports = SipTransports(
        sink.on_message,
        limits=limits,
        on_send_error=sink.on_send_error,
        client_ssl_context=client_ssl_context,
    )
    try:
        yield transports, sink
    finally:
        await transports.close()


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
            data += chunk
    return data


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_udp_round_trip() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_udp("127.0.0.1", 0)
        assert bound[0] == "127.0.0.1" and bound[1] > 0
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            client.sendto(request(1), bound)
            data, source, transport, info = await sink.message()
            assert data == request(1)
            assert source == client.getsockname()
            assert transport == "udp"
            assert info == ConnectionInfo(transport="udp", local=bound, remote=source)
            transports.send(response(1), source, "udp")
            reply, addr = await asyncio.wait_for(loop.sock_recvfrom(client, 65536), TIMEOUT)
            assert reply == response(1)
            assert addr == bound


async def test_udp_ignores_bare_crlf_datagrams() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_udp("127.0.0.1", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"\r\n\r\n", bound)
            client.sendto(b"\r\n", bound)
            client.sendto(request(2), bound)
            data, *_ = await sink.message()
            assert data == request(2)
            assert sink.messages.empty()


async def test_udp_send_without_listener_of_that_family_reports_error() -> None:
    async with running() as (transports, sink):
        await transports.listen_udp("127.0.0.1", 0)
        transports.send(request(1), ("::1", 5060), "udp")
        dest, transport, error = await sink.error()
        assert dest == ("::1", 5060) and transport == "udp"
        assert isinstance(error, ConnectionError)


async def test_tcp_framing_two_messages_in_one_segment_and_one_split() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        _, writer = await asyncio.open_connection(*bound)
        body = b"v=0\r\n"
        writer.write(request(1) + request(2, body))
        await writer.drain()
        first, source, transport, info = await sink.message()
        second, *_ = await sink.message()
        assert (first, second) == (request(1), request(2, body))
        assert source == writer.get_extra_info("sockname")
        assert transport == "tcp" and info.connection_id is not None and not info.secure
        split = request(3, b"hello")
        writer.write(split[:17])
        await writer.drain()
        await asyncio.sleep(0.05)
        assert sink.messages.empty()
        writer.write(split[17:])
        await writer.drain()
        third, *_ = await sink.message()
        assert third == split
        writer.close()


async def test_tcp_reply_reuses_inbound_connection() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        writer.write(request(1))
        _, source, transport, first_info = await sink.message()
        transports.send(response(1), source, transport)
        expected = response(1)
        assert await asyncio.wait_for(reader.readexactly(len(expected)), TIMEOUT) == expected
        writer.write(request(2))
        _, _, _, second_info = await sink.message()
        assert second_info.connection_id == first_info.connection_id
        writer.close()


async def test_outbound_tcp_connect_and_reuse() -> None:
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.put_nowait((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    peer = server.sockets[0].getsockname()[:2]
    try:
        async with running() as (transports, sink):
            await transports.listen_tcp("127.0.0.1", 0)
            # Both queued while the connection is being opened.
            transports.send(request(1), peer, "tcp")
            transports.send(request(2), peer, "tcp")
            reader, writer = await asyncio.wait_for(connections.get(), TIMEOUT)
            expected = request(1) + request(2)
            assert await asyncio.wait_for(reader.readexactly(len(expected)), TIMEOUT) == expected
            transports.send(request(3), peer, "tcp")
            third = await asyncio.wait_for(reader.readexactly(len(request(3))), TIMEOUT)
            assert third == request(3)
            assert connections.empty()
            # The peer answers over the same connection.
            writer.write(response(3))
            data, source, transport, info = await sink.message()
            assert (data, source, transport) == (response(3), peer, "tcp")
            assert info.remote == peer
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_outbound_connect_failure_reports_each_message() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with running() as (transports, sink):
        dest = ("127.0.0.1", closed_port)
        transports.send(request(1), dest, "tcp")
        transports.send(request(2), dest, "tcp")
        for _ in range(2):
            got_dest, transport, error = await sink.error()
            assert (got_dest, transport) == (dest, "tcp")
            assert isinstance(error, OSError)
        assert sink.errors.empty()


def server_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = ensure_certificate(tmp_path / "tls", "sylkbox.local")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_tls_server_and_client(tmp_path: Path) -> None:
    async with running() as (server, server_sink), running() as (client, client_sink):
        bound = await server.listen_tls("127.0.0.1", 0, server_context(tmp_path))
        client.send(request(1), bound, "tls")
        data, source, transport, info = await server_sink.message()
        assert data == request(1) and transport == "tls" and info.secure
        server.send(response(1), source, "tls")
        reply, reply_source, reply_transport, reply_info = await client_sink.message()
        assert reply == response(1)
        assert reply_source == bound and reply_transport == "tls" and reply_info.secure
        assert client_sink.errors.empty()


async def test_tls_client_with_verifying_context(tmp_path: Path) -> None:
    context = server_context(tmp_path)
    verifying = ssl.create_default_context(cafile=tmp_path / "tls" / "sylkbox.crt")
    async with (
        running() as (server, server_sink),
        running(client_ssl_context=verifying) as (client, client_sink),
    ):
        bound = await server.listen_tls("127.0.0.1", 0, context)
        client.send(request(1), bound, "tls")
        data, *_ = await server_sink.message()
        assert data == request(1)
        assert client_sink.errors.empty()


async def test_tls_verifying_client_rejects_unknown_certificate(tmp_path: Path) -> None:
    other, _ = ensure_certificate(tmp_path / "other", "other.local")
    verifying = ssl.create_default_context(cafile=other)
    async with (
        running() as (server, server_sink),
        running(client_ssl_context=verifying) as (client, client_sink),
    ):
        bound = await server.listen_tls("127.0.0.1", 0, server_context(tmp_path))
        client.send(request(1), bound, "tls")
        dest, transport, error = await client_sink.error()
        assert (dest, transport) == (bound, "tls")
        assert isinstance(error, ssl.SSLError)
        assert server_sink.messages.empty()


async def test_crlf_ping_gets_single_crlf_pong() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\r\n"
        writer.write(request(1))
        data, *_ = await sink.message()
        assert data == request(1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.1)
        writer.close()


async def test_oversized_message_closes_connection() -> None:
    limits = TransportLimits(parser=ParserLimits(max_message_size=1024))
    async with running(limits) as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        writer.write(request(1, b"x" * 4096))
        answer = await read_until_eof(reader)
        assert answer == b"" or answer.startswith(b"SIP/2.0 ")
        assert sink.messages.empty()
        writer.close()


async def test_undelimitable_stream_closes_connection() -> None:
    async with running() as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        without_length = request(1).replace(b"Content-Length: 0\r\n", b"")
        writer.write(without_length)
        answer = await read_until_eof(reader)
        assert answer == b"" or answer.startswith(b"SIP/2.0 4")
        assert sink.messages.empty()
        writer.close()


async def test_idle_inbound_connection_is_closed() -> None:
    async with running(TransportLimits(idle_timeout=0.2)) as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        writer.write(request(1))
        await sink.message()
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await read_until_eof(reader) == b""
        assert loop.time() - start >= 0.15
        writer.close()


async def test_write_buffer_over_high_water_closes_connection() -> None:
    async with running(TransportLimits(write_high_water=64 * 1024)) as (transports, sink):
        bound = await transports.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*bound)
        writer.write(request(1))
        _, source, transport, _ = await sink.message()
        big = b"x" * (32 * 1024 * 1024)  # the peer does not read: the kernel buffers fill up
        transports.send(big, source, transport)
        await asyncio.sleep(0.1)
        received = await read_until_eof(reader)
        assert len(received) < len(big)
        writer.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
async def test_ipv6_loopback_udp_and_tcp() -> None:
    async with running() as (server, server_sink), running() as (client, client_sink):
        udp = await server.listen_udp("::1", 0)
        tcp = await server.listen_tcp("::1", 0)
        await client.listen_udp("::1", 0)
        assert server.local_address("udp", socket.AF_INET6) == udp
        assert udp[0] == "::1" and tcp[0] == "::1"
        client.send(request(1), udp, "udp")
        data, source, transport, _ = await server_sink.message()
        assert (data, transport) == (request(1), "udp")
        assert source == client.local_address("udp", socket.AF_INET6)
        server.send(response(1), source, "udp")
        assert (await client_sink.message())[0] == response(1)
        client.send(request(2), tcp, "tcp")
        data, source, transport, info = await server_sink.message()
        assert (data, transport, info.local) == (request(2), "tcp", tcp)
        assert source[0] == "::1"
        server.send(response(2), source, "tcp")
        reply, reply_source, *_ = await client_sink.message()
        assert (reply, reply_source) == (response(2), tcp)


async def test_local_address() -> None:
    async with running() as (transports, _):
        udp = await transports.listen_udp("127.0.0.1", 0)
        tcp = await transports.listen_tcp("127.0.0.1", 0)
        assert transports.local_address("udp", socket.AF_INET) == udp
        assert transports.local_address("tcp", socket.AF_INET) == tcp
        with pytest.raises(LookupError):
            transports.local_address("tls", socket.AF_INET)
        with pytest.raises(ValueError):
            await transports.listen_tcp("localhost", 0)


async def test_close_releases_ports_and_connections() -> None:
    sink = Sink()
    transports = SipTransports(sink.on_message, on_send_error=sink.on_send_error)
    udp = await transports.listen_udp("127.0.0.1", 0)
    tcp = await transports.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*tcp)
    writer.write(request(1))
    await sink.message()
    await transports.close()
    assert await read_until_eof(reader) == b""
    writer.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(udp)
    again = SipTransports(sink.on_message)
    try:
        assert await again.listen_tcp(*tcp) == tcp
    finally:
        await again.close()
    transports.send(request(2), ("127.0.0.1", 9), "udp")
    _, transport, error = await sink.error()
    assert transport == "udp" and isinstance(error, ConnectionError)
    with pytest.raises(RuntimeError):
        await transports.listen_udp("127.0.0.1", 0)


async def test_handler_exception_does_not_kill_connection() -> None:
    received: list[bytes] = []

    def on_message(data: bytes, source: Address, transport: str, info: ConnectionInfo) -> None:
        received.append(data)
        if len(received) == 1:
            raise RuntimeError("boom")

    transports = SipTransports(on_message)
    try:
        bound = await transports.listen_tcp("127.0.0.1", 0)
        _, writer = await asyncio.open_connection(*bound)
        writer.write(request(1) + request(2))
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received == [request(1), request(2)]
        writer.close()
    finally:
        await transports.close()
