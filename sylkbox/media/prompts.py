"""Room prompts: generated tones, a synthetic music loop, espeak-ng speech, and playout.

* Speech (``alone``: "You are the only participant") is synthesised once with espeak-ng by
  :func:`ensure_prompts` at first start into ``<data_dir>/prompts/`` as 16-bit mono WAV,
  peak-normalised. A ``manifest.json`` records the espeak-ng version and the texts; the
  files are regenerated when one is missing or either changed. Without espeak-ng the box
  runs without speech (logged once per start, never fatal).
* Tones (``join``: a soft two-tone chime; ``muted``/``unmuted``: falling and rising
  confirmations) and the ``music`` loop (soft sine chords under a smooth envelope, nothing
  recorded) are generated with numpy directly at the room rate.
* :class:`PromptLibrary` (in the media worker) loads the WAV files once, resamples each
  prompt to a room rate with :class:`~sylkbox.media.resample.Resampler` on first use and
  caches it; the mixer tick only slices pre-decoded arrays through :class:`Playout`
  cursors, so playout never blocks the 20 ms clock.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sylkbox.media.resample import Resampler

__all__ = [
    "SPEECH",
    "TONES",
    "Playout",
    "PromptLibrary",
    "chime",
    "ensure_prompts",
    "espeak_version",
    "music_loop",
    "read_wav",
    "write_wav",
]

logger = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]

SPEECH: Mapping[str, str] = {"alone": "You are the only participant in this conference."}
"""Spoken prompts: name -> text given to espeak-ng."""

TONES = ("join", "muted", "unmuted")
"""Generated tone prompts."""

MANIFEST = "manifest.json"
SPEECH_PEAK = 0.5
"""Peak level of normalised speech (fraction of full scale, -6 dBFS)."""


# ------------------------------------------------------------------------------ synthesis
def _fade(n: int, rate: int, seconds: float) -> FloatArray:
    """Raised-cosine fade in and out over ``seconds`` (no clicks)."""
    env = np.ones(n)
    k = min(n // 2, max(1, round(rate * seconds)))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
    env[:k] = ramp
    env[n - k :] = ramp[::-1]
    return env


def chime(rate: int, notes: tuple[tuple[float, float], ...], *, level: float = 0.2,
          gap: float = 0.03) -> Int16Array:
    """Notes ``(frequency Hz, seconds)`` in sequence, each a sine with a soft octave
    partial and a raised-cosine envelope; ``level`` is the peak as a fraction of full scale."""
    parts: list[FloatArray] = []
    for freq, seconds in notes:
        n = round(rate * seconds)
        t = np.arange(n) / rate
        wave_ = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
        decay = np.exp(-t * 3.0)
        parts.append(wave_ * decay * _fade(n, rate, 0.01) / 1.25)
        parts.append(np.zeros(round(rate * gap)))
    signal = np.concatenate(parts) * level * 32767
    return np.rint(signal).astype(np.int16)


def tone_prompt(name: str, rate: int) -> Int16Array:
    """The generated tone prompt ``name`` (one of :data:`TONES`) at ``rate``."""
    if name == "join":
        return chime(rate, ((660.0, 0.14), (990.0, 0.22)))
    if name == "muted":
        return chime(rate, ((880.0, 0.1), (587.0, 0.16)), level=0.18)
    if name == "unmuted":
        return chime(rate, ((587.0, 0.1), (880.0, 0.16)), level=0.18)
    raise KeyError(name)


_CHORDS = (
    (261.63, 329.63, 392.00, 493.88),  # Cmaj7
    (220.00, 261.63, 329.63, 392.00),  # Am7
    (174.61, 220.00, 261.63, 329.63),  # Fmaj7
    (196.00, 246.94, 293.66, 392.00),  # G
)


def music_loop(rate: int, *, chord_seconds: float = 2.4, level: float = 0.08) -> Int16Array:
    """A gentle synthetic loop: four soft sine chords, each swelling in and out, so the end
    joins the start without a click. ``level`` is the peak (fraction of full scale)."""
    n = round(rate * chord_seconds)
    t = np.arange(n) / rate
    # Slow attack, long release: sin^2 over the chord, slightly front-weighted.
    env = np.sin(np.pi * np.arange(n) / n) ** 2 * np.exp(-t * 0.4)
    parts: list[FloatArray] = []
    for chord in _CHORDS:
        acc = np.zeros(n)
        for i, freq in enumerate(chord):
            vibrato = 0.002 * np.sin(2 * np.pi * (0.3 + 0.1 * i) * t)
            phase = 2 * np.pi * freq * t * (1 + vibrato)
            acc += np.sin(phase) + 0.15 * np.sin(2 * phase)
        parts.append(acc * env)
    signal = np.concatenate(parts)
    signal *= level * 32767 / max(1e-9, float(np.abs(signal).max()))
    return np.rint(signal).astype(np.int16)


# ----------------------------------------------------------------------------------- WAV
def read_wav(path: Path) -> tuple[Int16Array, int]:
    """A 16-bit PCM WAV as mono int16 samples and its rate (channels are averaged)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: not 16-bit PCM")
        channels, rate = w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data.astype(np.int16), rate


def write_wav(path: Path, samples: Int16Array, rate: int) -> None:
    """Write mono 16-bit PCM atomically (temporary file, then rename)."""
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    tmp.replace(path)


