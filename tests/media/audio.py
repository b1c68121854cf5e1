"""Tone generation and spectral checks shared by the media tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def tone(freq: float, rate: int, samples: int, *, amplitude: float = 6000.0,
         start: int = 0) -> npt.NDArray[np.int16]:
    """A sine tone; ``start`` is the index of the first sample (for continuous frames)."""
    t = (np.arange(samples) + start) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def band_level(samples: npt.NDArray[np.int16], rate: int, freq: float, width: float = 30.0,
               ) -> float:
    """Amplitude spectrum magnitude (Hann window) summed within ``width`` Hz of ``freq``."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) / len(x)
    bins = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(bins - freq) <= width].sum())
