"""SIP requests and responses (RFC 3261 section 7) and their serialization.

Accessors decode header values on demand and raise `RemoteProtocolError` (400) naming the
header when it is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import CSeq, Headers, NameAddr, Via
from sylkbox.sip.uri import SipUri

__all__ = ["DIALOG_CREATING_METHODS", "Request", "Response", "default_reason"]

_T = TypeVar("_T")

# Methods whose 101-299 responses create a dialog (RFC 3261 12.1, RFC 6665 4.4.1, RFC 3515).
DIALOG_CREATING_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER"})

_REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    439: "First Hop Lacks Outbound Support", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted",
}  # fmt: skip
_CLASS_REASONS = {1: "Provisional", 2: "OK", 3: "Redirection", 4: "Client Error",
                  5: "Server Error", 6: "Global Failure"}  # fmt: skip


def default_reason(status: int) -> str:
    """Reason phrase of RFC 3261 section 21 (and later RFCs) for `status`."""
    return _REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")


class _Message:
    """Accessors shared by `Request` and `Response`."""

    headers: Headers
    body: bytes

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise RemoteProtocolError(f"Missing {name} header")
        return value

    @staticmethod
    def _decode(name: str, parse: Callable[[str], _T], value: str) -> _T:
        try:
            return parse(value)
        except RemoteProtocolError:
            raise RemoteProtocolError(f"Bad {name} header") from None

    @property
    def call_id(self) -> str:
        value = self._required("Call-ID")
        if not value or any(c in value for c in " \t"):
            raise RemoteProtocolError("Bad Call-ID header")
        return value

    @property
    def cseq(self) -> CSeq:
        return self._decode("CSeq", CSeq.parse, self._required("CSeq"))

    @property
    def from_(self) -> NameAddr:
        return self._decode("From", NameAddr.parse, self._required("From"))

    @property
    def to(self) -> NameAddr:
        return self._decode("To", NameAddr.parse, self._required("To"))

    @property
    def vias(self) -> list[Via]:
        values = self.headers.get_all("Via")
        if not values:
            raise RemoteProtocolError("Missing Via header")
        return [self._decode("Via", Via.parse, value) for value in values]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise RemoteProtocolError("Missing Via header")
        return self._decode("Via", Via.parse, values[0])

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; the REGISTER wildcard ``*`` (RFC 3261 10.2.2) is skipped."""
        values = self.headers.get_all("Contact")
        return [self._decode("Contact", NameAddr.parse, v) for v in values if v != "*"]

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit() or int(value) > 255:
            raise RemoteProtocolError("Bad Max-Forwards header")
        return int(value)

    @property
    def content_type(self) -> str | None:
        """Lower-case ``type/subtype`` without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        media = value.split(";", 1)[0].strip(" \t").lower()
        kind, slash, sub = media.partition("/")
        if not slash or not kind.strip() or not sub.strip():
            raise RemoteProtocolError("Bad Content-Type header")
        return f"{kind.strip()}/{sub.strip()}"

    @property
    def expires(self) -> int | None:
        """Expires delta-seconds; overlarge values are clamped to 2**32-1 (RFC 3261 20.19)."""
        value = self.headers.get("Expires")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise RemoteProtocolError("Bad Expires header")
        return min(int(value.lstrip("0")[:11] or "0"), 2**32 - 1)

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize, setting Content-Length from the body (RFC 3261 20.14)."""
        lines = [self._start_line()]
        length = f"Content-Length: {len(self.body)}"
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
            elif length:
                lines.append(length)
                length = ""
        if length:
            lines.append(length)
        lines += ("", "")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass
class Request(_Message):
    """A SIP request (RFC 3261 7.1)."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def create_response(
        self, status: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> Response:
        """Build a response as a UAS does (RFC 3261 8.2.6; Record-Route copy of 12.1.1)."""
        copy_rr = 100 < status < 300 and self.method in DIALOG_CREATING_METHODS
        headers = Headers()
        for name, value in self.headers:
            if name == "To" and to_tag is not None and self.to.tag is None:
                headers.add(name, f"{value};tag={to_tag}")
            elif name in ("Via", "From", "To", "Call-ID", "CSeq") or (
                copy_rr and name == "Record-Route"
            ):
                headers.add(name, value)
        return Response(status, reason if reason is not None else default_reason(status), headers)


@dataclass
class Response(_Message):
    """A SIP response (RFC 3261 7.2)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"
