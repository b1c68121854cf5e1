"""MSRP serialization entry point (RFC 4975 section 9).

The work is done by `MsrpRequest.to_bytes` / `MsrpResponse.to_bytes` and `encode_request`
in `sylkbox.msrp.message`; header order: To-Path, From-Path, the other headers as given
(sylkbox builds Message-ID, Byte-Range, Success-Report, Failure-Report first), MIME headers,
Content-Type last.
"""

from __future__ import annotations

from sylkbox.msrp.message import MsrpRequest, MsrpResponse, encode_request

__all__ = ["encode_request", "serialize"]


def serialize(message: MsrpRequest | MsrpResponse) -> bytes:
    """The wire bytes of one request chunk or response."""
    return message.to_bytes()
