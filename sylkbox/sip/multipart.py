"""``multipart/*`` message bodies (RFC 2046 section 5.1), as used by SIP (RFC 5621).

Sans-I/O: bytes in, :class:`BodyPart` values out, and back. The focus needs this for INVITEs that
carry SDP together with a recipient list (RFC 5366 section 4); a malformed body raises
:class:`MultipartError`, which the focus answers with 400.

Delimiters are recognised only at the start of the body or after CRLF, as RFC 2046 section 5.1.1
requires; the CRLF before a delimiter belongs to the delimiter, not to the preceding part. The
preamble and the epilogue are ignored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "BodyPart",
    "MultipartError",
    "build_multipart",
    "parse_content_type",
    "parse_multipart",
]

# RFC 2045 section 5.1 token, RFC 2046 section 5.1.1 bcharsnospace / bchars.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_CANONICAL = {"content-id": "Content-ID", "mime-version": "MIME-Version"}
_DEFAULT_CONTENT_TYPE = "text/plain"  # RFC 2046 section 5.1: the default in multipart/mixed


class MultipartError(ValueError):
    """A multipart body or its Content-Type cannot be parsed or built; see ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into the lower-case media type and its parameters.

    Parameter names are lower-cased; quoted-string values are unquoted (RFC 2045 section 5.1).
    """
    media_type, rest = _split_semicolon(value)
    media_type = media_type.strip().lower()
    kind, slash, subtype = media_type.partition("/")
    if not slash or not _TOKEN.fullmatch(kind) or not _TOKEN.fullmatch(subtype):
        raise MultipartError(f"bad media type {media_type!r}")
    params: dict[str, str] = {}
    while rest is not None:
        item, rest = _split_semicolon(rest)
        item = item.strip()
        if not item:
            continue
        name, equals, raw = item.partition("=")
        name = name.strip().lower()
        raw = raw.strip()
        if not equals or not _TOKEN.fullmatch(name):
            raise MultipartError(f"bad Content-Type parameter {item!r}")
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"'):
                raise MultipartError(f"unterminated quoted parameter {item!r}")
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif not _TOKEN.fullmatch(raw):
            raise MultipartError(f"bad Content-Type parameter value {item!r}")
        params[name] = raw
    return media_type, params


def _split_semicolon(text: str) -> tuple[str, str | None]:
    """Split at the first ``;`` outside a quoted string."""
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return text[:index], text[index + 1 :]
    return text, None


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyPart:
    """One body part: its Content-Type value, its other headers and its body.

    ``content_type`` is the full header value (parameters included); ``headers`` holds the
    part's other headers, keyed by lower-case name (``content-disposition``, ``content-id``...).
    """

    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lowered = {name.lower(): value for name, value in self.headers.items()}
        if "content-type" in lowered:
            raise ValueError("give the Content-Type as content_type, not in headers")
        for name, value in (("content-type", self.content_type), *lowered.items()):
            if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
                raise ValueError(f"bad part header {name!r}")
        object.__setattr__(self, "headers", lowered)

    @property
    def media_type(self) -> str:
        """The lower-case media type without parameters, e.g. ``application/sdp``."""
        return parse_content_type(self.content_type)[0]

    @property
    def disposition(self) -> str | None:
        """The lower-case disposition type (``session``, ``recipient-list``...), if any."""
        value = self.headers.get("content-disposition")
        if value is None:
            return None
        return _split_semicolon(value)[0].strip().lower() or None

    @property
    def content_id(self) -> str | None:
        """The Content-ID without its angle brackets (RFC 2392), if any."""
        value = self.headers.get("content-id")
        return None if value is None else value.strip().removeprefix("<").removesuffix(">")


def parse_multipart(body: bytes, content_type: str, *, max_parts: int = 16) -> list[BodyPart]:
    """Parse ``body`` given the message's Content-Type value (``multipart/...;boundary=...``)."""
    media_type, params = parse_content_type(content_type)
    if not media_type.startswith("multipart/"):
        raise MultipartError(f"{media_type} is not a multipart type")
    boundary = params.get("boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise MultipartError("missing or invalid boundary parameter")
    dash = b"--" + boundary.encode("ascii")
    delimiter = b"\r\n" + dash
    if body.startswith(dash):
        position = len(dash)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise MultipartError("no boundary delimiter in body")
        position = found + len(delimiter)
    parts: list[BodyPart] = []
    while True:
        if body.startswith(b"--", position):
            return parts  # close delimiter; the epilogue is ignored
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise MultipartError("body ends inside a boundary line")
        if body[position:line_end].strip(b" \t"):
            raise MultipartError("unexpected data after a boundary delimiter")
        start = line_end + 2
        end = body.find(delimiter, start)
        if end < 0:
            raise MultipartError("missing close delimiter")
        if len(parts) >= max_parts:
            raise MultipartError(f"more than {max_parts} body parts")
        parts.append(_parse_part(body[start:end]))
        position = end + len(delimiter)


def _parse_part(data: bytes) -> BodyPart:
    if data.startswith(b"\r\n") or not data:
        head, body = b"", data[2:]
    else:
        head, separator, body = data.partition(b"\r\n\r\n")
        if not separator:
            raise MultipartError("body part without an empty line after its headers")
    headers: dict[str, str] = {}
    name: str | None = None
    try:
        lines = head.decode("utf-8").split("\r\n") if head else []
    except UnicodeDecodeError:
        raise MultipartError("body part headers are not UTF-8") from None
    for line in lines:
        if line[:1] in {" ", "\t"} and name is not None:  # RFC 5322 section 2.2.3 folding
            headers[name] += " " + line.strip()
            continue
        raw_name, colon, value = line.partition(":")
        name = raw_name.strip().lower()
        if not colon or not _TOKEN.fullmatch(name):
            raise MultipartError(f"bad body part header line {line!r}")
        if name in headers:
            if name in {"content-type", "content-disposition", "content-id"}:
                raise MultipartError(f"duplicate {name} in body part")
            headers[name] += ", " + value.strip()
        else:
            headers[name] = value.strip()
    content_type = headers.pop("content-type", _DEFAULT_CONTENT_TYPE)
    parse_content_type(content_type)  # validates
    return BodyPart(content_type=content_type, body=body, headers=headers)


def _header_name(name: str) -> str:
    return _CANONICAL.get(name, "-".join(word.capitalize() for word in name.split("-")))


def build_multipart(
    parts: Iterable[BodyPart], *, subtype: str = "mixed", boundary: str | None = None
) -> tuple[bytes, str]:
    """Serialize ``parts``; return the body and the Content-Type value to send with it.

    Without ``boundary`` a random one is chosen. A boundary that occurs in a part's body would
    corrupt the message: a chosen one raises :class:`MultipartError`, a random one is redrawn.
    """
    parts = list(parts)
    if not parts:
        raise MultipartError("a multipart body needs at least one part")
    if not _TOKEN.fullmatch(subtype):
        raise MultipartError(f"bad multipart subtype {subtype!r}")
    if boundary is not None and not _BOUNDARY.fullmatch(boundary):
        raise MultipartError(f"invalid boundary {boundary!r}")
    while True:
        chosen = boundary if boundary is not None else f"sylkbox-{secrets.token_hex(12)}"
        dash = b"--" + chosen.encode("ascii")
        if not any(dash in part.body for part in parts):
            break
        if boundary is not None:
            raise MultipartError("boundary occurs inside a body part")
    chunks: list[bytes] = []
    for part in parts:
        lines = [f"Content-Type: {part.content_type}"]
        lines += [f"{_header_name(name)}: {value}" for name, value in part.headers.items()]
        chunks.append(dash + b"\r\n" + "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n")
        chunks.append(part.body + b"\r\n")
    chunks.append(dash + b"--\r\n")
    needs_quotes = not _TOKEN.fullmatch(chosen)
    parameter = f'"{chosen}"' if needs_quotes else chosen
    return b"".join(chunks), f"multipart/{subtype};boundary={parameter}"
