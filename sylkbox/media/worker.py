"""The media worker process: RTP sockets, per-room mixing on a 20 ms clock.

Run as ``python -m sylkbox.media.worker --port-range 50000-50999 --rtp-timeout 30``.
Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout (see
``control``), logs go to stderr. End of stdin (the main process went away) shuts the worker
down. Each stream binds RTP on an even port and RTCP on the next odd one (RFC 3550 section
11); each stream sends SR/RR + SDES about every 5 s and emits ``StreamStats`` with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sylkbox.media.codecs import Codec, CodecRegistry, UnknownCodecError, default_registry
from sylkbox.media.control import (
    AddStream,
    ControlError,
    GetStats,
    MediaCommand,
    MediaEvent,
    PlayPrompt,
    RemoveStream,
    RtpTimeout,
    SetMute,
    Shutdown,
    StreamAdded,
    StreamFailed,
    StreamRemoved,
    StreamUpdated,
    TickStats,
    UpdateStream,
    WorkerReady,
    from_json,
    to_json,
)
from sylkbox.media.control import Dtmf as DtmfEvent
from sylkbox.media.mixer import RoomMixer
from sylkbox.media.prompts import Playout, PromptLibrary
from sylkbox.media.resample import Resampler
from sylkbox.media.rtp import is_rtcp
from sylkbox.media.srtp import SrtpContext, SrtpError
from sylkbox.media.stream import Address, Stream, StreamParams

__all__ = ["MediaWorker", "PortAllocator", "TickMeter", "main", "parse_port_range"]

logger = logging.getLogger(__name__)

PTIME = 0.02
MAX_LAG = 0.2
SRTP_LOG_INTERVAL = 10.0
"""At most one log line per stream this often (seconds) about packets failing SRTP checks."""
"""When the clock falls this far behind (seconds), skip ticks instead of catching up."""
LATE_START = 0.005
"""A tick that starts more than this after its deadline (seconds) is late."""
MAX_TICK_SAMPLES = 60_000
"""Processing times kept per statistics window (20 minutes of ticks)."""


class TickMeter:
    """Mixer clock statistics over a window of ticks (see ``control.TickStats``).

    A tick is late when it starts more than ``LATE_START`` after its deadline or when its
    processing takes longer than one ptime; skipped ticks count as late ticks.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ticks = 0
        self.late_ticks = 0
        self.max_late = 0.0
        self._durations: list[float] = []

    def record(self, lateness: float, duration: float) -> None:
        """One tick that started ``lateness`` s after its deadline and ran ``duration`` s."""
        self.ticks += 1
        if lateness > LATE_START or duration > PTIME:
            self.late_ticks += 1
        self.max_late = max(self.max_late, lateness)
        if len(self._durations) < MAX_TICK_SAMPLES:
            self._durations.append(duration)

    def skipped(self, count: int, lateness: float) -> None:
        """``count`` ticks never ran because the clock was ``lateness`` s behind."""
        self.ticks += count
        self.late_ticks += count
        self.max_late = max(self.max_late, lateness)

    def snapshot(self, *, reset: bool = False) -> TickStats:
        durations = sorted(self._durations)
        mean = sum(durations) / len(durations) if durations else 0.0
        p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))] if durations else 0.0
        stats = TickStats(
            ticks=self.ticks,
            late_ticks=self.late_ticks,
            max_late_ms=round(self.max_late * 1000, 3),
            mean_tick_ms=round(mean * 1000, 3),
            p99_tick_ms=round(p99 * 1000, 3),
        )
        if reset:
            self.reset()
        return stats


def parse_port_range(text: str) -> tuple[int, int]:
    """``"50000-50999"`` -> (50000, 50999); at least one even RTP port with RTCP above it."""
    first, sep, last = text.partition("-")
    start, end = int(first), int(last if sep else first)
    if not 1024 <= start < end <= 65535 or start + (start & 1) + 1 > end:
        raise ValueError(f"bad port range {text!r}")
    return start, end


