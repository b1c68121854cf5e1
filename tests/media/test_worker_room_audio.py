"""Room audio in the media worker: VAD and shared encodes, mute, prompts.

In-process tests drive ``MediaWorker.tick`` with injected decoded frames and record the
packets instead of sending them (deterministic); integration tests run the real worker
process through ``MediaSupervisor`` with UDP test peers on 127.0.0.1 and analyse what each
peer receives.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sylkbox.media import g711
from sylkbox.media.codecs import default_registry
from sylkbox.media.control import AddStream, Direction, MediaEvent, PlayPrompt, SetMute
from sylkbox.media.prompts import ensure_prompts
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.supervisor import MediaSupervisor
from sylkbox.media.worker import MediaWorker
from tests.media.audio import band_level, tone
from tests.media.test_supervisor import Peer, open_peer

HOST = "127.0.0.1"


def worker_ports(size: int = 400) -> tuple[int, int]:
    base = 40000 + (os.getpid() % 40) * 500
    return base, base + size


class Recorder:
    """Stands in for a stream's RTP transport: keeps the packets sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def inject(worker: MediaWorker, sid: str, frame: np.ndarray) -> Recorder:
    """Feed ``frame`` to the stream every tick and record its packets instead of sending."""
    entry = worker._entries[sid]
    entry.rtp.close()
    recorder = Recorder()
    entry.rtp = recorder  # type: ignore[assignment]

    def pop_frame(now: float | None = None) -> np.ndarray:
        return frame

    entry.stream.pop_frame = pop_frame  # type: ignore[method-assign]
    return recorder


def g722_add(stream_id: str, room: str = "r") -> AddStream:
    return AddStream(
        room_id=room, stream_id=stream_id, local_host=HOST, local_port=None, remote_host=HOST,
        remote_port=9, payload_type=9, codec="G722", clock_rate=8000, telephone_event_pt=None,
        direction=Direction.SENDRECV,
    )


async def in_process_room(
    count: int, frame_for: Callable[[int], np.ndarray], **kwargs: Any
) -> tuple[MediaWorker, list[MediaEvent], dict[str, Recorder]]:
    events: list[MediaEvent] = []
    worker = MediaWorker(port_range=worker_ports(), rtp_timeout=30.0, emit=events.append,
                         **kwargs)
    recorders: dict[str, Recorder] = {}
    for i in range(count):
        sid = f"s{i}"
        await worker.handle(g722_add(sid))
        recorders[sid] = inject(worker, sid, frame_for(i))
    return worker, events, recorders


def payloads(recorders: dict[str, Recorder]) -> dict[str, bytes]:
    return {sid: RtpPacket.parse(r.sent[-1]).payload for sid, r in recorders.items()}


async def test_silent_listeners_share_one_encoded_payload() -> None:
    voice = tone(500, 16000, 320, amplitude=8000)
    silence = np.zeros(320, dtype=np.int16)
    worker, _, recorders = await in_process_room(5, lambda i: voice if i == 0 else silence)
    try:
        for _ in range(3):
            worker.tick(0.0)
        sent = payloads(recorders)
        assert len({sent[f"s{i}"] for i in range(1, 5)}) == 1  # one encode for 4 listeners
        assert sent["s0"] != sent["s1"]  # the talker gets its own mix-minus
        [room] = worker._rooms.values()
        assert list(room.encoders) == [("G722", 8000, 9)]
        # RTP headers stay per stream: own SSRC and sequence numbers
        headers = [RtpPacket.parse(r.sent[-1]) for r in recorders.values()]
        assert len({p.ssrc for p in headers}) == 5
    finally:
        for sid in list(recorders):
            worker._remove(sid)


