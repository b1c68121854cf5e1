"""``message/sipfrag`` status lines for REFER progress NOTIFYs (RFC 3420, RFC 3515 section 2.4.5).

The focus reports the progress of a dial-out with NOTIFY bodies holding one status line, e.g.
``SIP/2.0 180 Ringing`` followed by CRLF (``interop/BLINK.md`` section 2.2). Blink reads them with
a regular expression on ``SIP/2.0 <3 digits> <reason>``.
"""

from __future__ import annotations

import re

__all__ = ["CONTENT_TYPE", "SipfragError", "parse_sipfrag", "sipfrag_status"]

CONTENT_TYPE = "message/sipfrag;version=2.0"
# RFC 3261 section 25.1 Status-Line; the reason phrase may be empty, the space before it may not
# be omitted by a conforming sender but is tolerated on input.
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: ([^\r\n]*))?")


class SipfragError(ValueError):
    """A sipfrag body without a usable status line; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sipfrag_status(code: int, reason: str) -> bytes:
    """Return the sipfrag body ``SIP/2.0 <code> <reason>\\r\\n``."""
    if not 100 <= code <= 699:
        raise ValueError(f"status code {code} out of range")
    if "\r" in reason or "\n" in reason:
        raise ValueError("reason phrase must not contain line breaks")
    # a reason phrase taken from a peer's response may hold undecodable bytes (lone
    # surrogates); it must still make a valid NOTIFY body rather than an exception
    return f"SIP/2.0 {code} {reason}\r\n".encode("utf-8", "replace")


def parse_sipfrag(data: bytes) -> tuple[int, str]:
    """Return the ``(code, reason)`` of the status line starting a sipfrag body.

    Any header lines after the status line (RFC 3420 allows a partial message) are ignored.
    """
    first_line = data.split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError:
        raise SipfragError("status line is not UTF-8") from None
    match = _STATUS_LINE.fullmatch(text)
    if match is None:
        raise SipfragError(f"not a SIP status line: {text[:80]!r}")
    return int(match.group(1)), (match.group(2) or "").strip()
