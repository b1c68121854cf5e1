import random

import numpy as np
import pytest

from sylkbox.media import g711
from sylkbox.media.codecs import default_registry
from sylkbox.media.control import Direction, from_json, to_json
from sylkbox.media.dtmf import TelephoneEvent
from sylkbox.media.rtcp import ReceiverReport, SenderReport, SourceDescription, parse_compound
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.stream import Stream, StreamParams
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


def pop_all(s: Stream, start: float, ticks: int) -> list[np.ndarray | None]:
    return [s.pop_frame(start + 0.02 * k) for k in range(ticks)]


def test_receive_decodes_to_room_rate_frames() -> None:
    s = make_stream()
    frames = []
    for i in range(40):
        payload = g711.ulaw_encode(tone(1000, 8000, 160, start=160 * i))
        assert s.receive_rtp(rtp(i, payload, ts=160 * i), PEER, 0.02 * i) is None
        frame = s.pop_frame(0.02 * i + 0.005)
        if frame is not None:
            assert len(frame) == 320
            frames.append(frame)
    assert len(frames) >= 38  # after the playout delay (one frame), one frame per tick
    audio = np.concatenate(frames)[1600:]
    assert band_level(audio, 16000, 1000) > 1000
    assert s.stats().packets_received == 40 and s.stats().packets_lost == 0


def test_packet_with_two_frames() -> None:
    s = make_stream()
    out = []
    for i in range(10):  # 40 ms packets, ticks every 20 ms
        s.receive_rtp(rtp(i, g711.ulaw_encode(tone(500, 8000, 320, start=320 * i)),
                          ts=320 * i), PEER, 0.04 * i)
        out += pop_all(s, 0.04 * i + 0.001, 2)
    assert sum(f is not None for f in out) >= 17
    assert s.jitter_buffer.stats().lost == 0


def test_duplicates_and_comfort_noise_ignored() -> None:
    s = make_stream()
    s.receive_rtp(rtp(5, b"\xff" * 160), PEER, 0.0)
    s.receive_rtp(rtp(5, b"\xff" * 160), PEER, 0.0)
    s.receive_rtp(rtp(6, b"\x40", pt=13, ts=160), PEER, 0.02)  # comfort noise (RFC 3389)
    s.receive_rtp(rtp(7, b"\xff" * 160, pt=96), PEER, 0.02)  # not negotiated
    s.receive_rtp(b"garbage", PEER, 0.0)
    frames = pop_all(s, 0.02, 10)
    assert sum(f is not None for f in frames) == 1 + 5  # one frame, 100 ms concealment
    assert all(f is None for f in frames[6:])  # then silence
    stats = s.jitter_buffer.stats()
    assert stats.duplicates == 1 and stats.lost == 0
    assert not s.check_timeout(5.01)  # comfort noise at 0.02 s was a sign of life


def test_loss_concealed_and_reordering_restored() -> None:
    s = make_stream()
    order = [0, 1, 2, 4, 3, 5, 7, 8, 9, 10, 11]  # 3/4 swapped, 6 lost
    for k, i in enumerate(order):
        payload = g711.ulaw_encode(tone(1000, 8000, 160, start=160 * i))
        s.receive_rtp(rtp(i, payload, ts=160 * i), PEER, 0.02 * k)
    frames = pop_all(s, 0.045, 12)
    assert all(f is not None for f in frames)
    stats = s.stats()
    assert stats.frames_concealed == 1 and stats.packets_late == 0
    assert stats.packets_lost == 1
    concealed = frames[6]
    assert concealed is not None and band_level(concealed, 16000, 1000) > 200  # continues


class FecCodec:
    """A fake codec: payload byte n decodes to a frame of value n; FEC gives 1000 + n."""

    name = "FAKE"
    clock_rate = 16000
    sample_rate = 16000
    samples_per_frame = 320
    timestamp_step = 320

    def encode(self, samples: np.ndarray) -> bytes:
        return b"\x00"

    def decode(self, payload: bytes) -> np.ndarray:
        return np.full(320, payload[0], dtype=np.int16)

    def conceal(self) -> np.ndarray:
        return np.full(320, -1, dtype=np.int16)

    def decode_fec(self, payload: bytes) -> np.ndarray | None:
        return np.full(320, 1000 + payload[0], dtype=np.int16)


def test_lost_frame_recovered_by_fec() -> None:
    params = StreamParams(remote=PEER, payload_type=96, codec=FecCodec(),
                          telephone_event_pt=None, direction=Direction.SENDRECV)
    s = Stream(stream_id="s", room_id="r", local_port=50000, params=params, room_rate=16000,
               rtp_timeout=5.0, now=0.0, rng=random.Random(1))
    for i in (0, 1, 3, 4):
        s.receive_rtp(rtp(i, bytes((i,)), pt=96, ts=320 * i), PEER, 0.02 * min(i, 2))
    frames = pop_all(s, 0.02, 5)
    assert [int(f[0]) for f in frames if f is not None] == [0, 1, 1003, 3, 4]
    assert s.stats().frames_recovered == 1


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
    assert pop_all(held, 0.02, 3) == [None] * 3  # hold music is not mixed
    assert held.jitter_buffer.stats().played == 1  # but the playout moves on
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
    assert pop_all(s, 0.0, 3) == [None] * 3


