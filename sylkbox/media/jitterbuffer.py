"""Adaptive playout (jitter) buffer for one received audio stream, sans-I/O.

Time is passed in (``now``, seconds on the worker's monotonic clock); nothing here sleeps
or reads a clock, so the whole behaviour is testable with simulated packet streams.

Model (RFC 3550 section 6.4.1 and appendix A.8 vocabulary):

* Each accepted packet has a *relative transit* ``r = arrival - timestamp / clock_rate``.
  A slowly smoothed mean of ``r`` (``reference``) maps the sender's timestamps onto our
  clock; it follows clock drift between the sender and our mixer, since a sender whose
  clock runs fast makes ``r`` decrease steadily.
* The interarrival jitter ``J`` is estimated as in A.8 (mean deviation of successive
  transit differences, gain 1/16). The target playout delay is
  ``clamp(2.5 J + frame, min_delay, max_delay)``; it follows a rise at once and a fall
  slowly (time constant about 10 s), so the delay is added fast when the network gets
  worse and removed without audible skipping.
* A packet with timestamp ``ts`` is due at ``ts / clock_rate + reference + target``. At
  each mixer tick :meth:`JitterBuffer.pop` looks at the next packet in sequence order and
  its lateness ``a = now - due``: ``|a| <= 15 ms`` plays it; ``a < -15 ms`` means we are
  early (a slow sender, a raised target, the start of a talk spurt), so a filler frame is
  inserted; ``a > 15 ms`` means the packet's slot has passed (a fast sender, a lowered
  target, a network stall), so it is skipped when the next packet is already there.
  Drift of a few per mille therefore costs one skipped or repeated frame every few
  seconds, and the delay stays at the target for the life of the call.
* Missing packets are declared lost only once a later packet is buffered and the slot is
  due; the playout then offers the next packet's payload for in-band FEC. While nothing is
  buffered (loss burst, DTX, end of talk spurt) the sequence cursor does not move, so a
  talk spurt after silence suppression resumes where its timestamps say (RFC 3551 4.1).
* Fillers are ``CONCEAL`` for up to ``conceal_limit`` (100 ms) after real audio, then
  ``SILENCE``.
* Duplicates (by extended sequence number) and late packets (their slot has already been
  played or concealed) are dropped and counted. A new SSRC, a sequence number jump of more
  than 1000, or a timestamp jump (the transit changes by far more than the jitter while the
  timestamp does not follow the sequence number), or three packets in a row, in sequence,
  behind the playout (a source that restarted its numbering) restarts the buffer at the
  target delay.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Arrival", "JitterBuffer", "JitterStats", "Playout", "PlayoutKind"]

FRAME_DURATION = 0.02
HYSTERESIS = 0.015
"""Half-width of the on-time window around a packet's due time (seconds)."""
JITTER_FACTOR = 2.5
TARGET_DECAY = 1 / 500
"""Per-packet gain of a falling target delay (500 packets: about 10 s)."""
REFERENCE_GAIN = 1 / 32
REFERENCE_CLIP = 0.2
"""A single packet moves the transit reference by at most this much / 32 (stalls)."""
SEQ_JUMP = 1000
TS_JUMP_MIN = 0.1
CAPACITY = 64
SEEN = 256


class PlayoutKind(enum.Enum):
    AUDIO = "audio"  # decode ``payload``
    LOST = "lost"  # a lost packet's slot: FEC from ``payload`` (the next packet) or conceal
    CONCEAL = "conceal"  # filler shortly after audio: the codec's loss concealment
    SILENCE = "silence"  # nothing to play


