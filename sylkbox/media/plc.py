"""Packet loss concealment for codecs without their own (G.711, G.722).

The algorithm is a simplified form of ITU-T G.711 Appendix I (pitch waveform substitution):

1. The decoder feeds every good frame to :meth:`Concealer.good`; the last ``HISTORY`` seconds
   are kept.
2. On the first lost frame the pitch period is estimated by normalised autocorrelation of the
   history (lags 2.5-15 ms, i.e. 66-400 Hz voices). When the history is not periodic
   (correlation below ``VOICING_THRESHOLD``) the "period" is the whole history, which makes the
   substitution a plain repeat of the last audio.
3. Concealment audio continues the last period cyclically, *in phase* with the end of the
   history, so there is no discontinuity at the start of the loss.
4. A linear gain ramp from 1 to 0 over ``FADE_DURATION`` (60 ms, three 20 ms frames) is applied
   across consecutive lost frames; after that, silence. A long repetition of one period sounds
   buzzy, which is why G.711 Appendix I also attenuates and then mutes.
5. When good audio resumes after a loss, its first ``CROSSFADE_DURATION`` is cross-faded with
   the continuation of the substitution, so the join does not click.

State is per stream; every method works on one whole frame at the codec's sample rate.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["CROSSFADE_DURATION", "FADE_DURATION", "Concealer"]

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]

FADE_DURATION = 0.06
"""Seconds from the start of a loss until the substitution reaches silence."""
CROSSFADE_DURATION = 0.004
"""Seconds of overlap between the substitution and the first good frame after a loss."""
HISTORY = 0.03
MIN_PITCH = 0.0025
MAX_PITCH = 0.015
VOICING_THRESHOLD = 0.5


class Concealer:
    """Loss concealment state for one stream at ``sample_rate``, ``frame_samples`` per frame."""

    __slots__ = ("_history", "_lost", "_period", "_phase", "frame_samples", "sample_rate")

    def __init__(self, sample_rate: int, frame_samples: int) -> None:
        if sample_rate <= 0 or frame_samples <= 0:
            raise ValueError("sample rate and frame size must be positive")
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self._history: FloatArray = np.zeros(0)
        self._lost = 0  # samples concealed in the current loss
        self._period: FloatArray = np.zeros(0)
        self._phase = 0  # index in _period of the next substituted sample

    @property
    def concealing(self) -> bool:
        """Whether the last frame produced was a substitution."""
        return self._lost > 0

    def good(self, pcm: Int16Array) -> Int16Array:
        """Record decoded audio; returns it, cross-faded with the substitution after a loss."""
        out = pcm
        if self._lost and len(self._period) and len(pcm):
            n = min(len(pcm), round(CROSSFADE_DURATION * self.sample_rate))
            tail = self._continue(n) * self._gains(n)
            ramp = np.linspace(0.0, 1.0, n, endpoint=False)
            mixed = pcm.astype(np.float64)
            mixed[:n] = mixed[:n] * ramp + tail * (1.0 - ramp)
            out = np.rint(mixed).clip(-32768, 32767).astype(np.int16)
        self._lost = 0
        keep = round(HISTORY * self.sample_rate)
        self._history = np.concatenate((self._history, out.astype(np.float64)))[-keep:]
        return out

    def conceal(self) -> Int16Array:
        """One frame of substitute audio for a lost frame (silence once faded out)."""
        n = self.frame_samples
        if self._lost == 0:
            self._start()
        if not len(self._period) or self._lost >= FADE_DURATION * self.sample_rate:
            self._lost += n
            return np.zeros(n, dtype=np.int16)
        frame = self._continue(n) * self._gains(n)
        self._lost += n
        result: Int16Array = np.rint(frame).clip(-32768, 32767).astype(np.int16)
        return result

    def _start(self) -> None:
        history = self._history
        if not len(history) or not np.any(history):
            self._period = np.zeros(0)
            return
        period = _pitch_period(history, self.sample_rate)
        self._period = history[-period:]
        self._phase = 0

    def _continue(self, n: int) -> FloatArray:
        """The next ``n`` samples of the cyclic substitution (advances the phase)."""
        size = len(self._period)
        idx = (self._phase + np.arange(n)) % size
        self._phase = (self._phase + n) % size
        return self._period[idx]

    def _gains(self, n: int) -> FloatArray:
        fade = FADE_DURATION * self.sample_rate
        gains: FloatArray = np.clip(1.0 - (self._lost + np.arange(n)) / fade, 0.0, 1.0)
        return gains


def _pitch_period(history: FloatArray, rate: int) -> int:
    """Best pitch lag (samples) of ``history``, or its whole length when it is unvoiced."""
    lo = max(1, round(MIN_PITCH * rate))
    hi = min(round(MAX_PITCH * rate), len(history) // 2)
    if hi <= lo:
        return len(history)
    window = history[-hi:]
    energy = float(np.dot(window, window))
    if energy <= 0.0:
        return len(history)
    size = len(history)
    lags = np.arange(lo, hi + 1)
    # the segment `lag` samples before the window starts at size - hi - lag
    segments = np.lib.stride_tricks.sliding_window_view(history, hi)[size - hi - lags]
    squares = np.concatenate(([0.0], np.cumsum(history * history)))
    starts = size - hi - lags
    norms = np.sqrt(energy * (squares[starts + hi] - squares[starts]))
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(norms > 0.0, (segments @ window) / norms, 0.0)
    best = int(np.argmax(scores))
    return int(lags[best]) if scores[best] > VOICING_THRESHOLD else len(history)
