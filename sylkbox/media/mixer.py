"""Per-room mix-minus on one 20 ms frame, with numpy vector operations only.

The frames of all active talkers are summed once (int32, no overflow for up to 65536
talkers); every talker then receives ``sum - own`` and every silent listener the plain sum,
each clipped to int16. The cost is linear in the number of participants: one stack, one
sum, one subtraction and one clip over a (talkers x samples) array.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["RoomMixer"]

K = TypeVar("K", bound=Hashable)
Int16Array = npt.NDArray[np.int16]


class RoomMixer:
    """Mix-minus for one room at ``rate`` Hz with frames of ``frame_samples`` samples."""

    def __init__(self, rate: int = 16000, ptime: float = 0.02) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.frame_samples = round(rate * ptime)
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)

    @property
    def silence(self) -> Int16Array:
        """A shared all-zero frame (do not modify)."""
        return self._silence

    def mix(self, talkers: Mapping[K, Int16Array], listeners: Iterable[K]) -> dict[K, Int16Array]:
        """Return the frame each listener hears.

        ``talkers`` maps a participant to its decoded frame for this tick (exactly
        ``frame_samples`` int16 samples); participants without audio this tick, muted or
        held, are simply absent. Listeners that are not talkers share one array object
        (the full mix): treat every returned frame as read-only.
        """
        keys = list(talkers)
        if not keys:
            return dict.fromkeys(listeners, self._silence)
        stacked = np.stack([talkers[k] for k in keys]).astype(np.int32)
        total = stacked.sum(axis=0, dtype=np.int32)
        full_mix = np.clip(total, -32768, 32767).astype(np.int16)
        minus = np.clip(total - stacked, -32768, 32767).astype(np.int16)
        own_rows = {k: i for i, k in enumerate(keys)}
        result: dict[K, Int16Array] = {}
        for listener in listeners:
            row = own_rows.get(listener)
            result[listener] = full_mix if row is None else minus[row]
        return result
