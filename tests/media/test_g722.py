import numpy as np

from sylkbox.media.g722 import G722Codec
from tests.media.audio import band_level, tone


def test_frame_sizes() -> None:
    codec = G722Codec()
    payload = codec.encode(tone(1000, 16000, 320))
    assert len(payload) == 160  # RFC 3551 4.5.2: 64 kbit/s, 8 bits per pair of samples
    pcm = codec.decode(payload)
    assert pcm.dtype == np.int16 and len(pcm) == 320
    assert codec.decode_fec(payload) is None


def test_wideband_tones_round_trip() -> None:
    enc = G722Codec()
    for freq in (300, 3000, 6000, 7000):
        out = np.concatenate([enc.decode(enc.encode(tone(freq, 16000, 320, start=i * 320)))
                              for i in range(25)])
        assert band_level(out[4000:], 16000, freq) > 0.5 * 3000, freq


def test_state_is_per_instance() -> None:
    """ADPCM state: decoding one stream's packets with a fresh decoder differs from a warm one."""
    a, b = G722Codec(), G722Codec()
    frames = [a.encode(tone(1000, 16000, 320, start=i * 320)) for i in range(5)]
    warm = [b.decode(f) for f in frames][-1]
    cold = G722Codec().decode(frames[-1])
    assert not np.array_equal(warm, cold)


def test_conceal_fades() -> None:
    codec = G722Codec()
    for i in range(10):
        codec.decode(codec.encode(tone(200, 16000, 320, start=i * 320)))
    peaks = [int(np.abs(codec.conceal()).max()) for _ in range(4)]
    assert peaks[0] > peaks[1] > peaks[2] > peaks[3] == 0
