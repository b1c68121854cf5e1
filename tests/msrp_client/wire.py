"""MSRP framing written from RFC 4975 alone, for the test client and the golden vectors.

This module must stay independent of `sylkbox.msrp` (it neither imports nor copies it): a shared
misreading of RFC 4975 would otherwise go unnoticed. Where Blink's msrplib differs from a plain
reading of the RFC, the difference is written here on purpose and commented (BLINK.md 4.3, 5, 7).

Wire layout (RFC 4975 section 7.1 and the ABNF in section 9)::

    MSRP SP transact-id SP method CRLF          (request)
    MSRP SP transact-id SP status-code [SP comment] CRLF   (response)
    To-Path: uri *(SP uri) CRLF
    From-Path: uri *(SP uri) CRLF
    *( header CRLF )
    [ Content-Type: type CRLF CRLF body CRLF ]   (content-stuff, only when there is a body)
    "-------" transact-id ( "$" / "+" / "#" ) CRLF

msrplib writes "Content-Type" and the blank line whenever a Content-Type header is present, even
with an empty body, and writes no blank line otherwise; the parser accepts both.
"""

from __future__ import annotations

import functools
import random
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "ByteRange",
    "Chunk",
    "WireError",
    "WireParser",
    "build_report",
    "build_request",
    "build_response",
    "byte_range_for",
    "format_uri",
    "new_message_id",
    "new_session_id",
    "new_transaction_id",
    "parse_status",
    "parse_uri",
    "validate",
]

MAX_LINE = 16384
"""Longest header line accepted, CRLF excluded (msrplib `MSRPProtocol.MAX_LENGTH`, BLINK.md 7)."""
MAX_HEADERS = 64
"""Most header lines accepted after the first line (msrplib `MAX_LINES`, BLINK.md 7)."""
MAX_BODY = 8 * 1024 * 1024
"""Largest chunk body this client buffers (a test client limit, not an RFC one)."""

_FIRST_LINE = re.compile(
    rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.+%=-]{3,31}) (?:([A-Z][A-Z_]*)|([0-9]{3})(?: ([^\r\n]*))?)$"
)
_HEADER = re.compile(rb"^([A-Za-z0-9!#$%&'*+.^_`|~-]+): ?(.*)$")
_BYTE_RANGE = re.compile(r"^([0-9]+)-([0-9]+|\*)/([0-9]+|\*)$")
_URI = re.compile(
    r"^(msrps?)://(?:([^@/]*)@)?(\[[0-9A-Fa-f:.]+\]|[^:/;\[\]]+)(?::([0-9]{1,5}))?"
    r"/([A-Za-z0-9.\-+%=]+);([A-Za-z0-9]+)((?:;[^;]+)*)$"
)


class WireError(Exception):
    """Input that is not MSRP as RFC 4975 (and msrplib's limits) allow; `status` is the answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


_ids = random.Random(secrets.randbits(128))  # unique ids, cheaper than os.urandom per id


def new_transaction_id() -> str:
    """64 random bits in lower-case hex, as msrplib writes them (BLINK.md 7)."""
    return f"{_ids.getrandbits(64) | 1 << 60:x}"


def new_message_id() -> str:
    return f"{_ids.getrandbits(64) | 1 << 60:x}"


def new_session_id() -> str:
    """80 random bits in lower-case hex (BLINK.md 7, msrplib `URI`)."""
    return f"{secrets.randbits(80) | 1 << 76:x}"


def format_uri(host: str, port: int | None, session_id: str, *, tls: bool) -> str:
    """`msrp[s]://host[:port]/session-id;tcp` (RFC 4975 section 6)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port_part = f":{port}" if port else ""
    return f"{'msrps' if tls else 'msrp'}://{host}{port_part}/{session_id};tcp"


@dataclass(frozen=True, slots=True)
class UriParts:
    tls: bool
    host: str
    port: int | None
    session_id: str
    transport: str

    def same_as(self, other: UriParts) -> bool:
        """RFC 4975 section 6.1: scheme, host (case-insensitive), port, session-id, transport."""
        def key(uri: UriParts) -> tuple[bool, str, int | None, str, str]:
            return uri.tls, uri.host.lower(), uri.port, uri.session_id, uri.transport.lower()

        return key(self) == key(other)


