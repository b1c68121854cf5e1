"""Malformed SIP sent raw over UDP and TCP from Python sockets (RFC 3261 8.2, 18.3, 21.5.14).

A request with enough headers to answer gets 400 with a reason phrase naming the problem; an
oversized one gets 513 or (TCP) a closed connection; garbage gets nothing. Every test ends by
checking that the focus still answers OPTIONS with 200.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import RunningServer, serve

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

TRANSPORTS = ["udp", "tcp"]
MAX_MESSAGE_SIZE = 4096


def _request(
    port: int,
    transport: str,
    *,
    method: str = "OPTIONS",
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    body: bytes = b"",
    target: tuple[str, int] = ("127.0.0.1", 5060),
) -> bytes:
    call_id = uuid.uuid4().hex
    headers = {
        "Via": f"SIP/2.0/{transport.upper()} 127.0.0.1:{port};branch=z9hG4bK{call_id[:12]};rport",
        "Max-Forwards": "70",
        "From": f"<sip:mallory@127.0.0.1:{port}>;tag={call_id[:8]}",
        "To": f"<sip:room@{target[0]}:{target[1]}>",
        "Call-ID": call_id,
        "CSeq": f"1 {method}",
        "Content-Length": str(len(body)),
    }
    headers.update(replace or {})
    lines = [f"{method} sip:room@{target[0]}:{target[1]} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _status(data: bytes) -> tuple[int, str]:
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    proto, code, reason = [*line.split(" ", 2), ""][:3]
    assert proto == "SIP/2.0", data[:300]
    return int(code), reason


def _exchange(
    server: RunningServer, transport: str, build: object, timeout: float = 3.0
) -> tuple[bytes | None, bool]:
    """Send ``build(local_port)`` and return (first response or None, connection closed)."""
    assert callable(build)
    target = (server.host, server.sip_port)
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(timeout)
            s.sendto(build(s.getsockname()[1]), target)
            try:
                return s.recv(70000), False
            except TimeoutError:
                return None, False
    with socket.create_connection(target, timeout=timeout) as s:
        try:
            s.sendall(build(s.getsockname()[1]))
        except (BrokenPipeError, ConnectionResetError):
            return None, True
        data = b""
        end = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return data or None, True
            if not chunk:
                return data or None, True
            data += chunk
        return data or None, False


def _assert_alive(server: RunningServer, transport: str) -> None:
    assert server.process.poll() is None, server.log_text()[-3000:]
    reply, _ = _exchange(server, transport, lambda port: _request(port, transport))
    assert reply is not None, "no answer to OPTIONS after the malformed input"
    assert _status(reply)[0] == 200, reply[:300]


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path / "srv", config=f"[sip]\nmax_message_size = {MAX_MESSAGE_SIZE}\n")


CASES = {
    "missing-call-id": ({"drop": ("Call-ID",)}, "call-id"),
    "missing-from": ({"drop": ("From",)}, "from"),
    "bad-cseq-number": ({"replace": {"CSeq": "abc OPTIONS"}}, "cseq"),
    "bad-cseq-method": ({"replace": {"CSeq": "1 INVITE"}}, "cseq"),
    "bad-content-length": ({"replace": {"Content-Length": "xyz"}}, "content-length"),
    "negative-content-length": ({"replace": {"Content-Length": "-5"}}, "content-length"),
    "bad-max-forwards": ({"replace": {"Max-Forwards": "many"}}, "max-forwards"),
}


#: On a stream a bad Content-Length loses the framing: 400 then close, or just close, are fine.
FRAMING_CASES = {"bad-content-length", "negative-content-length"}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_request_gets_400_naming_the_problem(
    server: RunningServer, transport: str, case: str
) -> None:
    kwargs, named = CASES[case]
    reply, closed = _exchange(
        server, transport, lambda port: _request(port, transport, **kwargs)  # type: ignore[arg-type]
    )
    if reply is None and closed and transport == "tcp" and case in FRAMING_CASES:
        _assert_alive(server, transport)
        return
    assert reply is not None, f"no response to {case}\n" + server.log_text()[-2000:]
    code, reason = _status(reply)
    assert code == 400, reply[:400]
    assert named in reason.lower(), f"reason {reason!r} does not name {named}"
    _assert_alive(server, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_missing_cseq_is_dropped(server: RunningServer, transport: str) -> None:
    # A response must copy CSeq (RFC 3261 8.2.6.2); without one the request cannot be answered.
    reply, _ = _exchange(
        server, transport, lambda port: _request(port, transport, drop=("CSeq",)), timeout=1.0
    )
    assert reply is None, reply[:300]
    _assert_alive(server, transport)


def test_udp_content_length_beyond_datagram_is_400(server: RunningServer) -> None:
    # RFC 3261 18.3: a datagram that ends before the body does is an error; requests get 400.
    reply, _ = _exchange(
        server, "udp",
        lambda port: _request(port, "udp", replace={"Content-Length": "500"}, body=b"x" * 10),
    )
    assert reply is not None
    code, reason = _status(reply)
    assert code == 400 and "content-length" in reason.lower(), reply[:400]
    _assert_alive(server, "udp")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_oversized_body_is_513_or_closed(small_server: RunningServer, transport: str) -> None:
    body = b"v=0\r\n" + b"a=x-padding:" + b"y" * (MAX_MESSAGE_SIZE * 2) + b"\r\n"
    reply, closed = _exchange(
        small_server, transport,
        lambda port: _request(port, transport, replace={"Content-Type": "application/sdp"},
                              body=body),
    )
    if transport == "udp":  # a datagram is whole: the parser can answer it (RFC 3261 18.1.1)
        assert reply is not None and _status(reply)[0] == 513, reply
    elif reply is not None:
        assert _status(reply)[0] == 513, reply[:400]
    else:
        assert closed, "TCP: neither 513 nor a closed connection"
    _assert_alive(small_server, transport)


def test_tcp_endless_header_block_is_513_or_closed(small_server: RunningServer) -> None:
    def build(port: int) -> bytes:
        head = _request(port, "tcp").split(b"\r\n\r\n")[0]
        return head + b"\r\n" + b"X-Junk: " + b"z" * 200 + b"\r\n" * 1 + (
            b"X-More: " + b"q" * 100 + b"\r\n"
        ) * (MAX_MESSAGE_SIZE // 50)

    reply, closed = _exchange(small_server, "tcp", build)
    assert closed or (reply is not None and _status(reply)[0] == 513), reply
    _assert_alive(small_server, "tcp")


GARBAGE = {
    "random": os.urandom(512),
    "nul-and-high": b"\x00\xff\xfe" * 100,
    "text": b"HELLO THERE\r\nthis is not sip\r\n\r\n",
    "half-request-line": b"INVITE sip:room@127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_garbage_gets_no_response(server: RunningServer, transport: str, kind: str) -> None:
    reply, _ = _exchange(server, transport, lambda _port: GARBAGE[kind], timeout=1.0)
    assert reply is None, reply[:300]
    _assert_alive(server, transport)
