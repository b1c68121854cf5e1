"""A tiny blocking SIP-over-UDP client for tests: sends wire text, parses what comes back.

It is deliberately independent of sylkbox.sip's transaction layer: requests are written by hand,
and only `parse_message` is used to read responses.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field

from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message

__all__ = ["UdpSipClient", "sdp_offer"]


def sdp_offer(port: int, *, direction: str = "sendrecv", host: str = "127.0.0.1") -> str:
    kind = "IP6" if ":" in host else "IP4"
    return (
        "v=0\r\n"
        f"o=- 1 1 IN {kind} {host}\r\n"
        "s=-\r\n"
        f"c=IN {kind} {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n"
    )


@dataclass
class UdpSipClient:
    server: tuple[str, int]
    user: str = "alice"
    sock: socket.socket = field(init=False)
    port: int = field(init=False)
    received: list[Request | Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((self.server[0], 0))  # loopback of the server's family
        self.port = self.sock.getsockname()[1]

    @property
    def host(self) -> str:
        """Our address as written in a URI or Via (IPv6 in brackets, RFC 3261 25.1)."""
        host = self.server[0]
        return f"[{host}]" if ":" in host else host

    def close(self) -> None:
        self.sock.close()

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.host}"

    def request(
        self,
        method: str,
        uri: str,
        *,
        call_id: str | None = None,
        from_tag: str = "ft",
        to: str | None = None,
        cseq: int = 1,
        headers: str = "",
        body: str = "",
        content_type: str | None = None,
    ) -> str:
        """Send a request; return its Call-ID."""
        call_id = call_id or secrets.token_hex(8)
        ct = f"Content-Type: {content_type}\r\n" if content_type else ""
        branch = "z9hG4bK" + secrets.token_hex(6)
        text = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"
            f'From: "{self.user.title()}" <{self.aor}>;tag={from_tag}\r\n'
            f"To: {to or '<' + uri + '>'}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@{self.host}:{self.port}>\r\n"
            "Max-Forwards: 70\r\n"
            f"{headers}{ct}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )
        self.sock.sendto(text.encode(), self.server)
        return call_id

    def receive(self, timeout: float = 3.0) -> Request | Response:
        """The next message; requests other than ACK are answered 200 automatically."""
        self.sock.settimeout(timeout)
        data, addr = self.sock.recvfrom(65535)
        message = parse_message(data)
        self.received.append(message)
        if isinstance(message, Request) and message.method != "ACK":
            response = message.create_response(200)
            self.sock.sendto(response.to_bytes(), addr)
        return message

    def wait_for(self, predicate: object, timeout: float = 5.0) -> Request | Response:
        """Receive until `predicate(message)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("expected message did not arrive")
            message = self.receive(left)
            if callable(predicate) and predicate(message):
                return message

    def ack(self, uri: str, response: Response, *, cseq: int = 1) -> None:
        to = response.headers.get("To") or ""
        self.request(
            "ACK",
            uri,
            call_id=response.call_id,
            to=to,
            cseq=cseq,
            from_tag=response.from_.tag or "ft",
        )
