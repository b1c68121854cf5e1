"""File sharing in rooms (RFC 5547 over MSRP, BLINK.md 3 and 5).

Two parts:

* :class:`FileStore`: the files of every room on disk and their index.  A file lives at
  ``<data_dir>/files/<room dir>/<sha1 hex>`` where ``<room dir>`` is a hash of the room key:
  nothing taken from the wire (the offered name, the room's user part) ever reaches the file
  system (ARCHITECTURE.md).  The index (display name made safe with
  :func:`~sylkbox.msrp.file_selector.safe_display_name`, type, size, hash, sender, upload time)
  is the ``shared_files`` table of ``<data_dir>/state.sqlite``, so files survive a restart:
  forever for persistent rooms, ``[files] retention`` seconds after the upload otherwise.
  ``[files] max_size`` bounds one file and ``room_quota`` the files of one room (both 413).
  An upload is received into ``partial/<sha1 hex>.part``; it is checked (size, SHA-1) and moved
  into place atomically; an interrupted one keeps its contiguous prefix so a retry resumes
  (sipsimple's ``FILE_OFFSET`` answered with the bytes we have).

* :class:`FileTransfers`: the focus's file sessions.  An upload is a separate INVITE to the
  room with one ``sendonly`` file stream (we answer ``recvonly``); chunks go to disk as they
  arrive, the end is verified, a 200 (or failure) REPORT goes back, the file is added to
  conference-info ``agp-conf:files`` (the focus NOTIFYs) and the SIP session is ended 1 s later,
  as SylkServer does.  A download is an INVITE with a ``recvonly`` stream whose selector has a
  hash: the file is looked up by hash only (404 when unknown), the answer carries the full
  selector, and the file is streamed from disk in 64 KiB chunks (a ``ChunkSource``), after
  asking the peer ``FILE_OFFSET`` when it announced ``a=x-file-offset`` (BLINK.md 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sylkbox.conference.conference_info import SharedFile
from sylkbox.conference.errors import BadRequest, FileNotFound, FileTooLarge
from sylkbox.msrp.file_selector import (
    FileSelector,
    FileSelectorError,
    format_hash,
    safe_display_name,
)
from sylkbox.msrp.file_selector import parse as parse_file_selector
from sylkbox.msrp.session import (
    ChunkReceived,
    FileOffsetRequested,
    MessageAborted,
    MessageReceived,
    MsrpEvent,
    MsrpSession,
    ReportReceived,
    ResponseReceived,
    SessionConfig,
    TransactionTimedOut,
)

if TYPE_CHECKING:
    from sylkbox.conference.chat_port import MsrpChannel, MsrpPort
    from sylkbox.conference.participant import Participant
    from sylkbox.conference.room import Room
    from sylkbox.msrp.uri import MsrpUri
    from sylkbox.sdp import AcceptedFile

__all__ = [
    "FileSource",
    "FileStore",
    "FileTransferState",
    "FileTransfers",
    "StoredFile",
    "Upload",
    "UploadError",
    "expiry_interval",
    "format_size",
    "room_dir_name",
    "sender_identity",
]

log = logging.getLogger(__name__)

HASH_BLOCK = 1024 * 1024
END_DELAY = 1.0  # SylkServer ends the SIP session 1 s after a completed transfer (BLINK.md 5)
FILE_OFFSET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_files (
    room_key TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sender TEXT NOT NULL,
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (room_key, sha1)
)
"""


class UploadError(Exception):
    """An upload that cannot be kept; ``status`` is the MSRP REPORT status."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def room_dir_name(room_key: str) -> str:
    """The directory of a room's files: a hash of its key, never the key itself."""
    return hashlib.sha256(room_key.lower().encode("utf-8", "surrogateescape")).hexdigest()[:24]


def sender_identity(display_name: str | None, uri: str) -> str:
    """``Display <sip:u@h>`` or ``<sip:u@h>`` (BLINK.md 3, the ``sender`` attribute)."""
    name = " ".join((display_name or "").replace('"', "").split())
    return f"{name} <{uri}>" if name else f"<{uri}>"


