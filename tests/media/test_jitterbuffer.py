"""The playout buffer against simulated packet streams (deterministic, simulated time)."""

from __future__ import annotations

import heapq
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field

import pytest

from sylkbox.media.jitterbuffer import Arrival, JitterBuffer, Playout, PlayoutKind

CLOCK = 8000
STEP = 160
TICK_PHASE = 0.0073  # the mixer's ticks are not aligned with the sender's


@dataclass
class Sent:
    time: float
    ssrc: int
    seq: int
    ts: int


@dataclass
class Run:
    jb: JitterBuffer
    sent: dict[int, Sent]
    played: list[tuple[float, int]] = field(default_factory=list)  # (tick time, index)
    kinds: Counter[PlayoutKind] = field(default_factory=Counter)
    arrivals: Counter[Arrival] = field(default_factory=Counter)
    reordered: int = 0

    def delays(self, start: float = 0.0, end: float = 1e9) -> list[float]:
        return [t - self.sent[i].time for t, i in self.played if start <= t < end]

    @property
    def ticks(self) -> int:
        return sum(self.kinds.values())


def simulate(
    *, seconds: float, loss: float = 0.0, jitter: float = 0.0, drift: float = 0.0,
    duplicate: float = 0.0, seed: int = 1, base_delay: float = 0.03,
    ssrc_change_at: float | None = None, ts_jump_at: float | None = None,
    outages: tuple[tuple[float, float], ...] = (), dtx: tuple[tuple[float, float], ...] = (),
    stall: tuple[float, float] | None = None,
) -> Run:
    """A 20 ms sender whose clock runs ``drift`` fast (0.005 = 0.5 %), a network with random
    ``loss``, uniform extra delay up to ``jitter`` (so reordering), duplicates, outages (packets
    sent but lost, sequence numbers used) and DTX (nothing sent, sequence numbers not used),
    and a mixer ticking every 20 ms of our clock that calls ``pop``."""
    rng = random.Random(seed)
    jb = JitterBuffer(clock_rate=CLOCK)
    period = 0.02 / (1 + drift)
    ssrc, seq, ts = 0x1234, 65000, 2**32 - 5000  # both wrap early in the run
    queue: list[tuple[float, int]] = []
    sent: dict[int, Sent] = {}
    index = 0
    for k in range(int(seconds / period)):
        t = k * period
        if ssrc_change_at is not None and t >= ssrc_change_at:
            ssrc, seq, ts, ssrc_change_at = 0x5678, 100, 77, None
        if ts_jump_at is not None and t >= ts_jump_at:
            ts, ts_jump_at = (ts + 123_456_789) & 0xFFFFFFFF, None
        ts = (ts + STEP) & 0xFFFFFFFF
        if any(a <= t < b for a, b in dtx):
            continue
        seq = (seq + 1) & 0xFFFF
        sent[index] = Sent(t, ssrc, seq, ts)
        if not any(a <= t < b for a, b in outages) and rng.random() >= loss:
            copies = 2 if rng.random() < duplicate else 1
            for _ in range(copies):
                arrival = t + base_delay + rng.uniform(0, jitter)
                if stall is not None and stall[0] <= arrival < stall[1]:
                    arrival = stall[1] + rng.uniform(0, 0.001)
                heapq.heappush(queue, (arrival, index))
        index += 1
    run = Run(jb=jb, sent=sent)
    last_seq_seen = -1
    tick = 0
    while True:
        now = tick * 0.02 + TICK_PHASE
        if now > seconds + 1:
            break
        while queue and queue[0][0] <= now:
            arrival, i = heapq.heappop(queue)
            if i < last_seq_seen:
                run.reordered += 1
            last_seq_seen = max(last_seq_seen, i)
            s = sent[i]
            run.arrivals[jb.put(ssrc=s.ssrc, sequence_number=s.seq, timestamp=s.ts,
                                payload=i.to_bytes(4, "big"), now=arrival)] += 1
        playout = jb.pop(now)
        run.kinds[playout.kind] += 1
        if playout.kind is PlayoutKind.AUDIO:
            run.played.append((now, int.from_bytes(playout.payload, "big")))
        tick += 1
    return run


def assert_in_order(run: Run) -> None:
    indexes = [i for _, i in run.played]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)


def test_clean_stream_plays_every_packet_at_minimum_delay() -> None:
    run = simulate(seconds=30)
    assert run.kinds[PlayoutKind.AUDIO] == len(run.sent)
    assert run.kinds[PlayoutKind.LOST] == 0
    delays = run.delays()
    assert max(delays) - min(delays) < 1e-9  # constant
    assert 0.03 + 0.005 <= delays[0] <= 0.03 + 0.02 + 0.015  # network + about one frame
    assert_in_order(run)


