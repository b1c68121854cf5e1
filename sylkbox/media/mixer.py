"""Per-room mix-minus on one 20 ms frame, with voice activity detection, numpy only.

Every tick the worker hands the mixer the decoded frame of each stream that may be heard
(sendrecv, not muted). A cheap energy detector with hangover (:class:`VoiceActivity`)
decides which of them are *talkers*: only talkers are summed. The sum is computed once
(int32, no overflow for up to 65536 talkers); every talker then receives ``sum - own`` and
every other listener the plain sum, each clipped to int16. Streams below the threshold are
not summed at all, so a silent listener's full mix is exactly its mix-minus, and all
silent listeners share one frame object, which the worker encodes once per codec. The cost
is linear in the number of participants: one energy measurement per stream, one sum over
the talkers, one subtraction and one clip per talker.

A room-wide ``overlay`` (join tone, music while alone) is added to the sum before clipping,
so talkers and listeners alike hear it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["Mix", "RoomMixer", "VadParams", "VoiceActivity"]

K = TypeVar("K", bound=Hashable)
Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True, kw_only=True)
class VadParams:
    """Energy voice activity detection: a frame whose mean power is above ``threshold_dbfs``
    (relative to a full-scale square wave) starts or extends a talk spurt, which lasts
    ``hangover_frames`` frames after the last loud one (soft word endings, short pauses)."""

    threshold_dbfs: float = -50.0
    hangover_frames: int = 20

    def __post_init__(self) -> None:
        if not -120.0 <= self.threshold_dbfs <= 0.0:
            raise ValueError("threshold_dbfs must be within -120..0")
        if self.hangover_frames < 0:
            raise ValueError("hangover_frames must not be negative")

    @property
    def power_threshold(self) -> float:
        """Mean square (int16 units) at the threshold."""
        return float(32768.0**2 * 10 ** (self.threshold_dbfs / 10))


class VoiceActivity(Generic[K]):
    """Talk-spurt state per key; ``update`` takes all of one tick's frames at once."""

    def __init__(self, params: VadParams | None = None) -> None:
        self.params = params or VadParams()
        self._threshold = self.params.power_threshold
        self._hang: dict[K, int] = {}

    def update(self, keys: list[K], stacked: Int16Array) -> list[bool]:
        """Activity of each row of ``stacked`` (one frame per key, in ``keys`` order)."""
        if not keys:
            return []
        f = stacked.astype(np.float32)
        power = np.einsum("ij,ij->i", f, f) / stacked.shape[1]
        loud = (power > self._threshold).tolist()
        hang = self._hang
        hangover = self.params.hangover_frames
        active: list[bool] = []
        for key, is_loud in zip(keys, loud, strict=True):
            if is_loud:
                hang[key] = hangover + 1
                active.append(True)
            else:
                left = hang.get(key, 0) - 1
                if left > 0:
                    hang[key] = left
                    active.append(True)
                else:
                    hang.pop(key, None)
                    active.append(False)
        return active

    def is_active(self, key: K) -> bool:
        return key in self._hang

    def forget(self, key: K) -> None:
        self._hang.pop(key, None)


@dataclass(frozen=True, slots=True)
class Mix(Generic[K]):
    """One tick's result: ``full`` for every listener that is not a talker (one shared,
    read-only array), ``minus`` the own mix-minus of each talker that listens."""

    full: Int16Array
    minus: Mapping[K, Int16Array]
    talkers: frozenset[K]

    def for_listener(self, key: K) -> Int16Array:
        return self.minus.get(key, self.full)

    def is_shared(self, key: K) -> bool:
        """Whether ``key`` hears the shared full mix (and can share its encoded payload)."""
        return key not in self.minus

    def frames(self, listeners: Iterable[K]) -> dict[K, Int16Array]:
        minus, full = self.minus, self.full
        return {k: minus.get(k, full) for k in listeners}


class RoomMixer(Generic[K]):
    """Mix-minus for one room at ``rate`` Hz with frames of ``frame_samples`` samples."""

    def __init__(
        self, rate: int = 16000, ptime: float = 0.02, vad: VadParams | None = None
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.frame_samples = round(rate * ptime)
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        self._silence.flags.writeable = False
        self.vad: VoiceActivity[K] = VoiceActivity(vad)

    @property
    def silence(self) -> Int16Array:
        """A shared all-zero frame (read-only)."""
        return self._silence

    def forget(self, key: K) -> None:
        """Drop the VAD state of a stream that left the room."""
        self.vad.forget(key)

    def mix(
        self,
        frames: Mapping[K, Int16Array],
        listeners: Iterable[K],
        *,
        overlay: Int16Array | None = None,
    ) -> Mix[K]:
        """Mix one tick.

        ``frames`` maps each stream that may be heard to its decoded frame (exactly
        ``frame_samples`` int16 samples); streams without audio this tick, muted or held,
        are simply absent. Only those the VAD finds active are summed. ``overlay`` is
        added for everyone. Every returned frame is read-only.
        """
        keys = list(frames)
        talkers: list[K] = []
        rows: Int16Array | None = None
        if keys:
            stacked = np.stack([frames[k] for k in keys])
            active = self.vad.update(keys, stacked)
            if all(active):
                talkers, rows = keys, stacked
            elif any(active):
                index = [i for i, a in enumerate(active) if a]
                talkers = [keys[i] for i in index]
                rows = stacked[index]
        if rows is None:
            if overlay is None:
                return Mix(self._silence, {}, frozenset())
            full = np.array(overlay, dtype=np.int16)
            full.flags.writeable = False
            return Mix(full, {}, frozenset())
        wide = rows.astype(np.int32)
        total = wide.sum(axis=0, dtype=np.int32)
        if overlay is not None:
            total += overlay
        full = np.clip(total, -32768, 32767).astype(np.int16)
        full.flags.writeable = False
        wanted = set(listeners)
        minus: dict[K, Int16Array] = {}
        listening = [i for i, k in enumerate(talkers) if k in wanted]
        if listening:
            own = wide if len(listening) == len(talkers) else wide[listening]
            minus_rows = np.clip(total - own, -32768, 32767).astype(np.int16)
            minus_rows.flags.writeable = False
            for row, i in enumerate(listening):
                minus[talkers[i]] = minus_rows[row]
        return Mix(full, minus, frozenset(talkers))
