"""Is-composing indications (RFC 3994), ``application/im-iscomposing+xml``.

The document (RFC 3994 section 4, schema in section 5) is an ``isComposing`` element in the
``urn:ietf:params:xml:ns:im-iscomposing`` namespace holding ``state`` (``active`` or ``idle``),
then the optional ``lastactive`` (a date-time), ``contenttype`` and ``refresh`` (seconds; the
receiver assumes 120 when it is absent, section 3.2).  SylkServer writes ``state``,
``contenttype`` (``text``) and ``refresh`` in that order, which is the schema's order too
(BLINK.md 4.3).  Unknown elements from other namespaces are allowed by the schema and ignored.

Documents from the wire are parsed with expat directly and refused when they carry a DOCTYPE, an
entity declaration or are too large or too deep: no entity expansion, no external fetch.  The
only error raised is :class:`IsComposingError` (400).
"""

from __future__ import annotations

import enum
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from sylkbox.msrp.errors import RemoteProtocolError
from sylkbox.xmlsafe import XmlParseError, parse_xml

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_REFRESH",
    "NAMESPACE",
    "ComposingState",
    "IsComposing",
    "IsComposingError",
    "build",
    "parse",
]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/im-iscomposing+xml"
NAMESPACE = "urn:ietf:params:xml:ns:im-iscomposing"
DEFAULT_REFRESH = 120
MAX_DOCUMENT_SIZE = 8192
_MAX_DEPTH = 8


class IsComposingError(RemoteProtocolError, ValueError):
    """An is-composing document that cannot be accepted; answered with a 400 REPORT."""


class ComposingState(enum.StrEnum):
    """RFC 3994 section 3: the two states of the composer."""

    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True, slots=True, kw_only=True)
class IsComposing:
    """One is-composing indication (RFC 3994 section 4)."""

    state: ComposingState
    content_type: str | None = "text"
    refresh: int | None = None
    last_active: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.state, ComposingState):
            raise IsComposingError(f"invalid state {self.state!r}")
        if self.content_type is not None and any(
            ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in self.content_type
        ):
            raise IsComposingError("contenttype holds control characters")
        if self.refresh is not None and not 0 < self.refresh < 2**31:
            raise IsComposingError(f"invalid refresh {self.refresh!r}")
        if self.last_active is not None and self.last_active.tzinfo is None:
            object.__setattr__(self, "last_active", self.last_active.replace(tzinfo=UTC))

    @property
    def effective_refresh(self) -> int:
        """The refresh interval to apply: the document's, else 120 s (RFC 3994 3.2)."""
        return self.refresh if self.refresh is not None else DEFAULT_REFRESH

    def to_bytes(self) -> bytes:
        return build(self)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build(document: IsComposing) -> bytes:
    """Serialize in SylkServer's element order: state, [lastactive], contenttype, refresh."""
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<isComposing xmlns="{NAMESPACE}">',
        f"<state>{document.state.value}</state>",
    ]
    if document.last_active is not None:
        parts.append(f"<lastactive>{document.last_active.isoformat()}</lastactive>")
    if document.content_type is not None:
        parts.append(f"<contenttype>{_escape(document.content_type)}</contenttype>")
    if document.refresh is not None:
        parts.append(f"<refresh>{document.refresh}</refresh>")
    parts.append("</isComposing>")
    return "".join(parts).encode("utf-8")


def _parse_xml(data: bytes, max_size: int) -> ET.Element:
    """Expat without DOCTYPEs or entity declarations, into an ElementTree (``{ns}local`` tags)."""
    try:
        return parse_xml(data, max_size=max_size, max_depth=_MAX_DEPTH)
    except XmlParseError as exc:
        raise IsComposingError(exc.reason) from None


def _child_text(root: ET.Element, name: str) -> str | None:
    found = root.findall(f"{{{NAMESPACE}}}{name}")
    if len(found) > 1:
        raise IsComposingError(f"more than one <{name}>")
    if not found:
        return None
    if len(found[0]):
        raise IsComposingError(f"<{name}> must hold text only")
    return (found[0].text or "").strip()


def parse(data: bytes, *, max_size: int = MAX_DOCUMENT_SIZE) -> IsComposing:
    """Parse an ``application/im-iscomposing+xml`` document; raise :class:`IsComposingError`."""
    root = _parse_xml(bytes(data), max_size)
    if root.tag != f"{{{NAMESPACE}}}isComposing":
        raise IsComposingError(f"root element is {root.tag!r}, not isComposing")
    state_text = _child_text(root, "state")
    if state_text is None:
        raise IsComposingError("missing <state>")
    try:
        state = ComposingState(state_text.lower())
    except ValueError:
        raise IsComposingError(f"invalid state {state_text[:32]!r}") from None
    refresh: int | None = None
    refresh_text = _child_text(root, "refresh")
    if refresh_text is not None:
        if not refresh_text.isascii() or not refresh_text.isdigit() or len(refresh_text) > 9:
            raise IsComposingError(f"invalid refresh {refresh_text[:32]!r}")
        refresh = int(refresh_text)
        if refresh == 0:
            raise IsComposingError("refresh must be positive")
    last_active: datetime | None = None
    last_text = _child_text(root, "lastactive")
    if last_text is not None:
        try:
            last_active = datetime.fromisoformat(last_text)
        except ValueError:
            raise IsComposingError(f"invalid lastactive {last_text[:40]!r}") from None
    return IsComposing(
        state=state,
        content_type=_child_text(root, "contenttype"),
        refresh=refresh,
        last_active=last_active,
    )
