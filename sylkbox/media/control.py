"""The typed control protocol between the main process and the media worker.

One JSON object per line (UTF-8) over the worker's stdin (commands) and stdout (events);
``"type"`` names the dataclass, the other keys are its fields. Every command that names a
stream is answered, in order, by exactly one event for the same ``stream_id``:
``AddStream`` by ``StreamAdded`` or ``StreamFailed``, ``UpdateStream`` by ``StreamUpdated``
or ``StreamFailed``, ``RemoveStream`` by ``StreamRemoved``. ``WorkerReady`` is sent once at
start-up; ``RtpTimeout``, ``Dtmf`` and a ``StreamFailed`` without a pending command are
spontaneous.

Directions are from the worker's (our) point of view, as in our SDP answer (RFC 3264
section 6.1): ``sendonly`` means we send and the remote is muted, ``recvonly`` means the
remote put us on hold.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from sylkbox.sdp.crypto import SUITE_KEY_SALT_LENGTHS, CryptoParseError, KeyParam
from sylkbox.sdp.model import Direction

__all__ = [
    "AddStream",
    "ControlError",
    "ControlMessage",
    "Direction",
    "Dtmf",
    "GetStats",
    "MediaCommand",
    "MediaEvent",
    "PlayPrompt",
    "RemoveStream",
    "RtpTimeout",
    "SetMute",
    "Shutdown",
    "SrtpParams",
    "StreamAdded",
    "StreamFailed",
    "StreamRemoved",
    "StreamStats",
    "StreamUpdated",
    "TickStats",
    "UpdateStream",
    "WorkerReady",
    "from_json",
    "to_json",
]


class ControlError(ValueError):
    """A control line that does not decode to a known, valid message."""


# One Direction type for SDP and media: in control messages it is always our side's.
def _check_port(name: str, value: int, *, allow_zero: bool) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise ValueError(f"{name} out of range: {value}")


def _check_pt(name: str, value: int | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 127:
        raise ValueError(f"{name} must be an RTP payload type 0..127, got {value!r}")


def _check_str(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlMessage:
    """Base of every control message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaCommand(ControlMessage):
    """Main process -> worker."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaEvent(ControlMessage):
    """Worker -> main process."""


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SrtpParams:
    """SRTP keying of a stream (SDES, RFC 4568; RFC 3711): the crypto-suite and the base64
    master key || salt we protect with (our a=crypto) and the remote unprotects with (its
    a=crypto).  The keys never appear in ``repr`` (nor in logs)."""

    suite: str
    local_key: str
    remote_key: str

    def __post_init__(self) -> None:
        length = SUITE_KEY_SALT_LENGTHS.get(self.suite)
        if length is None:
            raise ValueError(f"unsupported SRTP suite {self.suite!r}")
        for name in ("local_key", "remote_key"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string")
            try:
                ok = len(KeyParam(key_salt=value).key_bytes) == length
            except CryptoParseError:
                ok = False
            if not ok:
                raise ValueError(f"{name} must be {length} bytes of base64")  # no key text

    def __repr__(self) -> str:
        return f"SrtpParams(suite={self.suite!r}, local_key=<hidden>, remote_key=<hidden>)"


def _check_srtp(value: SrtpParams | None) -> None:
    if value is not None and not isinstance(value, SrtpParams):
        raise TypeError("srtp must be SrtpParams or None")


@dataclass(frozen=True, slots=True, kw_only=True)
class AddStream(MediaCommand):
    """Create an RTP stream in a room. ``local_port`` asks for a specific (even) port, as
    used when the worker is restarted; ``None`` lets the worker pick from its range.
    ``remote_port`` 0 means not yet known: the first incoming packet sets it."""

    room_id: str
    stream_id: str
    local_host: str
    local_port: int | None
    remote_host: str
    remote_port: int
    payload_type: int
    codec: str
    clock_rate: int
    telephone_event_pt: int | None
    direction: Direction
    room_rate: int = 16000
    srtp: SrtpParams | None = None
    muted: bool = False  # kept by the supervisor across worker restarts (SetMute)

    def __post_init__(self) -> None:
        _check_str("room_id", self.room_id)
        _check_str("stream_id", self.stream_id)
        _check_str("local_host", self.local_host)
        _check_str("remote_host", self.remote_host)
        _check_str("codec", self.codec)
        if self.local_port is not None:
            _check_port("local_port", self.local_port, allow_zero=False)
        _check_port("remote_port", self.remote_port, allow_zero=True)
        _check_pt("payload_type", self.payload_type)
        _check_pt("telephone_event_pt", self.telephone_event_pt, optional=True)
        if not isinstance(self.direction, Direction):
            raise TypeError("direction must be a Direction")
        if self.clock_rate <= 0 or self.room_rate not in (8000, 16000, 32000, 48000):
            raise ValueError("bad clock_rate or room_rate")
        _check_srtp(self.srtp)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStream(MediaCommand):
    """Replace the negotiated parameters of a stream (re-INVITE, hold, unhold)."""

    stream_id: str
    remote_host: str
    remote_port: int
    payload_type: int
    codec: str
    clock_rate: int
    telephone_event_pt: int | None
    direction: Direction
    srtp: SrtpParams | None = None  # None: plain RTP from now on

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)
        _check_str("remote_host", self.remote_host)
        _check_str("codec", self.codec)
        _check_port("remote_port", self.remote_port, allow_zero=True)
        _check_pt("payload_type", self.payload_type)
        _check_pt("telephone_event_pt", self.telephone_event_pt, optional=True)
        if not isinstance(self.direction, Direction):
            raise TypeError("direction must be a Direction")
        if self.clock_rate <= 0:
            raise ValueError("bad clock_rate")
        _check_srtp(self.srtp)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveStream(MediaCommand):
    stream_id: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMute(MediaCommand):
    """Mute or unmute a stream in the room mix: a muted stream is not heard by the others
    but still hears the room (answered by ``StreamUpdated``)."""

    stream_id: str
    muted: bool

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)
        if not isinstance(self.muted, bool):
            raise TypeError("muted must be a bool")


PROMPT_NAMES = ("join", "alone", "muted", "unmuted")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompt(MediaCommand):
    """Play a prompt (see ``media.prompts``) in a room: to every stream of the room when
    ``stream_id`` is None, else privately to that stream only, mixed on top of what it
    hears. Not answered; an unknown room, stream or prompt is logged and ignored."""

    room_id: str
    prompt: str
    stream_id: str | None = None

    def __post_init__(self) -> None:
        _check_str("room_id", self.room_id)
        if self.prompt not in PROMPT_NAMES:
            raise ValueError(f"unknown prompt {self.prompt!r}")
        if self.stream_id is not None:
            _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(MediaCommand):
    """Close every stream and exit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStats(MediaCommand):
    """Ask for the mixer clock's :class:`TickStats` now; ``reset`` starts a new window."""

    reset: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerReady(MediaEvent):
    """The worker reads commands from now on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamAdded(MediaEvent):
    stream_id: str
    local_port: int

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)
        _check_port("local_port", self.local_port, allow_zero=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamUpdated(MediaEvent):
    stream_id: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamRemoved(MediaEvent):
    stream_id: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFailed(MediaEvent):
    stream_id: str
    reason: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpTimeout(MediaEvent):
    """No RTP (or RTCP) received for the configured timeout (RFC 3550 section 6.3.5)."""

    stream_id: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtmf(MediaEvent):
    """A key press received as an RFC 4733 telephone-event."""

    stream_id: str
    digit: str

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)
        _check_str("digit", self.digit)


@dataclass(frozen=True, slots=True, kw_only=True)
class TickStats(MediaEvent):
    """Health of the 20 ms mixer clock since the last reset (a window of ticks).

    Tick *k* of a window has the deadline ``t0 + k * 20 ms``. It is *late* when it starts
    more than 5 ms after its deadline, or when its processing (``tick``) takes longer than
    the 20 ms budget; ticks skipped because the clock fell too far behind count as ticks
    and as late. ``max_late_ms`` is the largest start lateness, ``mean_tick_ms`` and
    ``p99_tick_ms`` the processing time per tick.
    """

    ticks: int
    late_ticks: int
    max_late_ms: float
    mean_tick_ms: float
    p99_tick_ms: float

    def __post_init__(self) -> None:
        if not 0 <= self.late_ticks <= self.ticks:
            raise ValueError("late_ticks must be within 0..ticks")


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats(MediaEvent):
    """Reception and playout figures of one stream, sent with each of its RTCP reports.

    Ours (RFC 3550 appendix A.3, A.8): ``packets_lost`` cumulative, ``fraction_lost`` over
    the last reporting interval (0..1), ``jitter_ms`` the interarrival jitter. The peer's,
    from its reports about our stream (6.4): ``remote_*``, and ``rtt_ms`` from LSR/DLSR
    (6.4.1); ``None`` until a report arrives. Playout: late and duplicate packets dropped,
    frames lost at playout (concealed), of which ``frames_recovered`` by in-band FEC, and
    the jitter buffer's target delay."""

    stream_id: str
    packets_received: int
    packets_lost: int
    fraction_lost: float
    jitter_ms: float
    rtt_ms: float | None = None
    remote_packets_lost: int | None = None
    remote_fraction_lost: float | None = None
    remote_jitter_ms: float | None = None
    packets_late: int = 0
    packets_duplicate: int = 0
    frames_concealed: int = 0
    frames_recovered: int = 0
    playout_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_str("stream_id", self.stream_id)
        if not 0.0 <= self.fraction_lost <= 1.0:
            raise ValueError(f"fraction_lost out of 0..1: {self.fraction_lost}")


