"""Streaming sample-rate conversion by a rational factor (8k <-> 16k <-> 48k).

A windowed-sinc (Kaiser) low-pass FIR applied to the zero-stuffed signal, evaluated only at
the output instants (polyphase upsampling, then decimation), with the filter history
carried across calls so consecutive 20 ms frames join without clicks. Simple and correct;
a later change swaps the internals for soxr behind the same ``Resampler`` interface.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt

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
        self._up = up = to_rate // g
        self._down = from_rate // g
        ratio = max(up, self._down)
        per_phase = _TAPS_PER_RATIO * ratio // up + 1
        taps = per_phase * up
        # Cutoff relative to the zero-stuffed rate from_rate * up (cycles per sample).
        cutoff = _PASSBAND * 0.5 / ratio
        n = np.arange(taps) - (taps - 1) / 2
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, _KAISER_BETA)
        h *= up / h.sum()  # unity DC gain after zero stuffing
        # Polyphase: output phase p of the upsampled signal only needs h[p::up].
        self._phases: list[npt.NDArray[np.float64]] = [
            np.ascontiguousarray(h[p::up]) for p in range(up)
        ]
        self._history: npt.NDArray[np.float64] = np.zeros(per_phase - 1)
        self._next = 0  # index, in this chunk's upsampled signal, of the next output sample

    @property
    def passthrough(self) -> bool:
        return self._up == self._down

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample one chunk; output length is ``len(samples) * to_rate / from_rate``
        (exactly, whenever the chunk length is a multiple of ``from_rate / gcd``)."""
        if self.passthrough:
            return samples
        buf = np.concatenate((self._history, samples.astype(np.float64)))
        self._history = buf[len(samples) :]
        upsampled: npt.NDArray[np.float64]
        if self._up == 1:
            upsampled = np.convolve(buf, self._phases[0], "valid")
        else:
            upsampled = np.empty(len(samples) * self._up)
            for p, phase in enumerate(self._phases):
                upsampled[p :: self._up] = np.convolve(buf, phase, "valid")
        out = upsampled[self._next :: self._down]
        self._next += len(out) * self._down - len(upsampled)
        result: Int16Array = np.rint(out).clip(-32768, 32767).astype(np.int16)
        return result
