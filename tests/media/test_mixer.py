import numpy as np

from sylkbox.media.mixer import RoomMixer
from tests.media.audio import band_level, tone

FREQS = {"a": 500.0, "b": 1250.0, "c": 2750.0}


def test_mix_minus_three_tones() -> None:
    mixer = RoomMixer(16000)
    n = mixer.frame_samples
    assert n == 320
    # several consecutive frames, mixed frame by frame, analysed together
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in [*FREQS, "listener"]}
    for i in range(10):
        talkers = {k: tone(f, 16000, n, start=i * n) for k, f in FREQS.items()}
        mixed = mixer.mix(talkers, [*FREQS, "listener"])
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
    mixer = RoomMixer(8000)
    a = np.full(160, 20000, dtype=np.int16)
    b = np.full(160, 20000, dtype=np.int16)
    c = np.full(160, -5000, dtype=np.int16)
    out = mixer.mix({"a": a, "b": b, "c": c}, ["a", "b", "c", "d"])
    assert (out["a"] == 15000).all()
    assert (out["c"] == 32767).all()  # 40000 clipped
    assert (out["d"] == 32767).all()  # 35000 clipped
    out = mixer.mix({"a": -a, "b": -b}, ["c"])
    assert (out["c"] == -32768).all()


def test_no_talkers_is_silence_and_absent_streams() -> None:
    mixer = RoomMixer()
    out = mixer.mix({}, ["x", "y"])
    assert out["x"] is mixer.silence and not out["y"].any()
    one = tone(440, 16000, 320)
    out = mixer.mix({"x": one}, ["x", "y"])
    assert not out["x"].any()  # a lone talker hears nothing
    assert (out["y"] == one).all()
    assert "z" not in mixer.mix({"z": one}, ["y"])  # a talker that does not listen


def test_silent_listeners_share_one_frame() -> None:
    mixer = RoomMixer()
    talkers = {i: tone(300 + i, 16000, 320) for i in range(3)}
    out = mixer.mix(talkers, range(200))
    assert out[10] is out[199]