_TYPES: dict[str, type[ControlMessage]] = {
    cls.__name__: cls
    for cls in (
        AddStream, UpdateStream, RemoveStream, Shutdown,
        WorkerReady, StreamAdded, StreamUpdated, StreamRemoved, StreamFailed, RtpTimeout, Dtmf,
        GetStats, TickStats, SetMute, PlayPrompt, StreamStats,
    )
}


def to_json(message: ControlMessage) -> str:
    """One line of JSON (no newline) for ``message``."""
    data: dict[str, Any] = {"type": type(message).__name__}
    data.update(asdict(message))
    return json.dumps(data, separators=(",", ":"))


def from_json(line: str | bytes) -> ControlMessage:
    """Decode one line; raises :class:`ControlError` for anything invalid."""
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ControlError("control line is not a JSON object")
        cls = _TYPES[data.pop("type")]
        names = {f.name for f in fields(cls)}
        if not names.issuperset(data):
            raise ControlError(f"unknown fields for {cls.__name__}: {set(data) - names}")
        if "direction" in data:
            data["direction"] = Direction(data["direction"])
        if isinstance(data.get("srtp"), dict):
            data["srtp"] = SrtpParams(**data["srtp"])
        return cls(**data)
    except ControlError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ControlError(f"bad control line: {exc}") from exc