async def test_muted_stream_is_not_heard_but_hears() -> None:
    voices = [tone(f, 16000, 320, amplitude=8000) for f in (500.0, 1500.0)]
    silence = np.zeros(320, dtype=np.int16)
    worker, events, recorders = await in_process_room(
        3, lambda i: voices[i] if i < 2 else silence)
    try:
        await worker.handle(SetMute(stream_id="s1", muted=True))
        assert events[-1].stream_id == "s1"  # type: ignore[attr-defined]
        for _ in range(3):
            worker.tick(0.0)
        sent = payloads(recorders)
        assert sent["s2"] == sent["s1"]  # s1 is a listener now: it shares the full mix
        await worker.handle(SetMute(stream_id="s1", muted=False))
        for _ in range(3):
            worker.tick(0.0)
        assert payloads(recorders)["s2"] != payloads(recorders)["s1"]
    finally:
        for sid in list(recorders):
            worker._remove(sid)


async def test_music_while_alone() -> None:
    silence = np.zeros(320, dtype=np.int16)
    worker, _, recorders = await in_process_room(1, lambda i: silence, alone_music=True)
    decoder = default_registry().create("G722", 8000)
    try:
        for _ in range(100):  # 2 s
            worker.tick(0.0)
        heard = np.concatenate([decoder.decode(RtpPacket.parse(p).payload)
                                for p in recorders["s0"].sent])
        assert rms(heard[8000:]) > 300  # the soft music loop
        await worker.handle(g722_add("s1"))  # someone joins: the music stops
        recorders["s1"] = inject(worker, "s1", silence)
        for _ in range(50):
            worker.tick(0.0)
        for sid in ("s0", "s1"):
            tail = [decoder.decode(RtpPacket.parse(p).payload) for p in recorders[sid].sent[-25:]]
            assert rms(np.concatenate(tail)) < 30, sid
    finally:
        for sid in list(recorders):
            worker._remove(sid)


def bench_worker_tick(listeners: int = 150, talkers: int = 3, ticks: int = 200) -> float:
    """Mean seconds per full worker tick (VAD, mix, G.722 encodes, RTP packets) for one
    room of ``listeners`` G.722 streams of which ``talkers`` speak; decoding and jitter
    buffering are not included (frames are injected)."""

    async def run() -> float:
        voices = [tone(300 + 200 * i, 16000, 320, amplitude=6000) for i in range(talkers)]
        rng = np.random.default_rng(3)
        noise = [(rng.standard_normal(320) * 8).astype(np.int16) for _ in range(listeners)]
        worker, _, recorders = await in_process_room(
            listeners, lambda i: voices[i] if i < talkers else noise[i])
        try:
            worker.tick(0.0)
            start = time.perf_counter()
            for _ in range(ticks):
                worker.tick(0.0)
            return (time.perf_counter() - start) / ticks
        finally:
            for sid in list(recorders):
                worker._remove(sid)

    return asyncio.run(run())


def test_worker_tick_cost() -> None:
    """150 G.722 streams with 3 talkers fit well within the 20 ms tick."""
    per_tick = bench_worker_tick(ticks=50)
    assert per_tick < 0.010, per_tick


# ------------------------------------------------------------------- real worker process
@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[MediaSupervisor]:
    sup = MediaSupervisor(worker_ports(60), rtp_timeout=30.0, log_level="WARNING",
                          prompts_dir=ensure_prompts(tmp_path / "prompts"))
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


def pcmu_add(name: str, peer: Peer, room: str = "room") -> AddStream:
    host, port = peer.address
    return AddStream(
        room_id=room, stream_id=name, local_host=HOST, local_port=None, remote_host=host,
        remote_port=port, payload_type=0, codec="PCMU", clock_rate=8000,
        telephone_event_pt=None, direction=Direction.SENDRECV,
    )


