"""Tests for dial-out with the room's active media in sylkbox/conference/refer.py (BLINK.md 2.2:
audio and/or chat) and the MSRP roles of the dialled-out chat stream (BLINK.md 7, RFC 4145,
RFC 6135): we offer ``a=setup:active``; a ``passive`` answer (what Blink's Bonjour account always
answers) makes us connect to the callee's ``a=path``; an ``active`` answer makes us wait for its
connection; a failed connection drops the chat stream, and the call when chat was all it had.

The focus runs against the fakes of `tests.helpers.fakes` and the MSRP/chat fakes of
`tests.conference.test_focus_chat`; the REFER is Blink's captured one (carol@192.0.2.40).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.conference.focus import Focus
from sylkbox.conference.participant import Participant, ParticipantState
from sylkbox.config import Config
from sylkbox.msrp.uri import MsrpUri
from sylkbox.sdp import InvalidAnswerError, SessionDescription, Setup, negotiate_chat_answer
from sylkbox.sip.sipfrag import parse_sipfrag
from tests.conference.test_focus_chat import ChatEnv, FakeMsrpPort, RecordingChat, new_chat_env
from tests.helpers.fakes import (
    AUDIO_OFFER,
    FakeMediaPort,
    FakeSipPort,
    SentRequest,
    drain,
    parse_request,
    received,
)

VECTORS = Path(__file__).parent.parent / "vectors"
ROOM_KEY = "room1@sylkbox.local"
CAROL = "sip:carol@192.0.2.40"
CAROL_PATH = "msrps://192.0.2.40:40123/c4a7f0e1d2b3a4958671;tcp"


@pytest.fixture
async def env() -> AsyncIterator[ChatEnv]:
    env = new_chat_env()
    yield env
    await env.close()


def vector(path: str) -> bytes:
    return (VECTORS / path).read_bytes()


async def alice_joins(env: ChatEnv, offer: bytes) -> None:
    """Alice calls the room; her chat stream (if any) connects."""
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(offer)).status == 200
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    if participant.chat is not None:
        env.msrp.remote_connects(participant.chat.local_uri)
        await drain()


async def refer_carol(env: ChatEnv) -> tuple[SentRequest, SessionDescription]:
    refer = parse_request(vector("conference/blink_refer_add.sip"))
    env.focus.handle_request(received(refer))
    await drain()
    [invite] = env.sip.pending("INVITE")
    return invite, SessionDescription.parse(invite.request.body)


def carol(env: ChatEnv) -> Participant:
    [participant] = env.focus.rooms[ROOM_KEY].by_uri(CAROL)
    return participant


def answer_sdp(
    *,
    audio_port: int | None = 30000,
    chat_port: int | None = 40123,
    setup: str | None = "passive",
    path: str = CAROL_PATH,
    proto: str = "TCP/TLS/MSRP",
    chat_direction: str = "sendrecv",
) -> bytes:
    """Carol's answer: PCMU audio and/or a Blink-like chat line (port None: no such line,
    port 0: rejected)."""
    lines = ["v=0", "o=- 7 7 IN IP4 192.0.2.40", "s=-", "c=IN IP4 192.0.2.40", "t=0 0"]
    if audio_port is not None:
        lines += [f"m=audio {audio_port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv"]
    if chat_port is not None:
        lines += [
            f"m=message {chat_port} {proto} *",
            f"a=path:{path}",
            "a=accept-types:message/cpim text/* image/* application/im-iscomposing+xml",
            "a=accept-wrapped-types:text/* image/* application/im-iscomposing+xml",
        ]
        if setup is not None:
            lines.append(f"a=setup:{setup}")
        lines.append(f"a={chat_direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


def answer(invite: SentRequest, body: bytes) -> None:
    invite.reply(
        200, contact="<sip:carol@192.0.2.40:5060>", body=body, content_type="application/sdp"
    )


def our_offered_uri(offer: SessionDescription) -> MsrpUri:
    path = offer.media[-1].attribute("path")
    assert path is not None
    return MsrpUri.parse(path)


def carol_media(env: ChatEnv) -> list[str]:
    snapshot = env.focus.rooms[ROOM_KEY].snapshot()
    [user] = [u for u in snapshot.users if u.entity == CAROL]
    return [m.type for e in user.endpoints for m in e.media]


def refer_frags(env: ChatEnv) -> list[tuple[int, str]]:
    refer_call_id = "8c9d0e1f-2a3b-4c5d-6e7f-8091a2b3c4d5"
    return [
        parse_sipfrag(s.request.body)
        for s in env.sip.sent("NOTIFY")
        if s.request.call_id == refer_call_id
    ]


# ------------------------------------------------------------------------------- the offer
async def test_audio_only_room_offers_audio_only(env: ChatEnv) -> None:
    await alice_joins(env, AUDIO_OFFER)
    _, offer = await refer_carol(env)
    assert [m.media for m in offer.media] == ["audio"]


async def test_room_with_chat_offers_audio_and_active_chat(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    _, offer = await refer_carol(env)
    audio, message = offer.media
    assert audio.media == "audio"
    assert (message.media, message.proto, message.formats) == ("message", "TCP/TLS/MSRP", ["*"])
    local = our_offered_uri(offer)
    assert local.secure and local.host == "192.0.2.1"  # FakeMsrpPort.new_local_uri()
    assert message.port == local.port
    assert message.attribute("setup") == "active"  # BLINK.md 7: a Bonjour Blink answers passive
    assert message.attribute("accept-types") == "message/cpim"
    assert message.attribute("accept-wrapped-types") == "*"
    assert message.attribute("chatroom") == (
        "nickname private-messages com.ag-projects.screen-sharing com.ag-projects.zrtp-sas"
    )
    assert offer.direction_for(message).value == "sendrecv"
    assert env.msrp.connects == [] and len(env.msrp.expected) == 0  # nothing before the answer


async def test_chat_only_room_offers_chat_only(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_chat_only.sdp"))
    added = len(env.media.added)
    _, offer = await refer_carol(env)
    assert [m.media for m in offer.media] == ["message"]
    assert len(env.media.added) == added  # no RTP stream for carol


class PlainMsrpPort(FakeMsrpPort):
    """The listener with ``[msrp] tls = false``: msrp:// URIs, TCP/MSRP."""

    tls = False

    def new_local_uri(self, peer_host: str | None = None) -> MsrpUri:
        return dataclasses.replace(super().new_local_uri(peer_host), secure=False)


