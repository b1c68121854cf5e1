"""RFC 4733 telephone-event payloads and a per-stream DTMF digit detector, sans-I/O.

All packets of one event carry the same RTP timestamp (RFC 4733 section 2.5.1.2); the end
packet (E bit) is normally sent three times (section 2.5.1.4). The detector reports a digit
once, on the first packet of an event it sees (start, update or a lone end packet), and
never again for that event; a long event split into segments (section 2.5.1.3) is treated as
a continuation, not as a new key press.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

__all__ = ["DIGITS", "DtmfDetector", "DtmfError", "TelephoneEvent"]

DIGITS = "0123456789*#ABCD"
"""Event codes 0..15 (RFC 4733 section 3.2); code 16 (flash) is reported as ``"flash"``."""

_FLASH = 16
_PAYLOAD = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A payload that is not a telephone-event (RFC 4733 section 2.3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One telephone-event payload block (RFC 4733 section 2.3)."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event out of range: {self.event}")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume out of range: {self.volume}")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"duration out of range: {self.duration}")

    @property
    def digit(self) -> str | None:
        """The DTMF key for events 0..16, else None (other tones are not digits)."""
        if self.event < len(DIGITS):
            return DIGITS[self.event]
        return "flash" if self.event == _FLASH else None

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first (and normally only) event block of a payload."""
        if len(payload) < _PAYLOAD.size:
            raise DtmfError(f"telephone-event payload too short: {len(payload)} bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        flags = (0x80 if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @classmethod
    def for_digit(cls, digit: str, *, end: bool = False, volume: int = 10, duration: int = 0,
                  ) -> TelephoneEvent:
        code = _FLASH if digit == "flash" else DIGITS.index(digit.upper())
        return cls(event=code, end=end, volume=volume, duration=duration)


class DtmfDetector:
    """Turns the telephone-event packets of one stream into digits, each reported once."""

    def __init__(self) -> None:
        self._timestamp: int | None = None
        self._event: TelephoneEvent | None = None
        self._recent: deque[int] = deque(maxlen=8)  # timestamps of earlier events

    def receive(self, timestamp: int, payload: bytes) -> str | None:
        """Feed one telephone-event RTP payload; returns the digit when a new event starts.

        Raises :class:`DtmfError` for a malformed payload.
        """
        event = TelephoneEvent.parse(payload)
        if timestamp == self._timestamp:
            # Same event: update, retransmitted end, or out-of-order start (section 2.5.1).
            self._event = event
            return None
        if timestamp in self._recent:
            return None  # late packet of an event already reported
        previous, previous_ts = self._event, self._timestamp
        if previous_ts is not None:
            self._recent.append(previous_ts)
        self._timestamp, self._event = timestamp, event
        if (
            previous is not None
            and previous_ts is not None
            and not previous.end
            and previous.event == event.event
            and (timestamp - previous_ts) & 0xFFFFFFFF == previous.duration
        ):
            return None  # next segment of a long-duration event (section 2.5.1.3)
        return event.digit