class PortAllocator:
    """Even RTP ports (RTCP = port + 1) from an inclusive range, tried round-robin."""

    def __init__(self, start: int, end: int) -> None:
        self._ports = list(range(start + (start & 1), end, 2))
        self._cursor = 0
        self._used: set[int] = set()

    def allocate(self, host: str, port: int | None) -> tuple[int, socket.socket, socket.socket]:
        """Bind RTP and RTCP sockets; a requested ``port`` is used or fails (OSError)."""
        if port is not None:
            if port in self._used:
                raise OSError(f"port {port} already in use by another stream")
            rtp, rtcp = _bind_pair(host, port)
            self._used.add(port)
            return port, rtp, rtcp
        for _ in range(len(self._ports)):
            candidate = self._ports[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._ports)
            if candidate in self._used:
                continue
            try:
                rtp, rtcp = _bind_pair(host, candidate)
            except OSError:
                continue
            self._used.add(candidate)
            return candidate, rtp, rtcp
        raise OSError("no free RTP port in range")

    def release(self, port: int) -> None:
        self._used.discard(port)


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    rtp = socket.socket(family, socket.SOCK_DGRAM)
    rtcp = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rtp.bind((host, port))
        rtcp.bind((host, port + 1))
    except OSError:
        rtp.close()
        rtcp.close()
        raise
    rtp.setblocking(False)
    rtcp.setblocking(False)
    return rtp, rtcp


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = addr[0], addr[1]
        assert isinstance(host, str) and isinstance(port, int)
        self._on_datagram(data, (host, port))

    def error_received(self, exc: Exception) -> None:
        logger.debug("x socket error: %s", exc)  # ICMP port unreachable and the like


@dataclass(slots=True)
class _Entry:
    stream: Stream
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    srtp: SrtpContext | None = None  # SDES-keyed SRTP (RFC 3711), None for plain RTP
    srtp_logged_at: float = -SRTP_LOG_INTERVAL
    muted: bool = False  # SetMute: not heard by the room, still hears it


_EncodingKey = tuple[str, int, int]
"""(codec name, clock rate, payload type): listeners with equal keys can share a payload."""


@dataclass(slots=True)
class _SharedEncoder:
    """The room's one encoder for the full mix heard by every silent listener of a codec."""

    codec: Codec
    resampler: Resampler

    def encode(self, frame: npt.NDArray[np.int16]) -> bytes:
        return self.codec.encode(self.resampler.process(frame))


@dataclass(slots=True)
class _Room:
    mixer: RoomMixer[str]
    stream_ids: list[str] = field(default_factory=list)
    prompts: deque[Playout] = field(default_factory=deque)  # to everyone, one after another
    private: dict[str, deque[Playout]] = field(default_factory=dict)  # to one stream each
    music: Playout | None = None  # while one stream is alone in the room
    encoders: dict[_EncodingKey, _SharedEncoder] = field(default_factory=dict)

    def overlay(self, n: int) -> npt.NDArray[np.int16] | None:
        """This tick's room-wide prompt frame or, for a lone stream, the music."""
        frame = _next_frame(self.prompts, n)
        alone = len(self.stream_ids) == 1 and not self.private.get(self.stream_ids[0])
        if frame is None and self.music is not None and alone:
            frame = self.music.next_frame(n)
        return frame

    def private_frame(self, stream_id: str, n: int) -> npt.NDArray[np.int16] | None:
        queue = self.private.get(stream_id)
        if not queue:
            return None
        frame = _next_frame(queue, n)
        if not queue:
            del self.private[stream_id]
        return frame


def _next_frame(queue: deque[Playout], n: int) -> npt.NDArray[np.int16] | None:
    while queue:
        frame = queue[0].next_frame(n)
        if frame is not None:
            return frame
        queue.popleft()
    return None


