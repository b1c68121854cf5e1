"""File transfer SDP attributes (RFC 5547): ``a=file-selector``, ``a=file-transfer-id``,
``a=x-file-offset``, and a display-safe form of an offered file name.

RFC 5547 section 6::

    file-selector-attr = "file-selector" [":" selector *(SP selector)]
    selector           = filename-selector / filesize-selector / filetype-selector / hash-selector
    filename-selector  = "name:" DQUOTE filename-string DQUOTE
    filesize-selector  = "size:" filesize-value
    filetype-selector  = "type:" type "/" subtype *(";" ft-parameter)
    hash-selector      = "hash:" hash-algorithm ":" hash-value      ; 2HEX *(":" 2HEX)

The file name is UTF-8; NUL, CR, LF, the double quote and ``%`` are percent-encoded in it (section
6).  Blink writes ``name:"<basename>" type:<mime> size:<n> hash:sha-1:XX:...:XX`` with 20
upper-case hex pairs and also reads a ``sha1:`` prefix (BLINK.md 5); a pull request carries only
``name`` and ``hash``.  The values here are the attribute *values* (what follows
``file-selector:``), as :mod:`sylkbox.sdp` holds them; raw bytes that :mod:`sylkbox.sdp` kept as
surrogate escapes are accepted.

The offered name is never used as a path (ARCHITECTURE.md: files are stored by hash); it is only
shown, after :func:`safe_display_name`.  The only error raised is :class:`FileSelectorError`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass

from sylkbox.msrp.errors import RemoteProtocolError

__all__ = [
    "FILE_SELECTOR",
    "FILE_TRANSFER_ID",
    "X_FILE_OFFSET",
    "FileSelector",
    "FileSelectorError",
    "file_attributes",
    "format_hash",
    "new_file_transfer_id",
    "parse",
    "parse_file_transfer_id",
    "parse_hash",
    "safe_display_name",
]

logger = logging.getLogger(__name__)

FILE_SELECTOR = "file-selector"
FILE_TRANSFER_ID = "file-transfer-id"
X_FILE_OFFSET = "x-file-offset"
SHA1_SIZE = 20
MAX_SELECTOR_LENGTH = 8192
MAX_FILE_SIZE = 2**63 - 1

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TYPE_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(;[^\s;]+)*")
_HASH_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
_PERCENT_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_NAME_ESCAPED = frozenset(b'\x00\r\n"%')


class FileSelectorError(RemoteProtocolError, ValueError):
    """A file-selector (or file-transfer-id) that cannot be accepted."""


# -- hash (RFC 5547 6, hash-selector) --------------------------------------------------------------


def format_hash(digest: bytes) -> str:
    """``sha-1:AB:CD:...`` for a 20-byte SHA-1 digest (as in the SDP and in conference-info)."""
    if len(digest) != SHA1_SIZE:
        raise FileSelectorError("a SHA-1 digest is 20 bytes")
    return "sha-1:" + ":".join(f"{byte:02X}" for byte in digest)


def parse_hash(text: str) -> bytes:
    """The digest of ``sha-1:XX:...`` (also ``sha1:``, any hex case); only SHA-1 is known."""
    algorithm, colon, value = text.strip().partition(":")
    if not colon or algorithm.lower() not in ("sha-1", "sha1"):
        raise FileSelectorError(f"unsupported hash {text[:40]!r} (only sha-1)")
    if not _HASH_RE.fullmatch(value):
        raise FileSelectorError(f"malformed hash value {value[:80]!r}")
    digest = bytes.fromhex(value.replace(":", ""))
    if len(digest) != SHA1_SIZE:
        raise FileSelectorError(f"a sha-1 hash has 20 bytes, not {len(digest)}")
    return digest


# -- file name (RFC 5547 6, filename-string) ------------------------------------------------------


def _to_raw(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _encode_name(name: str) -> str:
    raw = _to_raw(name)
    out = bytearray()
    for byte in raw:
        if byte in _NAME_ESCAPED:
            out += b"%%%02X" % byte
        else:
            out.append(byte)
    return bytes(out).decode("utf-8", "surrogateescape")


def _decode_name(text: str) -> str:
    raw = _PERCENT_RE.sub(lambda m: bytes((int(m.group(1), 16),)), _to_raw(text))
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSelector:
    """The selectors of one ``a=file-selector`` (RFC 5547 5); each may be absent.

    ``name`` is decoded (percent-escapes undone, bytes that are not UTF-8 replaced by U+FFFD);
    ``hash`` is the 20-byte SHA-1 digest.
    """

    name: str | None = None
    type: str | None = None
    size: int | None = None
    hash: bytes | None = None

    def __post_init__(self) -> None:
        if self.size is not None and not 0 <= self.size <= MAX_FILE_SIZE:
            raise FileSelectorError(f"invalid size {self.size!r}")
        if self.hash is not None and len(self.hash) != SHA1_SIZE:
            raise FileSelectorError("a sha-1 hash has 20 bytes")
        if self.type is not None and not _TYPE_RE.fullmatch(self.type):
            raise FileSelectorError(f"invalid type {self.type[:80]!r}")

    @property
    def hash_text(self) -> str | None:
        """``sha-1:XX:...`` or ``None``."""
        return format_hash(self.hash) if self.hash is not None else None

    @property
    def display_name(self) -> str:
        """The name made harmless for display (:func:`safe_display_name`)."""
        return safe_display_name(self.name or "")

    def __str__(self) -> str:
        """The attribute value in Blink's order: name, type, size, hash."""
        parts: list[str] = []
        if self.name is not None:
            parts.append(f'name:"{_encode_name(self.name)}"')
        if self.type is not None:
            parts.append(f"type:{self.type}")
        if self.size is not None:
            parts.append(f"size:{self.size}")
        if self.hash is not None:
            parts.append(f"hash:{format_hash(self.hash)}")
        return " ".join(parts)

    def matches(self, other: FileSelector) -> bool:
        """RFC 5547 5: every selector present in ``self`` equals the one in ``other``."""
        return all(
            mine is None or mine == theirs
            for mine, theirs in (
                (self.name, other.name),
                (self.type, other.type),
                (self.size, other.size),
                (self.hash, other.hash),
            )
        )