def format_size(size: int) -> str:
    """A size for status messages: ``512 bytes``, ``1.5 KB``, ``2.0 MB``..."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFile:
    """One shared file of a room (the index row)."""

    room_key: str
    digest: bytes
    name: str
    type: str
    size: int
    sender: str
    uploaded_at: float

    @property
    def hash_text(self) -> str:
        return format_hash(self.digest)

    def shared_file(self) -> SharedFile:
        return SharedFile(name=self.name, hash=self.hash_text, size=self.size, sender=self.sender)

    def selector(self) -> FileSelector:
        """The full selector of a download answer (name, type, size, hash; RFC 5547 6)."""
        return FileSelector(name=self.name, type=self.type, size=self.size, hash=self.digest)


class FileSource:
    """A stored file read on demand by the MSRP session (a ``ChunkSource``): ``os.pread`` on
    an open descriptor, so neither the whole file is loaded nor a later expiry breaks a
    running download."""

    def __init__(self, path: Path, size: int) -> None:
        self._fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if self._fd is None:
            raise OSError("file source closed")
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Upload:
    """A file being received: chunks are written at their offset into a ``.part`` file; the
    SHA-1 of the contiguous prefix is kept up to date (out-of-order chunks are hashed from the
    file once the gap is filled)."""

    def __init__(
        self,
        store: FileStore,
        *,
        room_key: str,
        selector: FileSelector,
        sender: str,
        part: Path,
        resumable: bool,
        limit: int,
    ) -> None:
        self._store = store
        self.room_key = room_key
        self.selector = selector
        self.sender = sender
        self.part = part
        self.resumable = resumable
        self.limit = limit
        self.total: int | None = selector.size
        self.closed = False
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(part, flags, 0o600)
        present = os.fstat(self._fd).st_size if resumable else 0
        if not resumable:
            os.ftruncate(self._fd, 0)
        if self.total is not None and present > self.total:
            os.ftruncate(self._fd, 0)
            present = 0
        self._ranges: list[list[int]] = [[0, present]] if present else []
        self._sha1 = hashlib.sha1()
        self._hashed = 0
        self._catch_up()

    @property
    def offset(self) -> int:
        """Bytes present from the start (the ``Offset`` of a FILE_OFFSET answer)."""
        ranges = self._ranges
        return ranges[0][1] if ranges and ranges[0][0] == 0 else 0

    @property
    def complete(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def set_total(self, total: int) -> None:
        """The Byte-Range total of the message (RFC 4975 7.1.1): must match the selector."""
        if self.total is not None and total != self.total:
            raise UploadError(f"size {total} differs from the offered {self.total}", 400)
        if total > self.limit:
            raise UploadError("file too large", 413)
        self.total = total

    def write(self, offset: int, data: bytes) -> None:
        if self.closed:
            raise UploadError("upload closed", 400)
        end = offset + len(data)
        if end > self.limit or (self.total is not None and end > self.total):
            raise UploadError("data beyond the file size", 413)
        if not data:
            return
        os.pwrite(self._fd, data, offset)
        if offset == self._hashed:
            self._sha1.update(data)
            self._hashed = end
        self._add_range(offset, end)
        self._catch_up()

    def _add_range(self, start: int, end: int) -> None:
        ranges = [*self._ranges, [start, end]]
        ranges.sort()
        merged: list[list[int]] = []
        for s, e in ranges:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self._ranges = merged

    def _catch_up(self) -> None:
        """Hash what became contiguous but was not hashed yet (read back from the file)."""
        target = self.offset
        while self._hashed < target:
            block = os.pread(self._fd, min(HASH_BLOCK, target - self._hashed), self._hashed)
            if not block:
                raise UploadError("partial file shrank", 400)
            self._sha1.update(block)
            self._hashed += len(block)

    def finish(self, now: float) -> StoredFile:
        """Check size and SHA-1, move the file into place, index it.  Raises `UploadError`
        (the file is discarded)."""
        try:
            if not self.complete or self.total is None:
                raise UploadError("file incomplete", 400)
            if self._hashed != self.total:
                raise UploadError("file incomplete", 400)
            digest = self._sha1.digest()
            expected = self.selector.hash
            if expected is not None and digest != expected:
                raise UploadError("SHA-1 mismatch", 400)
            os.ftruncate(self._fd, self.total)
            record = self._store._add(
                room_key=self.room_key,
                digest=digest,
                selector=self.selector,
                size=self.total,
                sender=self.sender,
                now=now,
                part=self.part,
            )
        except UploadError:
            self.abort(keep=False)
            raise
        except OSError as exc:
            self.abort(keep=False)
            raise UploadError(f"cannot store the file: {exc.strerror}", 400) from exc
        self._close()
        return record

    def abort(self, *, keep: bool) -> None:
        """Give up; with ``keep`` (and a known hash) the contiguous prefix stays for a retry."""
        if self.closed:
            return
        keep = keep and self.resumable and self.offset > 0
        with contextlib.suppress(OSError):
            if keep:
                os.ftruncate(self._fd, self.offset)
        self._close()
        if not keep:
            with contextlib.suppress(OSError):
                self.part.unlink()
        self._store._upload_done(self)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._store._upload_done(self)


class FileStore:
    """The shared files of every room: on disk under ``<data_dir>/files`` and indexed in
    ``state.sqlite`` (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_size: int,
        room_quota: int,
        retention: float,
    ) -> None:
        if max_size <= 0 or room_quota <= 0 or retention < 0:
            raise ValueError("file limits must be positive")
        self.root = Path(data_dir) / "files"
        self.max_size = max_size
        self.room_quota = room_quota
        self.retention = retention
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(Path(data_dir) / "state.sqlite", isolation_level=None)
        self._db.execute(_SCHEMA)
        self._files: dict[str, dict[bytes, StoredFile]] = {}
        self._uploading: set[Path] = set()
        for row in self._db.execute(
            "SELECT room_key, sha1, name, type, size, sender, uploaded_at FROM shared_files"
            " ORDER BY uploaded_at"
        ):
            record = StoredFile(
                room_key=row[0],
                digest=bytes.fromhex(row[1]),
                name=row[2],
                type=row[3],
                size=row[4],
                sender=row[5],
                uploaded_at=row[6],
            )
            if self.path_for(record.room_key, record.digest).is_file():
                self._files.setdefault(record.room_key, {})[record.digest] = record
            else:
                log.warning("x file %s of %s is missing, dropped", record.hash_text, row[0])
                self._delete_row(record.room_key, record.digest)
        log.info(
            "%d stored files of %d rooms loaded from %s",
            sum(len(files) for files in self._files.values()),
            len(self._files),
            self.root,
        )

    def close(self) -> None:
        """Close the index (at shutdown, once the file sessions have ended); idempotent."""
        self._db.close()

    # ------------------------------------------------------------------------- queries
    def path_for(self, room_key: str, digest: bytes) -> Path:
        return self.root / room_dir_name(room_key) / digest.hex()

    def files(self, room_key: str) -> list[StoredFile]:
        """The room's files, oldest first."""
        return list(self._files.get(room_key.lower(), {}).values())

    def shared_files(self, room_key: str) -> tuple[SharedFile, ...]:
        """The room's files as conference-info ``agp-conf:files`` shows them."""
        return tuple(f.shared_file() for f in self.files(room_key))

    def lookup(self, room_key: str, digest: bytes) -> StoredFile | None:
        return self._files.get(room_key.lower(), {}).get(digest)

    def used(self, room_key: str) -> int:
        return sum(f.size for f in self.files(room_key))

    def open_source(self, record: StoredFile) -> FileSource:
        return FileSource(self.path_for(record.room_key, record.digest), record.size)

    # ------------------------------------------------------------------------- uploads
    def check_upload(self, room_key: str, size: int | None, digest: bytes | None = None) -> None:
        """Raise `FileTooLarge` (413) when ``size`` is over ``max_size`` or the room quota
        (a file already stored under the same hash does not count twice)."""
        if size is None:
            return
        if size > self.max_size:
            raise FileTooLarge(f"File larger than {self.max_size} bytes")
        used = self.used(room_key)
        if digest is not None and (existing := self.lookup(room_key, digest)) is not None:
            used -= existing.size
        if used + size > self.room_quota:
            raise FileTooLarge("Room file quota exceeded")

    def begin_upload(self, room_key: str, selector: FileSelector, sender: str) -> Upload:
        """Start receiving a file (`check_upload` first).  With a hash in the selector the
        ``.part`` file is named by it and an earlier interrupted upload is resumed."""
        room_key = room_key.lower()
        self.check_upload(room_key, selector.size, selector.hash)
        partial = self.root / room_dir_name(room_key) / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        part: Path | None = None
        if selector.hash is not None:
            part = partial / f"{selector.hash.hex()}.part"
            if part in self._uploading:
                part = None  # the same file is being uploaded right now: no resume
        resumable = part is not None
        if part is None:
            part = partial / f"{secrets.token_hex(10)}.tmp"
        limit = min(self.max_size, self.room_quota - self.used(room_key))
        if selector.hash is not None and (existing := self.lookup(room_key, selector.hash)):
            limit += existing.size
        upload = Upload(
            self,
            room_key=room_key,
            selector=selector,
            sender=sender,
            part=part,
            resumable=resumable,
            limit=max(limit, 0),
        )
        self._uploading.add(part)
        return upload

    def _upload_done(self, upload: Upload) -> None:
        self._uploading.discard(upload.part)

    def _add(
        self,
        *,
        room_key: str,
        digest: bytes,
        selector: FileSelector,
        size: int,
        sender: str,
        now: float,
        part: Path,
    ) -> StoredFile:
        name = safe_display_name(selector.name or "")
        file_type = selector.type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        record = StoredFile(
            room_key=room_key,
            digest=digest,
            name=name,
            type=file_type,
            size=size,
            sender=sender,
            uploaded_at=now,
        )
        final = self.path_for(room_key, digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)  # atomic within one file system
        self._db.execute(
            "INSERT OR REPLACE INTO shared_files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (room_key, digest.hex(), name, file_type, size, sender, now),
        )
        files = self._files.setdefault(room_key, {})
        files.pop(digest, None)
        files[digest] = record
        log.info("file %s (%d bytes) stored for %s", record.hash_text, size, room_key)
        return record

    # ------------------------------------------------------------------------- expiry
    def expire(self, now: float, persistent: Callable[[str], bool]) -> list[str]:
        """Delete files of non-persistent rooms older than ``retention`` (and stale partial
        uploads); returns the keys of the rooms whose list changed."""
        changed: list[str] = []
        for room_key, files in list(self._files.items()):
            if persistent(room_key):
                continue
            for digest, record in list(files.items()):
                if now - record.uploaded_at >= self.retention:
                    del files[digest]
                    self._delete_row(room_key, digest)
                    with contextlib.suppress(OSError):
                        self.path_for(room_key, digest).unlink()
                    if room_key not in changed:
                        changed.append(room_key)
            if not files:
                del self._files[room_key]
        for part in self.root.glob("*/partial/*"):
            if part in self._uploading:
                continue
            with contextlib.suppress(OSError):
                if now - part.stat().st_mtime >= self.retention:
                    part.unlink()
        return changed

    def _delete_row(self, room_key: str, digest: bytes) -> None:
        self._db.execute(
            "DELETE FROM shared_files WHERE room_key = ? AND sha1 = ?", (room_key, digest.hex())
        )


