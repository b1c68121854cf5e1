"""MSRP protocol errors (RFC 4975 sections 7.2 and 10).

`LocalProtocolError` means we were asked to do something the protocol forbids (a bug in the
caller); `RemoteProtocolError` means the peer sent something we cannot accept. `status` is the
transaction response that answers it (RFC 4975 10: 400, 403, 408, 413, 415, 481, 501, 506; RFC
7701: 425).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sylkbox.msrp.message import MsrpResponse

__all__ = ["LocalProtocolError", "MsrpError", "ParseError", "RemoteProtocolError"]


class MsrpError(Exception):
    """Base class of every error raised by sylkbox.msrp."""


class LocalProtocolError(MsrpError):
    """We tried to do something MSRP does not allow."""


class RemoteProtocolError(MsrpError):
    """The peer sent something invalid; `status` is the response code to answer with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        if not 400 <= status <= 699:
            raise ValueError(f"not an error status: {status}")
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ParseError(RemoteProtocolError):
    """Raised by `sylkbox.msrp.parser` (and only by it).

    `transaction_id` is set when the first line was readable. `recoverable` is true when the
    bad message could still be delimited by its end-line (RFC 4975 7.1): the stream stays in
    sync, the connection owner answers with `response` (a 400 built from the request's paths,
    or None when the paths themselves were unreadable) and goes on. When `recoverable` is false
    the stream cannot be framed any more: answer if possible and close the connection.
    """

    def __init__(
        self,
        reason: str,
        status: int = 400,
        *,
        transaction_id: str | None = None,
        recoverable: bool = False,
        response: MsrpResponse | None = None,
    ) -> None:
        super().__init__(reason, status)
        self.transaction_id = transaction_id
        self.recoverable = recoverable
        self.response = response