@functools.lru_cache(maxsize=1024)
def parse_uri(text: str) -> UriParts:
    match = _URI.match(text)
    if match is None:
        raise WireError(f"bad MSRP URI {text!r}")
    scheme, _user, host, port, session_id, transport, _params = match.groups()
    if host.startswith("["):
        host = host[1:-1]
    port_number = int(port) if port is not None else None
    if port_number is not None and not 0 < port_number < 65536:
        raise WireError(f"bad port in {text!r}")
    return UriParts(scheme == "msrps", host, port_number, session_id, transport)


@dataclass(frozen=True, slots=True)
class ByteRange:
    """RFC 4975 section 8.1 / ABNF `range-start "-" range-end "/" total` (`None` is `*`)."""

    start: int
    end: int | None
    total: int | None

    @classmethod
    def parse(cls, text: str) -> ByteRange:
        match = _BYTE_RANGE.match(text.strip())
        if match is None:
            raise WireError(f"bad Byte-Range {text!r}")
        start = int(match.group(1))
        end = None if match.group(2) == "*" else int(match.group(2))
        total = None if match.group(3) == "*" else int(match.group(3))
        if start < 1:
            raise WireError(f"Byte-Range start must be at least 1: {text!r}")
        if end is not None and end < start - 1:
            raise WireError(f"Byte-Range end before start: {text!r}")
        if total is not None and end is not None and end > total:
            raise WireError(f"Byte-Range end beyond total: {text!r}")
        return cls(start, end, total)

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


def byte_range_for(start: int, size: int, total: int) -> ByteRange:
    """The Byte-Range msrplib writes on a SEND: end is `*` when total > 2048 (BLINK.md 4.3, 5)."""
    end = start - 1 + size
    return ByteRange(start, None if total > 2048 else end, total)


def parse_status(text: str) -> tuple[int, str | None]:
    """REPORT `Status: 000 200 OK` (RFC 4975 section 9: namespace SP status-code [SP text])."""
    match = re.match(r"^([0-9]{3}) ([0-9]{3})(?: (.*))?$", text)
    if match is None or match.group(1) != "000":
        raise WireError(f"bad Status {text!r}")
    return int(match.group(2)), match.group(3)


@dataclass(slots=True)
class Chunk:
    """One request or response as it was framed on the wire (one chunk of a message)."""

    transaction_id: str
    method: str | None = None
    code: int | None = None
    comment: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    flag: str = "$"
    # as framed: the bytes before the body and after it (kept apart so that a large body is
    # not copied twice; `raw` joins them on demand)
    head: bytes = b""
    tail: bytes = b""
    _index: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _indexed: tuple[object, int] = field(default=(None, -1), init=False, repr=False,
                                         compare=False)

    @property
    def raw(self) -> bytes:
        """The chunk exactly as it was received (empty for chunks built locally)."""
        return self.head + self.body + self.tail if self.body else self.head + self.tail

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        """The first header of that name (any case); an index is built once (and again when
        headers are added)."""
        index = self._index
        headers = self.headers
        source, count = self._indexed
        if index is None or source is not headers or count != len(headers):
            index = {}
            for key, value in headers:
                index.setdefault(key.lower(), value)
            self._index = index
            self._indexed = (headers, len(headers))
        return index.get(name.lower())

    def header_names(self) -> list[str]:
        return [key for key, _ in self.headers]

    @property
    def to_path(self) -> list[str]:
        return (self.header("To-Path") or "").split()

    @property
    def from_path(self) -> list[str]:
        return (self.header("From-Path") or "").split()

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")

    @property
    def byte_range(self) -> ByteRange | None:
        value = self.header("Byte-Range")
        return ByteRange.parse(value) if value is not None else None

    @property
    def success_report(self) -> str:
        """RFC 4975 section 7.1.2: absent means `no`."""
        return self.header("Success-Report") or "no"

    @property
    def failure_report(self) -> str:
        """RFC 4975 section 7.1.2: absent means `yes`."""
        return self.header("Failure-Report") or "yes"

    @property
    def status(self) -> tuple[int, str | None] | None:
        value = self.header("Status")
        return parse_status(value) if value is not None else None

    def to_bytes(self) -> bytes:
        if self.method is not None:
            first = f"MSRP {self.transaction_id} {self.method}"
        else:
            assert self.code is not None
            first = f"MSRP {self.transaction_id} {self.code:03d}"
            if self.comment is not None:
                first += f" {self.comment}"
        lines = [first, *(f"{name}: {value}" for name, value in self.headers)]
        head = "\r\n".join(lines).encode("utf-8")
        if self.header("Content-Type") is not None or self.body:
            head += b"\r\n\r\n"
        return head + self.body + f"\r\n-------{self.transaction_id}{self.flag}\r\n".encode()


