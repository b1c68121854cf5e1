"""Hardened XML parsing shared by every parser of documents from the wire (resource lists,
conference-info, is-composing); stdlib only, so protocol cores may use it.

Documents from the wire (resource lists, conference-info) are parsed with expat directly so that a
DOCTYPE is refused before any entity is declared: no internal or external entities, no "billion
laughs", no external DTD fetch. Only the element tree is kept (comments and processing
instructions are dropped), as ``xml.etree.ElementTree`` elements with ``{namespace}local`` tags.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat

__all__ = ["XmlParseError", "parse_xml"]


class XmlParseError(ValueError):
    """The bytes are not an acceptable XML document; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _qname(name: str) -> str:
    # expat with namespace_separator="}" reports "uri}local"; ElementTree wants "{uri}local".
    return "{" + name if "}" in name else name


def parse_xml(data: bytes, *, max_size: int, max_depth: int = 32) -> ET.Element:
    """Parse ``data`` into an element tree, refusing DOCTYPEs, oversize and over-deep input."""
    if len(data) > max_size:
        raise XmlParseError(f"document larger than {max_size} bytes")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0

    def refuse_doctype(*_args: object) -> None:
        raise XmlParseError("DOCTYPE declarations are not allowed")

    def refuse_entity(*_args: object) -> None:
        raise XmlParseError("entity declarations are not allowed")

    def refuse_external(*_args: object) -> int:
        raise XmlParseError("external entities are not allowed")

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise XmlParseError(f"elements nested deeper than {max_depth}")
        builder.start(_qname(name), {_qname(key): value for key, value in attrs.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_qname(name))

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlParseError(f"malformed XML: {expat.errors.messages[exc.code]}") from None
    except (LookupError, ValueError, TypeError) as exc:  # e.g. an unknown declared encoding
        raise XmlParseError(f"unreadable XML: {exc}") from None
    try:
        return builder.close()
    except AssertionError:  # pragma: no cover - expat guarantees a balanced tree
        raise XmlParseError("malformed XML") from None
