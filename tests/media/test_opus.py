import numpy as np
import pytest

from sylkbox.media.opus import OPUS_RATES, OpusCodec, OpusCodecError
from tests.media.audio import band_level, tone


def speechlike(rate: int, frames: int) -> list[np.ndarray]:
    """A gliding, amplitude-modulated harmonic signal (hard to extrapolate, like speech)."""
    t = np.arange(frames * rate // 50) / rate
    f0 = 150 + 100 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    pcm = (5000 * x).astype(np.int16)
    n = rate // 50
    return [pcm[i * n : (i + 1) * n] for i in range(frames)]


@pytest.mark.parametrize("rate", [16000, 48000])
def test_tone_round_trip(rate: int) -> None:
    codec = OpusCodec(rate)
    n = codec.samples_per_frame
    out = np.concatenate([codec.decode(codec.encode(tone(1000, rate, n, start=i * n)))
                          for i in range(25)])
    assert len(out) == 25 * n
    assert band_level(out[len(out) // 2 :], rate, 1000) > 0.7 * 3000


def test_rtp_parameters() -> None:
    for rate in OPUS_RATES:
        codec = OpusCodec(rate)
        assert (codec.name, codec.clock_rate, codec.timestamp_step) == ("opus", 48000, 960)
        assert codec.samples_per_frame == rate // 50
    with pytest.raises(ValueError):
        OpusCodec(44100)


def test_decodes_stereo_packets_to_mono() -> None:
    import opuslib

    stereo = opuslib.Encoder(48000, 2, opuslib.APPLICATION_VOIP)
    left = tone(1000, 48000, 960)
    packet = stereo.encode(np.column_stack((left, left)).tobytes(), 960)
    pcm = OpusCodec(16000).decode(packet)
    assert len(pcm) == 320


def test_longer_packets_decode_whole() -> None:
    enc = OpusCodec(48000)
    import opuslib

    raw = opuslib.Encoder(48000, 1, opuslib.APPLICATION_VOIP)
    packet = raw.encode(tone(500, 48000, 2880).tobytes(), 2880)  # one 60 ms packet
    assert len(enc.decode(packet)) == 2880


@pytest.mark.parametrize("rate", [16000, 48000])
def test_fec_beats_plc(rate: int) -> None:
    """A dropped frame recovered from the next packet's in-band FEC is closer to what the
    lossless decoder produced than the decoder's own concealment. The encoder only spends
    FEC bits on frames it judges active, so every position of a 40-frame signal is tried."""
    sender = OpusCodec(rate)
    packets = [sender.encode(f) for f in speechlike(rate, 40)]
    reference = OpusCodec(rate)
    clean = [reference.decode(p) for p in packets]

    def error(x: np.ndarray, lost: int) -> float:
        return float(np.sqrt(np.mean((x.astype(float) - clean[lost].astype(float)) ** 2)))

    fec_errors, plc_errors = [], []
    for lost in range(5, len(packets) - 1):
        with_fec, with_plc = OpusCodec(rate), OpusCodec(rate)
        for p in packets[:lost]:
            with_fec.decode(p)
            with_plc.decode(p)
        recovered = with_fec.decode_fec(packets[lost + 1])
        concealed = with_plc.conceal()
        assert recovered is not None and len(recovered) == len(concealed) == rate // 50
        fec_errors.append(error(recovered, lost))
        plc_errors.append(error(concealed, lost))
    fec, plc = np.array(fec_errors), np.array(plc_errors)
    assert np.all(fec <= plc * 1.05 + 1)  # never notably worse (no FEC data: same as PLC)
    assert np.sum(fec < 0.5 * plc) >= len(fec) // 3  # much better wherever FEC data exists
    assert fec.sum() < 0.7 * plc.sum()


def test_conceal_fades_over_long_losses() -> None:
    codec = OpusCodec(16000)
    for f in speechlike(16000, 10):
        codec.decode(codec.encode(f))
    frames = [codec.conceal() for _ in range(20)]
    assert all(len(f) == 320 for f in frames)
    assert np.abs(frames[-1]).max() < np.abs(frames[0]).max() / 10


def test_bad_payloads() -> None:
    codec = OpusCodec(16000)
    with pytest.raises(OpusCodecError):
        codec.decode(b"")
    with pytest.raises(OpusCodecError):
        codec.decode(b"\xff\xff\xff")
    assert codec.decode_fec(b"") is None