async def test_plain_tcp_listener_offers_tcp_msrp() -> None:
    msrp, chat = PlainMsrpPort(), RecordingChat()
    sip, media = FakeSipPort(), FakeMediaPort()
    env = ChatEnv(Focus(Config(), sip, media, msrp, chat), sip, media)
    env.msrp, env.chat = msrp, chat
    sip.auto_reply = {"NOTIFY": 200, "BYE": 200}
    try:
        offer_bytes = vector("sdp/blink_chat_only.sdp").replace(b"TCP/TLS/MSRP", b"TCP/MSRP")
        await alice_joins(env, offer_bytes.replace(b"msrps://", b"msrp://"))
        _, offer = await refer_carol(env)
        [message] = offer.media
        assert message.proto == "TCP/MSRP"
        assert (message.attribute("path") or "").startswith("msrp://192.0.2.1:")
        assert message.attribute("setup") == "active"
    finally:
        await env.close()


# ----------------------------------------------------------------------------- the roles
async def test_passive_answer_makes_the_focus_connect_and_join_the_chat(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, offer = await refer_carol(env)
    answer(invite, answer_sdp(setup="passive"))
    await drain()

    [(local, remote)] = env.msrp.connects
    assert local == our_offered_uri(offer)
    assert remote == CAROL_PATH
    channel = env.msrp.channels[-1]
    assert (CAROL, channel) in env.chat.joined  # the same hand-over as incoming streams
    assert channel.on_lost is not None
    participant = carol(env)
    assert participant.state is ParticipantState.CONNECTED
    assert participant.chat is not None and participant.chat.channel is channel
    assert participant.audio is not None and participant.audio.remote_port == 30000
    assert carol_media(env) == ["audio", "message"]
    assert refer_frags(env)[-1] == (200, "OK")
    [(ack, _, _)] = [s for s in env.sip.stateless if s[0].method == "ACK"]
    assert ack.call_id == invite.request.call_id


async def test_answer_without_setup_is_read_as_passive(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    answer(invite, answer_sdp(setup=None))
    await drain()
    assert [remote for _, remote in env.msrp.connects] == [CAROL_PATH]


async def test_active_answer_makes_the_focus_wait_for_the_callee(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, offer = await refer_carol(env)
    answer(invite, answer_sdp(setup="active"))
    await drain()

    local = our_offered_uri(offer)
    assert [c for c in env.msrp.connects if c[0] == local] == []
    _, remote, exact, _ = env.msrp.expected[local.session_id]
    assert (remote, exact) == (CAROL_PATH, True)  # BLINK.md 7: exact path match
    channel = env.msrp.remote_connects(local)
    await drain()
    assert (CAROL, channel) in env.chat.joined


# ------------------------------------------------------------------------------- failures
async def test_connect_failure_drops_chat_but_keeps_audio(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    env.msrp.fail_connect = ConnectionRefusedError("refused")
    answer(invite, answer_sdp())
    await drain()

    participant = carol(env)
    assert participant.chat is None and participant.audio is not None
    assert participant.state is ParticipantState.CONNECTED
    assert carol_media(env) == ["audio"]
    assert env.sip.sent("BYE") == []
    assert all(uri != CAROL for uri, _ in env.chat.joined)


async def test_connect_failure_ends_a_chat_only_call(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_chat_only.sdp"))
    invite, _ = await refer_carol(env)
    env.msrp.fail_connect = ConnectionRefusedError("refused")
    answer(invite, answer_sdp(audio_port=None))
    await drain()

    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == invite.request.call_id
    assert env.focus.rooms[ROOM_KEY].by_uri(CAROL) == []
    watcher = env.phone("bob", host="192.0.2.30")
    assert (await watcher.subscribe()).status == 200
    info = parse_conference_info(watcher.notifies()[-1].request.body)
    assert all(u.entity != CAROL for u in info.room.users)


async def test_callee_rejecting_chat_gets_audio_only(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    answer(invite, answer_sdp(chat_port=0))
    await drain()
    assert env.msrp.connects == []
    participant = carol(env)
    assert participant.chat is None and participant.state is ParticipantState.CONNECTED
    assert carol_media(env) == ["audio"]


async def test_callee_rejecting_audio_keeps_chat(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    answer(invite, answer_sdp(audio_port=0))
    await drain()
    participant = carol(env)
    assert participant.audio is None and participant.chat is not None
    assert f"{env.focus.rooms[ROOM_KEY].id}-{participant.id}" in env.media.removed
    assert carol_media(env) == ["message"]


async def test_unusable_chat_answer_drops_only_chat(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    # a transport other than offered (BLINK.md 4.1: Blink rejects such a stream too)
    answer(invite, answer_sdp(proto="TCP/MSRP", path=CAROL_PATH.replace("msrps", "msrp")))
    await drain()
    assert env.msrp.connects == []
    assert carol(env).chat is None and carol(env).state is ParticipantState.CONNECTED


async def test_chat_only_call_with_unusable_answer_is_ended(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_chat_only.sdp"))
    invite, _ = await refer_carol(env)
    answer(invite, answer_sdp(audio_port=None, setup="holdconn"))
    await drain()
    assert len(env.sip.sent("BYE")) == 1
    assert refer_frags(env)[-1] == (488, "Not Acceptable Here")


async def test_failed_dial_out_leaves_no_chat_state(env: ChatEnv) -> None:
    await alice_joins(env, vector("sdp/blink_audio_chat.sdp"))
    invite, _ = await refer_carol(env)
    invite.reply(486, "Busy Here")
    await drain()
    assert env.focus.rooms[ROOM_KEY].by_uri(CAROL) == []
    assert env.msrp.connects == [] and env.msrp.expected == {}
    assert refer_frags(env)[-1] == (486, "Busy Here")


# --------------------------------------------------------- negotiate_chat_answer (sdp)
def _offer_with_chat() -> SessionDescription:
    from sylkbox.sdp import Capabilities, build_offer

    return build_offer(
        Capabilities.from_names(["PCMU/8000"]),
        address="192.0.2.1",
        audio_port=40000,
        session_id=1,
        session_version=1,
        chat_path="msrps://192.0.2.1:2855/aaaabbbbccccddddeeee;tcp",
    )


@pytest.mark.parametrize(
    ("setup", "ours"),
    [("passive", Setup.ACTIVE), (None, Setup.ACTIVE), ("actpass", Setup.ACTIVE),
     ("active", Setup.PASSIVE)],
)
def test_negotiate_chat_answer_roles(setup: str | None, ours: Setup) -> None:
    accepted = negotiate_chat_answer(
        _offer_with_chat(), SessionDescription.parse(answer_sdp(setup=setup))
    )
    assert accepted is not None
    assert accepted.local_setup is ours and accepted.index == 1
    assert accepted.remote_path == (CAROL_PATH,)


@pytest.mark.parametrize(
    "body",
    [
        answer_sdp(setup="holdconn"),
        answer_sdp(proto="TCP/MSRP"),
        answer_sdp(path="msrps://192.0.2.40:40123;tcp"),  # no session-id
        answer_sdp(chat_port=None),  # m-line count differs
        answer_sdp(chat_direction="recvonly"),
    ],
)
def test_negotiate_chat_answer_refuses_bad_lines(body: bytes) -> None:
    with pytest.raises(InvalidAnswerError):
        negotiate_chat_answer(_offer_with_chat(), SessionDescription.parse(body))


def test_negotiate_chat_answer_without_chat() -> None:
    offer = _offer_with_chat()
    assert negotiate_chat_answer(offer, SessionDescription.parse(answer_sdp(chat_port=0))) is None
    offer.media.pop()
    audio_only = SessionDescription.parse(answer_sdp(chat_port=None))
    assert negotiate_chat_answer(offer, audio_only) is None
