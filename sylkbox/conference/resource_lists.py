"""Request-contained URI lists: ``application/resource-lists+xml`` bodies (RFC 4826, RFC 5366).

An INVITE to the focus may carry, next to its SDP, a ``multipart/mixed`` part with
``Content-Disposition: recipient-list`` listing who to dial out to (RFC 5366 section 4). This
module turns such a body into an ordered list of :class:`ListEntry` (uri, display name).

* ``<entry uri=...>`` (RFC 4826 section 3.2) gives one URI, with an optional ``<display-name>``;
* nested ``<list>`` elements are flattened depth-first, in document order;
* ``<entry-ref>`` and ``<external>`` point outside the body (an XCAP server): they are ignored
  and logged, as the focus has nothing to resolve them against;
* duplicate URIs (same text) are dropped, keeping the first, so that one target is invited
  once;
* elements of other namespaces are extensions (the schema's ``xs:any namespace="##other"``, for
  example RFC 5364 copyControl attributes) and are ignored.

Anything hostile or malformed (DOCTYPE or entities, oversize, excessive nesting, too many
entries, wrong root or namespace, entry without a URI) raises :class:`BadResourceList`.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import NamedTuple

from sylkbox.xmlsafe import XmlParseError, parse_xml

__all__ = [
    "CONTENT_TYPE",
    "RESOURCE_LISTS_NS",
    "BadResourceList",
    "ListEntry",
    "parse_resource_lists",
]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/resource-lists+xml"
RESOURCE_LISTS_NS = "urn:ietf:params:xml:ns:resource-lists"
_ROOT = f"{{{RESOURCE_LISTS_NS}}}resource-lists"
_LIST = f"{{{RESOURCE_LISTS_NS}}}list"
_ENTRY = f"{{{RESOURCE_LISTS_NS}}}entry"
_DISPLAY_NAME = f"{{{RESOURCE_LISTS_NS}}}display-name"
_IGNORED = {
    f"{{{RESOURCE_LISTS_NS}}}entry-ref",
    f"{{{RESOURCE_LISTS_NS}}}external",
}


class BadResourceList(ValueError):
    """The resource list cannot be used; ``reason`` says why (the focus answers 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ListEntry(NamedTuple):
    """One target of the list: its URI and optional display name."""

    uri: str
    display_name: str | None


def parse_resource_lists(
    data: bytes,
    *,
    max_size: int = 64 * 1024,
    max_entries: int = 100,
    max_depth: int = 10,
) -> list[ListEntry]:
    """Parse an RFC 4826 ``resource-lists`` document into its entries, in document order."""
    try:
        # The XML depth limit covers root + list nesting + entry + display-name.
        root = parse_xml(data, max_size=max_size, max_depth=max_depth + 3)
    except XmlParseError as exc:
        raise BadResourceList(exc.reason) from None
    if root.tag != _ROOT:
        raise BadResourceList(f"root element is {root.tag!r}, expected resource-lists")
    entries: list[ListEntry] = []
    seen: set[str] = set()
    for child in root:
        if child.tag == _LIST:
            _walk(child, entries, seen, max_entries)
        elif child.tag.startswith(f"{{{RESOURCE_LISTS_NS}}}"):
            raise BadResourceList(f"unexpected element {child.tag!r} in resource-lists")
    return entries


def _walk(element: ET.Element, entries: list[ListEntry], seen: set[str], limit: int) -> None:
    for child in element:
        if child.tag == _ENTRY:
            uri = (child.get("uri") or "").strip()
            if not uri:
                raise BadResourceList("entry without a uri")
            if uri in seen:
                logger.debug("x duplicate resource-list entry %s dropped", uri)
                continue
            if len(entries) >= limit:
                raise BadResourceList(f"more than {limit} entries")
            seen.add(uri)
            name_element = child.find(_DISPLAY_NAME)
            display_name = None if name_element is None else (name_element.text or "").strip()
            entries.append(ListEntry(uri, display_name or None))
        elif child.tag == _LIST:
            _walk(child, entries, seen, limit)
        elif child.tag in _IGNORED:
            logger.info(
                "x ignoring resource-list %s %s",
                child.tag.split("}")[1],
                child.get("ref") or child.get("anchor"),
            )
