"""Audio codecs behind one small protocol, and a registry to create them by name.

A :class:`Codec` instance belongs to one stream (codecs such as G.722 and Opus keep state
between frames), so the registry holds *factories*. ``clock_rate`` is the RTP timestamp
rate announced in SDP (RFC 3551 section 4.5), ``sample_rate`` the PCM rate the codec
consumes and produces; they differ for G.722 (8000 vs 16000, RFC 3551 section 4.5.2) and
Opus (48000 vs any, RFC 7587 section 4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sylkbox.media import g711

__all__ = [
    "FRAME_DURATION",
    "Codec",
    "CodecFactory",
    "CodecRegistry",
    "G711Codec",
    "UnknownCodecError",
    "default_registry",
]

Int16Array = npt.NDArray[np.int16]

FRAME_DURATION = 0.02
"""Packetisation time of every frame the worker produces (seconds)."""


class UnknownCodecError(LookupError):
    """No codec of that name and clock rate is registered."""


class Codec(Protocol):
    """One direction-agnostic codec instance for one stream."""

    @property
    def name(self) -> str:
        """Encoding name as in SDP ``a=rtpmap`` (upper case, e.g. ``PCMU``)."""
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
        """Decode one RTP payload to PCM at ``sample_rate`` (any whole number of frames)."""
        ...


CodecFactory = Callable[[], Codec]


@dataclass(frozen=True, slots=True)
class G711Codec:
    """PCMU (payload type 0) or PCMA (payload type 8), RFC 3551 section 4.5.14. Stateless."""

    name: str
    encoder: Callable[[Int16Array], bytes]
    decoder: Callable[[bytes], Int16Array]
    clock_rate: int = 8000

    @property
    def sample_rate(self) -> int:
        return self.clock_rate

    @property
    def samples_per_frame(self) -> int:
        return round(self.sample_rate * FRAME_DURATION)

    @property
    def timestamp_step(self) -> int:
        return round(self.clock_rate * FRAME_DURATION)

    def encode(self, samples: Int16Array) -> bytes:
        return self.encoder(samples)

    def decode(self, payload: bytes) -> Int16Array:
        return self.decoder(payload)


_PCMU = G711Codec("PCMU", g711.ulaw_encode, g711.ulaw_decode)
_PCMA = G711Codec("PCMA", g711.alaw_encode, g711.alaw_decode)


class CodecRegistry:
    """Codec factories keyed by (upper-case name, RTP clock rate)."""

    def __init__(self) -> None:
        self._factories: dict[tuple[str, int], CodecFactory] = {}

    def register(self, name: str, clock_rate: int, factory: CodecFactory) -> None:
        """Register (or replace) the factory for ``name``/``clock_rate``."""
        self._factories[(name.upper(), clock_rate)] = factory

    def create(self, name: str, clock_rate: int) -> Codec:
        """A new codec instance; raises :class:`UnknownCodecError`."""
        try:
            factory = self._factories[(name.upper(), clock_rate)]
        except KeyError:
            raise UnknownCodecError(f"unsupported codec {name}/{clock_rate}") from None
        return factory()

    def supports(self, name: str, clock_rate: int) -> bool:
        return (name.upper(), clock_rate) in self._factories

    def names(self) -> list[tuple[str, int]]:
        """Registered (name, clock rate) pairs, in registration order."""
        return list(self._factories)


def default_registry() -> CodecRegistry:
    """A new registry with the built-in codecs (G.711 now; G.722 and Opus register later)."""
    registry = CodecRegistry()
    registry.register("PCMU", 8000, lambda: _PCMU)
    registry.register("PCMA", 8000, lambda: _PCMA)
    return registry
