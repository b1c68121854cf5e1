"""SIP header fields (RFC 3261 sections 7.3 and 20, ABNF in 25.1).

`Headers` is an ordered multi-map of raw values with canonical names (compact forms of
RFC 3261 7.3.3 expanded). Structured values (`NameAddr`, `Via`, `CSeq`) are decoded on demand
by their `parse` class methods, which are cached, and serialize symmetrically with `str()`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.uri import SipUri, _set_params

__all__ = [
    "CSeq",
    "Headers",
    "NameAddr",
    "Params",
    "Via",
    "canonical_name",
    "split_list",
]

Params = tuple[tuple[str, str | None], ...]

TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
_PARAM_VALUE_CHARS = TOKEN_CHARS | frozenset(":[]")  # token / host (IPv6 received, RFC 5118 4.5)
_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_VIA_RE = re.compile(
    rf"({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*"
)
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]+)[ \t]+({_TOKEN})[ \t]*")

COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject",
    "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}  # fmt: skip
_KNOWN = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization",
    "P-Asserted-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-Sub",
    "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition",
    "Require", "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires",
    "Subject", "Subscription-State", "Supported", "Target-Dialog", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in _KNOWN} | COMPACT_FORMS
# Header fields whose values are comma-separated lists (RFC 3261 7.3.1).
LIST_HEADERS = frozenset((
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
    "In-Reply-To", "Path", "Proxy-Require", "Record-Route", "Reject-Contact", "Require", "Route",
    "Service-Route", "Supported", "Unsupported", "Via", "Warning",
))  # fmt: skip


@lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``; unknown names are kept as written."""
    return _CANONICAL.get(name.lower(), name)


def _quoted_end(text: str, start: int) -> int:
    """Index just past the quoted-string opening at ``text[start]`` (RFC 3261 25.1)."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        if char in "\r\n":
            break
        i += 1
    raise RemoteProtocolError("Unterminated quoted string")


def _split_outside(text: str, sep: str, angle: bool) -> list[str]:
    """Split on ``sep`` outside quoted strings (and ``<...>`` when `angle`)."""
    parts, start, i, depth = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _quoted_end(text, i)
            continue
        if angle and char == "<":
            depth += 1
        elif angle and char == ">":
            depth = max(depth - 1, 0)
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_list(value: str) -> list[str]:
    """Split a list header value on commas outside quotes and angle brackets."""
    if "," not in value:
        return [value.strip(" \t")]
    return [part.strip(" \t") for part in _split_outside(value, ",", angle=True)]


def parse_params(text: str) -> Params:
    """Parse ``;name=value;flag`` (generic-param, RFC 3261 25.1), LWS allowed around tokens."""
    text = text.strip(" \t")
    if not text:
        return ()
    if text[0] != ";":
        raise RemoteProtocolError("Bad header parameters")
    params: list[tuple[str, str | None]] = []
    for item in _split_outside(text[1:], ";", angle=False):
        name, eq, value = item.partition("=")
        name, value = name.strip(" \t"), value.strip(" \t")
        if not name or not TOKEN_CHARS.issuperset(name):
            raise RemoteProtocolError("Bad header parameter")
        if not eq:
            params.append((name, None))
            continue
        if value.startswith('"'):
            if _quoted_end(value, 0) != len(value):
                raise RemoteProtocolError("Bad header parameter")
        elif not value or not _PARAM_VALUE_CHARS.issuperset(value):
            raise RemoteProtocolError("Bad header parameter")
        params.append((name, value))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def _find_param(params: Params, name: str) -> str | None:
    name = name.lower()
    for key, value in params:
        if key.lower() == name:
            return value
    return None


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``name-addr`` or ``addr-spec`` with header parameters (RFC 3261 20.10, 20.20, 20.39).

    `display_name` is decoded (quotes and quoted-pairs removed); `str()` always writes the
    ``"display" <uri>;params`` form, which is valid for every header that takes either form.
    """

    display_name: str | None
    uri: SipUri
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        return _parse_name_addr(text)

    def __str__(self) -> str:
        name = "" if self.display_name is None else _quote(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return _find_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=_set_params(self.params, {"tag": tag}))

    def with_params(self, **changes: str | int | None) -> NameAddr:
        return replace(self, params=_set_params(self.params, changes))


