import numpy as np
import pytest

from sylkbox.media.codecs import CodecRegistry, G711Codec, UnknownCodecError, default_registry
from tests.media.audio import tone


def test_default_registry_has_g711() -> None:
    registry = default_registry()
    assert registry.names() == [("PCMU", 8000), ("PCMA", 8000)]
    pcmu = registry.create("pcmu", 8000)
    assert (pcmu.name, pcmu.clock_rate, pcmu.sample_rate) == ("PCMU", 8000, 8000)
    assert pcmu.samples_per_frame == 160
    assert pcmu.timestamp_step == 160


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_encode_decode_frame(name: str) -> None:
    codec = default_registry().create(name, 8000)
    frame = tone(1000, 8000, 160)
    payload = codec.encode(frame)
    assert len(payload) == 160
    decoded = codec.decode(payload)
    assert decoded.dtype == np.int16
    assert np.abs(decoded.astype(int) - frame).max() < 400


def test_unknown_codec() -> None:
    registry = default_registry()
    with pytest.raises(UnknownCodecError):
        registry.create("G722", 8000)
    with pytest.raises(UnknownCodecError):
        registry.create("PCMU", 16000)
    assert not registry.supports("opus", 48000)


def test_register_wideband_codec() -> None:
    """A codec whose RTP clock differs from its sample rate (as G.722 will) slots in."""

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

    registry = CodecRegistry()
    registry.register("G722", 8000, FakeG722)
    codec = registry.create("g722", 8000)
    assert codec.sample_rate == 16000
    assert len(codec.encode(np.zeros(320, dtype=np.int16))) == 160
    assert isinstance(default_registry().create("PCMA", 8000), G711Codec)
