"""MSRP messages, header values and their serialization (RFC 4975 sections 7 and 9).

`MsrpRequest` is one chunk of a request (SEND, REPORT, NICKNAME of RFC 7701, msrplib's
FILE_OFFSET); `MsrpResponse` a transaction response. Headers other than To-Path and From-Path
live in an ordered ``dict`` keyed by canonical name (`canonical_name`); typed values decode on
access (`ByteRange`, `Status`, reports). `to_bytes()` writes them in the order given, with the
MIME headers (Content-Type last) after every other header, as the ABNF of RFC 4975 9 wants;
messages built by sylkbox already use msrplib's order (To-Path, From-Path, Message-ID,
Byte-Range, Success-Report, Failure-Report, others, Content-Type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sylkbox.msrp.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.msrp.uri import MsrpUri, path_to_str

__all__ = [
    "ByteRange",
    "Continuation",
    "MsrpRequest",
    "MsrpResponse",
    "Status",
    "canonical_name",
    "default_comment",
    "encode_request",
    "make_response",
]

Continuation = Literal["$", "+", "#"]

_CANONICAL = {
    n.lower(): n
    for n in (
        "To-Path",
        "From-Path",
        "Message-ID",
        "Byte-Range",
        "Success-Report",
        "Failure-Report",
        "Status",
        "Use-Path",
        "WWW-Authenticate",
        "Authorization",
        "Authentication-Info",
        "Expires",
        "Min-Expires",
        "Max-Expires",
        "Use-Nickname",
        "Keep-Alive",
        "Offset",
        "Content-Type",
        "Content-ID",
        "Content-Description",
        "Content-Disposition",
    )
}

_COMMENTS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Message Too Large",
    415: "Unsupported Media Type",
    423: "Interval Out-of-Bounds",
    425: "Nickname reserved or already in use",
    481: "No Such Session",
    501: "Not Implemented",
    506: "Session Already Bound",
}

_BYTE_RANGE_RE = re.compile(r"([0-9]{1,18})-([0-9]{1,18}|\*)/([0-9]{1,18}|\*)")
_STATUS_RE = re.compile(r"([0-9]{3}) ([0-9]{3})(?: (.*))?")
_IDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{0,63}")
_METHOD_RE = re.compile(r"[A-Z][A-Z_]*")
_MIME_ORDER_KEY = "content-"


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name (``message-id`` -> ``Message-ID``); unknown
    names are capitalised per hyphen-separated word."""
    lower = name.lower()
    canon = _CANONICAL.get(lower)
    if canon is None:
        canon = "-".join(w.capitalize() for w in lower.split("-"))
        if len(_CANONICAL) < 1024:
            _CANONICAL[lower] = canon
    return canon


