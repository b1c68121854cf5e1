import warnings

import numpy as np

from sylkbox.media import g711

ALL = np.arange(65536, dtype=np.uint16).view(np.int16)


def test_known_values() -> None:
    assert g711.ulaw_encode(np.array([0], dtype=np.int16)) == b"\xff"
    assert g711.ulaw_decode(b"\xff")[0] == 0
    assert g711.ulaw_decode(b"\x7f")[0] == 0
    assert g711.ulaw_encode(np.array([32767, -32768], dtype=np.int16)) == b"\x80\x00"
    assert g711.ulaw_decode(b"\x80\x00").tolist() == [32124, -32124]
    assert g711.alaw_encode(np.array([0], dtype=np.int16)) == b"\xd5"
    assert g711.alaw_decode(b"\xd5")[0] == 8
    assert g711.alaw_decode(b"\x55")[0] == -8
    assert g711.alaw_decode(b"\xaa\x2a").tolist() == [32256, -32256]


def _ulaw_reference(x: int) -> int:
    """ITU-T G.711 mu-law encoder written out per sample (Sun g711.c), for comparison."""
    pcm = x >> 2
    mask = 0x7F if pcm < 0 else 0xFF
    pcm = min(abs(pcm), 8159) + 0x21
    ends = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
    seg = next((i for i, e in enumerate(ends) if pcm <= e), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def test_against_reference_or_audioop() -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:
        sample = ALL[::7]
        expected = bytes(_ulaw_reference(int(x)) for x in sample)
        assert g711.ulaw_encode(sample) == expected
        return
    raw = ALL.tobytes()
    assert g711.ulaw_encode(ALL) == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(ALL) == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_reference_formula_agrees() -> None:
    sample = ALL[::97]
    assert g711.ulaw_encode(sample) == bytes(_ulaw_reference(int(x)) for x in sample)


def test_round_trip_error_bounds() -> None:
    """Quantisation error is within half a step of the segment (G.711 tables 1a/2a)."""
    x = ALL.astype(np.int32)
    for encode, decode, max_step in (
        (g711.ulaw_encode, g711.ulaw_decode, 1024),
        (g711.alaw_encode, g711.alaw_decode, 1024),
    ):
        y = decode(encode(ALL)).astype(np.int32)
        err = np.abs(y - x)
        magnitude = np.abs(x)
        assert err.max() <= max_step
        small = magnitude < 64
        assert err[small].max() <= 8
        # relative error of a logarithmic quantiser: under ~6.5 % above the linear region
        big = magnitude > 1024
        assert (err[big] / magnitude[big]).max() < 0.065


def test_codes_round_trip_exactly() -> None:
    codes = bytes(range(256))
    # every code except the mu-law negative zero (0x7f == 0xff value) maps back to itself
    ulaw = g711.ulaw_encode(g711.ulaw_decode(codes))
    assert [c for c in range(256) if ulaw[c] != c] == [0x7F]
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes
