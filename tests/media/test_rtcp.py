"""RTCP packets (RFC 3550 section 6) against wire vectors, and the appendix A statistics."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from sylkbox.media.control import AddStream, Direction, MediaEvent, StreamAdded, StreamStats
from sylkbox.media.rtcp import (
    PT_RR,
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpError,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    round_trip_time,
    serialize_compound,
)
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.worker import MediaWorker

VECTORS = Path(__file__).parent.parent / "vectors" / "rtp"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_sr_with_block_and_sdes_cname() -> None:
    data = vector("handmade_rtcp_sr_sdes.bin")
    sr, sdes = parse_compound(data)
    assert sr == SenderReport(
        ssrc=0x11223344, ntp_timestamp=0xE8A1B2C380000000, rtp_timestamp=160000,
        packet_count=500, octet_count=80000,
        reports=(ReportBlock(ssrc=0xDEADBEEF, fraction_lost=64, packets_lost=12,
                             highest_sequence=0x0001FFFF, jitter=45, lsr=0xB2C38000,
                             dlsr=0x00018000),),
    )
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].ssrc == 0x11223344 and sdes.chunks[0].cname == "alice@192.0.2.1"
    assert serialize_compound([sr, sdes]) == data


def test_rr_with_negative_loss_and_bye_reason() -> None:
    data = vector("handmade_rtcp_rr_bye.bin")
    rr, bye = parse_compound(data)
    assert isinstance(rr, ReceiverReport) and rr.ssrc == 0xDEADBEEF
    assert rr.reports[0].packets_lost == -3  # duplicates: more received than expected
    assert rr.reports[0].highest_sequence == 100
    assert bye == Bye(sources=(0xDEADBEEF,), reason=b"bye now")
    assert serialize_compound([rr, bye]) == data


def test_padding_on_last_packet() -> None:
    data = vector("handmade_rtcp_padding.bin")
    rr, sdes = parse_compound(data)
    assert rr == ReceiverReport(ssrc=0xCAFEBABE)
    assert sdes == SourceDescription(
        chunks=(SdesChunk(ssrc=0xCAFEBABE, items=(SdesItem(type=1, value=b"ab"),)),), padding=4)
    assert serialize_compound([rr, sdes]) == data


def test_unknown_packet_kept_opaque() -> None:
    data = vector("handmade_rtcp_rr_app.bin")
    rr, app = parse_compound(data)
    assert app == UnknownRtcp(packet_type=204, count=5, body=bytes.fromhex("cafebabe") +
                              b"TEST\x01\x02\x03\x04")
    assert serialize_compound([rr, app]) == data


def test_existing_lone_rr_vector() -> None:
    [rr] = parse_compound(vector("handmade_rtcp_rr.bin"))
    assert rr == ReceiverReport(ssrc=0xDEADBEEF)


@pytest.mark.parametrize("name", [
    "handmade_rtcp_truncated.bin",
    "handmade_rtcp_bad_version.bin",
    "handmade_rtcp_padding_not_last.bin",
    "handmade_rtcp_bad_padding.bin",
])
def test_invalid_vectors(name: str) -> None:
    with pytest.raises(RtcpError):
        parse_compound(vector(name))


@pytest.mark.parametrize("data", [
    b"", b"\x80\xc9", b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # RR claims one block
    b"\x81\xca\x00\x01\x00\x00\x00\x01",  # SDES chunk without its end
    b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab",  # SDES item longer than the packet
    b"\x81\xcb\x00\x00",  # BYE claims one source
    b"\x81\xcb\x00\x02\x00\x00\x00\x01\x09abc",  # BYE reason longer than the packet
])
def test_truncated_packets(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_compound(data)


def test_serialize_rejects_padding_before_last() -> None:
    with pytest.raises(ValueError):
        serialize_compound([ReceiverReport(ssrc=1, padding=4), ReceiverReport(ssrc=2)])
    with pytest.raises(ValueError):
        ReceiverReport(ssrc=1, padding=3).serialize()
    with pytest.raises(ValueError):
        ReportBlock(ssrc=1, packets_lost=1 << 23)
    assert ReceiverReport(ssrc=1).serialize()[1] == PT_RR


def test_ntp_helpers_and_rtt() -> None:
    ntp = ntp_timestamp(0.5)  # 1970-01-01T00:00:00.5Z
    assert ntp == (2208988800 << 32) | 0x80000000
    assert ntp_middle(ntp) == ((2208988800 & 0xFFFF) << 16) | 0x8000
    # We sent an SR at t=100 s; the peer held it 0.25 s; its RR reached us at t=100.35 s.
    lsr = ntp_middle(ntp_timestamp(100.0))
    block = ReportBlock(ssrc=1, lsr=lsr, dlsr=int(0.25 * 65536))
    rtt = round_trip_time(block, ntp_timestamp(100.35))
    assert rtt == pytest.approx(0.1, abs=1e-4)
    assert round_trip_time(ReportBlock(ssrc=1), ntp_timestamp(5.0)) is None  # no SR yet
    assert round_trip_time(block, ntp_timestamp(100.1)) is None  # negative


def test_statistics_loss_wrap_and_fraction() -> None:
    stats = ReceptionStatistics(ssrc=7, clock_rate=8000)
    seqs = [65530 + i for i in range(20) if i not in (3, 12, 13)]  # wraps at 65536
    for k, seq in enumerate(seqs):
        stats.update(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, k * 0.02)
    assert stats.extended_max == 65536 + 13
    assert stats.expected == 20 and stats.received == 17 and stats.cumulative_lost == 3
    block = stats.report_block(now=1.0)
    assert block.fraction_lost == (3 << 8) // 20 and block.packets_lost == 3
    assert block.highest_sequence == 65536 + 13
    assert (block.lsr, block.dlsr) == (0, 0)
    for seq in range(65550, 65560):  # next interval: no loss
        stats.update(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 2.0)
    assert stats.report_block(now=2.0).fraction_lost == 0
    stats.update(65555 & 0xFFFF, 0, 2.0)  # a duplicate: cumulative loss goes down
    assert stats.cumulative_lost == 2


def test_statistics_source_restart_and_jump() -> None:
    stats = ReceptionStatistics(ssrc=7, clock_rate=8000)
    for seq in range(100, 110):
        assert stats.update(seq, seq * 160, 0.0)
    assert not stats.update(40000, 0, 0.0)  # a jump: set aside (A.1)
    assert stats.update(40001, 160, 0.02)  # the next in sequence: the source restarted
    assert stats.base_seq == 40001 and stats.received == 1


def test_jitter_a8() -> None:
    stats = ReceptionStatistics(ssrc=7, clock_rate=8000)
    # every other packet arrives 10 ms late: |D| alternates 80 timestamp units
    for i in range(400):
        stats.update(i, i * 160, i * 0.02 + (0.01 if i % 2 else 0.0))
    assert stats.jitter == pytest.approx(80, rel=0.01)
    # telephone-event packets repeat their timestamp and leave the jitter alone
    stats.update(400, 0, 9.0, timing=False)
    assert stats.jitter == pytest.approx(80, rel=0.01)


def test_lsr_dlsr_in_our_block() -> None:
    stats = ReceptionStatistics(ssrc=7, clock_rate=8000)
    stats.update(1, 0, 0.0)
    stats.sender_report_received(0xE8A1B2C380000000, arrival=10.0)
    block = stats.report_block(now=11.5)
    assert block.lsr == 0xB2C38000 and block.dlsr == int(1.5 * 65536)


# ---------------------------------------------------------------- in the worker (loopback)
async def test_worker_reports_and_emits_stream_stats() -> None:
    host = "127.0.0.1"
    base = 33000 + (os.getpid() % 300) * 10
    events: list[MediaEvent] = []
    worker = MediaWorker(port_range=(base, base + 5), rtp_timeout=30.0, emit=events.append)
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for s in (rtp_sock, rtcp_sock):
            s.bind((host, 0))
            s.settimeout(2.0)
        await worker.handle(AddStream(
            room_id="r", stream_id="a", local_host=host, local_port=None, remote_host=host,
            remote_port=rtp_sock.getsockname()[1], payload_type=0, codec="PCMU",
            clock_rate=8000, telephone_event_pt=None, direction=Direction.SENDRECV))
        added = events[0]
        assert isinstance(added, StreamAdded)
        port = added.local_port
        for seq in range(10):
            if seq != 4:  # one lost
                rtp_sock.sendto(RtpPacket(payload_type=0, sequence_number=seq, timestamp=160 * seq,
                                          ssrc=0xABC, payload=b"\xff" * 160).serialize(),
                                (host, port))
        sr = SenderReport(ssrc=0xABC, ntp_timestamp=ntp_timestamp(1e9), rtp_timestamp=1600,
                          packet_count=10, octet_count=1600)
        rtcp_sock.sendto(serialize_compound([sr]), (host, port + 1))
        await asyncio.sleep(0.1)
        worker.tick(asyncio.get_running_loop().time() + 10.0)  # past the first report
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, rtcp_sock.recv, 2048)
        report = parse_compound(data)
        assert isinstance(report[0], (SenderReport, ReceiverReport))
        [block] = report[0].reports
        assert block.ssrc == 0xABC and block.packets_lost == 1 and block.highest_sequence == 9
        assert block.lsr == ntp_middle(ntp_timestamp(1e9))
        assert isinstance(report[1], SourceDescription)
        stats = [e for e in events if isinstance(e, StreamStats)]
        assert len(stats) == 1 and stats[0].stream_id == "a"
        assert stats[0].packets_received == 9 and stats[0].packets_lost == 1
        assert stats[0].fraction_lost == pytest.approx(0.1, abs=0.01)
    finally:
        worker._remove("a")
        rtp_sock.close()
        rtcp_sock.close()
