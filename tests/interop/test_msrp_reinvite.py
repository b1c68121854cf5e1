"""re-INVITEs around MSRP streams, end to end against the real server process.

SIP over UDP is written by hand here (`SipPeer`, an asyncio datagram endpoint that answers
the box's NOTIFY/BYE itself but leaves INVITEs to the test, so a test can answer the box's own
re-INVITE with SDP); MSRP is the independent byte-level `tests.msrp_client`:

* an RFC 5547 upload session: a re-INVITE repeating the file stream gets the same answer and
  the upload still completes; a changed file-selector gets 488; the file stream at port 0 gets
  port 0, the BYE and the MSRP connection closed;
* audio + chat, the MSRP connection dropped: the box re-INVITEs with ``m=message`` at port 0
  (our re-INVITE meanwhile gets 491), the old chat path offered again is answered with port 0,
  a new path sets up a new chat (welcome message);
* a participant dialled out by REFER (the box is the UAC of the dialog) adds chat with its own
  re-INVITE and gets into the room's chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from tests.helpers.msrp_server import serve
from tests.helpers.server import RunningServer, free_port
from tests.msrp_client import MsrpTestClient, file_selector, local_uri, sdp_body, sdp_media

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

FILES_CONFIG = "[files]\nmax_size = 4000000\nroom_quota = 6000000\n"
TRANSFER_ID = "0c8e35c2-6f3a-4bd1-9b1e-3c6c2d7f4a11"

Message = Request | Response


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, FILES_CONFIG)


# --------------------------------------------------------------------------- SIP by hand
def sections(sdp: bytes) -> list[str]:
    """The m= sections of an SDP, read by hand (not with sylkbox.sdp)."""
    text = sdp.decode()
    starts = [m.start() for m in re.finditer(r"^m=", text, re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def port_of(section: str) -> int:
    return int(section.split(" ", 2)[1])


def attribute(section: str, name: str) -> str | None:
    found = re.search(rf"^a={re.escape(name)}(?::(.*))?\r?$", section, re.MULTILINE)
    return None if found is None else (found.group(1) or "").strip()


def origin_version(sdp: bytes) -> int:
    found = re.search(r"^o=\S+ \S+ (\d+) ", sdp.decode(), re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def audio_section(port: int) -> str:
    return (
        f"m=audio {port} RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


@dataclass
class Dialog:
    """Our side of one dialog: enough to send in-dialog requests and ACKs."""

    call_id: str
    from_tag: str
    to: str  # the remote party with its tag, as we write it in To
    target: str  # the remote Contact: our Request-URI
    ours: str  # our own party (From), without tag
    cseq: int = 1


@dataclass(eq=False)
class SipPeer(asyncio.DatagramProtocol):
    """A SIP user agent on UDP: requests it receives are queued (NOTIFY, BYE, OPTIONS,
    SUBSCRIBE are also answered 200 at once; INVITE is the test's), responses are queued."""

    user: str
    server: tuple[str, int]
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0

    @classmethod
    async def open(cls, user: str, server: tuple[str, int]) -> SipPeer:
        loop = asyncio.get_running_loop()
        peer = cls(user, server)
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Request) and message.method in (
            "NOTIFY",
            "BYE",
            "OPTIONS",
            "INFO",
            "UPDATE",
        ):
            self.respond(message, 200)
        self.inbox.put_nowait(message)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@127.0.0.1:{self.port}>"

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    def request(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        from_: str,
        to: str,
        cseq: int,
        body: str | bytes = b"",
        content_type: str | None = None,
        headers: str = "",
        branch: str | None = None,
        cseq_method: str | None = None,
    ) -> str:
        """Send a request; returns its Via branch (an ACK for a non-2xx reuses the INVITE's)."""
        payload = body.encode() if isinstance(body, str) else body
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        ct = f"Content-Type: {content_type}\r\n" if content_type else ""
        text = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
            f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {cseq_method or method}\r\nContact: {self.contact}\r\n"
            f"Max-Forwards: 70\r\n{headers}{ct}Content-Length: {len(payload)}\r\n\r\n"
        )
        self.send(text.encode() + payload)
        return branch

    def respond(
        self, request: Request, status: int, *, body: str = "", to_tag: str | None = None
    ) -> None:
        response = request.create_response(status, to_tag=None if request.to.tag else to_tag)
        response.headers.set("Contact", self.contact)
        if body:
            response.headers.set("Content-Type", "application/sdp")
            response.body = body.encode()
        assert self.transport is not None
        self.transport.sendto(response.to_bytes(), self.server)

    async def wait(self, predicate: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        """The next message that matches (others are dropped: they were answered already)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if predicate(message):
                    return message

    async def final(self, call_id: str, cseq: int, timeout: float = 10.0) -> Response:
        message = await self.wait(
            lambda m: (
                isinstance(m, Response)
                and m.call_id == call_id
                and m.cseq.seq == cseq
                and m.cseq.method != "ACK"
                and m.status >= 200
            ),
            timeout,
        )
        return cast(Response, message)

    async def request_of(self, method: str, call_id: str, timeout: float = 10.0) -> Request:
        message = await self.wait(
            lambda m: isinstance(m, Request) and m.method == method and m.call_id == call_id,
            timeout,
        )
        return cast(Request, message)

    # ------------------------------------------------------------------------- calls
    async def invite(self, room_uri: str, sdp: str) -> tuple[Dialog, Response]:
        """INVITE the room; ACK a 2xx and return the dialog and the final response."""
        call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
        ours = f'"{self.user.title()}" <{self.aor}>'
        self.request(
            "INVITE",
            room_uri,
            call_id=call_id,
            from_=f"{ours};tag={tag}",
            to=f"<{room_uri}>",
            cseq=1,
            body=sdp,
            content_type="application/sdp",
        )
        final = await self.final(call_id, 1)
        dialog = Dialog(call_id, tag, final.headers.get("To") or "", room_uri, ours)
        if final.status == 200:
            dialog.target = str(final.contacts[0].uri)
            self.ack(dialog, 1)
        return dialog, final

    def ack(self, dialog: Dialog, cseq: int, branch: str | None = None) -> None:
        self.request(
            "ACK",
            dialog.target,
            call_id=dialog.call_id,
            from_=f"{dialog.ours};tag={dialog.from_tag}",
            to=dialog.to,
            cseq=cseq,
            branch=branch,
        )

    async def reinvite(self, dialog: Dialog, sdp: str) -> Response:
        """A re-INVITE in `dialog`; the final response is ACKed (2xx: new branch, RFC 3261
        13.2.2.4; else the INVITE's, 17.1.1.3)."""
        dialog.cseq += 1
        branch = self.request(
            "INVITE",
            dialog.target,
            call_id=dialog.call_id,
            from_=f"{dialog.ours};tag={dialog.from_tag}",
            to=dialog.to,
            cseq=dialog.cseq,
            body=sdp,
            content_type="application/sdp",
        )
        final = await self.final(dialog.call_id, dialog.cseq)
        self.ack(dialog, dialog.cseq, None if final.status < 300 else branch)
        return final


@pytest.fixture
async def cleanup() -> AsyncIterator[list[SipPeer | MsrpTestClient]]:
    things: list[SipPeer | MsrpTestClient] = []
    yield things
    for thing in things:
        with contextlib.suppress(Exception):
            if isinstance(thing, SipPeer):
                thing.close()
            else:
                await thing.close()


def room_uri(server: RunningServer) -> str:
    return f"sip:room{secrets.token_hex(3)}@{server.host}"


def chat_offer(path: str, audio_port: int | None) -> str:
    media = [sdp_media([path], setup="active")]
    if audio_port is not None:
        media.insert(0, audio_section(audio_port))
    return sdp_body(media)


async def connect_chat(answer_body: bytes, uri: str, room: str, user: str) -> MsrpTestClient:
    """Connect (active) to the box's chat path in `answer_body` and wait for the welcome."""
    chat = next(s for s in sections(answer_body) if s.startswith("m=message"))
    path = attribute(chat, "path")
    assert path is not None
    client = await MsrpTestClient.connect(
        path,
        local_uri=uri,
        timeout=10.0,
        identity=f"<sip:{user}@127.0.0.1>",
        peer_identity=f"<{room}>",
    )
    await client.wait_for(lambda m: m.text.startswith("Welcome!"), timeout=10.0)
    return client


# --------------------------------------------------------------------------- file session
def upload_offer(path: str, data: bytes, *, size: int | None = None) -> str:
    selector = file_selector(
        "report.pdf",
        "application/pdf",
        len(data) if size is None else size,
        hashlib.sha1(data).hexdigest(),
    )
    media = sdp_media(
        [path],
        setup="active",
        direction="sendonly",
        accept_types=("*",),
        accept_wrapped_types=None,
        extra=[
            ("file-selector", selector),
            ("x-file-offset", None),
            ("file-transfer-id", TRANSFER_ID),
        ],
    )
    return sdp_body(media)


async def test_file_session_reinvites(
    server: RunningServer, cleanup: list[SipPeer | MsrpTestClient]
) -> None:
    room = room_uri(server)
    address = (server.host, server.sip_port)
    alice = await SipPeer.open("alice", address)
    cleanup.append(alice)
    _, joined = await alice.invite(room, sdp_body(audio_section(free_port())))
    assert joined.status == 200, joined

    # bob uploads; his session is refreshed (same SDP) and someone tries to change the file
    bob = await SipPeer.open("bob", address)
    cleanup.append(bob)
    data = os.urandom(200_000)
    path = local_uri(tls=True)
    offer = upload_offer(path, data)
    dialog, ok = await bob.invite(room, offer)
    assert ok.status == 200, ok
    msrp = await MsrpTestClient.connect(
        attribute(sections(ok.body)[0], "path") or "", local_uri=path, timeout=10.0
    )
    cleanup.append(msrp)

    refreshed = await bob.reinvite(dialog, offer)
    assert refreshed.status == 200 and refreshed.body == ok.body  # the same answer, version
    changed = await bob.reinvite(dialog, upload_offer(path, data, size=len(data) + 1))
    assert changed.status == 488, changed
    assert "file transfer session: file-selector changed" in server.log_text()
    added = await bob.reinvite(
        dialog, sdp_body([audio_section(free_port()), sections(offer.encode())[0]])
    )
    assert added.status == 488

    # the upload goes on through all that and completes; the box then ends the session
    await msrp.send_file(data, content_type="application/pdf", use_file_offset=True, timeout=20.0)
    bye = await bob.request_of("BYE", dialog.call_id)
    assert bye.call_id == dialog.call_id
    assert "file upload done" in server.log_text()


async def test_file_stream_at_port_0_ends_the_transfer(
    server: RunningServer, cleanup: list[SipPeer | MsrpTestClient]
) -> None:
    room = room_uri(server)
    address = (server.host, server.sip_port)
    alice = await SipPeer.open("alice", address)
    cleanup.append(alice)
    assert (await alice.invite(room, sdp_body(audio_section(free_port()))))[1].status == 200
    bob = await SipPeer.open("bob", address)
    cleanup.append(bob)
    path = local_uri(tls=True)
    offer = upload_offer(path, os.urandom(300_000))
    dialog, ok = await bob.invite(room, offer)
    assert ok.status == 200, ok
    msrp = await MsrpTestClient.connect(
        attribute(sections(ok.body)[0], "path") or "", local_uri=path, timeout=10.0
    )
    cleanup.append(msrp)
    # the transfer is under way (the box answers FILE_OFFSET), then the stream is disabled
    assert (await msrp.send_file_offset())[0] == 200

    removed = await bob.reinvite(dialog, offer.replace("m=message 2855", "m=message 0"))
    assert removed.status == 200, removed
    [answer] = sections(removed.body)
    assert answer.startswith("m=message 0 ")
    bye = await bob.request_of("BYE", dialog.call_id)
    assert bye.cseq.method == "BYE"
    await msrp.wait_closed(timeout=10.0)  # the box closed the transfer's connection
    assert "removed every stream of its file transfer" in server.log_text()


# ----------------------------------------------------------------------------- dropped chat
async def test_dropped_chat_is_removed_by_the_box_and_can_be_added_again(
    server: RunningServer, cleanup: list[SipPeer | MsrpTestClient]
) -> None:
    room = room_uri(server)
    alice = await SipPeer.open("alice", (server.host, server.sip_port))
    cleanup.append(alice)
    rtp = free_port()
    old_path = local_uri(tls=True)
    offer = chat_offer(old_path, rtp)
    dialog, ok = await alice.invite(room, offer)
    assert ok.status == 200, ok
    first_audio, first_chat = sections(ok.body)
    msrp = await connect_chat(ok.body, old_path, room, "alice")

    # the MSRP connection drops; audio stays: the box re-INVITEs with m=message at port 0
    await msrp.close()
    reinvite = await alice.request_of("INVITE", dialog.call_id)
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    audio, chat = sections(reinvite.body)
    assert port_of(audio) == port_of(first_audio) and attribute(audio, "rtpmap") == "0 PCMU/8000"
    assert chat.startswith("m=message 0 ") and attribute(chat, "path") is None
    assert origin_version(reinvite.body) == origin_version(ok.body) + 1
    assert reinvite.to.tag == dialog.from_tag and reinvite.from_.tag
    # glare: our own re-INVITE while the box's is pending gets 491 (RFC 3261 14.2)
    crossed = await alice.reinvite(dialog, offer)
    assert crossed.status == 491, crossed
    answer = sdp_body([audio_section(rtp), "m=message 0 TCP/TLS/MSRP *\r\n"])
    alice.respond(reinvite, 200, body=answer)
    ack = await alice.request_of("ACK", dialog.call_id)
    assert ack.cseq.seq == reinvite.cseq.seq

    # the old chat line offered again is answered with port 0; no chat is set up
    again = await alice.reinvite(dialog, offer)
    assert again.status == 200, again
    assert sections(again.body)[1].startswith("m=message 0 ")

    # a new chat stream (new path) is set up and joins the room's chat
    new_path = local_uri(tls=True)
    added = await alice.reinvite(dialog, chat_offer(new_path, rtp))
    assert added.status == 200, added
    new_chat = sections(added.body)[1]
    assert port_of(new_chat) != 0 and attribute(new_chat, "path") != attribute(first_chat, "path")
    cleanup.append(await connect_chat(added.body, new_path, room, "alice"))


# ------------------------------------------------------------------------------ dial-out
async def test_dialled_out_participant_adds_chat_by_reinvite(
    server: RunningServer, cleanup: list[SipPeer | MsrpTestClient]
) -> None:
    room = room_uri(server)
    address = (server.host, server.sip_port)
    alice = await SipPeer.open("alice", address)
    carol = await SipPeer.open("carol", address)
    cleanup += [alice, carol]
    _, joined = await alice.invite(room, sdp_body(audio_section(free_port())))
    assert joined.status == 200, joined

    # alice refers carol: the box dials her out (audio only: nobody has chat yet)
    alice.request(
        "REFER",
        room,
        call_id="refer-" + secrets.token_hex(4),
        from_=f"<{alice.aor}>;tag=r1",
        to=f"<{room}>",
        cseq=1,
        headers=f"Refer-To: <{carol.aor}>\r\nReferred-By: <{alice.aor}>\r\n",
    )
    invite = cast(
        Request, await carol.wait(lambda m: isinstance(m, Request) and m.method == "INVITE")
    )
    assert [s.split(" ", 1)[0] for s in sections(invite.body)] == ["m=audio"]
    carol_rtp = free_port()
    tag = secrets.token_hex(4)
    carol.respond(invite, 200, body=sdp_body(audio_section(carol_rtp)), to_tag=tag)
    await carol.request_of("ACK", invite.call_id)

    # carol adds chat in the box's dialog: she is its UAS, so From/To are swapped
    dialog = Dialog(
        call_id=invite.call_id,
        from_tag=tag,
        to=str(invite.from_),
        target=str(invite.contacts[0].uri),
        ours=f"<{carol.aor}>",
        cseq=0,
    )
    path = local_uri(tls=True)
    added = await carol.reinvite(dialog, chat_offer(path, carol_rtp))
    assert added.status == 200, added
    audio, chat = sections(added.body)
    assert port_of(audio) != 0
    assert port_of(chat) != 0 and attribute(chat, "setup") == "passive"
    client = await connect_chat(added.body, path, room, "carol")
    cleanup.append(client)
    sent = await client.send_chat("hello from carol")
    assert 200 in sent.codes
    assert f"{carol.aor} chat connected in" in server.log_text()