def default_comment(status: int) -> str:
    """The usual comment of a status code (RFC 4975 10, RFC 7701 3.2)."""
    return _COMMENTS.get(status, "")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``Byte-Range: start-end/total`` (RFC 4975 7.1.1); ``None`` stands for ``*``.

    ``start`` is 1-based; an empty body is ``1-0/0``.
    """

    start: int
    end: int | None
    total: int | None

    def __post_init__(self) -> None:
        if self.start < 1:
            raise ValueError("Byte-Range start must be at least 1")
        if self.end is not None and self.end < self.start - 1:
            raise ValueError("Byte-Range end before start")
        if self.total is not None and self.end is not None and self.end > self.total:
            raise ValueError("Byte-Range end beyond total")

    @staticmethod
    def parse(text: str) -> ByteRange:
        """Parse a Byte-Range value; raises `RemoteProtocolError` (400)."""
        m = _BYTE_RANGE_RE.fullmatch(text.strip())
        if m is None:
            raise RemoteProtocolError(f"Bad Byte-Range {text[:40]!r}")
        s, e, t = m.groups()
        try:
            return ByteRange(int(s), None if e == "*" else int(e), None if t == "*" else int(t))
        except ValueError as exc:
            raise RemoteProtocolError(f"Bad Byte-Range {text[:40]!r}: {exc}") from None

    def __str__(self) -> str:
        end = "*" if self.end is None else self.end
        total = "*" if self.total is None else self.total
        return f"{self.start}-{end}/{total}"


@dataclass(frozen=True, slots=True)
class Status:
    """``Status: 000 200 OK`` of a REPORT (RFC 4975 7.1.2 and 9)."""

    code: int
    comment: str | None = None
    namespace: int = 0

    def __post_init__(self) -> None:
        if not 100 <= self.code <= 999 or not 0 <= self.namespace <= 999:
            raise ValueError("bad Status code or namespace")

    @staticmethod
    def parse(text: str) -> Status:
        """Parse a Status value; raises `RemoteProtocolError` (400)."""
        m = _STATUS_RE.fullmatch(text.strip())
        if m is None:
            raise RemoteProtocolError(f"Bad Status {text[:40]!r}")
        try:
            return Status(int(m.group(2)), m.group(3), int(m.group(1)))
        except ValueError as exc:
            raise RemoteProtocolError(f"Bad Status {text[:40]!r}: {exc}") from None

    def __str__(self) -> str:
        if self.comment:
            return f"{self.namespace:03d} {self.code} {self.comment}"
        return f"{self.namespace:03d} {self.code}"


def _report_value(headers: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = headers.get(name)
    if value is None:
        return ""
    value = value.strip().lower()
    if value not in allowed:
        raise RemoteProtocolError(f"Bad {name} value {value[:20]!r}")
    return value


@dataclass(slots=True)
class MsrpRequest:
    """One MSRP request chunk (RFC 4975 7.1)."""

    method: str
    transaction_id: str
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    continuation: Continuation = "$"

    def header(self, name: str) -> str | None:
        """A header value by name (any case), or None."""
        return self.headers.get(canonical_name(name))

    @property
    def message_id(self) -> str | None:
        return self.headers.get("Message-ID")

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    @property
    def byte_range(self) -> ByteRange | None:
        value = self.headers.get("Byte-Range")
        return None if value is None else ByteRange.parse(value)

    @property
    def status(self) -> Status | None:
        value = self.headers.get("Status")
        return None if value is None else Status.parse(value)

    @property
    def success_report(self) -> bool:
        """Success-Report (RFC 4975 7.1.2): ``yes`` or ``no``, default no."""
        return _report_value(self.headers, "Success-Report", ("yes", "no")) == "yes"

    @property
    def failure_report(self) -> str:
        """Failure-Report: ``yes`` (the default), ``no`` or ``partial``."""
        return _report_value(self.headers, "Failure-Report", ("yes", "no", "partial")) or "yes"

    def to_bytes(self) -> bytes:
        """Serialize (RFC 4975 9); raises `LocalProtocolError` if the body contains the
        end-line or has no Content-Type."""
        return encode_request(
            self.transaction_id,
            self.method,
            f"To-Path: {path_to_str(self.to_path)}\r\nFrom-Path: {path_to_str(self.from_path)}\r\n",
            self.headers,
            self.body,
            self.continuation,
        )

    def response(
        self, status: int, comment: str | None = None, headers: dict[str, str] | None = None
    ) -> MsrpResponse:
        """The transaction response (RFC 4975 7.2): To-Path is the previous hop only (the first
        From-Path URI), From-Path is the responder (the first To-Path URI)."""
        return make_response(self, status, comment, headers)


@dataclass(slots=True)
class MsrpResponse:
    """An MSRP transaction response (RFC 4975 7.2)."""

    transaction_id: str
    status: int
    comment: str | None
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(canonical_name(name))

    def to_bytes(self) -> bytes:
        tid = self.transaction_id
        first = f"MSRP {tid} {self.status:03d}"
        if self.comment:
            first = f"{first} {self.comment}"
        parts = [
            first,
            "\r\nTo-Path: ",
            path_to_str(self.to_path),
            "\r\nFrom-Path: ",
            path_to_str(self.from_path),
            "\r\n",
        ]
        for name, value in self.headers.items():
            parts.append(f"{name}: {value}\r\n")
        parts.append(f"-------{tid}$\r\n")
        return "".join(parts).encode()


def make_response(
    request: MsrpRequest,
    status: int,
    comment: str | None = None,
    headers: dict[str, str] | None = None,
) -> MsrpResponse:
    """Build the response to `request` (RFC 4975 7.2)."""
    if not 200 <= status <= 999:
        raise LocalProtocolError(f"bad response status {status}")
    return MsrpResponse(
        request.transaction_id,
        status,
        default_comment(status) if comment is None else comment,
        request.from_path[:1],
        request.to_path[:1],
        dict(headers) if headers else {},
    )


def encode_request(
    transaction_id: str,
    method: str,
    paths: str,
    headers: dict[str, str],
    body: bytes,
    continuation: str = "$",
) -> bytes:
    """Low-level request serializer shared by `MsrpRequest.to_bytes` and the session's fast
    path. `paths` is the ready ``To-Path: ...\\r\\nFrom-Path: ...\\r\\n`` block."""
    parts = [f"MSRP {transaction_id} {method}\r\n", paths]
    mime: list[str] | None = None
    content_type = None
    for name, value in headers.items():
        if name.startswith("Content-"):
            if name == "Content-Type":
                content_type = value
            else:
                if mime is None:
                    mime = []
                mime.append(f"{name}: {value}\r\n")
        else:
            parts.append(f"{name}: {value}\r\n")
    if mime:
        parts.extend(mime)
    end_line = f"-------{transaction_id}{continuation}\r\n"
    if content_type is None:
        if body:
            raise LocalProtocolError("an MSRP body needs a Content-Type (RFC 4975 7.1)")
        parts.append(end_line)
        return "".join(parts).encode()
    parts.append(f"Content-Type: {content_type}\r\n\r\n")
    end = end_line.encode()
    if body and end[:-3] in body:
        marker = b"\r\n" + end[:-3]
        if body.startswith(end[:-3]) or any(marker + f in body for f in (b"$", b"+", b"#")):
            raise LocalProtocolError("the body contains the end-line (RFC 4975 7.1)")
    return b"".join(("".join(parts).encode(), body, b"\r\n", end))


def is_valid_ident(text: str) -> bool:
    """Transaction-id / Message-ID syntax (RFC 4975 9 ``ident``), leniently up to 64 chars."""
    return _IDENT_RE.fullmatch(text) is not None


def is_valid_method(text: str) -> bool:
    """``method = 1*UPALPHA``, plus the underscore of msrplib's FILE_OFFSET."""
    return _METHOD_RE.fullmatch(text) is not None
