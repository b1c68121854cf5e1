"""RTCP packets and reception statistics (RFC 3550 sections 6 and A), sans-I/O.

* Packets: sender report (SR, 6.4.1), receiver report (RR, 6.4.2), source description
  (SDES, 6.5, CNAME in particular), goodbye (BYE, 6.6); any other packet type is kept
  opaque (:class:`UnknownRtcp`). :func:`parse_compound` and :func:`serialize_compound`
  handle compound packets (6.1) with the validity checks of A.2 (version 2, padding only
  on the last packet, lengths adding up to the datagram).
* :class:`ReceptionStatistics` keeps the per-source counters of A.1 (sequence number
  validation with wrap-around and restart), A.3 (extended highest sequence number,
  cumulative and fractional loss) and A.8 (interarrival jitter), and builds the report
  block for our SR/RR, with LSR/DLSR (6.4.1).
* :func:`round_trip_time` computes the RTT from a report block about us (6.4.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "PT_BYE",
    "PT_RR",
    "PT_SDES",
    "PT_SR",
    "SDES_CNAME",
    "Bye",
    "ReceiverReport",
    "ReceptionStatistics",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "SdesChunk",
    "SdesItem",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "ntp_middle",
    "ntp_timestamp",
    "parse_compound",
    "round_trip_time",
    "serialize_compound",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1

_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SR_INFO = struct.Struct("!IQIII")
_NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch)."""

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100


class RtcpError(ValueError):
    """A datagram that is not a valid (compound) RTCP packet (RFC 3550 section A.2)."""


