"""The focus's ports for MSRP chat (`typing.Protocol`, as aioice's senders).

* `MsrpPort`: the shared MSRP listener (`sylkbox.net.msrp.MsrpListener` implements it): new
  local URIs, passive `expect()` and active `connect()` (BLINK.md 7).
* `MsrpChannel`: one established MSRP session (`sylkbox.net.msrp.MsrpConnection`): act on
  the sans-I/O `MsrpSession` with `call()`, back-pressure with `writable`/`drain()`.
* `ChatPort`: the chat switch (`sylkbox.conference.chat`): the focus hands it every
  established chat session (`join`), every MSRP event of that session (`handle_event`) and
  the end of the session (`leave`).  A lost connection never reaches the chat port: the
  focus handles it (it removes the stream, or ends the SIP session) and then calls `leave`.

`EchoToRoomChat` is a minimal stand-in until the real chat switch exists: every complete
message is acknowledged (REPORT 200 when asked) and relayed unchanged to every other chat
session of the room; NICKNAME gets 200.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from sylkbox.msrp.errors import LocalProtocolError
from sylkbox.msrp.session import (
    MessageReceived,
    MsrpEvent,
    MsrpSession,
    NicknameRequested,
    SessionConfig,
)
from sylkbox.msrp.uri import MsrpUri

if TYPE_CHECKING:
    from sylkbox.conference.participant import Participant
    from sylkbox.conference.room import Room

__all__ = ["ChatPort", "EchoToRoomChat", "MsrpChannel", "MsrpPort"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class MsrpChannel(Protocol):
    """One connected MSRP session."""

    @property
    def local_uri(self) -> MsrpUri: ...

    @property
    def remote_path(self) -> tuple[MsrpUri, ...]: ...

    @property
    def writable(self) -> bool: ...

    @property
    def is_open(self) -> bool: ...

    def set_handler(
        self,
        handler: Callable[[MsrpEvent], None],
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        """Events of the session go to `handler`; the end of the connection (with a reason)
        to `on_lost`."""
        ...

    def call(self, action: Callable[[MsrpSession], T]) -> T:
        """Run `action` on the session core, then write its output."""
        ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class MsrpPort(Protocol):
    """The MSRP listener of the box."""

    @property
    def tls(self) -> bool: ...

    def new_local_uri(self, peer_host: str | None = None) -> MsrpUri:
        """A fresh local URI, its host as `peer_host` (the session's SIP peer) reaches us."""
        ...

    def expect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        exact: bool = True,
        config: SessionConfig | None = None,
    ) -> Awaitable[MsrpChannel]: ...

    def forget_expected(self, local_uri: MsrpUri) -> None: ...

    async def connect(
        self,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...] | str,
        *,
        config: SessionConfig | None = None,
    ) -> MsrpChannel: ...


class ChatPort(Protocol):
    """The chat switch of the rooms (BLINK.md 4.3)."""

    def join(self, room: Room, participant: Participant, channel: MsrpChannel) -> None:
        """A participant's chat stream is connected (welcome, history, status messages)."""
        ...

    def leave(self, room: Room, participant: Participant) -> None:
        """The participant's chat stream is gone (the channel is closed or closing)."""
        ...

    def handle_event(self, room: Room, participant: Participant, event: MsrpEvent) -> None:
        """An event of the participant's MSRP session (messages, reports, NICKNAME...)."""
        ...

    def relay_sip_message(
        self,
        room: Room,
        sender_uri: str,
        display_name: str | None,
        content_type: str,
        body: bytes,
    ) -> int:
        """A SIP MESSAGE (RFC 3428) to the room: relay it to the chat as from its SIP sender;
        the status (200, 400, 403, 404, 413, 415) of the chat switch."""
        ...

    def forget_room(self, room: Room) -> None:
        """The room is gone: drop its chat state (history included)."""
        ...


class EchoToRoomChat:
    """Minimal `ChatPort`: relays each message as received to the room's other sessions."""

    def __init__(self) -> None:
        self._channels: dict[str, tuple[Room, MsrpChannel]] = {}

    def join(self, room: Room, participant: Participant, channel: MsrpChannel) -> None:
        self._channels[participant.id] = (room, channel)

    def leave(self, room: Room, participant: Participant) -> None:
        self._channels.pop(participant.id, None)

    def handle_event(self, room: Room, participant: Participant, event: MsrpEvent) -> None:
        own = self._channels.get(participant.id)
        if own is None:
            return
        channel = own[1]
        match event:
            case MessageReceived():
                channel.call(lambda s: s.report(event))
                if event.content_type is None or event.chunked:
                    return
                content_type = event.content_type
                for pid, (other_room, other) in list(self._channels.items()):
                    if pid == participant.id or other_room is not room or not other.is_open:
                        continue
                    try:
                        other.call(lambda s: s.send_message(content_type, event.body))
                    except LocalProtocolError as exc:
                        log.debug("x relay to %s failed: %s", pid, exc)
            case NicknameRequested():
                channel.call(lambda s: s.respond(event.request, 200))
            case _:
                pass

    def forget_room(self, room: Room) -> None:
        """Nothing is kept per room."""

    def relay_sip_message(
        self,
        room: Room,
        sender_uri: str,
        display_name: str | None,
        content_type: str,
        body: bytes,
    ) -> int:
        return 200
