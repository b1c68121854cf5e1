import numpy as np
import pytest

from sylkbox.media.codecs import (
    CodecRegistry,
    G711Codec,
    G722Codec,
    OpusCodec,
    UnknownCodecError,
    default_registry,
)
from sylkbox.media.resample import Resampler
from tests.media.audio import band_level, tone


def test_default_registry() -> None:
    registry = default_registry()
    assert registry.names() == [("PCMU", 8000), ("PCMA", 8000), ("G722", 8000), ("OPUS", 48000)]
    pcmu = registry.create("pcmu", 8000)
    assert (pcmu.name, pcmu.clock_rate, pcmu.sample_rate) == ("PCMU", 8000, 8000)
    assert pcmu.samples_per_frame == 160
    assert pcmu.timestamp_step == 160


def test_g722_and_opus_parameters() -> None:
    registry = default_registry()
    g722 = registry.create("g722", 8000)
    assert isinstance(g722, G722Codec)
    assert (g722.clock_rate, g722.sample_rate, g722.samples_per_frame, g722.timestamp_step) == (
        8000, 16000, 320, 160)
    for name in ("opus", "OPUS", "Opus"):
        opus = registry.create(name, 48000)
        assert isinstance(opus, OpusCodec)
        assert (opus.name, opus.clock_rate, opus.sample_rate, opus.timestamp_step) == (
            "opus", 48000, 48000, 960)
        assert opus.samples_per_frame == 960


def test_opus_runs_at_the_preferred_room_rate() -> None:
    registry = default_registry()
    opus = registry.create("opus", 48000, sample_rate=16000)
    assert (opus.sample_rate, opus.samples_per_frame, opus.timestamp_step) == (16000, 320, 960)
    # codecs with a fixed rate ignore the preference (the stream resamples)
    assert registry.create("G722", 8000, sample_rate=48000).sample_rate == 16000
    assert registry.create("PCMU", 8000, sample_rate=16000).sample_rate == 8000


def test_instances_are_per_stream() -> None:
    registry = default_registry()
    for name, rate in registry.names():
        assert registry.create(name, rate) is not registry.create(name, rate)


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_encode_decode_frame(name: str) -> None:
    codec = default_registry().create(name, 8000)
    frame = tone(1000, 8000, 160)
    payload = codec.encode(frame)
    assert len(payload) == 160
    decoded = codec.decode(payload)
    assert decoded.dtype == np.int16
    assert np.abs(decoded.astype(int) - frame).max() < 400
    assert codec.decode_fec(payload) is None


def through(codec_name: str, clock: int, freq: float, seconds: float = 0.5) -> np.ndarray:
    codec = default_registry().create(codec_name, clock)
    n, rate = codec.samples_per_frame, codec.sample_rate
    out = [codec.decode(codec.encode(tone(freq, rate, n, start=i * n)))
           for i in range(int(seconds / 0.02))]
    return np.concatenate(out)


@pytest.mark.parametrize(("name", "clock"), [("PCMU", 8000), ("PCMA", 8000), ("G722", 8000),
                                             ("opus", 48000)])
def test_tone_round_trip(name: str, clock: int) -> None:
    rate = default_registry().create(name, clock).sample_rate
    out = through(name, clock, 1000)
    steady = out[len(out) // 2 :]
    assert band_level(steady, rate, 1000) > 0.7 * 3000  # half the 6000 amplitude, Hann window
    assert energy_fraction(steady, rate, 1000) > 0.99


def energy_fraction(samples: np.ndarray, rate: int, freq: float, width: float = 100) -> float:
    """Share of the signal's energy within ``width`` Hz of ``freq``."""
    x = samples.astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    bins = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[np.abs(bins - freq) <= width].sum() / power.sum())


def test_g722_is_wideband() -> None:
    """A 6 kHz tone in a 16 kHz room survives G.722 but not G.711 (8 kHz audio)."""
    wide = through("G722", 8000, 6000)
    steady = wide[len(wide) // 2 :]
    assert band_level(steady, 16000, 6000) > 0.5 * 3000
    assert energy_fraction(steady, 16000, 6000) > 0.95

    pcmu = default_registry().create("PCMU", 8000)
    down, up = Resampler(16000, 8000), Resampler(8000, 16000)
    narrow = np.concatenate([
        up.process(pcmu.decode(pcmu.encode(down.process(tone(6000, 16000, 320, start=i * 320)))))
        for i in range(25)
    ])
    assert band_level(narrow[len(narrow) // 2 :], 16000, 6000) < 0.01 * 3000


@pytest.mark.parametrize(("name", "clock"), [("PCMU", 8000), ("G722", 8000), ("opus", 48000)])
def test_conceal_returns_frames_then_silence(name: str, clock: int) -> None:
    codec = default_registry().create(name, clock)
    n, rate = codec.samples_per_frame, codec.sample_rate
    for i in range(10):
        codec.decode(codec.encode(tone(440, rate, n, start=i * n)))
    frames = [codec.conceal() for _ in range(8)]
    assert all(len(f) == n and f.dtype == np.int16 for f in frames)
    assert np.abs(frames[0]).max() > 1000  # the first lost frame is filled in
    assert np.abs(frames[-1]).max() < 50  # and a long loss fades to silence


def test_register_wideband_codec() -> None:
    """A codec whose RTP clock differs from its sample rate slots in."""

    class FakeG722:
        name = "G722"
        clock_rate = 8000
        sample_rate = 16000
        samples_per_frame = 320
        timestamp_step = 160

        def encode(self, samples: np.ndarray) -> bytes:
            return bytes(len(samples) // 2)

        def decode(self, payload: bytes) -> np.ndarray:
            return np.zeros(len(payload) * 2, dtype=np.int16)

        def conceal(self) -> np.ndarray:
            return np.zeros(320, dtype=np.int16)

        def decode_fec(self, payload: bytes) -> None:
            return None

    registry = CodecRegistry()
    registry.register("G722", 8000, FakeG722)
    codec = registry.create("g722", 8000)
    assert codec.sample_rate == 16000
    assert len(codec.encode(np.zeros(320, dtype=np.int16))) == 160
    assert isinstance(default_registry().create("PCMA", 8000), G711Codec)


def test_unknown_codec() -> None:
    registry = default_registry()
    with pytest.raises(UnknownCodecError):
        registry.create("G729", 8000)
    with pytest.raises(UnknownCodecError):
        registry.create("PCMU", 16000)
    with pytest.raises(UnknownCodecError):
        registry.create("opus", 16000)  # RFC 7587: the RTP clock is always 48000
    assert registry.supports("OPUS", 48000)
    assert not registry.supports("G722", 16000)
