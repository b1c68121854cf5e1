"""G.722 (ITU-T G.722, 64 kbit/s SB-ADPCM) through the ``G722`` C extension.

RFC 3551 section 4.5.2: the RTP clock rate is 8000 Hz although the audio is sampled at
16000 Hz (a historical error kept for compatibility), so one 20 ms frame is 320 samples,
160 octets, and advances the RTP timestamp by 160. The encoder and the decoder are ADPCM
state machines, so each stream owns one instance of each. Losses are concealed by
:class:`sylkbox.media.plc.Concealer` (G.722 Appendix III/IV PLC is not in the library).
"""

from __future__ import annotations

import G722
import numpy as np
import numpy.typing as npt

from sylkbox.media.plc import Concealer

__all__ = ["BITRATE", "G722Codec"]

Int16Array = npt.NDArray[np.int16]

BITRATE = 64000
"""Mode 1 (64 kbit/s), the only one negotiated by SDP ``G722/8000`` (RFC 3551 4.5.2)."""


class G722Codec:
    """One stream's G.722 encoder, decoder and loss concealment."""

    __slots__ = ("_concealer", "_decoder", "_encoder")

    name = "G722"
    clock_rate = 8000
    sample_rate = 16000
    samples_per_frame = 320
    timestamp_step = 160

    def __init__(self) -> None:
        self._encoder = G722.G722(self.sample_rate, BITRATE)
        self._decoder = G722.G722(self.sample_rate, BITRATE)
        self._concealer = Concealer(self.sample_rate, self.samples_per_frame)

    def encode(self, samples: Int16Array) -> bytes:
        """320 samples at 16 kHz -> 160 octets (any even number of samples works)."""
        payload: bytes = self._encoder.encode(np.ascontiguousarray(samples, dtype=np.int16))
        return payload

    def decode(self, payload: bytes) -> Int16Array:
        """Octets -> two 16 kHz samples per octet."""
        pcm = np.frombuffer(self._decoder.decode(payload), dtype=np.int16)
        return self._concealer.good(pcm)

    def conceal(self) -> Int16Array:
        """One 20 ms substitute frame (pitch repetition fading to silence in 60 ms)."""
        return self._concealer.conceal()

    def decode_fec(self, payload: bytes) -> Int16Array | None:
        """G.722 has no forward error correction."""
        return None
