"""SIP protocol errors (RFC 3261 section 21.4 status hints).

`LocalProtocolError` means we were asked to do something the protocol forbids;
`RemoteProtocolError` means the peer sent something we cannot accept. The status hint is
the response an element should answer with (400, 420, 481, 488, 491, 500, 505, 513...).
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ParseError", "RemoteProtocolError", "SipError"]


class SipError(Exception):
    """Base class of every SIP error raised by sylkbox.sip."""


class LocalProtocolError(SipError):
    """We tried to do something the protocol does not allow."""


class RemoteProtocolError(SipError):
    """The peer sent something invalid; `status_hint` is the response code to answer with."""

    def __init__(self, reason: str, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint


class ParseError(RemoteProtocolError):
    """Raised by the parser (sylkbox.sip.parser) and only by it.

    `error_response` is the complete response to send back (e.g. ``SIP/2.0 400 Bad CSeq
    header``) when the input was a request that can be answered; `None` means drop and log.
    """

    def __init__(
        self, reason: str, status_hint: int = 400, error_response: bytes | None = None
    ) -> None:
        super().__init__(reason, status_hint)
        self.error_response = error_response
