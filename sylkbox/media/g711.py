"""G.711 PCMU (mu-law) and PCMA (A-law), vectorised with lookup tables (ITU-T G.711).

The tables are built once per process from the reference algorithm of the Sun/CCITT
``g711.c`` (the one stdlib ``audioop`` uses): the encoder works on the top 14 (mu-law) or
13 (A-law) bits of the 16-bit sample. Encoding indexes a 65536-entry table with the sample's
bit pattern, decoding a 256-entry table with the code, so a frame costs two numpy gathers.
Payload formats: RFC 3551 section 4.5.14.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

Int16Array = npt.NDArray[np.int16]

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the encode table index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 3
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    mag = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    shift = np.where(seg < 2, 1, seg)
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg >= 2, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_ENC = _build_alaw_encode()
_ALAW_DEC = _build_alaw_decode()


def _as_index(samples: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    return np.ascontiguousarray(samples, dtype=np.int16).view(np.uint16)


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """Encode 16-bit linear PCM to mu-law octets (G.711 section 3)."""
    return _ULAW_ENC[_as_index(samples)].tobytes()


def ulaw_decode(payload: bytes) -> Int16Array:
    """Decode mu-law octets to 16-bit linear PCM (G.711 section 3)."""
    return _ULAW_DEC[np.frombuffer(payload, dtype=np.uint8)]


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """Encode 16-bit linear PCM to A-law octets (G.711 section 2)."""
    return _ALAW_ENC[_as_index(samples)].tobytes()


def alaw_decode(payload: bytes) -> Int16Array:
    """Decode A-law octets to 16-bit linear PCM (G.711 section 2)."""
    return _ALAW_DEC[np.frombuffer(payload, dtype=np.uint8)]
