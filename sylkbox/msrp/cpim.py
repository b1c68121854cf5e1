"""Message/CPIM (RFC 3862) as Blink and SylkServer put it on the wire (BLINK.md 4.2).

A CPIM message is a header block, a blank line, and an inner MIME part (RFC 3862 section 2):

* the header block's lines are separated by CRLF and the block ends with CRLF CRLF; the parser
  splits on the *first* CRLF CRLF, which is mandatory;
* header values use the RFC 3862 section 3.2 escapes (``\\\\``, ``\\"``, ``\\uXXXX``...), as the
  sipsimple ``cpim-header`` codec does: control characters and the backslash are escaped on output;
* the standard headers (section 4: ``From``, ``To``, ``cc``, ``Subject``, ``DateTime``,
  ``Required``, ``NS``) are written in that order, then the extension headers in their original
  order, each namespace declared once with ``NS: <prefix> <<uri>>`` before its
  ``prefix.Name: value`` headers (section 3.4);
* the inner MIME part is written by Python's email module on the Blink side, so its header lines
  may end in bare LF; it is parsed leniently and its body bytes are kept exactly.

Identities are ``Display Name <sip:user@host>`` or ``<sip:user@host>`` (section 3.3, Formal-name);
two identities are the same participant when their URIs have the same user and host
(:func:`same_identity`).

This module is sans-I/O and raises only :class:`CpimError` (a ``RemoteProtocolError`` and a
``ValueError``, with ``reason`` and ``status`` 400: the failure REPORT BLINK.md 4.3 asks for).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sylkbox.msrp.errors import RemoteProtocolError

__all__ = [
    "AGP_NAMESPACE",
    "CONTENT_TYPE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_BYTES",
    "ROOM_DISPLAY_NAME",
    "STANDARD_NAMESPACE",
    "CpimError",
    "CpimMessage",
    "Identity",
    "build_message",
    "build_relayed",
    "build_status",
    "format_datetime",
    "parse",
    "same_identity",
]

logger = logging.getLogger(__name__)

_DateTime = datetime  # the CpimMessage field called ``datetime`` shadows the type in its body

CONTENT_TYPE = "message/cpim"
STANDARD_NAMESPACE = "urn:ietf:params:cpim-headers:"
AGP_NAMESPACE = "urn:ag-projects:xml:ns:cpim"
AGP_PREFIX = "agp"
ROOM_DISPLAY_NAME = "Conference Room"
DEFAULT_MAX_HEADER_BYTES = 16384
DEFAULT_MAX_HEADERS = 64

_STANDARD_NAMES = frozenset({"From", "To", "cc", "Subject", "DateTime", "Required"})
_TOKEN_RE = re.compile(r"[!#$%&'*+\-^_`|~0-9A-Za-z]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_NS_RE = re.compile(r"(?:(?P<prefix>\S+) ?)?<(?P<uri>[^<>]*)>")
_UNSAFE_URI_RE = re.compile(r"[\x00-\x20\x7f<>\"]")
_SIMPLE_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}


class CpimError(RemoteProtocolError, ValueError):
    """A message/cpim body that cannot be accepted (RFC 3862); answered with a 400 REPORT."""


# -- header value escapes (RFC 3862 3.2, sipsimple's ``cpim-header`` codec) -----------------------


def _unescape(text: str) -> str:
    """Undo the RFC 3862 3.2 escapes; unknown or broken escapes are kept literally (lenient)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char != "\\" or i + 1 == n:
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6]):
            code = int(text[i + 2 : i + 6], 16)
            # A lone surrogate cannot be written back as UTF-8: replace it.
            out.append("\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code))
            i += 6
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _escape(text: str, *, quote: bool = False) -> str:
    """Escape control characters and the backslash (and ``"`` inside a quoted string)."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 32 or code == 127:
            out.append(f"\\u{code:04x}")
        elif char == "\\":
            out.append("\\\\")
        elif quote and char == '"':
            out.append('\\"')
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


# -- identities (RFC 3862 3.3) ---------------------------------------------------------------------


def _uri_user_host(uri: str) -> tuple[str, str]:
    """The (user, host) of a sip/sips/im/pres URI: user percent-decoded, host lower-cased."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split("?", 1)[0]
    user = ""
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        user = urllib.parse.unquote(user.split(":", 1)[0])
    host = rest.split(";", 1)[0]
    if host.startswith("["):
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return user, host.lower()


@dataclass(frozen=True, slots=True)
class Identity:
    """A CPIM From/To/cc value: an optional display name and a URI (RFC 3862 3.3)."""

    display_name: str | None
    uri: str

    def __post_init__(self) -> None:
        scheme = _SCHEME_RE.match(self.uri)
        if scheme is None or scheme.end() == len(self.uri) or _UNSAFE_URI_RE.search(self.uri):
            raise CpimError(f"invalid identity URI {self.uri!r}")
        if self.display_name == "":
            object.__setattr__(self, "display_name", None)

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Parse ``Display <uri>``, ``"Display" <uri>`` or ``<uri>`` (already unescaped text).

        The URI holds no ``<``, so it follows the last ``<``; what precedes it is the display
        name, without its double quotes when it is quoted.  (Linear time: no backtracking.)
        """
        value = text.strip()
        start = value.rfind("<")
        if start < 0 or not value.endswith(">") or ">" in value[start + 1 : -1]:
            raise CpimError(f"cannot parse identity {text[:80]!r}")
        uri = value[start + 1 : -1].strip()
        display = value[:start].rstrip()
        if len(display) >= 2 and display[0] == '"' and display[-1] == '"':
            display = display[1:-1]
        elif "<" in display:
            raise CpimError(f"cannot parse identity {text[:80]!r}")
        return cls(display or None, uri)

    @classmethod
    def room(cls, room_uri: str) -> Identity:
        """``Conference Room <sip:room>``, SylkServer's identity for the room itself."""
        return cls(ROOM_DISPLAY_NAME, _as_sip(room_uri))

    @property
    def user_host(self) -> tuple[str, str]:
        return _uri_user_host(self.uri)

    def with_display_name(self, display_name: str | None) -> Identity:
        return Identity(display_name, self.uri)

    def __str__(self) -> str:
        """The escaped header value: unquoted as Blink writes it when that is unambiguous."""
        if not self.display_name:
            return f"<{self.uri}>"
        name = self.display_name
        needs_quotes = (
            name != name.strip()
            or any(c in name for c in '"<>\\')
            or any(ord(c) < 32 or ord(c) == 127 for c in name)
        )
        if needs_quotes:
            return f'"{_escape(name, quote=True)}" <{self.uri}>'
        return f"{_escape(name)} <{self.uri}>"


def same_identity(a: Identity | str, b: Identity | str) -> bool:
    """True when ``a`` and ``b`` name the same user and host (BLINK.md 4.2; sipsimple
    ``ChatIdentity.__eq__``).  Strings may be bare URIs or ``Display <uri>`` values; one that
    cannot be read matches nothing."""
    try:
        return _coerce_identity(a).user_host == _coerce_identity(b).user_host
    except CpimError:
        return False


def _coerce_identity(value: Identity | str) -> Identity:
    if isinstance(value, Identity):
        return value
    text = value.strip()
    if "<" in text:
        return Identity.parse(text)
    return Identity(None, text if _SCHEME_RE.match(text) else "sip:" + text)


# -- DateTime (RFC 3862 4.5, ISO 8601 with an offset) ---------------------------------------------


def format_datetime(value: datetime) -> str:
    """ISO 8601 with an offset (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parse_datetime(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the message ----------------------------------------------------------------------------------


def _ns_value(prefix: str, uri: str) -> str:
    return f"{prefix} <{uri}>" if prefix else f"<{uri}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpimMessage:
    """One message/cpim body (RFC 3862 section 2).

    ``ns_headers`` holds every header after the standard ones, in order, as ``(prefix, name,
    value)`` with the value unescaped: namespace declarations are ``("", "NS", "agp <uri>")``,
    extension headers ``("agp", "Message-Type", "status")``, unknown unprefixed headers
    ``("", "Name", value)``.  ``subject`` keeps each ``Subject`` value (with any ``;lang=``
    prefix).  ``content_headers`` are the inner MIME headers in order; ``content_eol`` is the line
    end they were written with.  ``body`` is kept byte for byte.  ``datetime`` is ``None`` when
    the header was absent or unreadable: the caller then sets "now" (BLINK.md 4.3).
    """

    from_: Identity | None
    to: tuple[Identity, ...] = ()
    cc: tuple[Identity, ...] = ()
    subject: tuple[str, ...] = ()
    datetime: datetime | None = None
    required: tuple[str, ...] = ()
    ns_headers: tuple[tuple[str, str, str], ...] = ()
    content_headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_eol: str = "\r\n"
    datetime_text: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.content_eol not in ("\r\n", "\n"):
            raise CpimError("content_eol must be CRLF or LF")
        if self.datetime is not None and self.datetime.tzinfo is None:
            object.__setattr__(self, "datetime", self.datetime.replace(tzinfo=UTC))
        for prefix, name, _value in self.ns_headers:
            if (prefix and not _TOKEN_RE.fullmatch(prefix)) or not _TOKEN_RE.fullmatch(name):
                raise CpimError(f"invalid extension header name {prefix}.{name}")
        for name, value in self.content_headers:
            if not _TOKEN_RE.fullmatch(name) or "\r" in value or "\n" in value:
                raise CpimError(f"invalid MIME header {name!r}")

    # -- inner MIME part ---------------------------------------------------------------------------

    def content_header(self, name: str) -> str | None:
        """The first inner MIME header called ``name`` (case-insensitive)."""
        lowered = name.lower()
        for key, value in self.content_headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def content_type(self) -> str:
        """The inner media type, lower-cased, without parameters (RFC 2045 default text/plain)."""
        value = self.content_header("Content-Type")
        if value is None:
            return "text/plain"
        media = value.split(";", 1)[0].strip().lower()
        return media or "text/plain"

    @property
    def charset(self) -> str | None:
        value = self.content_header("Content-Type")
        if value is None:
            return None
        for param in value.split(";")[1:]:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "charset":
                return raw.strip().strip('"').strip() or None
        return None

    def text(self) -> str:
        """The body decoded with its charset (UTF-8 if absent or unknown), never raising."""
        charset = self.charset or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    # -- extension headers (RFC 3862 3.4) ----------------------------------------------------------

    @property
    def namespaces(self) -> dict[str, str]:
        """Prefix -> namespace URI, as declared by the NS headers (the last declaration wins)."""
        result: dict[str, str] = {}
        for prefix, name, value in self.ns_headers:
            if not prefix and name == "NS":
                match = _NS_RE.fullmatch(value)
                if match is not None and match.group("prefix"):
                    result[match.group("prefix")] = match.group("uri")
        return result

    def extension(self, namespace: str, name: str) -> str | None:
        """The value of header ``name`` in ``namespace`` (prefixes resolved in order)."""
        for value in self._resolved(namespace, name):
            return value
        return None

    def _resolved(self, namespace: str, name: str) -> list[str]:
        declared: dict[str, str] = {}
        found: list[str] = []
        for prefix, key, value in self.ns_headers:
            if not prefix and key == "NS":
                match = _NS_RE.fullmatch(value)
                if match is not None and match.group("prefix"):
                    declared[match.group("prefix")] = match.group("uri")
                continue
            if prefix and key == name and declared.get(prefix) == namespace:
                found.append(value)
        return found

    @property
    def is_status(self) -> bool:
        """SylkServer's status line marker: ``agp.Message-Type: status`` (BLINK.md 4.2)."""
        return any(v.strip() == "status" for v in self._resolved(AGP_NAMESPACE, "Message-Type"))

    def is_private(self, room_uri: str) -> bool:
        """Private when there is exactly one To and it is not the room (BLINK.md 4.3)."""
        return len(self.to) == 1 and not same_identity(self.to[0], _as_sip(room_uri))

    # -- serialization -----------------------------------------------------------------------------

    def header_lines(self) -> list[str]:
        lines: list[str] = []
        if self.from_ is not None:
            lines.append(f"From: {self.from_}")
        lines.extend(f"To: {identity}" for identity in self.to)
        lines.extend(f"cc: {identity}" for identity in self.cc)
        lines.extend(f"Subject: {_escape(subject)}" for subject in self.subject)
        if self.datetime is not None:
            lines.append(f"DateTime: {_escape(self._datetime_value(self.datetime))}")
        if self.required:
            lines.append(f"Required: {_escape(','.join(self.required))}")
        for prefix, name, value in self.ns_headers:
            key = f"{prefix}.{name}" if prefix else name
            lines.append(f"{key}: {_escape(value)}")
        return lines

    def _datetime_value(self, value: _DateTime) -> str:
        text = self.datetime_text
        if text is not None:
            parsed = _parse_datetime(text)
            if parsed == value and parsed is not None and parsed.utcoffset() == value.utcoffset():
                return text
        return format_datetime(value)

    def to_bytes(self) -> bytes:
        # sipsimple: CRLF-joined headers, then CRLF CRLF (also when there is no header at all).
        head = "\r\n".join(self.header_lines()) + "\r\n\r\n"
        eol = self.content_eol
        mime = "".join(f"{name}: {value}{eol}" for name, value in self.content_headers) + eol
        return head.encode("utf-8") + mime.encode("utf-8") + self.body


def _as_sip(value: str) -> str:
    return value if _SCHEME_RE.match(value) else "sip:" + value


# -- parsing --------------------------------------------------------------------------------------


def _split_name(raw: str) -> tuple[str, str]:
    prefix, dot, name = raw.partition(".")
    if not dot:
        prefix, name = "", raw
    if (dot and not _TOKEN_RE.fullmatch(prefix)) or not _TOKEN_RE.fullmatch(name):
        raise CpimError(f"invalid CPIM header name {raw!r}")
    return prefix, name


def parse(
    data: bytes,
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_headers: int = DEFAULT_MAX_HEADERS,
) -> CpimMessage:
    """Parse a message/cpim body; raise :class:`CpimError` (400) when it cannot be accepted.

    Refused: no CRLF CRLF after the header block, a header block over ``max_header_bytes`` or
    with more than ``max_headers`` lines, a line without a colon or with a bad name, bytes that
    are not UTF-8 in any header, a bare CR or LF in the CPIM header block, more than one
    ``From``, an unreadable From/To/cc identity.  Tolerated (BLINK.md 4.2, as sipsimple
    does): an unreadable ``DateTime`` (treated as absent), unknown and undeclared-prefix headers
    (kept), an inner MIME part with LF line ends, an empty ``Content-Transfer-Encoding``, no
    inner headers at all.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CpimError("CPIM data must be bytes")
    data = bytes(data)
    end = data.find(b"\r\n\r\n", 0, max_header_bytes + 4)
    if end < 0:
        if len(data) > max_header_bytes + 4 and b"\r\n\r\n" in data:
            raise CpimError(f"CPIM header block larger than {max_header_bytes} bytes")
        raise CpimError("CPIM header block does not end with CRLF CRLF")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise CpimError("CPIM headers are not UTF-8") from None
    lines = head.split("\r\n") if head else []
    if len(lines) > max_headers:
        raise CpimError(f"more than {max_headers} CPIM headers")

    sender: Identity | None = None
    to: list[Identity] = []
    cc: list[Identity] = []
    subject: list[str] = []
    stamp: datetime | None = None
    stamp_text: str | None = None
    required: list[str] = []
    extra: list[tuple[str, str, str]] = []
    namespaces: dict[str, str] = {"": STANDARD_NAMESPACE}

    for line in lines:
        if "\r" in line or "\n" in line:
            raise CpimError("bare CR or LF in the CPIM header block")
        raw_name, colon, raw_value = line.partition(":")
        if not colon:
            raise CpimError(f"CPIM header line without a colon: {line[:64]!r}")
        prefix, name = _split_name(raw_name)
        value = _unescape(raw_value.lstrip(" \t"))
        standard = namespaces.get(prefix) == STANDARD_NAMESPACE
        if standard and name in _STANDARD_NAMES:
            if name == "From":
                if sender is not None:
                    raise CpimError("more than one From header")
                sender = Identity.parse(value)
            elif name == "To":
                to.append(Identity.parse(value))
            elif name == "cc":
                cc.append(Identity.parse(value))
            elif name == "Subject":
                subject.append(value)
            elif name == "DateTime":
                stamp = _parse_datetime(value)
                stamp_text = value if stamp is not None else None
                if stamp is None:
                    logger.debug("x ignoring unreadable CPIM DateTime %r", value[:64])
            else:  # Required
                required.extend(part.strip() for part in value.split(",") if part.strip())
            continue
        if not prefix and name == "NS":
            match = _NS_RE.fullmatch(value)
            if match is not None and match.group("prefix"):
                namespaces[match.group("prefix")] = match.group("uri")
        extra.append((prefix, name, value))

    headers, eol, body = _parse_mime(data[end + 4 :], max_header_bytes, max_headers)
    return CpimMessage(
        from_=sender,
        to=tuple(to),
        cc=tuple(cc),
        subject=tuple(subject),
        datetime=stamp,
        datetime_text=stamp_text,
        required=tuple(required),
        ns_headers=tuple(extra),
        content_headers=headers,
        content_eol=eol,
        body=body,
    )


_MIME_NAME_RE = re.compile(rb"[!#$%&'*+\-^_`|~0-9A-Za-z]+")


def _parse_mime(
    part: bytes, max_header_bytes: int, max_headers: int
) -> tuple[tuple[tuple[str, str], ...], str, bytes]:
    """Split the inner MIME part into headers and body, leniently (LF or CRLF line ends)."""
    headers: list[tuple[str, str]] = []
    eol: str | None = None
    pos = 0
    while True:
        newline = part.find(b"\n", pos)
        line_end = len(part) if newline < 0 else newline
        line = part[pos:line_end]
        if eol is None and newline >= 0:
            eol = "\r\n" if line.endswith(b"\r") else "\n"
        line = line.removesuffix(b"\r")
        if not line:
            # The blank line (or the end of the data): the body follows it.
            body = b"" if newline < 0 else part[newline + 1 :]
            break
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {_decode_mime(line.strip())}".strip())
        else:
            raw_name, colon, raw_value = line.partition(b":")
            raw_name = raw_name.rstrip(b" \t")
            if not colon or len(line) > max_header_bytes or not _MIME_NAME_RE.fullmatch(raw_name):
                # Not a header: like Python's email parser, the rest is the body.
                body = part[pos:]
                break
            headers.append((raw_name.decode("ascii"), _decode_mime(raw_value.strip())))
        if len(headers) > max_headers or pos > max_header_bytes:
            raise CpimError("inner MIME header block too large")
        if newline < 0:
            body = b""
            break
        pos = newline + 1
    return tuple(headers), eol or "\r\n", body


def _decode_mime(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CpimError("inner MIME headers are not UTF-8") from None


# -- builders (BLINK.md 4.3) ----------------------------------------------------------------------


def _text_headers(content_type: str, charset: str | None) -> tuple[tuple[str, str], ...]:
    value = f'{content_type}; charset="{charset}"' if charset else content_type
    return (("Content-Type", value),)


def build_message(
    *,
    from_: Identity,
    to: tuple[Identity, ...],
    body: bytes,
    now: datetime,
    content_type: str = "text/plain",
    charset: str | None = "utf8",
    ns_headers: tuple[tuple[str, str, str], ...] = (),
) -> CpimMessage:
    """A new message with a DateTime of ``now`` and a ``Content-Type`` inner header."""
    if not content_type.startswith("text/"):
        charset = None
    return CpimMessage(
        from_=from_,
        to=to,
        datetime=now,
        ns_headers=ns_headers,
        content_headers=_text_headers(content_type, charset),
        body=body,
    )


def build_relayed(
    message: CpimMessage,
    *,
    room_uri: str,
    sender: Identity | None = None,
    nickname: str | None = None,
    now: datetime,
    strip_status: bool = True,
) -> CpimMessage:
    """The copy of a participant's message that the room relays (BLINK.md 4.3).

    ``From`` is the original sender (or ``sender`` when the message had none) with its display
    name replaced by ``nickname`` when one is set; a public message gets ``To: Conference Room
    <sip:room>``, a private one keeps its ``To``; ``DateTime`` is kept (``now`` if absent);
    extension headers are kept, except (with ``strip_status``) an ``agp.Message-Type`` a
    participant could use to pass a message off as a room status line.
    """
    origin = message.from_ or sender
    if origin is None:
        raise CpimError("message has no From and no sender was given")
    if nickname:
        origin = origin.with_display_name(nickname)
    to = message.to if message.is_private(room_uri) else (Identity.room(room_uri),)
    extra = message.ns_headers
    if strip_status:
        extra = _without_extension(extra, AGP_NAMESPACE, "Message-Type")
    keep_text = message.datetime is not None
    return dataclasses.replace(
        message,
        from_=origin,
        to=to,
        datetime=message.datetime if keep_text else now,
        datetime_text=message.datetime_text if keep_text else None,
        ns_headers=extra,
    )


def _without_extension(
    headers: tuple[tuple[str, str, str], ...], namespace: str, name: str
) -> tuple[tuple[str, str, str], ...]:
    declared: dict[str, str] = {}
    kept: list[tuple[str, str, str]] = []
    for prefix, key, value in headers:
        if not prefix and key == "NS":
            match = _NS_RE.fullmatch(value)
            if match is not None and match.group("prefix"):
                declared[match.group("prefix")] = match.group("uri")
        elif prefix and key == name and declared.get(prefix) == namespace:
            continue
        kept.append((prefix, key, value))
    return tuple(kept)


def build_status(
    room_uri: str,
    text: str,
    *,
    now: datetime,
    to: tuple[Identity, ...] | None = None,
    status: bool = True,
) -> CpimMessage:
    """A message from the room itself: ``From`` and ``To`` = ``Conference Room <sip:room>``.

    With ``status`` (the default) it carries ``NS: agp <urn:ag-projects:xml:ns:cpim>`` and
    ``agp.Message-Type: status``, which Blink shows as a status line; ``status=False`` gives the
    plain welcome/history kind.  ``to=()`` gives a message with no ``To`` (the ZRTP SAS text).
    """
    room = Identity.room(room_uri)
    extra: tuple[tuple[str, str, str], ...] = ()
    if status:
        extra = (
            ("", "NS", _ns_value(AGP_PREFIX, AGP_NAMESPACE)),
            (AGP_PREFIX, "Message-Type", "status"),
        )
    return build_message(
        from_=room,
        to=(room,) if to is None else to,
        body=text.encode("utf-8"),
        now=now,
        ns_headers=extra,
    )
