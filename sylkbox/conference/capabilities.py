"""What the focus tells peers it can do (Allow, Accept, Supported; RFC 3261 20)."""

from __future__ import annotations

from sylkbox import __version__

__all__ = ["ACCEPT", "ALLOW", "SERVER_NAME", "SUPPORTED", "SUPPORTED_TAGS"]

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE, NOTIFY, REFER, UPDATE, MESSAGE"
ACCEPT = "application/sdp, application/conference-info+xml, message/sipfrag, multipart/mixed"
SUPPORTED_TAGS = ("timer", "norefersub", "recipient-list-invite")
SUPPORTED = ", ".join(SUPPORTED_TAGS)
SERVER_NAME = f"sylkbox/{__version__}"