def test_rtp_timeout_once_and_rearmed() -> None:
    s = make_stream()
    assert not s.check_timeout(4.9)
    assert s.check_timeout(5.0)
    assert not s.check_timeout(6.0)
    s.receive_rtp(rtp(1, b"\xff" * 160), PEER, 7.0)
    assert not s.check_timeout(11.0)
    assert s.check_timeout(12.0)
    s.receive_rtcp(b"garbage", 13.0)
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


def pcmu_stream(stream_id: str, seed: int, clock: list[float]) -> Stream:
    params = StreamParams(remote=PEER, payload_type=0,
                          codec=default_registry().create("PCMU", 8000),
                          telephone_event_pt=None, direction=Direction.SENDRECV)
    return Stream(stream_id=stream_id, room_id="r", local_port=50000, params=params,
                  room_rate=16000, rtp_timeout=30.0, now=0.0, rng=random.Random(seed),
                  cname=f"{stream_id}@example", ntp_offset=1.7e9, clock=lambda: clock[0])


def test_rtcp_exchange_loss_jitter_and_rtt() -> None:
    clock = [0.0]
    a, b = pcmu_stream("a", 1, clock), pcmu_stream("b", 2, clock)
    assert not a.rtcp_due(2.4) and a.rtcp_due(7.6)  # first report after 2.5..7.5 s
    one_way = 0.03
    for k in range(100):  # a sends 2 s of audio to b; every 10th packet is lost
        clock[0] = 0.02 * k
        packet = a.build_packet(np.zeros(320, dtype=np.int16))
        if k % 10 != 9:
            b.receive_rtp(packet, PEER, clock[0] + one_way + (0.005 if k % 2 else 0.0))
    clock[0] = 2.0
    sr_bytes = a.build_rtcp(2.0)
    assert not a.rtcp_due(2.0) and a.rtcp_due(2.0 + 7.5)
    sr, sdes = parse_compound(sr_bytes)
    assert isinstance(sr, SenderReport) and sr.ssrc == a.ssrc and sr.packet_count == 100
    assert sr.octet_count == 100 * 160 and sr.reports == ()  # a received nothing
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == "a@example"
    b.receive_rtcp(sr_bytes, 2.0 + one_way, ("127.0.0.1", 40001))
    assert b.remote_cname == "a@example"
    rr_bytes = b.build_rtcp(2.5)  # b has not sent: RR, with LSR/DLSR echoing a's SR
    rr = parse_compound(rr_bytes)[0]
    assert isinstance(rr, ReceiverReport)
    [block] = rr.reports
    assert block.ssrc == a.ssrc and block.packets_lost == 9  # 99 was the last sent
    assert block.fraction_lost == (9 << 8) // 99
    b_stats = b.stats()
    assert b_stats.packets_received == 90 and b_stats.packets_lost == 9
    assert b_stats.fraction_lost == pytest.approx(9 / 99, abs=0.01)
    assert 2.0 < b_stats.jitter_ms < 6.0  # 5 ms alternating delay: A.8 tends to 5 ms
    a.receive_rtcp(rr_bytes, 2.5 + one_way, ("127.0.0.1", 40001))
    a_stats = a.stats()
    assert a_stats.rtt_ms == pytest.approx(2 * one_way * 1000, abs=0.1)
    assert a_stats.remote_packets_lost == 9
    assert a_stats.remote_fraction_lost == pytest.approx(9 / 99, abs=0.01)
    assert a_stats.remote_jitter_ms == pytest.approx(b_stats.jitter_ms, abs=0.2)
    assert a_stats.packets_received == 0 and a_stats.rtt_ms is not None
    assert from_json(to_json(a_stats)) == a_stats  # a control event


def test_rtcp_destination_symmetric_and_mux() -> None:
    s = make_stream()
    assert s.rtcp_remote == ("127.0.0.1", 40001)  # RTP port + 1
    s.receive_rtcp(b"\x80\xc9\x00\x01\x00\x00\x00\x01", 1.0, ("127.0.0.1", 41234))
    assert s.rtcp_remote == ("127.0.0.1", 41234)  # where the peer's RTCP comes from
    s.receive_rtcp(b"\x80\xc9\x00\x01\x00\x00\x00\x01", 1.0, PEER, mux=True)
    assert s.rtcp_mux and s.rtcp_remote == PEER
    assert make_stream(remote=None).rtcp_remote is None
    rr = parse_compound(make_stream().build_rtcp(0.0))
    assert isinstance(rr[0], ReceiverReport) and rr[0].reports == ()
    assert isinstance(rr[1], SourceDescription) and rr[1].chunks[0].cname == "sylkbox"


def test_ssrc_change_restarts_statistics_and_playout() -> None:
    s = make_stream()
    for i in range(5):
        s.receive_rtp(rtp(100 + i, b"\xff" * 160, ts=160 * i), PEER, 0.02 * i)
    s.receive_rtp(RtpPacket(payload_type=0, sequence_number=9, timestamp=5, ssrc=8,
                            payload=b"\xff" * 160).serialize(), PEER, 0.1)
    assert s.stats().packets_received == 1
    assert s.jitter_buffer.stats().resyncs == 1


def test_rtp_timeout_zero_never_fires() -> None:
    """`[media] rtp_timeout = 0` disables the check (it used to end every call at once)."""
    s = make_stream()
    s.rtp_timeout = 0
    assert not s.check_timeout(0.0)
    assert not s.check_timeout(3600.0)
