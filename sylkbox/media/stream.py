"""Per-stream RTP state in the media worker, sans-I/O (the worker owns the sockets).

* Sending (RFC 3550 section 5.1): random SSRC, initial sequence number and timestamp; one
  packet per 20 ms tick, marker bit on the first packet of a talk spurt (RFC 3551 4.1).
* Receiving: packets go through an adaptive playout buffer
  (:class:`~sylkbox.media.jitterbuffer.JitterBuffer`: reordering, duplicates, late packets,
  SSRC and timestamp jumps, clock drift, DTX). Each mixer tick takes one 20 ms frame at the
  room rate (:meth:`Stream.pop_frame`): the decoded packet, or for a lost one the codec's
  in-band FEC from the next packet (Opus) or its concealment, and silence after 100 ms.
  Comfort noise (payload type 13, RFC 3389) is accepted as a sign of life and not played;
  telephone-event packets (RFC 4733) go to the DTMF detector.
* RTCP (RFC 3550 section 6): reception statistics per appendix A.1/A.3/A.8, our SR or RR
  with SDES CNAME every ``RTCP_INTERVAL`` (randomised, 6.3.1), the peer's reports about us
  (loss, jitter, round-trip time from LSR/DLSR, 6.4.1), all summarised as ``StreamStats``.
* Symmetric RTP (RFC 4961): once packets of our payload types arrive, we send to their
  source address, whatever the SDP said; RTCP likewise goes to where RTCP comes from.
* RTP timeout: reported once per silent period when nothing arrived for ``rtp_timeout``
  seconds on a stream that should receive.

Directions are ours (see ``control.Direction``). A stream's audio is *heard* in the room
only when sendrecv: recvonly means the remote holds us, sendonly that it is muted, and
neither held nor muted audio is mixed. We send to sendrecv and sendonly streams.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sylkbox.media.codecs import Codec
from sylkbox.media.control import Direction, StreamStats
from sylkbox.media.dtmf import DtmfDetector, DtmfError
from sylkbox.media.jitterbuffer import JitterBuffer, PlayoutKind
from sylkbox.media.resample import Resampler
from sylkbox.media.rtcp import (
    SDES_CNAME,
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    ntp_timestamp,
    parse_compound,
    round_trip_time,
    serialize_compound,
)
from sylkbox.media.rtp import RtpError, RtpPacket, seq_add, ts_add

__all__ = ["CN_PAYLOAD_TYPE", "RTCP_INTERVAL", "Address", "Stream", "StreamParams"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Int16Array = npt.NDArray[np.int16]

CN_PAYLOAD_TYPE = 13
"""Static comfort noise payload type (RFC 3551 section 6, RFC 3389)."""
RTCP_INTERVAL = 5.0
"""Nominal seconds between our RTCP reports (RFC 3550 section 6.2 minimum)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamParams:
    """The negotiated part of a stream, replaced as a whole by an update."""

    remote: Address | None
    payload_type: int
    codec: Codec
    telephone_event_pt: int | None
    direction: Direction


