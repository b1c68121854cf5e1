from pathlib import Path

import pytest

from sylkbox.media.rtp import RtpError, RtpExtension, RtpPacket, is_rtcp, seq_add, ts_add

VECTORS = Path(__file__).parent.parent / "vectors" / "rtp"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_parse_pcmu() -> None:
    data = vector("handmade_pcmu.bin")
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 0
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 160
    assert packet.ssrc == 0xDEADBEEF
    assert not packet.marker
    assert packet.csrc == ()
    assert packet.extension is None
    assert packet.payload == b"\xff" * 160
    assert packet.serialize() == data


def test_parse_marker_and_csrc() -> None:
    data = vector("handmade_pcma_marker_csrc.bin")
    packet = RtpPacket.parse(data)
    assert packet.marker
    assert packet.payload_type == 8
    assert packet.sequence_number == 0xFFFF
    assert packet.timestamp == 0x10000
    assert packet.csrc == (1, 2)
    assert packet.payload == b"\xd5" * 4
    assert packet.serialize() == data


def test_parse_extension() -> None:
    data = vector("handmade_extension.bin")
    packet = RtpPacket.parse(data)
    assert packet.extension == RtpExtension(profile=0xBEDE, data=bytes.fromhex("10ff0000"))
    assert packet.payload == b"\x7f\x7f"
    assert packet.serialize() == data


def test_parse_padding() -> None:
    data = vector("handmade_padding.bin")
    packet = RtpPacket.parse(data)
    assert packet.padding == 4
    assert packet.payload == b"\x01\x02\x03"
    assert packet.serialize() == data


def test_parse_dtmf_vectors() -> None:
    start = RtpPacket.parse(vector("handmade_dtmf_start.bin"))
    end = RtpPacket.parse(vector("handmade_dtmf_end.bin"))
    assert start.payload_type == end.payload_type == 101
    assert start.marker and not end.marker
    assert start.timestamp == end.timestamp == 0x3200


@pytest.mark.parametrize(
    "name",
    [
        "handmade_truncated.bin",
        "handmade_bad_version.bin",
        "handmade_bad_padding.bin",
        "handmade_truncated_csrc.bin",
    ],
)
def test_invalid_vectors_raise(name: str) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(vector(name))


def test_truncated_extension_raises() -> None:
    data = vector("handmade_extension.bin")
    with pytest.raises(RtpError):
        RtpPacket.parse(data[:14])
    with pytest.raises(RtpError):
        RtpPacket.parse(data[:18])


def test_serialize_exact_bytes() -> None:
    packet = RtpPacket(payload_type=0, sequence_number=0x1234, timestamp=160, ssrc=0xDEADBEEF,
                       payload=b"\xff" * 160)
    assert packet.serialize() == vector("handmade_pcmu.bin")


def test_validation() -> None:
    with pytest.raises(ValueError):
        RtpPacket(payload_type=128, sequence_number=0, timestamp=0, ssrc=0)
    with pytest.raises(ValueError):
        RtpPacket(payload_type=0, sequence_number=0x10000, timestamp=0, ssrc=0)
    with pytest.raises(ValueError):
        RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, csrc=(0,) * 16)
    with pytest.raises(ValueError):
        RtpExtension(profile=1, data=b"abc")


def test_rtcp_demux() -> None:
    assert is_rtcp(vector("handmade_rtcp_rr.bin"))
    assert not is_rtcp(vector("handmade_pcmu.bin"))
    assert not is_rtcp(vector("handmade_dtmf_start.bin"))


def test_wraparound() -> None:
    assert seq_add(0xFFFF, 1) == 0
    assert ts_add(0xFFFFFF60, 160) == 0
