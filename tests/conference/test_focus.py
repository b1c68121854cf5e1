"""Tests for sylkbox.conference.focus: INVITE sessions, in-dialog requests, OPTIONS, close().

The focus runs against `FakeSipPort`/`FakeMediaPort`; requests are parsed from wire bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.conference.participant import ParticipantState
from sylkbox.config import ConferenceConfig, Config, RoomPolicy, SipConfig
from sylkbox.sdp import SessionDescription
from sylkbox.sip.headers import NameAddr
from sylkbox.sip.message import Response
from sylkbox.sip.transaction import AckTimedOut, RequestCancelled
from tests.helpers.fakes import (
    AUDIO_OFFER,
    ROOM_URI,
    FocusEnv,
    audio_sdp,
    drain,
    parse_request,
    received,
    server_key,
)

VECTORS = Path(__file__).parent.parent / "vectors"
ROOM_KEY = "room1@sylkbox.local"


def vector(path: str) -> bytes:
    return (VECTORS / path).read_bytes()


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


def make_env(**sections: object) -> FocusEnv:
    return FocusEnv.create(Config(**sections))  # type: ignore[arg-type]


def has_header_param(name_addr: NameAddr, name: str) -> bool:
    return any(key.lower() == name for key, _ in name_addr.params)


# ------------------------------------------------------------------------------- INVITE
async def test_invite_creates_room_and_answers_with_isfocus_contact(env: FocusEnv) -> None:
    invite = parse_request(vector("conference/handmade_invite_video_first.sip"))
    env.focus.handle_request(received(invite))
    await drain()

    response = env.sip.final(invite)
    assert response.status == 200
    room = env.focus.rooms[ROOM_KEY]
    contact = response.contacts[0]
    assert has_header_param(contact, "isfocus")  # a header parameter (BLINK.md 2.2)
    assert not contact.uri.has_param("isfocus")
    assert contact.uri.user == f"focus-{room.id}"
    assert response.to.tag
    [participant] = room.participants.values()
    assert participant.state is ParticipantState.CONNECTED
    assert participant.uri == "sip:alice@192.0.2.20"
    assert participant.contact == "sip:48213790@192.0.2.20:5060"


async def test_invite_answer_keeps_offer_order_and_rejects_video_and_chat(env: FocusEnv) -> None:
    invite = parse_request(vector("conference/handmade_invite_video_first.sip"))
    env.focus.handle_request(received(invite))
    await drain()

    response = env.sip.final(invite)
    assert response.content_type == "application/sdp"
    answer = SessionDescription.parse(response.body)
    assert [m.media for m in answer.media] == ["video", "audio", "message"]
    video, audio, message = answer.media
    assert video.port == 0
    assert message.port == 0
    [(room_id, spec)] = env.media.added
    assert room_id == env.focus.rooms[ROOM_KEY].id
    assert audio.port == 40000
    assert audio.formats[0] == "9"  # G.722, the first offered codec we support
    assert (spec.remote_host, spec.remote_port) == ("192.0.2.20", 50010)
    assert (spec.codec, spec.clock_rate) == ("G722", 8000)
    assert spec.room_rate == 16000  # [media] sample_rate; RoomPolicy.sample_rate overrides
    assert spec.telephone_event_pt == 101


async def test_blink_invite_over_tls_gets_tls_contact(env: FocusEnv) -> None:
    invite = parse_request(vector("sip/blink_invite.sip"))
    env.focus.handle_request(received(invite, ("192.168.1.23", 52381), "tls"))
    await drain()

    response = env.sip.final(invite)
    assert response.status == 200
    assert response.contacts[0].uri.param("transport") == "tls"
    assert [m.media for m in SessionDescription.parse(response.body).media] == ["audio", "message"]


async def test_invite_without_usable_stream_is_488(env: FocusEnv) -> None:
    alice = env.phone()
    response = await alice.call(vector("sdp/no_common_codec.sdp"))
    assert response.status == 488
    assert env.focus.rooms == {}
    assert env.media.added == []


async def test_invite_with_only_video_is_488(env: FocusEnv) -> None:
    video_only = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        b"m=video 50020 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\n"
    )
    response = await env.phone().call(video_only)
    assert response.status == 488
    assert env.focus.rooms == {}


async def test_invite_with_replaces_is_403(env: FocusEnv) -> None:
    response = await env.phone().call(headers=[("Replaces", "abc@192.0.2.9;to-tag=1;from-tag=2")])
    assert response.status == 403
    assert env.focus.rooms == {}


async def test_invite_requiring_unknown_extension_is_420_with_unsupported(env: FocusEnv) -> None:
    response = await env.phone().call(headers=[("Require", "foo")])
    assert response.status == 420
    # RFC 3261 8.2.2.3: the 420 MUST list the unsupported option tags
    assert response.headers.get_all("Unsupported") == ["foo"]
    assert env.focus.rooms == {}


async def test_invite_requiring_timer_is_accepted(env: FocusEnv) -> None:
    response = await env.phone().call(
        headers=[("Supported", "timer"), ("Require", "timer"), ("Session-Expires", "1800")]
    )
    assert response.status == 200


async def test_invite_to_domain_not_served_is_404() -> None:
    env = make_env(sip=SipConfig(domains=("sylkbox.local",)))
    try:
        alice = env.phone()
        refused = await alice.call(uri="sip:room1@example.com")
        assert refused.status == 404
        assert env.focus.rooms == {}
        accepted = await env.phone("bob").call(uri=ROOM_URI)
        assert accepted.status == 200
    finally:
        await env.close()


async def test_invite_without_user_part_is_404(env: FocusEnv) -> None:
    response = await env.phone().call(uri="sip:sylkbox.local")
    assert response.status == 404


async def test_invite_denied_by_room_policy_is_403() -> None:
    policy = RoomPolicy(allow=("example.com",))
    env = make_env(conference=ConferenceConfig(rooms={ROOM_KEY: policy}))
    try:
        denied = await env.phone("alice", host="192.0.2.20").call()
        assert denied.status == 403
        assert env.focus.rooms == {}
        allowed = await env.phone("carol", host="example.com").call()
        assert allowed.status == 200
        # the room now exists: its policy is still applied
        again = await env.phone("dave", host="192.0.2.21").call()
        assert again.status == 403
        assert len(env.focus.rooms[ROOM_KEY].participants) == 1
    finally:
        await env.close()


async def test_room_sample_rate_reaches_the_media_worker() -> None:
    env = make_env(conference=ConferenceConfig(rooms={ROOM_KEY: RoomPolicy(sample_rate=48000)}))
    try:
        assert (await env.phone("alice").call()).status == 200
        assert (await env.phone("bob").call(uri="sip:other@sylkbox.local")).status == 200
        rates = {spec.stream_id.split("-")[0]: spec.room_rate for _, spec in env.media.added}
        room, other = env.focus.rooms[ROOM_KEY].id, env.focus.rooms["other@sylkbox.local"].id
        assert rates == {room: 48000, other: 16000}
    finally:
        await env.close()


async def test_room_full_is_486() -> None:
    policy = RoomPolicy(max_participants=1)
    env = make_env(conference=ConferenceConfig(defaults=policy))
    try:
        assert (await env.phone("alice").call()).status == 200
        assert (await env.phone("bob", host="192.0.2.30").call()).status == 486
        assert len(env.focus.rooms[ROOM_KEY].participants) == 1
    finally:
        await env.close()


async def test_cancel_during_media_setup_removes_participant_and_room(env: FocusEnv) -> None:
    env.media.add_gate = asyncio.Event()
    alice = env.phone()
    invite = alice.send(alice.request("INVITE", body=AUDIO_OFFER, content_type="application/sdp"))
    await drain()
    room = env.focus.rooms[ROOM_KEY]
    [participant] = room.participants.values()
    assert participant.state is ParticipantState.ALERTING
    assert len(env.media.streams) == 1  # the AddStream command is out

    key = server_key(invite)
    assert key is not None
    env.focus.handle_cancel(RequestCancelled(server_key=key))
    await drain()

    assert env.focus.rooms == {}
    assert room.participants == {}
    # the transaction layer answered 487; the focus must not answer at all
    assert env.sip.responses_to(invite) == []
    # the stream whose creation was under way must not leak in the media worker
    assert env.media.streams == {}


async def test_media_failure_is_500_and_cleans_up() -> None:
    env = FocusEnv.create()
    env.media.fail_add = RuntimeError("no ports left")
    try:
        response = await env.phone().call()
        assert response.status == 500
        assert env.focus.rooms == {}
    finally:
        await env.close()


# ---------------------------------------------------------------------------------- BYE
async def test_bye_removes_participant_and_last_bye_removes_room(env: FocusEnv) -> None:
    alice, bob = env.phone("alice"), env.phone("bob", host="192.0.2.30")
    await alice.call()
    await bob.call()
    room = env.focus.rooms[ROOM_KEY]
    assert room.connected_count == 2

    bye = await alice.in_dialog("BYE")
    assert env.sip.final(bye).status == 200
    assert [p.uri for p in room.participants.values()] == ["sip:bob@192.0.2.30"]
    assert env.media.removed == [env.media.added[0][1].stream_id]
    assert ROOM_KEY in env.focus.rooms

    bye = await bob.in_dialog("BYE")
    assert env.sip.final(bye).status == 200
    assert env.focus.rooms == {}
    assert env.media.streams == {}


async def test_persistent_room_survives_last_bye() -> None:
    env = make_env(conference=ConferenceConfig(defaults=RoomPolicy(persistent=True)))
    try:
        alice = env.phone()
        await alice.call()
        await alice.in_dialog("BYE")
        assert ROOM_KEY in env.focus.rooms
        assert env.focus.rooms[ROOM_KEY].is_empty
    finally:
        await env.close()


async def test_bye_for_unknown_dialog_is_481(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call()
    stranger = env.phone("mallory", host="192.0.2.66")
    bye = stranger.send(stranger.request("BYE", to=f"<{ROOM_URI}>;tag=nosuchtag"))
    no_tag = stranger.send(stranger.request("BYE"))
    await drain()
    assert env.sip.final(bye).status == 481
    assert env.sip.final(no_tag).status == 481
    assert env.focus.rooms[ROOM_KEY].connected_count == 1


# ---------------------------------------------------------------------------- re-INVITE
async def test_reinvite_sendonly_puts_participant_on_hold_and_notifies(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    alice = env.phone("alice", host="192.168.1.20")
    assert (await alice.call(vector("sdp/blink_audio_chat.sdp"))).status == 200
    watcher = env.phone("bob", host="192.0.2.30")
    assert (await watcher.subscribe()).status == 200
    notified = len(watcher.notifies())

    reinvite = await alice.in_dialog(
        "INVITE", body=vector("sdp/blink_hold_sendonly.sdp"), content_type="application/sdp"
    )
    response = env.sip.final(reinvite)
    assert response.status == 200
    audio = SessionDescription.parse(response.body).media[0]
    assert audio.direction == "recvonly"
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.on_hold
    assert env.media.updated[-1].direction == "recvonly"

    notifies = watcher.notifies()[notified:]
    assert len(notifies) == 1
    info = parse_conference_info(notifies[0].request.body)
    [user] = info.room.users
    assert [e.status for e in user.endpoints] == ["on-hold"]


async def test_reinvite_resume_after_hold(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call()
    await alice.in_dialog(
        "INVITE",
        body=audio_sdp("192.0.2.20", 50010, direction="sendonly", version=2),
        content_type="application/sdp",
    )
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.status == "on-hold"
    resume = await alice.in_dialog(
        "INVITE", body=audio_sdp("192.0.2.20", 50010, version=3), content_type="application/sdp"
    )
    assert env.sip.final(resume).status == 200
    assert participant.status == "connected"
    assert env.media.updated[-1].direction == "sendrecv"


async def test_second_reinvite_while_one_is_pending_is_491(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call()
    env.media.update_gate = asyncio.Event()
    hold = audio_sdp("192.0.2.20", 50010, direction="sendonly", version=2)
    first = await alice.in_dialog("INVITE", body=hold, content_type="application/sdp")
    assert env.sip.responses_to(first) == []
    second = await alice.in_dialog("INVITE", body=hold, content_type="application/sdp")
    assert env.sip.final(second).status == 491

    env.media.update_gate.set()
    await drain()
    assert env.sip.final(first).status == 200


async def test_reinvite_without_offer_gets_an_offer_in_the_200(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call()
    reinvite = await alice.in_dialog("INVITE")
    response = env.sip.final(reinvite)
    assert response.status == 200
    # RFC 3261 14.2: an INVITE without an offer gets the offer in the 2xx
    assert response.content_type == "application/sdp"
    [audio] = SessionDescription.parse(response.body).media
    assert audio.media == "audio"
    assert audio.port == 40000  # the port of the stream set up by the INVITE


async def test_update_without_sdp_refreshes_the_session(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call(headers=[("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")])
    update = await alice.in_dialog(
        "UPDATE", headers=[("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")]
    )
    response = env.sip.final(update)
    assert response.status == 200
    assert response.headers.get("Session-Expires") == "1800;refresher=uac"
    assert env.focus.rooms[ROOM_KEY].connected_count == 1


async def test_in_dialog_request_with_old_cseq_is_500(env: FocusEnv) -> None:
    alice = env.phone()
    alice.cseq = 9
    await alice.call()  # CSeq 10
    alice.cseq = 0  # the next request goes back below the INVITE's CSeq
    options = await alice.in_dialog("OPTIONS")
    assert env.sip.final(options).status == 500
    assert env.focus.rooms[ROOM_KEY].connected_count == 1


async def test_in_dialog_refer_is_403(env: FocusEnv) -> None:
    alice = env.phone()
    await alice.call()
    refer = await alice.in_dialog("REFER", headers=[("Refer-To", "<sip:bob@192.0.2.30>")])
    assert env.sip.final(refer).status == 403
    assert env.sip.sent("INVITE") == []


async def test_ack_timeout_ends_the_session_with_bye(env: FocusEnv) -> None:
    env.sip.auto_reply["BYE"] = 200
    alice = env.phone()
    invite = alice.send(alice.request("INVITE", body=AUDIO_OFFER, content_type="application/sdp"))
    await drain()
    assert env.sip.final(invite).status == 200
    key = server_key(invite)
    assert key is not None
    env.focus.handle_ack_timeout(AckTimedOut(server_key=key, status=200))
    await drain()
    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == invite.call_id
    assert env.focus.rooms == {}


# ------------------------------------------------------------------- OPTIONS and MESSAGE
async def test_options_is_200_with_allow_accept_supported(env: FocusEnv) -> None:
    phone = env.phone()
    options = phone.send(phone.request("OPTIONS"))
    response = env.sip.final(options)
    assert response.status == 200
    allow = {v.strip() for v in response.headers.get_all("Allow")}
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "SUBSCRIBE", "REFER"} <= allow
    assert "application/sdp" in {v.strip() for v in response.headers.get_all("Accept")}
    assert "timer" in {v.strip() for v in response.headers.get_all("Supported")}
    assert response.to.tag


async def test_message_to_an_unknown_room_is_404_and_message_is_allowed(env: FocusEnv) -> None:
    phone = env.phone()
    message = phone.send(phone.request("MESSAGE", body=b"hello", content_type="text/plain"))
    assert env.sip.final(message).status == 404
    options = phone.send(phone.request("OPTIONS"))
    allow = {v.strip() for v in env.sip.final(options).headers.get_all("Allow")}
    assert "MESSAGE" in allow


# ------------------------------------------------------------------------ session timers
async def test_session_timer_uac_refresher_is_confirmed(env: FocusEnv) -> None:
    response = await env.phone().call(
        headers=[("Supported", "timer"), ("Session-Expires", "90;refresher=uac")]
    )
    assert response.status == 200
    assert response.headers.get("Session-Expires") == "90;refresher=uac"
    assert "timer" in {v.strip() for v in response.headers.get_all("Require")}


async def test_session_interval_below_min_se_is_422(env: FocusEnv) -> None:
    alice = env.phone()
    response = await alice.call(headers=[("Supported", "timer"), ("Session-Expires", "60")])
    assert response.status == 422
    assert response.headers.get("Min-SE") == "90"
    # a refused INVITE leaves nothing behind
    assert env.focus.rooms == {}
    assert env.media.added == []


async def test_session_expiry_without_refresh_sends_bye() -> None:
    env = FocusEnv.create(Config(sip=SipConfig(session_expires=90, min_session_expires=90)))
    env.sip.auto_reply["BYE"] = 200
    try:
        alice = env.phone()
        await alice.call(headers=[("Supported", "timer"), ("Session-Expires", "90;refresher=uac")])
        [participant] = env.focus.rooms[ROOM_KEY].participants.values()
        handle = participant.session_timer_handle
        assert handle is not None
        loop = asyncio.get_running_loop()
        # RFC 4028 10: BYE at interval - min(32, interval/3) = 60 s when the peer refreshes
        assert handle.when() - loop.time() == pytest.approx(60, abs=1)
        handle._run()  # the deadline passes
        await drain()
        assert [s.request.call_id for s in env.sip.sent("BYE")] == [alice.call_id]
        assert env.focus.rooms == {}
    finally:
        await env.close()


# --------------------------------------------------------------------------------- close
async def test_close_sends_bye_to_everyone_and_terminates_subscriptions(env: FocusEnv) -> None:
    env.sip.auto_reply.update({"NOTIFY": 200, "BYE": 200})
    alice, bob = env.phone("alice"), env.phone("bob", host="192.0.2.30")
    await alice.call()
    await bob.call()
    watcher = env.phone("carol", host="192.0.2.40")
    await watcher.subscribe()

    await env.focus.close(1.0)

    byes = env.sip.sent("BYE")
    assert sorted(b.request.call_id for b in byes) == sorted([alice.call_id, bob.call_id])
    assert {b.dest for b in byes} == {("192.0.2.20", 5060), ("192.0.2.30", 5060)}
    last = watcher.notifies()[-1].request
    assert (last.headers.get("Subscription-State") or "").startswith("terminated")


async def test_responses_carry_the_request_identity(env: FocusEnv) -> None:
    alice = env.phone()
    response: Response = await alice.call()
    assert alice.invite is not None
    assert response.call_id == alice.invite.call_id
    assert response.from_.tag == alice.tag
    assert response.cseq == alice.invite.cseq