def build_request(
    method: str,
    to_path: Sequence[str],
    from_path: Sequence[str],
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    content_type: str | None = None,
    flag: str = "$",
    transaction_id: str | None = None,
) -> Chunk:
    """A request with msrplib's header order: To-Path, From-Path, the given headers in order,
    Content-Type last (RFC 4975 section 7.1.1 requires only To-Path and From-Path first)."""
    all_headers = [("To-Path", " ".join(to_path)), ("From-Path", " ".join(from_path)), *headers]
    if content_type is not None:
        all_headers.append(("Content-Type", content_type))
    return Chunk(
        transaction_id or new_transaction_id(),
        method=method,
        headers=all_headers,
        body=body,
        flag=flag,
    )


def build_response(
    request: Chunk,
    code: int,
    comment: str | None,
    *,
    local_uri: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Chunk:
    """RFC 4975 section 7.2: To-Path is the request's From-Path (only its first hop for SEND),
    From-Path is the responder's own URI (the last To-Path URI unless `local_uri` is given)."""
    from_path = request.from_path
    to_path = from_path[:1] if request.method == "SEND" else from_path
    own = local_uri or request.to_path[-1]
    return Chunk(
        request.transaction_id,
        code=code,
        comment=comment,
        headers=[("To-Path", " ".join(to_path)), ("From-Path", own), *headers],
    )


def build_report(
    request: Chunk, code: int, comment: str | None, *, local_uri: str | None = None
) -> Chunk:
    """RFC 4975 section 7.1.2: REPORT to the SEND's From-Path with `Status: 000 code comment`,
    its Message-ID and the Byte-Range of the bytes covered (msrplib `make_report` order)."""
    byte_range = request.byte_range
    size = len(request.body)
    if byte_range is None:
        covered = ByteRange(1, size, size)
    else:
        covered = ByteRange(byte_range.start, byte_range.start + size - 1, byte_range.total)
    status = f"000 {code:03d}" + (f" {comment}" if comment is not None else "")
    return build_request(
        "REPORT",
        request.from_path,
        [local_uri or request.to_path[-1]],
        [
            ("Status", status),
            ("Message-ID", request.message_id or ""),
            ("Byte-Range", str(covered)),
        ],
    )


class WireParser:
    """Incremental MSRP framer: `feed(bytes)`, then `next_chunk()` until it returns None.

    Raises `WireError` for input that can never be framed (bad first line, header line over
    `MAX_LINE`, more than `MAX_HEADERS` headers, body over `max_body`). After an error the parser
    refuses further input, as a connection owner would close the connection.
    """

    def __init__(self, *, max_line: int = MAX_LINE, max_headers: int = MAX_HEADERS,
                 max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self._max_headers = max_headers
        self._max_body = max_body
        self._broken: WireError | None = None
        self._search = 0  # where to resume looking for the end-line of an incomplete body

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received but not yet framed into a chunk."""
        return len(self._buffer)

    def eof(self) -> None:
        """The peer closed: anything left over is a truncated chunk."""
        if self._buffer:
            raise WireError(f"connection closed inside a chunk ({len(self._buffer)} bytes)")

    def next_chunk(self) -> Chunk | None:
        if self._broken is not None:
            raise self._broken
        try:
            return self._next()
        except WireError as error:
            self._broken = error
            raise

    def _line_end(self, start: int) -> int:
        """Index of the CRLF ending the line at `start`, -1 if incomplete; enforces MAX_LINE."""
        end = self._buffer.find(b"\r\n", start)
        length = (end if end >= 0 else len(self._buffer)) - start
        if length > self._max_line:
            raise WireError("line too long")
        return end

    def _next(self) -> Chunk | None:
        buf = self._buffer
        find = buf.find
        max_line = self._max_line
        end = find(b"\r\n")
        if (end if end >= 0 else len(buf)) > max_line:
            raise WireError("line too long")
        if end < 0:
            return None
        match = _FIRST_LINE.match(bytes(buf[:end]))
        if match is None:
            raise WireError(f"bad first line {bytes(buf[:min(end, 80)])!r}")
        tid = match.group(1).decode()
        chunk = Chunk(tid)
        if match.group(2) is not None:
            chunk.method = match.group(2).decode()
        else:
            chunk.code = int(match.group(3))
            if match.group(4) is not None:
                chunk.comment = match.group(4).decode("utf-8", "replace")
        end_line = f"-------{tid}".encode()
        pos = end + 2
        end_line_size = len(end_line) + 1
        headers = chunk.headers
        while True:  # `_line_end`, inlined: this loop is the test clients' hot spot
            line_end = find(b"\r\n", pos)
            if (line_end if line_end >= 0 else len(buf)) - pos > max_line:
                raise WireError("line too long")
            if line_end < 0:
                return None
            line = bytes(buf[pos:line_end])
            if len(line) == end_line_size and line.startswith(end_line):
                chunk.flag = chr(line[-1])
                if chunk.flag not in "$+#":
                    raise WireError(f"bad continuation flag {chunk.flag!r}")
                total = line_end + 2
                break
            if not line:  # blank line: body follows up to CRLF end-line
                body_start = line_end + 2
                marker = b"\r\n" + end_line
                # the buffer only grows until this chunk is taken: resume the scan
                search = max(body_start, self._search)
                while True:
                    found = buf.find(marker, search)
                    if found < 0:
                        if len(buf) - body_start > self._max_body + len(marker) + 3:
                            raise WireError("chunk body too large", 413)
                        self._search = max(body_start, len(buf) - len(marker))
                        return None
                    tail = found + len(marker)
                    if len(buf) < tail + 3:
                        self._search = found
                        return None
                    flag = bytes(buf[tail:tail + 1])
                    if flag in (b"$", b"+", b"#") and buf[tail + 1:tail + 3] == b"\r\n":
                        with memoryview(buf) as view:  # one copy, not two
                            chunk.body = bytes(view[body_start:found])
                        chunk.head = bytes(buf[:body_start])
                        chunk.tail = bytes(buf[found:tail + 3])
                        chunk.flag = chr(buf[tail])
                        total = tail + 3
                        break
                    search = found + 1
                if len(chunk.body) > self._max_body:
                    raise WireError("chunk body too large", 413)
                break
            if len(headers) >= self._max_headers:
                raise WireError("too many header lines")
            header = _HEADER.match(line)
            if header is None:
                raise WireError(f"bad header line {line[:80]!r}")
            headers.append(
                (header.group(1).decode(), header.group(2).decode("utf-8", "replace"))
            )
            pos = line_end + 2
        if not chunk.head:
            chunk.head = bytes(buf[:total])
        del buf[:total]
        self._search = 0
        return chunk


def validate(chunk: Chunk) -> None:
    """Semantic checks a receiving endpoint makes (RFC 4975 sections 7.1, 7.3, 8.1, 9).

    Raises `WireError` with the status to answer: 400 for a malformed message.
    """
    if not chunk.to_path or not chunk.from_path:
        raise WireError("To-Path and From-Path are required")
    names = [name.lower() for name, _ in chunk.headers]
    if names[:2] != ["to-path", "from-path"]:
        raise WireError("To-Path and From-Path must come first")
    for uri in chunk.to_path + chunk.from_path:
        parse_uri(uri)
    if chunk.body and chunk.content_type is None:
        raise WireError("body without Content-Type")
    if chunk.method is None:
        return
    if chunk.method == "SEND":
        if chunk.message_id is None:
            raise WireError("SEND without Message-ID")
        byte_range = chunk.byte_range
        if byte_range is not None:
            size = len(chunk.body)
            exact = byte_range.end is not None and chunk.flag != "#"
            if exact and byte_range.end - byte_range.start + 1 != size:  # type: ignore[operator]
                raise WireError(f"body of {size} bytes does not match Byte-Range {byte_range}")
            if byte_range.total is not None and byte_range.start - 1 + size > byte_range.total:
                raise WireError(f"body of {size} bytes runs past Byte-Range {byte_range}")
    if chunk.method == "REPORT" and (chunk.status is None or chunk.message_id is None):
        raise WireError("REPORT without Status or Message-ID")
    for name in ("Success-Report",):
        value = chunk.header(name)
        if value is not None and value not in ("yes", "no"):
            raise WireError(f"bad {name} {value!r}")
    value = chunk.header("Failure-Report")
    if value is not None and value not in ("yes", "no", "partial"):
        raise WireError(f"bad Failure-Report {value!r}")
