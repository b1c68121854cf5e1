"""SIP message parser and stream framer (RFC 3261 sections 7, 18.3 and 25; RFC 5626 4.4.1).

`parse_message` turns one datagram (or one frame cut by `StreamFramer`) into a `Request` or
`Response`. It validates the header fields every element relies on (Via, From, To, Call-ID,
CSeq, Max-Forwards, Contact, Route, Record-Route, Content-Type, Content-Length) and raises
`ParseError`, and nothing else, for malformed input. When the input is a request that can be
answered, the error carries the complete 400/505/513 response to send back.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from sylkbox.sip.errors import ParseError, RemoteProtocolError
from sylkbox.sip.headers import TOKEN_CHARS, Headers, NameAddr
from sylkbox.sip.message import Request, Response
from sylkbox.sip.uri import SipUri

__all__ = [
    "Frame",
    "KeepAlivePing",
    "ParserLimits",
    "SipFrame",
    "StreamFramer",
    "parse_message",
]

logger = logging.getLogger(__name__)

# Header fields that may appear once only (RFC 3261 7.3.1, RFC 4475 3.3.8 and 3.3.9).
_SINGLE = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type")
_ECHOED = ("Via", "From", "To", "Call-ID", "CSeq")  # copied into responses (RFC 3261 8.2.6.2)
_STATUS_RE = re.compile(r"SIP/([0-9]+\.[0-9]+) ([1-6][0-9][0-9])(?: (.*))?", re.IGNORECASE)
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_CONTENT_LENGTH_RE = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Size limits applied to untrusted input."""

    max_message_size: int = 65535
    max_header_count: int = 256
    max_header_line: int = 8192

    def __post_init__(self) -> None:
        if min(self.max_message_size, self.max_header_count, self.max_header_line) <= 0:
            raise ValueError("parser limits must be positive")


DEFAULT_LIMITS = ParserLimits()