class Arrival(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    RESYNC = "resync"  # accepted as the first packet of a new timeline
    IGNORED = "ignored"  # a no-audio packet that belongs to no current timeline


@dataclass(frozen=True, slots=True)
class Playout:
    """What to play for one slot. For ``LOST``, ``payload`` is the next packet's (for
    ``decode_fec``) or empty when it is not buffered yet."""

    kind: PlayoutKind
    payload: bytes = b""


_SILENCE = Playout(PlayoutKind.SILENCE)
_CONCEAL = Playout(PlayoutKind.CONCEAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class JitterStats:
    """Counters since the buffer was created (not reset by a resync)."""

    accepted: int
    duplicates: int
    late: int
    played: int
    lost: int
    concealed: int
    silence: int
    skipped: int
    resyncs: int
    jitter: float
    target_delay: float


@dataclass(slots=True)
class _Entry:
    timestamp: int  # extended
    payload: bytes | None  # None: a packet that carries no audio (CN, telephone-event)


def _unwrap(value: int, reference: int, bits: int) -> int:
    """The extended value nearest to ``reference`` whose low ``bits`` are ``value``."""
    half = 1 << (bits - 1)
    return reference + ((value - reference + half) % (1 << bits)) - half


class JitterBuffer:
    """Playout buffer of one stream; ``put`` on arrival, ``pop`` once per frame slot."""

    def __init__(
        self,
        *,
        clock_rate: int,
        frame_duration: float = FRAME_DURATION,
        min_delay: float = 0.02,
        max_delay: float = 0.2,
        conceal_limit: float = 0.1,
    ) -> None:
        if clock_rate <= 0 or not 0 < min_delay <= max_delay:
            raise ValueError("bad jitter buffer parameters")
        self.clock_rate = clock_rate
        self.frame_duration = frame_duration
        self.min_delay = min_delay
        self.max_delay = max_delay
        self._conceal_frames = round(conceal_limit / frame_duration)
        self._step = round(clock_rate * frame_duration)
        self._last_delta: int | None = None
        self._late_run: tuple[int, int] | None = None  # (next sequence number, count)
        self._packets: dict[int, _Entry] = {}
        self._seen: set[int] = set()
        self._ssrc: int | None = None
        self._cursor: int | None = None  # extended sequence number of the next slot
        self._high_seq = 0  # extended highest sequence number (unwrapping reference)
        self._high_ts = 0  # extended timestamp of that packet
        self._last_transit = 0.0
        self._played_since_start = False
        self.reference = 0.0
        self.jitter = 0.0
        self.target_delay = min_delay
        self._fillers = self._conceal_frames + 1  # start in silence
        self._accepted = self._duplicates = self._late = self._played = self._lost = 0
        self._concealed = self._silence = self._skipped = self._resyncs = 0

    # ------------------------------------------------------------------ arrival
    def put(
        self, *, ssrc: int, sequence_number: int, timestamp: int, payload: bytes | None,
        now: float,
    ) -> Arrival:
        """Buffer one RTP packet. ``payload`` None marks a packet of the same sequence
        space that carries no audio (comfort noise, telephone-event): its slot is passed
        over without concealment and its timestamp is not used for timing."""
        if ssrc != self._ssrc or self._cursor is None:
            if payload is None:
                return Arrival.IGNORED
            restarted = self._ssrc is not None
            self._ssrc = ssrc
            self._restart(sequence_number, timestamp, payload, now)
            return Arrival.RESYNC if restarted else Arrival.ACCEPTED
        seq = _unwrap(sequence_number, self._high_seq, 16)
        if abs(seq - self._cursor) > SEQ_JUMP:
            if payload is None:
                return Arrival.IGNORED
            self._restart(sequence_number, timestamp, payload, now)
            return Arrival.RESYNC
        if seq in self._packets:
            self._duplicates += 1
            return Arrival.DUPLICATE
        if seq < self._cursor and (self._played_since_start or payload is None):
            # Behind the playout: late or a duplicate, unless the source restarted its
            # numbering with the same SSRC: three arrivals in a row, in sequence, all behind
            # the playout decide (as A.1 does with two after a jump).
            if payload is not None and self._behind_in_sequence(sequence_number):
                self._restart(sequence_number, timestamp, payload, now)
                return Arrival.RESYNC
            if seq in self._seen:
                self._duplicates += 1
                return Arrival.DUPLICATE
            self._seen.add(seq)
            self._late += 1
            return Arrival.LATE
        self._late_run = None
        if payload is not None:
            ts = _unwrap(timestamp, self._high_ts, 32)
            transit = now - ts / self.clock_rate
            seq_delta = seq - self._high_seq
            ts_delta = ts - self._high_ts
            if (
                abs(transit - self._last_transit) > max(TS_JUMP_MIN, 8 * self.jitter)
                and ts_delta != seq_delta * self._step
            ):
                self._restart(sequence_number, timestamp, payload, now)
                return Arrival.RESYNC
            self._timing(transit)
            if seq_delta == 1 and 0 < ts_delta <= self.clock_rate // 10:
                if ts_delta == self._last_delta:
                    self._step = ts_delta  # learn the packet duration when it repeats
                self._last_delta = ts_delta
        else:
            ts = self._high_ts + (seq - self._high_seq) * self._step
        self._cursor = min(self._cursor, seq)  # reordered before playout started
        if seq > self._high_seq:
            self._high_seq, self._high_ts = seq, ts
        self._packets[seq] = _Entry(ts, payload)
        self._seen.add(seq)
        if len(self._seen) > SEEN:
            floor = self._cursor - SEEN // 2
            self._seen = {s for s in self._seen if s >= floor}
        if len(self._packets) > CAPACITY:
            oldest = min(self._packets)
            del self._packets[oldest]
            self._cursor = max(self._cursor, oldest + 1)
            self._skipped += 1
        self._accepted += 1
        return Arrival.ACCEPTED

    def _behind_in_sequence(self, sequence_number: int) -> bool:
        run = self._late_run
        count = run[1] + 1 if run is not None and run[0] == sequence_number else 1
        self._late_run = ((sequence_number + 1) & 0xFFFF, count)
        return count >= 3

    def _restart(self, sequence_number: int, timestamp: int, payload: bytes, now: float,
                 ) -> None:
        if self._cursor is not None:
            self._resyncs += 1
        self._packets.clear()
        self._seen.clear()
        self._cursor = self._high_seq = sequence_number
        self._high_ts = timestamp
        self._last_transit = self.reference = now - timestamp / self.clock_rate
        self._played_since_start = False
        self._last_delta = None
        self._late_run = None
        self._packets[sequence_number] = _Entry(timestamp, payload)
        self._seen.add(sequence_number)
        self._accepted += 1

    def _timing(self, transit: float) -> None:
        """A.8 jitter, the transit reference and the target delay."""
        self.jitter += (abs(transit - self._last_transit) - self.jitter) / 16
        self._last_transit = transit
        error = max(-REFERENCE_CLIP, min(REFERENCE_CLIP, transit - self.reference))
        self.reference += error * REFERENCE_GAIN
        wanted = max(self.min_delay,
                     min(self.max_delay, JITTER_FACTOR * self.jitter + self.frame_duration))
        if wanted > self.target_delay:
            self.target_delay = wanted
        else:
            self.target_delay += (wanted - self.target_delay) * TARGET_DECAY

    # ------------------------------------------------------------------ playout
    def lateness(self, timestamp: int, now: float) -> float:
        """How late (positive) or early (negative) playing ``timestamp`` now would be."""
        return now - (timestamp / self.clock_rate + self.reference + self.target_delay)

    def pop(self, now: float) -> Playout:
        """What to play in the slot starting ``now`` (one call per frame slot)."""
        if self._cursor is None:
            return self._filler()
        packets = self._packets
        while True:  # each pass returns or moves the cursor towards the buffered packets
            cursor = self._cursor
            entry = packets.get(cursor)
            if entry is not None:
                if entry.payload is None:  # CN or telephone-event: no slot of its own
                    del packets[cursor]
                    self._cursor = cursor + 1
                    continue
                a = self.lateness(entry.timestamp, now)
                if a < -HYSTERESIS:
                    return self._filler()
                if a > HYSTERESIS and cursor + 1 in packets:
                    del packets[cursor]
                    self._cursor = cursor + 1
                    self._skipped += 1
                    continue
                del packets[cursor]
                self._cursor = cursor + 1
                self._played += 1
                self._fillers = 0
                self._played_since_start = True
                return Playout(PlayoutKind.AUDIO, entry.payload)
            if not packets:
                return self._filler()  # loss burst, DTX or end of talk spurt: wait
            later = min(packets)
            a = self.lateness(packets[later].timestamp - (later - cursor) * self._step, now)
            if a < -HYSTERESIS:
                return self._filler()
            self._cursor = cursor + 1
            self._lost += 1
            self._played_since_start = True
            if a > HYSTERESIS:
                continue  # its slot already went by as a filler
            self._fillers += 1
            if self._fillers > self._conceal_frames:
                self._silence += 1
                return _SILENCE
            self._concealed += 1
            following = packets.get(cursor + 1)
            payload = following.payload if following is not None else None
            return Playout(PlayoutKind.LOST, payload or b"")

    def _filler(self) -> Playout:
        self._fillers += 1
        if self._fillers <= self._conceal_frames:
            self._concealed += 1
            return _CONCEAL
        self._silence += 1
        return _SILENCE

    # ------------------------------------------------------------------ figures
    @property
    def buffered(self) -> int:
        """Packets waiting for playout."""
        return len(self._packets)

    def stats(self) -> JitterStats:
        return JitterStats(
            accepted=self._accepted,
            duplicates=self._duplicates,
            late=self._late,
            played=self._played,
            lost=self._lost,
            concealed=self._concealed,
            silence=self._silence,
            skipped=self._skipped,
            resyncs=self._resyncs,
            jitter=self.jitter,
            target_delay=self.target_delay,
        )
