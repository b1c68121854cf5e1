"""Tests for sylkbox/conference/renegotiation.py and the focus's re-offer handling:

* re-offers in an RFC 5547 file transfer session: the same stream (refresh, hold attempt) gets
  the previous answer unchanged; a changed selector, path, transfer id or an added stream gets
  488 and the transfer goes on; the file stream at port 0 gets port 0 and a BYE;
* a chat stream whose MSRP connection was lost while audio stays: the focus re-INVITEs with
  the ``m=message`` line at port 0 (glare: 491 both ways), later offers of the old path are
  answered with port 0, a new path sets up a new chat;
* a participant dialled out by REFER adding chat by re-INVITE.

The focus runs against the fakes of `tests.helpers.fakes` and the MSRP/chat fakes of
`tests.conference.test_focus_chat` / `test_refer_chat`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sylkbox.conference.files import FileStore
from sylkbox.conference.focus import Focus
from sylkbox.conference.participant import ChatState, Participant, ParticipantState
from sylkbox.conference.renegotiation import (
    file_offer_change,
    glare_delay,
    mask_dropped_chat,
    reject_dropped_chat,
    removal_offer,
)
from sylkbox.config import Config
from sylkbox.msrp.file_selector import parse as parse_file_selector
from sylkbox.msrp.uri import MsrpUri
from sylkbox.sdp import MsrpPolicy, NoAcceptableMedia, OfferPlan, SessionDescription, negotiate
from sylkbox.sdp.offer_answer import Capabilities
from sylkbox.sip.message import Request
from tests.conference.test_focus_chat import ChatEnv, FakeChannel, FakeMsrpPort, RecordingChat
from tests.conference.test_refer_chat import (
    CAROL,
    answer,
    answer_sdp,
    refer_carol,
)
from tests.helpers.fakes import (
    AUDIO_OFFER,
    FakeMediaPort,
    FakeSipPort,
    Phone,
    SentRequest,
    build_request,
    drain,
    received,
)

VECTORS = Path(__file__).parent.parent / "vectors"
ROOM_KEY = "room1@sylkbox.local"
BLINK_CHAT_PATH = "msrps://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp"
NEW_CHAT_PATH = "msrps://192.168.1.20:2856/99aa88bb77cc66dd55ee;tcp"
SELECTOR = (
    'name:"report.pdf" type:application/pdf size:12345 '
    "hash:sha-1:3A:85:E7:42:6D:1C:00:7F:A1:B4:9E:50:22:C8:F1:6B:DE:03:A9:77"
)


def vector(path: str) -> bytes:
    return (VECTORS / path).read_bytes()


PUSH = vector("sdp/blink_file_push.sdp")
AUDIO_CHAT = vector("sdp/blink_audio_chat.sdp")
AUDIO_ONLY = AUDIO_CHAT.split(b"m=message")[0]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ChatEnv]:
    sip, media, msrp, chat = FakeSipPort(), FakeMediaPort(), FakeMsrpPort(), RecordingChat()
    store = FileStore(tmp_path, max_size=10**6, room_quota=10**7, retention=3600)
    env = ChatEnv(Focus(Config(), sip, media, msrp, chat, files=store), sip, media)
    env.msrp, env.chat = msrp, chat
    env.sip.auto_reply = {"NOTIFY": 200, "BYE": 200}
    yield env
    await env.close()
    store.close()


def sdp(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body)


def participant_of(env: ChatEnv, uri_prefix: str) -> Participant:
    [found] = [
        p for p in env.focus.rooms[ROOM_KEY].participants.values() if p.uri.startswith(uri_prefix)
    ]
    return found


async def send_reoffer(phone: Phone, body: bytes, method: str = "INVITE") -> bytes:
    """A re-INVITE (or UPDATE) with `body`; the body of the focus's 200."""
    request = await phone.in_dialog(method, body=body, content_type="application/sdp")
    response = phone.sip.final(request)
    assert response.status == 200, response.reason
    return response.body


async def status_of(phone: Phone, body: bytes, method: str = "INVITE") -> int:
    request = await phone.in_dialog(method, body=body, content_type="application/sdp")
    return phone.sip.final(request).status


# --------------------------------------------------------------------- pure helpers
def _chat_state(remote: str = BLINK_CHAT_PATH) -> ChatState:
    local = MsrpUri(secure=True, host="192.0.2.1", port=2855, session_id="abc123")
    return ChatState(local_uri=local, remote_path=(remote,), we_connect=False, tls=True)


def test_mask_dropped_chat_disables_only_the_dropped_path() -> None:
    offer = sdp(AUDIO_CHAT)
    assert mask_dropped_chat(offer, None) is offer
    masked = mask_dropped_chat(offer, _chat_state())
    assert [m.port for m in masked.media] == [50010, 0]
    assert [m.port for m in offer.media] == [50010, 2855]  # the offer itself is left alone
    other = mask_dropped_chat(offer, _chat_state(NEW_CHAT_PATH))
    assert [m.port for m in other.media] == [50010, 2855]


def test_reject_dropped_chat_turns_the_decision_into_a_rejection() -> None:
    plan = negotiate(sdp(AUDIO_CHAT), Capabilities(), msrp=MsrpPolicy(tls=True))
    assert plan.chat is not None
    assert reject_dropped_chat(plan, _chat_state(NEW_CHAT_PATH)) is plan
    rejected = reject_dropped_chat(plan, _chat_state())
    assert rejected.chat is None and rejected.audio is not None
    assert [r.index for r in rejected.rejected] == [1]


def test_removal_offer_sets_our_chat_line_to_port_0() -> None:
    ours = sdp(
        b"v=0\r\no=sylkbox 7 3 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        b"m=message 2855 TCP/TLS/MSRP *\r\na=path:msrps://192.0.2.1:2855/abc123;tcp\r\n"
        b"a=accept-types:message/cpim\r\na=setup:passive\r\n"
    )
    offer = removal_offer(ours, "msrps://192.0.2.1:2855/abc123;tcp", 4)
    assert offer is not None
    assert offer.origin.session_version == "4" and offer.origin.session_id == "7"
    audio, message = offer.media
    assert audio.port == 40000 and audio.attribute("rtpmap") == "0 PCMU/8000"
    assert (message.media, message.port, message.proto, message.formats) == (
        "message",
        0,
        "TCP/TLS/MSRP",
        ["*"],
    )
    assert message.attributes == []
    assert ours.media[1].port == 2855 and ours.origin.session_version == "3"
    assert removal_offer(offer, "msrps://192.0.2.1:2855/abc123;tcp", 5) is None
    assert removal_offer(ours, "msrps://192.0.2.1:2855/other;tcp", 5) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: b, None),
        (lambda b: b.replace(b"3A:85:E7", b"3a:85:e7"), None),  # the same selector, written
        (lambda b: b.replace(b"size:12345", b"size:12346"), "file-selector changed"),
        (lambda b: b.replace(b"0e5a9b1c7d3f8e2a4b6c", b"1111111111aaaaaaaaaa"), "a=path changed"),
        (lambda b: b.replace(b"9d2c6a58", b"00000000"), "file-transfer-id changed"),
        (lambda b: b.replace(b"a=sendonly", b"a=inactive"), "not offered as a usable"),
        (lambda b: b + AUDIO_OFFER.split(b"t=0 0\r\n")[1], "2 m-lines offered"),
    ],
)
def test_file_offer_change(change: Callable[[bytes], bytes], why: str | None) -> None:
    policy = MsrpPolicy(tls=True)
    first = negotiate(sdp(PUSH), Capabilities(), msrp=policy).file
    assert first is not None
    offer = sdp(change(PUSH))
    plan: OfferPlan | None
    try:
        plan = negotiate(offer, Capabilities(), msrp=policy)
    except NoAcceptableMedia:
        plan = None
    found = file_offer_change(first, parse_file_selector(SELECTOR), offer, plan)
    if why is None:
        assert found is None
    else:
        assert found is not None and why in found


# ----------------------------------------------------------------------- file sessions
async def upload_session(env: ChatEnv) -> tuple[Phone, bytes]:
    """Alice is in the room with audio; Bob starts an upload (BLINK.md 5)."""
    alice = env.phone("alice")
    assert (await alice.call(AUDIO_OFFER)).status == 200
    bob = env.phone("bob", host="192.168.1.20")
    response = await bob.call(PUSH)
    assert response.status == 200
    return bob, response.body