async def record(peers: dict[str, Peer], packets: int, timeout: float = 5.0) -> dict[str, Any]:
    """Clear what the peers got so far, then wait until each received ``packets`` more;
    returns each peer's decoded audio (8 kHz)."""
    for peer in peers.values():
        peer.packets.clear()
    deadline = asyncio.get_running_loop().time() + timeout
    while any(len(p.packets) < packets for p in peers.values()):
        assert asyncio.get_running_loop().time() < deadline, "worker stopped sending"
        await asyncio.sleep(0.02)
    return {
        name: np.concatenate([g711.ulaw_decode(p.payload) for p in peer.packets[:packets]])
        for name, peer in peers.items()
    }


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def test_private_prompt_and_join_tone(supervisor: MediaSupervisor) -> None:
    peers = {name: await open_peer() for name in ("alice", "bob", "carol")}
    try:
        for name, peer in peers.items():
            await supervisor.add_stream(pcmu_add(name, peer))
        await record(peers, 5)
        supervisor.play_prompt(PlayPrompt(room_id="room", prompt="alone", stream_id="alice"))
        audio = await record(peers, 75)  # 1.5 s of the spoken prompt
        assert rms(audio["alice"]) > 500, rms(audio["alice"])
        assert rms(audio["bob"]) < 30 and rms(audio["carol"]) < 30  # private: only alice
        await record(peers, 150)  # let the prompt finish
        supervisor.play_prompt(PlayPrompt(room_id="room", prompt="join"))
        audio = await record(peers, 25)
        for name, samples in audio.items():  # everyone hears the chime (and nothing else)
            chime = min(band_level(samples, 8000, 660), band_level(samples, 8000, 990))
            assert chime > 100, name
            assert band_level(samples, 8000, 3000) < chime / 20, name
    finally:
        for peer in peers.values():
            assert peer.transport is not None
            peer.transport.close()


async def test_muted_participant_not_heard_by_others(supervisor: MediaSupervisor) -> None:
    peers = {name: await open_peer() for name in ("alice", "bob", "carol")}
    freqs = {"alice": 440.0, "bob": 1100.0}
    ports = {}
    for name, peer in peers.items():
        ports[name] = await supervisor.add_stream(pcmu_add(name, peer))

    async def speak() -> None:
        loop = asyncio.get_running_loop()
        seq, n, start = 0, 0, loop.time()
        while True:
            for name, freq in freqs.items():
                samples = tone(freq, 8000, 160, amplitude=8000, start=n)
                packet = RtpPacket(payload_type=0, sequence_number=seq, timestamp=n,
                                   ssrc=0x1000 + len(name), marker=False,
                                   payload=g711.ulaw_encode(samples))
                peers[name].send(packet.serialize(), ports[name])
            seq, n = seq + 1, n + 160
            await asyncio.sleep(max(0.0, start + seq * 0.02 - loop.time()))

    sender = asyncio.create_task(speak())
    try:
        audio = await record(peers, 25)
        assert band_level(audio["carol"], 8000, 1100) > 1000
        assert band_level(audio["alice"], 8000, 1100) > 1000
        await supervisor.set_mute("bob", True)
        await record(peers, 10)  # frames already buffered drain
        audio = await record(peers, 25)
        assert band_level(audio["carol"], 8000, 1100) < 60  # nobody hears bob (was > 1000)
        assert band_level(audio["alice"], 8000, 1100) < 60
        assert band_level(audio["carol"], 8000, 440) > 1000
        assert band_level(audio["bob"], 8000, 440) > 1000  # bob still hears the room
        assert supervisor.streams["bob"].muted  # re-created muted after a worker restart
        await supervisor.set_mute("bob", False)
        await record(peers, 10)
        audio = await record(peers, 25)
        assert band_level(audio["carol"], 8000, 1100) > 1000
    finally:
        sender.cancel()
        for peer in peers.values():
            assert peer.transport is not None
            peer.transport.close()


if __name__ == "__main__":
    for talkers in (3, 0, 150):
        per_tick = bench_worker_tick(talkers=talkers)
        print(f"worker tick, 150 G.722 streams, {talkers} talkers: {per_tick * 1000:.2f} ms")
