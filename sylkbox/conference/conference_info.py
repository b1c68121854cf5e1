"""Conference-info documents (RFC 4575) as SylkServer sends them to Blink.

``build_conference_info`` is a pure function from a :class:`RoomSnapshot` to the bytes of an
``application/conference-info+xml`` document, following ``interop/BLINK.md`` section 3:

* always full state (RFC 4575 section 4.3): ``state="full"`` on the root, ``users``, each ``user``
  and each ``endpoint``;
* ``<uri>`` values in ``conf-uris`` percent-encoded, as sipsimple's AnyURI type writes them;
* the AG Projects extension namespace (``agp-conf``) declared on the root; ``agp-conf:resources``
  only when files exist and ``agp-conf:screen_image_url`` only while a screen share is active.

One deliberate difference from the SylkServer sample: extension elements are written where the RFC
4575 section 5 schema allows them (the ``xs:any namespace="##other"`` at the end of each sequence),
so ``agp-conf:screen_image_url`` follows the ``endpoint`` elements. sipsimple validates incoming
documents against that schema, and a validating parser rejects an extension before ``endpoint``.

``parse_conference_info`` reads such a document back (for tests and our own clients); it refuses
DOCTYPEs and therefore any entity expansion.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

from sylkbox.xmlsafe import XmlParseError, parse_xml

__all__ = [
    "AGP_CONF_NS",
    "CONFERENCE_INFO_NS",
    "CONTENT_TYPE",
    "SCHEMA_FILES",
    "ConferenceInfoError",
    "EndpointInfo",
    "MediaInfo",
    "ParsedConferenceInfo",
    "RoomSnapshot",
    "SharedFile",
    "UserInfo",
    "build_conference_info",
    "parse_conference_info",
]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/conference-info+xml"
CONFERENCE_INFO_NS = "urn:ietf:params:xml:ns:conference-info"
AGP_CONF_NS = "urn:ag-projects:xml:ns:conference-info"
_AGP = "agp-conf:"
MAX_DOCUMENT_SIZE = 1024 * 1024
# RFC 4575 section 5 schema and the agp-conf extension schema, shipped as package data.
SCHEMA_FILES = (
    Path(__file__).parent / "schemas" / "conference-info.xsd",
    Path(__file__).parent / "schemas" / "agp-conference-info.xsd",
)

# RFC 4575 section 5: endpoint-status-type and media-status-type enumerations.
ENDPOINT_STATUSES = frozenset(
    {
        "pending",
        "dialing-out",
        "dialing-in",
        "alerting",
        "on-hold",
        "connected",
        "muted-via-focus",
        "disconnecting",
        "disconnected",
    }
)
MEDIA_STATUSES = frozenset({"recvonly", "sendonly", "sendrecv", "inactive"})
# Characters that XML 1.0 cannot carry at all (section 2.2 "Char"), and lone surrogates.
_DIGITS = re.compile("[0-9]{1,10}")
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ConferenceInfoError(ValueError):
    """A conference-info document could not be parsed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInfo:
    """One ``<media>`` of an endpoint (RFC 4575 section 5.7.1): ``type`` audio or message."""

    id: str
    type: str
    status: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("media id must not be empty")
        if not self.type:
            raise ValueError("media type must not be empty")
        if self.status is not None and self.status not in MEDIA_STATUSES:
            raise ValueError(f"bad media status {self.status!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointInfo:
    """One ``<endpoint>`` (RFC 4575 section 5.7): a participant's session, keyed by Contact URI."""

    entity: str
    display_text: str | None
    status: str
    joined_at: datetime
    media: tuple[MediaInfo, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in ENDPOINT_STATUSES:
            raise ValueError(f"bad endpoint status {self.status!r}")
        if self.joined_at.tzinfo is None:
            raise ValueError("joined_at must be timezone-aware")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """One ``<user>`` (RFC 4575 section 5.6), keyed by the participant's From URI."""

    entity: str
    display_text: str | None
    endpoints: tuple[EndpointInfo, ...] = ()
    screen_image_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedFile:
    """One ``agp-conf:file``; ``sender`` is ``Display <sip:u@h>`` or ``<sip:u@h>``."""

    name: str
    hash: str
    size: int
    sender: str
    status: str = "OK"

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("file size must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomSnapshot:
    """Everything a conference-info document says about one room, at one moment."""

    entity: str
    users: tuple[UserInfo, ...] = ()
    user_count: int = 0
    files: tuple[SharedFile, ...] = ()
    server_name: str = "sylkbox"
    extra_conf_uris: tuple[str, ...] = ()
    display_text: str = "Ad-hoc conference"
    subject: str = ""
    web_page: str | None = None
    active: bool = True

    def __post_init__(self) -> None:
        if not self.entity:
            raise ValueError("room entity must not be empty")
        if self.user_count < 0:
            raise ValueError("user_count must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedConferenceInfo:
    """A parsed document: its ``version``, its ``state`` and the room it describes."""

    version: int | None
    state: str
    room: RoomSnapshot


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Drop what XML 1.0 cannot represent (control characters, lone surrogates)."""
    return _NOT_XML_CHAR.sub("", value)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: _text(value) for key, value in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def _conf_uri(value: str) -> str:
    # sipsimple's AnyURI writes urllib.quote(value): everything but [A-Za-z0-9_.-~/] escaped.
    return quote(_text(value), safe="/")


def build_conference_info(snapshot: RoomSnapshot, version: int) -> bytes:
    """Serialize ``snapshot`` as a full-state RFC 4575 document with the given ``version``.

    ``version`` is the room's counter (RFC 4575 section 4.4), bumped by the caller.
    """
    if not 0 <= version <= 0xFFFFFFFF:
        raise ValueError("version must fit xs:unsignedInt")
    # Tags are written with literal prefixes so that no global ElementTree namespace registry
    # is touched; the namespaces are declared on the root.
    root = ET.Element(
        "conference-info",
        {
            "xmlns": CONFERENCE_INFO_NS,
            "xmlns:agp-conf": AGP_CONF_NS,
            "entity": _text(snapshot.entity),
            "state": "full",
            "version": str(version),
        },
    )
    description = _sub(root, "conference-description")
    _sub(description, "display-text", snapshot.display_text)
    _sub(description, "subject", snapshot.subject)
    _sub(description, "free-text", f"Hosted by {snapshot.server_name}")
    conf_uris = _sub(description, "conf-uris")
    for uri in (snapshot.entity, *snapshot.extra_conf_uris):
        entry = _sub(conf_uris, "entry")
        _sub(entry, "uri", _conf_uri(uri))
        _sub(entry, "purpose", "participation")
    if snapshot.files:
        resources = _sub(description, _AGP + "resources")
        files = _sub(resources, _AGP + "files")
        for shared in snapshot.files:
            _sub(
                files,
                _AGP + "file",
                name=shared.name,
                hash=shared.hash,
                size=str(shared.size),
                sender=shared.sender,
                status=shared.status,
            )
    if snapshot.web_page is not None:
        _sub(_sub(root, "host-info"), "web-page", snapshot.web_page)
    state = _sub(root, "conference-state")
    _sub(state, "user-count", str(snapshot.user_count))
    _sub(state, "active", "true" if snapshot.active else "false")
    users = _sub(root, "users", state="full")
    for user in snapshot.users:
        user_element = _sub(users, "user", entity=user.entity, state="full")
        if user.display_text is not None:
            _sub(user_element, "display-text", user.display_text)
        for endpoint in user.endpoints:
            _build_endpoint(user_element, endpoint)
        if user.screen_image_url is not None:
            _sub(user_element, _AGP + "screen_image_url", user.screen_image_url)
    ET.indent(root, space="  ")
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document + b"\n"


def _build_endpoint(parent: ET.Element, endpoint: EndpointInfo) -> None:
    element = _sub(parent, "endpoint", entity=endpoint.entity, state="full")
    if endpoint.display_text is not None:
        _sub(element, "display-text", endpoint.display_text)
    _sub(element, "status", endpoint.status)
    _sub(_sub(element, "joining-info"), "when", endpoint.joined_at.isoformat())
    for media in endpoint.media:
        media_element = _sub(element, "media", id=media.id)
        _sub(media_element, "type", media.type)
        if media.status is not None:
            _sub(media_element, "status", media.status)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _ns(tag: str) -> str:
    return f"{{{CONFERENCE_INFO_NS}}}{tag}"


def _agp(tag: str) -> str:
    return f"{{{AGP_CONF_NS}}}{tag}"


def _child_text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None:
        return None
    return child.text or ""


def _required(element: ET.Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise ConferenceInfoError(f"<{element.tag}> without {name!r}")
    return value


def _int(text: str | None, what: str) -> int:
    if text is None or not _DIGITS.fullmatch(text.strip()):
        raise ConferenceInfoError(f"bad {what}: {text!r}")
    return int(text)


def parse_conference_info(data: bytes) -> ParsedConferenceInfo:
    """Parse a conference-info document (RFC 4575) into a :class:`ParsedConferenceInfo`.

    Unknown elements are ignored (RFC 4575 section 5 extensibility). ``<uri>`` values are
    percent-decoded. Raises :class:`ConferenceInfoError`.
    """
    try:
        root = parse_xml(data, max_size=MAX_DOCUMENT_SIZE)
    except XmlParseError as exc:
        raise ConferenceInfoError(exc.reason) from None
    if root.tag != _ns("conference-info"):
        raise ConferenceInfoError(f"unexpected root element {root.tag!r}")
    try:
        return _parse_root(root)
    except ValueError as exc:
        if isinstance(exc, ConferenceInfoError):
            raise
        raise ConferenceInfoError(str(exc)) from None


def _parse_root(root: ET.Element) -> ParsedConferenceInfo:
    entity = _required(root, "entity")
    version_text = root.get("version")
    version = None if version_text is None else _int(version_text, "version")
    display_text = "Ad-hoc conference"
    subject = ""
    server_name = ""
    extra_uris: list[str] = []
    files: list[SharedFile] = []
    description = root.find(_ns("conference-description"))
    if description is not None:
        display_text = _child_text(description, _ns("display-text")) or ""
        subject = _child_text(description, _ns("subject")) or ""
        free_text = _child_text(description, _ns("free-text")) or ""
        server_name = free_text.removeprefix("Hosted by ")
        for uri_element in description.iterfind(f"{_ns('conf-uris')}/{_ns('entry')}/{_ns('uri')}"):
            uri = unquote((uri_element.text or "").strip())
            if uri != entity:
                extra_uris.append(uri)
        for file_element in description.iterfind(
            f"{_agp('resources')}/{_agp('files')}/{_agp('file')}"
        ):
            files.append(
                SharedFile(
                    name=_required(file_element, "name"),
                    hash=_required(file_element, "hash"),
                    size=_int(file_element.get("size"), "file size"),
                    sender=_required(file_element, "sender"),
                    status=file_element.get("status", "OK"),
                )
            )
    web_page = None
    host_info = root.find(_ns("host-info"))
    if host_info is not None:
        web_page = _child_text(host_info, _ns("web-page"))
    user_count = 0
    active = False
    state = root.find(_ns("conference-state"))
    if state is not None:
        count_text = _child_text(state, _ns("user-count"))
        user_count = 0 if count_text is None else _int(count_text, "user-count")
        active = (_child_text(state, _ns("active")) or "").strip() in {"true", "1"}
    users: list[UserInfo] = []
    users_element = root.find(_ns("users"))
    if users_element is not None:
        users = [_parse_user(element) for element in users_element.iterfind(_ns("user"))]
    room = RoomSnapshot(
        entity=entity,
        users=tuple(users),
        user_count=user_count,
        files=tuple(files),
        server_name=server_name,
        extra_conf_uris=tuple(extra_uris),
        display_text=display_text,
        subject=subject,
        web_page=web_page,
        active=active,
    )
    return ParsedConferenceInfo(version=version, state=root.get("state", "full"), room=room)


def _parse_user(element: ET.Element) -> UserInfo:
    return UserInfo(
        entity=_required(element, "entity"),
        display_text=_child_text(element, _ns("display-text")),
        endpoints=tuple(_parse_endpoint(child) for child in element.iterfind(_ns("endpoint"))),
        screen_image_url=_child_text(element, _agp("screen_image_url")),
    )


def _parse_endpoint(element: ET.Element) -> EndpointInfo:
    when = element.find(f"{_ns('joining-info')}/{_ns('when')}")
    if when is None or not when.text:
        raise ConferenceInfoError("endpoint without joining-info/when")
    media = tuple(
        MediaInfo(
            id=_required(child, "id"),
            type=_child_text(child, _ns("type")) or "",
            status=_child_text(child, _ns("status")),
        )
        for child in element.iterfind(_ns("media"))
    )
    return EndpointInfo(
        entity=_required(element, "entity"),
        display_text=_child_text(element, _ns("display-text")),
        status=(_child_text(element, _ns("status")) or "connected").strip(),
        joined_at=datetime.fromisoformat(when.text.strip()),
        media=media,
    )
