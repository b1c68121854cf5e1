"""In-process fakes for the focus's ports (`SipPort`, `MediaPort`) and SIP request builders.

`FakeSipPort` records every response and request the focus sends; a test plays the peer by
completing the request futures with chosen responses (`SentRequest.reply`). `FakeMediaPort`
allocates RTP ports and records stream commands. Requests are built as wire bytes and parsed
with the real parser, so the focus sees exactly what it would see from the network.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sylkbox.conference.focus import Focus
from sylkbox.conference.media_port import StreamSpec
from sylkbox.config import Config
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from sylkbox.sip.transaction import RequestReceived, ServerKey

__all__ = [
    "AUDIO_OFFER",
    "FOCUS_ADDRESS",
    "ROOM_URI",
    "FakeMediaPort",
    "FakeSipPort",
    "FocusEnv",
    "Phone",
    "RequestSink",
    "SentRequest",
    "audio_sdp",
    "build_request",
    "drain",
    "parse_request",
    "received",
]

Address = tuple[str, int]
FOCUS_ADDRESS: Address = ("192.0.2.1", 5060)
MAGIC_COOKIE = "z9hG4bK"


async def drain(rounds: int = 30) -> None:
    """Let the focus's tasks run until they block on something the test controls."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------- requests
def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request), "expected a request"
    return message


