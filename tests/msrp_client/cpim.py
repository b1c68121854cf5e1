"""CPIM (RFC 3862) built and parsed the way Blink's sipsimple does it (BLINK.md 4.2).

Written independently of `sylkbox.msrp.cpim`. Layout of a Blink message::

    From: Alice <sip:alice@192.168.1.20>CRLF
    To: <sip:room@192.168.1.10>CRLF
    DateTime: 2026-01-15T10:20:30.123456+00:00CRLF
    CRLF
    MIME-Version: 1.0LF
    Content-Type: text/plain; charset="utf8"LF
    LF
    hello

The CPIM header block uses CRLF and ends with CRLF CRLF; the MIME part comes from Python's
`email` module (`Message.set_type` adds `MIME-Version: 1.0`) and so uses bare LF.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "AGP_NAMESPACE",
    "STANDARD_NAMESPACE",
    "CpimError",
    "CpimMessage",
    "build_cpim",
    "iscomposing_xml",
    "parse_cpim",
    "parse_identity",
]

STANDARD_NAMESPACE = "urn:ietf:params:cpim-headers:"
AGP_NAMESPACE = "urn:ag-projects:xml:ns:cpim"
"""SylkServer's namespace for `agp.Message-Type: status` (BLINK.md 4.2)."""

_HEADER = re.compile(r"^(?:([^:.\s]+)\.)?([^:\s]+):\s*(.*)$")
_IDENTITY = re.compile(r'^(?:"?(?P<display>[^<]*[^"\s])"?)?\s*<(?P<uri>sips?:[^>]+)>$')
_NS = re.compile(r"^(?:(\S+) ?)?<(.*)>$")


class CpimError(ValueError):
    pass


def parse_identity(value: str) -> tuple[str | None, str]:
    """`Display <sip:u@h>` or `<sip:u@h>` -> (display name or None, uri)."""
    match = _IDENTITY.match(value.strip())
    if match is None:
        raise CpimError(f"bad identity {value!r}")
    return match.group("display"), match.group("uri")


def format_identity(uri: str, display_name: str | None = None) -> str:
    """sipsimple `ChatIdentity.__str__`: no quotes around the display name."""
    return f"{display_name} <{uri}>" if display_name else f"<{uri}>"


def now_timestamp() -> str:
    """ISO 8601 with microseconds and an offset, as sipsimple `ISOTimestamp` prints."""
    return _dt.datetime.now(_dt.UTC).isoformat()


@dataclass(slots=True)
class CpimMessage:
    sender: str | None
    recipients: list[str]
    content_type: str
    body: bytes
    charset: str | None = None
    cc: list[str] = field(default_factory=list)
    subject: str | None = None
    datetime: str | None = None
    required: list[str] = field(default_factory=list)
    ns_headers: list[tuple[str, str, str]] = field(default_factory=list)
    """Extension headers as (namespace URI, name, value)."""
    mime_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", "replace")

    @property
    def sender_uri(self) -> str | None:
        return parse_identity(self.sender)[1] if self.sender else None

    @property
    def sender_display(self) -> str | None:
        return parse_identity(self.sender)[0] if self.sender else None

    @property
    def recipient_uris(self) -> list[str]:
        return [parse_identity(r)[1] for r in self.recipients]

    def ns(self, namespace: str, name: str) -> str | None:
        for uri, key, value in self.ns_headers:
            if uri == namespace and key == name:
                return value
        return None

    @property
    def is_status(self) -> bool:
        return self.ns(AGP_NAMESPACE, "Message-Type") == "status"


