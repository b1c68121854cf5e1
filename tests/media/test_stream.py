import random

import numpy as np

from sylkbox.media import g711
from sylkbox.media.codecs import default_registry
from sylkbox.media.control import Direction
from sylkbox.media.dtmf import TelephoneEvent
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.stream import MAX_BUFFERED_FRAMES, Stream, StreamParams
from tests.media.audio import band_level, tone

PEER = ("127.0.0.1", 40000)


def make_stream(direction: Direction = Direction.SENDRECV, remote: tuple[str, int] | None = PEER,
                ) -> Stream:
    params = StreamParams(
        remote=remote, payload_type=0, codec=default_registry().create("PCMU", 8000),
        telephone_event_pt=101, direction=direction,
    )
    return Stream(stream_id="s", room_id="r", local_port=50000, params=params, room_rate=16000,
                  rtp_timeout=5.0, now=0.0, rng=random.Random(1))


def rtp(seq: int, payload: bytes, pt: int = 0, ts: int = 0) -> bytes:
    return RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=7,
                     payload=payload).serialize()


def test_receive_decodes_to_room_rate_frames() -> None:
    s = make_stream()
    frames = []
    for i in range(20):
        payload = g711.ulaw_encode(tone(1000, 8000, 160, start=160 * i))
        assert s.receive_rtp(rtp(i, payload, ts=160 * i), PEER, 0.02 * i) is None
        frame = s.pop_frame()
        assert frame is not None and len(frame) == 320
        frames.append(frame)
    assert s.pop_frame() is None
    audio = np.concatenate(frames)[1600:]
    assert band_level(audio, 16000, 1000) > 1000


def test_packet_with_two_frames_and_bounded_buffer() -> None:
    s = make_stream()
    s.receive_rtp(rtp(1, g711.ulaw_encode(tone(500, 8000, 320))), PEER, 0.0)
    assert s.pop_frame() is not None and s.pop_frame() is not None
    assert s.pop_frame() is None
    for i in range(20):
        s.receive_rtp(rtp(2 + i, b"\xff" * 160), PEER, 0.0)
    count = 0
    while s.pop_frame() is not None:
        count += 1
    assert count == MAX_BUFFERED_FRAMES


def test_duplicates_and_foreign_payload_types_ignored() -> None:
    s = make_stream()
    s.receive_rtp(rtp(5, b"\xff" * 160), PEER, 0.0)
    s.receive_rtp(rtp(5, b"\xff" * 160), PEER, 0.0)
    s.receive_rtp(rtp(6, b"\xff" * 160, pt=13), PEER, 0.0)  # comfort noise
    s.receive_rtp(b"garbage", PEER, 0.0)
    assert s.pop_frame() is not None
    assert s.pop_frame() is None


def test_symmetric_rtp_latches_source() -> None:
    s = make_stream(remote=None)
    assert not s.sends
    s.receive_rtp(rtp(1, b"\xff" * 160, pt=96), ("127.0.0.1", 1), 0.0)  # not negotiated
    assert s.remote is None
    s.receive_rtp(rtp(1, b"\xff" * 160), ("127.0.0.1", 41000), 0.0)
    assert s.remote == ("127.0.0.1", 41000) and s.sends


def test_send_sequence_timestamp_marker() -> None:
    s = make_stream()
    frame = tone(1000, 16000, 320)
    first = RtpPacket.parse(s.build_packet(frame))
    second = RtpPacket.parse(s.build_packet(frame))
    assert first.marker and not second.marker
    assert first.payload_type == 0 and len(first.payload) == 160
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert second.timestamp == (first.timestamp + 160) & 0xFFFFFFFF
    assert first.ssrc == second.ssrc == s.ssrc


def test_held_and_muted_streams() -> None:
    held = make_stream(Direction.RECVONLY)
    assert not held.heard and not held.sends
    held.receive_rtp(rtp(1, b"\x00" * 160), PEER, 0.0)
    assert held.pop_frame() is None  # hold music is not mixed
    muted = make_stream(Direction.SENDONLY)
    assert not muted.heard and muted.sends
    inactive = make_stream(Direction.INACTIVE)
    assert not inactive.heard and not inactive.sends
    assert not inactive.check_timeout(100.0)


def test_dtmf_reported_once() -> None:
    s = make_stream()
    start = TelephoneEvent.for_digit("7", duration=160).serialize()
    end = TelephoneEvent.for_digit("7", end=True, duration=480).serialize()
    got = [s.receive_rtp(rtp(i, p, pt=101, ts=8000), PEER, 0.0)
           for i, p in enumerate([start, start, end, end, end])]
    assert got == ["7", None, None, None, None]
    assert s.pop_frame() is None


def test_rtp_timeout_once_and_rearmed() -> None:
    s = make_stream()
    assert not s.check_timeout(4.9)
    assert s.check_timeout(5.0)
    assert not s.check_timeout(6.0)
    s.receive_rtp(rtp(1, b"\xff" * 160), PEER, 7.0)
    assert not s.check_timeout(11.0)
    assert s.check_timeout(12.0)
    s.receive_rtcp(13.0)
    assert not s.check_timeout(17.0)


def test_update_replaces_params() -> None:
    s = make_stream()
    ssrc = s.ssrc
    params = StreamParams(remote=("127.0.0.1", 40002), payload_type=8,
                          codec=default_registry().create("PCMA", 8000),
                          telephone_event_pt=None, direction=Direction.SENDONLY)
    s.update(params, 1.0)
    packet = RtpPacket.parse(s.build_packet(np.zeros(320, dtype=np.int16)))
    assert packet.payload_type == 8 and packet.ssrc == ssrc and packet.marker
    assert s.remote == ("127.0.0.1", 40002)
