"""The port through which the focus tells others (Bonjour discovery) about its rooms.

The dependency points from the observers to the conference package: the focus only calls these
methods, it never imports who implements them (`discovery.advertiser.Advertiser` does).
"""

from __future__ import annotations

from typing import Protocol

from sylkbox.conference.room import Room

__all__ = ["RoomObserver"]


class RoomObserver(Protocol):
    """Told when a room is created, changes (joins, leaves, anything RFC 4575 shows) or ends.

    Called synchronously from the focus: implementations only schedule their work."""

    def room_created(self, room: Room) -> None: ...

    def room_updated(self, room: Room) -> None: ...

    def room_ended(self, room: Room) -> None: ...
