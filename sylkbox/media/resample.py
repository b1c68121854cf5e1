"""Streaming sample-rate conversion by a rational factor (8k <-> 16k <-> 48k).

A windowed-sinc (Kaiser) low-pass FIR applied to the zero-stuffed signal, evaluated only at
the output instants (``up``/``down`` polyphase by strided windows), with the filter history
carried across calls so consecutive 20 ms frames join without clicks. Simple and correct;
a later change swaps the internals for soxr behind the same ``Resampler`` interface.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Resampler"]

Int16Array = npt.NDArray[np.int16]

_TAPS_PER_RATIO = 48
_KAISER_BETA = 8.0
_PASSBAND = 0.9  # cutoff as a fraction of the lower Nyquist frequency


class Resampler:
    """Convert int16 PCM from ``from_rate`` to ``to_rate``; keep one instance per stream."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.from_rate = from_rate
        self.to_rate = to_rate
        g = gcd(from_rate, to_rate)
        self._up = to_rate // g
        self._down = from_rate // g
        ratio = max(self._up, self._down)
        taps = _TAPS_PER_RATIO * ratio + 1
        # Cutoff relative to the zero-stuffed rate from_rate * up (cycles per sample).
        cutoff = _PASSBAND * 0.5 / ratio
        n = np.arange(taps) - (taps - 1) / 2
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, _KAISER_BETA)
        h *= self._up / h.sum()  # unity DC gain after zero stuffing
        self._h_rev = np.ascontiguousarray(h[::-1])
        self._history = np.zeros(taps - 1)
        self._next = taps - 1  # index in the working buffer of the next output instant

    @property
    def passthrough(self) -> bool:
        return self._up == self._down

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample one chunk; output length is ``len(samples) * to_rate / from_rate``
        (exactly, whenever the chunk length is a multiple of ``from_rate / gcd``)."""
        if self.passthrough:
            return samples
        up = self._up
        stuffed = np.zeros(len(samples) * up)
        stuffed[::up] = samples
        buf = np.concatenate((self._history, stuffed))
        taps = len(self._h_rev)
        first = self._next - (taps - 1)
        windows = sliding_window_view(buf, taps)[first :: self._down]
        out = windows @ self._h_rev
        self._next += len(out) * self._down - len(stuffed)
        self._history = buf[len(buf) - (taps - 1) :]
        result: Int16Array = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
        return result
