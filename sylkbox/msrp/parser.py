"""MSRP stream parser (RFC 4975 sections 7.1 and 9).

MSRP frames itself: a message starts with ``MSRP <tid> <method>`` (or ``MSRP <tid> <code>
[comment]`` for a response) and ends with the end-line ``-------<tid>`` followed by the
continuation flag (``$`` complete, ``+`` more chunks follow, ``#`` aborted) and CRLF. A body,
when present, follows the header block's empty line and is followed by CRLF before the
end-line. The parser finds every boundary with ``bytes.find`` and never loops per byte.

`MsrpParser.next_message()` returns one chunk at a time in arrival order. It raises
`ParseError` and nothing else: ``recoverable`` tells whether the bad message could be
delimited (answer with its ``response`` and go on) or the stream is lost (close it). After an
unrecoverable error the parser stays in the error state and raises it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sylkbox.msrp.errors import ParseError, RemoteProtocolError
from sylkbox.msrp.message import (
    Continuation,
    MsrpRequest,
    MsrpResponse,
    canonical_name,
    default_comment,
    is_valid_ident,
    is_valid_method,
)
from sylkbox.msrp.uri import MsrpUri, parse_path

__all__ = ["DEFAULT_LIMITS", "MsrpParser", "ParserLimits"]

logger = logging.getLogger(__name__)

_KNOWN = {  # exact canonical spellings, the usual case on the wire
    n: n
    for n in (
        "To-Path",
        "From-Path",
        "Message-ID",
        "Byte-Range",
        "Success-Report",
        "Failure-Report",
        "Status",
        "Content-Type",
        "Use-Nickname",
        "Keep-Alive",
        "Offset",
    )
}
_FLAGS: dict[int, Continuation] = {36: "$", 43: "+", 35: "#"}  # ord("$"), ord("+"), ord("#")


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Limits on untrusted input (msrplib ``protocol.py``, BLINK.md 7): header lines of at
    most 16384 bytes, at most 64 header lines, and a cap on one chunk's body."""

    max_header_line: int = 16384
    max_header_count: int = 64
    max_chunk_size: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_header_line, self.max_header_count, self.max_chunk_size) <= 0:
            raise ValueError("parser limits must be positive")


DEFAULT_LIMITS = ParserLimits()


