"""Our address in what the focus sends is the one each peer reaches us at (issue 5).

`net.local_address` picks it per peer; here the SIP port's `contact_host` is a table (peer host ->
our address on that peer's link), as on a box with two links, and every place that writes our
address is checked to ask for the right peer: the 200's Contact and SDP ``c=``/``o=``, the MSRP
``a=path`` (`MsrpPort.new_local_uri`), a dial-out's Contact and offer (the callee), and each
conference-info subscriber's NOTIFY Contact and screen-sharing URL (the subscriber). The real
kernel's choice, on real links, is proven by tests/interop/test_local_address.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.conference.focus import Focus
from sylkbox.conference.screenshare import ScreenSharing
from sylkbox.config import Config
from sylkbox.sdp import SessionDescription
from sylkbox.sip.message import Request, Response
from tests.conference.test_focus_chat import ChatEnv, FakeMsrpPort, RecordingChat
from tests.helpers.fakes import (
    AUDIO_OFFER,
    FakeMediaPort,
    FakeSipPort,
    drain,
    parse_request,
    received,
)

VECTORS = Path(__file__).parent.parent / "vectors"
ROOM_KEY = "room1@sylkbox.local"
# peer host -> our address on its link
LINKS = {
    "192.168.1.20": "192.168.1.2",  # alice, Blink on the first LAN
    "192.168.1.30": "192.168.1.2",
    "10.2.0.20": "10.2.0.1",  # bob, on the second LAN
    "10.2.0.30": "10.2.0.1",
    "192.0.2.40": "192.0.2.1",  # carol, dialled out (the captured REFER's target)
}
DEFAULT = "10.9.9.9"  # when no peer is known
PORT = 5060


class PerPeerSip(FakeSipPort):
    """`FakeSipPort` whose `contact_host` answers per peer, recording the peers asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def contact_host(self, transport: str, peer_host: str) -> tuple[str, int]:
        self.asked.append(peer_host)
        return LINKS.get(peer_host, DEFAULT), PORT


def our_host(peer_host: str | None) -> str:
    return LINKS.get(peer_host or "", DEFAULT)


@pytest.fixture
async def env() -> AsyncIterator[ChatEnv]:
    sip, media, msrp, chat = PerPeerSip(), FakeMediaPort(), FakeMsrpPort(), RecordingChat()
    env = ChatEnv(Focus(Config(), sip, media, msrp, chat), sip, media)
    env.msrp, env.chat = msrp, chat
    env.sip.auto_reply = {"NOTIFY": 200, "BYE": 200}
    yield env
    await env.close()


def contact_host(message: Request | Response) -> str:
    return message.contacts[0].uri.host


def assert_sdp_address(body: bytes, address: str) -> None:
    sdp = SessionDescription.parse(body)
    assert sdp.origin.address == address
    assert sdp.connection is not None and sdp.connection.address == address
    for media in sdp.media:
        assert media.connection is None or media.connection.address == address


async def test_each_caller_gets_our_address_on_its_link(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    bob = env.phone("bob", host="10.2.0.20", display="Bob")
    to_alice = await alice.call((VECTORS / "sdp/blink_audio_chat.sdp").read_bytes())
    to_bob = await bob.call(AUDIO_OFFER)
    assert to_alice.status == to_bob.status == 200
    assert contact_host(to_alice) == "192.168.1.2"
    assert contact_host(to_bob) == "10.2.0.1"
    assert_sdp_address(to_alice.body, "192.168.1.2")
    assert_sdp_address(to_bob.body, "10.2.0.1")
    assert env.msrp.peer_hosts == ["192.168.1.20"]  # alice's a=path host is for her link


async def test_a_reinvite_answer_is_for_the_peers_link(env: ChatEnv) -> None:
    bob = env.phone("bob", host="10.2.0.20", display="Bob")
    assert (await bob.call(AUDIO_OFFER)).status == 200
    reinvite = await bob.in_dialog(
        "INVITE", body=(VECTORS / "sdp/blink_audio_chat.sdp").read_bytes(),
        content_type="application/sdp",
    )
    await drain()
    response = env.sip.final(reinvite)
    assert response.status == 200
    assert contact_host(response) == "10.2.0.1"
    assert_sdp_address(response.body, "10.2.0.1")
    assert env.msrp.peer_hosts == ["10.2.0.20"]  # the chat stream the re-INVITE added


async def test_a_dial_out_offers_our_address_on_the_callees_link(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call((VECTORS / "sdp/blink_audio_chat.sdp").read_bytes())).status == 200
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.chat is not None
    env.msrp.remote_connects(participant.chat.local_uri)
    await drain()
    refer = parse_request((VECTORS / "conference/blink_refer_add.sip").read_bytes())
    env.focus.handle_request(received(refer, ("192.168.1.20", 5060)))
    await drain()
    assert contact_host(env.sip.final(refer)) == "192.168.1.2"  # the 202 goes to alice
    [invite] = env.sip.pending("INVITE")
    assert invite.dest[0] == "192.0.2.40"
    assert contact_host(invite.request) == "192.0.2.1"
    assert_sdp_address(invite.request.body, "192.0.2.1")
    assert env.msrp.peer_hosts[-1] == "192.0.2.40"


async def test_each_subscriber_gets_its_contact_and_screen_url(
    env: ChatEnv, tmp_path: Path
) -> None:
    screens = ScreenSharing(tmp_path, base_url="http://127.0.0.1:8080", host_for=our_host)
    env.focus.screens = screens
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(AUDIO_OFFER)).status == 200
    room = env.focus.rooms[ROOM_KEY]
    url = screens.attach(room).url_for("alice@192.168.1.20_abcdefghij.jpg")
    assert urlsplit(url).netloc == f"{DEFAULT}:8080"  # no peer known: the default address
    watchers = {
        "192.168.1.30": env.phone("dave", host="192.168.1.30"),
        "10.2.0.30": env.phone("erin", host="10.2.0.30"),
    }
    for watcher in watchers.values():
        response = await watcher.subscribe()
        assert response.status == 200
    room.screen_urls["alice@192.168.1.20"] = url
    env.focus.room_changed(room)
    await drain()
    versions = set()
    for peer, watcher in watchers.items():
        notify = watcher.notifies()[-1].request
        assert contact_host(notify) == our_host(peer)
        document = parse_conference_info(notify.body)
        versions.add(document.version)
        [user] = document.room.users
        assert user.screen_image_url is not None
        parts = urlsplit(user.screen_image_url)
        assert parts.netloc == f"{our_host(peer)}:8080"
        assert (parts.path, parts.query) == (urlsplit(url).path, urlsplit(url).query)
    assert len(versions) == 1  # one room state, one version, a body per link


def test_url_for_peer_keeps_everything_but_the_host(tmp_path: Path) -> None:
    screens = ScreenSharing(tmp_path, base_url="http://127.0.0.1:8080", host_for=our_host)
    url = "http://127.0.0.1:8080/conference/r%40x/screensharing?image=a%40b.jpg"
    assert screens.url_for_peer(url, "10.2.0.20") == (
        "http://10.2.0.1:8080/conference/r%40x/screensharing?image=a%40b.jpg"
    )
    v6 = ScreenSharing(tmp_path, host_for=lambda peer: "fd00::1")
    assert v6.url_for_peer(url, "fd00::9").startswith("http://[fd00::1]:8080/conference/")
    assert ScreenSharing(tmp_path).url_for_peer(url, "10.2.0.20") == url  # no host_for
