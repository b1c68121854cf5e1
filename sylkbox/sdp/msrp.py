"""MSRP media lines in SDP (RFC 4975 8, RFC 6135, RFC 4145; BLINK.md 4.1 and 7).

An MSRP chat stream is offered as::

    m=message 2855 TCP/TLS/MSRP *
    a=path:msrps://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp
    a=accept-types:message/cpim text/* image/* application/im-iscomposing+xml
    a=accept-wrapped-types:text/* image/* application/im-iscomposing+xml
    a=setup:active
    a=sendrecv

:func:`parse_msrp_media` reads such a line into :class:`MsrpMedia` (or says why it cannot be
used), :func:`connection_role` applies the connection model of SylkServer with Bonjour on
(BLINK.md 7, RFC 6135 4.2 and 5): a remote ``active`` makes us ``passive`` (we listen and match
the first SEND against the exact paths), a remote ``actpass`` or ``passive`` makes us ``active``
(we connect and bind with an empty SEND).  :func:`build_msrp_media` writes our answer line, the
way SylkServer writes it when it is the focus.

This module knows nothing about sockets: a path is text here (``sylkbox.msrp.uri`` parses it).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sylkbox.sdp.model import Direction, MediaDescription, SessionDescription

__all__ = [
    "CHATROOM_CAPABILITIES",
    "FOCUS_ACCEPT_TYPES",
    "FOCUS_ACCEPT_WRAPPED_TYPES",
    "MSRP_PROTOS",
    "MsrpMedia",
    "MsrpPolicy",
    "Setup",
    "build_msrp_media",
    "connection_role",
    "parse_msrp_media",
]

#: SDP transport protocols of MSRP (RFC 4975 8.1, RFC 4975 14.2 for TLS)
PROTO_TCP = "TCP/MSRP"
PROTO_TLS = "TCP/TLS/MSRP"
MSRP_PROTOS = frozenset({PROTO_TCP, PROTO_TLS})
#: What the focus accepts (SylkServer ChatStream, BLINK.md 4.1)
FOCUS_ACCEPT_TYPES = ("message/cpim",)
FOCUS_ACCEPT_WRAPPED_TYPES = ("*",)
#: The a=chatroom capabilities SylkServer's focus announces (BLINK.md 4.1)
CHATROOM_CAPABILITIES = (
    "nickname",
    "private-messages",
    "com.ag-projects.screen-sharing",
    "com.ag-projects.zrtp-sas",
)
_MAX_PATH_URIS = 16  # a relay chain longer than this is nonsense on a LAN


class Setup(enum.StrEnum):
    """``a=setup`` values (RFC 4145 4, used for MSRP by RFC 6135 4.1)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


@dataclass(frozen=True, slots=True, kw_only=True)
class MsrpPolicy:
    """Whether the focus takes MSRP streams, and over which transport (``[msrp] tls``)."""

    tls: bool = True

    @property
    def proto(self) -> str:
        return PROTO_TLS if self.tls else PROTO_TCP


@dataclass(frozen=True, slots=True, kw_only=True)
class MsrpMedia:
    """An MSRP ``m=message`` line as read from an offer.

    ``path`` is the ``a=path`` URIs in order (RFC 4975 8.2: the last one is the remote
    endpoint, the first the hop we connect to); ``setup`` is ``active`` when ``a=setup`` is
    absent (RFC 6135 4.1, BLINK.md 4.1).  ``file_selector`` is set for file transfer (RFC 5547).
    """

    tls: bool
    path: tuple[str, ...]
    accept_types: tuple[str, ...]
    accept_wrapped_types: tuple[str, ...]
    setup: Setup
    direction: Direction
    chatroom: tuple[str, ...] = ()
    file_selector: str | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("an MSRP media line needs a path")


