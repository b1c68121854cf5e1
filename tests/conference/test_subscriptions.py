"""Tests for sylkbox.conference.subscriptions: the `conference` event package (RFC 4575, RFC 6665).

Every NOTIFY body is parsed back with `parse_conference_info` (BLINK.md section 3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import ParsedConferenceInfo, parse_conference_info
from sylkbox.config import ConferenceConfig, Config, RoomPolicy, SipConfig
from sylkbox.sip.message import Request
from tests.helpers.fakes import ROOM_URI, FocusEnv, Phone, drain, parse_request, received

VECTORS = Path(__file__).parent.parent / "vectors" / "conference"
ROOM_KEY = "room1@sylkbox.local"


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


def info(notify: Request) -> ParsedConferenceInfo:
    assert notify.headers.get("Event") == "conference"
    assert notify.content_type == "application/conference-info+xml"
    return parse_conference_info(notify.body)


def state_of(notify: Request) -> str:
    return notify.headers.get("Subscription-State") or ""


async def room_with_alice(env: FocusEnv) -> Phone:
    alice = env.phone("alice")
    assert (await alice.call()).status == 200
    return alice


# ------------------------------------------------------------------------ subscribing
async def test_subscribe_gets_200_and_an_immediate_full_notify(env: FocusEnv) -> None:
    await room_with_alice(env)
    subscribe = parse_request((VECTORS / "blink_subscribe_conference.sip").read_bytes())
    env.focus.handle_request(received(subscribe, ("192.0.2.30", 5060)))
    await drain()

    response = env.sip.final(subscribe)
    assert response.status == 200
    assert response.headers.get("Expires") == "600"
    assert response.to.tag
    assert any(name == "isfocus" for name, _ in response.contacts[0].params)

    [sent] = env.sip.sent("NOTIFY")
    notify = sent.request
    assert sent.dest == ("192.0.2.30", 5060)  # the subscriber's Contact
    assert str(notify.uri) == "sip:91827364@192.0.2.30:5060"
    assert notify.call_id == subscribe.call_id
    assert notify.from_.tag == response.to.tag
    assert notify.to.tag == subscribe.from_.tag
    assert state_of(notify).startswith("active;expires=")
    assert 595 <= int(state_of(notify).rpartition("=")[2]) <= 600

    document = info(notify)
    assert document.state == "full"
    assert document.room.entity == ROOM_URI
    assert document.room.user_count == 1
    [user] = document.room.users
    assert user.entity == "sip:alice@192.0.2.20"
    assert user.display_text == "Alice"
    [endpoint] = user.endpoints
    assert endpoint.entity == "sip:alice@192.0.2.20:5060"
    assert endpoint.status == "connected"
    assert [m.type for m in endpoint.media] == ["audio"]


async def test_expires_defaults_to_3600(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    response = await watcher.subscribe(expires=None)
    assert response.headers.get("Expires") == "3600"
    assert state_of(watcher.notifies()[0].request).startswith("active;expires=3")


async def test_expires_is_capped() -> None:
    env = FocusEnv.create(Config(sip=SipConfig(subscription_max_expires=3600)))
    try:
        await room_with_alice(env)
        response = await env.phone("bob", host="192.0.2.30").subscribe(expires=7200)
        assert response.headers.get("Expires") == "3600"
    finally:
        await env.close()


async def test_expires_zero_fetches_the_state_and_terminates(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    response = await watcher.subscribe(expires=0)
    assert response.status == 200
    assert response.headers.get("Expires") == "0"
    [notify] = watcher.notifies()
    assert state_of(notify.request).startswith("terminated")
    assert [u.entity for u in info(notify.request).room.users] == ["sip:alice@192.0.2.20"]
    assert env.focus.subscriptions.count(env.focus.rooms[ROOM_KEY]) == 0


async def test_subscribe_to_unknown_room_is_480(env: FocusEnv) -> None:
    response = await env.phone("bob").subscribe()
    assert response.status == 480
    assert env.sip.sent("NOTIFY") == []


async def test_subscribe_to_other_event_package_is_489(env: FocusEnv) -> None:
    await room_with_alice(env)
    response = await env.phone("bob", host="192.0.2.30").subscribe(event="presence")
    assert response.status == 489


async def test_subscriber_denied_by_room_policy_is_403() -> None:
    policy = RoomPolicy(allow=("all",), deny=("192.0.2.66",))
    env = FocusEnv.create(Config(conference=ConferenceConfig(defaults=policy)))
    try:
        await room_with_alice(env)
        assert (await env.phone("mallory", host="192.0.2.66").subscribe()).status == 403
    finally:
        await env.close()


async def test_room_found_through_focus_contact_user(env: FocusEnv) -> None:
    await room_with_alice(env)
    room = env.focus.rooms[ROOM_KEY]
    watcher = env.phone("bob", host="192.0.2.30")
    response = await watcher.subscribe(
        uri=f"sip:focus-{room.id}@192.0.2.1:5060", to="<sip:conference@192.0.2.1>"
    )
    assert response.status == 200
    assert info(watcher.notifies()[0].request).room.entity == ROOM_URI


async def test_room_found_through_to_uri(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    response = await watcher.subscribe(uri="sip:192.0.2.1:5060", to=f"<{ROOM_URI}>")
    assert response.status == 200
    assert info(watcher.notifies()[0].request).room.entity == ROOM_URI


# --------------------------------------------------------------------------- refreshing
async def test_refresh_resends_the_last_body(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe()
    [first] = watcher.notifies()

    refresh = await watcher.subscribe(expires=600)
    assert refresh.status == 200
    assert refresh.headers.get("Expires") == "600"
    [_, second] = watcher.notifies()
    assert second.request.body == first.request.body
    assert second.request.cseq.seq == first.request.cseq.seq + 1


async def test_refresh_with_expires_zero_terminates(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe()
    assert (await watcher.subscribe(expires=0)).status == 200
    assert state_of(watcher.notifies()[-1].request).startswith("terminated")
    assert env.focus.subscriptions.count(env.focus.rooms[ROOM_KEY]) == 0


async def test_refresh_of_unknown_subscription_is_481(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    watcher.remote = f"<{ROOM_URI}>;tag=gone"
    assert (await watcher.subscribe()).status == 481


async def test_subscription_expires_without_refresh(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe(expires=1)
    await asyncio.sleep(1.1)
    await drain()
    assert state_of(watcher.notifies()[-1].request) == "terminated;reason=timeout"
    assert env.focus.subscriptions.count(env.focus.rooms[ROOM_KEY]) == 0


# ----------------------------------------------------------------------- room changes
async def test_join_and_leave_notify_with_growing_versions(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    alice = await room_with_alice(env)
    watcher = env.phone("carol", host="192.0.2.40")
    await watcher.subscribe()
    bob = env.phone("bob", host="192.0.2.30", display="Bob")
    await bob.call()
    await alice.in_dialog("BYE")

    documents = [info(n.request) for n in watcher.notifies()]
    users = [sorted(u.entity for u in d.room.users) for d in documents]
    assert users == [
        ["sip:alice@192.0.2.20"],
        ["sip:alice@192.0.2.20", "sip:bob@192.0.2.30"],
        ["sip:bob@192.0.2.30"],
    ]
    versions = [d.version or 0 for d in documents]
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_last_leave_terminates_subscriptions(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    alice = await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe()
    await alice.in_dialog("BYE")
    assert env.focus.rooms == {}
    last = watcher.notifies()[-1].request
    assert state_of(last) == "terminated;reason=noresource"


async def test_fifty_joins_during_one_notify_are_coalesced(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("zed", host="192.0.2.99")
    await watcher.subscribe()
    [first] = watcher.notifies()
    assert not first.done  # the first NOTIFY is in flight

    joined = []
    for i in range(50):
        phone = env.phone(f"user{i}", host="192.0.2.50", port=6000 + i)
        assert (await phone.call()).status == 200
        joined.append(phone.uri)
    assert len(watcher.notifies()) == 1

    first.reply(200)
    await drain()
    notifies = watcher.notifies()
    assert len(notifies) <= 2
    document = info(notifies[-1].request)
    entities = {u.entity for u in document.room.users}
    assert set(joined) <= entities
    assert document.room.user_count == 51

    for sent in notifies:
        if not sent.done:
            sent.reply(200)
    await drain()
    assert len(watcher.notifies()) == len(notifies)  # nothing changed: no further NOTIFY


async def test_notify_rejected_with_481_drops_the_subscription(env: FocusEnv) -> None:
    await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe()
    [first] = watcher.notifies()
    first.reply(481)
    await drain()
    assert env.focus.subscriptions.count(env.focus.rooms[ROOM_KEY]) == 0

    await env.phone("carol", host="192.0.2.40").call()
    assert len(watcher.notifies()) == 1
    assert (await watcher.subscribe()).status == 481


async def test_room_ending_while_a_notify_is_in_flight_sends_the_final_state(
    env: FocusEnv,
) -> None:
    alice = await room_with_alice(env)
    watcher = env.phone("bob", host="192.0.2.30")
    await watcher.subscribe()
    [first] = watcher.notifies()  # still in flight when alice leaves
    await alice.in_dialog("BYE")
    first.reply(200)
    await drain()

    last = watcher.notifies()[-1].request
    assert state_of(last) == "terminated;reason=noresource"
    # Blink takes every NOTIFY as the full list: the last one must not show alice any more
    assert info(last).room.users == ()
