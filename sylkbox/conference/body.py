"""INVITE bodies the focus understands: SDP, or RFC 5366 `multipart/mixed` with SDP plus an
`application/resource-lists+xml` list of people to dial out."""

from __future__ import annotations

from sylkbox.conference.errors import BadRequest, NoAcceptableMedia
from sylkbox.conference.resource_lists import BadResourceList, parse_resource_lists
from sylkbox.sdp import SessionDescription
from sylkbox.sip.message import Request
from sylkbox.sip.multipart import MultipartError, parse_multipart

__all__ = ["split_invite_body"]


def split_invite_body(request: Request) -> tuple[SessionDescription, list[str]]:
    """Return the SDP offer and the URIs of a request-contained list (RFC 5366 4)."""
    content_type = (request.headers.get("Content-Type") or "").strip()
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not request.body:
        raise NoAcceptableMedia("An SDP offer is required")
    if media_type == "application/sdp":
        return SessionDescription.parse(request.body), []
    if media_type != "multipart/mixed":
        raise NoAcceptableMedia(f"Unsupported body type {media_type or '(none)'}")
    try:
        parts = parse_multipart(request.body, content_type)
    except MultipartError as exc:
        raise BadRequest(f"Bad multipart body: {exc.reason}") from exc
    sdp = next((p for p in parts if p.media_type == "application/sdp"), None)
    if sdp is None:
        raise NoAcceptableMedia("No SDP part in the multipart body")
    uris: list[str] = []
    for part in parts:
        if part.media_type == "application/resource-lists+xml":
            try:
                uris.extend(entry.uri for entry in parse_resource_lists(part.body))
            except BadResourceList as exc:
                raise BadRequest(f"Bad resource list: {exc.reason}") from exc
    return SessionDescription.parse(sdp.body), uris