# ------------------------------------------------------------------------------ espeak-ng
def espeak_version(espeak: str = "espeak-ng") -> str | None:
    """``espeak-ng --version`` output, or None when it is not installed or fails."""
    exe = shutil.which(espeak)
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10,
                              check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def ensure_prompts(directory: Path, *, espeak: str = "espeak-ng", voice: str = "en") -> Path:
    """Generate the spoken prompts into ``directory`` unless they are already there for
    this espeak-ng version and these texts; returns ``directory``. Blocking (runs
    espeak-ng): call it at start-up, before the media worker, or in a thread."""
    directory.mkdir(parents=True, exist_ok=True)
    version = espeak_version(espeak)
    if version is None:
        logger.warning("espeak-ng not available: running without spoken prompts")
        return directory
    manifest = {"espeak": version, "voice": voice, "speech": dict(SPEECH)}
    manifest_path = directory / MANIFEST
    try:
        current = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        current = None
    missing = [name for name in SPEECH if not (directory / f"{name}.wav").is_file()]
    if current == manifest and not missing:
        logger.debug("prompts in %s are up to date", directory)
        return directory
    exe = shutil.which(espeak) or espeak
    for name, text in SPEECH.items():
        target = directory / f"{name}.wav"
        raw = directory / f"{name}.espeak.wav"
        try:
            subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(raw), text],
                           capture_output=True, timeout=30, check=True)
            samples, rate = read_wav(raw)
        except (OSError, subprocess.SubprocessError, ValueError, EOFError, wave.Error) as exc:
            logger.warning("espeak-ng failed for prompt %r: %s", name, exc)
            continue
        finally:
            raw.unlink(missing_ok=True)
        peak = int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0
        if peak == 0:
            logger.warning("espeak-ng produced silence for prompt %r", name)
            continue
        scaled = np.rint(samples.astype(np.float64) * (SPEECH_PEAK * 32767 / peak))
        write_wav(target, scaled.astype(np.int16), rate)
        logger.info("generated prompt %s (%.1f s at %d Hz)", target, len(samples) / rate, rate)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return directory


# -------------------------------------------------------------------------------- library
def _resample_whole(samples: Int16Array, from_rate: int, to_rate: int) -> Int16Array:
    """One-shot conversion of a whole prompt (the filter tail is flushed with zeros)."""
    if from_rate == to_rate:
        return samples
    resampler = Resampler(from_rate, to_rate)
    pad = np.zeros(from_rate // 10, dtype=np.int16)  # 100 ms flushes any filter delay
    out = resampler.process(np.concatenate((samples, pad)))
    return out[: round(len(samples) * to_rate / from_rate) + to_rate // 20]


@dataclass(slots=True)
class PromptLibrary:
    """Prompts by name at any room rate; build it outside the mixer tick."""

    directory: Path | None = None
    _speech: dict[str, tuple[Int16Array, int]] = field(default_factory=dict)
    _cache: dict[tuple[str, int], Int16Array] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.directory is None:
            return
        for name in SPEECH:
            path = self.directory / f"{name}.wav"
            if not path.is_file():
                logger.info("no spoken prompt %s: it will not be played", path)
                continue
            try:
                self._speech[name] = read_wav(path)
            except (OSError, ValueError, EOFError, wave.Error) as exc:
                logger.warning("cannot read prompt %s: %s", path, exc)

    def names(self) -> set[str]:
        return {*TONES, "music", *self._speech}

    def get(self, name: str, rate: int) -> Int16Array | None:
        """The prompt at ``rate`` (read-only array), or None when it is not available."""
        key = (name, rate)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        samples: Int16Array
        if name in TONES:
            samples = tone_prompt(name, rate)
        elif name == "music":
            samples = music_loop(rate)
        elif name in self._speech:
            raw, raw_rate = self._speech[name]
            samples = _resample_whole(raw, raw_rate, rate)
        else:
            return None
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        samples.flags.writeable = False
        self._cache[key] = samples
        return samples


class Playout:
    """A cursor over one pre-decoded prompt; ``next_frame`` returns successive frames
    (the last one zero-padded), then None. With ``loop`` it wraps around for ever."""

    __slots__ = ("_cursor", "_loop", "_samples", "name")

    def __init__(self, name: str, samples: Int16Array, *, loop: bool = False) -> None:
        if not len(samples):
            raise ValueError("empty prompt")
        self.name = name
        self._samples = samples
        self._loop = loop
        self._cursor = 0

    @property
    def done(self) -> bool:
        return not self._loop and self._cursor >= len(self._samples)

    def next_frame(self, n: int) -> Int16Array | None:
        samples, start = self._samples, self._cursor
        size = len(samples)
        if start >= size:
            if not self._loop:
                return None
            start = 0
        end = start + n
        if end <= size:
            self._cursor = end
            return samples[start:end]
        frame = np.zeros(n, dtype=np.int16)
        first = size - start
        frame[:first] = samples[start:]
        if self._loop:
            rest = n - first
            while rest > 0:  # loops shorter than a frame are not expected, but stay correct
                take = min(rest, size)
                frame[n - rest : n - rest + take] = samples[:take]
                rest -= take
            self._cursor = take
        else:
            self._cursor = size
        return frame
