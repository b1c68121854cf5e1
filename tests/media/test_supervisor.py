"""Integration: the real worker process driven by MediaSupervisor, peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import cast

import numpy as np
import pytest

from sylkbox.media import g711
from sylkbox.media.control import AddStream, Direction, Dtmf, MediaEvent, RtpTimeout, UpdateStream
from sylkbox.media.dtmf import TelephoneEvent
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.supervisor import MediaSupervisor, StreamError
from tests.media.audio import band_level, tone

HOST = "127.0.0.1"
TONES = {"alice": 400.0, "bob": 1100.0, "carol": 2300.0}


def port_range() -> tuple[int, int]:
    base = 30000 + (os.getpid() % 400) * 50
    return base, base + 49


class Peer(asyncio.DatagramProtocol):
    """A test RTP endpoint: records what it receives."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(RtpPacket.parse(data))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))


async def open_peer() -> Peer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        Peer, local_addr=(HOST, 0))
    return peer


def add_command(name: str, peer: Peer, *, room: str = "room", codec: str = "PCMU",
                pt: int = 0) -> AddStream:
    host, port = peer.address
    return AddStream(
        room_id=room, stream_id=name, local_host=HOST, local_port=None, remote_host=host,
        remote_port=port, payload_type=pt, codec=codec, clock_rate=8000, telephone_event_pt=101,
        direction=Direction.SENDRECV,
    )


@pytest.fixture
async def supervisor() -> AsyncIterator[MediaSupervisor]:
    sup = MediaSupervisor(port_range(), rtp_timeout=30.0, log_level="WARNING")
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


async def exchange_tones(peers: dict[str, Peer], ports: dict[str, int],
                         seconds: float = 1.2) -> None:
    """Every peer sends its own PCMU tone in real time for ``seconds``."""
    loop = asyncio.get_running_loop()
    ssrc = {name: 1000 + i for i, name in enumerate(peers)}
    for peer in peers.values():
        peer.packets.clear()
    start = loop.time()
    for i in range(round(seconds / 0.02)):
        for name, peer in peers.items():
            samples = tone(TONES[name], 8000, 160, start=160 * i)
            packet = RtpPacket(payload_type=0, sequence_number=i, timestamp=160 * i,
                               ssrc=ssrc[name], payload=g711.ulaw_encode(samples))
            peer.send(packet.serialize(), ports[name])
        await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - loop.time()))
    await asyncio.sleep(0.1)


def received_audio(peer: Peer, skip: int = 20) -> np.ndarray:
    packets = peer.packets[skip:]  # loopback keeps the order
    assert len(packets) >= 30, len(packets)
    return g711.ulaw_decode(b"".join(p.payload for p in packets))


def assert_mix_minus(peers: dict[str, Peer]) -> None:
    for name, peer in peers.items():
        audio = received_audio(peer)
        levels = {other: band_level(audio, 8000, f) for other, f in TONES.items()}
        heard = [levels[o] for o in TONES if o != name]
        assert min(heard) > 500, (name, levels)
        assert levels[name] < 0.02 * min(heard), (name, levels)


async def next_event(events: AsyncIterator[MediaEvent], timeout: float) -> MediaEvent:
    return await asyncio.wait_for(anext(events), timeout)


async def test_three_party_mix_minus_and_restart(supervisor: MediaSupervisor) -> None:
    peers = {name: await open_peer() for name in TONES}
    try:
        ports = {name: await supervisor.add_stream(add_command(name, peer))
                 for name, peer in peers.items()}
        low, high = supervisor.port_range
        assert all(p % 2 == 0 and low <= p < high for p in ports.values())
        assert len(set(ports.values())) == 3
        await exchange_tones(peers, ports)
        assert_mix_minus(peers)
        # every packet the worker sent is well-formed, one SSRC per stream, 20 ms of PCMU
        for peer in peers.values():
            assert len({p.ssrc for p in peer.packets}) == 1
            assert all(p.payload_type == 0 and len(p.payload) == 160 for p in peer.packets)

        old_pid = supervisor.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(100):
            if supervisor.restarts == 1 and supervisor.pid != old_pid:
                break
            await asyncio.sleep(0.05)
        await asyncio.wait_for(supervisor.wait_ready(), 10)
        assert supervisor.pid != old_pid
        assert {n: s.local_port for n, s in supervisor.streams.items()} == ports
        await exchange_tones(peers, ports)
        assert_mix_minus(peers)

        # hold: the held stream is neither heard nor sent to
        host, port = peers["carol"].address
        await supervisor.update_stream(UpdateStream(
            stream_id="carol", remote_host=host, remote_port=port, payload_type=0, codec="PCMU",
            clock_rate=8000, telephone_event_pt=101, direction=Direction.RECVONLY))
        await exchange_tones(peers, ports)
        assert len(peers["carol"].packets) <= 2  # at most what was in flight
        alice = received_audio(peers["alice"])
        assert band_level(alice, 8000, TONES["carol"]) < 0.02 * band_level(
            alice, 8000, TONES["bob"])

        await supervisor.remove_stream("bob")
        await supervisor.remove_stream("bob")  # idempotent
        assert set(supervisor.streams) == {"alice", "carol"}
    finally:
        for peer in peers.values():
            assert peer.transport is not None
            peer.transport.close()


async def test_stream_failures(supervisor: MediaSupervisor) -> None:
    peer = await open_peer()
    try:
        with pytest.raises(StreamError, match="unsupported codec"):
            await supervisor.add_stream(add_command("x", peer, codec="G729", pt=18))
        port = await supervisor.add_stream(add_command("a", peer))
        taken = replace(add_command("b", peer), local_port=port)
        with pytest.raises(StreamError, match="cannot bind"):
            await supervisor.add_stream(taken)
        with pytest.raises(StreamError, match="duplicate"):
            await supervisor.add_stream(add_command("a", peer))
        assert set(supervisor.streams) == {"a"}
    finally:
        assert peer.transport is not None
        peer.transport.close()


async def test_rtp_timeout_and_dtmf() -> None:
    sup = MediaSupervisor(port_range(), rtp_timeout=1.0, log_level="WARNING")
    await sup.start()
    peer = await open_peer()
    events = sup.events()
    try:
        port = await sup.add_stream(add_command("dtmf", peer))
        ts = 4000
        payloads = [TelephoneEvent.for_digit("5", duration=160 * k).serialize() for k in (1, 2, 3)]
        payloads += [TelephoneEvent.for_digit("5", end=True, duration=640).serialize()] * 3
        for seq, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=101, sequence_number=seq, timestamp=ts, ssrc=9,
                               marker=seq == 0, payload=payload)
            peer.send(packet.serialize(), port)
            await asyncio.sleep(0.02)
        event = await next_event(events, 2.0)
        assert event == Dtmf(stream_id="dtmf", digit="5")
        # nothing more is sent: the next event is the timeout, about a second later
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        event = await next_event(events, 3.0)
        assert event == RtpTimeout(stream_id="dtmf")
        assert 0.7 < loop.time() - sent_at < 1.6
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        assert peer.transport is not None
        peer.transport.close()
        await sup.stop()