def build_cpim(
    body: bytes | str,
    *,
    sender: str | None,
    recipients: Sequence[str] = (),
    content_type: str = "text/plain",
    charset: str | None = None,
    cc: Sequence[str] = (),
    subject: str | None = None,
    datetime: str | None = None,
    required: Sequence[str] = (),
    ns_headers: Sequence[tuple[str, str, str, str]] = (),
) -> bytes:
    """sipsimple `CPIMPayload.encode`. `ns_headers` items are (prefix, namespace, name, value);
    each namespace is declared once with `NS: prefix <uri>` before its first header.
    A `str` body is UTF-8 encoded with `charset="utf8"` unless a charset is given."""
    if isinstance(body, str):
        body = body.encode("utf-8")
        charset = charset or "utf8"
    lines: list[str] = []
    if sender is not None:
        lines.append(f"From: {sender}")
    lines += [f"To: {r}" for r in recipients]
    lines += [f"cc: {r}" for r in cc]
    if subject is not None:
        lines.append(f"Subject: {subject}")
    if datetime is not None:
        lines.append(f"DateTime: {datetime}")
    if required:
        lines.append(f"Required: {','.join(required)}")
    declared: dict[str, str] = {"": STANDARD_NAMESPACE}
    for prefix, namespace, name, value in ns_headers:
        if declared.get(prefix) != namespace:
            lines.append(f"NS: {prefix} <{namespace}>" if prefix else f"NS: <{namespace}>")
            declared[prefix] = namespace
        lines.append(f"{prefix}.{name}: {value}" if prefix else f"{name}: {value}")
    mime_type = content_type + (f'; charset="{charset}"' if charset else "")
    mime = f"MIME-Version: 1.0\nContent-Type: {mime_type}\n\n".encode()
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + mime + body


def parse_cpim(data: bytes) -> CpimMessage:
    """Lenient parse in sipsimple's manner: split on the first CRLF CRLF (mandatory); the MIME
    part may use LF or CRLF line ends; unknown namespace prefixes are ignored."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise CpimError("no CRLF CRLF after the CPIM headers")
    namespaces = {"": STANDARD_NAMESPACE}
    message = CpimMessage(sender=None, recipients=[], content_type="", body=b"")
    for raw in head.decode("utf-8").split("\r\n"):
        match = _HEADER.match(raw)
        if match is None:
            raise CpimError(f"bad CPIM header {raw!r}")
        prefix, name, value = match.group(1) or "", match.group(2), match.group(3).strip()
        namespace = namespaces.get(prefix)
        if namespace is None:
            continue
        if namespace != STANDARD_NAMESPACE:
            message.ns_headers.append((namespace, name, value))
        elif name == "From":
            parse_identity(value)
            message.sender = value
        elif name == "To":
            parse_identity(value)
            message.recipients.append(value)
        elif name == "cc":
            message.cc.append(value)
        elif name == "Subject":
            message.subject = value
        elif name == "DateTime":
            message.datetime = value
        elif name == "Required":
            message.required += [v.strip() for v in value.split(",")]
        elif name == "NS":
            ns = _NS.match(value)
            if ns is None:
                raise CpimError(f"bad NS header {value!r}")
            namespaces[ns.group(1) or ""] = ns.group(2)
        else:
            message.ns_headers.append((namespace, name, value))
    # MIME part: headers up to the first empty line (LF or CRLF), then the body untouched.
    mime = re.match(rb"^((?:[^\r\n]+\r?\n)*?)\r?\n", rest)
    if mime is None:
        raise CpimError("no blank line after the MIME headers")
    for raw_line in mime.group(1).decode("utf-8").splitlines():
        name, _, value = raw_line.partition(":")
        message.mime_headers.append((name.strip(), value.strip()))
    message.body = rest[mime.end():]
    content_type = next(
        (v for n, v in message.mime_headers if n.lower() == "content-type"), None
    )
    if content_type is None:
        raise CpimError("no Content-Type in the MIME part")
    mime_type, _, params = content_type.partition(";")
    message.content_type = mime_type.strip().lower()
    charset = re.search(r'charset="?([^";\s]+)"?', params)
    message.charset = charset.group(1) if charset else None
    return message


def iscomposing_xml(state: str = "active", refresh: int | None = 120) -> bytes:
    """RFC 3994 is-composing document, element order as SylkServer writes it (BLINK.md 4.3)."""
    refresh_part = f"<refresh>{refresh}</refresh>" if refresh is not None else ""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
        f"<state>{state}</state><contenttype>text</contenttype>{refresh_part}</isComposing>"
    ).encode()
