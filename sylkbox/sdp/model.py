"""The SDP data model: parse and serialize session descriptions (RFC 4566).

``SessionDescription.parse(data)`` turns bytes into a tree of plain dataclasses and
``to_bytes()`` turns it back.  Every line the parser accepts is kept: unknown attributes, their
order, property attributes (``a=foo``) versus empty values (``a=foo:``), several ``t=``/``r=``
lines.  A description written in the RFC 4566 5 field order with CRLF line ends comes back byte
for byte; one with bare LF line ends (tolerated, RFC 4566 5) comes back with CRLF.

Field order is not enforced beyond the RFC essentials (``v=`` first, media-level fields only after
``m=``) and serialization always uses the RFC order.  Anything else wrong raises
:class:`~sylkbox.sdp.errors.SdpParseError` naming the line; the parser never raises another
exception.  Limits (:class:`SdpLimits`) bound the work an attacker can cause.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sylkbox.sdp.errors import SdpParseError

__all__ = [
    "STATIC_AUDIO_PAYLOAD_TYPES",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpLimits",
    "SessionDescription",
    "Timing",
]

logger = logging.getLogger(__name__)

Attribute = tuple[str, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SdpLimits:
    """Parser limits; exceeding one raises ``SdpParseError``."""

    max_size: int = 65535
    max_media: int = 64
    max_attributes: int = 1024  # over the whole description
    max_lines: int = 4096


class Direction(enum.StrEnum):
    """Stream direction attributes (RFC 4566 6, RFC 3264 5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        if receives:
            return cls.RECVONLY
        return cls.INACTIVE

    def reversed(self) -> Direction:
        """The direction seen from the other side (RFC 3264 6.1: sendonly <-> recvonly)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 4566 6)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int = 1
    channels_written: bool = False  # whether "/<channels>" was present (exact serialization)

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse an rtpmap value; raises ``ValueError`` with a reason."""
        pt_text, _, encoding = value.partition(" ")
        parts = encoding.strip().split("/")
        if not _is_uint(pt_text) or int(pt_text) > 127:
            raise ValueError("bad rtpmap payload type")
        if len(parts) not in (2, 3) or not parts[0] or not _is_uint(parts[1]):
            raise ValueError("bad rtpmap encoding")
        channels = 1
        if len(parts) == 3:
            if not _is_uint(parts[2]) or int(parts[2]) == 0:
                raise ValueError("bad rtpmap channel count")
            channels = int(parts[2])
        if int(parts[1]) == 0:
            raise ValueError("bad rtpmap clock rate")
        return cls(int(pt_text), parts[0], int(parts[1]), channels, len(parts) == 3)

    def __str__(self) -> str:
        text = f"{self.payload_type} {self.encoding_name}/{self.clock_rate}"
        if self.channels_written or self.channels != 1:
            text += f"/{self.channels}"
        return text


#: Static audio payload types of the RTP/AVP profile (RFC 3551 6, table 4) that need no rtpmap.
STATIC_AUDIO_PAYLOAD_TYPES: dict[int, RtpMap] = {
    0: RtpMap(0, "PCMU", 8000),
    3: RtpMap(3, "GSM", 8000),
    4: RtpMap(4, "G723", 8000),
    5: RtpMap(5, "DVI4", 8000),
    6: RtpMap(6, "DVI4", 16000),
    7: RtpMap(7, "LPC", 8000),
    8: RtpMap(8, "PCMA", 8000),
    9: RtpMap(9, "G722", 8000),
    10: RtpMap(10, "L16", 44100, 2),
    11: RtpMap(11, "L16", 44100),
    12: RtpMap(12, "QCELP", 8000),
    13: RtpMap(13, "CN", 8000),
    14: RtpMap(14, "MPA", 90000),
    15: RtpMap(15, "G728", 8000),
    16: RtpMap(16, "DVI4", 11025),
    17: RtpMap(17, "DVI4", 22050),
    18: RtpMap(18, "G729", 8000),
}


@dataclass(slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``
    (RFC 4566 5.2).  Session id and version are kept as written (numeric strings)."""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 4566 5.7).

    ``address`` is kept as written, including a multicast ``/ttl/count`` suffix; ``host`` drops it.
    """

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Timing:
    """``t=<start> <stop>`` with its ``r=`` repeat lines kept verbatim (RFC 4566 5.9, 5.10)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


class _AttributeMixin:
    """Attribute lookups shared by session and media level (names are case-sensitive)."""

    __slots__ = ()
    attributes: list[Attribute]

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=<name>`` (``""`` for a property attribute), or ``None``."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return ["" if value is None else value for key, value in self.attributes if key == name]

    def has_attribute(self, name: str) -> bool:
        return any(key == name for key, _ in self.attributes)

    @property
    def direction(self) -> Direction | None:
        """The direction attribute at this level, or ``None`` when absent (RFC 3264 5.1)."""
        for key, value in self.attributes:
            if value is None and key in _DIRECTIONS:
                return Direction(key)
        return None


@dataclass(slots=True)
class MediaDescription(_AttributeMixin):
    """One media section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` (RFC 4566 5.14)
    followed by its ``i=``, ``c=``, ``b=``, ``k=`` and ``a=`` lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    information: str | None = None
    key: str | None = None
    port_count: int | None = None

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The rtpmap for a payload type: the ``a=rtpmap`` line, else the static RTP/AVP
        assignment (RFC 3551 6) for audio, else ``None``."""
        for value in self.attribute_values("rtpmap"):
            pt_text = value.partition(" ")[0]
            if _is_uint(pt_text) and int(pt_text) == payload_type:
                try:
                    return RtpMap.parse(value)
                except ValueError:  # validated at parse time; only for hand-built models
                    return None
        if self.media == "audio":
            return STATIC_AUDIO_PAYLOAD_TYPES.get(payload_type)
        return None

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters of ``a=fmtp:<payload type> <params>`` (RFC 4566 6)."""
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if _is_uint(pt_text) and int(pt_text) == payload_type:
                return params.strip()
        return None

    def payload_types(self) -> list[int]:
        """The formats that are RTP payload type numbers, in offer order."""
        return [int(f) for f in self.formats if _is_uint(f) and int(f) <= 127]

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={' '.join([self.media, port, self.proto, *self.formats])}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={kind}:{value}" for kind, value in self.bandwidths)
        if self.key is not None:
            lines.append(f"k={self.key}")
        lines.extend(_attribute_lines(self.attributes))
        return lines


@dataclass(slots=True)
class SessionDescription(_AttributeMixin):
    """A whole session description (RFC 4566 5)."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    times: list[Timing] = field(default_factory=list)
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    # -- derived views -------------------------------------------------------------------------

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The effective connection of a media section (media level, else session level)."""
        return media.connection if media.connection is not None else self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """The effective direction: media level, else session level, else sendrecv
        (RFC 4566 6, RFC 3264 5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    # -- serialization -------------------------------------------------------------------------

    def lines(self) -> list[str]:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        if self.uri is not None:
            lines.append(f"u={self.uri}")
        lines.extend(f"e={email}" for email in self.emails)
        lines.extend(f"p={phone}" for phone in self.phones)
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={kind}:{value}" for kind, value in self.bandwidths)
        for timing in self.times:
            lines.append(f"t={timing.start} {timing.stop}")
            lines.extend(f"r={repeat}" for repeat in timing.repeats)
        if self.zone is not None:
            lines.append(f"z={self.zone}")
        if self.key is not None:
            lines.append(f"k={self.key}")
        lines.extend(_attribute_lines(self.attributes))
        for media in self.media:
            lines.extend(media.lines())
        return lines

    def to_bytes(self) -> bytes:
        """Serialize with CRLF line ends.  Raises ``ValueError`` if a field holds CR or LF
        (that would inject lines)."""
        lines = self.lines()
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"SDP field contains a line break: {line!r}")
        return "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines())

    # -- parsing -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str, limits: SdpLimits | None = None) -> SessionDescription:
        """Parse a session description; raises :class:`SdpParseError` only."""
        return _Parser(limits or SdpLimits()).parse(data)


def _attribute_lines(attributes: Iterable[Attribute]) -> list[str]:
    return [f"a={name}" if value is None else f"a={name}:{value}" for name, value in attributes]


def _is_uint(text: str) -> bool:
    """A decimal number short enough for ``int()`` (which refuses huge digit strings)."""
    return 0 < len(text) <= 30 and text.isascii() and text.isdigit()


_SESSION_ONCE = frozenset("vosiuzkc")
_MEDIA_FIELDS = frozenset("icbka")
_KNOWN_TYPES = frozenset("vosiuepcbtrzkam")


class _Parser:
    """One-shot line parser (RFC 4566 5 grammar, tolerant of field order at session level)."""

    def __init__(self, limits: SdpLimits) -> None:
        self.limits = limits
        self.lineno = 0
        self.line = ""

    def error(self, reason: str) -> SdpParseError:
        shown = self.line if len(self.line) <= 80 else self.line[:77] + "..."
        if "crypto" in shown.lower() or "inline:" in shown.lower():
            shown = shown.partition(":")[0] + ":<hidden>"  # SRTP keys never in errors or logs
        return SdpParseError(f"line {self.lineno} {shown!r}: {reason}")

    def parse(self, data: bytes | str) -> SessionDescription:
        if len(data) > self.limits.max_size:
            raise SdpParseError(f"session description larger than {self.limits.max_size} bytes")
        if isinstance(data, bytes | bytearray | memoryview):
            text = bytes(data).decode("utf-8", "surrogateescape")
        elif isinstance(data, str):
            text = data
        else:
            raise SdpParseError(f"cannot parse {type(data).__name__} as SDP")
        raw_lines = text.split("\n")
        if raw_lines and raw_lines[-1] == "":
            raw_lines.pop()
        if not raw_lines:
            raise SdpParseError("empty session description")
        if len(raw_lines) > self.limits.max_lines:
            raise SdpParseError(f"more than {self.limits.max_lines} lines")

        origin: Origin | None = None
        session = SessionDescription(origin=Origin("-", "0", "0", "IN", "IP4", "0.0.0.0"))
        seen: set[str] = set()
        media: MediaDescription | None = None
        media_seen: set[str] = set()
        attribute_count = 0

        for self.lineno, raw in enumerate(raw_lines, start=1):
            self.line = line = raw.removesuffix("\r")
            if "\r" in line or "\x00" in line:
                raise self.error("control character in line")
            if len(line) < 2 or line[1] != "=":
                raise self.error("expected <type>=<value>")
            kind, value = line[0], line[2:]
            if kind not in _KNOWN_TYPES:
                raise self.error(f"unknown field type {kind!r}")
            if self.lineno == 1:
                if kind != "v":
                    raise self.error("session description must start with v=")
                if value != "0":
                    raise self.error("unsupported SDP version")
            if kind == "m":
                if len(session.media) >= self.limits.max_media:
                    raise self.error(f"more than {self.limits.max_media} media descriptions")
                media = self.parse_media(value)
                session.media.append(media)
                media_seen = set()
                continue
            if kind == "a":
                attribute_count += 1
                if attribute_count > self.limits.max_attributes:
                    raise self.error(f"more than {self.limits.max_attributes} attributes")
                attribute = self.parse_attribute(value)
                (media if media is not None else session).attributes.append(attribute)
                continue
            if media is not None:
                if kind not in _MEDIA_FIELDS:
                    raise self.error(f"{kind}= is not allowed in a media description")
                if kind in media_seen and kind != "b":
                    raise self.error(f"duplicate {kind}= in media description")
                media_seen.add(kind)
                if kind == "i":
                    media.information = value
                elif kind == "c":
                    media.connection = self.parse_connection(value)
                elif kind == "b":
                    media.bandwidths.append(self.parse_bandwidth(value))
                else:  # k
                    media.key = value
                continue
            if kind in _SESSION_ONCE and kind in seen:
                raise self.error(f"duplicate {kind}= line")
            seen.add(kind)
            match kind:
                case "v":
                    if self.lineno != 1:
                        raise self.error("v= must be the first line")
                case "o":
                    origin = self.parse_origin(value)
                case "s":
                    session.session_name = value
                case "i":
                    session.information = value
                case "u":
                    session.uri = value
                case "e":
                    session.emails.append(value)
                case "p":
                    session.phones.append(value)
                case "c":
                    session.connection = self.parse_connection(value)
                case "b":
                    session.bandwidths.append(self.parse_bandwidth(value))
                case "t":
                    session.times.append(self.parse_timing(value))
                case "r":
                    if not session.times:
                        raise self.error("r= without a preceding t=")
                    session.times[-1].repeats.append(value)
                case "z":
                    session.zone = value
                case _:  # "k"
                    session.key = value

        self.lineno, self.line = 0, ""
        if origin is None:
            raise SdpParseError("missing o= line")
        if "s" not in seen:
            raise SdpParseError("missing s= line")
        session.origin = origin
        return session

    def parse_origin(self, value: str) -> Origin:
        parts = value.split(" ")
        if len(parts) != 6 or not all(parts):
            raise self.error("o= needs 6 fields")
        if not all(p.isascii() and p.isdigit() for p in parts[1:3]):
            raise self.error("o= session id and version must be numeric")
        return Origin(*parts)

    def parse_connection(self, value: str) -> Connection:
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise self.error("c= needs 3 fields")
        return Connection(*parts)

    def parse_bandwidth(self, value: str) -> tuple[str, int]:
        kind, sep, amount = value.partition(":")
        if not sep or not kind or not _is_uint(amount):
            raise self.error("b= needs <bwtype>:<bandwidth>")
        if str(int(amount)) != amount:
            raise self.error("b= bandwidth has leading zeros")
        return kind, int(amount)

    def parse_timing(self, value: str) -> Timing:
        parts = value.split(" ")
        if len(parts) != 2 or not all(_is_uint(p) and str(int(p)) == p for p in parts):
            raise self.error("t= needs <start> <stop> as decimal numbers")
        return Timing(int(parts[0]), int(parts[1]))

    def parse_attribute(self, value: str) -> Attribute:
        name, sep, attr_value = value.partition(":")
        if not name or " " in name:
            raise self.error("bad attribute name")
        if name == "rtpmap" and sep:
            try:
                RtpMap.parse(attr_value)
            except ValueError as exc:
                raise self.error(str(exc)) from None
        return name, (attr_value if sep else None)

    def parse_media(self, value: str) -> MediaDescription:
        parts = value.split(" ")
        if len(parts) < 3 or not all(parts):
            raise self.error("m= needs <media> <port> <proto> <fmt> ...")
        media, port_text, proto, *formats = parts
        port_text, slash, count_text = port_text.partition("/")
        if not _is_uint(port_text) or int(port_text) > 65535 or str(int(port_text)) != port_text:
            raise self.error("bad port")
        port_count: int | None = None
        if slash:
            if not _is_uint(count_text) or int(count_text) == 0:
                raise self.error("bad port count")
            port_count = int(count_text)
        if str(port_count) != count_text and slash:
            raise self.error("bad port count")
        return MediaDescription(
            media=media, port=int(port_text), proto=proto, formats=formats, port_count=port_count
        )
