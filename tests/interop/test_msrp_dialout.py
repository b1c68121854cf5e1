"""Dial-out with chat (BLINK.md 2.2, 7) against a real sylkbox process, MSRP over TLS.

Alice joins the room with audio + chat (raw SIP over UDP, `tests.helpers.sipclient`; her MSRP
side is the independent test client, active, as Blink connects). She then sends an out-of-dialog
REFER naming Bob, a small raw SIP UAS written here that auto-answers the focus's INVITE the way a
Blink Bonjour account does: ``a=setup:passive`` whatever the offer said, with the path of an
`MsrpTestClient` listening on TLS. The focus must offer ``a=setup:active``, connect to Bob's
listener and bind with an exact-path empty SEND; the roster NOTIFY shows Bob with media type
``message``; and chat flows both ways through the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from tests.helpers.server import RunningServer, free_port, serve
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client.client import MsrpTestClient, local_uri
from tests.msrp_client.sdp import sdp_body, sdp_media

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

CONF_NS = "{urn:ietf:params:xml:ns:conference-info}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, config="[msrp]\ntls = true\nport = 0\n")


# ------------------------------------------------------------------------------ SDP reading
def sections(sdp: bytes) -> list[str]:
    """The m= sections of an SDP, each as text from its m= line (read by hand, not with
    sylkbox.sdp, so that a shared misreading would show)."""
    text = sdp.decode()
    starts = [m.start() for m in re.finditer(r"^m=", text, re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def attribute(section: str, name: str) -> str | None:
    found = re.search(rf"^a={re.escape(name)}(?::(.*))?\r?$", section, re.MULTILINE)
    if found is None:
        return None
    return (found.group(1) or "").strip()


# ------------------------------------------------------------------------------ Bob's UAS
@dataclass
class BonjourUas(asyncio.DatagramProtocol):
    """A SIP UAS on UDP that answers INVITEs at once as a Blink Bonjour account: its chat line
    says ``a=setup:passive`` and carries the path of a listening MSRP client (BLINK.md 7)."""

    msrp_path: str
    rtp_port: int
    invites: asyncio.Queue[Request] = field(default_factory=asyncio.Queue)
    acks: list[Request] = field(default_factory=list)
    byes: list[Request] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0
    to_tag: str = field(default_factory=lambda: secrets.token_hex(5))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if not isinstance(message, Request):
            return
        match message.method:
            case "ACK":
                self.acks.append(message)
            case "INVITE":
                self.invites.put_nowait(message)
                self._reply(message, 200, addr, self._answer(message.body))
            case _:
                if message.method == "BYE":
                    self.byes.append(message)
                self._reply(message, 200, addr, b"")

    def _answer(self, offer: bytes) -> bytes:
        media = []
        for section in sections(offer):
            kind = section.split(" ", 1)[0][2:]
            if kind == "audio":
                first_pt = section.split("\r\n", 1)[0].split()[3]
                rtpmap = attribute_for_pt(section, first_pt)
                media.append(
                    f"m=audio {self.rtp_port} RTP/AVP {first_pt}\r\n"
                    f"a=rtpmap:{first_pt} {rtpmap}\r\na=sendrecv\r\n"
                )
            elif kind == "message":
                media.append(sdp_media([self.msrp_path], setup="passive"))
            else:
                media.append(section.split("\r\n", 1)[0].replace(" ", " 0 ", 1) + "\r\n")
        return sdp_body(media, session_id=7).encode()

    def _reply(self, request: Request, status: int, addr: tuple[str, int], body: bytes) -> None:
        assert self.transport is not None
        response = request.create_response(
            status, to_tag=None if request.to.tag else self.to_tag
        )
        response.headers.set("Contact", f"<sip:bob@127.0.0.1:{self.port}>")
        if body:
            response.headers.set("Content-Type", "application/sdp")
            response.body = body
        self.transport.sendto(response.to_bytes(), addr)


def attribute_for_pt(section: str, pt: str) -> str:
    found = re.search(rf"^a=rtpmap:{pt} (\S+)", section, re.MULTILINE)
    assert found is not None, section
    return found.group(1)


# ----------------------------------------------------------------------- conference-info
def media_types_of(body: bytes, entity_prefix: str) -> list[str]:
    root = ET.fromstring(body)
    types: list[str] = []
    for user in root.iter(f"{CONF_NS}user"):
        if (user.get("entity") or "").startswith(entity_prefix):
            types += [t.text or "" for t in user.iter(f"{CONF_NS}type")]
    return types


def is_conference_notify(message: Request | Response, entity: str, media: str) -> bool:
    return (
        isinstance(message, Request)
        and message.method == "NOTIFY"
        and (message.headers.get("Event") or "").startswith("conference")
        and media in media_types_of(message.body, entity)
    )


def final_response(call_id: str) -> object:
    def check(message: Request | Response) -> bool:
        return isinstance(message, Response) and message.call_id == call_id and (
            message.status >= 200
        )

    return check


# ------------------------------------------------------------------------------ the test
async def test_refer_dials_out_a_passive_chat_peer_and_relays_chat(
    server: RunningServer,
) -> None:
    room = f"sip:chatroom@{server.host}:{server.sip_port}"
    alice = UdpSipClient((server.host, server.sip_port), user="alice")
    bob_msrp = await MsrpTestClient.listen(
        tls=True, identity="<sip:bob@127.0.0.1>", peer_identity=f"<{room}>"
    )
    loop = asyncio.get_running_loop()
    uas = BonjourUas(bob_msrp.local_uri, free_port())
    uas_transport, _ = await loop.create_datagram_endpoint(
        lambda: uas, local_addr=("127.0.0.1", 0)
    )
    alice_msrp: MsrpTestClient | None = None
    try:
        # Alice joins with audio and chat; she is the active MSRP side (BLINK.md 7)
        alice_path = local_uri(tls=True)
        audio = (
            f"m=audio {free_port()} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
        offer = sdp_body([audio, sdp_media([alice_path], setup="active")])
        call_id = alice.request(
            "INVITE", room, body=offer, content_type="application/sdp", from_tag="call1"
        )
        ok = await asyncio.to_thread(alice.wait_for, final_response(call_id), 10.0)
        assert isinstance(ok, Response) and ok.status == 200, ok
        alice.ack(str(ok.contacts[0].uri), ok)
        [_, chat_answer] = sections(ok.body)
        assert attribute(chat_answer, "setup") == "passive"
        focus_path = attribute(chat_answer, "path")
        assert focus_path is not None and focus_path.startswith("msrps://")
        alice_msrp = await MsrpTestClient.connect(
            focus_path,
            local_uri=alice_path,
            identity='"Alice" <sip:alice@127.0.0.1>',
            peer_identity=f"<{room}>",
        )

        # Alice watches the roster
        sub_id = alice.request(
            "SUBSCRIBE",
            room,
            from_tag="sub1",
            headers="Event: conference\r\nAccept: application/conference-info+xml\r\n"
            "Expires: 600\r\n",
        )
        sub = await asyncio.to_thread(alice.wait_for, final_response(sub_id), 10.0)
        assert isinstance(sub, Response) and sub.status == 200, sub

        # ... and refers Bob to the room
        bob = f"sip:bob@127.0.0.1:{uas.port}"
        refer_id = alice.request(
            "REFER",
            room,
            from_tag="refer1",
            headers=f"Refer-To: <{bob}>\r\nReferred-By: <{alice.aor}>\r\n",
        )
        accepted = await asyncio.to_thread(alice.wait_for, final_response(refer_id), 10.0)
        assert isinstance(accepted, Response) and accepted.status == 202, accepted

        # the focus dials Bob out with audio + chat, offering to connect
        invite = await asyncio.wait_for(uas.invites.get(), 10.0)
        assert (invite.headers.get("X-Orig-From") or "").strip("<>") == alice.aor
        audio_offer, chat_offer = sections(invite.body)
        assert audio_offer.startswith("m=audio ")
        assert chat_offer.startswith("m=message ") and " TCP/TLS/MSRP * " in (
            chat_offer.split("\r\n", 1)[0] + " "
        )
        assert attribute(chat_offer, "setup") == "active"
        assert attribute(chat_offer, "accept-types") == "message/cpim"
        assert attribute(chat_offer, "accept-wrapped-types") == "*"
        focus_to_bob = attribute(chat_offer, "path")
        assert focus_to_bob is not None and focus_to_bob.startswith("msrps://127.0.0.1:")

        # the focus connects to Bob's listener and binds with the exact paths
        bind = await bob_msrp.accept(focus_to_bob, timeout=10.0)
        assert bind.method == "SEND" and not bind.body
        assert bind.to_path == [bob_msrp.local_uri]
        assert bind.from_path == [focus_to_bob]

        # the roster shows Bob with chat
        notify = await asyncio.to_thread(
            alice.wait_for, lambda m: is_conference_notify(m, "sip:bob@127.0.0.1", "message"),
            10.0,
        )
        assert isinstance(notify, Request)
        assert "audio" in media_types_of(notify.body, "sip:bob@127.0.0.1")

        # chat flows through the room both ways
        await alice_msrp.send_chat("hello bob, from alice")
        got = await bob_msrp.wait_for(lambda m: m.text == "hello bob, from alice", timeout=10)
        assert got.cpim is not None and "sip:alice@127.0.0.1" in str(got.cpim.sender)
        await bob_msrp.send_chat("hi alice")
        back = await alice_msrp.wait_for(lambda m: m.text == "hi alice", timeout=10)
        assert back.cpim is not None and "sip:bob@127.0.0.1" in str(back.cpim.sender)

        alice.request("BYE", str(ok.contacts[0].uri), call_id=call_id, from_tag="call1",
                      to=ok.headers.get("To"), cseq=2)
        bye_ok = await asyncio.to_thread(alice.wait_for, final_response(call_id), 10.0)
        assert isinstance(bye_ok, Response) and bye_ok.status == 200
    finally:
        if alice_msrp is not None:
            await alice_msrp.close()
        await bob_msrp.close()
        uas_transport.close()
        with contextlib.suppress(OSError):
            alice.close()
