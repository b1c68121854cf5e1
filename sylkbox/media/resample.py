"""Streaming sample-rate conversion (8k <-> 16k <-> 48k) with libsoxr through ``soxr``.

Every :meth:`Resampler.process` call resamples ``[history | new chunk]`` as one whole signal
with soxr and keeps only the output samples whose filter support lies inside that window. The
stream is thereby delayed by a small constant *lookahead*: an output sample is released once
the input reaches the lookahead past it. soxr's ``MQ`` recipe is used (linear phase, 16-bit
precision, flat to about 0.91 of the lower Nyquist frequency: 3.6 kHz for G.711; images and
aliases more than 100 dB down), through a ``soxr.ResampleStream`` cleared and flushed on each
call, which gives exactly ``soxr.resample``'s output about 15 % faster.

Why not soxr's streaming API as a stream: its constant-rate engine filters in large FFT
blocks and releases output in bursts every 40-100 ms, and its variable-rate engine
(``vr=True``), although steady, holds back a fixed 30 ms going 8k -> 16k and 15 ms going
16k -> 8k (12.5-15 ms between 16k and 48k), whatever the chunk size. That was 45 ms of a
G.711 participant's one-way delay through a 16 kHz room.

The lookahead is derived from soxr's own impulse response when a rate pair is first used: the
shortest one for which the filter taps left out (past the history or beyond the lookahead)
sum to at most one LSB at full scale, so the output equals soxr's one-shot resampling of the
whole stream to within rounding. Measured with soxr 1.1 on the development VM (cost on an
idle core; about 1.6 times as much with both cores busy; a silent window costs 4 microseconds):

==============  =========  ==========================
conversion      delay      cost per 20 ms frame
==============  =========  ==========================
8k -> 16k       9.5 ms     23 microseconds
16k -> 8k       9.25 ms    23 microseconds
16k -> 48k      4.75 ms    27 microseconds
48k -> 16k      4.5 ms     26 microseconds
==============  =========  ==========================

(``LQ``'s filter is a quarter as long but already 8 dB down at 3.4 kHz; ``HQ`` and ``VHQ``
are longer than ``MQ`` for precision int16 audio cannot carry.)

:meth:`Resampler.process` returns exactly ``len(samples) * to_rate / from_rate`` samples
(accumulated over calls, so any chunk size works); the first ``delay`` output samples are
silence. The delay is constant for the life of the stream and consecutive frames join without
clicks. soxr works in float32 and we round ourselves: its int16 output path adds dither,
which would turn digital silence into +-1 noise (and break G.711's exact silence code); a
silent window is not run through soxr at all.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # no py.typed; not in the mypy overrides

__all__ = ["QUALITY", "Resampler", "lookahead"]

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float32]

QUALITY = "MQ"
"""soxr recipe used by every :class:`Resampler`."""

_TOLERANCE = 1.0 / 32768.0
"""Largest sum of the left-out taps' magnitudes (one int16 LSB at full scale)."""


@functools.lru_cache(maxsize=32)
def lookahead(from_rate: int, to_rate: int) -> int:
    """Input samples of filter support needed on each side of an output sample.

    Measured on soxr's impulse response at every phase of the conversion: the smallest ``n``
    such that, for any output sample, the taps more than ``n`` input samples before or after it
    sum (in magnitude) to at most :data:`_TOLERANCE`. The filter is linear phase, so both sides
    are the same up to rounding; the larger is taken.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")
    if from_rate == to_rate:
        return 0
    phases = from_rate // math.gcd(from_rate, to_rate)
    n = from_rate // 10  # 100 ms: longer than any MQ filter between 8 and 48 kHz
    worst = np.zeros(n // 2 + 1)  # worst[d]: sum of taps farther than d input samples
    for phase in range(phases):
        impulse = np.zeros(n, dtype=np.float64)
        centre = n // 2 + phase
        impulse[centre] = 1.0
        response = np.abs(np.asarray(soxr.resample(impulse, from_rate, to_rate, QUALITY)))
        # distance, in input samples, between the impulse and each output sample's instant
        distance = np.abs(centre - np.arange(len(response)) * from_rate / to_rate)
        order = np.ceil(distance).astype(np.int64).clip(0, n // 2)
        per_distance = np.bincount(order, weights=response, minlength=n // 2 + 1)
        # taps strictly farther than d: suffix sums starting at d + 1
        beyond = np.concatenate((np.cumsum(per_distance[::-1])[::-1][1:], [0.0]))
        worst = np.maximum(worst, beyond)
    return int(np.argmax(worst <= _TOLERANCE))


class Resampler:
    """Convert int16 PCM from ``from_rate`` to ``to_rate``; keep one instance per stream."""

    __slots__ = (
        "_base",
        "_buffer",
        "_consumed",
        "_lookahead",
        "_produced",
        "_soxr",
        "_step",
        "delay",
        "from_rate",
        "to_rate",
    )

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._lookahead = lookahead(from_rate, to_rate)
        self.delay = -(-self._lookahead * to_rate // from_rate)
        """Constant delay, in output samples, between the input and the output stream."""
        # The window starts at a multiple of _step input samples, where an output sample
        # falls exactly on an input sample, so window and stream outputs share one grid.
        self._step = from_rate // math.gcd(from_rate, to_rate)
        self._soxr = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality=QUALITY)
        )
        self._buffer: FloatArray = np.zeros(0, dtype=np.float32)
        self._base = 0  # stream index of _buffer[0]
        self._consumed = 0  # input samples given to process()
        self._produced = 0  # output samples returned

    @property
    def passthrough(self) -> bool:
        return self._soxr is None

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample one chunk; output length is ``len(samples) * to_rate / from_rate``
        (exactly, accumulated over calls)."""
        if self._soxr is None:
            return samples
        from_rate, to_rate = self.from_rate, self.to_rate
        chunk = np.asarray(samples, dtype=np.float32)
        buffer = np.concatenate((self._buffer, chunk)) if len(self._buffer) else chunk
        self._consumed += len(samples)
        end = self._consumed * to_rate // from_rate
        start, self._produced = self._produced, end
        # Stream output k is soxr's output k - delay; those before the stream are silence.
        first, last = start - self.delay, end - self.delay
        result = np.zeros(end - start, dtype=np.int16)
        if last > 0 and buffer.any():
            offset = self._base * to_rate // from_rate  # stream index of the window's output 0
            lo = max(first, 0)
            self._soxr.clear()
            out = self._soxr.resample_chunk(buffer, last=True)
            window = out[lo - offset : last - offset]
            result[lo - first :] = np.rint(window).clip(-32768, 32767)
        # Keep the history the next call's first output needs.
        keep_from = (last * from_rate) // to_rate - self._lookahead - 1
        keep_from -= keep_from % self._step
        if keep_from > self._base:
            buffer = buffer[keep_from - self._base :]
            self._base = keep_from
        self._buffer = buffer
        return result
