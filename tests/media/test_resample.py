import numpy as np
import pytest

from sylkbox.media.resample import Resampler
from tests.media.audio import band_level, tone


def run(resampler: Resampler, signal: np.ndarray, chunk: int) -> np.ndarray:
    parts = [resampler.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    return np.concatenate(parts)


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 16000), (16000, 8000), (8000, 48000), (48000, 16000), (16000, 48000)]
)
def test_tone_preserved_across_frames(src: int, dst: int) -> None:
    signal = tone(1000, src, src)  # one second, fed in 20 ms frames
    out = run(Resampler(src, dst), signal, src // 50)
    assert len(out) == dst
    steady = out[dst // 2 :]
    rms = np.sqrt(np.mean(steady.astype(float) ** 2))
    assert abs(rms - 6000 / np.sqrt(2)) < 60
    # no clicks at frame joins: almost all spectral content stays at the tone
    in_band = band_level(steady, dst, 1000, width=60)
    everything = band_level(steady, dst, 0, width=dst)
    assert everything - in_band < 0.02 * in_band


def test_downsampling_rejects_alias() -> None:
    signal = tone(5000, 16000, 16000)
    out = run(Resampler(16000, 8000), signal, 320)
    assert np.abs(out[4000:]).max() < 60


def test_identity_is_passthrough() -> None:
    r = Resampler(16000, 16000)
    x = tone(440, 16000, 320)
    assert r.passthrough
    assert r.process(x) is x


def test_bad_rates() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 8000)