def _u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} out of 32-bit range: {value}")


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp (RFC 3550 section 4) of a Unix time in seconds."""
    seconds = unix_time + _NTP_EPOCH_OFFSET
    whole = int(seconds)
    frac = int((seconds - whole) * (1 << 32)) & 0xFFFFFFFF
    return ((whole & 0xFFFFFFFF) << 32) | frac


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (the LSR field, RFC 3550 section 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT in seconds from a report block about our SSRC received at ``arrival_ntp``
    (RFC 3550 section 6.4.1: A - LSR - DLSR); ``None`` if no SR was echoed yet."""
    if block.lsr == 0:
        return None
    rtt = (ntp_middle(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 1 << 31:  # negative: clocks or the peer's DLSR are off
        return None
    return rtt / 65536.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """One reception report block (RFC 3550 section 6.4.1)."""

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def __post_init__(self) -> None:
        for name in ("ssrc", "highest_sequence", "jitter", "lsr", "dlsr"):
            _u32(name, getattr(self, name))
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction lost out of range: {self.fraction_lost}")
        if not -(1 << 23) <= self.packets_lost < 1 << 23:
            raise ValueError(f"cumulative loss out of 24-bit range: {self.packets_lost}")

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        return cls(
            ssrc=ssrc,
            fraction_lost=fraction,
            packets_lost=int.from_bytes(lost, "big", signed=True),
            highest_sequence=highest,
            jitter=jitter,
            lsr=lsr,
            dlsr=dlsr,
        )

    def serialize(self) -> bytes:
        lost = self.packets_lost.to_bytes(3, "big", signed=True)
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost, self.highest_sequence,
                           self.jitter, self.lsr, self.dlsr)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpPacket:
    """Base of the packets of a compound RTCP packet. ``padding`` counts the padding octets
    (with the final count octet) of this packet, as on the wire (RFC 3550 section 6.4.1)."""

    padding: int = 0

    def _body(self) -> tuple[int, int, bytes]:
        """(count field, packet type, body after the 4-octet header)."""
        raise NotImplementedError

    def serialize(self) -> bytes:
        count, packet_type, body = self._body()
        if not 0 <= count <= 31:
            raise ValueError(f"RTCP count field out of range: {count}")
        if len(body) % 4:
            raise ValueError("RTCP body is not a multiple of 32 bits")
        pad = b""
        if self.padding:
            if self.padding % 4 or not 0 < self.padding <= 255:
                raise ValueError(f"bad RTCP padding {self.padding}")
            pad = bytes(self.padding - 1) + bytes((self.padding,))
        first = 0x80 | (0x20 if self.padding else 0) | count
        length = (len(body) + len(pad)) // 4
        return _HEADER.pack(first, packet_type, length) + body + pad


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport(RtcpPacket):
    """SR (RFC 3550 section 6.4.1); ``ntp_timestamp`` is the full 64-bit value."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        for name in ("ssrc", "rtp_timestamp", "packet_count", "octet_count"):
            _u32(name, getattr(self, name))
        if not 0 <= self.ntp_timestamp < 1 << 64:
            raise ValueError("NTP timestamp out of 64-bit range")

    def _body(self) -> tuple[int, int, bytes]:
        info = _SR_INFO.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp,
                             self.packet_count, self.octet_count)
        blocks = b"".join(b.serialize() for b in self.reports)
        return len(self.reports), PT_SR, info + blocks + self.extension


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport(RtcpPacket):
    """RR (RFC 3550 section 6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        _u32("ssrc", self.ssrc)

    def _body(self) -> tuple[int, int, bytes]:
        blocks = b"".join(b.serialize() for b in self.reports)
        return len(self.reports), PT_RR, struct.pack("!I", self.ssrc) + blocks + self.extension


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesItem:
    """One SDES item (RFC 3550 section 6.5): type 1..255 and up to 255 octets of text."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.type <= 255 or len(self.value) > 255:
            raise ValueError("bad SDES item")


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesChunk:
    """The items of one source (RFC 3550 section 6.5)."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    @property
    def cname(self) -> str | None:
        for item in self.items:
            if item.type == SDES_CNAME:
                return item.value.decode("utf-8", "replace")
        return None

    def serialize(self) -> bytes:
        out = struct.pack("!I", self.ssrc) + b"".join(
            bytes((i.type, len(i.value))) + i.value for i in self.items
        )
        # At least one null octet ends the list, then pad to a 32-bit boundary (6.5).
        return out + bytes(4 - len(out) % 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDescription(RtcpPacket):
    """SDES (RFC 3550 section 6.5)."""

    chunks: tuple[SdesChunk, ...] = ()

    def _body(self) -> tuple[int, int, bytes]:
        return len(self.chunks), PT_SDES, b"".join(c.serialize() for c in self.chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye(RtcpPacket):
    """BYE (RFC 3550 section 6.6) with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes | None = None

    def __post_init__(self) -> None:
        for ssrc in self.sources:
            _u32("ssrc", ssrc)
        if self.reason is not None and len(self.reason) > 255:
            raise ValueError("BYE reason longer than 255 octets")

    def _body(self) -> tuple[int, int, bytes]:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason is not None:
            text = bytes((len(self.reason),)) + self.reason
            body += text + bytes(-len(text) % 4)
        return len(self.sources), PT_BYE, body


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownRtcp(RtcpPacket):
    """Any other packet type (APP, feedback, XR...), kept as opaque bytes."""

    packet_type: int
    count: int
    body: bytes

    def _body(self) -> tuple[int, int, bytes]:
        return self.count, self.packet_type, self.body


def _parse_one(packet_type: int, count: int, body: bytes, padding: int) -> RtcpPacket:
    if packet_type == PT_SR:
        if len(body) < _SR_INFO.size + 24 * count:
            raise RtcpError("SR truncated")
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        pos = _SR_INFO.size
        blocks = tuple(ReportBlock.parse(body, pos + 24 * i) for i in range(count))
        return SenderReport(ssrc=ssrc, ntp_timestamp=ntp, rtp_timestamp=rtp_ts,
                            packet_count=packets, octet_count=octets, reports=blocks,
                            extension=body[pos + 24 * count:], padding=padding)
    if packet_type == PT_RR:
        if len(body) < 4 + 24 * count:
            raise RtcpError("RR truncated")
        blocks = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
        return ReceiverReport(ssrc=struct.unpack_from("!I", body)[0], reports=blocks,
                              extension=body[4 + 24 * count:], padding=padding)
    if packet_type == PT_SDES:
        return SourceDescription(chunks=_parse_chunks(body, count), padding=padding)
    if packet_type == PT_BYE:
        if len(body) < 4 * count:
            raise RtcpError("BYE truncated")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = None
        pos = 4 * count
        if pos < len(body):
            size = body[pos]
            if pos + 1 + size > len(body):
                raise RtcpError("BYE reason truncated")
            reason = body[pos + 1 : pos + 1 + size]
        return Bye(sources=tuple(sources), reason=reason, padding=padding)
    return UnknownRtcp(packet_type=packet_type, count=count, body=body, padding=padding)


def _parse_chunks(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtcpError("SDES chunk truncated")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise RtcpError("SDES item list not terminated")
            item_type = body[pos]
            if item_type == 0:  # end of list; skip to the next 32-bit boundary
                pos = (pos + 4) & ~3
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtcpError("SDES item truncated")
            size = body[pos + 1]
            items.append(SdesItem(type=item_type, value=body[pos + 2 : pos + 2 + size]))
            pos += 2 + size
        chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
    return tuple(chunks)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram; raises :class:`RtcpError` (RFC 3550 A.2 checks,
    except that a lone non-report packet is accepted, as RFC 5506 reduced-size RTCP)."""
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < _HEADER.size:
            raise RtcpError("RTCP header truncated")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            raise RtcpError(f"bad RTCP version {first >> 6}")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError("RTCP packet truncated")
        padding = 0
        if first & 0x20:
            if end != len(data):
                raise RtcpError("RTCP padding before the last packet")
            padding = data[end - 1]
            if padding == 0 or padding > 4 * words:
                raise RtcpError(f"bad RTCP padding length {padding}")
        try:
            packets.append(
                _parse_one(packet_type, first & 0x1F, data[pos + 4 : end - padding], padding)
            )
        except (ValueError, struct.error) as exc:
            if isinstance(exc, RtcpError):
                raise
            raise RtcpError(f"malformed RTCP packet type {packet_type}: {exc}") from exc
        pos = end
    if not packets:
        raise RtcpError("empty RTCP datagram")
    return packets


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Concatenate packets into one compound packet (RFC 3550 section 6.1)."""
    if any(p.padding for p in packets[:-1]):
        raise ValueError("only the last packet of a compound RTCP packet may be padded")
    return b"".join(p.serialize() for p in packets)


class ReceptionStatistics:
    """Reception counters of one source (RFC 3550 appendix A.1, A.3, A.8).

    ``update`` is called for every RTP packet of the source, ``report_block`` once per
    reporting interval (it advances the "prior" counters used for the fraction lost).
    """

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit: int | None = None
        self.jitter = 0.0  # timestamp units (A.8)
        self.last_sr: int = 0  # middle 32 bits of the last SR's NTP timestamp
        self.last_sr_arrival: float | None = None
        self._started = False

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, seq: int, timestamp: int, arrival: float, *, timing: bool = True) -> bool:
        """Count one packet (A.1 ``update_seq``); False if it was set aside as a jump.

        ``timing`` False leaves the jitter alone (telephone-event packets repeat one
        timestamp, RFC 4733 section 2.5.1.2)."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
        else:
            udelta = (seq - self.max_seq) & 0xFFFF
            if udelta < MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += RTP_SEQ_MOD  # wrapped
                self.max_seq = seq
            elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
                if seq == self.bad_seq:  # two sequential packets: the source restarted
                    self._init_seq(seq)
                    self._transit = None
                else:
                    self.bad_seq = (seq + 1) & 0xFFFF
                    return False
            # else: duplicate or reordered packet, counted below
        self.received += 1
        if timing:
            transit = int(arrival * self.clock_rate) - timestamp
            if self._transit is not None:
                d = (transit - self._transit + (1 << 31)) % (1 << 32) - (1 << 31)
                if abs(d) < 10 * self.clock_rate:  # not a timestamp jump
                    self.jitter += (abs(d) - self.jitter) / 16
            self._transit = transit
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the 24-bit signed field (A.3)."""
        return max(-(1 << 23), min((1 << 23) - 1, self.expected - self.received))

    def sender_report_received(self, ntp: int, arrival: float) -> None:
        """Remember an SR of this source for LSR/DLSR (6.4.1)."""
        self.last_sr = ntp_middle(ntp)
        self.last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The block for our next SR/RR; advances the interval counters (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self.last_sr_arrival is not None:
            dlsr = min(0xFFFFFFFF, max(0, int((now - self.last_sr_arrival) * 65536)))
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=self.cumulative_lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=min(0xFFFFFFFF, int(self.jitter)),
            lsr=self.last_sr,
            dlsr=dlsr,
        )