def parse_message(data: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one SIP message; raises `ParseError` (and only that) when it is not acceptable."""
    try:
        return _parse(bytes(data), limits)
    except ParseError:
        raise
    except Exception as exc:  # the contract: no other exception escapes
        logger.debug("x unexpected parser failure", exc_info=True)
        raise ParseError(f"Malformed message ({type(exc).__name__})") from exc


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Cut at the empty line; bare-LF line ends are tolerated."""
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data.removesuffix(b"\r\n"), b""


def _split_fields(head: bytes, limits: ParserLimits) -> tuple[str, list[tuple[str, str]], str]:
    """Start line, unfolded (name, value) fields (RFC 3261 7.3.1) and the first problem seen."""
    lines = head.decode("utf-8", "surrogateescape").split("\n")
    fields: list[tuple[str, str]] = []
    problem = ""
    for raw in lines[1:]:
        line = raw.removesuffix("\r")
        if len(line) > limits.max_header_line:
            problem = problem or "Header line too long"
        elif "\r" in line:
            problem = problem or "Bare CR in header"
        elif line[:1] in (" ", "\t"):  # continuation line: the fold is equivalent to one SP
            if not fields:
                problem = problem or "Continuation line without header"
                continue
            name, value = fields[-1]
            value = (value + " " + line.strip(" \t")).strip(" \t")
            if len(value) > limits.max_header_line:
                problem = problem or "Header line too long"
            fields[-1] = (name, value)
        else:
            name, colon, value = line.partition(":")
            name = name.rstrip(" \t")
            if not colon or not name or not TOKEN_CHARS.issuperset(name):
                problem = problem or "Malformed header line"
                continue
            fields.append((name, value.strip(" \t")))
            if len(fields) > limits.max_header_count:
                problem = problem or "Too many headers"
                break
    return lines[0].removesuffix("\r"), fields, problem


def _parse(data: bytes, limits: ParserLimits) -> Request | Response:
    data = data.lstrip(b"\r\n")  # leading CRLFs are ignored (RFC 3261 7.5)
    if not data:
        raise ParseError("Empty message")
    head, body = _split_head(data)
    start, fields, problem = _split_fields(head, limits)
    headers = Headers(fields)
    too_large = len(data) > limits.max_message_size
    message: Request | Response
    if start[:4].upper() == "SIP/":
        match = _STATUS_RE.fullmatch(start)
        if match is None:
            raise ParseError("Bad Status-Line")
        if match[1] != "2.0":
            raise ParseError("Version Not Supported", 505)
        if too_large:
            raise ParseError("Message Too Large", 513)
        if problem:
            raise ParseError(problem)
        message = Response(int(match[2]), match[3] or "", headers)
        try:
            _validate(message)
        except RemoteProtocolError as exc:
            raise ParseError(exc.reason, exc.status_hint) from None
    else:
        method = start.split(" ", 1)[0]

        def fail(reason: str, status: int = 400) -> ParseError:
            return ParseError(reason, status, _error_response(method, headers, status, reason))

        if too_large:
            raise fail("Message Too Large", 513)
        parts = start.split(" ")
        if len(parts) != 3 or not method or not TOKEN_CHARS.issuperset(method):
            raise fail("Bad Request-Line")
        if parts[2].upper() != "SIP/2.0":
            if _VERSION_RE.fullmatch(parts[2]):
                raise fail("Version Not Supported", 505)
            raise fail("Bad Request-Line")
        if problem:
            raise fail(problem)
        try:
            uri = SipUri.parse(parts[1])
        except RemoteProtocolError:
            raise fail("Bad Request-URI") from None
        if uri.headers:  # RFC 3261 19.1.5: headers are not allowed in a Request-URI
            raise fail("Bad Request-URI")
        message = Request(method, uri, headers)
        try:
            _validate(message)
        except RemoteProtocolError as exc:
            raise fail(exc.reason, exc.status_hint) from None
    length = headers.get("Content-Length")
    if length is not None:  # RFC 3261 18.3
        if not length.isascii() or not length.isdigit() or len(length) > 10:
            raise _as_parse_error(message, "Bad Content-Length header")
        if int(length) > len(body):
            raise _as_parse_error(message, "Content-Length larger than body")
        body = body[: int(length)]
    message.body = body
    return message


def _as_parse_error(message: Request | Response, reason: str) -> ParseError:
    if isinstance(message, Response):
        return ParseError(reason)
    return ParseError(reason, 400, _error_response(message.method, message.headers, 400, reason))


def _validate(message: Request | Response) -> None:
    """Decode every header field the upper layers rely on; raise on the first bad one."""
    headers = message.headers
    for name in _SINGLE:
        if sum(1 for n, _ in headers if n == name) > 1:
            raise RemoteProtocolError(f"Multiple {name} headers")
    message.vias  # noqa: B018 -- decoding validates
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.call_id  # noqa: B018
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise RemoteProtocolError("CSeq method does not match Request-Line")
    message.max_forwards  # noqa: B018
    message.contacts  # noqa: B018
    for name in ("Route", "Record-Route"):
        for value in headers.get_all(name):
            try:
                NameAddr.parse(value)
            except RemoteProtocolError:
                raise RemoteProtocolError(f"Bad {name} header") from None
    message.content_type  # noqa: B018


def _error_response(method: str, headers: Headers, status: int, reason: str) -> bytes | None:
    """The response to an unacceptable request, or None when it cannot be answered.

    Needs a Via (to route the response) and a CSeq (to match the client transaction); ACK is
    never answered (RFC 3261 17.2.1). Single-valued fields are copied once; a To tag is added
    (RFC 3261 8.2.6.2), derived from the request so that retransmissions get the same one.
    """
    if method == "ACK" or "Via" not in headers or "CSeq" not in headers:
        return None
    echoed = Headers()
    for name, value in headers:
        if name == "Via" or (name in _ECHOED and name not in echoed):
            echoed.add(name, value)
    to = echoed.get("To")
    if to is not None:
        try:
            has_tag = NameAddr.parse(to).tag is not None
        except RemoteProtocolError:
            has_tag = True  # leave a malformed To untouched
        if not has_tag:
            seed = "|".join(v for _, v in echoed).encode("utf-8", "surrogateescape")
            echoed.set("To", f"{to};tag={hashlib.sha1(seed).hexdigest()[:10]}")
    return Response(status, reason, echoed).to_bytes()


@dataclass(frozen=True, slots=True)
class SipFrame:
    """One complete SIP message cut from a stream."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A CRLF CRLF keep-alive ping (RFC 5626 4.4.1); answer it with a single CRLF."""


Frame = SipFrame | KeepAlivePing


class StreamFramer:
    """Cuts SIP messages out of a TCP/TLS byte stream using Content-Length (RFC 3261 18.3).

    After a `ParseError` the framer stays failed: the connection must be closed.
    """

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._error: ParseError | None = None

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data

    def _fail(self, reason: str, status: int = 400) -> ParseError:
        self._error = ParseError(reason, status)
        self._buffer.clear()
        return self._error

    def next_frame(self) -> Frame | None:
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        while buffer.startswith(b"\r\n"):
            if buffer.startswith(b"\r\n\r\n"):
                del buffer[:4]
                return KeepAlivePing()
            if len(buffer) < 4 and b"\r\n\r\n".startswith(buffer):
                return None  # may still become a ping
            del buffer[:2]  # leading CRLF before a message (RFC 3261 7.5)
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self._limits.max_message_size:
                raise self._fail("Message Too Large", 513)
            return None
        values = {v.strip(b" \t") for v in _CONTENT_LENGTH_RE.findall(buffer, 0, end + 2)}
        if len(values) != 1:
            raise self._fail("Missing Content-Length" if not values else "Multiple Content-Length")
        value = values.pop()
        if not value.isdigit() or len(value) > 10:
            raise self._fail("Bad Content-Length header")
        total = end + 4 + int(value)
        if total > self._limits.max_message_size:
            raise self._fail("Message Too Large", 513)
        if len(buffer) < total:
            return None
        frame = bytes(buffer[:total])
        del buffer[:total]
        return SipFrame(frame)
