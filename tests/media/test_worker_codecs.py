"""Integration: the real worker (via MediaSupervisor) mixing G.722, Opus and PCMU streams.

Three test sockets on 127.0.0.1 join one room, each with its own codec, and send a tone
encoded with that codec in real time; each must hear the other two tones and not its own,
in a 16 kHz room and in a 48 kHz one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from sylkbox.media.codecs import Codec, default_registry
from sylkbox.media.control import AddStream, Direction
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.supervisor import MediaSupervisor
from tests.media.audio import band_level, tone
from tests.media.test_supervisor import HOST, Peer, open_peer


@dataclass(frozen=True)
class Leg:
    codec: str
    clock_rate: int
    payload_type: int
    tone: float
    timestamp_step: int


LEGS = {
    "alice": Leg("G722", 8000, 9, 500.0, 160),
    "bob": Leg("opus", 48000, 111, 1100.0, 960),
    "carol": Leg("PCMU", 8000, 0, 2300.0, 160),
}


def port_range() -> tuple[int, int]:
    base = 20000 + (os.getpid() % 200) * 50
    return base, base + 49


@pytest.fixture
async def supervisor() -> AsyncIterator[MediaSupervisor]:
    sup = MediaSupervisor(port_range(), rtp_timeout=30.0, log_level="WARNING")
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


def codec_for(leg: Leg) -> Codec:
    return default_registry().create(leg.codec, leg.clock_rate)


async def send_tones(peers: dict[str, Peer], ports: dict[str, int], seconds: float) -> None:
    """Every peer sends its tone, encoded with its own codec, paced at 20 ms."""
    loop = asyncio.get_running_loop()
    encoders = {name: codec_for(LEGS[name]) for name in peers}
    start = loop.time()
    for i in range(round(seconds / 0.02)):
        for name, peer in peers.items():
            leg, codec = LEGS[name], encoders[name]
            n = codec.samples_per_frame
            payload = codec.encode(tone(leg.tone, codec.sample_rate, n, start=n * i))
            packet = RtpPacket(payload_type=leg.payload_type, sequence_number=i,
                               timestamp=leg.timestamp_step * i, ssrc=7000 + len(name),
                               marker=i == 0, payload=payload)
            peer.send(packet.serialize(), ports[name])
        await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - loop.time()))
    await asyncio.sleep(0.2)


@pytest.mark.parametrize("room_rate", [16000, 48000])
async def test_g722_opus_and_pcmu_in_one_room(
    supervisor: MediaSupervisor, room_rate: int
) -> None:
    peers = {name: await open_peer() for name in LEGS}
    try:
        ports = {}
        for name, peer in peers.items():
            leg = LEGS[name]
            host, port = peer.address
            ports[name] = await supervisor.add_stream(AddStream(
                room_id=f"codecs-{room_rate}", stream_id=name, local_host=HOST,
                local_port=None, remote_host=host, remote_port=port,
                payload_type=leg.payload_type, codec=leg.codec, clock_rate=leg.clock_rate,
                telephone_event_pt=None, direction=Direction.SENDRECV, room_rate=room_rate))
        await send_tones(peers, ports, seconds=1.6)

        for name, peer in peers.items():
            leg = LEGS[name]
            packets = peer.packets
            assert len(packets) >= 60, (name, len(packets))
            assert {p.payload_type for p in packets} == {leg.payload_type}
            assert len({p.ssrc for p in packets}) == 1
            steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(packets)}
            assert steps == {leg.timestamp_step}, (name, steps)  # RFC 3551 4.5.2, RFC 7587 4.1
            if leg.codec == "G722":
                assert {len(p.payload) for p in packets} == {160}

            decoder = codec_for(leg)
            audio = np.concatenate([decoder.decode(p.payload) for p in packets])
            tail = audio[len(audio) // 2 :]  # the second half: every talker is flowing
            rate = decoder.sample_rate
            levels = {other: band_level(tail, rate, o.tone) for other, o in LEGS.items()}
            heard = [levels[o] for o in LEGS if o != name]
            assert min(heard) > 500, (name, room_rate, levels)
            assert levels[name] < 0.02 * min(heard), (name, room_rate, levels)
    finally:
        for peer in peers.values():
            assert peer.transport is not None
            peer.transport.close()
