"""MSRP URIs (RFC 4975 section 6 and 9; RFC 4976 relay URIs without a session-id).

``msrp[s]://[userinfo@]host[:port][/session-id];transport[;params]``. Equality follows RFC
4975 6.1: scheme and host compare case-insensitively, port (an absent port never equals a
present one), session-id byte for byte, transport case-insensitively; userinfo and other
parameters are not compared.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache

from sylkbox.msrp.errors import RemoteProtocolError

__all__ = ["DEFAULT_PORT", "MsrpUri", "new_session_id", "parse_path", "path_to_str"]

DEFAULT_PORT = 2855  # RFC 4975 section 15.4 (msrplib ConnectInfo.port, BLINK.md 7)

_URI_RE = re.compile(
    r"(?P<scheme>msrps?)://"
    r"(?:(?P<user>[^@/;\s]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<sid>[A-Za-z0-9\-._~+=/%]+))?"
    r";(?P<transport>[A-Za-z0-9]+)"
    r"(?P<params>(?:;[^;\s]+)*)",
    re.IGNORECASE,
)
_SID_RE = re.compile(r"[A-Za-z0-9\-._~+=/%]*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")


def new_session_id() -> str:
    """80 random bits as lower-case hex (BLINK.md 7, msrplib ``URI``; RFC 4975 14.1)."""
    return secrets.token_hex(10)


@dataclass(frozen=True, slots=True, eq=False)
class MsrpUri:
    """One MSRP URI. ``host`` is kept as written (IPv6 in brackets); ``session_id`` is empty
    for a relay URI (RFC 4976 5)."""

    secure: bool
    host: str
    port: int | None
    session_id: str
    transport: str = "tcp"
    user: str | None = None
    params: tuple[str, ...] = ()
    _text: str = field(init=False, repr=False)
    _key: tuple[bool, str, int | None, str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("MSRP URI without a host")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"bad port {self.port}")
        if not _SID_RE.fullmatch(self.session_id):
            raise ValueError(f"bad session-id {self.session_id!r}")
        if not _TOKEN_RE.fullmatch(self.transport):
            raise ValueError(f"bad transport {self.transport!r}")
        text = ["msrps://" if self.secure else "msrp://"]
        if self.user is not None:
            text.append(f"{self.user}@")
        text.append(self.host)
        if self.port is not None:
            text.append(f":{self.port}")
        if self.session_id:
            text.append(f"/{self.session_id}")
        text.append(f";{self.transport}")
        text.extend(f";{p}" for p in self.params)
        object.__setattr__(self, "_text", "".join(text))
        object.__setattr__(
            self,
            "_key",
            (self.secure, self.host.lower(), self.port, self.session_id, self.transport.lower()),
        )

    @staticmethod
    def parse(text: str) -> MsrpUri:
        """Parse one URI; raises `RemoteProtocolError` (400). Results are cached."""
        return _parse_uri(text)

    def __str__(self) -> str:
        return self._text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MsrpUri):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def scheme(self) -> str:
        return "msrps" if self.secure else "msrp"

    @property
    def address(self) -> tuple[str, int]:
        """(host without brackets, port or 2855) to connect to."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port if self.port is not None else DEFAULT_PORT


@lru_cache(maxsize=4096)
def _parse_uri(text: str) -> MsrpUri:
    m = _URI_RE.fullmatch(text.strip())
    if m is None:
        raise RemoteProtocolError(f"Bad MSRP URI {text[:80]!r}")
    port = m.group("port")
    params = m.group("params")
    try:
        return MsrpUri(
            secure=m.group("scheme").lower() == "msrps",
            host=m.group("host"),
            port=int(port) if port is not None else None,
            session_id=m.group("sid") or "",
            transport=m.group("transport"),
            user=m.group("user"),
            params=tuple(params[1:].split(";")) if params else (),
        )
    except ValueError as exc:
        raise RemoteProtocolError(f"Bad MSRP URI {text[:80]!r}: {exc}") from None


@lru_cache(maxsize=4096)
def parse_path(text: str) -> tuple[MsrpUri, ...]:
    """Parse a To-Path/From-Path value: one or more URIs separated by spaces (RFC 4975 9,
    RFC 4976 relays). Raises `RemoteProtocolError` (400)."""
    parts = text.split()
    if not parts:
        raise RemoteProtocolError("Empty MSRP path")
    return tuple(_parse_uri(p) for p in parts)


def path_to_str(path: tuple[MsrpUri, ...]) -> str:
    """Serialize a path (URIs separated by one space)."""
    return " ".join(u._text for u in path)
