"""Audio codecs behind one small protocol, and a registry to create them by name.

A :class:`Codec` instance belongs to one stream (G.722 and Opus keep state between frames,
and every codec keeps loss-concealment state), so the registry holds *factories*.
``clock_rate`` is the RTP timestamp rate announced in SDP (RFC 3551 section 4.5),
``sample_rate`` the PCM rate the codec consumes and produces; they differ for G.722 (8000 vs
16000, RFC 3551 section 4.5.2) and Opus (48000 vs any of 8/12/16/24/48 kHz, RFC 7587
section 4.1).

Registered by default: ``PCMU/8000``, ``PCMA/8000`` (:mod:`sylkbox.media.g711`),
``G722/8000`` (:mod:`sylkbox.media.g722`) and ``opus/48000`` (:mod:`sylkbox.media.opus`).
Names are matched case-insensitively (RFC 4855 section 3), so ``OPUS`` and ``opus`` are one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sylkbox.media import g711
from sylkbox.media.g722 import G722Codec
from sylkbox.media.opus import OPUS_RATES, OpusCodec
from sylkbox.media.plc import Concealer

__all__ = [
    "FRAME_DURATION",
    "Codec",
    "CodecFactory",
    "CodecRegistry",
    "G711Codec",
    "G722Codec",
    "OpusCodec",
    "RateCodecFactory",
    "UnknownCodecError",
    "default_registry",
]

Int16Array = npt.NDArray[np.int16]

FRAME_DURATION = 0.02
"""Packetisation time of every frame the worker produces (seconds)."""


class UnknownCodecError(LookupError):
    """No codec of that name and clock rate is registered."""


class Codec(Protocol):
    """One codec instance for one stream (encoder, decoder and loss handling)."""

    @property
    def name(self) -> str:
        """Encoding name as in SDP ``a=rtpmap`` (e.g. ``PCMU``, ``G722``, ``opus``)."""
        ...

    @property
    def clock_rate(self) -> int:
        """RTP timestamp clock rate (Hz)."""
        ...

    @property
    def sample_rate(self) -> int:
        """PCM sample rate of ``encode`` input and ``decode`` output (Hz)."""
        ...

    @property
    def samples_per_frame(self) -> int:
        """PCM samples in one 20 ms frame at ``sample_rate``."""
        ...

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp increment of one 20 ms frame."""
        ...

    def encode(self, samples: Int16Array) -> bytes:
        """Encode PCM at ``sample_rate`` (normally one 20 ms frame) into one RTP payload."""
        ...

    def decode(self, payload: bytes) -> Int16Array:
        """Decode one RTP payload to PCM at ``sample_rate`` (any whole number of frames).

        Raises ``ValueError`` for a payload the codec cannot decode (Opus)."""
        ...

    def conceal(self) -> Int16Array:
        """One 20 ms frame of loss concealment at ``sample_rate`` for a lost packet."""
        ...

    def decode_fec(self, payload: bytes) -> Int16Array | None:
        """The lost frame preceding ``payload``, from its forward error correction data
        (Opus in-band FEC); ``None`` when the codec has none."""
        ...


CodecFactory = Callable[[], Codec]
"""Creates a codec at its natural PCM rate."""
RateCodecFactory = Callable[[int], Codec]
"""Creates a codec producing PCM at the given rate (codecs that can, such as Opus)."""


class G711Codec:
    """PCMU (payload type 0) or PCMA (payload type 8), RFC 3551 section 4.5.14.

    The codec itself is stateless; each instance carries one stream's loss concealment
    (:class:`sylkbox.media.plc.Concealer`, as G.711 Appendix I)."""

    __slots__ = ("_concealer", "clock_rate", "decoder", "encoder", "name")

    def __init__(
        self,
        name: str,
        encoder: Callable[[Int16Array], bytes],
        decoder: Callable[[bytes], Int16Array],
        clock_rate: int = 8000,
    ) -> None:
        self.name = name
        self.encoder = encoder
        self.decoder = decoder
        self.clock_rate = clock_rate
        self._concealer = Concealer(clock_rate, self.samples_per_frame)

    @property
    def sample_rate(self) -> int:
        return self.clock_rate

    @property
    def samples_per_frame(self) -> int:
        return round(self.clock_rate * FRAME_DURATION)

    @property
    def timestamp_step(self) -> int:
        return round(self.clock_rate * FRAME_DURATION)

    def encode(self, samples: Int16Array) -> bytes:
        return self.encoder(samples)

    def decode(self, payload: bytes) -> Int16Array:
        return self._concealer.good(self.decoder(payload))

    def conceal(self) -> Int16Array:
        return self._concealer.conceal()

    def decode_fec(self, payload: bytes) -> Int16Array | None:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    factory: CodecFactory
    rate_factory: RateCodecFactory | None
    rates: frozenset[int]


class CodecRegistry:
    """Codec factories keyed by (upper-case name, RTP clock rate)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], _Entry] = {}

    def register(
        self,
        name: str,
        clock_rate: int,
        factory: CodecFactory,
        *,
        rate_factory: RateCodecFactory | None = None,
        rates: Collection[int] = (),
    ) -> None:
        """Register (or replace) the factory for ``name``/``clock_rate``.

        ``rate_factory`` builds an instance working at one of ``rates`` instead of the
        codec's natural rate (Opus decodes directly at the room rate)."""
        self._entries[(name.upper(), clock_rate)] = _Entry(
            factory, rate_factory, frozenset(rates) if rate_factory else frozenset()
        )

    def create(self, name: str, clock_rate: int, *, sample_rate: int | None = None) -> Codec:
        """A new codec instance; raises :class:`UnknownCodecError`.

        ``sample_rate`` is the preferred PCM rate (the room's): honoured when the codec can
        run at it, ignored otherwise (the stream then resamples)."""
        try:
            entry = self._entries[(name.upper(), clock_rate)]
        except KeyError:
            raise UnknownCodecError(f"unsupported codec {name}/{clock_rate}") from None
        if entry.rate_factory is not None and sample_rate in entry.rates:
            return entry.rate_factory(sample_rate)
        return entry.factory()

    def supports(self, name: str, clock_rate: int) -> bool:
        return (name.upper(), clock_rate) in self._entries

    def names(self) -> list[tuple[str, int]]:
        """Registered (upper-case name, clock rate) pairs, in registration order."""
        return list(self._entries)


def default_registry() -> CodecRegistry:
    """A new registry with the built-in codecs: PCMU, PCMA, G722 and opus."""
    registry = CodecRegistry()
    registry.register("PCMU", 8000, lambda: G711Codec("PCMU", g711.ulaw_encode, g711.ulaw_decode))
    registry.register("PCMA", 8000, lambda: G711Codec("PCMA", g711.alaw_encode, g711.alaw_decode))
    registry.register("G722", 8000, G722Codec)
    registry.register("opus", 48000, OpusCodec, rate_factory=OpusCodec, rates=OPUS_RATES)
    return registry
