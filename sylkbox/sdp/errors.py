"""Errors raised by the SDP core.

Every error carries a human-readable ``reason`` and a ``status_hint``: the SIP status code the
signalling layer should answer with when the error concerns a received offer (RFC 3261 21.4.26:
488 Not Acceptable Here for unusable session descriptions, 400 for malformed ones).  This package
does not import :mod:`sylkbox.sip`; the focus maps these errors to responses in its one table.
"""

from __future__ import annotations

__all__ = [
    "InvalidAnswerError",
    "NoAcceptableMedia",
    "SdpError",
    "SdpParseError",
]


class SdpError(Exception):
    """Base class of all SDP errors (the ``RemoteProtocolError`` of this package)."""

    status_hint: int = 400

    def __init__(self, reason: str, status_hint: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status_hint is not None:
            self.status_hint = status_hint


class SdpParseError(SdpError, ValueError):
    """A session description that is not valid RFC 4566 syntax, or exceeds the parser limits.

    The reason names the offending line (``line 7 'm=audio x RTP/AVP 0': bad port``).
    """

    status_hint = 400


class NoAcceptableMedia(SdpError):
    """No stream of an offer can be accepted (RFC 3264 6: the answerer rejects the session).

    The focus answers 488 Not Acceptable Here.  ``rejections`` lists the per-stream reasons.
    """

    status_hint = 488

    def __init__(self, reason: str, rejections: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.rejections = rejections


class InvalidAnswerError(SdpError):
    """An answer to our own offer that violates RFC 3264 (6, 7): wrong m-line count, no codec
    from the offer, no connection address.  The dial-out is ended (BYE)."""

    status_hint = 488
