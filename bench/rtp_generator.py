"""Lightweight RTP senders and recorders for the audio benchmarks, run in separate processes.

    python bench/rtp_generator.py send --spec SPEC.json
    python bench/rtp_generator.py record --spec SPEC.json

A *sender* plays pre-encoded 20 ms payloads (``FrameSet``: one file per source, written by
the benchmark before the run) on many RTP streams at once, one packet per stream per 20 ms
against absolute ``time.monotonic()`` deadlines (CLOCK_MONOTONIC is shared by all processes
of the machine, so send and receive times of different processes compare directly).
Packets follow RFC 3550 section 5.1 (version 2, sequence +1, timestamp + one frame, marker
on the first packet). An optional seeded impairment drops a fraction of the packets and
delays each by a uniform random jitter, which reorders them as a real network would; the
same seed gives the same losses and delays on every run.

A *recorder* binds UDP sockets and stores every datagram with its arrival time in an
``.npz`` file that :func:`load_recording` reads back; :func:`decode_timeline` places the
decoded payloads on the sender's RTP timestamp axis (gaps left as silence), which is how
the benchmarks turn what a participant received into audio.

Both print one JSON line ``{"ready": true}`` on stdout once their sockets are bound and
``{"done": true, ...}`` at the end. They only ever send to the addresses in the spec.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FrameSet",
    "Recording",
    "decode_timeline",
    "load_recording",
    "main",
    "make_codec",
    "rtp_header",
]

Int16Array = npt.NDArray[np.int16]
PTIME = 0.02


# --------------------------------------------------------------------------------------------
# codecs used to pre-encode and to decode what was recorded (independent of sylkbox.media)


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """Encoding name, RTP clock rate, PCM rate, timestamp step per 20 ms, default PT."""

    name: str
    clock_rate: int
    sample_rate: int
    ts_step: int
    payload_type: int


CODECS = {
    "PCMU": CodecInfo("PCMU", 8000, 8000, 160, 0),
    "PCMA": CodecInfo("PCMA", 8000, 8000, 160, 8),
    "G722": CodecInfo("G722", 8000, 16000, 160, 9),
    "OPUS": CodecInfo("opus", 48000, 16000, 960, 111),
}


class _Coder:
    """encode(int16 PCM at sample_rate) -> bytes, decode(bytes) -> int16 PCM; stateful."""

    def __init__(self, info: CodecInfo) -> None:
        self.info = info
        name = info.name.upper()
        if name == "G722":
            import G722

            self._enc = G722.G722(16000, 64000)
            self._dec = G722.G722(16000, 64000)
            self.encode: Callable[[Int16Array], bytes] = lambda pcm: bytes(self._enc.encode(pcm))
            self.decode: Callable[[bytes], Int16Array] = lambda data: np.asarray(
                self._dec.decode(data), dtype=np.int16
            )
        elif name == "OPUS":
            import opuslib

            enc = opuslib.Encoder(16000, 1, opuslib.APPLICATION_VOIP)
            dec = opuslib.Decoder(16000, 1)
            self.encode = lambda pcm: bytes(enc.encode(pcm.astype("<i2").tobytes(), len(pcm)))
            self.decode = lambda data: np.frombuffer(dec.decode(data, 320), dtype="<i2").astype(
                np.int16
            )
        elif name in ("PCMU", "PCMA"):
            from sylkbox.media import g711

            if name == "PCMU":
                self.encode, self.decode = g711.ulaw_encode, g711.ulaw_decode
            else:
                self.encode, self.decode = g711.alaw_encode, g711.alaw_decode
        else:
            raise ValueError(f"unknown codec {info.name}")


def make_codec(name: str) -> _Coder:
    """A fresh encoder/decoder pair for ``name`` (PCMU, PCMA, G722, OPUS)."""
    return _Coder(CODECS[name.upper()])


@dataclass(frozen=True, slots=True)
class FrameSet:
    """Pre-encoded 20 ms payloads, stored as (u16 length, payload)* in one file."""

    payloads: tuple[bytes, ...]

    @classmethod
    def encode(cls, codec: str, pcm: Int16Array) -> FrameSet:
        """Encode ``pcm`` (at the codec's PCM rate) into whole 20 ms frames."""
        coder = make_codec(codec)
        n = round(coder.info.sample_rate * PTIME)
        frames = [coder.encode(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]
        return cls(tuple(frames))

    def save(self, path: Path) -> None:
        with path.open("wb") as f:
            for payload in self.payloads:
                f.write(struct.pack("!H", len(payload)) + payload)

    @classmethod
    def load(cls, path: Path) -> FrameSet:
        data = path.read_bytes()
        out, pos = [], 0
        while pos < len(data):
            (length,) = struct.unpack_from("!H", data, pos)
            out.append(data[pos + 2 : pos + 2 + length])
            pos += 2 + length
        return cls(tuple(out))


def rtp_header(pt: int, seq: int, ts: int, ssrc: int, *, marker: bool = False) -> bytes:
    """The fixed 12-byte RTP header, RFC 3550 section 5.1."""
    return struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )


# --------------------------------------------------------------------------------------------
# sender


@dataclass(slots=True)
class _TxStream:
    sock: socket.socket
    dest: tuple[str, int]
    pt: int
    ts_step: int
    frames: tuple[bytes, ...]
    ssrc: int
    seq: int
    ts: int
    index: int = 0
    loop: bool = True


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # what we get back is dropped
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def run_sender(spec: dict[str, Any]) -> dict[str, Any]:
    """Send as described by ``spec`` (see ``bench/audio_*.py`` for how it is built).

    Keys: ``streams`` (list of ``{dest: [host, port], local: [host, port], pt, ts_step,
    frames: path, loop}``), ``start`` (monotonic time of the first packet), ``duration``
    (seconds), ``impair`` (``{loss, jitter_ms, seed}``, optional, applied to every stream),
    ``send_log`` (optional ``.npy`` path: send time of every packet of stream 0, NaN when
    dropped or delayed by the impairment), ``slots`` (spread the streams over this many
    evenly spaced send instants per 20 ms, as independent clients are; default 1).
    """
    rng = random.Random(spec.get("seed", 1))
    frame_cache: dict[str, tuple[bytes, ...]] = {}
    streams: list[_TxStream] = []
    for s in spec["streams"]:
        frames = frame_cache.get(s["frames"])
        if frames is None:
            frames = frame_cache[s["frames"]] = FrameSet.load(Path(s["frames"])).payloads
        local = s.get("local") or ["127.0.0.1", 0]
        streams.append(
            _TxStream(
                sock=_bind(local[0], int(local[1])),
                dest=(s["dest"][0], int(s["dest"][1])),
                pt=int(s["pt"]),
                ts_step=int(s["ts_step"]),
                frames=frames,
                ssrc=rng.getrandbits(32),
                seq=rng.getrandbits(16),
                ts=rng.getrandbits(32),
                loop=bool(s.get("loop", True)),
            )
        )
    impair = spec.get("impair") or {}
    loss = float(impair.get("loss", 0.0))
    jitter = float(impair.get("jitter_ms", 0.0)) / 1000.0
    irng = random.Random(int(impair.get("seed", 7)))
    ticks = round(float(spec["duration"]) / PTIME)
    start = float(spec.get("start") or time.monotonic() + 0.2)
    send_log = np.full(ticks, np.nan)
    pending: list[tuple[float, int, bytes, int]] = []  # (due, order, packet, stream index)
    order = 0
    sent = dropped = 0
    print(json.dumps({"ready": True, "ports": [s.sock.getsockname()[1] for s in streams]}),
          flush=True)
    slots = max(1, int(spec.get("slots", 1)))
    by_slot: list[list[int]] = [[] for _ in range(slots)]
    for i in range(len(streams)):
        by_slot[i % slots].append(i)
    for k in range(ticks):
        for slot, members in enumerate(by_slot):
            if not members:
                continue
            deadline = start + k * PTIME + slot * PTIME / slots
            while True:  # flush delayed packets due before this slot, then wait for it
                now = time.monotonic()
                while pending and pending[0][0] <= now:
                    _, _, packet, i = heapq.heappop(pending)
                    _send(streams[i], packet)
                    sent += 1
                if now >= deadline:
                    break
                wake = min(deadline, pending[0][0]) if pending else deadline
                time.sleep(max(0.0, wake - now))
            for i in members:
                st = streams[i]
                if st.index >= len(st.frames):
                    if not st.loop:
                        continue
                    st.index = 0
                packet = rtp_header(st.pt, st.seq, st.ts, st.ssrc, marker=k == 0)
                packet += st.frames[st.index]
                st.index += 1
                st.seq += 1
                st.ts += st.ts_step
                if loss and irng.random() < loss:
                    dropped += 1
                    continue
                if jitter:
                    due = deadline + irng.uniform(0, 2 * jitter)
                    heapq.heappush(pending, (due, order, packet, i))
                    order += 1
                    continue
                _send(st, packet)
                sent += 1
                if i == 0:
                    send_log[k] = time.monotonic()
    while pending:
        due, _, packet, i = heapq.heappop(pending)
        time.sleep(max(0.0, due - time.monotonic()))
        _send(streams[i], packet)
        sent += 1
    if spec.get("send_log"):
        np.save(spec["send_log"], send_log)
    for st in streams:
        st.sock.close()
    return {"sent": sent, "dropped": dropped, "late_ms": (time.monotonic() - start) * 1000}


def _send(st: _TxStream, packet: bytes) -> None:
    # loopback buffer full or nobody listening: the packet is lost, as on a network
    with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
        st.sock.sendto(packet, st.dest)


# --------------------------------------------------------------------------------------------
# recorder


@dataclass(frozen=True, slots=True)
class Recording:
    """Datagrams received on each socket: arrival time (monotonic) and bytes."""

    socket_index: npt.NDArray[np.int32]
    arrival: npt.NDArray[np.float64]
    packets: tuple[bytes, ...]

    def of(self, index: int) -> list[tuple[float, bytes]]:
        return [
            (float(t), p)
            for t, i, p in zip(self.arrival, self.socket_index, self.packets, strict=True)
            if i == index
        ]


def run_recorder(spec: dict[str, Any]) -> dict[str, Any]:
    """Keys: ``local`` (list of [host, port]), ``duration`` (s), ``out`` (.npz path)."""
    socks = [_bind(h, int(p)) for h, p in spec["local"]]
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    fd_index = {sock.fileno(): i for i, sock in enumerate(socks)}
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    print(json.dumps({"ready": True}), flush=True)
    end = time.monotonic() + float(spec["duration"])
    index: list[int] = []
    arrival: list[float] = []
    packets: list[bytes] = []
    while (left := end - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            sock = socks[fd_index[fd]]
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                arrival.append(time.monotonic())
                index.append(fd_index[fd])
                packets.append(data)
    lengths = np.array([len(p) for p in packets], dtype=np.int32)
    np.savez(
        spec["out"],
        index=np.array(index, dtype=np.int32),
        arrival=np.array(arrival, dtype=np.float64),
        lengths=lengths,
        blob=np.frombuffer(b"".join(packets), dtype=np.uint8),
    )
    for sock in socks:
        sock.close()
    return {"received": len(packets)}


def load_recording(path: Path) -> Recording:
    data = np.load(path)
    blob = data["blob"].tobytes()
    offsets = np.concatenate(([0], np.cumsum(data["lengths"])))
    packets = tuple(blob[offsets[i] : offsets[i + 1]] for i in range(len(data["lengths"])))
    return Recording(data["index"], data["arrival"], packets)


def decode_timeline(
    packets: Iterable[tuple[float, bytes]], codec: str
) -> tuple[Int16Array, list[tuple[float, int]]]:
    """Decode RTP packets (arrival, bytes) of one stream onto the RTP timestamp axis.

    Returns PCM at the codec's PCM rate (sample 0 = the first packet's timestamp; missing
    packets leave silence) and, per packet, (arrival time, first sample index).
    """
    coder = make_codec(codec)
    info = coder.info
    ratio = info.sample_rate / info.clock_rate
    items = []
    for t, data in packets:
        if len(data) < 12 or data[0] >> 6 != 2:
            continue
        cc = data[0] & 0x0F
        pt = data[1] & 0x7F
        if pt >= 72 and pt <= 76:
            continue  # RTCP multiplexed
        (seq, ts) = struct.unpack_from("!HI", data, 2)
        items.append((t, seq, ts, data[12 + 4 * cc :], pt))
    if not items:
        return np.zeros(0, dtype=np.int16), []
    main_pt = max({i[4] for i in items}, key=lambda p: sum(1 for i in items if i[4] == p))
    items = [i for i in items if i[4] == main_pt]
    # decode in sequence order (stateful codecs; signed distance handles wrap and
    # reordering around the first arrival), place by timestamp relative to the first
    s0 = items[0][1]
    ordered = sorted(items, key=lambda i: ((i[1] - s0 + 0x8000) & 0xFFFF) - 0x8000)
    base = ordered[0][2]
    chunks: list[tuple[int, Int16Array]] = []
    marks: list[tuple[float, int]] = []
    for t, _, ts, payload, _ in ordered:
        offset = ((ts - base + 2**31) % 2**32) - 2**31
        pcm = coder.decode(payload)
        pos = round(offset * ratio)
        if pos < 0:
            continue
        chunks.append((pos, pcm))
        marks.append((t, pos))
    total = max(p + len(c) for p, c in chunks)
    out = np.zeros(total, dtype=np.int16)
    for pos, pcm in chunks:
        out[pos : pos + len(pcm)] = pcm
    return out, marks


# --------------------------------------------------------------------------------------------


def pin_to(cores: set[int]) -> None:
    """Pin this process to ``cores`` (ignored where the cores do not exist)."""
    available = os.sched_getaffinity(0)
    wanted = cores & available
    if wanted:
        os.sched_setaffinity(0, wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("send", "record"))
    parser.add_argument("--spec", type=Path, required=True, help="JSON spec file")
    parser.add_argument("--cpu", type=int, action="append", help="pin to this core (repeat)")
    args = parser.parse_args(argv)
    if args.cpu:
        pin_to(set(args.cpu))
    spec = json.loads(args.spec.read_text())
    result = run_sender(spec) if args.mode == "send" else run_recorder(spec)
    print(json.dumps({"done": True, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