def test_loss_jitter_reordering_duplicates() -> None:
    run = simulate(seconds=120, loss=0.05, jitter=0.04, duplicate=0.02, seed=7)
    stats = run.jb.stats()
    assert run.reordered > 100
    assert stats.duplicates == run.arrivals[Arrival.DUPLICATE] > 50
    assert stats.late == 0  # the target delay covers 40 ms of jitter
    frames = len(run.sent)
    played = run.kinds[PlayoutKind.AUDIO]
    lost = run.kinds[PlayoutKind.LOST]
    assert 0.93 * frames <= played <= 0.97 * frames  # everything that arrived
    assert played + stats.skipped + lost >= frames - 5
    assert lost / frames == pytest.approx(0.05, abs=0.01)
    assert 0.045 <= stats.target_delay <= 0.09  # 2.5 J + frame, J about 13 ms
    delays = run.delays()
    assert max(delays) < 0.03 + 0.04 + 0.09 + 0.015
    assert_in_order(run)


@pytest.mark.parametrize("drift", [0.005, -0.005])
def test_clock_drift_does_not_grow_the_delay(drift: float) -> None:
    run = simulate(seconds=600, drift=drift, jitter=0.04, loss=0.01, seed=3)
    first = statistics.median(run.delays(10, 70))
    last = statistics.median(run.delays(540, 600))
    assert abs(last - first) < 0.01
    assert max(run.delays(10)) < 0.03 + 0.04 + 0.09 + 0.015
    stats = run.jb.stats()
    expected_corrections = 600 / 0.02 * abs(drift)  # 150 frames in 10 minutes
    if drift > 0:  # the sender is fast: skip
        assert stats.skipped == pytest.approx(expected_corrections, rel=0.15)
    else:  # the sender is slow: insert concealment frames
        extra = run.kinds[PlayoutKind.CONCEAL] + run.kinds[PlayoutKind.SILENCE]
        assert extra - 50 == pytest.approx(expected_corrections, rel=0.2)  # 50: start-up
    assert stats.late < 0.002 * len(run.sent)
    assert_in_order(run)


def test_clean_drift_keeps_the_delay_within_one_frame() -> None:
    for drift in (0.005, -0.005):
        run = simulate(seconds=600, drift=drift)
        delays = run.delays(5)
        assert max(delays) - min(delays) <= 0.031
        assert statistics.median(delays) < 0.03 + 0.045


def test_ssrc_change_resyncs_at_target_delay() -> None:
    run = simulate(seconds=20, jitter=0.01, ssrc_change_at=10.0)
    assert run.jb.stats().resyncs == 1
    assert run.kinds[PlayoutKind.AUDIO] >= len(run.sent) - 5
    before, after = run.delays(2, 10), run.delays(11, 21)
    assert abs(statistics.median(after) - statistics.median(before)) < 0.01
    assert_in_order(run)


def test_timestamp_jump_resyncs_without_growing_delay() -> None:
    run = simulate(seconds=20, ts_jump_at=10.0)
    assert run.jb.stats().resyncs == 1
    assert run.kinds[PlayoutKind.AUDIO] >= len(run.sent) - 5
    before, after = run.delays(2, 10), run.delays(11, 21)
    assert max(after) <= max(before) + 0.005


def test_dtx_gap_conceals_then_silence_and_resumes_on_time() -> None:
    run = simulate(seconds=20, dtx=((5.0, 7.0), (12.0, 12.4)))
    assert run.kinds[PlayoutKind.AUDIO] == len(run.sent)  # nothing lost or skipped
    assert run.jb.stats().lost == 0 and run.jb.stats().resyncs == 0
    delays = run.delays()
    assert max(delays) - min(delays) < 0.001  # the talk spurts resume at the same delay
    # 5 frames (100 ms) of concealment after each of the 3 talk spurts, then silence
    assert run.kinds[PlayoutKind.CONCEAL] == 5 * 3


def test_network_outage_then_resume() -> None:
    run = simulate(seconds=20, outages=((5.0, 7.0),), jitter=0.01)
    stats = run.jb.stats()
    assert stats.resyncs == 0
    before, after = run.delays(1, 5), run.delays(8, 21)
    assert abs(statistics.median(after) - statistics.median(before)) < 0.01
    assert run.kinds[PlayoutKind.AUDIO] >= len(run.sent) - 100 - 5


def test_stall_then_burst_catches_up() -> None:
    run = simulate(seconds=20, stall=(5.0, 5.5))
    stats = run.jb.stats()
    assert stats.skipped >= 15  # the burst's stale packets are dropped
    after = run.delays(7, 21)
    assert max(after) < 0.03 + 0.2 + 0.015  # at most the maximum target delay
    # the target rose with the stall's jitter at once and comes down slowly
    assert statistics.median(run.delays(17, 21)) < statistics.median(run.delays(7, 9)) - 0.01


