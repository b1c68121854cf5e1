import numpy as np
import pytest
import soxr  # type: ignore[import-untyped]

from sylkbox.media.resample import QUALITY, Resampler, lookahead
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


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 16000), (16000, 8000), (48000, 16000), (16000, 48000), (8000, 48000)]
)
def test_chunked_stream_matches_one_shot(src: int, dst: int) -> None:
    """20 ms chunks give the same signal as resampling the whole second at once, shifted by
    the constant start-up delay: no clicks or gaps at frame boundaries."""
    rng = np.random.default_rng(7)
    t = np.arange(src) / src
    signal = (4000 * np.sin(2 * np.pi * 700 * t) + 1500 * np.sin(2 * np.pi * 1900 * t)
              + rng.normal(0, 300, src)).astype(np.int16)
    chunked = run(Resampler(src, dst), signal, src // 50)
    whole = Resampler(src, dst)
    one_shot = np.concatenate((whole.process(signal), whole.process(np.zeros(src, np.int16))))
    delay = int(np.argmax(np.abs(chunked) > 0))  # leading silence: the constant delay
    assert delay == int(np.argmax(np.abs(one_shot) > 0)) == Resampler(src, dst).delay
    assert delay <= 0.0105 * dst  # at most 10.5 ms (see the module docstring)
    assert np.abs(chunked.astype(int) - one_shot[: len(chunked)]).max() <= 1  # rounding only
    # and the same as soxr resampling the whole signal in one go, delayed
    reference = np.rint(soxr.resample(signal.astype(np.float32), src, dst, QUALITY))
    assert np.abs(chunked[delay:] - reference[: dst - delay]).max() <= 1
    assert not np.any(chunked[:delay])


def test_odd_chunk_sizes_keep_the_exact_rate() -> None:
    r = Resampler(16000, 48000)
    sizes = [7, 320, 1, 159, 513, 0, 1000]
    total = sum(len(r.process(np.zeros(s, dtype=np.int16))) for s in sizes)
    assert total == sum(sizes) * 3
    down = Resampler(48000, 16000)
    outs = [len(down.process(np.zeros(s, dtype=np.int16))) for s in (1, 1, 1, 4)]
    assert outs == [0, 0, 1, 1]


def test_upsampling_leaves_no_image() -> None:
    """8k -> 16k: a 3 kHz tone must not produce its 5 kHz image."""
    out = run(Resampler(8000, 16000), tone(3000, 8000, 8000), 160)
    steady = out[8000:]
    assert band_level(steady, 16000, 5000, width=100) < 1e-3 * band_level(steady, 16000, 3000)


@pytest.mark.parametrize(("src", "dst"), [(16000, 8000), (8000, 16000), (48000, 16000)])
def test_digital_silence_stays_silent(src: int, dst: int) -> None:
    """No dither: a silent mix must encode to G.711's exact silence code."""
    r = Resampler(src, dst)
    for _ in range(10):
        assert not np.any(r.process(np.zeros(src // 50, dtype=np.int16)))


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (48000, 16000)])
def test_random_chunk_sizes_match_one_shot(src: int, dst: int) -> None:
    rng = np.random.default_rng(src + dst)
    signal = rng.normal(0, 6000, src).clip(-32768, 32767).astype(np.int16)
    r = Resampler(src, dst)
    parts, i = [], 0
    while i < len(signal):
        size = int(rng.integers(0, 3 * src // 50))
        parts.append(r.process(signal[i : i + size]))
        i += size
    out = np.concatenate(parts)
    assert len(out) == dst
    reference = np.rint(soxr.resample(signal.astype(np.float32), src, dst, QUALITY))
    assert np.abs(out[r.delay :] - reference[: dst - r.delay]).max() <= 1


@pytest.mark.parametrize(
    ("src", "dst", "most_ms"),
    [(8000, 16000, 10), (16000, 8000, 10), (16000, 48000, 5), (48000, 16000, 5)],
)
def test_delay_is_a_few_milliseconds(src: int, dst: int, most_ms: int) -> None:
    """The point of the module: a G.711 participant in a 16 kHz room pays < 20 ms in all."""
    r = Resampler(src, dst)
    assert 0 < r.delay <= most_ms * dst // 1000
    assert r.delay == -(-lookahead(src, dst) * dst // src)


def test_delay_is_constant_over_a_long_stream() -> None:
    """Clicks once a second for a minute come out exactly ``delay`` samples late: no drift."""
    r = Resampler(8000, 16000)
    peaks = []
    for second in range(60):
        clicks = np.zeros(8000, dtype=np.int16)
        clicks[0] = 20000
        out = run(r, clicks, 160)
        peaks.append(int(np.argmax(out)) + 16000 * second)
    assert peaks[0] == r.delay
    assert peaks == [r.delay + 16000 * s for s in range(60)]


def test_telephone_band_survives_a_round_trip() -> None:
    """3.4 kHz (top of the G.711 band) 8k -> 16k -> 8k, as a G.711 talker is heard by a
    G.711 listener through a 16 kHz room, keeps its level within 1 dB."""
    signal = tone(3400, 8000, 16000)
    up, down = Resampler(8000, 16000), Resampler(16000, 8000)
    out = np.concatenate([down.process(up.process(signal[i : i + 160]))
                          for i in range(0, len(signal), 160)])
    steady_in, steady_out = signal[4000:12000], out[4000:12000]
    ratio = np.sqrt(np.mean(steady_out.astype(float) ** 2) / np.mean(steady_in.astype(float) ** 2))
    assert abs(20 * np.log10(ratio)) < 1


def test_wideband_content_does_not_alias_into_narrowband() -> None:
    """7 kHz in a 16 kHz room is attenuated >= 40 dB on its way to an 8 kHz codec."""
    out = run(Resampler(16000, 8000), tone(7000, 16000, 16000, amplitude=20000), 320)
    assert 20 * np.log10(np.abs(out[2000:]).max() / 20000 + 1e-9) < -40


def test_lookahead_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        lookahead(8000, -1)
    assert lookahead(16000, 16000) == 0
