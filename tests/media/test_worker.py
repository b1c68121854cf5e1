"""The worker in-process: port allocation, command handling, the tick and the clock."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from sylkbox.media.control import (
    AddStream,
    Direction,
    MediaEvent,
    RemoveStream,
    Shutdown,
    StreamAdded,
    StreamFailed,
    StreamRemoved,
    StreamUpdated,
    UpdateStream,
)
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.worker import PTIME, MediaWorker, PortAllocator, parse_port_range

HOST = "127.0.0.1"


def test_parse_port_range() -> None:
    assert parse_port_range("50000-50999") == (50000, 50999)
    for bad in ("50999-50000", "80-90", "50001-50001", "x-y", "50001-50002"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def free_range() -> tuple[int, int]:
    base = 25000 + (os.getpid() % 400) * 10
    return base, base + 5


def test_port_allocator_even_ports_and_rtcp() -> None:
    low, high = free_range()
    alloc = PortAllocator(low, high)
    taken = []
    for _ in range(3):
        port, rtp, rtcp = alloc.allocate(HOST, None)
        assert port % 2 == 0 and low <= port < high
        assert rtp.getsockname()[1] == port and rtcp.getsockname()[1] == port + 1
        taken.append((port, rtp, rtcp))
    with pytest.raises(OSError):
        alloc.allocate(HOST, None)  # range exhausted
    with pytest.raises(OSError):
        alloc.allocate(HOST, taken[0][0])  # requested port in use
    port, rtp, rtcp = taken.pop()
    rtp.close()
    rtcp.close()
    alloc.release(port)
    again = alloc.allocate(HOST, port)
    assert again[0] == port
    for _, a, b in [*taken, again]:
        a.close()
        b.close()


def add(stream_id: str, remote_port: int, **changes: object) -> AddStream:
    fields: dict[str, object] = {
        "room_id": "r", "stream_id": stream_id, "local_host": HOST, "local_port": None,
        "remote_host": HOST, "remote_port": remote_port, "payload_type": 0, "codec": "PCMU",
        "clock_rate": 8000, "telephone_event_pt": None, "direction": Direction.SENDRECV,
    }
    fields.update(changes)
    return AddStream(**fields)  # type: ignore[arg-type]


async def test_commands_and_tick() -> None:
    events: list[MediaEvent] = []
    worker = MediaWorker(port_range=free_range(), rtp_timeout=30.0, emit=events.append)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((HOST, 0))
    peer.setblocking(False)
    peer_port = peer.getsockname()[1]
    try:
        await worker.handle(add("a", peer_port))
        await worker.handle(add("b", 9, direction=Direction.INACTIVE))
        await worker.handle(add("c", 9, codec="L16"))
        await worker.handle(UpdateStream(
            stream_id="zz", remote_host=HOST, remote_port=1, payload_type=0, codec="PCMU",
            clock_rate=8000, telephone_event_pt=None, direction=Direction.SENDRECV))
        assert isinstance(events[0], StreamAdded) and isinstance(events[1], StreamAdded)
        assert events[2] == StreamFailed(stream_id="c", reason="unsupported codec L16/8000")
        assert events[3] == StreamFailed(stream_id="zz", reason="unknown stream_id")
        worker.tick(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)
        data = peer.recv(2048)
        packet = RtpPacket.parse(data)
        assert packet.payload == b"\xff" * 160  # PCMU silence
        await worker.handle(UpdateStream(
            stream_id="a", remote_host=HOST, remote_port=peer_port, payload_type=8,
            codec="PCMA", clock_rate=8000, telephone_event_pt=None,
            direction=Direction.SENDRECV))
        assert events[4] == StreamUpdated(stream_id="a")
        worker.tick(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)
        assert RtpPacket.parse(peer.recv(2048)).payload_type == 8
        await worker.handle(RemoveStream(stream_id="a"))
        assert events[5] == StreamRemoved(stream_id="a")
        await worker.handle(Shutdown())
        assert worker.shutdown.is_set()
    finally:
        peer.close()


async def test_clock_does_not_drift() -> None:
    worker = MediaWorker(port_range=free_range(), rtp_timeout=30.0, emit=lambda e: None)
    ticks: list[float] = []
    worker.tick = ticks.append  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.create_task(worker.run_clock())
    await asyncio.sleep(1.0)
    task.cancel()
    elapsed = loop.time() - start
    expected = elapsed / PTIME
    assert abs(len(ticks) - expected) <= 2, (len(ticks), expected)
    # each tick n fires at or after start + n * 20 ms, and never long after it
    lateness = [t - (start + (n + 1) * PTIME) for n, t in enumerate(ticks)]
    assert min(lateness) >= -0.002
    assert sorted(lateness)[len(lateness) // 2] < 0.01
