import numpy as np
import pytest

from sylkbox.media.plc import FADE_DURATION, Concealer
from tests.media.audio import tone


def feed(plc: Concealer, freq: float, frames: int) -> None:
    n = plc.frame_samples
    for i in range(frames):
        plc.good(tone(freq, plc.sample_rate, n, start=i * n))


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_fades_to_silence_within_60_ms(rate: int) -> None:
    plc = Concealer(rate, rate // 50)
    feed(plc, 200, 10)
    frames = [plc.conceal() for _ in range(5)]
    peaks = [int(np.abs(f).max()) for f in frames]
    assert peaks[0] > 4000  # the first lost frame is nearly full level
    assert peaks[0] > peaks[1] > peaks[2] > 0  # then fades
    assert peaks[3] == peaks[4] == 0  # silence from 60 ms on
    assert pytest.approx(0.06) == FADE_DURATION
    assert plc.concealing


def test_substitution_continues_the_waveform() -> None:
    """Pitch repetition in phase: the first concealed samples continue the tone smoothly."""
    rate, n = 8000, 160
    plc = Concealer(rate, n)
    feed(plc, 250, 10)  # period 32 samples, phase continues at sample 1600
    concealed = plc.conceal().astype(float)
    expected = tone(250, rate, n, start=10 * n).astype(float)
    gain = 1 - np.arange(n) / (FADE_DURATION * rate)
    assert np.abs(concealed - expected * gain).max() < 60


def test_recovery_crossfades_and_resets() -> None:
    rate, n = 16000, 320
    plc = Concealer(rate, n)
    feed(plc, 300, 5)
    plc.conceal()
    nxt = tone(300, rate, n, start=6 * n)
    out = plc.good(nxt)
    assert not plc.concealing
    assert len(out) == n
    assert np.array_equal(out[100:], nxt[100:])  # only the first 4 ms are blended
    # the next loss starts again at full level
    assert int(np.abs(plc.conceal()).max()) > 4000


def test_no_history_gives_silence() -> None:
    plc = Concealer(8000, 160)
    assert not np.any(plc.conceal())
    plc.good(np.zeros(160, dtype=np.int16))
    assert not np.any(plc.conceal())


def test_unvoiced_history_is_repeated() -> None:
    rng = np.random.default_rng(1)
    plc = Concealer(8000, 160)
    noise = (rng.standard_normal(480) * 3000).astype(np.int16)
    plc.good(noise)
    frame = plc.conceal()
    assert int(np.abs(frame).max()) > 1000
    assert len(frame) == 160


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Concealer(0, 160)
