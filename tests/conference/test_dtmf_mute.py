"""*6 self-mute through RFC 4733 DTMF events, and the join prompts the focus asks for.

The focus runs against `FakeSipPort`/`FakeMediaPort` (tests/helpers/fakes.py); the worker
side of muting and prompts is tested in tests/media/test_worker_prompts.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.conference.focus import DTMF_MUTE_WINDOW
from sylkbox.config import Config, MediaConfig
from sylkbox.media.control import Dtmf, RtpTimeout
from tests.helpers.fakes import FocusEnv, drain

ROOM_KEY = "room1@sylkbox.local"


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


def press(env: FocusEnv, stream_id: str, *digits: str) -> None:
    for digit in digits:
        env.focus.media_event(Dtmf(stream_id=stream_id, digit=digit))


async def test_star_six_toggles_own_mute(env: FocusEnv) -> None:
    env.sip.auto_reply["NOTIFY"] = 200
    alice = env.phone("alice", host="192.0.2.20")
    assert (await alice.call()).status == 200
    room_id, spec = env.media.added[0]
    sid = spec.stream_id
    watcher = env.phone("bob", host="192.0.2.30")
    assert (await watcher.subscribe()).status == 200
    notified = len(watcher.notifies())

    press(env, sid, "*", "6")
    await drain()
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    assert participant.muted
    assert env.media.muted == [(sid, True)]
    assert env.media.prompts[-1] == (room_id, "muted", sid)  # confirmation, private
    info = parse_conference_info(watcher.notifies()[notified].request.body)
    assert [e.status for u in info.room.users for e in u.endpoints] == ["muted-via-focus"]

    press(env, sid, "*", "6")
    await drain()
    assert not participant.muted
    assert env.media.muted == [(sid, True), (sid, False)]
    assert env.media.prompts[-1] == (room_id, "unmuted", sid)
    info = parse_conference_info(watcher.notifies()[-1].request.body)
    assert [e.status for u in info.room.users for e in u.endpoints] == ["connected"]


async def test_other_sequences_do_not_mute(env: FocusEnv) -> None:
    alice = env.phone()
    assert (await alice.call()).status == 200
    sid = env.media.added[0][1].stream_id
    [participant] = env.focus.rooms[ROOM_KEY].participants.values()
    press(env, sid, "6", "1", "6", "*", "5", "6", "6")  # no '*' right before a '6'
    press(env, "no-such-stream", "*", "6")
    await drain()
    assert env.media.muted == [] and not participant.muted
    press(env, sid, "*")
    assert participant.dtmf_star_at is not None
    participant.dtmf_star_at -= DTMF_MUTE_WINDOW + 0.1  # the '6' comes too late
    press(env, sid, "6")
    await drain()
    assert env.media.muted == [] and not participant.muted
    press(env, sid, "*", "*", "6")  # a repeated star still arms
    await drain()
    assert env.media.muted == [(sid, True)]


async def test_join_prompts(env: FocusEnv) -> None:
    alice = env.phone("alice", host="192.0.2.20")
    assert (await alice.call()).status == 200
    room_id, alice_spec = env.media.added[0]
    assert env.media.prompts == [(room_id, "alone", alice_spec.stream_id)]  # private
    bob = env.phone("bob", host="192.0.2.30")
    assert (await bob.call()).status == 200
    assert env.media.prompts[1:] == [(room_id, "join", None)]  # to everyone


async def test_prompts_can_be_disabled() -> None:
    env = FocusEnv.create(Config(media=MediaConfig(prompts=False)))
    try:
        for user, host in (("alice", "192.0.2.20"), ("bob", "192.0.2.30")):
            assert (await env.phone(user, host=host).call()).status == 200
        sid = env.media.added[0][1].stream_id
        press(env, sid, "*", "6")
        await drain()
        assert env.media.prompts == [] and env.media.muted == [(sid, True)]
    finally:
        await env.close()


async def test_rtp_timeout_still_ends_the_call(env: FocusEnv) -> None:
    env.sip.auto_reply["BYE"] = 200
    alice = env.phone()
    assert (await alice.call()).status == 200
    sid = env.media.added[0][1].stream_id
    env.focus.media_event(RtpTimeout(stream_id=sid))
    await drain()
    assert sid in env.media.removed