async def test_file_session_refresh_gets_the_same_answer(env: ChatEnv) -> None:
    bob, first = await upload_session(env)
    state = participant_of(env, "sip:bob").file
    assert state is not None and state.local_uri.session_id in env.msrp.expected

    assert await send_reoffer(bob, PUSH) == first  # byte for byte, same o= version
    written = PUSH.replace(b"3A:85:E7", b"3a:85:e7").replace(
        b"o=- 3940128423 3940128423", b"o=- 3940128423 3940128424"
    )
    assert await send_reoffer(bob, written) == first
    assert await send_reoffer(bob, PUSH, "UPDATE") == first
    # a refresh with RFC 4028 headers is answered with the timer too
    request = await bob.in_dialog(
        "INVITE",
        body=PUSH,
        content_type="application/sdp",
        headers=[("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")],
    )
    response = env.sip.final(request)
    assert response.status == 200 and response.body == first
    assert (response.headers.get("Session-Expires") or "").startswith("1800")
    # the transfer was never touched
    assert participant_of(env, "sip:bob").file is state
    assert state.local_uri.session_id in env.msrp.expected and env.msrp.forgotten == []
    assert env.media.added[1:] == []  # no stream for the file session


async def test_changed_file_stream_gets_488_and_the_transfer_goes_on(
    env: ChatEnv, caplog: pytest.LogCaptureFixture
) -> None:
    bob, _ = await upload_session(env)
    state = participant_of(env, "sip:bob").file
    assert state is not None
    caplog.set_level(logging.INFO, logger="sylkbox.conference.focus")

    assert await status_of(bob, PUSH.replace(b"size:12345", b"size:999")) == 488
    assert "file-selector changed" in caplog.text
    with_audio = PUSH + AUDIO_OFFER.split(b"t=0 0\r\n")[1]
    assert await status_of(bob, with_audio) == 488
    assert "2 m-lines offered" in caplog.text
    assert await status_of(bob, PUSH.replace(b"9d2c6a58", b"12345678")) == 488
    assert await status_of(bob, AUDIO_OFFER) == 488  # audio instead of the file

    participant = participant_of(env, "sip:bob")
    assert participant.file is state and participant.audio is None and participant.chat is None
    assert len(env.media.added) == 1  # alice's only
    assert env.msrp.forgotten == [] and env.sip.sent("BYE") == []
    assert await send_reoffer(bob, PUSH)  # still the same session


async def test_file_stream_at_port_0_ends_the_transfer_with_bye(env: ChatEnv) -> None:
    bob, _ = await upload_session(env)
    state = participant_of(env, "sip:bob").file
    assert state is not None
    body = await send_reoffer(bob, PUSH.replace(b"m=message 2855", b"m=message 0"))
    [message] = sdp(body).media
    assert (message.media, message.port) == ("message", 0)
    await drain()
    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == bob.call_id
    assert state.done and env.msrp.forgotten == [state.local_uri]
    assert [p.uri for p in env.focus.rooms[ROOM_KEY].participants.values()] == [
        "sip:alice@192.0.2.20"
    ]


async def test_every_stream_at_port_0_ends_an_audio_session(env: ChatEnv) -> None:
    alice = env.phone("alice")
    assert (await alice.call(AUDIO_OFFER)).status == 200
    body = await send_reoffer(alice, AUDIO_OFFER.replace(b"m=audio 50010", b"m=audio 0"))
    assert [m.port for m in sdp(body).media] == [0]
    await drain()
    assert len(env.sip.sent("BYE")) == 1
    assert env.media.removed and ROOM_KEY not in env.focus.rooms


async def test_unusable_reoffer_is_still_488(env: ChatEnv) -> None:
    alice = env.phone("alice")
    assert (await alice.call(AUDIO_OFFER)).status == 200
    video = AUDIO_OFFER.replace(b"m=audio 50010 RTP/AVP", b"m=video 50010 RTP/AVP")
    assert await status_of(alice, video) == 488
    assert env.sip.sent("BYE") == []


