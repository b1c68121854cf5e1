"""A tiny baseline JPEG encoder (ITU-T T.81) for solid grey images, for the screen-sharing tests.

No image library is installed here, and the tests need real JPEGs a browser decodes. A uniform
8x8 block has only a DC coefficient (T.81 A.3.3: F(0,0) = 8 x (sample - 128) with all
quantizers 1), so two 2-symbol Huffman tables suffice: DC categories {0, c} with codes 00/01 and
AC end-of-block with code 0 (codes of all 1-bits are reserved, T.81 C). Independent of
``sylkbox.conference.screenshare``.
"""

from __future__ import annotations

__all__ = ["solid_jpeg"]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def solid_jpeg(width: int, height: int, grey: int = 128, *, comment: bytes = b"") -> bytes:
    """A baseline greyscale JPEG of ``width`` x ``height`` pixels, all of value ``grey``."""
    if not (0 < width < 65536 and 0 < height < 65536 and 0 <= grey <= 255):
        raise ValueError("bad image parameters")
    dc = 8 * (grey - 128)
    category = abs(dc).bit_length()
    bits = ""
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    for index in range(blocks):
        if index == 0 and category:
            value = dc if dc > 0 else dc + (1 << category) - 1
            bits += "01" + format(value, f"0{category}b")
        else:
            bits += "00"  # DC difference 0
        bits += "0"  # AC: end of block
    bits += "1" * (-len(bits) % 8)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i : i + 8], 2)
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0x00)  # byte stuffing (T.81 F.1.2.3)
    dc_symbols = bytes([0, category]) if category else bytes([0, 1])
    out = b"\xff\xd8"
    out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    if comment:
        out += _segment(0xFE, comment)
    out += _segment(0xDB, b"\x00" + b"\x01" * 64)  # DQT: table 0, all ones
    out += _segment(
        0xC0,
        b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01\x01\x11\x00",
    )
    # DHT DC 0: two codes of length 2; AC 0: one code of length 1 (EOB)
    out += _segment(0xC4, b"\x00" + bytes([0, 2] + [0] * 14) + dc_symbols)
    out += _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    out += _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return out + bytes(scan) + b"\xff\xd9"
