from pathlib import Path

import pytest

from sylkbox.media.dtmf import DtmfDetector, DtmfError, TelephoneEvent
from sylkbox.media.rtp import RtpPacket

VECTORS = Path(__file__).parent.parent / "vectors" / "rtp"


def test_parse_vectors() -> None:
    start = RtpPacket.parse((VECTORS / "handmade_dtmf_start.bin").read_bytes())
    end = RtpPacket.parse((VECTORS / "handmade_dtmf_end.bin").read_bytes())
    ev = TelephoneEvent.parse(start.payload)
    assert ev == TelephoneEvent(event=5, end=False, volume=10, duration=160)
    assert ev.digit == "5"
    ev_end = TelephoneEvent.parse(end.payload)
    assert ev_end == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert ev_end.serialize() == end.payload
    assert ev.serialize() == start.payload


def test_digit_names() -> None:
    assert [TelephoneEvent(event=i, end=False, volume=0, duration=0).digit for i in range(17)] == [
        *"0123456789*#ABCD", "flash"]
    assert TelephoneEvent(event=32, end=False, volume=0, duration=0).digit is None
    assert TelephoneEvent.for_digit("#").event == 11


def test_short_payload() -> None:
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x05\x0a")


def event(digit: str, duration: int, *, end: bool = False) -> bytes:
    return TelephoneEvent.for_digit(digit, end=end, duration=duration).serialize()


def test_each_digit_reported_once() -> None:
    det = DtmfDetector()
    got = [
        det.receive(1000, event("1", 160)),
        det.receive(1000, event("1", 320)),
        det.receive(1000, event("1", 480, end=True)),
        det.receive(1000, event("1", 480, end=True)),
        det.receive(1000, event("1", 480, end=True)),
        det.receive(5000, event("1", 160)),  # same key pressed again: new timestamp
        det.receive(5000, event("1", 320, end=True)),
        det.receive(9000, event("#", 160)),
    ]
    assert [d for d in got if d is not None] == ["1", "1", "#"]


def test_lone_end_packet_reports() -> None:
    det = DtmfDetector()
    assert det.receive(42, event("9", 800, end=True)) == "9"
    assert det.receive(42, event("9", 800, end=True)) is None


def test_late_packet_of_old_event_ignored() -> None:
    det = DtmfDetector()
    assert det.receive(100, event("2", 160)) == "2"
    assert det.receive(2000, event("3", 160)) == "3"
    assert det.receive(100, event("2", 800, end=True)) is None


def test_long_event_segments_are_one_digit() -> None:
    det = DtmfDetector()
    assert det.receive(0, event("0", 0xFFFF)) == "0"
    assert det.receive(0xFFFF, event("0", 160)) is None  # RFC 4733 2.5.1.3 next segment
    assert det.receive(0xFFFF, event("0", 400, end=True)) is None
