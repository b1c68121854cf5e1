import time

import numpy as np
import pytest

from sylkbox.media.mixer import Mix, RoomMixer, VadParams, VoiceActivity
from tests.media.audio import band_level, tone

FREQS = {"a": 500.0, "b": 1250.0, "c": 2750.0}


def test_mix_minus_three_tones() -> None:
    mixer: RoomMixer[str] = RoomMixer(16000)
    n = mixer.frame_samples
    assert n == 320
    # several consecutive frames, mixed frame by frame, analysed together
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in [*FREQS, "listener"]}
    for i in range(10):
        talkers = {k: tone(f, 16000, n, start=i * n) for k, f in FREQS.items()}
        mixed = mixer.mix(talkers, [*FREQS, "listener"]).frames([*FREQS, "listener"])
        for k, frame in mixed.items():
            assert frame.dtype == np.int16 and len(frame) == n
            outputs[k].append(frame)
    for k in FREQS:
        signal = np.concatenate(outputs[k])
        for other, f in FREQS.items():
            level = band_level(signal, 16000, f)
            if other == k:
                assert level < 1.0, (k, other, level)
            else:
                assert level > 1000.0, (k, other, level)
    full = np.concatenate(outputs["listener"])
    assert all(band_level(full, 16000, f) > 1000.0 for f in FREQS.values())


def test_exact_arithmetic_and_clipping() -> None:
    mixer: RoomMixer[str] = RoomMixer(8000)
    a = np.full(160, 20000, dtype=np.int16)
    b = np.full(160, 20000, dtype=np.int16)
    c = np.full(160, -5000, dtype=np.int16)
    out = mixer.mix({"a": a, "b": b, "c": c}, ["a", "b", "c", "d"]).frames("abcd")
    assert (out["a"] == 15000).all()
    assert (out["c"] == 32767).all()  # 40000 clipped
    assert (out["d"] == 32767).all()  # 35000 clipped
    out = mixer.mix({"a": -a, "b": -b}, ["c"]).frames("c")
    assert (out["c"] == -32768).all()


def test_no_talkers_is_silence_and_absent_streams() -> None:
    mixer: RoomMixer[str] = RoomMixer()
    out = mixer.mix({}, ["x", "y"]).frames("xy")
    assert out["x"] is mixer.silence and not out["y"].any()
    one = tone(440, 16000, 320)
    mix = mixer.mix({"x": one}, ["x", "y"])
    assert not mix.for_listener("x").any()  # a lone talker hears nothing
    assert (mix.for_listener("y") == one).all()
    assert "z" not in mixer.mix({"z": one}, ["y"]).minus  # a talker that does not listen


def test_frames_are_read_only() -> None:
    mixer: RoomMixer[str] = RoomMixer()
    mix = mixer.mix({"a": tone(300, 16000, 320), "b": tone(700, 16000, 320)}, "abc")
    for frame in mix.frames("abc").values():
        with pytest.raises(ValueError):
            frame[0] = 1


def test_silent_listeners_share_one_frame() -> None:
    mixer: RoomMixer[int] = RoomMixer()
    talkers = {i: tone(300 + i, 16000, 320) for i in range(3)}
    out = mixer.mix(talkers, range(200)).frames(range(200))
    assert out[10] is out[199]


def test_vad_excludes_silent_and_quiet_streams() -> None:
    """Only active talkers are summed; quiet and silent streams hear the same full mix,
    which equals their mix-minus because their (noise) audio is not in it."""
    mixer: RoomMixer[str] = RoomMixer()
    loud = tone(500, 16000, 320, amplitude=8000)
    hiss = (np.random.default_rng(1).standard_normal(320) * 20).astype(np.int16)  # -64 dBFS
    zero = np.zeros(320, dtype=np.int16)
    mix = mixer.mix({"talker": loud, "hiss": hiss, "zero": zero}, ["talker", "hiss", "zero"])
    assert mix.talkers == {"talker"}
    assert mix.is_shared("hiss") and mix.is_shared("zero") and not mix.is_shared("talker")
    assert mix.for_listener("hiss") is mix.for_listener("zero") is mix.full
    assert (mix.full == loud).all()  # the hiss is not added
    assert not mix.for_listener("talker").any()


def test_vad_hangover() -> None:
    vad: VoiceActivity[str] = VoiceActivity(VadParams(threshold_dbfs=-40, hangover_frames=3))
    loud = np.stack([tone(400, 16000, 320, amplitude=4000)])
    quiet = np.zeros((1, 320), dtype=np.int16)
    assert vad.update(["a"], loud) == [True]
    assert [vad.update(["a"], quiet)[0] for _ in range(5)] == [True, True, True, False, False]
    assert not vad.is_active("a")
    assert vad.update(["a"], loud) == [True]
    vad.forget("a")
    assert not vad.is_active("a")
    with pytest.raises(ValueError):
        VadParams(threshold_dbfs=3)


def test_overlay_reaches_everyone() -> None:
    mixer: RoomMixer[str] = RoomMixer()
    beep = tone(1000, 16000, 320, amplitude=3000)
    mix = mixer.mix({}, ["x", "y"], overlay=beep)
    assert (mix.full == beep).all()
    voice = tone(300, 16000, 320, amplitude=5000)
    mix = mixer.mix({"x": voice}, ["x", "y"], overlay=beep)
    assert band_level(mix.for_listener("x"), 16000, 1000) > 500  # the talker hears it too
    assert band_level(mix.for_listener("x"), 16000, 300) < 1
    assert band_level(mix.for_listener("y"), 16000, 300) > 1000


def bench_tick(listeners: int = 150, talkers: int = 3, ticks: int = 500) -> float:
    """Mean seconds per mixer call for a room of ``listeners`` streams of which ``talkers``
    speak (the others send low-level noise): the VAD and mix-minus part of a tick."""
    mixer: RoomMixer[int] = RoomMixer()
    rng = np.random.default_rng(2)
    noise = [(rng.standard_normal(320) * 10).astype(np.int16) for _ in range(listeners)]
    voices = [tone(200 + 100 * i, 16000, 320, amplitude=6000) for i in range(talkers)]
    frames = {i: (voices[i] if i < talkers else noise[i]) for i in range(listeners)}
    keys = list(range(listeners))
    start = time.perf_counter()
    for _ in range(ticks):
        mix: Mix[int] = mixer.mix(frames, keys)
    elapsed = (time.perf_counter() - start) / ticks
    assert len(mix.minus) == talkers
    return elapsed


def test_mixer_cost_is_small() -> None:
    per_tick = bench_tick()
    assert per_tick < 0.004, per_tick  # generous: a few hundred microseconds measured


if __name__ == "__main__":
    print(f"mixer, 150 streams, 3 talkers: {bench_tick() * 1e6:.0f} us per tick")
