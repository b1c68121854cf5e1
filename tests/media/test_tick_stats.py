"""Mixer clock statistics: TickMeter (worker.py), TickStats/GetStats (control.py)."""

import asyncio

import pytest

from sylkbox.media.control import (
    ControlError,
    GetStats,
    MediaEvent,
    TickStats,
    from_json,
    to_json,
)
from sylkbox.media.worker import LATE_START, PTIME, MediaWorker, TickMeter


def test_on_time_tick_is_not_late() -> None:
    meter = TickMeter()
    meter.record(0.001, 0.004)
    stats = meter.snapshot()
    assert (stats.ticks, stats.late_ticks) == (1, 0)
    assert stats.max_late_ms == 1.0
    assert stats.mean_tick_ms == 4.0


def test_late_start_and_over_budget_processing_are_late() -> None:
    meter = TickMeter()
    meter.record(LATE_START + 0.0001, 0.001)  # started too late
    meter.record(0.0, PTIME + 0.0001)  # processing over the 20 ms budget
    meter.record(LATE_START, PTIME)  # exactly at both limits: on time
    stats = meter.snapshot()
    assert (stats.ticks, stats.late_ticks) == (3, 2)
    assert stats.max_late_ms == pytest.approx(5.1)


def test_skipped_ticks_count_as_late() -> None:
    meter = TickMeter()
    meter.skipped(10, 0.21)
    meter.record(0.0, 0.001)
    stats = meter.snapshot()
    assert (stats.ticks, stats.late_ticks) == (11, 10)
    assert stats.max_late_ms == 210.0


def test_p99_and_reset() -> None:
    meter = TickMeter()
    for i in range(100):
        meter.record(0.0, 0.001 if i < 98 else 0.009 + i * 0.0001)
    stats = meter.snapshot(reset=True)
    assert stats.p99_tick_ms == pytest.approx(18.9)
    assert stats.mean_tick_ms == pytest.approx((98 * 1 + 18.8 + 18.9) / 100, abs=0.001)
    empty = meter.snapshot()
    assert (empty.ticks, empty.late_ticks, empty.p99_tick_ms) == (0, 0, 0.0)


def test_json_round_trip() -> None:
    stats = TickStats(ticks=500, late_ticks=3, max_late_ms=7.5, mean_tick_ms=2.25,
                      p99_tick_ms=9.0)
    assert from_json(to_json(stats)) == stats
    assert from_json(to_json(GetStats(reset=True))) == GetStats(reset=True)
    assert from_json('{"type":"GetStats"}') == GetStats(reset=False)


def test_late_ticks_cannot_exceed_ticks() -> None:
    with pytest.raises(ValueError):
        TickStats(ticks=1, late_ticks=2, max_late_ms=0, mean_tick_ms=0, p99_tick_ms=0)
    with pytest.raises(ControlError):
        from_json('{"type":"TickStats","ticks":1,"late_ticks":2,"max_late_ms":0,'
                  '"mean_tick_ms":0,"p99_tick_ms":0}')


async def test_worker_answers_get_stats_from_its_clock() -> None:
    events: list[MediaEvent] = []
    worker = MediaWorker(port_range=(47000, 47010), rtp_timeout=30.0, emit=events.append)
    clock = asyncio.create_task(worker.run_clock())
    try:
        async with asyncio.timeout(5):
            while worker.tick_meter.ticks < 5:
                await asyncio.sleep(PTIME)
        await worker.handle(GetStats(reset=True))
    finally:
        clock.cancel()
    stats = events[-1]
    assert isinstance(stats, TickStats)
    assert stats.ticks >= 5
    assert 0 <= stats.late_ticks <= stats.ticks
    assert worker.tick_meter.ticks <= 1  # the window restarted
