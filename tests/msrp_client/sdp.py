"""SDP for MSRP media lines as Blink's sipsimple writes them (BLINK.md 4.1, 5, 7).

sipsimple `MSRPStreamBase._create_local_media`: `m=message <path port> TCP/TLS/MSRP *` (`TCP/MSRP`
without TLS), a media-level `c=` line with the path host, then `a=path`, the direction only when
it is not sendrecv, `a=accept-types`, `a=accept-wrapped-types`, `a=setup`; file transfer streams
add `a=file-selector`, `a=x-file-offset` and `a=file-transfer-id` (RFC 4975 section 8.1, RFC 4145,
RFC 5547, RFC 6135).
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.msrp_client.wire import parse_uri

__all__ = [
    "BLINK_CHAT_ACCEPT_TYPES",
    "BLINK_CHAT_WRAPPED_TYPES",
    "SYLK_CHAT_ACCEPT_TYPES",
    "SYLK_CHAT_WRAPPED_TYPES",
    "file_selector",
    "sdp_body",
    "sdp_media",
]

BLINK_CHAT_ACCEPT_TYPES = ("message/cpim", "text/*", "image/*", "application/im-iscomposing+xml")
BLINK_CHAT_WRAPPED_TYPES = ("text/*", "image/*", "application/im-iscomposing+xml")
SYLK_CHAT_ACCEPT_TYPES = ("message/cpim",)
SYLK_CHAT_WRAPPED_TYPES = ("*",)


def file_selector(name: str, content_type: str, size: int, sha1_hex: str) -> str:
    """RFC 5547 file-selector with the hash as 20 upper-case hex pairs (BLINK.md 5)."""
    pairs = ":".join(sha1_hex.upper()[i:i + 2] for i in range(0, 40, 2))
    return f'name:"{name}" type:{content_type} size:{size} hash:sha-1:{pairs}'


def sdp_media(
    path: Sequence[str] | str,
    *,
    setup: str | None = "active",
    direction: str | None = None,
    accept_types: Sequence[str] = BLINK_CHAT_ACCEPT_TYPES,
    accept_wrapped_types: Sequence[str] | None = BLINK_CHAT_WRAPPED_TYPES,
    extra: Sequence[tuple[str, str | None]] = (),
) -> str:
    """One `m=message` section (CRLF line ends). The port and the c= address come from the
    last path URI (the local one); its scheme picks TCP/TLS/MSRP or TCP/MSRP."""
    uris = path.split() if isinstance(path, str) else list(path)
    own = parse_uri(uris[-1])
    proto = "TCP/TLS/MSRP" if own.tls else "TCP/MSRP"
    family = "IP6" if ":" in own.host else "IP4"
    lines = [
        f"m=message {own.port or 2855} {proto} *",
        f"c=IN {family} {own.host}",
        f"a=path:{' '.join(uris)}",
    ]
    if direction not in (None, "sendrecv"):
        lines.append(f"a={direction}")
    lines.append(f"a=accept-types:{' '.join(accept_types)}")
    if accept_wrapped_types is not None:
        lines.append(f"a=accept-wrapped-types:{' '.join(accept_wrapped_types)}")
    lines.append(f"a=setup:{setup}" if setup else "a=setup")
    lines += [f"a={name}:{value}" if value else f"a={name}" for name, value in extra]
    return "".join(line + "\r\n" for line in lines)


def sdp_body(media: Sequence[str] | str, *, host: str = "127.0.0.1", session_id: int = 1) -> str:
    """A whole SDP (RFC 4566) around one or more media sections from `sdp_media`."""
    sections = [media] if isinstance(media, str) else list(media)
    family = "IP6" if ":" in host else "IP4"
    return (
        "v=0\r\n"
        f"o=- {session_id} {session_id} IN {family} {host}\r\n"
        "s=-\r\n"
        f"c=IN {family} {host}\r\n"
        "t=0 0\r\n" + "".join(sections)
    )
