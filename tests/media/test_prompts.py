"""Prompt generation (espeak-ng), the tone and music generators, the library and playout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sylkbox.media.prompts import (
    MANIFEST,
    Playout,
    PromptLibrary,
    ensure_prompts,
    espeak_version,
    music_loop,
    read_wav,
    tone_prompt,
)
from tests.media.audio import band_level


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_espeak_generates_cached_speech(tmp_path: Path) -> None:
    assert espeak_version() is not None  # installed on this machine (scripts/system-deps.sh)
    directory = ensure_prompts(tmp_path / "prompts")
    wav = directory / "alone.wav"
    samples, rate = read_wav(wav)
    assert rate > 8000 and 1.0 < len(samples) / rate < 6.0
    assert rms(samples) > 1000  # speech, normalised to a -6 dBFS peak
    assert 15000 < int(np.abs(samples.astype(np.int32)).max()) <= 16384
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["espeak"] == espeak_version()
    # second start: nothing regenerated
    stamp = wav.stat().st_mtime_ns
    ensure_prompts(directory)
    assert wav.stat().st_mtime_ns == stamp
    # a changed espeak-ng version (or a missing file) regenerates
    manifest["espeak"] = "eSpeak NG text-to-speech: 0.0"
    (directory / MANIFEST).write_text(json.dumps(manifest))
    ensure_prompts(directory)
    assert json.loads((directory / MANIFEST).read_text())["espeak"] == espeak_version()
    wav.unlink()
    ensure_prompts(directory)
    assert wav.is_file()


def test_missing_espeak_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sylkbox.media.prompts"):
        directory = ensure_prompts(tmp_path / "p", espeak="no-such-espeak-ng-binary")
    assert not (directory / "alone.wav").exists()
    assert sum("without spoken prompts" in r.message for r in caplog.records) == 1
    library = PromptLibrary(directory)
    assert library.get("alone", 16000) is None  # no speech: tone only
    assert library.get("join", 16000) is not None


def test_library_resamples_speech_and_caches(tmp_path: Path) -> None:
    library = PromptLibrary(ensure_prompts(tmp_path / "prompts"))
    raw, raw_rate = read_wav(tmp_path / "prompts" / "alone.wav")
    at16 = library.get("alone", 16000)
    at48 = library.get("alone", 48000)
    assert at16 is not None and at48 is not None
    assert library.get("alone", 16000) is at16  # cached
    assert abs(len(at16) / 16000 - len(raw) / raw_rate) < 0.1
    assert abs(len(at48) / 48000 - len(raw) / raw_rate) < 0.1
    assert rms(at16) > 800 and not at16.flags.writeable
    assert library.get("nonsense", 16000) is None
    assert {"join", "muted", "unmuted", "music", "alone"} <= library.names()


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_join_tone_is_a_two_tone_chime(rate: int) -> None:
    chime = tone_prompt("join", rate)
    assert 0.3 < len(chime) / rate < 0.6
    first, second = chime[: int(0.14 * rate)], chime[int(0.17 * rate) : int(0.39 * rate)]
    assert band_level(first, rate, 660) > 5 * band_level(first, rate, 990)
    assert band_level(second, rate, 990) > 5 * band_level(second, rate, 660)
    assert chime[0] == 0 and abs(int(chime[-1])) < 50  # no click at either end
    assert tone_prompt("muted", rate).any() and tone_prompt("unmuted", rate).any()


def test_music_loop_is_soft_and_seamless() -> None:
    music = music_loop(16000)
    assert len(music) / 16000 > 8
    peak = int(np.abs(music.astype(np.int32)).max())
    assert 1500 < peak < 4000  # gentle
    assert abs(int(music[-1]) - int(music[0])) < 50  # joins without a click
    assert np.abs(np.diff(music.astype(np.int32))).max() < 1000


def test_playout_frames_and_loop() -> None:
    samples = np.arange(1, 751, dtype=np.int16)
    once = Playout("x", samples)
    frames = []
    while (frame := once.next_frame(320)) is not None:
        frames.append(frame)
    assert [len(f) for f in frames] == [320, 320, 320] and once.done
    assert (np.concatenate(frames)[:750] == samples).all() and not frames[-1][110:].any()
    looped = Playout("m", samples, loop=True)
    out = np.concatenate([looped.next_frame(320) for _ in range(5)])
    assert (out == np.tile(samples, 3)[:1600]).all() and not looped.done
    with pytest.raises(ValueError):
        Playout("empty", np.zeros(0, dtype=np.int16))