class MediaWorker:
    """Streams and rooms of one worker process; ``emit`` delivers events to the parent."""

    def __init__(
        self,
        *,
        port_range: tuple[int, int],
        rtp_timeout: float,
        emit: Callable[[MediaEvent], None],
        registry: CodecRegistry | None = None,
        prompts: PromptLibrary | None = None,
        alone_music: bool = False,
    ) -> None:
        self._prompts = prompts or PromptLibrary()
        self._alone_music = alone_music
        self._ports = PortAllocator(*port_range)
        self._rtp_timeout = rtp_timeout
        self._emit = emit
        self._registry = registry or default_registry()
        self._entries: dict[str, _Entry] = {}
        self._rooms: dict[str, _Room] = {}
        self.shutdown = asyncio.Event()
        self.tick_meter = TickMeter()
        self.tick_stats_interval = 0.0
        """Emit ``TickStats`` (and start a new window) every this many seconds; 0: never."""

    async def handle(self, command: MediaCommand) -> None:
        """Execute one command and emit its reply event."""
        match command:
            case AddStream():
                await self._add(command)
            case UpdateStream():
                self._update(command)
            case RemoveStream(stream_id=stream_id):
                self._remove(stream_id)
                self._emit(StreamRemoved(stream_id=stream_id))
            case GetStats(reset=reset):
                self._emit(self.tick_meter.snapshot(reset=reset))
            case SetMute(stream_id=stream_id, muted=muted):
                self._set_mute(stream_id, muted)
            case PlayPrompt():
                self._play(command)
            case Shutdown():
                for stream_id in list(self._entries):
                    self._remove(stream_id)
                self.shutdown.set()
            case _:
                logger.warning("unhandled command %r", command)

    async def _add(self, cmd: AddStream) -> None:
        loop = asyncio.get_running_loop()
        if cmd.stream_id in self._entries:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason="duplicate stream_id"))
            return
        existing = self._rooms.get(cmd.room_id)
        rate = existing.mixer.rate if existing is not None else cmd.room_rate
        try:  # codecs that can (Opus) work at the room rate: no resampling
            codec = self._registry.create(cmd.codec, cmd.clock_rate, sample_rate=rate)
        except UnknownCodecError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=str(exc)))
            return
        try:
            srtp = SrtpContext(cmd.srtp) if cmd.srtp is not None else None
        except ValueError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=f"SRTP: {exc}"))
            return
        try:
            port, rtp_sock, rtcp_sock = self._ports.allocate(cmd.local_host, cmd.local_port)
        except OSError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=f"cannot bind: {exc}"))
            return
        room = self._rooms.get(cmd.room_id)
        if room is None:
            room = self._rooms[cmd.room_id] = self._new_room(cmd.room_rate)
        remote = (cmd.remote_host, cmd.remote_port) if cmd.remote_port else None
        stream = Stream(
            stream_id=cmd.stream_id,
            room_id=cmd.room_id,
            local_port=port,
            params=StreamParams(
                remote=remote,
                payload_type=cmd.payload_type,
                codec=codec,
                telephone_event_pt=cmd.telephone_event_pt,
                direction=cmd.direction,
            ),
            room_rate=room.mixer.rate,
            rtp_timeout=self._rtp_timeout,
            now=loop.time(),
        )
        sid = cmd.stream_id
        rtp, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(lambda d, a: self._on_rtp(sid, d, a)), sock=rtp_sock
        )
        rtcp, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(lambda d, a: self._on_rtcp(sid, d, a)), sock=rtcp_sock
        )
        self._entries[sid] = _Entry(stream, rtp, rtcp, srtp, muted=cmd.muted)
        room.stream_ids.append(sid)
        logger.info("+ stream %s room %s port %d %s/%d %s -> %s", sid, cmd.room_id, port,
                    codec.name, codec.clock_rate, cmd.direction, remote)
        if srtp is not None:
            logger.info("  stream %s SRTP %s", sid, srtp.params.suite)  # never the keys
        self._emit(StreamAdded(stream_id=sid, local_port=port))

    def _update(self, cmd: UpdateStream) -> None:
        entry = self._entries.get(cmd.stream_id)
        if entry is None:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason="unknown stream_id"))
            return
        try:
            codec = self._registry.create(
                cmd.codec, cmd.clock_rate, sample_rate=entry.stream.room_rate
            )
        except UnknownCodecError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=str(exc)))
            return
        try:
            srtp = self._rekey(entry.srtp, cmd)
        except ValueError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=f"SRTP: {exc}"))
            return
        entry.srtp = srtp
        remote = (cmd.remote_host, cmd.remote_port) if cmd.remote_port else None
        params = StreamParams(
            remote=remote,
            payload_type=cmd.payload_type,
            codec=codec,
            telephone_event_pt=cmd.telephone_event_pt,
            direction=cmd.direction,
        )
        entry.stream.update(params, asyncio.get_running_loop().time())
        logger.info("~ stream %s %s/%d %s -> %s", cmd.stream_id, codec.name, codec.clock_rate,
                    cmd.direction, remote)
        self._emit(StreamUpdated(stream_id=cmd.stream_id))

    def _remove(self, stream_id: str) -> None:
        entry = self._entries.pop(stream_id, None)
        if entry is None:
            return
        entry.rtp.close()
        entry.rtcp.close()
        self._ports.release(entry.stream.local_port)
        room = self._rooms[entry.stream.room_id]
        room.stream_ids.remove(stream_id)
        room.private.pop(stream_id, None)
        room.mixer.forget(stream_id)
        if not room.stream_ids:
            del self._rooms[entry.stream.room_id]
        logger.info("- stream %s", stream_id)

    def _new_room(self, rate: int) -> _Room:
        room = _Room(RoomMixer(rate))
        if self._alone_music:
            music = self._prompts.get("music", rate)
            if music is not None:
                room.music = Playout("music", music, loop=True)
        return room

    def _set_mute(self, stream_id: str, muted: bool) -> None:
        entry = self._entries.get(stream_id)
        if entry is None:
            self._emit(StreamFailed(stream_id=stream_id, reason="unknown stream_id"))
            return
        entry.muted = muted
        logger.info("~ stream %s %s", stream_id, "muted" if muted else "unmuted")
        self._emit(StreamUpdated(stream_id=stream_id))

    def _play(self, cmd: PlayPrompt) -> None:
        """Queue a prompt (decoded and resampled here, outside the tick)."""
        room = self._rooms.get(cmd.room_id)
        if room is None or (cmd.stream_id is not None and cmd.stream_id not in room.stream_ids):
            logger.info("x prompt %s: no room %s / stream %s", cmd.prompt, cmd.room_id,
                        cmd.stream_id)
            return
        samples = self._prompts.get(cmd.prompt, room.mixer.rate)
        if samples is None:
            logger.info("x prompt %s not available", cmd.prompt)
            return
        playout = Playout(cmd.prompt, samples)
        if cmd.stream_id is None:
            room.prompts.append(playout)
        else:
            room.private.setdefault(cmd.stream_id, deque()).append(playout)
        logger.info("> prompt %s to %s", cmd.prompt, cmd.stream_id or f"room {cmd.room_id}")

    @staticmethod
    def _rekey(current: SrtpContext | None, cmd: UpdateStream) -> SrtpContext | None:
        """The stream's SRTP after a re-negotiation: unchanged keys keep their state."""
        if cmd.srtp is None:
            if current is not None:
                logger.info("~ stream %s SRTP off", cmd.stream_id)
            return None
        if current is None:
            logger.info("~ stream %s SRTP %s", cmd.stream_id, cmd.srtp.suite)
            return SrtpContext(cmd.srtp)
        if current.params != cmd.srtp:
            logger.info("~ stream %s SRTP re-keyed (%s)", cmd.stream_id, cmd.srtp.suite)
            current.rekey(cmd.srtp)
        return current

    def _unprotect(self, entry: _Entry, data: bytes, *, rtcp: bool) -> bytes | None:
        """SRTP/SRTCP to plain (RFC 3711 3.3, 3.4); a packet failing authentication or the
        replay check is dropped, counted, and logged at most every ``SRTP_LOG_INTERVAL``."""
        srtp = entry.srtp
        if srtp is None:
            return data
        try:
            return srtp.unprotect_rtcp(data) if rtcp else srtp.unprotect_rtp(data)
        except SrtpError as exc:
            now = asyncio.get_running_loop().time()
            if now - entry.srtp_logged_at >= SRTP_LOG_INTERVAL:
                entry.srtp_logged_at = now
                logger.warning("x %s dropped %s packet (%d so far): %s",
                               entry.stream.stream_id, "SRTCP" if rtcp else "SRTP",
                               srtp.rx_failures, exc)
            return None

    def _protect(self, entry: _Entry, packet: bytes, *, rtcp: bool = False) -> bytes | None:
        """Plain to SRTP/SRTCP for sending (``None``: do not send)."""
        srtp = entry.srtp
        if srtp is None:
            return packet
        try:
            return srtp.protect_rtcp(packet) if rtcp else srtp.protect_rtp(packet)
        except SrtpError as exc:
            logger.warning("x %s not sent: %s", entry.stream.stream_id, exc)
            return None

    def _on_rtp(self, stream_id: str, data: bytes, source: Address) -> None:
        entry = self._entries.get(stream_id)
        if entry is None:
            return
        plain = self._unprotect(entry, data, rtcp=is_rtcp(data))
        if plain is None:
            return
        data = plain
        now = asyncio.get_running_loop().time()
        if is_rtcp(data):  # RFC 5761 rtcp-mux
            entry.stream.receive_rtcp(data, now, source, mux=True)
            return
        digit = entry.stream.receive_rtp(data, source, now)
        if digit is not None:
            logger.info("< %s DTMF %s", stream_id, digit)
            self._emit(DtmfEvent(stream_id=stream_id, digit=digit))

    def _on_rtcp(self, stream_id: str, data: bytes = b"", source: Address | None = None,
                 ) -> None:
        entry = self._entries.get(stream_id)
        if entry is not None:
            plain = self._unprotect(entry, data, rtcp=True)
            if plain is None:
                return
            entry.stream.receive_rtcp(plain, asyncio.get_running_loop().time(), source)

    def _send_rtcp(self, now: float) -> None:
        """Each stream's SR/RR and SDES when due (RFC 3550 section 6.2, interval randomised
        by the stream), on the RTCP port or muxed with RTP (RFC 5761), then its figures as
        ``StreamStats``."""
        for entry in self._entries.values():
            stream = entry.stream
            if not stream.rtcp_due(now):
                continue
            report = stream.build_rtcp(now)
            remote = stream.rtcp_remote
            if remote is not None:
                packet = self._protect(entry, report, rtcp=True)
                if packet is not None:
                    (entry.rtp if stream.rtcp_mux else entry.rtcp).sendto(packet, remote)
            self._emit(stream.stats())

    def _shared_encoder(self, room: _Room, key: _EncodingKey) -> _SharedEncoder:
        encoder = room.encoders.get(key)
        if encoder is None:
            codec = self._registry.create(key[0], key[1], sample_rate=room.mixer.rate)
            encoder = room.encoders[key] = _SharedEncoder(
                codec, Resampler(room.mixer.rate, codec.sample_rate)
            )
        return encoder

    def tick(self, now: float) -> None:
        """One 20 ms mixing step for every room, then timeout checks."""
        entries = self._entries
        for room in self._rooms.values():
            frames = {}
            listeners = []
            for sid in room.stream_ids:
                entry = entries[sid]
                stream = entry.stream
                frame = stream.pop_frame()
                if frame is not None and stream.heard and not entry.muted:
                    frames[sid] = frame
                if stream.sends:
                    listeners.append(sid)
            n = room.mixer.frame_samples
            mix = room.mixer.mix(frames, listeners, overlay=room.overlay(n))
            shared: dict[_EncodingKey, bytes] = {}
            for sid in listeners:
                entry = entries[sid]
                stream = entry.stream
                remote = stream.remote
                if remote is None:
                    continue
                private = room.private_frame(sid, n)
                if private is None and mix.is_shared(sid):
                    # Silent listeners of one codec share one encode of the full mix.
                    params = stream.params
                    key = (params.codec.name, params.codec.clock_rate, params.payload_type)
                    payload = shared.get(key)
                    if payload is None:
                        payload = shared[key] = self._shared_encoder(room, key).encode(mix.full)
                    plain = stream.packetize(payload)
                else:
                    mixed = mix.for_listener(sid)
                    if private is not None:
                        mixed = np.clip(mixed.astype(np.int32) + private, -32768,
                                        32767).astype(np.int16)
                    plain = stream.build_packet(mixed)
                packet = self._protect(entry, plain)
                if packet is not None:
                    entry.rtp.sendto(packet, remote)
        for sid, entry in entries.items():
            if entry.stream.check_timeout(now):
                logger.info("x %s RTP timeout", sid)
                self._emit(RtpTimeout(stream_id=sid))
        self._send_rtcp(now)

    async def run_clock(self) -> None:
        """Tick every 20 ms against absolute monotonic deadlines (no cumulative drift).

        Each tick's start lateness and processing time go to ``tick_meter``."""
        loop = asyncio.get_running_loop()
        meter = self.tick_meter
        deadline = loop.time()
        next_stats = deadline + self.tick_stats_interval
        while True:
            deadline += PTIME
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG:
                logger.warning("mixer clock %.0f ms late, skipping ticks", -delay * 1000)
                meter.skipped(int(-delay / PTIME), -delay)
                deadline = loop.time()
            start = loop.time()
            self.tick(start)
            meter.record(start - deadline, loop.time() - start)
            if self.tick_stats_interval > 0 and start >= next_stats:
                next_stats = start + self.tick_stats_interval
                self._emit(meter.snapshot(reset=True))