@lru_cache(maxsize=4096)
def _parse_name_addr(text: str) -> NameAddr:
    text = text.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        end = _quoted_end(text, 0)
        display, rest = _unquote(text[:end]), text[end:].lstrip(" \t")
        if not rest.startswith("<"):
            raise RemoteProtocolError("Bad name-addr")
    elif "<" in text:
        lt = text.index("<")
        words = text[:lt].split()
        if not all(TOKEN_CHARS.issuperset(word) for word in words):
            raise RemoteProtocolError("Bad display name")
        display, rest = " ".join(words) or None, text[lt:]
    else:  # addr-spec: the URI ends at the first ';' (RFC 3261 20.10)
        uri_text, semi, param_text = text.partition(";")
        uri_text = uri_text.rstrip(" \t")
        if not uri_text or not uri_text.isprintable() or any(c in uri_text for c in ' ?,<>"'):
            raise RemoteProtocolError("Bad addr-spec")
        return NameAddr(None, SipUri.parse(uri_text), parse_params(semi + param_text))
    gt = rest.find(">")
    uri_text = rest[1:gt]
    if gt < 0 or not uri_text or any(c in uri_text for c in " \t<"):
        raise RemoteProtocolError("Bad name-addr")
    return NameAddr(display, SipUri.parse(uri_text), parse_params(rest[gt + 1 :]))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 20.42, rport of RFC 3581, IPv6 sent-by and received of RFC 5118).

    `rport` is `None` when absent, ``-1`` when present without a value.
    """

    protocol: str
    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        return _parse_via(text)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return _find_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key, _ in self.params)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | None:
        if not self.has_param("rport"):
            return None
        value = self.param("rport")
        return -1 if value is None else int(value)

    def with_params(self, **changes: str | int | None) -> Via:
        return replace(self, params=_set_params(self.params, changes))


@lru_cache(maxsize=4096)
def _parse_via(text: str) -> Via:
    head, semi, param_text = text.partition(";")
    match = _VIA_RE.fullmatch(head.strip(" \t"))
    if match is None:
        raise RemoteProtocolError("Bad Via header")
    name, version, transport, host, port = match.groups()
    if host.startswith("["):
        SipUri.parse(f"sip:{host}")  # validates the IPv6 reference
    if port is not None and int(port) > 65535:
        raise RemoteProtocolError("Bad Via header")
    params = parse_params(semi + param_text)
    rport = _find_param(params, "rport")
    if rport is not None and (not rport.isdigit() or int(rport) > 65535):
        raise RemoteProtocolError("Bad Via rport")
    return Via(
        f"{name.upper()}/{version}", transport.upper(), host,
        None if port is None else int(port), params,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CSeq:
    """CSeq (RFC 3261 20.16): sequence number below 2**31 and method."""

    seq: int
    method: str

    def __post_init__(self) -> None:
        if not 0 <= self.seq < 2**31 or not self.method or not TOKEN_CHARS.issuperset(self.method):
            raise RemoteProtocolError("Bad CSeq header")

    @classmethod
    def parse(cls, text: str) -> CSeq:
        match = _CSEQ_RE.fullmatch(text)
        if match is None or len(match[1]) > 12:
            raise RemoteProtocolError("Bad CSeq header")
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


class Headers:
    """Ordered multi-map of header fields with case-insensitive, canonical names."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in fields]

    def add(self, name: str, value: str) -> None:
        self._fields.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Add a field before all others (a proxy or UAC's own Via, RFC 3261 8.1.1.7)."""
        self._fields.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` by `value`, at the place of the first one."""
        name = canonical_name(name)
        key = name.lower()
        index = next((i for i, (n, _) in enumerate(self._fields) if n.lower() == key), None)
        self.remove(name)
        self._fields.insert(len(self._fields) if index is None else index, (name, value))

    def get(self, name: str) -> str | None:
        key = canonical_name(name).lower()
        return next((v for n, v in self._fields if n.lower() == key), None)

    def get_all(self, name: str) -> list[str]:
        """Every value, list headers (Via, Contact, Route...) split on commas."""
        name = canonical_name(name)
        key = name.lower()
        values = [v for n, v in self._fields if n.lower() == key]
        if name not in LIST_HEADERS:
            return values
        return [item for value in values for item in split_list(value) if item]

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def copy(self) -> Headers:
        return Headers(self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"
