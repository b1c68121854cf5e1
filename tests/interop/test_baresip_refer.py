"""Dial-out by out-of-dialog REFER to the room (RFC 4579 5.5, 5.11; RFC 3515) with baresip.

A pjsua2 participant sits in the room; a raw-UDP client REFERs the room to baresip (auto-answer,
playing a tone); the focus dials baresip out and reports progress in `message/sipfrag` NOTIFYs
(RFC 3515 2.4.5). The pjsua2 participant must then hear baresip's tone. A second REFER with
`method=BYE` in the Refer-To URI removes baresip again.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.audio import level_db, rms_dbfs, tone_power, write_sine
from tests.helpers.baresip import Baresip, start_baresip
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent
from tests.helpers.server import RunningServer, start_server

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


BARESIP_TONE = 1300.0
PJSUA_TONE = 440.0
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length",
            "m": "contact", "o": "event", "c": "content-type", "r": "refer-to"}


# --------------------------------------------------------------------------- raw SIP over UDP
@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        first, *lines = head.decode("utf-8", "replace").split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines:
            if line[:1] in (" ", "\t") and headers:  # folded continuation line
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers.append((_COMPACT.get(name, name), value.strip()))
        return cls(first, headers, body)

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1])

    @property
    def method(self) -> str:
        return self.first_line.split()[0]


@dataclass
class UdpSipClient:
    """A referrer: sends REFERs, answers every request it gets (NOTIFYs) with 200 OK."""

    server: tuple[str, int]
    sock: socket.socket = field(init=False)
    requests: list[SipMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def refer(self, room_uri: str, refer_to: str, timeout: float = 5.0) -> tuple[SipMessage, str]:
        """Send an out-of-dialog REFER; return its final response and the Call-ID."""
        call_id = secrets.token_hex(10)
        request = (
            f"REFER {room_uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: \"Referrer\" <sip:referrer@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <{room_uri}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 REFER\r\n"
            f"Contact: <sip:referrer@127.0.0.1:{self.port}>\r\n"
            f"Refer-To: {refer_to}\r\n"
            "User-Agent: sylkbox-tests\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        deadline = time.monotonic() + timeout
        next_send = 0.0
        interval = 0.5
        while time.monotonic() < deadline:
            if time.monotonic() >= next_send:  # RFC 3261 17.1.2.2 timer E, roughly
                self.sock.sendto(request, self.server)
                next_send = time.monotonic() + interval
                interval = min(interval * 2, 4.0)
            msg = self._receive(min(0.1, max(0.01, deadline - time.monotonic())))
            if msg is None or not msg.is_response:
                continue
            if msg.get("call-id") == call_id and msg.status >= 200:
                return msg, call_id
        raise AssertionError(f"no final response to REFER {refer_to}")

    def notifies(self, call_id: str) -> list[SipMessage]:
        return [m for m in self.requests if m.method == "NOTIFY" and m.get("call-id") == call_id]

    def pump(self, seconds: float) -> None:
        """Receive (and answer) requests for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._receive(0.05)

    def wait_final_sipfrag(self, call_id: str, timeout: float) -> list[str]:
        """Answer NOTIFYs until one carries a final (>= 200) sipfrag; return all sipfrags."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frags = [m.body.decode(errors="replace") for m in self.notifies(call_id)]
            codes = [int(f.split()[1]) for f in frags if f.startswith("SIP/2.0 ")]
            if codes and codes[-1] >= 200:
                return frags
            self._receive(0.1)
        raise AssertionError(f"no final sipfrag; NOTIFYs: {self.notifies(call_id)!r}")

    def _receive(self, timeout: float) -> SipMessage | None:
        self.sock.settimeout(timeout)
        try:
            data, addr = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        msg = SipMessage.parse(data)
        if not msg.is_response:
            if not any(m.get("via") == msg.get("via") and m.get("cseq") == msg.get("cseq")
                       for m in self.requests):  # ignore retransmissions in the record
                self.requests.append(msg)
            self.sock.sendto(self._ok(msg), addr)
        return msg

    @staticmethod
    def _ok(request: SipMessage) -> bytes:
        lines = ["SIP/2.0 200 OK"]
        lines += [f"Via: {v}" for v in request.all("via")]
        for name in ("from", "to", "call-id", "cseq"):
            lines.append(f"{name.title()}: {request.get(name)}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------- the test
@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server that stays silent for a lone participant, so the end of the call can be
    checked for silence once baresip is removed."""
    srv = start_server(tmp_path / "srv", config='[media]\nalone = "silence"\n')
    try:
        yield srv
    finally:
        assert srv.stop() == 0, srv.log_text()[-3000:]


def test_refer_dials_out_baresip_then_refer_bye_removes_it(
    server: RunningServer, tmp_path: Path
) -> None:
    room_uri = f"sip:referroom@{server.host}:{server.sip_port}"
    baresip_tone = write_sine(tmp_path / "baresip_tone.wav", BARESIP_TONE, 120.0)
    pjsua_tone = write_sine(tmp_path / "pjsua_tone.wav", PJSUA_TONE, 5.0, rate=16000)
    heard = tmp_path / "pjsua_heard.wav"
    baresip: Baresip | None = None
    agent: AgentProcess | None = None
    referrer = UdpSipClient((server.host, server.sip_port))
    try:
        baresip = start_baresip(tmp_path, baresip_tone)
        target = f"sip:baresip@127.0.0.1:{baresip.sip_port}"
        agent = spawn_agent(tmp_path, "pjsua", room_uri, play=pjsua_tone, record=heard,
                            duration=20.0)
        agent.wait_event("confirmed", timeout=10)

        response, call_id = referrer.refer(room_uri, f"<{target}>")
        assert response.status == 202, response
        frags = referrer.wait_final_sipfrag(call_id, timeout=15)
        assert frags[-1].startswith("SIP/2.0 200"), (frags, server.log_text()[-3000:])
        notify = referrer.notifies(call_id)[-1]
        assert (notify.get("event") or "").split(";")[0].strip() == "refer"
        assert (notify.get("content-type") or "").startswith("message/sipfrag")
        established = baresip.wait_event("CALL_ESTABLISHED", timeout=10)
        assert "Call established" in baresip.log()

        referrer.pump(5.0)  # let baresip's tone reach the pjsua participant

        bye_response, bye_call_id = referrer.refer(room_uri, f"<{target};method=BYE>")
        assert bye_response.status == 202, bye_response
        closed = baresip.wait_event("CALL_CLOSED", timeout=10)
        bye_frags = referrer.wait_final_sipfrag(bye_call_id, timeout=10)
        assert bye_frags[-1].startswith("SIP/2.0 200"), (bye_frags, server.log_text()[-3000:])
        summary = agent.finish(timeout=30)
    finally:
        referrer.close()
        if agent is not None:
            agent.stop()
        if baresip is not None:
            baresip.stop()

    assert summary["confirmed"], summary
    assert "referroom" in server.log_text()
    # The pjsua participant heard baresip's tone while baresip was in the room.
    skip = established + 1.5 - summary["media_at"]
    window = closed - 0.5 - established - 1.5
    assert window > 2.0, (established, closed)
    share = level_db(tone_power(heard, BARESIP_TONE, skip=skip, duration=window))
    own = level_db(tone_power(heard, PJSUA_TONE, skip=skip, duration=window))
    assert share > -6.0, (share, own)
    assert own < share - 20.0, (share, own)
    # After the REFER-BYE, baresip's audio no longer reaches the room.
    after = closed + 1.5 - summary["media_at"]
    assert rms_dbfs(heard, skip=after, duration=3.0) < -50.0
