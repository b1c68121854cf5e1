"""``[files] push`` end to end against the real server process (BLINK.md 5, SylkServer's
``push_file_transfer``).

Alice and Bob join a room with chat (`tests.helpers.chat_peer`); Bob uploads a file in its own
INVITE (`tests.helpers.file_transfer`).  The box must then INVITE Alice, and only her: the
request reaches the socket of her chat session's Contact, where a small raw SIP UAS written
here (an asyncio datagram protocol over the `UdpSipClient`'s own socket) checks what Blink
shows — ``From: "Conference File Transfer" <sip:room>``, ``X-Originator-From``, ``Subject:
File uploaded by ...``, one ``sendonly`` stream with the full file-selector — and answers it
the way sipsimple does (``recvonly``, ``a=x-file-offset``; passive with a listening
`MsrpTestClient`, or active and connecting).  The file must arrive whole over MSRP (SHA-1),
after a FILE_OFFSET, in chunks of at most 64 KiB, and the box must hang up about 3 s after
the 200 REPORT, the push never showing in the roster.  Without ``push`` nobody is INVITEd;
the uploader never is, and a declined push disturbs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from tests.helpers.chat_peer import ChatPeer, join_room
from tests.helpers.file_transfer import payload, selector_for, upload
from tests.helpers.msrp_server import room_name, serve
from tests.helpers.server import RunningServer
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import MsrpTestClient, local_uri, sdp_body, sdp_media

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


@pytest.fixture
def push_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, "[files]\npush = true\n")


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path)


# ------------------------------------------------------------------------------ SDP reading
def attribute(sdp: bytes, name: str) -> str | None:
    """An ``a=`` line of an SDP read by hand (not with sylkbox.sdp: a shared misreading
    would not show)."""
    found = re.search(rf"^a={re.escape(name)}(?::(.*))?\r?$", sdp.decode(), re.MULTILINE)
    if found is None:
        return None
    return (found.group(1) or "").strip()


def m_lines(sdp: bytes) -> list[str]:
    return re.findall(r"^m=.*?(?=\r?$)", sdp.decode(), re.MULTILINE)


# ------------------------------------------------------------------------------ the callee
@dataclass
class PushCallee(asyncio.DatagramProtocol):
    """A SIP UAS on a participant's own UDP socket (its chat session's Contact): INVITEs are
    answered with `status` (200: a sipsimple-like ``recvonly`` file answer carrying
    `msrp_path` and `setup`); BYE and other requests get 200; everything is recorded with
    its arrival time."""

    user: str
    status: int = 200
    msrp_path: str = ""
    setup: str = "passive"
    invites: asyncio.Queue[Request] = field(default_factory=asyncio.Queue)
    acks: list[Request] = field(default_factory=list)
    byes: list[tuple[Request, float]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0
    to_tag: str = field(default_factory=lambda: secrets.token_hex(5))

    @classmethod
    async def on(
        cls, peer: ChatPeer, *, status: int = 200, msrp_path: str = "", setup: str = "passive"
    ) -> PushCallee:
        """Take over `peer`'s SIP socket (its blocking client is not read any more)."""
        callee = cls(peer.sip.user, status=status, msrp_path=msrp_path, setup=setup)
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: callee, sock=peer.sip.sock
        )
        return callee

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Response):
            self.responses.append(message)
            return
        self.requests.append(message)
        match message.method:
            case "ACK":
                self.acks.append(message)
            case "INVITE":
                self.invites.put_nowait(message)
                self._reply(message, 180, addr)
                if self.status == 200:
                    self._reply(message, 200, addr, self._answer(message.body))
                else:
                    self._reply(message, self.status, addr)
            case "BYE":
                self.byes.append((message, asyncio.get_running_loop().time()))
                self._reply(message, 200, addr)
            case _:
                self._reply(message, 200, addr)

    def _answer(self, offer: bytes) -> bytes:
        """What sipsimple answers for an incoming file (BLINK.md 5): recvonly, accept-types
        ``*``, the offered selector and transfer id, ``a=x-file-offset``."""
        extra: list[tuple[str, str | None]] = [
            ("file-selector", attribute(offer, "file-selector")),
            ("x-file-offset", None),
            ("file-transfer-id", attribute(offer, "file-transfer-id")),
        ]
        media = sdp_media(
            [self.msrp_path], setup=self.setup, direction="recvonly", accept_types=("*",),
            accept_wrapped_types=None, extra=extra,
        )
        return sdp_body(media, session_id=11).encode()

    def _reply(
        self, request: Request, status: int, addr: tuple[str, int], body: bytes = b""
    ) -> None:
        assert self.transport is not None
        response = request.create_response(
            status, to_tag=None if request.to.tag or status == 100 else self.to_tag
        )
        response.headers.set("Contact", f"<sip:{self.user}@127.0.0.1:{self.port}>")
        if body:
            response.headers.set("Content-Type", "application/sdp")
            response.body = body
        self.transport.sendto(response.to_bytes(), addr)

    async def next_invite(self, timeout: float = 10.0) -> Request:
        return await asyncio.wait_for(self.invites.get(), timeout)

    async def next_bye(self, timeout: float = 10.0) -> tuple[Request, float]:
        async def wait() -> tuple[Request, float]:
            while not self.byes:
                await asyncio.sleep(0.02)
            return self.byes[0]

        return await asyncio.wait_for(wait(), timeout)

    async def next_ack(self, call_id: str, timeout: float = 5.0) -> Request:
        async def wait() -> Request:
            while True:
                for ack in self.acks:
                    if ack.call_id == call_id:
                        return ack
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(wait(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def subscribe_and_read_roster(peer: ChatPeer, callee: PushCallee) -> bytes:
    """SUBSCRIBE from `peer`'s socket (owned by `callee`); the body of the first NOTIFY."""
    call_id = "sub-" + secrets.token_hex(4)
    peer.sip.request(
        "SUBSCRIBE", peer.room_uri, from_tag="sub", call_id=call_id,
        headers="Event: conference\r\nAccept: application/conference-info+xml\r\n"
        "Expires: 600\r\n",
    )

    async def wait() -> bytes:
        while True:
            for request in callee.requests:
                if request.method == "NOTIFY" and request.call_id == call_id and request.body:
                    return request.body
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(wait(), 10.0)


async def no_invite_to_upload_socket(session_sip: UdpSipClient, seconds: float) -> None:
    """Read the upload session's socket for `seconds`: no INVITE may come."""
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.to_thread(
            session_sip.wait_for,
            lambda m: isinstance(m, Request) and m.method == "INVITE",
            seconds,
        )
        raise AssertionError("the upload session got an INVITE")


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("setup", ["passive", "active"])
async def test_upload_is_pushed_to_the_other_participant(
    push_server: RunningServer, peers: list[ChatPeer], setup: str
) -> None:
    server = push_server
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice", audio=False)
    peers.append(alice)
    bob = await join_room(server.host, server.sip_port, room, "bob", audio=False)
    peers.append(bob)
    listener: MsrpTestClient | None = None
    if setup == "passive":  # Blink's Bonjour account: it listens, the box connects
        listener = await MsrpTestClient.listen(tls=True)
        path = listener.local_uri
    else:
        path = local_uri(tls=True)
    alice_sip = await PushCallee.on(alice, msrp_path=path, setup=setup)
    bob_sip = await PushCallee.on(bob)
    data = payload(300_000)  # five 64 KiB chunks
    session = await upload(server, room, data)
    try:
        invite = await alice_sip.next_invite()
        # the request as Blink sees it (BLINK.md 5)
        assert str(invite.uri) == f"sip:alice@127.0.0.1:{alice.sip.port}"  # her Contact
        assert invite.from_.display_name == "Conference File Transfer"
        assert str(invite.from_.uri) == f"sip:{room}@127.0.0.1"
        assert str(invite.to.uri) == "sip:alice@127.0.0.1"
        assert invite.headers.get("X-Originator-From") == "sip:bob@127.0.0.1"
        assert invite.headers.get("Subject") == "File uploaded by Bob <sip:bob@127.0.0.1>"
        [contact] = invite.contacts
        assert "isfocus" in dict(contact.params)
        assert (contact.uri.user or "").startswith("focus-")
        [m_line] = m_lines(invite.body)
        assert re.fullmatch(r"m=message \d+ TCP/TLS/MSRP \*", m_line)
        assert attribute(invite.body, "sendonly") == ""
        assert attribute(invite.body, "accept-types") == "*"
        assert attribute(invite.body, "setup") == "active"  # as the dial-out chat line
        assert attribute(invite.body, "file-selector") == selector_for(data)
        assert attribute(invite.body, "file-transfer-id")
        offer_path = attribute(invite.body, "path")
        assert offer_path and offer_path.startswith("msrps://")
        await alice_sip.next_ack(invite.call_id)

        if listener is not None:
            await listener.accept(offer_path, timeout=10.0)
            msrp = listener
        else:
            msrp = await MsrpTestClient.connect(offer_path, local_uri=path, timeout=10.0)
        try:
            message = await msrp.wait_for(timeout=20.0)
            assert hashlib.sha1(message.body).digest() == hashlib.sha1(data).digest()
            assert message.content_type == "application/pdf"
            assert len(msrp.chunks("FILE_OFFSET")) == 1  # asked first, as msrplib does
            sends = [c for c in msrp.chunks("SEND") if c.body]
            assert all(len(c.body) <= 65536 for c in sends) and len(sends) == 5

            # the push is no participant: Alice has her chat session only
            info = parse_conference_info(await subscribe_and_read_roster(bob, bob_sip))
            assert {u.entity for u in info.room.users} == {
                "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
            }
            [alice_user] = [u for u in info.room.users if u.entity == "sip:alice@127.0.0.1"]
            assert len(alice_user.endpoints) == 1

            bye, at = await alice_sip.next_bye()
            assert bye.call_id == invite.call_id
            assert 2.5 <= at - message.at <= 6.0  # ~3 s after the final 200 REPORT
        finally:
            await msrp.close()

        # the uploader got nothing, neither on its chat session nor on the upload's
        assert bob_sip.invites.empty()
        await session.wait_bye()
        await no_invite_to_upload_socket(session.sip, 0.5)
        assert alice_sip.invites.empty()  # one push only
        log = server.log_text()
        assert "push of report.pdf to sip:alice@127.0.0.1 accepted" in log
    finally:
        alice_sip.close()
        bob_sip.close()
        await session.close()


async def test_no_push_by_default(plain_server: RunningServer, peers: list[ChatPeer]) -> None:
    server = plain_server
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice", audio=False)
    peers.append(alice)
    bob = await join_room(server.host, server.sip_port, room, "bob", audio=False)
    peers.append(bob)
    alice_sip = await PushCallee.on(alice, msrp_path=local_uri(tls=True))
    session = await upload(server, room, payload(100_000))
    try:
        await session.wait_bye()  # the upload is stored and its session over
        await asyncio.sleep(3.0)
        assert alice_sip.invites.empty()
        assert not [r for r in alice_sip.requests if r.method == "INVITE"]
        assert "has uploaded file report.pdf" in (await alice.msrp.wait_for(
            lambda m: "has uploaded file" in m.text, timeout=5.0
        )).text
        assert "pushing file" not in server.log_text()
    finally:
        alice_sip.close()
        await session.close()


async def test_uploader_gets_no_push_and_a_declined_push_changes_nothing(
    push_server: RunningServer, peers: list[ChatPeer]
) -> None:
    server = push_server
    room = room_name()
    bob = await join_room(server.host, server.sip_port, room, "bob", audio=False)
    peers.append(bob)
    alice = await join_room(server.host, server.sip_port, room, "alice", audio=False)
    peers.append(alice)
    bob_sip = await PushCallee.on(bob)
    alice_sip = await PushCallee.on(alice, status=603)  # Alice declines
    session = await upload(server, room, payload(70_000))
    try:
        invite = await alice_sip.next_invite()
        assert invite.headers.get("X-Originator-From") == "sip:bob@127.0.0.1"
        await alice_sip.next_ack(invite.call_id)  # the transaction layer ACKs the 603
        await session.wait_bye()
        await no_invite_to_upload_socket(session.sip, 0.5)
        await asyncio.sleep(2.0)
        assert bob_sip.invites.empty()  # never the uploader
        assert not alice_sip.byes  # nothing to end
        # both are still in the room and chat still flows
        await bob.msrp.send_chat("still here")
        got = await alice.msrp.wait_for(lambda m: m.text == "still here", timeout=5.0)
        assert got.cpim is not None
        assert "push of report.pdf to sip:alice@127.0.0.1 refused: 603" in server.log_text()
    finally:
        alice_sip.close()
        bob_sip.close()
        await session.close()