def test_duplicate_late_and_fec_offer() -> None:
    jb = JitterBuffer(clock_rate=CLOCK)

    def put(seq: int, t: float) -> Arrival:
        return jb.put(ssrc=1, sequence_number=seq & 0xFFFF, timestamp=(seq * STEP) & 0xFFFFFFFF,
                      payload=bytes((seq & 0xFF,)), now=t)

    assert put(65534, 0.0) is Arrival.ACCEPTED
    assert put(65534, 0.001) is Arrival.DUPLICATE
    assert jb.pop(0.0).kind is PlayoutKind.SILENCE  # waiting for the target delay
    assert jb.pop(0.02) == Playout(PlayoutKind.AUDIO, bytes((0xFE,)))
    # 65535 is missing; 65536 (wrapped to 0) arrives: the slot is concealed with FEC data
    assert put(65536, 0.04) is Arrival.ACCEPTED
    lost = jb.pop(0.045)
    assert lost.kind is PlayoutKind.LOST and lost.payload == bytes((0,))
    assert put(65535, 0.05) is Arrival.LATE
    assert put(65535, 0.05) is Arrival.DUPLICATE  # a late packet seen twice
    played = jb.pop(0.065)
    assert played.kind is PlayoutKind.AUDIO and played.payload == bytes((0,))
    stats = jb.stats()
    assert (stats.late, stats.duplicates, stats.lost, stats.played) == (1, 2, 1, 2)


def test_no_audio_packets_pass_their_slot() -> None:
    jb = JitterBuffer(clock_rate=CLOCK)
    assert jb.put(ssrc=1, sequence_number=1, timestamp=0, payload=None, now=0.0) \
        is Arrival.IGNORED
    jb.put(ssrc=1, sequence_number=10, timestamp=0, payload=b"a", now=0.0)
    jb.put(ssrc=1, sequence_number=11, timestamp=999, payload=None, now=0.02)  # CN
    jb.put(ssrc=1, sequence_number=12, timestamp=2 * STEP, payload=b"c", now=0.04)
    kinds = [jb.pop(0.02 * k + 0.01) for k in range(6)]
    audio = [p.payload for p in kinds if p.kind is PlayoutKind.AUDIO]
    assert audio == [b"a", b"c"]
    assert jb.stats().lost == 0


def test_reordered_before_playout_starts() -> None:
    jb = JitterBuffer(clock_rate=CLOCK)
    jb.put(ssrc=1, sequence_number=6, timestamp=6 * STEP, payload=b"6", now=0.0)
    assert jb.put(ssrc=1, sequence_number=5, timestamp=5 * STEP, payload=b"5",
                  now=0.001) is Arrival.ACCEPTED
    out = [jb.pop(0.02 * k) for k in range(4)]
    assert [p.payload for p in out if p.kind is PlayoutKind.AUDIO] == [b"5", b"6"]


def test_sequence_jump_resyncs() -> None:
    jb = JitterBuffer(clock_rate=CLOCK)
    jb.put(ssrc=1, sequence_number=10, timestamp=0, payload=b"x", now=0.0)
    assert jb.put(ssrc=1, sequence_number=30000, timestamp=STEP, payload=b"y",
                  now=0.02) is Arrival.RESYNC
    assert jb.stats().resyncs == 1 and jb.buffered == 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(clock_rate=0)
    with pytest.raises(ValueError):
        JitterBuffer(clock_rate=8000, min_delay=0.3, max_delay=0.2)


def test_source_restarting_its_numbering_resyncs_after_three_packets() -> None:
    jb = JitterBuffer(clock_rate=CLOCK)
    for i in range(60):
        jb.put(ssrc=1, sequence_number=i, timestamp=i * STEP, payload=b"a", now=0.02 * i)
        jb.pop(0.02 * i + 0.01)
    # the same SSRC starts again at sequence 0 and timestamp 0, 1.5 s later
    got = [jb.put(ssrc=1, sequence_number=i, timestamp=i * STEP, payload=b"b",
                  now=3.0 + 0.02 * i) for i in range(3)]
    assert got == [Arrival.DUPLICATE, Arrival.DUPLICATE, Arrival.RESYNC]
    out = [jb.pop(3.04 + 0.02 * k) for k in range(3)]
    assert [p.payload for p in out if p.kind is PlayoutKind.AUDIO] == [b"b"]
    # late packets interleaved with packets ahead of the playout restart nothing
    for i in range(3, 9):
        jb.put(ssrc=1, sequence_number=i, timestamp=i * STEP, payload=b"c", now=3.1 + 0.02 * i)
        jb.pop(3.1 + 0.02 * i + 0.01)
    for i in range(9, 15):
        assert jb.put(ssrc=1, sequence_number=i - 6, timestamp=(i - 6) * STEP, payload=b"d",
                      now=3.5 + 0.02 * i) is Arrival.DUPLICATE
        jb.put(ssrc=1, sequence_number=i, timestamp=i * STEP, payload=b"c", now=3.5 + 0.02 * i)
    assert jb.stats().resyncs == 1