def parse_msrp_media(sdp: SessionDescription, media: MediaDescription) -> MsrpMedia | str:
    """Read an ``m=message`` line; a ``str`` is the reason it cannot be used (RFC 4975 8)."""
    if media.media != "message":
        return f"media type {media.media} is not MSRP"
    if media.proto not in MSRP_PROTOS:
        return f"unsupported transport protocol {media.proto}"
    if media.formats != ["*"]:  # SylkServer wants exactly '*' (BLINK.md 4.1)
        return "MSRP format must be '*'"
    tls = media.proto == PROTO_TLS
    path_text = media.attribute("path")
    if not path_text:
        return "no a=path"
    path = tuple(path_text.split())
    if len(path) > _MAX_PATH_URIS:
        return "a=path has too many URIs"
    for uri in path:
        scheme, sep, rest = uri.partition("://")
        if not sep or scheme.lower() not in ("msrp", "msrps") or not rest:
            return f"bad MSRP URI in a=path: {uri[:80]!r}"
    if "/" not in path[-1].partition("://")[2]:  # relays (RFC 4976) have none, endpoints do
        return "the last a=path URI has no session-id"
    # RFC 4975 14.2 / BLINK.md 4.1: the endpoint's URI scheme follows the m-line transport
    if (path[-1].partition("://")[0].lower() == "msrps") != tls:
        return "a=path scheme does not match the m-line transport"
    accept = media.attribute("accept-types")
    if accept is None or not accept.split():
        return "no a=accept-types"  # mandatory, RFC 4975 8.6
    setup_text = (media.attribute("setup") or Setup.ACTIVE.value).strip().lower()
    try:
        setup = Setup(setup_text)
    except ValueError:
        return f"bad a=setup value {setup_text[:40]!r}"
    chatroom = media.attribute("chatroom")
    return MsrpMedia(
        tls=tls,
        path=path,
        accept_types=tuple(accept.split()),
        accept_wrapped_types=tuple((media.attribute("accept-wrapped-types") or "").split()),
        setup=setup,
        direction=sdp.direction_for(media),
        chatroom=tuple(chatroom.split()) if chatroom else (),
        file_selector=media.attribute("file-selector"),
    )


def connection_role(remote: Setup) -> Setup | None:
    """Our ``a=setup`` for a remote one (BLINK.md 7, SylkServer with Bonjour on): ``active``
    means we connect, ``passive`` that we listen; ``None`` for ``holdconn`` (RFC 4145 4:
    no connection now), which the focus rejects."""
    match remote:
        case Setup.ACTIVE:
            return Setup.PASSIVE
        case Setup.ACTPASS | Setup.PASSIVE:
            return Setup.ACTIVE
        case _:
            return None


def build_msrp_media(
    *,
    path: str,
    tls: bool,
    setup: Setup,
    accept_types: Sequence[str] = FOCUS_ACCEPT_TYPES,
    accept_wrapped_types: Sequence[str] = FOCUS_ACCEPT_WRAPPED_TYPES,
    chatroom: Sequence[str] = CHATROOM_CAPABILITIES,
    direction: Direction = Direction.SENDRECV,
) -> MediaDescription:
    """Our ``m=message`` line: port = the path's port (BLINK.md 7), format ``*``."""
    port = _path_port(path)
    media = MediaDescription(
        media="message", port=port, proto=PROTO_TLS if tls else PROTO_TCP, formats=["*"]
    )
    media.attributes.append(("path", path))
    media.attributes.append(("accept-types", " ".join(accept_types)))
    if accept_wrapped_types:
        media.attributes.append(("accept-wrapped-types", " ".join(accept_wrapped_types)))
    media.attributes.append(("setup", setup.value))
    if chatroom:
        media.attributes.append(("chatroom", " ".join(chatroom)))
    media.attributes.append((direction.value, None))
    return media


def _path_port(path: str) -> int:
    """The port of an ``msrp(s)://host[:port]/id;tcp`` URI (default 2855, RFC 4975 9)."""
    _, sep, rest = path.partition("://")
    authority = rest.split("/", 1)[0]
    if not sep or not authority:
        raise ValueError(f"bad MSRP path {path!r}")
    if authority.startswith("["):
        _, _, tail = authority.partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        _, _, port_text = authority.rpartition(":") if ":" in authority else ("", "", "")
    if not port_text:
        return 2855
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"bad port in MSRP path {path!r}")
    return int(port_text)
