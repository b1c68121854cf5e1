"""Opus (RFC 6716) through ``opuslib`` (libopus), as RTP payload per RFC 7587.

* SDP always says ``opus/48000/2`` and the RTP clock is 48000 Hz whatever the audio
  bandwidth (RFC 7587 sections 4.1 and 7): a 20 ms frame advances the timestamp by 960.
* libopus encodes from and decodes to 8, 12, 16, 24 or 48 kHz, so the codec works directly at
  the room's mixing rate (16 kHz by default) and no resampling is needed for Opus streams.
* We encode mono; the decoder is mono too and libopus down-mixes stereo packets (RFC 7587
  section 3.4 lets a receiver do that).
* Encoder: ``OPUS_APPLICATION_VOIP``, voice signal, in-band FEC (LBRR) on with an expected
  loss of :data:`EXPECTED_LOSS_PERCENT` so that every packet carries a low-bit-rate copy of
  the previous frame (RFC 6716 section 2.1.7; announced with ``useinbandfec=1``, RFC 7587 6.1).
* Losses: :meth:`OpusCodec.decode_fec` recovers a lost frame from the *next* packet's FEC
  data; :meth:`OpusCodec.conceal` runs the decoder's own PLC (``opus_decode`` without data).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import opuslib
import opuslib.api.ctl
import opuslib.api.encoder

__all__ = ["BITRATE", "EXPECTED_LOSS_PERCENT", "OPUS_RATES", "OpusCodec", "OpusCodecError"]

Int16Array = npt.NDArray[np.int16]

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""PCM rates libopus encodes from and decodes to."""
BITRATE = 32000
EXPECTED_LOSS_PERCENT = 10
MAX_PACKET_DURATION = 0.12  # RFC 6716 section 3.2.5: at most 120 ms of audio per packet
_FRAME_DURATION = 0.02


class OpusCodecError(ValueError):
    """A payload libopus could not decode."""


class OpusCodec:
    """One stream's Opus encoder, decoder and loss handling, with PCM at ``sample_rate``."""

    __slots__ = ("_decoder", "_encoder", "_max_samples", "sample_rate", "samples_per_frame")

    name = "opus"
    clock_rate = 48000
    timestamp_step = 960

    def __init__(self, sample_rate: int = 48000) -> None:
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus cannot run at {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.samples_per_frame = round(sample_rate * _FRAME_DURATION)
        self._max_samples = round(sample_rate * MAX_PACKET_DURATION)
        self._encoder = opuslib.Encoder(sample_rate, 1, opuslib.APPLICATION_VOIP)
        state = self._encoder.encoder_state
        # The library's inband_fec property setter drops its value: call the CTLs directly.
        opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_inband_fec, 1)
        opuslib.api.encoder.encoder_ctl(
            state, opuslib.api.ctl.set_packet_loss_perc, EXPECTED_LOSS_PERCENT
        )
        opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_bitrate, BITRATE)
        opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_signal, opuslib.SIGNAL_VOICE)
        self._decoder = opuslib.Decoder(sample_rate, 1)

    def encode(self, samples: Int16Array) -> bytes:
        """One frame (2.5-60 ms; 20 ms normally) at ``sample_rate`` -> one Opus packet."""
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        payload: bytes = self._encoder.encode(pcm.tobytes(), len(pcm))
        return payload

    def decode(self, payload: bytes) -> Int16Array:
        """One Opus packet (any duration up to 120 ms) -> PCM at ``sample_rate``."""
        if not payload:
            raise OpusCodecError("empty Opus payload")
        return self._run(payload, self._max_samples, fec=False)

    def conceal(self) -> Int16Array:
        """20 ms from the decoder's packet loss concealment (``opus_decode`` with no data)."""
        return self._run(b"", self.samples_per_frame, fec=False)

    def decode_fec(self, payload: bytes) -> Int16Array | None:
        """The 20 ms *before* ``payload``, from its in-band FEC data (RFC 6716 2.1.7).

        Call it when a packet was lost and the next one has arrived, before decoding that next
        packet normally. Without FEC data in it libopus falls back to its PLC, so the result
        is always a frame; ``None`` only when the payload is empty.
        """
        if not payload:
            return None
        return self._run(payload, self.samples_per_frame, fec=True)

    def _run(self, payload: bytes, frame_size: int, *, fec: bool) -> Int16Array:
        try:
            pcm = self._decoder.decode(payload, frame_size, fec)
        except opuslib.OpusError as exc:
            raise OpusCodecError(f"cannot decode Opus payload: {exc}") from None
        return np.frombuffer(pcm, dtype=np.int16).copy()
