"""Per-stream RTP state in the media worker, sans-I/O (the worker owns the sockets).

* Sending (RFC 3550 section 5.1): random SSRC, initial sequence number and timestamp; one
  packet per 20 ms tick, marker bit on the first packet of a talk spurt (RFC 3551 4.1).
* Receiving: decoded audio is resampled to the room rate and cut into 20 ms frames in a
  short FIFO, one frame consumed per tick (a real jitter buffer replaces this later).
* Symmetric RTP (RFC 4961): once packets of our payload types arrive, we send to their
  source address, whatever the SDP said.
* RTP timeout: reported once per silent period when nothing arrived for ``rtp_timeout``
  seconds on a stream that should receive.

Directions are ours (see ``control.Direction``). A stream's audio is *heard* in the room
only when sendrecv: recvonly means the remote holds us, sendonly that it is muted, and
neither held nor muted audio is mixed. We send to sendrecv and sendonly streams.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sylkbox.media.codecs import Codec
from sylkbox.media.control import Direction
from sylkbox.media.dtmf import DtmfDetector, DtmfError
from sylkbox.media.resample import Resampler
from sylkbox.media.rtp import RtpError, RtpPacket, seq_add, ts_add

__all__ = ["Address", "Stream", "StreamParams"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Int16Array = npt.NDArray[np.int16]

MAX_BUFFERED_FRAMES = 5
"""Frames kept before the oldest is dropped (100 ms); bounds latency after a burst."""


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
    ) -> None:
        rng = rng or random.SystemRandom()
        self.stream_id = stream_id
        self.room_id = room_id
        self.local_port = local_port
        self.room_rate = room_rate
        self.frame_samples = round(room_rate * 0.02)
        self.rtp_timeout = rtp_timeout
        self.ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self._marker = True
        self._frames: deque[Int16Array] = deque(maxlen=MAX_BUFFERED_FRAMES)
        self._partial = np.zeros(0, dtype=np.int16)
        self._last_rx = now
        self._timed_out = False
        self._last_seq: int | None = None
        self._dtmf = DtmfDetector()
        self.params = params
        self._apply(params)

    def _apply(self, params: StreamParams) -> None:
        self.params = params
        self.remote = params.remote
        self._rx_resampler = Resampler(params.codec.sample_rate, self.room_rate)
        self._tx_resampler = Resampler(self.room_rate, params.codec.sample_rate)
        self._frames.clear()
        self._partial = np.zeros(0, dtype=np.int16)

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

    def receive_rtp(self, data: bytes, source: Address, now: float) -> str | None:
        """Handle one datagram from the RTP socket; returns a DTMF digit when one starts."""
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            logger.debug("x %s: dropped datagram from %s: %s", self.stream_id, source, exc)
            return None
        params = self.params
        if packet.payload_type not in (params.payload_type, params.telephone_event_pt):
            return None  # comfort noise, unnegotiated formats
        if self.remote != source:
            logger.info("%s: symmetric RTP, sending to %s:%d", self.stream_id, *source)
            self.remote = source
        self._last_rx = now
        self._timed_out = False
        if packet.payload_type == params.telephone_event_pt:
            try:
                return self._dtmf.receive(packet.timestamp, packet.payload)
            except DtmfError as exc:
                logger.debug("x %s: bad telephone-event: %s", self.stream_id, exc)
                return None
        if packet.sequence_number == self._last_seq:
            return None  # duplicate
        self._last_seq = packet.sequence_number
        if self.heard:
            self._push(params.codec.decode(packet.payload))
        return None

    def receive_rtcp(self, now: float) -> None:
        """RTCP is drained, but counts as a sign of life for the timeout."""
        self._last_rx = now
        self._timed_out = False

    def _push(self, samples: Int16Array) -> None:
        pcm = self._rx_resampler.process(samples)
        if len(self._partial):
            pcm = np.concatenate((self._partial, pcm))
        n = self.frame_samples
        whole = len(pcm) // n
        for i in range(whole):
            self._frames.append(pcm[i * n : (i + 1) * n])
        self._partial = pcm[whole * n :]

    def pop_frame(self) -> Int16Array | None:
        """The next 20 ms frame at the room rate, or None when nothing is buffered."""
        return self._frames.popleft() if self._frames else None

    def build_packet(self, frame: Int16Array) -> bytes:
        """Encode one room-rate frame into the next RTP packet of this stream."""
        codec = self.params.codec
        packet = RtpPacket(
            payload_type=self.params.payload_type,
            sequence_number=self._seq,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            marker=self._marker,
            payload=codec.encode(self._tx_resampler.process(frame)),
        )
        self._marker = False
        self._seq = seq_add(self._seq, 1)
        self._timestamp = ts_add(self._timestamp, codec.timestamp_step)
        return packet.serialize()

    def check_timeout(self, now: float) -> bool:
        """True once when the stream should receive but nothing came for ``rtp_timeout``."""
        if self._timed_out or not self.params.direction.receives:
            return False
        if now - self._last_rx >= self.rtp_timeout:
            self._timed_out = True
            return True
        return False
