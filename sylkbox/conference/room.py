"""A room: membership and state, and the snapshot conference-info is built from.

The room knows nothing about SIP transactions or sockets. Its version counter (RFC 4575 4.1)
moves only through `bump()`, once per document built.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from sylkbox.conference.conference_info import (
    EndpointInfo,
    MediaInfo,
    RoomSnapshot,
    SharedFile,
    UserInfo,
)
from sylkbox.conference.participant import Participant, ParticipantState
from sylkbox.config import RoomPolicy

__all__ = ["Room", "RoomState", "identity_key"]


class RoomState(enum.Enum):
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(slots=True, kw_only=True)
class Room:
    """Membership of one conference, keyed by `user@host` of the Request-URI."""

    key: str
    id: str
    policy: RoomPolicy
    server_name: str
    state: RoomState = RoomState.ACTIVE
    version: int = 0
    participants: dict[str, Participant] = field(default_factory=dict)
    # active screen shares (BLINK.md 6): identity key (user@host) -> viewer URL, kept by
    # conference.screenshare and shown as agp-conf:screen_image_url
    screen_urls: dict[str, str] = field(default_factory=dict)
    # shared files (BLINK.md 5), kept by the focus from conference.files: agp-conf:files
    files: tuple[SharedFile, ...] = ()

    @property
    def uri(self) -> str:
        return f"sip:{self.key}"

    def add(self, participant: Participant) -> None:
        self.participants[participant.id] = participant

    def remove(self, participant_id: str) -> Participant | None:
        return self.participants.pop(participant_id, None)

    def connected(self) -> Iterator[Participant]:
        return (p for p in self.participants.values() if p.state is ParticipantState.CONNECTED)

    def by_uri(self, uri: str) -> list[Participant]:
        return [p for p in self.participants.values() if _same_identity(p.uri, uri)]

    @property
    def connected_count(self) -> int:
        return sum(1 for _ in self.connected())

    @property
    def is_empty(self) -> bool:
        return not self.participants

    def bump(self) -> int:
        """Advance and return the conference-info version (one per document built)."""
        self.version += 1
        return self.version

    def snapshot(self) -> RoomSnapshot:
        """The room as RFC 4575 sees it: one user per distinct URI, one endpoint per session."""
        users: dict[str, list[Participant]] = {}
        for p in self.participants.values():
            if p.state is ParticipantState.DISCONNECTED:
                continue
            users.setdefault(_identity_key(p.uri), []).append(p)
        # BLINK.md 3: file-transfer-only sessions count in user-count, not in <users>
        user_count = len(users)
        users = {
            key: kept
            for key, sessions in users.items()
            if (kept := [s for s in sessions if s.file is None])
        }
        infos = []
        for key, sessions in users.items():
            first = sessions[0]
            display = next((s.nickname for s in sessions if s.nickname), None)
            infos.append(
                UserInfo(
                    entity=first.uri,
                    display_text=display or first.display_name,
                    endpoints=tuple(_endpoint(s) for s in sessions),
                    screen_image_url=self.screen_urls.get(key),
                )
            )
        return RoomSnapshot(
            entity=self.uri,
            users=tuple(infos),
            user_count=user_count,
            files=self.files,
            server_name=self.server_name,
        )


def _endpoint(p: Participant) -> EndpointInfo:
    media: tuple[MediaInfo, ...] = (
        (MediaInfo(id=p.audio.media_id, type="audio"),) if p.audio else ()
    )
    if p.chat is not None:  # RFC 4575 5.7.1; SylkServer writes type "message" for chat
        media += (MediaInfo(id=p.chat.media_id, type="message"),)
    return EndpointInfo(
        entity=p.contact,
        display_text=p.nickname or p.display_name,
        status=p.status,
        joined_at=p.joined_at,
        media=media,
    )


def identity_key(uri: str) -> str:
    """``user@host`` of a SIP URI, the key identities compare on (BLINK.md 4.2)."""
    return _identity_key(uri)


def _identity_key(uri: str) -> str:
    """Identities compare on user and host only (BLINK.md 4.2)."""
    text = uri.strip().strip("<>")
    _, _, rest = text.partition(":")
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    user, at, host = rest.rpartition("@")
    if not at:
        user, host = "", rest
    host = host.lower()
    host = host.split("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
    return f"{user}@{host}"


def _same_identity(a: str, b: str) -> bool:
    return _identity_key(a) == _identity_key(b)
