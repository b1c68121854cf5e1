"""Tests for MSRP chat in sylkbox/conference/focus.py: chat-only and audio+chat INVITEs,
the connection model (BLINK.md 7), re-INVITE adding/removing chat, conference-info
``<media><type>message``, and a dropped MSRP connection (BYE when it was the only stream).

The focus runs against `FakeSipPort`/`FakeMediaPort` and the fakes below for the MSRP
listener (`MsrpPort`) and the chat switch (`ChatPort`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from sylkbox.conference.chat_port import EchoToRoomChat, MsrpChannel
from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.conference.focus import Focus
from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room
from sylkbox.config import Config
from sylkbox.msrp.session import MessageReceived, MsrpEvent, MsrpSession, SessionConfig
from sylkbox.msrp.uri import MsrpUri, new_session_id, parse_path
from sylkbox.sdp import SessionDescription
from tests.helpers.fakes import FakeMediaPort, FakeSipPort, FocusEnv, drain

T = TypeVar("T")
VECTORS = Path(__file__).parent.parent / "vectors"
ROOM_KEY = "room1@sylkbox.local"
BLINK_PATH = "msrps://192.168.1.20:2855/7c1d2e3f4a5b6c7d8e9f;tcp"


def vector(path: str) -> bytes:
    return (VECTORS / path).read_bytes()


class FakeChannel:
    """An `MsrpChannel` over a real `MsrpSession`, without a socket."""

    def __init__(self, local: MsrpUri, remote: tuple[MsrpUri, ...]) -> None:
        self.session = MsrpSession(local, remote)
        self.handler: Callable[[MsrpEvent], None] | None = None
        self.on_lost: Callable[[str], None] | None = None
        self.closed = False
        self.written = bytearray()

    @property
    def local_uri(self) -> MsrpUri:
        return self.session.local_uri

    @property
    def remote_path(self) -> tuple[MsrpUri, ...]:
        return self.session.remote_path

    @property
    def writable(self) -> bool:
        return not self.closed

    @property
    def is_open(self) -> bool:
        return not self.closed

    def set_handler(
        self, handler: Callable[[MsrpEvent], None], on_lost: Callable[[str], None] | None = None
    ) -> None:
        self.handler, self.on_lost = handler, on_lost

    def call(self, action: Callable[[MsrpSession], T]) -> T:
        result = action(self.session)
        self.written += self.session.data_to_send()
        return result

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def drop(self, reason: str = "connection reset") -> None:
        assert self.on_lost is not None
        self.on_lost(reason)


class FakeMsrpPort:
    """An `MsrpPort`: records expectations and connects; the test completes them."""

    tls = True

    def __init__(self) -> None:
        self.expected: dict[str, tuple[MsrpUri, str, bool, asyncio.Future[MsrpChannel]]] = {}
        self.connects: list[tuple[MsrpUri, str]] = []
        self.channels: list[FakeChannel] = []
        self.forgotten: list[MsrpUri] = []
        self.fail_connect: Exception | None = None
        self.peer_hosts: list[str | None] = []  # new_local_uri's peers

    def new_local_uri(self, peer_host: str | None = None) -> MsrpUri:
        self.peer_hosts.append(peer_host)
        return MsrpUri(secure=True, host="192.0.2.1", port=2855, session_id=new_session_id())

    def expect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        exact: bool = True,
        config: SessionConfig | None = None,
    ) -> Awaitable[MsrpChannel]:
        assert isinstance(remote_path, str)
        future: asyncio.Future[MsrpChannel] = asyncio.get_running_loop().create_future()
        self.expected[local_uri.session_id] = (local_uri, remote_path, exact, future)
        return future

    def forget_expected(self, local_uri: MsrpUri) -> None:
        self.forgotten.append(local_uri)
        entry = self.expected.pop(local_uri.session_id, None)
        if entry is not None and not entry[3].done():
            entry[3].cancel()

    async def connect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        config: SessionConfig | None = None,
    ) -> MsrpChannel:
        assert isinstance(remote_path, str)
        self.connects.append((local_uri, remote_path))
        if self.fail_connect is not None:
            raise self.fail_connect
        channel = FakeChannel(local_uri, parse_path(remote_path))
        self.channels.append(channel)
        return channel

    def remote_connects(self, local_uri: MsrpUri) -> FakeChannel:
        """The remote (active) side connects for the session expected at `local_uri`."""
        local, remote, _, future = self.expected.pop(local_uri.session_id)
        channel = FakeChannel(local, parse_path(remote))
        self.channels.append(channel)
        future.set_result(channel)
        return channel


class RecordingChat(EchoToRoomChat):
    """The minimal chat port, recording what the focus hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: list[tuple[str, MsrpChannel]] = []
        self.left: list[str] = []
        self.events: list[tuple[str, MsrpEvent]] = []

    def join(self, room: Room, participant: Participant, channel: MsrpChannel) -> None:
        super().join(room, participant, channel)
        self.joined.append((participant.uri, channel))

    def leave(self, room: Room, participant: Participant) -> None:
        super().leave(room, participant)
        self.left.append(participant.uri)

    def handle_event(self, room: Room, participant: Participant, event: MsrpEvent) -> None:
        self.events.append((participant.uri, event))
        super().handle_event(room, participant, event)