class MsrpParser:
    """Incremental parser for one MSRP connection: `feed` bytes, pull `next_message`."""

    __slots__ = (
        "_body_start",
        "_buf",
        "_error",
        "_first",
        "_head_end",
        "_head_scan",
        "_limits",
        "_marker",
        "_pos",
        "_scan",
        "_tid",
    )

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._pos = 0
        self._error: ParseError | None = None
        self._reset()

    def _reset(self) -> None:
        self._tid = ""
        self._first: list[str] | None = None
        self._marker = b""
        self._head_end = -1  # end of the header block (index of its last CRLF)
        self._head_scan = -1  # where to resume looking for the end of the header block
        self._body_start = -1  # -1: no body
        self._scan = -1  # where to resume looking for the end-line

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise self._error
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def next_message(self) -> MsrpRequest | MsrpResponse | None:
        """The next complete chunk, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ParseError as exc:
            if not exc.recoverable:
                self._error = exc
            raise
        except Exception as exc:  # the contract: only ParseError escapes
            logger.debug("x unexpected MSRP parser failure", exc_info=True)
            self._error = ParseError(f"Malformed MSRP data ({type(exc).__name__})")
            raise self._error from exc

    def _fatal(self, reason: str, status: int = 400) -> ParseError:
        return ParseError(reason, status, transaction_id=self._tid or None, recoverable=False)

    def _next(self) -> MsrpRequest | MsrpResponse | None:
        buf = self._buf
        limits = self._limits
        if self._first is None:
            pos = self._pos
            # tolerate stray CRLFs between messages
            while buf.startswith(b"\r\n", pos):
                pos += 2
            self._pos = pos
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > limits.max_header_line:
                    raise self._fatal("MSRP first line too long")
                if len(buf) - pos >= 5 and not buf.startswith(b"MSRP ", pos):
                    raise self._fatal("Not an MSRP message")
                return None
            if eol - pos > limits.max_header_line:
                raise self._fatal("MSRP first line too long")
            try:
                line = buf[pos:eol].decode("ascii")
            except UnicodeDecodeError:
                raise self._fatal("Not an MSRP message") from None
            first = line.split(" ", 2)
            if len(first) < 3 or first[0] != "MSRP" or not is_valid_ident(first[1]):
                raise self._fatal("Not an MSRP message")
            self._first = first
            self._tid = first[1]
            self._marker = b"\r\n-------" + first[1].encode()
            self._head_scan = eol
        marker = self._marker
        if self._head_end < 0:
            start = self._head_scan
            end_pos = buf.find(marker, start)
            blank = buf.find(b"\r\n\r\n", start, end_pos + 4 if end_pos >= 0 else len(buf))
            if blank >= 0 and (end_pos < 0 or blank < end_pos):
                self._head_end = blank
                self._body_start = blank + 4
                self._scan = blank + 2
            elif end_pos >= 0:
                self._head_end = end_pos
                self._scan = end_pos
            else:
                head = len(buf) - self._pos
                if head > limits.max_header_count * (limits.max_header_line + 2):
                    raise self._fatal("MSRP header block too large")
                self._head_scan = max(start, len(buf) - len(marker) - 2)
                return None
        # find the end-line
        mlen = len(marker)
        while True:
            e = buf.find(marker, self._scan)
            if e < 0:
                if self._body_start >= 0 and len(buf) - self._body_start > limits.max_chunk_size:
                    raise self._fatal("MSRP chunk too large", 413)
                self._scan = max(self._scan, len(buf) - mlen)
                return None
            if len(buf) < e + mlen + 3:
                self._scan = e
                return None
            flag = _FLAGS.get(buf[e + mlen])
            if flag is not None and buf[e + mlen + 1 : e + mlen + 3] == b"\r\n":
                break
            if self._body_start < 0 or e < self._body_start - 2:
                raise self._fatal("Bad MSRP end-line")
            self._scan = e + 1  # the body merely contains the marker; look further
        if self._body_start >= 0 and e - self._body_start > limits.max_chunk_size:
            raise self._fatal("MSRP chunk too large", 413)
        first = self._first
        head_start = self._head_scan_origin()
        header_block = bytes(buf[head_start : self._head_end])
        body_start = self._body_start
        body = b""
        if 0 <= body_start < e:
            with memoryview(buf) as view:  # one copy (a bytearray slice would make two)
                body = view[body_start:e].tobytes()
        self._pos = e + mlen + 3
        self._reset()
        if self._pos > 65536 and self._pos * 2 > len(buf):
            del buf[: self._pos]
            self._pos = 0
        assert first is not None
        return _build(first, header_block, body, flag, limits)

    def _head_scan_origin(self) -> int:
        """Start of the header lines: just after the first line."""
        return self._buf.find(b"\r\n", self._pos) + 2


def _build(
    first: list[str], head: bytes, body: bytes, flag: Continuation, limits: ParserLimits
) -> MsrpRequest | MsrpResponse:
    tid = first[1]
    to_path: tuple[MsrpUri, ...] = ()
    from_path: tuple[MsrpUri, ...] = ()
    headers: dict[str, str] = {}
    error: RemoteProtocolError | None = None
    try:
        if head:
            try:
                text = head.decode("utf-8")
            except UnicodeDecodeError:
                text = head.decode("utf-8", "replace")
                error = RemoteProtocolError("MSRP headers are not UTF-8")
            lines = text.split("\r\n")
            if len(lines) > limits.max_header_count:
                error = error or RemoteProtocolError("Too many MSRP header lines")
            for line in lines:
                if len(line) > limits.max_header_line:
                    error = error or RemoteProtocolError("MSRP header line too long")
                    continue
                name, sep, value = line.partition(":")
                name = name.strip()
                if not sep or not name or " " in name:
                    error = error or RemoteProtocolError(f"Bad MSRP header line {line[:40]!r}")
                    continue
                headers[_KNOWN.get(name) or canonical_name(name)] = value.strip()
        to_text = headers.pop("To-Path", None)
        from_text = headers.pop("From-Path", None)
        if to_text is None or from_text is None:
            raise RemoteProtocolError("Missing To-Path or From-Path")
        to_path = parse_path(to_text)
        from_path = parse_path(from_text)
        if error is not None:
            raise error
        third = first[2]
        if len(third) >= 3 and third[:3].isdigit() and (len(third) == 3 or third[3] == " "):
            comment = third[4:] if len(third) > 4 else None
            return MsrpResponse(tid, int(third[:3]), comment, to_path, from_path, headers)
        if not is_valid_method(third):
            raise RemoteProtocolError(f"Bad MSRP method {third[:20]!r}")
        if body and "Content-Type" not in headers:
            raise RemoteProtocolError("MSRP body without Content-Type")
        return MsrpRequest(third, tid, to_path, from_path, headers, body, flag)
    except RemoteProtocolError as exc:
        response = None
        third = first[2]
        is_request = not third[:3].isdigit()
        if is_request and to_path and from_path:
            response = MsrpResponse(
                tid, exc.status, default_comment(exc.status), from_path[:1], to_path[:1]
            )
        raise ParseError(
            exc.reason, exc.status, transaction_id=tid, recoverable=True, response=response
        ) from None
