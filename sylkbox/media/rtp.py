"""RTP packet parsing and serialization (RFC 3550 section 5.1), sans-I/O.

Also holds the RTP/RTCP demultiplexing test of RFC 5761 section 4 and the 16/32-bit
sequence and timestamp arithmetic helpers used by the stream layer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_VERSION",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "is_rtcp",
    "seq_add",
    "ts_add",
]

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet (RFC 3550 section 5.1)."""


def seq_add(seq: int, delta: int) -> int:
    """Add modulo 2**16 (RFC 3550 section 5.1, sequence number)."""
    return (seq + delta) & 0xFFFF


def ts_add(ts: int, delta: int) -> int:
    """Add modulo 2**32 (RFC 3550 section 5.1, timestamp)."""
    return (ts + delta) & 0xFFFFFFFF


def is_rtcp(data: bytes) -> bool:
    """True when a datagram is RTCP rather than RTP (RFC 5761 section 4: PT 64..95)."""
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpExtension:
    """A header extension (RFC 3550 section 5.3.1): 16-bit profile tag and opaque data."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile out of range: {self.profile}")
        if len(self.data) % 4:
            raise ValueError("extension data must be a multiple of 4 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet (RFC 3550 section 5.1).

    ``padding`` is the number of padding octets (including the final count octet); it is
    removed from ``payload`` on parse and re-added (as zeros plus count) on serialize.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type out of range: {self.payload_type}")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number out of range: {self.sequence_number}")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp out of range: {self.timestamp}")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC out of range: {self.ssrc}")
        if len(self.csrc) > 15 or any(not 0 <= c <= 0xFFFFFFFF for c in self.csrc):
            raise ValueError("at most 15 CSRCs of 32 bits")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding out of range: {self.padding}")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram; raises :class:`RtpError` (RFC 3550 section 5.1, A.1 checks)."""
        if len(data) < _HEADER.size:
            raise RtpError(f"RTP packet too short: {len(data)} bytes")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"bad RTP version {first >> 6}")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        cc = first & 0x0F
        pos = _HEADER.size
        end = len(data)
        if end < pos + 4 * cc:
            raise RtpError("RTP packet truncated in CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, pos)
        pos += 4 * cc
        extension = None
        if has_extension:
            if end < pos + 4:
                raise RtpError("RTP packet truncated in extension header")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if end < pos + 4 * words:
                raise RtpError("RTP packet truncated in extension data")
            extension = RtpExtension(profile=profile, data=bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        padding = 0
        if has_padding:
            padding = data[-1]
            if padding == 0 or end - padding < pos:
                raise RtpError(f"bad RTP padding length {padding}")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """Serialize to wire bytes (RFC 3550 section 5.1)."""
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [
            _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            ext = self.extension
            parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4) + ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)
