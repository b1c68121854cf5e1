"""Tests for sylkbox.conference.refer: REFER to the room (RFC 4579 5.5, RFC 3515, RFC 4488) and
dial-out, including RFC 5366 request-contained lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.conference.participant import ParticipantState
from sylkbox.sdp import SessionDescription
from sylkbox.sip.message import Request
from sylkbox.sip.sipfrag import parse_sipfrag
from tests.helpers.fakes import (
    ROOM_URI,
    FocusEnv,
    SentRequest,
    audio_sdp,
    drain,
    parse_request,
    received,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "conference"
ROOM_KEY = "room1@sylkbox.local"


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


def vector(name: str) -> Request:
    return parse_request((VECTORS / name).read_bytes())


def refer_notifies(env: FocusEnv, refer: Request) -> list[Request]:
    return [s.request for s in env.sip.sent("NOTIFY") if s.request.call_id == refer.call_id]


def sipfrags(env: FocusEnv, refer: Request) -> list[tuple[int, str]]:
    return [parse_sipfrag(n.body) for n in refer_notifies(env, refer)]


async def refer_from_alice(env: FocusEnv, name: str = "blink_refer_add.sip") -> Request:
    alice = env.phone("alice")
    assert (await alice.call()).status == 200
    refer = vector(name)
    env.focus.handle_request(received(refer))
    await drain()
    return refer


def dial_out(env: FocusEnv) -> SentRequest:
    [invite] = env.sip.pending("INVITE")
    return invite


def answer_200(invite: SentRequest, contact: str = "<sip:carol@192.0.2.40:5060>") -> None:
    offer = SessionDescription.parse(invite.request.body)
    assert offer.media[0].media == "audio"
    invite.reply(
        200, contact=contact, body=audio_sdp("192.0.2.40", 30000), content_type="application/sdp"
    )


# ---------------------------------------------------------------------------- add by REFER
async def test_refer_is_accepted_with_202_and_100_trying(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    refer = await refer_from_alice(env)

    response = env.sip.final(refer)
    assert response.status == 202
    assert any(name == "isfocus" for name, _ in response.contacts[0].params)
    [notify] = refer_notifies(env, refer)
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    assert notify.headers.get("Event") == "refer"
    assert notify.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert notify.headers.get("Subscription-State") == "active;expires=180"
    assert notify.to.tag == refer.from_.tag
    assert notify.from_.tag == response.to.tag
    assert str(notify.uri) == "sip:48213790@192.0.2.20:5060"


async def test_refer_dial_out_invite_headers(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    await refer_from_alice(env)

    invite = dial_out(env)
    request = invite.request
    assert invite.dest == ("192.0.2.40", 5060)
    assert str(request.uri) == "sip:carol@192.0.2.40"
    assert request.from_.display_name == "Conference Call"
    assert str(request.from_.uri) == ROOM_URI
    assert request.from_.tag
    assert str(request.to.uri) == "sip:carol@192.0.2.40"
    assert request.headers.get("X-Orig-From") == "<sip:alice@192.0.2.20>"
    assert request.headers.get("Referred-By") == '"Alice" <sip:alice@192.0.2.20>'
    subject = request.headers.get("Subject") or ""
    assert subject.startswith("Join conference request from")
    assert "sip:alice@192.0.2.20" in subject
    contact = request.contacts[0]
    assert any(name == "isfocus" for name, _ in contact.params)
    assert contact.uri.user == f"focus-{env.focus.rooms[ROOM_KEY].id}"
    assert request.content_type == "application/sdp"
    assert SessionDescription.parse(request.body).media[0].media == "audio"


async def test_refer_progress_ringing_then_ok(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    refer = await refer_from_alice(env)
    room = env.focus.rooms[ROOM_KEY]
    invite = dial_out(env)
    [carol] = room.by_uri("sip:carol@192.0.2.40")
    assert carol.invited
    assert carol.status == "dialing-out"

    invite.reply(180)
    await drain()
    assert refer_notifies(env, refer)[-1].body == b"SIP/2.0 180 Ringing\r\n"
    assert carol.status == "alerting"

    answer_200(invite)
    await drain()
    [(ack, dest, transport)] = env.sip.stateless
    assert ack.method == "ACK"
    assert ack.cseq.seq == invite.request.cseq.seq
    assert ack.call_id == invite.request.call_id
    assert ack.to.tag == invite.to_tag
    assert (dest, transport) == (("192.0.2.40", 5060), "udp")

    final = refer_notifies(env, refer)[-1]
    assert final.body == b"SIP/2.0 200 OK\r\n"
    assert final.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert sipfrags(env, refer) == [(100, "Trying"), (180, "Ringing"), (200, "OK")]
    assert carol.state is ParticipantState.CONNECTED
    assert env.media.updated[-1].remote_host == "192.0.2.40"
    assert env.media.updated[-1].remote_port == 30000


async def test_dial_out_ack_goes_to_the_contact_of_the_200(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    await refer_from_alice(env)
    invite = dial_out(env)
    answer_200(invite, contact="<sip:carol@192.0.2.41:5080>")
    await drain()
    # RFC 3261 13.2.2.4: the ACK for a 2xx goes to the remote target of the dialog
    [(ack, dest, _)] = env.sip.stateless
    assert str(ack.uri) == "sip:carol@192.0.2.41:5080"
    assert dest == ("192.0.2.41", 5080)


async def test_refer_notifies_stay_in_order(env: FocusEnv) -> None:
    await refer_from_alice(env)
    invite = dial_out(env)
    invite.reply(180)
    await drain()
    [trying] = env.sip.pending("NOTIFY")
    assert parse_sipfrag(trying.request.body) == (100, "Trying")

    trying.reply(200)
    await drain()
    [ringing] = env.sip.pending("NOTIFY")
    assert parse_sipfrag(ringing.request.body) == (180, "Ringing")
    assert ringing.request.cseq.seq == trying.request.cseq.seq + 1


async def test_refer_dial_out_busy_reports_486(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    refer = await refer_from_alice(env)
    room = env.focus.rooms[ROOM_KEY]
    invite = dial_out(env)
    invite.reply(486)
    await drain()

    final = refer_notifies(env, refer)[-1]
    assert parse_sipfrag(final.body) == (486, "Busy Here")
    assert final.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert room.by_uri("sip:carol@192.0.2.40") == []
    assert env.sip.stateless == []  # the transaction layer ACKs non-2xx itself
    carol_stream = env.media.added[-1][1].stream_id
    assert carol_stream in env.media.removed


async def test_refer_sub_false_gets_no_notify(env: FocusEnv) -> None:
    alice = env.phone("alice")
    await alice.call()
    refer = alice.send(
        alice.request(
            "REFER",
            call_id="refer-nosub-1",
            headers=[("Refer-To", "<sip:carol@192.0.2.40>"), ("Refer-Sub", "false")],
        )
    )
    await drain()
    response = env.sip.final(refer)
    assert response.status == 202
    assert response.headers.get("Refer-Sub") == "false"

    answer_200(dial_out(env))
    await drain()
    assert refer_notifies(env, refer) == []
    assert env.focus.rooms[ROOM_KEY].connected_count == 2


# ------------------------------------------------------------------------- remove by REFER
async def test_refer_method_bye_removes_the_participant(env: FocusEnv) -> None:
    env.sip.auto_reply.update({"NOTIFY": 200, "BYE": 200})
    bob = env.phone("bob", host="192.0.2.30", display="Bob")
    await bob.call()
    refer = await refer_from_alice(env, "blink_refer_remove.sip")

    assert env.sip.final(refer).status == 202
    [bye] = env.sip.sent("BYE")
    assert bye.request.call_id == bob.call_id
    assert bye.dest == ("192.0.2.30", 5060)
    assert env.focus.rooms[ROOM_KEY].by_uri("sip:bob@192.0.2.30") == []
    assert sipfrags(env, refer) == [(100, "Trying"), (200, "OK")]
    last = refer_notifies(env, refer)[-1]
    assert (last.headers.get("Subscription-State") or "").startswith("terminated")
    assert env.sip.sent("INVITE") == []


async def test_refer_bye_for_absent_participant_reports_failure(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    refer = await refer_from_alice(env, "blink_refer_remove.sip")
    assert env.sip.final(refer).status == 202
    code, _ = sipfrags(env, refer)[-1]
    assert code >= 300
    assert env.sip.sent("BYE") == []


# -------------------------------------------------------------------------- bad REFERs
@pytest.mark.parametrize(
    "refer_to",
    [
        "<mailto:carol@example.com>",
        "<sip:carol@192.0.2.40>;method=MESSAGE",
        "<sip:carol@192.0.2.40",
    ],
)
async def test_bad_refer_to_is_488(env: FocusEnv, refer_to: str) -> None:
    alice = env.phone("alice")
    await alice.call()
    refer = alice.send(
        alice.request("REFER", call_id="bad-refer", headers=[("Refer-To", refer_to)])
    )
    await drain()
    assert env.sip.final(refer).status == 488
    assert env.sip.sent("INVITE") == []


async def test_missing_refer_to_is_400(env: FocusEnv) -> None:
    alice = env.phone("alice")
    await alice.call()
    refer = alice.send(alice.request("REFER", call_id="no-refer-to"))
    await drain()
    assert env.sip.final(refer).status == 400


async def test_refer_to_unknown_room_is_404(env: FocusEnv) -> None:
    phone = env.phone("alice")
    refer = phone.send(phone.request("REFER", headers=[("Refer-To", "<sip:carol@192.0.2.40>")]))
    await drain()
    assert env.sip.final(refer).status == 404


# ------------------------------------------------------------- RFC 5366 resource lists
LISTED = [
    "sip:bill@example.com",
    "sip:randy@example.net",
    "sip:joe@example.org",
    "sip:ted@example.net",
]


async def test_resource_list_invite_dials_out_every_uri(env: FocusEnv) -> None:
    invite = vector("rfc5366_invite.sip")
    invite.headers.remove("Require")
    env.focus.handle_request(received(invite))
    await drain()

    response = env.sip.final(invite)
    assert response.status == 200
    media = SessionDescription.parse(response.body).media
    assert [(m.media, m.port == 0) for m in media] == [("audio", False), ("video", True)]
    invites = env.sip.pending("INVITE")
    assert [str(s.request.uri) for s in invites] == LISTED
    assert [s.dest for s in invites] == [
        ("example.com", 5060),
        ("example.net", 5060),
        ("example.org", 5060),
        ("example.net", 5060),
    ]
    for sent in invites:
        assert sent.request.from_.display_name == "Conference Call"
        assert sent.request.headers.get("X-Orig-From") == "<sip:alice@192.0.2.20>"
    room = env.focus.rooms[ROOM_KEY]
    assert sorted(p.uri for p in room.participants.values() if p.invited) == sorted(LISTED)


async def test_resource_list_invite_with_required_option_tag_is_accepted(env: FocusEnv) -> None:
    # RFC 5366 4: the UAC puts `Require: recipient-list-invite` on such an INVITE
    invite = vector("rfc5366_invite.sip")
    assert invite.headers.get("Require") == "recipient-list-invite"
    env.focus.handle_request(received(invite))
    await drain()
    assert env.sip.final(invite).status == 200
    assert len(env.sip.pending("INVITE")) == len(LISTED)


# ------------------------------------------------------------------------------- close
async def test_close_terminates_refer_subscriptions(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    refer = await refer_from_alice(env)
    dial_out(env)
    env.sip.auto_reply["BYE"] = 200
    await env.focus.close(0.5)
    last = refer_notifies(env, refer)[-1]
    assert (last.headers.get("Subscription-State") or "").startswith("terminated")
    code, _ = parse_sipfrag(last.body)
    assert code >= 300


async def test_dial_out_runs_session_timers_as_uac(env: FocusEnv) -> None:
    """RFC 4028 7.1 on our UAC side: the dial-out offers a session timer and, when the callee
    makes us the refresher, the focus arms a refresh."""
    env.sip.auto_reply["NOTIFY"] = 200
    await refer_from_alice(env)
    invite = dial_out(env)
    assert invite.request.headers.get("Session-Expires") == "1800"
    assert invite.request.headers.get("Min-SE") == "90"
    assert "timer" in invite.request.headers.get_all("Supported")
    offer = SessionDescription.parse(invite.request.body)
    assert offer.media[0].media == "audio"
    invite.reply(
        200,
        contact="<sip:carol@192.0.2.40:5060>",
        body=audio_sdp("192.0.2.40", 30000),
        content_type="application/sdp",
        headers=[("Session-Expires", "120;refresher=uac"), ("Require", "timer")],
    )
    await drain()
    [carol] = [
        p for p in env.focus.rooms[ROOM_KEY].participants.values() if p.uri.startswith("sip:carol")
    ]
    assert carol.state is ParticipantState.CONNECTED
    assert carol.session_timer is not None and carol.session_timer.we_refresh
    assert carol.session_timer_handle is not None
