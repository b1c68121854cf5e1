"""Test audio material: sine WAVs and FFT tone analysis of recordings.

Recordings made by pjsua2 (or any peer) are 16-bit mono WAVs; the analysis reads the rate from
the file, so 8 kHz and 16 kHz material mix freely.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "level_db",
    "read_wav",
    "rms_dbfs",
    "tone_power",
    "write_sine",
]

FloatArray = npt.NDArray[np.float64]

#: Half-width in Hz of the band that counts as "the tone" (Hann main lobe plus clock drift).
TONE_HALF_WIDTH = 20.0


def write_sine(
    path: Path,
    freq: float,
    seconds: float,
    *,
    rate: int = 8000,
    amplitude: float = 0.25,
) -> Path:
    """Write a mono 16-bit sine WAV of `freq` Hz lasting `seconds` at `rate` Hz."""
    if not 0 < freq < rate / 2:
        raise ValueError(f"{freq} Hz is not below Nyquist for {rate} Hz")
    if not 0 < amplitude <= 1:
        raise ValueError("amplitude must be in (0, 1]")
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    pcm = np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: Path) -> tuple[FloatArray, int]:
    """Samples of a 16-bit WAV as floats in [-1, 1] (first channel) and the sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit samples, got {8 * w.getsampwidth()}-bit")
        channels = w.getnchannels()
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2")[::channels]
    return pcm.astype(np.float64) / 32768.0, rate


def _segment(path: Path, skip: float, duration: float | None) -> tuple[FloatArray, int]:
    samples, rate = read_wav(path)
    start = max(0, round(skip * rate))
    end = len(samples) if duration is None else min(len(samples), start + round(duration * rate))
    segment = samples[start:end]
    if len(segment) < rate // 4:
        raise ValueError(
            f"{path}: only {len(segment)} samples left after skipping {skip}s "
            f"({len(samples) / rate:.2f}s recorded)"
        )
    return segment, rate


def tone_power(
    path: Path,
    freq: float,
    *,
    skip: float = 1.0,
    duration: float | None = None,
    half_width: float = TONE_HALF_WIDTH,
) -> float:
    """Fraction (0..1) of the segment's energy within `half_width` Hz of `freq`.

    The segment starts `skip` seconds into the file (default: skip the first second, where
    jitter buffers fill) and lasts `duration` seconds (default: to the end). DC is excluded from
    the total. A silent segment returns 0.
    """
    segment, rate = _segment(path, skip, duration)
    segment = segment - segment.mean()
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
    freqs = np.fft.rfftfreq(len(segment), 1.0 / rate)
    total = float(spectrum[1:].sum())
    if total <= 0.0:
        return 0.0
    band = (freqs >= freq - half_width) & (freqs <= freq + half_width)
    return float(spectrum[band].sum()) / total


def level_db(fraction: float) -> float:
    """A `tone_power` fraction in dB relative to the total energy (-inf dB floored at -200)."""
    return 10.0 * math.log10(fraction) if fraction > 1e-20 else -200.0


def rms_dbfs(path: Path, *, skip: float = 1.0, duration: float | None = None) -> float:
    """RMS level of the segment in dB relative to full scale (a full-scale sine is -3 dBFS)."""
    segment, _ = _segment(path, skip, duration)
    rms = float(np.sqrt(np.mean(segment**2)))
    return 20.0 * math.log10(rms) if rms > 1e-10 else -200.0
