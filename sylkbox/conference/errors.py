"""Application errors of the conference focus.

Each is mapped to one SIP response by the table in `conference/focus.py`; nothing else in the
package writes literal status codes for them.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BadRequest",
    "FileNotFound",
    "FileTooLarge",
    "FocusError",
    "MethodNotAllowed",
    "NoAcceptableMedia",
    "NoSuchDialog",
    "RoomFull",
    "RoomNotFound",
    "SubscriptionRefused",
    "TransferForbidden",
    "UnknownEvent",
    "UnsupportedExtension",
]


class FocusError(Exception):
    """Base of the errors that end a request with a response; `reason` becomes the phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def headers(self) -> list[tuple[str, str]]:
        """Extra header fields the error response must carry."""
        return []


class RoomNotFound(FocusError):
    """The Request-URI names a domain we do not serve, or a room that does not exist."""


class AccessDenied(FocusError):
    """The room's allow/deny lists refuse this caller."""


class RoomFull(FocusError):
    """The room has reached its configured maximum number of participants."""


class NoAcceptableMedia(FocusError):
    """No offered stream can be used."""


class NoSuchDialog(FocusError):
    """An in-dialog request for a dialog we do not know."""


class UnknownEvent(FocusError):
    """SUBSCRIBE for an event package other than `conference` (RFC 6665 8.3.2)."""

    def headers(self) -> list[tuple[str, str]]:
        return [("Allow-Events", "conference")]


class UnsupportedExtension(FocusError):
    """`Require` names option tags we do not support (RFC 3261 8.2.2.3)."""

    def __init__(self, tags: list[str]) -> None:
        super().__init__("Bad Extension")
        self.tags = tags

    def headers(self) -> list[tuple[str, str]]:
        return [("Unsupported", ", ".join(self.tags))]


class SubscriptionRefused(FocusError):
    """SUBSCRIBE to a room that is not active."""


class MethodNotAllowed(FocusError):
    """A method the focus does not accept at this URI."""


class TransferForbidden(FocusError):
    """In-dialog REFER: RFC 4579 section 5.5 wants REFER outside the dialog."""


class BadRequest(FocusError):
    """A request that parses but cannot be acted on (missing or malformed header)."""


class FileTooLarge(FocusError):
    """An offered upload is over `[files] max_size` or the room's quota (RFC 5547)."""


class FileNotFound(FocusError):
    """A download asks for a hash the room does not have (BLINK.md 5)."""