def parse(value: str) -> FileSelector:
    """Parse an ``a=file-selector`` value; unknown selectors are ignored (RFC 5547 6 extension)."""
    text = value.strip()
    for prefix in ("a=file-selector:", "file-selector:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if len(text) > MAX_SELECTOR_LENGTH:
        raise FileSelectorError("file-selector too long")
    fields: dict[str, str] = {}
    pos = 0
    length = len(text)
    while pos < length:
        if text[pos] == " ":
            pos += 1
            continue
        if text.startswith("name:", pos):
            if not text.startswith('name:"', pos):
                raise FileSelectorError("file name is not quoted")
            close = text.find('"', pos + 6)
            if close < 0:
                raise FileSelectorError("unterminated file name")
            key, raw = "name", text[pos + 6 : close]
            pos = close + 1
            if pos < length and text[pos] != " ":
                raise FileSelectorError("junk after the quoted file name")
        else:
            end = text.find(" ", pos)
            end = length if end < 0 else end
            key, colon, raw = text[pos:end].partition(":")
            pos = end
            if not colon:
                raise FileSelectorError(f"selector without a colon: {key[:40]!r}")
        if key in fields:
            raise FileSelectorError(f"duplicate {key} selector")
        fields[key] = raw

    size: int | None = None
    if "size" in fields:
        raw_size = fields["size"]
        if not raw_size.isascii() or not raw_size.isdigit() or len(raw_size) > 19:
            raise FileSelectorError(f"invalid size {raw_size[:40]!r}")
        size = int(raw_size)
    type_ = fields.get("type")
    if type_ is not None and not _TYPE_RE.fullmatch(type_):
        raise FileSelectorError(f"invalid type {type_[:80]!r}")
    return FileSelector(
        name=_decode_name(fields["name"]) if "name" in fields else None,
        type=type_,
        size=size,
        hash=parse_hash(fields["hash"]) if "hash" in fields else None,
    )


# -- file-transfer-id (RFC 5547 8) and x-file-offset (sipsimple) ----------------------------------


def new_file_transfer_id() -> str:
    """A fresh ``a=file-transfer-id`` value (Blink uses a UUID4)."""
    return str(uuid.uuid4())


def parse_file_transfer_id(value: str) -> str:
    """Check an ``a=file-transfer-id`` value: a token (RFC 5547 6), at most 256 characters."""
    text = value.strip()
    if not text or len(text) > 256 or not _TOKEN_RE.fullmatch(text):
        raise FileSelectorError(f"invalid file-transfer-id {text[:40]!r}")
    return text


def file_attributes(
    selector: FileSelector, *, transfer_id: str | None = None, file_offset: bool = False
) -> list[tuple[str, str | None]]:
    """The media-level attributes of a file transfer stream, as :mod:`sylkbox.sdp` holds them:
    ``file-selector``, then ``x-file-offset`` (a flag) and ``file-transfer-id``."""
    attributes: list[tuple[str, str | None]] = [(FILE_SELECTOR, str(selector))]
    if file_offset:
        attributes.append((X_FILE_OFFSET, None))
    if transfer_id is not None:
        attributes.append((FILE_TRANSFER_ID, parse_file_transfer_id(transfer_id)))
    return attributes


# -- display ---------------------------------------------------------------------------------------

_FALLBACK_NAME = "file"


def safe_display_name(name: str | bytes, *, max_length: int = 128) -> str:
    """A harmless string to *show* for an offered file name (never a path).

    Bytes that are not UTF-8 (and lone surrogates) become U+FFFD; only the last path component is
    kept (``/`` and ``\\``); control, format (bidi overrides) and separator characters are
    dropped or turned into spaces; whitespace is collapsed; ``.``/``..``/empty become ``file``;
    long names are cut to ``max_length`` characters keeping a short extension.
    """
    if isinstance(name, bytes | bytearray):
        text = bytes(name).decode("utf-8", "replace")
    else:
        text = _to_raw(name).decode("utf-8", "replace")
    text = unicodedata.normalize("NFC", text)
    cleaned: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp") or char.isspace():
            cleaned.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn"):
            continue
        else:
            cleaned.append(char)
    text = "".join(cleaned).replace("\\", "/")
    text = text.rsplit("/", 1)[-1]
    text = " ".join(text.split())
    if text in ("", ".", ".."):
        return _FALLBACK_NAME
    max_length = max(max_length, 16)
    if len(text) > max_length:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= 10:
            text = text[: max_length - len(ext) - 2].rstrip() + "\u2026." + ext
        else:
            text = text[: max_length - 1].rstrip() + "\u2026"
    return text
