"""Screen sharing through the conference: the newest JPEG frame of each sender (BLINK.md 6).

Blink for macOS sends its screen as chat messages of wrapped type
``application/blink-screensharing``: a base64-encoded JPEG, CPIM-wrapped, at most one per second
and never before the previous frame's 200 REPORT.  The chat switch
(:class:`sylkbox.conference.chat.ChatSwitch`) hands each such message to
:meth:`ScreenShares.on_frame`; what SylkServer's ``ScreenImage`` does then, this module does:

* the body is base64-decoded and checked to be a JPEG (:func:`validate_jpeg`: SOI, well-formed
  header segments up to a frame header and a scan, EOI at the end, ITU-T T.81 annex B); a frame
  over ``max_frame_size`` bytes is refused with 413, anything else that is not a JPEG with 400.
  ``on_frame`` returns that :class:`ChatStatus`; as long as the switch's callback type returns
  ``None`` the switch answers 200 regardless, and a refused frame is only logged and dropped;
* only the newest frame of each sender is kept, written atomically (a ``.tmp`` file, then
  ``os.replace``) to ``<data_dir>/screens/<room-id>/<user@host>_<10 random letters/digits>.jpg``.
  The name is fixed per sender (per SIP identity, BLINK.md 4.2) for the life of the room and is
  never taken from the wire: only a sanitized ``user@host`` of the sender's SIP identity and
  random characters.  Files are written synchronously without ``fsync`` (frames are a few
  hundred KiB at 1 fps and worthless after a restart); readers never see a partial file;
* the first frame makes the share active: the room's ``screen_urls`` gets the viewer URL
  (``conference-info`` carries it as ``agp-conf:screen_image_url``), the focus NOTIFYs the
  subscribers (``on_change``), and ``Room X - <sender> is sharing the screen at <url>`` goes to
  the chat; every frame restarts a 10 s timer, and when it fires the URL goes away (NOTIFY) and
  ``<sender> stopped sharing the screen`` is sent;
* when the room ends, timers are cancelled and its directory is removed.

:class:`ScreenSharing` is the box-wide registry (built by ``app.py``, used by the focus, the chat
glue and the web UI); :class:`ScreenShares` holds one room's shares.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import shutil
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from sylkbox.conference.chat import ChatStatus
from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room, identity_key
from sylkbox.msrp.cpim import CpimMessage

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_FRAME_SIZE",
    "Cancellable",
    "InvalidFrame",
    "JpegInfo",
    "Scheduler",
    "ScreenShare",
    "ScreenShares",
    "ScreenSharing",
    "decode_frame",
    "is_image_name",
    "sender_key",
    "validate_jpeg",
]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 10.0
DEFAULT_MAX_FRAME_SIZE = 2 * 1024 * 1024
MAX_JPEG_SEGMENTS = 512
"""Header segments accepted before the first scan (real encoders write fewer than 20)."""
_RANDOM_ALPHABET = string.ascii_letters + string.digits
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._+@-]")
_IMAGE_NAME = re.compile(r"[A-Za-z0-9_+@-][A-Za-z0-9._+@-]{0,100}_[A-Za-z0-9]{10}\.jpg")
_WHITESPACE = re.compile(rb"[ \t\r\n]+")


# -- JPEG validation (ITU-T T.81 annex B) ----------------------------------------------------------


class InvalidFrame(ValueError):
    """A screen-sharing frame that is refused; ``status`` is the REPORT status (400 or 413)."""

    def __init__(self, reason: str, status: ChatStatus = ChatStatus.BAD_REQUEST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class JpegInfo:
    """What the frame header (SOFn, T.81 B.2.2) says about an image."""

    width: int
    height: int
    components: int


_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): T.81 table B.1
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_RST = frozenset(range(0xD0, 0xD8))


def validate_jpeg(data: bytes) -> JpegInfo:
    """Check that ``data`` is one JPEG image (T.81 B.2.1): SOI, header segments whose lengths
    fit, one frame header with a non-zero size, a scan, and EOI as the last two bytes.

    Entropy-coded data is not decoded.  Raises :class:`InvalidFrame` (400).
    """
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != _SOI:
        raise InvalidFrame("not a JPEG: no SOI marker")
    if data[-2] != 0xFF or data[-1] != _EOI:
        raise InvalidFrame("not a JPEG: no EOI marker at the end")
    pos = 2
    info: JpegInfo | None = None
    segments = 0
    while True:
        if pos >= size or data[pos] != 0xFF:
            raise InvalidFrame(f"not a JPEG: no marker at offset {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes (T.81 B.1.1.2)
            pos += 1
        if pos >= size:
            raise InvalidFrame("not a JPEG: truncated marker")
        marker = data[pos]
        pos += 1
        if marker == 0x00 or marker in (_SOI, _EOI):
            raise InvalidFrame(f"not a JPEG: marker 0x{marker:02X} before the scan")
        if marker == _TEM or marker in _RST:
            continue  # standalone markers carry no length
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise InvalidFrame("not a JPEG: too many header segments")
        if pos + 2 > size:
            raise InvalidFrame("not a JPEG: truncated segment length")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size - 2:
            raise InvalidFrame(f"not a JPEG: segment 0x{marker:02X} length {length} out of range")
        segment = data[pos + 2 : pos + length]
        if marker in _SOF:
            if info is not None:
                raise InvalidFrame("not a JPEG: two frame headers")
            info = _frame_header(segment)
        elif marker == _SOS:
            if info is None:
                raise InvalidFrame("not a JPEG: scan before the frame header")
            _scan_header(segment, info)
            return info
        pos += length


def _frame_header(segment: bytes) -> JpegInfo:
    """SOFn (T.81 B.2.2): P, Y, X, Nf, then 3 bytes per component."""
    if len(segment) < 6:
        raise InvalidFrame("not a JPEG: short frame header")
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    components = segment[5]
    if segment[0] not in (8, 12, 16) and not 2 <= segment[0] <= 16:
        raise InvalidFrame("not a JPEG: bad sample precision")
    if width == 0 or height == 0:
        raise InvalidFrame("not a JPEG: empty image")
    if components == 0 or len(segment) != 6 + 3 * components:
        raise InvalidFrame("not a JPEG: bad frame header length")
    return JpegInfo(width=width, height=height, components=components)


def _scan_header(segment: bytes, info: JpegInfo) -> None:
    """SOS (T.81 B.2.3): Ns, 2 bytes per component, Ss, Se, Ah/Al."""
    if not segment or not 1 <= segment[0] <= 4 or len(segment) != 4 + 2 * segment[0]:
        raise InvalidFrame("not a JPEG: bad scan header")
    if segment[0] > info.components:
        raise InvalidFrame("not a JPEG: scan names more components than the frame")


def decode_frame(body: bytes, *, max_size: int = DEFAULT_MAX_FRAME_SIZE) -> tuple[bytes, JpegInfo]:
    """Base64 (RFC 4648 section 4; line breaks tolerated) to a validated JPEG.

    Raises :class:`InvalidFrame`: 413 when the image exceeds ``max_size`` bytes, else 400.
    """
    # checked before decoding: 4 base64 characters per 3 bytes, plus some line breaks
    if len(body) > (max_size + 2) // 3 * 4 + max_size // 16 + 64:
        raise InvalidFrame("frame too large", ChatStatus.UNWANTED)
    text = _WHITESPACE.sub(b"", body)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidFrame(f"frame is not base64: {exc}") from None
    if len(data) > max_size:
        raise InvalidFrame("frame too large", ChatStatus.UNWANTED)
    return data, validate_jpeg(data)


# -- names -----------------------------------------------------------------------------------------


def sender_key(uri: str) -> str:
    """The file-name prefix of a sender: ``user@host`` of its SIP identity (BLINK.md 4.2),
    with anything but ``[A-Za-z0-9._+@-]`` replaced by ``_``, never starting with a dot."""
    key = _KEY_UNSAFE.sub("_", identity_key(uri))[:64]
    return "_" + key[1:] if key.startswith(".") else key or "_"


def is_image_name(name: str) -> bool:
    """True for names :class:`ScreenShares` could have made (no path separators, no ``..``
    at the start, ending in ``_<10 alnum>.jpg``): the web UI refuses anything else with 400."""
    return _IMAGE_NAME.fullmatch(name) is not None


# -- timers ----------------------------------------------------------------------------------------


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """``loop.call_later`` (an ``asyncio`` loop satisfies it; tests pass a fake clock)."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable: ...


class _RunningLoop:
    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


# -- one room --------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class ScreenShare:
    """One sender's share: its fixed file name, frame counter and state."""

    key: str  # identity key user@host (Room.screen_urls key)
    sender: str  # ``Display <user@host>``, for the status texts
    filename: str
    path: Path
    frames: int = 0
    active: bool = False
    timer: Cancellable | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


StatusSender = Callable[[str], None]


class ScreenShares:
    """The screen shares of one room (SylkServer ``Room.add_screen_image``)."""

    def __init__(
        self,
        room: Room,
        *,
        directory: Path,
        base_url: Callable[[], str],
        on_change: Callable[[Room], None],
        status: StatusSender | None = None,
        scheduler: Scheduler | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.room = room
        self.directory = directory
        self.status = status
        self._base_url = base_url
        self._on_change = on_change
        self._scheduler: Scheduler = scheduler or _RunningLoop()
        self._max_frame_size = max_frame_size
        self._idle_timeout = idle_timeout
        self._shares: dict[str, ScreenShare] = {}  # by identity key
        self._by_file: dict[str, ScreenShare] = {}
        self.closed = False

    # -- queries (web UI) --------------------------------------------------------------------------

    def share(self, filename: str) -> ScreenShare | None:
        return self._by_file.get(filename)

    def image_path(self, filename: str) -> Path | None:
        """The file behind ``filename`` if this room made it and it holds a frame."""
        share = self._by_file.get(filename)
        return share.path if share is not None and share.frames else None

    @property
    def active(self) -> tuple[ScreenShare, ...]:
        return tuple(s for s in self._shares.values() if s.active)

    def url_for(self, filename: str) -> str:
        """``<web base>/conference/<room>/screensharing?image=<file>`` (BLINK.md 6, ``@`` in
        the query as ``%40``)."""
        room = quote(self.room.key, safe="@")
        image = quote(filename, safe="")
        return f"{self._base_url()}/conference/{room}/screensharing?image={image}"

    async def wait_frame(self, filename: str, after: int, timeout: float) -> ScreenShare | None:
        """Wait until the share of ``filename`` has a frame newer than ``after`` or changes
        state (or ``timeout`` passes); None when the share or the room is gone."""
        share = self._by_file.get(filename)
        if share is None or self.closed:
            return None
        if share.frames <= after:
            event = share.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return None if self.closed else share

    # -- frames ------------------------------------------------------------------------------------

    def on_frame(self, participant: Participant, message: CpimMessage) -> ChatStatus:
        """A ``application/blink-screensharing`` message from a participant (the chat switch
        has already checked that its CPIM From is the participant's SIP identity)."""
        if self.closed or self.room.participants.get(participant.id) is not participant:
            return ChatStatus.FORBIDDEN
        try:
            data, info = decode_frame(message.body, max_size=self._max_frame_size)
        except InvalidFrame as exc:
            logger.info("x %s in %s: frame refused: %s", participant.uri, self.room.key, exc)
            return exc.status
        key = identity_key(participant.uri)
        share = self._shares.get(key)
        if share is None:
            name = f"{sender_key(participant.uri)}_{_random_suffix()}.jpg"
            display = participant.nickname or participant.display_name
            sender = f"{display} <{key}>" if display else key
            share = ScreenShare(key, sender, name, self.directory / name)
            self._shares[key] = share
            self._by_file[name] = share
        try:
            _write_atomically(share.path, data)
        except OSError as exc:
            logger.error("cannot store a screen frame of %s: %s", participant.uri, exc)
            return ChatStatus.OK  # our fault, not the sender's: keep the share going
        share.frames += 1
        logger.debug(
            "< %s in %s: frame %d, %dx%d, %d bytes",
            participant.uri,
            self.room.key,
            share.frames,
            info.width,
            info.height,
            len(data),
        )
        if share.timer is not None:
            share.timer.cancel()
        share.timer = self._scheduler.call_later(self._idle_timeout, lambda: self._idle(share))
        if not share.active:
            share.active = True
            url = self.url_for(share.filename)
            self.room.screen_urls[key] = url
            logger.info("%s is sharing the screen in %s at %s", share.sender, self.room.key, url)
            self._on_change(self.room)
            self._status(f"Room {self.room.key} - {share.sender} is sharing the screen at {url}")
        _notify(share)
        return ChatStatus.OK

    def _idle(self, share: ScreenShare) -> None:
        share.timer = None
        if not share.active or self.closed:
            return
        share.active = False
        self.room.screen_urls.pop(share.key, None)
        logger.info("%s stopped sharing the screen in %s", share.sender, self.room.key)
        self._on_change(self.room)
        self._status(f"{share.sender} stopped sharing the screen")
        _notify(share)

    def _status(self, text: str) -> None:
        if self.status is not None:
            self.status(text)

    def close(self) -> None:
        """The room ended: cancel the timers, wake web viewers, remove the files."""
        if self.closed:
            return
        self.closed = True
        for share in self._shares.values():
            if share.timer is not None:
                share.timer.cancel()
                share.timer = None
            share.active = False
            self.room.screen_urls.pop(share.key, None)
            _notify(share)
        shutil.rmtree(self.directory, ignore_errors=True)


def _notify(share: ScreenShare) -> None:
    event, share.changed = share.changed, asyncio.Event()
    event.set()


def _random_suffix() -> str:
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(10))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# -- the box ---------------------------------------------------------------------------------------


class ScreenSharing:
    """All rooms' screen shares, under ``<data_dir>/screens/<room-id>/``.

    ``app.py`` wires it: ``on_frame`` is the chat's screen-frame callback (``RoomChat``),
    ``status`` sends a room status line (``RoomChat.status``), ``on_change`` is the focus's
    ``room_changed`` (NOTIFY), and ``base_url`` (``http://<advertised address>:<web port>``)
    is set once the web site listens.  The focus calls ``room_ended``.  ``host_for`` (when set)
    gives our address as a peer reaches it (None: no peer known): `url_for_peer` puts it into
    a URL for one peer (a conference-info subscriber), and the default one replaces
    ``base_url``'s host in the URLs made here (the chat status lines).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        base_url: str = "",
        host_for: Callable[[str | None], str] | None = None,
        on_change: Callable[[Room], None] | None = None,
        status: Callable[[Room, str], None] | None = None,
        scheduler: Scheduler | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.root = data_dir / "screens"
        self.base_url = base_url
        self.host_for = host_for
        self.on_change = on_change
        self.status = status
        self._scheduler = scheduler
        self._max_frame_size = max_frame_size
        self._idle_timeout = idle_timeout
        self._rooms: dict[str, ScreenShares] = {}  # by room key

    def on_frame(self, room: Room, participant: Participant, message: CpimMessage) -> ChatStatus:
        """A screen-sharing frame for ``room`` (see :meth:`ScreenShares.on_frame`)."""
        return self.attach(room).on_frame(participant, message)

    def attach(self, room: Room) -> ScreenShares:
        """The shares of ``room``, created on first use."""
        shares = self._rooms.get(room.key)
        if shares is not None and shares.room is room and not shares.closed:
            return shares
        if shares is not None:
            shares.close()
        shares = ScreenShares(
            room,
            directory=self.root / room.id,
            base_url=lambda: self.url_for_peer(self.base_url, None),
            on_change=self._changed,
            status=lambda text: self._status(room, text),
            scheduler=self._scheduler,
            max_frame_size=self._max_frame_size,
            idle_timeout=self._idle_timeout,
        )
        self._rooms[room.key] = shares
        return shares

    def get(self, room_key: str) -> ScreenShares | None:
        return self._rooms.get(room_key.lower())

    def url_for_peer(self, url: str, peer_host: str | None) -> str:
        """One of our URLs with our address as `peer_host` reaches it (the port is kept);
        unchanged without ``host_for`` or for a URL without a host."""
        parts = urlsplit(url)
        if self.host_for is None or not parts.hostname:
            return url
        host = self.host_for(peer_host)
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _changed(self, room: Room) -> None:
        if self.on_change is not None:
            self.on_change(room)

    def _status(self, room: Room, text: str) -> None:
        if self.status is not None:
            self.status(room, text)

    def room_ended(self, room: Room) -> None:
        """Remove the room's shares and files (the focus calls this when it drops a room)."""
        shares = self._rooms.get(room.key)
        if shares is not None and shares.room is room:
            del self._rooms[room.key]
            shares.close()
        else:
            shutil.rmtree(self.root / room.id, ignore_errors=True)

    def close(self) -> None:
        """Shutdown: every room's shares and files go."""
        for shares in list(self._rooms.values()):
            shares.close()
        self._rooms.clear()
