"""The media worker process: RTP sockets, per-room mixing on a 20 ms clock.

Run as ``python -m sylkbox.media.worker --port-range 50000-50999 --rtp-timeout 30``.
Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout (see
``control``), logs go to stderr. End of stdin (the main process went away) shuts the worker
down. Each stream binds RTP on an even port and RTCP on the next odd one (RFC 3550 section
11); RTCP is only drained for now, and counts as a sign of life.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sylkbox.media.codecs import CodecRegistry, UnknownCodecError, default_registry
from sylkbox.media.control import (
    AddStream,
    ControlError,
    MediaCommand,
    MediaEvent,
    RemoveStream,
    RtpTimeout,
    Shutdown,
    StreamAdded,
    StreamFailed,
    StreamRemoved,
    StreamUpdated,
    UpdateStream,
    WorkerReady,
    from_json,
    to_json,
)
from sylkbox.media.control import Dtmf as DtmfEvent
from sylkbox.media.mixer import RoomMixer
from sylkbox.media.rtp import is_rtcp
from sylkbox.media.stream import Address, Stream, StreamParams

__all__ = ["MediaWorker", "PortAllocator", "main", "parse_port_range"]

logger = logging.getLogger(__name__)

PTIME = 0.02
MAX_LAG = 0.2
"""When the clock falls this far behind (seconds), skip ticks instead of catching up."""


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


@dataclass(slots=True)
class _Room:
    mixer: RoomMixer
    stream_ids: list[str] = field(default_factory=list)


class MediaWorker:
    """Streams and rooms of one worker process; ``emit`` delivers events to the parent."""

    def __init__(
        self,
        *,
        port_range: tuple[int, int],
        rtp_timeout: float,
        emit: Callable[[MediaEvent], None],
        registry: CodecRegistry | None = None,
    ) -> None:
        self._ports = PortAllocator(*port_range)
        self._rtp_timeout = rtp_timeout
        self._emit = emit
        self._registry = registry or default_registry()
        self._entries: dict[str, _Entry] = {}
        self._rooms: dict[str, _Room] = {}
        self.shutdown = asyncio.Event()

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
        try:
            codec = self._registry.create(cmd.codec, cmd.clock_rate)
        except UnknownCodecError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=str(exc)))
            return
        try:
            port, rtp_sock, rtcp_sock = self._ports.allocate(cmd.local_host, cmd.local_port)
        except OSError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=f"cannot bind: {exc}"))
            return
        room = self._rooms.get(cmd.room_id)
        if room is None:
            room = self._rooms[cmd.room_id] = _Room(RoomMixer(cmd.room_rate))
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
            lambda: _Protocol(lambda d, a: self._on_rtcp(sid)), sock=rtcp_sock
        )
        self._entries[sid] = _Entry(stream, rtp, rtcp)
        room.stream_ids.append(sid)
        logger.info("+ stream %s room %s port %d %s/%d %s -> %s", sid, cmd.room_id, port,
                    codec.name, codec.clock_rate, cmd.direction, remote)
        self._emit(StreamAdded(stream_id=sid, local_port=port))

    def _update(self, cmd: UpdateStream) -> None:
        entry = self._entries.get(cmd.stream_id)
        if entry is None:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason="unknown stream_id"))
            return
        try:
            codec = self._registry.create(cmd.codec, cmd.clock_rate)
        except UnknownCodecError as exc:
            self._emit(StreamFailed(stream_id=cmd.stream_id, reason=str(exc)))
            return
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
        if not room.stream_ids:
            del self._rooms[entry.stream.room_id]
        logger.info("- stream %s", stream_id)

    def _on_rtp(self, stream_id: str, data: bytes, source: Address) -> None:
        entry = self._entries.get(stream_id)
        if entry is None:
            return
        now = asyncio.get_running_loop().time()
        if is_rtcp(data):  # RFC 5761 rtcp-mux
            entry.stream.receive_rtcp(now)
            return
        digit = entry.stream.receive_rtp(data, source, now)
        if digit is not None:
            logger.info("< %s DTMF %s", stream_id, digit)
            self._emit(DtmfEvent(stream_id=stream_id, digit=digit))

    def _on_rtcp(self, stream_id: str) -> None:
        entry = self._entries.get(stream_id)
        if entry is not None:
            entry.stream.receive_rtcp(asyncio.get_running_loop().time())

    def tick(self, now: float) -> None:
        """One 20 ms mixing step for every room, then timeout checks."""
        entries = self._entries
        for room in self._rooms.values():
            talkers = {}
            listeners = []
            for sid in room.stream_ids:
                stream = entries[sid].stream
                frame = stream.pop_frame()
                if frame is not None and stream.heard:
                    talkers[sid] = frame
                if stream.sends:
                    listeners.append(sid)
            for sid, mixed in room.mixer.mix(talkers, listeners).items():
                entry = entries[sid]
                remote = entry.stream.remote
                if remote is not None:
                    entry.rtp.sendto(entry.stream.build_packet(mixed), remote)
        for sid, entry in entries.items():
            if entry.stream.check_timeout(now):
                logger.info("x %s RTP timeout", sid)
                self._emit(RtpTimeout(stream_id=sid))

    async def run_clock(self) -> None:
        """Tick every 20 ms against absolute monotonic deadlines (no cumulative drift)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += PTIME
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG:
                logger.warning("mixer clock %.0f ms late, skipping ticks", -delay * 1000)
                deadline = loop.time()
            self.tick(loop.time())


async def _run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)

    def emit(event: MediaEvent) -> None:
        if not out.is_closing():
            out.write(to_json(event).encode() + b"\n")

    worker = MediaWorker(
        port_range=parse_port_range(args.port_range), rtp_timeout=args.rtp_timeout, emit=emit
    )
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
                logger.error("x bad control line %r: %s", line[:200], exc)
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