async def _run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)

    def emit(event: MediaEvent) -> None:
        if not out.is_closing():
            out.write(to_json(event).encode() + b"\n")

    worker = MediaWorker(
        port_range=parse_port_range(args.port_range), rtp_timeout=args.rtp_timeout, emit=emit,
        prompts=PromptLibrary(Path(args.prompts_dir) if args.prompts_dir else None),
        alone_music=args.alone == "music",
    )
    worker.tick_stats_interval = args.tick_stats_interval
    clock = asyncio.create_task(worker.run_clock())
    emit(WorkerReady())
    logger.info("media worker ready, ports %s, RTP timeout %ss", args.port_range,
                args.rtp_timeout)
    try:
        while not worker.shutdown.is_set():
            line = await reader.readline()
            if not line:
                logger.info("control channel closed, exiting")
                await worker.handle(Shutdown())
                break
            try:
                command = from_json(line)
            except ControlError as exc:
                # never the line itself: it may carry SRTP keys
                logger.error("x bad control line (%d bytes): %s", len(line), exc)
                continue
            if not isinstance(command, MediaCommand):
                logger.error("x not a command: %r", command)
                continue
            await worker.handle(command)
    finally:
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock
        while out.get_write_buffer_size() and not out.is_closing():
            await asyncio.sleep(0.01)
        out.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sylkbox.media.worker", description=__doc__)
    parser.add_argument("--port-range", default="50000-50999")
    parser.add_argument("--rtp-timeout", type=float, default=30.0)
    parser.add_argument("--tick-stats-interval", type=float, default=0.0,
                        help="emit TickStats every this many seconds (0: only on GetStats)")
    parser.add_argument("--prompts-dir", default=None,
                        help="directory of generated spoken prompts (media.prompts)")
    parser.add_argument("--alone", choices=("music", "silence"), default="silence",
                        help="what a participant alone in a room hears")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s media[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
