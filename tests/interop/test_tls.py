"""SIP over TLS (RFC 3261 26.2, RFC 5246): pjsua2 calls a room over TLS 1.2, and a plain
Python `ssl` client gets 200 to OPTIONS (RFC 3261 11) from the focus.

pjsua2's bundled OpenSSL (1.0.2) speaks TLS 1.2 at most, so the server must accept TLS 1.2.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.helpers.audio import level_db, rms_dbfs, tone_power, write_sine
from tests.helpers.pjsua_agent import spawn_agent
from tests.helpers.server import RunningServer

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]



def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the box's certificate is self-signed
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _read_response(sock: ssl.SSLSocket, timeout: float) -> bytes:
    """One SIP response from a stream: headers, then Content-Length bytes of body."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value.strip())
    while len(body) < length:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_options_over_tls12(server: RunningServer) -> None:
    raw = socket.create_connection((server.host, server.tls_port), timeout=5)
    with raw, _client_context().wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.2"
        local_port = tls.getsockname()[1]
        call_id = secrets.token_hex(8)
        request = (
            f"OPTIONS sip:room@{server.host}:{server.tls_port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(6)}"
            ";rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:tester@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:room@{server.host}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:tester@127.0.0.1:{local_port};transport=tls>\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        tls.sendall(request.encode())
        response = _read_response(tls, timeout=5).decode(errors="replace")
    status_line, *header_lines = response.split("\r\n\r\n")[0].split("\r\n")
    assert status_line.startswith("SIP/2.0 200 "), response
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("server", "").startswith("sylkbox/"), response
    assert headers.get("call-id") == call_id, response
    assert headers.get("cseq", "").split() == ["1", "OPTIONS"], response


def test_pjsua2_call_over_tls(server: RunningServer, tmp_path: Path) -> None:
    room = f"sip:tlsroom@{server.host}:{server.tls_port};transport=tls"
    callers = []
    try:
        # Two TLS participants so each hears the other through the mixer.
        for name, freq in (("alice", 1000.0), ("bob", 600.0)):
            wav = write_sine(tmp_path / f"{name}_tone.wav", freq, 5.0, rate=16000)
            callers.append(spawn_agent(
                tmp_path, name, room, play=wav, record=tmp_path / f"{name}_heard.wav",
                duration=6.0, transport="tls",
            ))
            callers[-1].wait_event("confirmed", timeout=10)
        summaries = [c.finish(timeout=30) for c in callers]
    finally:
        for c in callers:
            c.stop()
    for s in summaries:
        assert s["confirmed"], s
        assert s["transport"] == "tls"
        assert s["rx_packets"] > 100, (s, server.log_text()[-3000:])
    # bob joined after alice: analyse from bob's media start plus a margin, in both files.
    overlap_start = summaries[1]["media_at"] + 1.0
    for s, other_freq in zip(summaries, (600.0, 1000.0), strict=True):
        heard = Path(s["record"])
        skip = overlap_start - s["media_at"]
        assert rms_dbfs(heard, skip=skip, duration=3.0) > -40.0, s
        assert level_db(tone_power(heard, other_freq, skip=skip, duration=3.0)) > -6.0, s
