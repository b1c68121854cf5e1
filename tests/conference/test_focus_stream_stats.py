"""The focus keeps each participant's latest RTCP figures (``StreamStats``) for the web UI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sylkbox.media.control import StreamStats
from tests.helpers.fakes import FocusEnv


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


async def test_latest_stream_stats_kept_on_the_participant(env: FocusEnv) -> None:
    alice = env.phone()
    assert (await alice.call()).status == 200
    sid = env.media.added[0][1].stream_id
    first = StreamStats(stream_id=sid, packets_received=250, packets_lost=3,
                        fraction_lost=0.012, jitter_ms=4.5)
    latest = StreamStats(stream_id=sid, packets_received=500, packets_lost=5,
                         fraction_lost=0.008, jitter_ms=3.0, rtt_ms=12.5)
    env.focus.media_event(first)
    env.focus.media_event(latest)
    env.focus.media_event(StreamStats(stream_id="unknown", packets_received=1, packets_lost=0,
                                      fraction_lost=0.0, jitter_ms=0.0))
    participants = [p for room in env.focus.rooms.values() for p in room.participants.values()]
    assert [p.audio.stats for p in participants if p.audio is not None] == [latest]