class ChatEnv(FocusEnv):
    msrp: FakeMsrpPort
    chat: RecordingChat


def new_chat_env() -> ChatEnv:
    """A focus with the MSRP and chat fakes; NOTIFY and BYE are answered 200."""
    sip, media, msrp, chat = FakeSipPort(), FakeMediaPort(), FakeMsrpPort(), RecordingChat()
    env = ChatEnv(Focus(Config(), sip, media, msrp, chat), sip, media)
    env.msrp, env.chat = msrp, chat
    env.sip.auto_reply = {"NOTIFY": 200, "BYE": 200}
    return env


@pytest.fixture
async def env() -> AsyncIterator[ChatEnv]:
    env = new_chat_env()
    yield env
    await env.close()


def answer_of(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body)


def our_uri(env: ChatEnv) -> MsrpUri:
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.chat is not None
    return participant.chat.local_uri


def media_types(env: ChatEnv) -> list[list[str]]:
    snapshot = env.focus.rooms[ROOM_KEY].snapshot()
    return [[m.type for e in u.endpoints for m in e.media] for u in snapshot.users]


# ---------------------------------------------------------------------------- INVITE
async def test_chat_only_invite_is_answered_at_once_as_passive(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    response = await alice.call(vector("sdp/blink_chat_only.sdp"))
    assert response.status == 200  # before any MSRP connection exists
    [message] = answer_of(response.body).media
    local = our_uri(env)
    assert (message.media, message.port, message.proto, message.formats) == (
        "message", 2855, "TCP/TLS/MSRP", ["*"]
    )
    assert message.attribute("path") == str(local)
    assert message.attribute("setup") == "passive"  # Blink offered active (BLINK.md 7)
    assert message.attribute("accept-types") == "message/cpim"
    assert message.attribute("accept-wrapped-types") == "*"
    assert message.attribute("chatroom") == (
        "nickname private-messages com.ag-projects.screen-sharing com.ag-projects.zrtp-sas"
    )
    assert env.media.added == []
    _, remote, exact, _ = env.msrp.expected[local.session_id]
    assert (remote, exact) == (BLINK_PATH, True)
    assert media_types(env) == [["message"]]

    channel = env.msrp.remote_connects(local)
    await drain()
    assert env.chat.joined == [("sip:alice@192.168.1.20", channel)]
    assert channel.on_lost is not None


async def test_audio_and_chat_invite(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    response = await alice.call(vector("sdp/blink_audio_chat.sdp"))
    assert response.status == 200
    audio, message = answer_of(response.body).media
    assert audio.media == "audio" and audio.port == 40000  # FakeMediaPort's first port
    assert message.media == "message" and message.port == 2855
    assert message.attribute("path") == str(our_uri(env))
    assert media_types(env) == [["audio", "message"]]
    env.msrp.remote_connects(our_uri(env))
    await drain()
    assert len(env.chat.joined) == 1
    # conference-info carries both media (RFC 4575 5.7.1)
    watcher = env.phone("bob", host="192.0.2.30")
    assert (await watcher.subscribe()).status == 200
    info = parse_conference_info(watcher.notifies()[-1].request.body)
    [user] = [u for u in info.room.users if u.entity == "sip:alice@192.168.1.20"]
    assert [m.type for m in user.endpoints[0].media] == ["audio", "message"]


async def test_actpass_offer_makes_the_focus_connect(env: ChatEnv) -> None:
    offer = vector("sdp/blink_chat_only.sdp").replace(b"a=setup:active", b"a=setup:actpass")
    alice = env.phone("alice", host="192.168.1.20")
    response = await alice.call(offer)
    assert response.status == 200
    [message] = answer_of(response.body).media
    assert message.attribute("setup") == "active"
    await drain()
    [(local, remote)] = env.msrp.connects
    assert (local, remote) == (our_uri(env), BLINK_PATH)
    assert env.msrp.expected == {}
    [(_, channel)] = env.chat.joined
    assert channel is env.msrp.channels[0]


async def test_messages_reach_the_chat_port_and_are_relayed(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_chat_only.sdp"))
    first = env.msrp.remote_connects(our_uri(env))
    bob = env.phone("bob", host="192.168.1.30")
    await bob.call(vector("sdp/blink_chat_only.sdp").replace(b"192.168.1.20", b"192.168.1.30"))
    bob_participant = next(
        p for p in env.focus.rooms[ROOM_KEY].participants.values() if p.uri.startswith("sip:bob")
    )
    assert bob_participant.chat is not None
    second = env.msrp.remote_connects(bob_participant.chat.local_uri)
    await drain()
    event = MessageReceived(
        message_id="m1", content_type="text/plain", body=b"hi", headers={}, size=2,
        success_report=True, failure_report="yes", reply_path=first.remote_path,
    )
    assert first.handler is not None
    first.handler(event)
    assert env.chat.events == [("sip:alice@192.168.1.20", event)]
    assert b"REPORT" in first.written and b"Status: 000 200" in first.written
    assert b"\r\n\r\nhi\r\n" in second.written  # relayed to the other session only


# ------------------------------------------------------------------------- dropping
async def test_dropped_chat_only_connection_sends_bye_and_notifies(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_chat_only.sdp"))
    channel = env.msrp.remote_connects(our_uri(env))
    await drain()
    watcher = env.phone("bob", host="192.0.2.30")
    assert (await watcher.subscribe()).status == 200
    notified = len(watcher.notifies())

    channel.drop("connection reset by peer")
    await drain()
    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == alice.call_id
    assert env.chat.left == ["sip:alice@192.168.1.20"]
    assert channel.closed
    assert ROOM_KEY not in env.focus.rooms or not env.focus.rooms[ROOM_KEY].participants
    notifies = watcher.notifies()[notified:]
    assert notifies, "the roster NOTIFY went out"
    info = parse_conference_info(notifies[-1].request.body)
    assert all(u.entity != "sip:alice@192.168.1.20" for u in info.room.users)


async def test_dropped_chat_with_audio_keeps_the_session(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_audio_chat.sdp"))
    channel = env.msrp.remote_connects(our_uri(env))
    await drain()
    channel.drop()
    await drain()
    assert env.sip.sent("BYE") == []
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.chat is None and participant.audio is not None
    assert media_types(env) == [["audio"]]
    assert env.chat.left == ["sip:alice@192.168.1.20"]


async def test_remote_that_never_connects_is_ended(env: ChatEnv) -> None:
    env.focus.msrp_connect_timeout = 0.05
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_chat_only.sdp"))
    await asyncio.sleep(0.1)
    await drain()
    assert len(env.sip.sent("BYE")) == 1
    assert env.chat.joined == []


async def test_failed_active_connect_is_ended(env: ChatEnv) -> None:
    env.msrp.fail_connect = ConnectionRefusedError("refused")
    offer = vector("sdp/blink_chat_only.sdp").replace(b"a=setup:active", b"a=setup:passive")
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(offer)).status == 200
    await drain()
    assert len(env.sip.sent("BYE")) == 1


async def test_bye_from_the_caller_closes_the_chat(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_chat_only.sdp"))
    channel = env.msrp.remote_connects(our_uri(env))
    await drain()
    bye = await alice.in_dialog("BYE")
    assert env.sip.final(bye).status == 200
    assert channel.closed and env.chat.left == ["sip:alice@192.168.1.20"]


async def test_leaving_before_the_connection_forgets_the_expectation(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    await alice.call(vector("sdp/blink_chat_only.sdp"))
    local = our_uri(env)
    await alice.in_dialog("BYE")
    await drain()
    assert env.msrp.forgotten == [local]
    assert env.chat.joined == []


# ------------------------------------------------------------------------- re-INVITE
async def test_reinvite_adds_and_removes_chat(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    audio_only = vector("sdp/blink_audio_chat.sdp").split(b"m=message")[0]
    assert (await alice.call(audio_only)).status == 200
    assert media_types(env) == [["audio"]]

    add = await alice.in_dialog(
        "INVITE", body=vector("sdp/blink_audio_chat.sdp"), content_type="application/sdp"
    )
    response = env.sip.final(add)
    assert response.status == 200
    message = answer_of(response.body).media[1]
    local = our_uri(env)
    assert message.port == 2855 and message.attribute("path") == str(local)
    channel = env.msrp.remote_connects(local)
    await drain()
    assert media_types(env) == [["audio", "message"]]
    assert len(env.chat.joined) == 1

    # the same chat offered again: kept, same path in the answer
    again = await alice.in_dialog(
        "INVITE", body=vector("sdp/blink_audio_chat.sdp"), content_type="application/sdp"
    )
    assert answer_of(env.sip.final(again).body).media[1].attribute("path") == str(local)
    assert not channel.closed

    disabled = vector("sdp/blink_audio_chat.sdp").replace(b"m=message 2855", b"m=message 0")
    remove = await alice.in_dialog("INVITE", body=disabled, content_type="application/sdp")
    response = env.sip.final(remove)
    assert response.status == 200
    assert answer_of(response.body).media[1].port == 0
    assert channel.closed and env.chat.left == ["sip:alice@192.168.1.20"]
    assert media_types(env) == [["audio"]]
    assert env.sip.sent("BYE") == []


async def test_without_msrp_port_chat_is_rejected() -> None:
    env = FocusEnv.create()
    try:
        alice = env.phone("alice", host="192.168.1.20")
        assert (await alice.call(vector("sdp/blink_chat_only.sdp"))).status == 488
    finally:
        await env.close()