# ------------------------------------------------------------------------ dropped chat
async def audio_chat_session(env: ChatEnv) -> tuple[Phone, FakeChannel]:
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(AUDIO_CHAT)).status == 200
    chat = participant_of(env, "sip:alice").chat
    assert chat is not None
    channel = env.msrp.remote_connects(chat.local_uri)
    await drain()
    return alice, channel


def our_answer_to(invite: SentRequest, *, chat_port: int = 0) -> bytes:
    """Alice's answer to the focus's re-INVITE (audio kept, chat as given)."""
    offer = sdp(invite.request.body)
    audio = offer.media[0]
    lines = [
        "v=0",
        "o=- 3917440182 3917440183 IN IP4 192.168.1.20",
        "s=-",
        "c=IN IP4 192.168.1.20",
        "t=0 0",
        f"m={audio.media} 50010 {audio.proto} 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
        f"m=message {chat_port} TCP/TLS/MSRP *",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


async def test_dropped_chat_is_removed_by_our_reinvite(env: ChatEnv) -> None:
    alice, channel = await audio_chat_session(env)
    participant = participant_of(env, "sip:alice")
    before = participant.local_sdp
    assert before is not None
    channel.drop("connection reset")
    await drain()
    assert participant.chat is None and participant.audio is not None
    assert env.sip.sent("BYE") == []
    [invite] = env.sip.pending("INVITE")
    request = invite.request
    assert request.call_id == alice.call_id
    assert str(request.uri) == "sip:alice@192.168.1.20:5060"  # her Contact
    assert request.headers.get("Content-Type") == "application/sdp"
    offer = sdp(request.body)
    audio, message = offer.media
    assert audio.port == before.media[0].port and audio.attribute("rtpmap") is not None
    assert (message.media, message.port) == ("message", 0)
    assert int(offer.origin.session_version) == int(before.origin.session_version) + 1
    assert offer.origin.session_id == before.origin.session_id

    # glare: alice's own re-INVITE meanwhile gets 491 (RFC 3261 14.2)
    assert await status_of(alice, AUDIO_CHAT) == 491
    invite.reply(
        200,
        contact="<sip:alice@192.168.1.20:5060>",
        body=our_answer_to(invite),
        content_type="application/sdp",
    )
    await drain()
    [(ack, _, _)] = [s for s in env.sip.stateless if s[0].method == "ACK"]
    assert ack.call_id == alice.call_id and ack.cseq.seq == request.cseq.seq
    assert participant.local_sdp is not None and participant.local_sdp.media[1].port == 0
    assert participant.state is ParticipantState.CONNECTED

    # alice still offers the old chat line (she missed it): answered with port 0
    body = await send_reoffer(alice, AUDIO_CHAT)
    assert [m.media for m in sdp(body).media] == ["audio", "message"]
    assert sdp(body).media[1].port == 0
    assert participant.chat is None and env.msrp.expected == {}
    assert env.sip.pending("INVITE") == []  # nothing to remove any more

    # a new chat stream (new path) is set up
    body = await send_reoffer(
        alice, AUDIO_CHAT.replace(BLINK_CHAT_PATH.encode(), NEW_CHAT_PATH.encode())
    )
    message = sdp(body).media[1]
    assert message.port == 2855 and participant.chat is not None
    assert message.attribute("path") == str(participant.chat.local_uri)
    env.msrp.remote_connects(participant.chat.local_uri)
    await drain()
    assert [uri for uri, _ in env.chat.joined] == ["sip:alice@192.168.1.20"] * 2


def test_glare_delay_follows_call_id_ownership() -> None:
    assert all(2.1 <= glare_delay(True) <= 4.0 for _ in range(50))
    assert all(0.0 <= glare_delay(False) <= 2.0 for _ in range(50))


async def test_491_to_our_reinvite_is_retried(env: ChatEnv) -> None:
    owners: list[bool] = []

    def no_wait(owner: bool) -> float:
        owners.append(owner)
        return 0.0

    env.focus.reoffers.retry_delay = no_wait
    _, channel = await audio_chat_session(env)
    channel.drop()
    await drain()
    [first] = env.sip.pending("INVITE")
    first.reply(491)
    await drain()
    assert owners == [False]  # we do not own the Call-ID (RFC 3261 14.1)
    [second] = env.sip.pending("INVITE")
    assert second.request.cseq.seq == first.request.cseq.seq + 1
    assert sdp(second.request.body).media[1].port == 0
    second.reply(200, body=our_answer_to(second), content_type="application/sdp")
    await drain()
    assert env.sip.pending("INVITE") == []


async def test_peer_reoffer_after_491_makes_the_retry_needless(env: ChatEnv) -> None:
    alice, channel = await audio_chat_session(env)
    env.focus.reoffers.retry_delay = lambda owner: 0.05
    channel.drop()
    await drain()
    [first] = env.sip.pending("INVITE")
    first.reply(491)
    await drain()
    # during the back-off alice's own re-INVITE comes and is answered (chat at port 0)
    body = await send_reoffer(alice, AUDIO_CHAT)
    assert sdp(body).media[1].port == 0
    await asyncio.sleep(0.1)
    await drain()
    assert env.sip.pending("INVITE") == [] and len(env.sip.sent("INVITE")) == 1


async def test_chat_lost_while_an_offer_is_answered_is_rejected_in_that_answer(
    env: ChatEnv,
) -> None:
    alice, channel = await audio_chat_session(env)
    env.media.update_gate = asyncio.Event()
    request = await alice.in_dialog("INVITE", body=AUDIO_CHAT, content_type="application/sdp")
    assert all(r.status < 200 for r in env.sip.responses_to(request))  # held at the media
    channel.drop()
    await drain()
    assert env.sip.sent("INVITE") == []  # the answer under way carries the removal
    env.media.update_gate.set()
    await drain()
    response = env.sip.final(request)
    assert response.status == 200 and sdp(response.body).media[1].port == 0
    assert participant_of(env, "sip:alice").chat is None
    assert env.sip.sent("INVITE") == [] and env.msrp.expected == {}


async def test_old_chat_only_with_audio_removed_ends_the_session(env: ChatEnv) -> None:
    alice, channel = await audio_chat_session(env)
    channel.drop()
    await drain()
    [invite] = env.sip.pending("INVITE")
    invite.reply(200, body=our_answer_to(invite), content_type="application/sdp")
    await drain()
    no_audio = AUDIO_CHAT.replace(b"m=audio 50010", b"m=audio 0")
    body = await send_reoffer(alice, no_audio)
    assert [m.port for m in sdp(body).media] == [0, 0]
    await drain()
    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == alice.call_id


async def test_chat_lost_before_the_ack_waits_for_it(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    invite = alice.send(alice.request("INVITE", body=AUDIO_CHAT, content_type="application/sdp"))
    await drain()
    response = env.sip.final(invite)
    assert response.status == 200
    participant = participant_of(env, "sip:alice")
    assert participant.chat is not None
    channel = env.msrp.remote_connects(participant.chat.local_uri)
    await drain()
    channel.drop()
    await drain()
    assert env.sip.sent("INVITE") == []  # RFC 3261 14.1: our INVITE waits for the ACK
    alice.remote = response.headers.get("To")
    ack = build_request(
        "ACK",
        str(response.contacts[0].uri),
        from_=alice.from_,
        to=alice.remote or "",
        call_id=alice.call_id,
        cseq=invite.cseq.seq,
        via="SIP/2.0/UDP 192.168.1.20:5060",
    )
    env.focus.handle_request(received(ack, ("192.168.1.20", 5060)))
    await drain()
    [reinvite] = env.sip.pending("INVITE")
    assert sdp(reinvite.request.body).media[1].port == 0


async def test_rejected_removal_keeps_the_session(env: ChatEnv) -> None:
    _, channel = await audio_chat_session(env)
    channel.drop()
    await drain()
    [invite] = env.sip.pending("INVITE")
    invite.reply(488)
    await drain()
    participant = participant_of(env, "sip:alice")
    assert participant.state is ParticipantState.CONNECTED and participant.audio is not None
    assert env.sip.sent("BYE") == [] and env.sip.pending("INVITE") == []


async def test_removal_answered_481_ends_the_session(env: ChatEnv) -> None:
    _, channel = await audio_chat_session(env)
    channel.drop()
    await drain()
    [invite] = env.sip.pending("INVITE")
    invite.reply(481)
    await drain()
    assert ROOM_KEY not in env.focus.rooms
    assert env.sip.sent("BYE") == []  # the dialog is gone already


# ------------------------------------------------------------------------------ dial-out
def carol_request(invite: SentRequest, method: str, cseq: int, body: bytes = b"") -> Request:
    """An in-dialog request from carol in the dialog our INVITE created (we are the UAC)."""
    ours = invite.request
    return build_request(
        method,
        str(ours.contacts[0].uri),
        from_=f"<{CAROL}>;tag={invite.to_tag}",
        to=str(ours.from_),
        call_id=ours.call_id,
        cseq=cseq,
        contact="<sip:carol@192.0.2.40:5060>",
        body=body,
        content_type="application/sdp" if body else None,
        via="SIP/2.0/UDP 192.0.2.40:5060",
    )


async def test_dialled_out_participant_adds_chat_by_reinvite(env: ChatEnv) -> None:
    alice = env.phone("alice")
    assert (await alice.call(AUDIO_OFFER)).status == 200  # an audio-only room
    invite, offer = await refer_carol(env)
    assert [m.media for m in offer.media] == ["audio"]
    answer(invite, answer_sdp(chat_port=None))
    await drain()
    carol = participant_of(env, CAROL)
    assert carol.state is ParticipantState.CONNECTED and carol.chat is None
    assert carol.local_sdp is not None  # our offer: the base of our later offers
    # an offerless re-INVITE gets our session as the offer in the 200 (RFC 3261 14.2)
    offerless = carol_request(invite, "INVITE", 1)
    env.focus.handle_request(received(offerless, ("192.0.2.40", 5060)))
    await drain()
    ours = sdp(env.sip.final(offerless).body)
    assert [m.media for m in ours.media] == ["audio"]
    assert ours.media[0].port == offer.media[0].port and ours.origin.session_version == "2"

    add = answer_sdp(setup="active")  # carol connects (as Blink does)
    message = carol_request(invite, "INVITE", 2, add)
    env.focus.handle_request(received(message, ("192.0.2.40", 5060)))
    await drain()
    response = env.sip.final(message)
    assert response.status == 200
    chat_line = sdp(response.body).media[1]
    assert carol.chat is not None and chat_line.port == 2855
    assert chat_line.attribute("path") == str(carol.chat.local_uri)
    assert chat_line.attribute("setup") == "passive"
    channel = env.msrp.remote_connects(carol.chat.local_uri)
    await drain()
    assert (CAROL, channel) in env.chat.joined
    snapshot = env.focus.rooms[ROOM_KEY].snapshot()
    [user] = [u for u in snapshot.users if u.entity == CAROL]
    assert [m.type for e in user.endpoints for m in e.media] == ["audio", "message"]

    # and when it drops, the removal re-INVITE goes in our (UAC) dialog
    channel.drop()
    await drain()
    [reinvite] = env.sip.pending("INVITE")
    assert reinvite.request.call_id == invite.request.call_id
    assert reinvite.request.from_.tag == invite.request.from_.tag
    assert reinvite.request.cseq.seq == invite.request.cseq.seq + 1
    assert sdp(reinvite.request.body).media[1].port == 0


async def test_dialled_out_chat_failing_before_connected_is_removed(env: ChatEnv) -> None:
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(AUDIO_CHAT)).status == 200
    alice_chat = participant_of(env, "sip:alice").chat
    assert alice_chat is not None
    env.msrp.remote_connects(alice_chat.local_uri)
    await drain()
    invite, offer = await refer_carol(env)
    env.msrp.fail_connect = ConnectionRefusedError("refused")
    answer(invite, answer_sdp())
    await drain()
    carol = participant_of(env, CAROL)
    assert carol.chat is None and carol.state is ParticipantState.CONNECTED
    [reinvite] = [
        s for s in env.sip.pending("INVITE") if s.request.call_id == invite.request.call_id
    ]
    removal = sdp(reinvite.request.body)
    assert [m.port for m in removal.media][1] == 0
    assert removal.media[0].port == offer.media[0].port
    assert removal.origin.session_version == "2"
