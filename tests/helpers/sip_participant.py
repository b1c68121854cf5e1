"""One SIP participant (UDP) as a child process, so that it can run in another network namespace.

``python -m tests.helpers.sip_participant --local ADDR --room sip:ROOM@HOST:PORT --user NAME``
binds a SIP and an RTP socket on ``ADDR``, INVITEs the room (G.711 SDP; no RTP is sent: give the
box a long ``[media] rtp_timeout``), ACKs the 200 and prints ``{"event": "joined", "at": T,
"status": 200, "contact": "<focus Contact>"}`` (``T`` = ``time.monotonic()`` when the 200 was
read: CLOCK_MONOTONIC is the same in every namespace). In-dialog requests from the box are
answered 200. A ``leave`` line on stdin, stdin's end or SIGTERM sends BYE and prints
``{"event": "left", "at": T, "status": <BYE response>}``. A failed INVITE prints
``{"event": "failed", "status": N}`` and exits 1; a BYE from the box prints ``{"event": "bye"}``.

`start_participant` runs it (under ``ip netns exec NS`` when given a namespace) and waits for the
join.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sylkbox.sip.message import Request, Response
from sylkbox.sip.uri import SipUri
from tests.helpers.sipclient import UdpSipClient, sdp_offer

__all__ = ["Participant", "start_participant"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _BoundClient(UdpSipClient):
    """`UdpSipClient` bound to a given local address instead of the server's."""

    local: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.local, 0))
        self.port = self.sock.getsockname()[1]

    @property
    def host(self) -> str:
        return self.local


def _emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def _run(local: str, room: str, user: str, timeout: float) -> int:
    uri = SipUri.parse(room)
    host, port = uri.host_port
    client = _BoundClient((host, port), user=user, local=local)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((local, 0))
    stopping = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        client.request("INVITE", room, body=sdp_offer(rtp.getsockname()[1], host=local),
                       content_type="application/sdp")
        final = client.wait_for(lambda m: isinstance(m, Response) and m.status >= 200, timeout)
        assert isinstance(final, Response)
        joined_at = time.monotonic()
        if final.status >= 300:
            _emit({"event": "failed", "status": final.status})
            return 1
        client.ack(room, final)
        contact = str(final.contacts[0].uri) if final.contacts else ""
        _emit({"event": "joined", "at": joined_at, "status": final.status, "contact": contact})
        while not stopping:
            readable, _, _ = select.select([sys.stdin, client.sock, rtp], [], [], 0.2)
            if rtp in readable:
                rtp.recv(2048)  # the room's audio: not checked here
            if client.sock in readable:
                message = client.receive(1.0)  # requests are answered 200
                if isinstance(message, Request) and message.method == "BYE":
                    _emit({"event": "bye"})
                    return 0
            if sys.stdin in readable:
                line = sys.stdin.readline()
                if not line or line.strip() == "leave":
                    break
        client.request("BYE", room, call_id=final.call_id, to=final.headers.get("To"), cseq=2)
        bye = client.wait_for(lambda m: isinstance(m, Response) and m.cseq.method == "BYE",
                              timeout)
        assert isinstance(bye, Response)
        _emit({"event": "left", "at": time.monotonic(), "status": bye.status})
        return 0
    finally:
        client.close()
        rtp.close()


class Participant:
    """The running child; `joined` is its ``joined`` message."""

    def __init__(self, process: subprocess.Popen[str], label: str) -> None:
        self.process = process
        self.label = label
        self.lines: list[str] = []
        self.joined: dict[str, Any] = {}

    def _next(self, timeout: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([stdout], [], [], max(left, 0))
            if not readable:
                raise TimeoutError(f"{self.label}: nothing in {timeout} s; got {self.lines}")
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"{self.label} exited ({self.process.poll()}): {self.lines}")
            self.lines.append(line.rstrip("\n"))
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message

    def wait_event(self, *events: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message = self._next(timeout)
            if message.get("event") in events:
                return message

    def leave(self, timeout: float = 10.0) -> dict[str, Any]:
        """Hang up (BYE) and wait for the child to say so; returns the ``left`` message."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("leave\n")
        stdin.flush()
        message = self.wait_event("left", "bye", timeout=timeout)
        self.stop()
        return message

    def stop(self) -> None:
        """Stop the child (SIGTERM: it hangs up first), by its PID."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def start_participant(room: str, *, local: str, user: str = "alice",
                      netns: str | None = None, timeout: float = 10.0) -> Participant:
    """Join `room` from `local` (inside `netns` if given); returns once the 200 came (raises
    if the INVITE failed)."""
    argv = [sys.executable, "-m", "tests.helpers.sip_participant", "--local", local,
            "--room", room, "--user", user]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=_REPO_ROOT)
    participant = Participant(process, f"participant {user}")
    try:
        participant.joined = participant.wait_event("joined", "failed", timeout=timeout)
    except BaseException:
        participant.stop()
        raise
    if participant.joined["event"] != "joined":
        participant.stop()
        raise RuntimeError(f"{participant.label}: {participant.joined}")
    return participant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.sip_participant")
    parser.add_argument("--local", required=True, help="address to bind (SIP and RTP)")
    parser.add_argument("--room", required=True, help="room URI, e.g. sip:standup@10.0.0.1")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    return _run(args.local, args.room, args.user, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