def build_request(
    method: str,
    uri: str,
    *,
    from_: str,
    to: str,
    call_id: str | None = None,
    cseq: int = 1,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    via: str = "SIP/2.0/UDP 192.0.2.20:5060",
) -> Request:
    """Write a request as a peer would put it on the wire, then parse it."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via};rport;branch={MAGIC_COOKIE}{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {call_id or secrets.token_hex(10)}",
        f"CSeq: {cseq} {method}",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return parse_request(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def server_key(request: Request) -> ServerKey | None:
    """The RFC 3261 17.2.3 key the transaction layer would give this request."""
    if request.method == "ACK":
        return None
    via = request.top_via
    return ServerKey(via.branch or "", f"{via.host.lower()}:{via.port or ''}", request.cseq.method)


def received(
    request: Request, source: Address = ("192.0.2.20", 5060), transport: str = "udp"
) -> RequestReceived:
    """What the SIP endpoint hands to `Focus.handle_request` for `request`."""
    return RequestReceived(
        request=request, source=source, transport=transport, server_key=server_key(request)
    )


# ------------------------------------------------------------------------------- SIP port
@dataclass
class SentRequest:
    """A request the focus sent through `SipPort.request`; the test answers it."""

    request: Request
    dest: Address
    transport: str
    future: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None
    to_tag: str = field(default_factory=lambda: secrets.token_hex(5))

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def done(self) -> bool:
        return self.future.done()

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """The response the peer would send (a To tag is added for INVITE and SUBSCRIBE)."""
        tag = self.to_tag if status > 100 else None
        response = self.request.create_response(status, reason, to_tag=tag)
        if contact is not None:
            response.headers.set("Contact", contact)
        for name, value in headers:
            response.headers.add(name, value)
        if content_type is not None:
            response.headers.set("Content-Type", content_type)
        response.body = body
        return response

    def reply(self, status: int, reason: str | None = None, **kwargs: object) -> Response:
        """Deliver a response: provisional ones go to `on_provisional`, finals complete it."""
        response = self.response(status, reason, **kwargs)  # type: ignore[arg-type]
        if status < 200:
            if self.on_provisional is not None:
                self.on_provisional(response)
        else:
            assert not self.future.done(), f"{self.method} already answered"
            self.future.set_result(response)
        return response


class FakeSipPort:
    """A `SipPort` that records traffic; `auto_reply` answers chosen methods at once."""

    def __init__(self, address: Address = FOCUS_ADDRESS) -> None:
        self.address = address
        self.responses: list[Response] = []
        self.requests: list[SentRequest] = []
        self.stateless: list[tuple[Request, Address, str]] = []
        self.cancelled: list[SentRequest] = []
        self.resolved: list[tuple[str, int, str]] = []
        self.auto_reply: dict[str, int] = {}
        self._branches = itertools.count(1)

    # --- SipPort ----------------------------------------------------------------------------
    def respond(self, response: Response) -> None:
        self.responses.append(response)

    def request(
        self,
        request: Request,
        dest: Address,
        transport: str,
        *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> asyncio.Future[Response]:
        self._stamp_via(request, transport)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        sent = SentRequest(request, dest, transport, future, on_provisional)
        self.requests.append(sent)
        status = self.auto_reply.get(request.method)
        if status is not None:
            sent.reply(status)
        return future

    def cancel(self, future: asyncio.Future[Response]) -> None:
        for sent in self.requests:
            if sent.future is future:
                self.cancelled.append(sent)
                if not future.done():
                    future.set_result(sent.response(487))

    def send_stateless(self, request: Request, dest: Address, transport: str) -> None:
        self._stamp_via(request, transport)
        self.stateless.append((request, dest, transport))

    def contact_host(self, transport: str, peer_host: str) -> Address:
        return self.address

    async def resolve(self, host: str, port: int, transport: str) -> Address:
        self.resolved.append((host, port, transport))
        return host, port

    def _stamp_via(self, request: Request, transport: str) -> None:
        if "Via" not in request.headers:
            host, port = self.address
            branch = f"{MAGIC_COOKIE}fake{next(self._branches)}"
            request.headers.add("Via", f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch}")

    # --- queries ----------------------------------------------------------------------------
    def sent(self, method: str) -> list[SentRequest]:
        return [s for s in self.requests if s.method == method]

    def pending(self, method: str) -> list[SentRequest]:
        return [s for s in self.sent(method) if not s.done]

    def responses_to(self, request: Request) -> list[Response]:
        """Every response the focus sent to `request` (same Call-ID, CSeq and branch)."""
        branch = request.top_via.branch
        return [
            r
            for r in self.responses
            if r.call_id == request.call_id
            and r.cseq == request.cseq
            and r.top_via.branch == branch
        ]

    def final(self, request: Request) -> Response:
        """The one final response the focus sent to `request`."""
        finals = [r for r in self.responses_to(request) if r.status >= 200]
        assert len(finals) == 1, f"expected one final response, got {[r.status for r in finals]}"
        return finals[0]


# ----------------------------------------------------------------------------- media port
class FakeMediaPort:
    """A `MediaPort`: ports from `first_port` up (even numbers), commands recorded.

    `add_stream` registers the stream (as the real supervisor sends its command) before it
    waits for `add_gate`, so a test can hold media setup open; `update_gate` does the same for
    `update_stream`.
    """

    def __init__(self, first_port: int = 40000) -> None:
        self._ports = itertools.count(first_port, 2)
        self.streams: dict[str, tuple[str, StreamSpec]] = {}
        self.added: list[tuple[str, StreamSpec]] = []
        self.updated: list[StreamSpec] = []
        self.removed: list[str] = []
        self.muted: list[tuple[str, bool]] = []
        self.prompts: list[tuple[str, str, str | None]] = []
        self.add_gate: asyncio.Event | None = None
        self.update_gate: asyncio.Event | None = None
        self.fail_add: Exception | None = None

    async def add_stream(self, room_id: str, spec: StreamSpec) -> int:
        if self.fail_add is not None:
            raise self.fail_add
        self.added.append((room_id, spec))
        self.streams[spec.stream_id] = (room_id, spec)
        if self.add_gate is not None:
            await self.add_gate.wait()
        return spec.local_port or next(self._ports)

    async def update_stream(self, spec: StreamSpec) -> None:
        self.updated.append(spec)
        if self.update_gate is not None:
            await self.update_gate.wait()
        room_id, _ = self.streams[spec.stream_id]
        self.streams[spec.stream_id] = (room_id, spec)

    async def remove_stream(self, stream_id: str) -> None:
        self.removed.append(stream_id)
        self.streams.pop(stream_id, None)

    async def set_mute(self, stream_id: str, muted: bool) -> None:
        self.muted.append((stream_id, muted))

    def play_prompt(self, room_id: str, prompt: str, stream_id: str | None = None) -> None:
        self.prompts.append((room_id, prompt, stream_id))


# ------------------------------------------------------------------------------ the peers
ROOM_URI = "sip:room1@sylkbox.local"
AUDIO_OFFER = (
    b"v=0\r\n"
    b"o=- 3917440182 3917440182 IN IP4 192.0.2.20\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.20\r\n"
    b"t=0 0\r\n"
    b"m=audio 50010 RTP/AVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\n"
)


def audio_sdp(host: str, port: int, *, direction: str = "sendrecv", version: int = 1) -> bytes:
    """A one-stream PCMU offer or answer from `host`."""
    return (
        f"v=0\r\no=- 42 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    ).encode()


class Phone:
    """A user agent on the other side of the focus: builds requests and keeps its dialog.

    Requests go to `Focus.handle_request` as the SIP endpoint would deliver them; the focus's
    answers are read back from the `FakeSipPort`.
    """

    def __init__(
        self,
        focus: RequestSink,
        sip: FakeSipPort,
        user: str = "alice",
        *,
        host: str = "192.0.2.20",
        port: int = 5060,
        display: str | None = "Alice",
        transport: str = "udp",
    ) -> None:
        self.focus = focus
        self.sip = sip
        self.user = user
        self.host = host
        self.port = port
        self.display = display
        self.transport = transport
        self.uri = f"sip:{user}@{host}"
        self.tag = secrets.token_hex(5)
        self.call_id = secrets.token_hex(10)
        self.cseq = 0
        self.target = ROOM_URI
        self.remote: str | None = None  # the To of the dialog, with the focus's tag
        self.invite: Request | None = None

    @property
    def contact(self) -> str:
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"<sip:{self.user}@{self.host}:{self.port}{suffix}>"

    @property
    def from_(self) -> str:
        name = f'"{self.display}" ' if self.display else ""
        return f"{name}<{self.uri}>;tag={self.tag}"

    def request(
        self,
        method: str,
        uri: str | None = None,
        *,
        in_dialog: bool = False,
        to: str | None = None,
        call_id: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        if in_dialog:
            assert self.remote is not None, "no dialog yet"
        self.cseq += 1
        return build_request(
            method,
            uri or self.target,
            from_=self.from_,
            to=to or (self.remote if in_dialog and self.remote else f"<{ROOM_URI}>"),
            call_id=call_id or self.call_id,
            cseq=self.cseq,
            contact=self.contact,
            headers=headers,
            body=body,
            content_type=content_type,
            via=f"SIP/2.0/{self.transport.upper()} {self.host}:{self.port}",
        )

    def send(self, request: Request) -> Request:
        self.focus.handle_request(received(request, (self.host, self.port), self.transport))
        return request

    async def call(
        self,
        body: bytes = AUDIO_OFFER,
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/sdp",
        uri: str = ROOM_URI,
    ) -> Response:
        """INVITE the room, let the focus answer, ACK a 2xx; returns the final response."""
        self.invite = self.send(
            self.request("INVITE", uri, headers=headers, body=body, content_type=content_type)
        )
        await drain()
        response = self.sip.final(self.invite)
        if response.status == 200:
            self.remote = response.headers.get("To")
            contact = response.contacts[0]
            self.target = str(contact.uri)
            ack = build_request(
                "ACK",
                self.target,
                from_=self.from_,
                to=self.remote or "",
                call_id=self.call_id,
                cseq=self.invite.cseq.seq,
                via=f"SIP/2.0/{self.transport.upper()} {self.host}:{self.port}",
            )
            self.send(ack)
        return response

    async def in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        request = self.send(
            self.request(
                method, in_dialog=True, body=body, content_type=content_type, headers=headers
            )
        )
        await drain()
        return request

    async def subscribe(
        self,
        expires: int | None = 600,
        *,
        event: str = "conference",
        uri: str | None = None,
        to: str | None = None,
    ) -> Response:
        """SUBSCRIBE (or refresh, once subscribed); returns the focus's final response."""
        headers = [("Event", event), ("Accept", "application/conference-info+xml")]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        in_dialog = self.remote is not None
        request = self.send(
            self.request(
                "SUBSCRIBE",
                uri or (self.target if in_dialog else ROOM_URI),
                in_dialog=in_dialog,
                to=to,
                headers=headers,
            )
        )
        await drain()
        response = self.sip.final(request)
        if response.status == 200 and not in_dialog:
            self.remote = response.headers.get("To")
            self.target = str(response.contacts[0].uri)
        return response

    def notifies(self) -> list[SentRequest]:
        """The NOTIFYs the focus sent in this phone's dialog, oldest first."""
        return [s for s in self.sip.sent("NOTIFY") if s.request.call_id == self.call_id]


class RequestSink(Protocol):
    def handle_request(self, event: RequestReceived) -> None: ...


# --------------------------------------------------------------------------- the focus
@dataclass
class FocusEnv:
    """A `Focus` wired to the fakes."""

    focus: Focus
    sip: FakeSipPort
    media: FakeMediaPort

    @classmethod
    def create(cls, config: Config | None = None) -> FocusEnv:
        sip = FakeSipPort()
        media = FakeMediaPort()
        return cls(Focus(config or Config(), sip, media), sip, media)

    def phone(self, user: str = "alice", **kwargs: Any) -> Phone:
        return Phone(self.focus, self.sip, user, **kwargs)

    async def close(self) -> None:
        """Stop whatever the focus still runs (its own shutdown, with no grace period)."""
        self.sip.auto_reply = {"BYE": 200, "NOTIFY": 200}
        for sent in self.sip.requests:
            if not sent.done:
                sent.future.set_result(sent.response(408))
        await self.focus.close(0)
