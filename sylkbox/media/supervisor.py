"""Main-process side of the media worker: spawn, command, restart.

:class:`MediaSupervisor` runs ``python -m sylkbox.media.worker`` as a child process, sends
typed commands (``control``) as JSON lines and matches each reply to the waiting caller by
``stream_id`` (replies for one stream come back in command order). It remembers every stream
it created; when the worker dies it starts a new one and re-creates each stream on the same
local port, so the SDP already sent to peers stays valid. Spontaneous events (``RtpTimeout``,
``Dtmf``, ``StreamFailed``) go to a bounded queue read through :meth:`events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from sylkbox.media.control import (
    AddStream,
    ControlError,
    MediaCommand,
    MediaEvent,
    PlayPrompt,
    RemoveStream,
    SetMute,
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

__all__ = ["MediaSupervisor", "MediaWorkerError", "StreamError"]

logger = logging.getLogger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class MediaWorkerError(Exception):
    """The worker is not running, or did not answer in time."""


class StreamError(MediaWorkerError):
    """The worker refused a stream command (``StreamFailed``)."""

    def __init__(self, stream_id: str, reason: str) -> None:
        super().__init__(f"stream {stream_id}: {reason}")
        self.stream_id = stream_id
        self.reason = reason


@dataclass(slots=True)
class _Pending:
    kind: type[MediaCommand]
    future: asyncio.Future[MediaEvent]


class MediaSupervisor:
    """Owns the media worker process. Use ``await start()`` ... ``await stop()``."""

    def __init__(
        self,
        port_range: tuple[int, int],
        rtp_timeout: float,
        python: str = sys.executable,
        *,
        reply_timeout: float = 5.0,
        start_timeout: float = 10.0,
        event_queue_size: int = 1024,
        log_level: str = "INFO",
        prompts_dir: Path | None = None,
        alone: str = "silence",
    ) -> None:
        self.prompts_dir = prompts_dir
        self.alone = alone
        self.port_range = port_range
        self.rtp_timeout = rtp_timeout
        self.python = python
        self.reply_timeout = reply_timeout
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.restarts = 0
        self._streams: dict[str, AddStream] = {}
        self._pending: dict[str, deque[_Pending]] = {}
        self._events: asyncio.Queue[MediaEvent] = asyncio.Queue(maxsize=event_queue_size)
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._worker_ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the current worker (for diagnostics and tests)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def streams(self) -> dict[str, AddStream]:
        """The streams that will be re-created after a restart (with their local ports)."""
        return dict(self._streams)

    async def start(self) -> None:
        """Spawn the worker and wait until it is ready; raises :class:`MediaWorkerError`."""
        if self._task is not None:
            raise MediaWorkerError("already started")
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="media-supervisor")
        try:
            await asyncio.wait_for(self._ready.wait(), self.start_timeout)
        except TimeoutError:
            await self.stop()
            raise MediaWorkerError("media worker did not start") from None

    async def stop(self) -> None:
        """Ask the worker to shut down (kill it if it does not), stop supervising."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            self._write(Shutdown())
            try:
                await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._ready.clear()
        self._fail_pending(MediaWorkerError("media supervisor stopped"))

    async def wait_ready(self) -> None:
        """Wait until a worker runs and every known stream has been (re-)created."""
        await self._ready.wait()

    async def events(self) -> AsyncIterator[MediaEvent]:
        """Spontaneous worker events: ``RtpTimeout``, ``Dtmf``, ``StreamFailed``."""
        while True:
            yield await self._events.get()

    # -- commands ----------------------------------------------------------------------

    async def add_stream(self, command: AddStream) -> int:
        """Create a stream; returns its local RTP port. Raises :class:`StreamError`."""
        await self._ready.wait()
        if command.stream_id in self._streams:
            raise StreamError(command.stream_id, "duplicate stream_id")
        self._streams[command.stream_id] = command
        try:
            reply = await self._request(command.stream_id, command)
        except MediaWorkerError:
            self._streams.pop(command.stream_id, None)
            raise
        assert isinstance(reply, StreamAdded)
        return reply.local_port

    async def update_stream(self, command: UpdateStream) -> None:
        """Renegotiate a stream; the worker keeps the old parameters on failure."""
        await self._ready.wait()
        previous = self._streams.get(command.stream_id)
        if previous is None:
            raise StreamError(command.stream_id, "unknown stream_id")
        self._streams[command.stream_id] = replace(
            previous,
            remote_host=command.remote_host,
            remote_port=command.remote_port,
            payload_type=command.payload_type,
            codec=command.codec,
            clock_rate=command.clock_rate,
            telephone_event_pt=command.telephone_event_pt,
            direction=command.direction,
            srtp=command.srtp,
        )
        try:
            await self._request(command.stream_id, command)
        except StreamError:
            if command.stream_id in self._streams:
                self._streams[command.stream_id] = previous
            raise

    async def set_mute(self, stream_id: str, muted: bool) -> None:
        """Mute or unmute a stream in its room's mix (kept across worker restarts)."""
        await self._ready.wait()
        previous = self._streams.get(stream_id)
        if previous is None:
            raise StreamError(stream_id, "unknown stream_id")
        self._streams[stream_id] = replace(previous, muted=muted)
        await self._request(stream_id, SetMute(stream_id=stream_id, muted=muted))

    def play_prompt(self, command: PlayPrompt) -> None:
        """Start a prompt in the worker (fire and forget; not replayed after a restart)."""
        if self._ready.is_set():
            self._write(command)

    async def remove_stream(self, stream_id: str) -> None:
        """Remove a stream (idempotent)."""
        await self._ready.wait()
        self._streams.pop(stream_id, None)
        await self._request(stream_id, RemoveStream(stream_id=stream_id))

    async def _request(self, stream_id: str, command: MediaCommand) -> MediaEvent:
        future: asyncio.Future[MediaEvent] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(stream_id, deque()).append(_Pending(type(command), future))
        self._write(command)
        try:
            reply = await asyncio.wait_for(future, self.reply_timeout)
        except TimeoutError:
            raise MediaWorkerError(f"no reply from media worker for {stream_id}") from None
        if isinstance(reply, StreamFailed):
            raise StreamError(stream_id, reply.reason)
        return reply

    def _write(self, command: MediaCommand) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return  # the restart re-creates the streams from self._streams
        try:
            proc.stdin.write(to_json(command).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            logger.warning("x media worker control pipe broken")

    # -- the worker process ------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = 0.2
        while not self._stopping:
            proc = await self._spawn()
            reader = asyncio.create_task(self._read(proc), name="media-worker-reader")
            try:
                await self._restore(proc)
                delay = 0.2
            except (MediaWorkerError, TimeoutError) as exc:
                logger.error("media worker failed to start: %s", exc)
                if proc.returncode is None:
                    proc.kill()
            returncode = await proc.wait()
            await reader
            self._ready.clear()
            if self._stopping:
                break
            self.restarts += 1
            logger.error("media worker %d exited with %s, restarting", proc.pid, returncode)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        low, high = self.port_range
        self._worker_ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "sylkbox.media.worker",
            "--port-range", f"{low}-{high}",
            "--rtp-timeout", str(self.rtp_timeout),
            "--log-level", self.log_level,
            "--alone", self.alone,
            *(("--prompts-dir", str(self.prompts_dir)) if self.prompts_dir else ()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        logger.info("media worker started, pid %d", self._proc.pid)
        return self._proc

    async def _restore(self, proc: asyncio.subprocess.Process) -> None:
        """Wait for WorkerReady, then re-create every known stream on its old port."""
        assert self._worker_ready is not None
        await asyncio.wait_for(self._worker_ready, self.start_timeout)
        orphans, self._pending = self._pending, {}
        try:
            await self._recreate(orphans)
        except MediaWorkerError:
            for stream_id, pendings in orphans.items():  # let the next restart answer them
                self._pending.setdefault(stream_id, deque()).extendleft(reversed(pendings))
            raise
        if proc.returncode is None:
            self._ready.set()

    async def _recreate(self, orphans: dict[str, deque[_Pending]]) -> None:
        for stream_id, command in list(self._streams.items()):
            try:
                reply = await self._request(stream_id, command)
            except StreamError as exc:
                logger.error("x could not re-create stream %s: %s", stream_id, exc.reason)
                del self._streams[stream_id]
                self._put_event(StreamFailed(stream_id=stream_id, reason=exc.reason))
                for pending in orphans.pop(stream_id, ()):
                    if not pending.future.done():
                        pending.future.set_result(StreamFailed(stream_id=stream_id,
                                                               reason=exc.reason))
                continue
            assert isinstance(reply, StreamAdded)
            self._streams[stream_id] = replace(command, local_port=reply.local_port)
            for pending in orphans.pop(stream_id, ()):
                # An add or update in flight when the worker died is now in effect.
                if not pending.future.done():
                    answer: MediaEvent = (
                        reply if pending.kind is AddStream
                        else StreamUpdated(stream_id=stream_id)
                    )
                    pending.future.set_result(answer)
        for stream_id, pendings in orphans.items():  # removals in flight: done by the restart
            for pending in pendings:
                if not pending.future.done():
                    pending.future.set_result(StreamRemoved(stream_id=stream_id))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                event = from_json(line)
            except ControlError as exc:
                logger.error("x bad line from media worker: %s", exc)
                continue
            if isinstance(event, MediaEvent):
                self._dispatch(event)
        if self._worker_ready is not None and not self._worker_ready.done():
            self._worker_ready.set_exception(MediaWorkerError("media worker exited at start"))

    def _dispatch(self, event: MediaEvent) -> None:
        match event:
            case WorkerReady():
                if self._worker_ready is not None and not self._worker_ready.done():
                    self._worker_ready.set_result(None)
            case StreamAdded() | StreamUpdated() | StreamRemoved() | StreamFailed():
                if self._resolve(event.stream_id, event):
                    return
                if isinstance(event, StreamFailed):  # spontaneous: the stream is gone
                    self._streams.pop(event.stream_id, None)
                    self._put_event(event)
                else:
                    logger.debug("unmatched reply %r", event)
            case _:
                self._put_event(event)

    def _resolve(self, stream_id: str, reply: MediaEvent) -> bool:
        """Hand a reply to the oldest command waiting on ``stream_id``."""
        queue = self._pending.get(stream_id)
        if not queue:
            return False
        pending = queue.popleft()
        if not queue:
            del self._pending[stream_id]
        if not pending.future.done():  # done: the caller timed out
            pending.future.set_result(reply)
        return True

    def _put_event(self, event: MediaEvent) -> None:
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("x media event queue full, dropped %r", event)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for queue in pending.values():
            for item in queue:
                if not item.future.done():
                    item.future.set_exception(exc)