def expiry_interval(retention: float) -> float:
    """How often housekeeping looks for expired files: half the retention, between 1 s and
    5 min.  A file is then kept at least ``retention`` and at most 1.5 times it (or 5 min
    more), so a short retention is honoured without a test-only knob; checking expiry on
    every lookup instead would leave the NOTIFYed file list and the disk out of date until a
    sweep anyway, and the floor keeps ``retention = 0`` from spinning."""
    return min(300.0, max(1.0, retention / 2))


# -------------------------------------------------------------------------- transfers


class FileHost(Protocol):
    """What `FileTransfers` needs from the focus."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...

    def end_file_session(self, room: Room, participant: Participant, reason: str) -> None: ...

    def files_changed(self, room_key: str) -> None: ...


@dataclass(slots=True, kw_only=True)
class FileTransferState:
    """One file session (the participant's only stream)."""

    decision: AcceptedFile
    selector: FileSelector  # as offered
    local_uri: MsrpUri
    record: StoredFile | None = None  # the file being downloaded
    pending: Any = None  # the listener's expectation (passive side)
    task: asyncio.Task[Any] | None = None
    channel: MsrpChannel | None = None
    upload: Upload | None = None
    source: FileSource | None = None
    message_id: str | None = None
    offset_tid: str | None = None
    offset_reply: asyncio.Future[int] | None = None
    finished: asyncio.Future[bool] | None = None
    done: bool = False
    last_message: MessageReceived | None = None
    media_id: str = field(default="")

    @property
    def answer_selector(self) -> str:
        """Our ``a=file-selector``: the full one for a download, the offer's for an upload."""
        return str(self.record.selector()) if self.record is not None else str(self.selector)


class FileTransfers:
    """The focus's RFC 5547 sessions (uploads to and downloads from the rooms)."""

    def __init__(
        self,
        store: FileStore,
        msrp: MsrpPort,
        host: FileHost,
        *,
        persistent: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._msrp = msrp
        self._host = host
        self._persistent = persistent
        self._clock = clock
        self.end_delay = END_DELAY
        self.connect_timeout = CONNECT_TIMEOUT
        # optional: a room status line through the room chat (BLINK.md 4.3), wired by the owner
        self.announce: Callable[[Room, str], None] | None = None
        # optional: every stored upload, e.g. pushed to the participants (conference.file_push)
        self.uploaded: Callable[[Room, StoredFile], None] | None = None

    # ----------------------------------------------------------------- offer handling
    def check_offer(
        self, room_key: str, decision: AcceptedFile
    ) -> tuple[FileSelector, StoredFile | None]:
        """Validate a file stream before answering: (offered selector, file to send).

        Raises `BadRequest` (bad selector), `FileTooLarge` (413) and `FileNotFound` (404:
        a download whose hash we do not have; lookup by hash only, BLINK.md 5)."""
        try:
            selector = parse_file_selector(decision.file_selector)
        except FileSelectorError as exc:
            raise BadRequest(f"Bad file-selector: {exc.reason}") from exc
        if decision.upload:
            self.store.check_upload(room_key, selector.size, selector.hash)
            return selector, None
        if selector.hash is None:
            raise FileNotFound("File not found: no hash in the file-selector")
        record = self.store.lookup(room_key, selector.hash)
        if record is None:
            raise FileNotFound("File not found")
        return selector, record

    def prepare(
        self,
        participant: Participant,
        decision: AcceptedFile,
        selector: FileSelector,
        record: StoredFile | None,
        *,
        peer_host: str | None = None,
    ) -> FileTransferState:
        """Our side of the stream before the answer goes out (a URI with our address as
        `peer_host` reaches it, the expectation)."""
        state = FileTransferState(
            decision=decision,
            selector=selector,
            record=record,
            local_uri=self._msrp.new_local_uri(peer_host),
        )
        if not decision.we_connect:
            state.pending = self._msrp.expect(
                state.local_uri, " ".join(decision.remote_path), config=self._session_config()
            )
        return state

    def _session_config(self) -> SessionConfig:
        return SessionConfig(
            max_message_size=self.store.max_size,
            deliver_chunks=True,
            report_partial_chunks=False,  # our REPORT comes after the hash check
        )

    def start(self, room: Room, participant: Participant, state: FileTransferState) -> None:
        if state.task is None:
            state.task = self._host.spawn(
                self._run(room, participant, state), name=f"file-{participant.id}"
            )

    def stop(self, state: FileTransferState) -> None:
        """Tear down (the SIP session is gone): an unfinished upload keeps its prefix."""
        state.done = True
        if state.pending is not None:
            self._msrp.forget_expected(state.local_uri)
            state.pending = None
        if state.task is not None and state.task is not asyncio.current_task():
            state.task.cancel()
        state.task = None
        if state.upload is not None:
            state.upload.abort(keep=True)
        if state.source is not None:
            state.source.close()
            state.source = None
        if state.channel is not None:
            state.channel.close()
            state.channel = None

    async def housekeeping(self, interval: float | None = None) -> None:
        """Expire old files now and then (run it as an owned task); at start, too."""
        period = expiry_interval(self.store.retention) if interval is None else interval
        while True:
            self.expire()
            await asyncio.sleep(period)

    def expire(self) -> None:
        for room_key in self.store.expire(self._clock(), self._persistent):
            self._host.files_changed(room_key)

    # ----------------------------------------------------------------- the session
    async def _run(self, room: Room, participant: Participant, state: FileTransferState) -> None:
        decision = state.decision
        loop = asyncio.get_running_loop()
        try:
            if decision.we_connect:
                channel = await self._msrp.connect(
                    state.local_uri, " ".join(decision.remote_path), config=self._session_config()
                )
            else:
                assert state.pending is not None
                channel = await asyncio.wait_for(state.pending, self.connect_timeout)
        except (ConnectionError, OSError, TimeoutError) as exc:
            state.pending = None
            log.info("x file transfer of %s: no MSRP connection: %s", participant.uri, exc)
            self._end(room, participant, state, "MSRP connection failed")
            return
        state.pending = None
        if state.done:
            channel.close()
            return
        state.channel = channel
        state.finished = loop.create_future()
        if decision.upload:  # before the handler: chunks may be waiting already
            try:
                state.upload = self.store.begin_upload(
                    room.key,
                    state.selector,
                    sender_identity(participant.display_name, participant.uri),
                )
            except (FileTooLarge, OSError) as exc:
                log.info("x upload to %s refused: %s", room.key, exc)
                self._end(room, participant, state, "file transfer refused")
                return
            if self.announce is not None:
                size = format_size(state.selector.size or 0)
                self.announce(
                    room,
                    f"Room {room.key} - {state.upload.sender}"
                    f" is uploading file {state.selector.display_name} ({size})",
                )
        channel.set_handler(
            lambda event: self._event(room, participant, state, event),
            lambda reason: self._lost(state, reason),
        )
        if not decision.upload:
            await self._send_file(state, channel)
        ok = await state.finished
        log.info(
            "file %s %s for %s in %s",
            "upload" if decision.upload else "download",
            "done" if ok else "failed",
            participant.uri,
            room.key,
        )
        await asyncio.sleep(self.end_delay)
        self._end(room, participant, state, "file transfer done" if ok else "file transfer failed")

    def _end(
        self, room: Room, participant: Participant, state: FileTransferState, why: str
    ) -> None:
        if not state.done:
            state.task = None
            self._host.end_file_session(room, participant, why)

    def _finish(self, state: FileTransferState, ok: bool) -> None:
        if state.finished is not None and not state.finished.done():
            state.finished.set_result(ok)

    def _lost(self, state: FileTransferState, reason: str) -> None:
        log.info("x file transfer connection lost: %s", reason)
        if state.upload is not None and not state.upload.closed:
            state.upload.abort(keep=True)
        self._finish(state, False)

    # --------------------------------------------------------------------- download
    async def _send_file(self, state: FileTransferState, channel: MsrpChannel) -> None:
        record = state.record
        assert record is not None
        offset = 0
        if state.decision.file_offset:  # ask first, as msrplib does (BLINK.md 5)
            state.offset_reply = asyncio.get_running_loop().create_future()
            state.offset_tid = channel.call(lambda s: s.send_file_offset())
            try:
                offset = await asyncio.wait_for(state.offset_reply, FILE_OFFSET_TIMEOUT)
            except TimeoutError:
                offset = 0
        if not channel.is_open or state.done:
            self._finish(state, False)
            return
        offset = offset if 0 <= offset <= record.size else 0
        state.source = self.store.open_source(record)
        source = state.source
        state.message_id = channel.call(
            lambda s: s.send_message(record.type, source, offset=offset)
        )

    # ----------------------------------------------------------------------- events
    def _event(
        self, room: Room, participant: Participant, state: FileTransferState, event: MsrpEvent
    ) -> None:
        channel = state.channel
        if channel is None or state.done:
            return
        match event:
            case FileOffsetRequested():
                have = state.upload.offset if state.upload is not None else 0
                channel.call(lambda s: s.respond_file_offset(event.request, have))
            case ChunkReceived():
                self._on_chunk(
                    room,
                    state,
                    channel,
                    event.message_id,
                    event.content_type,
                    event.offset,
                    event.data,
                    event.total,
                )
            case MessageReceived():
                state.last_message = event
                if not event.chunked:  # a whole small file in one SEND
                    self._on_chunk(
                        room,
                        state,
                        channel,
                        event.message_id,
                        event.content_type,
                        0,
                        event.body,
                        event.size,
                    )
            case MessageAborted():
                if state.upload is not None and not state.upload.closed:
                    state.upload.abort(keep=True)
                self._finish(state, False)
            case ResponseReceived():
                if event.transaction_id == state.offset_tid and state.offset_reply is not None:
                    if not state.offset_reply.done():
                        ok = event.status == 200 and event.offset is not None
                        state.offset_reply.set_result(event.offset if ok and event.offset else 0)
                elif event.status != 200 and event.message_id == state.message_id:
                    self._finish(state, False)
            case TransactionTimedOut():
                if event.transaction_id == state.offset_tid and state.offset_reply is not None:
                    if not state.offset_reply.done():
                        state.offset_reply.set_result(0)
                elif event.message_id == state.message_id:
                    self._finish(state, False)
            case ReportReceived():
                if event.message_id != state.message_id or state.record is None:
                    return
                if event.status.code != 200:
                    self._finish(state, False)
                elif event.byte_range is None or (event.byte_range.end or 0) >= state.record.size:
                    self._finish(state, True)
            case _:
                pass

    def _on_chunk(
        self,
        room: Room,
        state: FileTransferState,
        channel: MsrpChannel,
        message_id: str,
        content_type: str | None,
        offset: int,
        data: bytes,
        total: int | None,
    ) -> None:
        upload = state.upload
        if upload is None or upload.closed:
            return
        state.message_id = message_id
        try:
            if total is not None:
                upload.set_total(total)
            upload.write(offset, data)
        except UploadError as exc:
            log.info("x upload to %s refused: %s", room.key, exc.reason)
            upload.abort(keep=exc.status != 413)
            self._report(state, channel, message_id, content_type, exc.status, exc.reason)
            self._finish(state, False)
            return
        except OSError as exc:
            log.warning("x upload to %s: %s", room.key, exc)
            upload.abort(keep=False)
            self._report(state, channel, message_id, content_type, 400, "Cannot store the file")
            self._finish(state, False)
            return
        if not upload.complete:
            return
        try:
            record = upload.finish(self._clock())
        except UploadError as exc:
            log.info("x upload to %s failed: %s", room.key, exc.reason)
            self._report(state, channel, message_id, content_type, exc.status, exc.reason)
            if self.announce is not None:
                self.announce(
                    room, f"File transfer for {state.selector.display_name} failed: {exc.reason}"
                )
            self._finish(state, False)
            return
        self._report(state, channel, message_id, content_type, 200, None)
        self._host.files_changed(room.key)
        if self.announce is not None:
            self.announce(
                room,
                f"{record.sender} has uploaded file {record.name} ({format_size(record.size)})",
            )
        if self.uploaded is not None:
            self.uploaded(room, record)
        self._finish(state, True)

    def _report(
        self,
        state: FileTransferState,
        channel: MsrpChannel,
        message_id: str,
        content_type: str | None,
        status: int,
        comment: str | None,
    ) -> None:
        """The REPORT for the whole file (RFC 4975 7.1.2); Blink asks for both reports."""
        upload = state.upload
        size = upload.total if upload is not None and upload.total is not None else 0

        def send(session: MsrpSession) -> bool:
            message = state.last_message
            if message is None or message.message_id != message_id:
                message = MessageReceived(
                    message_id=message_id,
                    content_type=content_type,
                    body=b"",
                    headers={},
                    size=size,
                    success_report=True,
                    failure_report="yes",
                    reply_path=session.remote_path,
                    chunked=True,
                )
            else:
                message = replace(message, size=size)
            return session.report(message, status, comment)

        if channel.is_open:
            channel.call(send)