class Stream:
    """One RTP stream of one participant in one room."""

    def __init__(
        self,
        *,
        stream_id: str,
        room_id: str,
        local_port: int,
        params: StreamParams,
        room_rate: int,
        rtp_timeout: float,
        now: float,
        rng: random.Random | None = None,
        cname: str = "sylkbox",
        ntp_offset: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rng = rng or random.SystemRandom()
        self._rng = rng
        self.stream_id = stream_id
        self.room_id = room_id
        self.local_port = local_port
        self.room_rate = room_rate
        self.frame_samples = round(room_rate * 0.02)
        self.rtp_timeout = rtp_timeout
        self.cname = cname
        self.ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self._marker = True
        self._clock = clock
        # ``now`` is monotonic; NTP timestamps need wall-clock time (RFC 3550 section 4).
        self._ntp_offset = time.time() - now if ntp_offset is None else ntp_offset
        self._pcm = np.zeros(0, dtype=np.int16)
        self._last_rx = now
        self._timed_out = False
        self._dtmf = DtmfDetector()
        self._jitter = JitterBuffer(clock_rate=params.codec.clock_rate)
        self._rx: ReceptionStatistics | None = None
        self._fraction_lost = 0.0
        self._fec_recovered = 0
        self._decode_errors = 0
        # sending side, for our SR (RFC 3550 section 6.4.1)
        self._packets_sent = 0
        self._octets_sent = 0
        self._sent_since_report = False
        self._last_sent_ts = self._timestamp
        self._last_sent_at = now
        # the peer's reports about us
        self._rtt: float | None = None
        self._remote_lost: int | None = None
        self._remote_fraction: float | None = None
        self._remote_jitter: float | None = None
        self.remote_cname: str | None = None
        self.rtcp_mux = False
        self._rtcp_source: Address | None = None
        # First report after one whole randomised interval (RFC 3550 section 6.2 allows half
        # of it; the first seconds of a call carry little to report).
        self._next_rtcp = now + RTCP_INTERVAL * rng.uniform(0.5, 1.5)
        self.params = params
        self._apply(params)

    def _apply(self, params: StreamParams) -> None:
        self.params = params
        self.remote = params.remote
        self._rx_resampler = Resampler(params.codec.sample_rate, self.room_rate)
        self._tx_resampler = Resampler(self.room_rate, params.codec.sample_rate)
        if params.codec.clock_rate != self._jitter.clock_rate:
            self._jitter = JitterBuffer(clock_rate=params.codec.clock_rate)
            self._rx = None
        self._pcm = np.zeros(0, dtype=np.int16)

    def update(self, params: StreamParams, now: float) -> None:
        """Apply a renegotiation; the SSRC and sequence continue (RFC 3550 section 8)."""
        self._apply(params)
        self._last_rx = now
        self._timed_out = False
        self._marker = True

    @property
    def heard(self) -> bool:
        """Whether this stream's audio goes into the room mix."""
        return self.params.direction is Direction.SENDRECV

    @property
    def sends(self) -> bool:
        """Whether the room mix is sent to this stream (once a remote address is known)."""
        return self.params.direction.sends and self.remote is not None

    @property
    def jitter_buffer(self) -> JitterBuffer:
        return self._jitter

    # ------------------------------------------------------------------ RTP in
    def receive_rtp(self, data: bytes, source: Address, now: float) -> str | None:
        """Handle one datagram from the RTP socket; returns a DTMF digit when one starts."""
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            logger.debug("x %s: dropped datagram from %s: %s", self.stream_id, source, exc)
            return None
        params = self.params
        pt = packet.payload_type
        audio = pt == params.payload_type
        event = pt == params.telephone_event_pt
        if not (audio or event or pt == CN_PAYLOAD_TYPE):
            return None  # formats we did not negotiate
        if self.remote != source:
            logger.info("%s: symmetric RTP, sending to %s:%d", self.stream_id, *source)
            self.remote = source
        self._last_rx = now
        self._timed_out = False
        rx = self._rx
        if rx is None or rx.ssrc != packet.ssrc:
            if rx is not None:
                logger.info("%s: new SSRC %08x", self.stream_id, packet.ssrc)
            rx = self._rx = ReceptionStatistics(packet.ssrc, params.codec.clock_rate)
        rx.update(packet.sequence_number, packet.timestamp, now, timing=audio)
        self._jitter.put(ssrc=packet.ssrc, sequence_number=packet.sequence_number,
                         timestamp=packet.timestamp, payload=packet.payload if audio else None,
                         now=now)
        if event:
            try:
                return self._dtmf.receive(packet.timestamp, packet.payload)
            except DtmfError as exc:
                logger.debug("x %s: bad telephone-event: %s", self.stream_id, exc)
        return None

    def pop_frame(self, now: float | None = None) -> Int16Array | None:
        """The next 20 ms frame at the room rate, or None for silence (one call per tick).

        ``now`` defaults to the stream's clock (``time.monotonic``, the asyncio loop's)."""
        if now is None:
            now = self._clock()
        n = self.frame_samples
        if not self.heard:  # keep the playout moving, but decode nothing
            self._jitter.pop(now)
            self._pcm = self._pcm[:0]
            return None
        pcm = self._pcm
        while len(pcm) < n:
            playout = self._jitter.pop(now)
            codec = self.params.codec
            samples: Int16Array | None = None
            match playout.kind:
                case PlayoutKind.SILENCE:
                    if not len(pcm):
                        return None
                    pcm = np.concatenate((pcm, np.zeros(n - len(pcm), dtype=np.int16)))
                    break
                case PlayoutKind.AUDIO:
                    try:
                        samples = codec.decode(playout.payload)
                    except ValueError as exc:
                        self._decode_errors += 1
                        logger.debug("x %s: undecodable payload: %s", self.stream_id, exc)
                case PlayoutKind.LOST if playout.payload:
                    samples = codec.decode_fec(playout.payload)
                    if samples is not None:
                        self._fec_recovered += 1
                case _:
                    pass
            if samples is None:
                samples = codec.conceal()
            out = self._rx_resampler.process(samples)
            pcm = np.concatenate((pcm, out)) if len(pcm) else out
        self._pcm = pcm[n:]
        frame: Int16Array = pcm[:n]
        return frame

    # ------------------------------------------------------------------ RTCP
    def receive_rtcp(self, data: bytes, now: float, source: Address | None = None, *,
                     mux: bool = False) -> None:
        """Handle one (compound) RTCP datagram; ``mux`` when it came on the RTP port
        (RFC 5761). Any RTCP counts as a sign of life for the timeout."""
        self._last_rx = now
        self._timed_out = False
        if mux:
            self.rtcp_mux = True
        elif source is not None:
            self._rtcp_source = source
        try:
            packets = parse_compound(data)
        except RtcpError as exc:
            logger.debug("x %s: bad RTCP: %s", self.stream_id, exc)
            return
        for packet in packets:
            self._rtcp_packet(packet, now)

    def _rtcp_packet(self, packet: RtcpPacket, now: float) -> None:
        match packet:
            case SenderReport():
                rx = self._rx
                if rx is None:
                    rx = self._rx = ReceptionStatistics(packet.ssrc,
                                                        self.params.codec.clock_rate)
                if rx.ssrc == packet.ssrc:
                    rx.sender_report_received(packet.ntp_timestamp, now)
                self._reports(packet.reports, now)
            case ReceiverReport():
                self._reports(packet.reports, now)
            case SourceDescription():
                for chunk in packet.chunks:
                    cname = chunk.cname
                    if cname is not None and cname != self.remote_cname:
                        self.remote_cname = cname
                        logger.debug("< %s CNAME %s", self.stream_id, cname)
            case Bye():
                logger.info("< %s RTCP BYE %s", self.stream_id,
                            (packet.reason or b"").decode("utf-8", "replace"))
            case _:
                pass

    def _reports(self, blocks: tuple[ReportBlock, ...], now: float) -> None:
        for block in blocks:
            if block.ssrc != self.ssrc:
                continue
            self._remote_lost = block.packets_lost
            self._remote_fraction = block.fraction_lost / 256
            self._remote_jitter = block.jitter / self.params.codec.clock_rate
            rtt = round_trip_time(block, self._ntp(now))
            if rtt is not None:
                self._rtt = rtt

    def _ntp(self, now: float) -> int:
        return ntp_timestamp(now + self._ntp_offset)

    @property
    def rtcp_remote(self) -> Address | None:
        """Where our RTCP goes: the RTP address with rtcp-mux, else where the peer's RTCP
        comes from, else the RTP port + 1 (RFC 3550 section 11)."""
        if self.rtcp_mux or self.remote is None:
            return self.remote
        if self._rtcp_source is not None:
            return self._rtcp_source
        return (self.remote[0], self.remote[1] + 1)

    def rtcp_due(self, now: float) -> bool:
        """Whether our next report is due (randomised interval, RFC 3550 section 6.3.1)."""
        return now >= self._next_rtcp

    def build_rtcp(self, now: float) -> bytes:
        """Our compound report: SR if we sent since the last report, else RR, and SDES
        CNAME (RFC 3550 section 6.1); schedules the next one."""
        self._next_rtcp = now + RTCP_INTERVAL * self._rng.uniform(0.5, 1.5)
        blocks: tuple[ReportBlock, ...] = ()
        rx = self._rx
        if rx is not None and rx.received:
            block = rx.report_block(now)
            self._fraction_lost = block.fraction_lost / 256
            blocks = (block,)
        report: RtcpPacket
        if self._sent_since_report:
            self._sent_since_report = False
            elapsed = round((now - self._last_sent_at) * self.params.codec.clock_rate)
            report = SenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=self._ntp(now),
                rtp_timestamp=ts_add(self._last_sent_ts, elapsed),
                packet_count=self._packets_sent & 0xFFFFFFFF,
                octet_count=self._octets_sent & 0xFFFFFFFF,
                reports=blocks,
            )
        else:
            report = ReceiverReport(ssrc=self.ssrc, reports=blocks)
        sdes = SourceDescription(chunks=(
            SdesChunk(ssrc=self.ssrc, items=(SdesItem(type=SDES_CNAME,
                                                      value=self.cname.encode()[:255]),)),
        ))
        return serialize_compound([report, sdes])

    def stats(self) -> StreamStats:
        """The stream's figures now (the fraction lost is that of the last report)."""
        rx = self._rx
        clock_rate = self.params.codec.clock_rate
        jb = self._jitter.stats()
        return StreamStats(
            stream_id=self.stream_id,
            packets_received=rx.received if rx is not None else 0,
            packets_lost=rx.cumulative_lost if rx is not None and rx.received else 0,
            fraction_lost=self._fraction_lost,
            jitter_ms=round(rx.jitter / clock_rate * 1000, 2) if rx is not None else 0.0,
            rtt_ms=round(self._rtt * 1000, 2) if self._rtt is not None else None,
            remote_packets_lost=self._remote_lost,
            remote_fraction_lost=self._remote_fraction,
            remote_jitter_ms=(round(self._remote_jitter * 1000, 2)
                              if self._remote_jitter is not None else None),
            packets_late=jb.late,
            packets_duplicate=jb.duplicates,
            frames_concealed=jb.lost,
            frames_recovered=self._fec_recovered,
            playout_delay_ms=round(jb.target_delay * 1000, 1),
        )

    def build_packet(self, frame: Int16Array) -> bytes:
        """Encode one room-rate frame into the next RTP packet of this stream."""
        return self.packetize(self.params.codec.encode(self._tx_resampler.process(frame)))

    def packetize(self, payload: bytes) -> bytes:
        """The next RTP packet of this stream around an already encoded 20 ms ``payload``
        (the room's shared encode of the full mix for silent listeners)."""
        codec = self.params.codec
        packet = RtpPacket(
            payload_type=self.params.payload_type,
            sequence_number=self._seq,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            marker=self._marker,
            payload=payload,
        )
        self._marker = False
        self._packets_sent += 1
        self._octets_sent += len(payload)
        self._sent_since_report = True
        self._last_sent_ts = self._timestamp
        self._last_sent_at = self._clock()
        self._seq = seq_add(self._seq, 1)
        self._timestamp = ts_add(self._timestamp, codec.timestamp_step)
        return packet.serialize()

    def check_timeout(self, now: float) -> bool:
        """True once when the stream should receive but nothing came for ``rtp_timeout``
        (0 disables the check, as `[media] rtp_timeout = 0` documents)."""
        if self._timed_out or self.rtp_timeout <= 0 or not self.params.direction.receives:
            return False
        if now - self._last_rx >= self.rtp_timeout:
            self._timed_out = True
            return True
        return False
