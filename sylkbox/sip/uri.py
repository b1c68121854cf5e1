"""SIP and SIPS URIs (RFC 3261 section 19.1, ABNF in section 25.1; IPv6 per RFC 5118).

`SipUri` keeps every component as written on the wire (escapes included) so that
serialization is exact; comparison (`uri_equal`, RFC 3261 19.1.4) unescapes.
URIs of other schemes (``tel:``, ``http:``...) are kept opaque.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote

from sylkbox.sip.errors import RemoteProtocolError

__all__ = ["Address", "SipUri", "uri_equal"]

Address = tuple[str, int]

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()%")
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/")
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,")
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$")
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$")
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_OPAQUE_FORBIDDEN = frozenset(' \t\r\n<>"') | frozenset(chr(c) for c in range(32)) | {"\x7f"}
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3261 19.1.4: these URI parameters must match even when present on one side only.
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def _check(text: str, allowed: frozenset[str], what: str) -> str:
    if not allowed.issuperset(text) or ("%" in text and _BAD_ESCAPE_RE.search(text)):
        raise RemoteProtocolError(f"Bad URI {what}")
    return text


def _check_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise RemoteProtocolError("Bad URI host")
        address = host[1:-1]
        if ":::" in address:  # RFC 3261 ABNF bug, tolerated per RFC 5118 4.10
            address = address.replace(":::", "::", 1)
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise RemoteProtocolError("Bad IPv6 reference") from None
        return host
    if not host or not _HOST_CHARS.issuperset(host):
        raise RemoteProtocolError("Bad URI host")
    return host


def _parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise RemoteProtocolError("Bad URI port")
    return int(text)


def _split_host_port(hostport: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` where host may be an IPv6 reference (RFC 5118 section 4.4)."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise RemoteProtocolError("Bad IPv6 reference")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise RemoteProtocolError("Bad URI host")
        return host, _parse_port(rest[1:])
    host, colon, port = hostport.partition(":")
    return host, _parse_port(port) if colon else None


@dataclass(frozen=True, slots=True)
class SipUri:
    """A URI as in RFC 3261 19.1.1: ``sip:user:password@host:port;params?headers``."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str = ""  # everything after ``scheme:`` for schemes other than sip/sips

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; raises `RemoteProtocolError` (400) when it is malformed."""
        return _parse_uri(text)

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    def __str__(self) -> str:
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += (":", self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            out.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)

    def param(self, name: str) -> str | None:
        """Value of a URI parameter (as written); `None` when absent or valueless."""
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value
        return None

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(key.lower() == name for key, _ in self.params)

    def with_params(self, **changes: str | int | None) -> SipUri:
        """Set parameters (``lr=None`` adds a flag); underscores in names become dashes."""
        return replace(self, params=_set_params(self.params, changes))

    def without_params(self, *names: str) -> SipUri:
        drop = {n.lower() for n in names}
        return replace(self, params=tuple(p for p in self.params if p[0].lower() not in drop))

    @property
    def transport(self) -> str:
        """Lower-case transport: the ``transport`` parameter, else udp (sip) or tls (sips)."""
        value = self.param("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    @property
    def user_host(self) -> str:
        host = self.host.lower()
        return host if self.user is None else f"{self.user}@{host}"

    @property
    def host_port(self) -> Address:
        """(host without brackets, port) with the default port 5060, or 5061 for TLS."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        if self.port is not None:
            return host, self.port
        return host, 5061 if self.transport == "tls" else 5060


def _set_params(
    params: tuple[tuple[str, str | None], ...], changes: dict[str, str | int | None]
) -> tuple[tuple[str, str | None], ...]:
    """Replace parameters in place (keeping order) and append the new ones."""
    result = list(params)
    for raw_name, raw_value in changes.items():
        name = raw_name.replace("_", "-")
        value = None if raw_value is None else str(raw_value)
        for i, (key, _) in enumerate(result):
            if key.lower() == name.lower():
                result[i] = (key, value)
                break
        else:
            result.append((name, value))
    return tuple(result)


@lru_cache(maxsize=4096)
def _parse_uri(text: str) -> SipUri:
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise RemoteProtocolError("Bad URI scheme")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if not rest or not _OPAQUE_FORBIDDEN.isdisjoint(rest):
            raise RemoteProtocolError("Bad URI")
        return SipUri(scheme=scheme, opaque=rest)
    user = password = None
    at = rest.find("@")
    if at >= 0:
        user, colon, pw = rest[:at].partition(":")
        _check(user, _USER_CHARS, "user")
        if not user:
            raise RemoteProtocolError("Bad URI user")
        if colon:
            password = _check(pw, _PASSWORD_CHARS, "password")
        rest = rest[at + 1 :]
    rest, question, header_text = rest.partition("?")
    hostport, *param_texts = rest.split(";")
    host, port = _split_host_port(hostport)
    params: list[tuple[str, str | None]] = []
    for item in param_texts:
        name, eq, value = item.partition("=")
        if not name or (eq and not value):
            raise RemoteProtocolError("Bad URI parameter")
        _check(name + value, _PARAM_CHARS, "parameter")
        params.append((name, value if eq else None))
    headers: list[tuple[str, str]] = []
    if question:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise RemoteProtocolError("Bad URI header")
            _check(name + value, _HEADER_CHARS, "header")
            headers.append((name, value))
    return SipUri(scheme, user, password, _check_host(host), port, tuple(params), tuple(headers))


def _unescape(text: str | None) -> str | None:
    return None if text is None else unquote(text, errors="surrogateescape")


def uri_equal(a: SipUri, b: SipUri) -> bool:
    """URI comparison of RFC 3261 section 19.1.4."""
    if a.scheme != b.scheme:
        return False
    if not a.is_sip:
        return a.opaque == b.opaque
    if (
        _unescape(a.user) != _unescape(b.user)
        or _unescape(a.password) != _unescape(b.password)
        or a.host.lower() != b.host.lower()
        or a.port != b.port
    ):
        return False
    pa = {k.lower(): (_unescape(v) or "").lower() for k, v in a.params}
    pb = {k.lower(): (_unescape(v) or "").lower() for k, v in b.params}
    for name in pa.keys() | pb.keys():
        both = name in pa and name in pb
        if (both and pa[name] != pb[name]) or (not both and name in _STRICT_PARAMS):
            return False
    ha = {(k.lower(), _unescape(v)) for k, v in a.headers}
    hb = {(k.lower(), _unescape(v)) for k, v in b.headers}
    return ha == hb
