"""The focus's `ChatPort`: one `ChatSwitch` per room, glued to the MSRP channels.

`RoomChat` is what ``sylkbox.app`` hands the focus (BLINK.md 4.3):

* **join**: the participant's `MsrpChannel` gets a `ChannelSink` and joins the room's switch
  (welcome text, history replay, ``... has joined the room with audio and chat``), counting
  the room's SIP identities for the welcome text.  A chat stream added to a session that
  already had one (re-INVITE) is announced as ``... has added chat``.
* **events**: `MessageReceived` goes to `ChatSwitch.receive`, whose status becomes the REPORT
  (RFC 4975 7.1.2; 200 only when Success-Report asked for it, errors unless Failure-Report
  is ``no``); `NicknameRequested` goes to `ChatSwitch.nickname` and is answered 200 or 425
  (RFC 7701 3.2); an accepted nickname becomes the participant's conference-info
  display-text (RFC 4575 5.6.1) and the room's subscribers are notified.  Transaction
  responses and REPORTs acknowledge our outgoing messages.
* **leave**: ``... has left the room after <duration>`` (or ``... has removed chat`` when the
  session keeps its audio).
* **SIP MESSAGE** to the room URI (`relay_sip_message`): a ``text/plain`` body is wrapped in
  CPIM from the SIP ``From``; a ``message/cpim`` body is checked as an MSRP one (its ``From``
  must be the SIP sender); both are relayed to the chat and kept in the history.

Back-pressure (STYLE.md principle 9, queues are bounded): each participant's `ChannelSink`
counts the messages handed to its session that are not yet written or not yet acknowledged
(transaction response, RFC 4975 7.1.1) and their bytes; beyond `QueueLimits` (or once the
connection is closed) ``send`` returns ``False``, the switch stops using that sink and calls
``on_overflow``, and `RoomChat` asks its owner (the focus) to fail that chat stream: the
stream is removed and, when it was the session's only stream, the session ends with BYE.  A
SEND whose transaction times out (30 s, RFC 4975 7.1.1) fails the stream the same way.  A
participant that stops reading therefore never delays the others.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sylkbox.conference.chat import (
    DEFAULT_HISTORY_SIZE,
    ChatStatus,
    ChatSwitch,
)
from sylkbox.conference.participant import ParticipantState
from sylkbox.msrp import cpim
from sylkbox.msrp.cpim import CpimError, CpimMessage, Identity
from sylkbox.msrp.errors import MsrpError
from sylkbox.msrp.session import (
    MessageReceived,
    MsrpEvent,
    MsrpSession,
    NicknameRequested,
    ReportReceived,
    ResponseReceived,
    TransactionTimedOut,
)

if TYPE_CHECKING:
    from sylkbox.conference.chat_port import MsrpChannel
    from sylkbox.conference.participant import Participant
    from sylkbox.conference.room import Room

__all__ = ["ChannelSink", "ChatOwner", "QueueLimits", "RoomChat"]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_MESSAGES = 256
DEFAULT_QUEUE_BYTES = 8 * 1024 * 1024
DEFAULT_HISTORY_BYTES = 4 * 1024 * 1024  # below the queue's bytes: a replay never overflows


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLimits:
    """Per-participant bound on outgoing chat messages not yet acknowledged."""

    messages: int = DEFAULT_QUEUE_MESSAGES
    bytes: int = DEFAULT_QUEUE_BYTES

    def __post_init__(self) -> None:
        if self.messages < 1 or self.bytes < 1:
            raise ValueError("queue limits must be positive")


class ChatOwner(Protocol):
    """What `RoomChat` needs from the focus."""

    def fail_chat(self, room: Room, participant: Participant, reason: str) -> None:
        """Drop the participant's chat stream as if its connection were lost."""
        ...

    def room_changed(self, room: Room) -> None:
        """Conference-info changed (a nickname): NOTIFY the room's subscribers."""
        ...


@dataclass(slots=True)
class _Outstanding:
    size: int
    responses: int  # transaction responses still expected (one per chunk)


class ChannelSink:
    """A `ChatSink` over one `MsrpChannel`: non-blocking, bounded by `QueueLimits`."""

    def __init__(self, channel: MsrpChannel, limits: QueueLimits) -> None:
        self.channel = channel
        self.limits = limits
        self._outstanding: dict[str, _Outstanding] = {}
        self._bytes = 0

    @property
    def pending_messages(self) -> int:
        return len(self._outstanding)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def send(
        self, content_type: str, body: bytes, *, success_report: bool, failure_report: bool
    ) -> bool:
        channel = self.channel
        if not channel.is_open:
            return False
        if (
            len(self._outstanding) >= self.limits.messages
            or self._bytes + len(body) > self.limits.bytes
        ):
            return False
        limit = self.limits.messages

        def queue(session: MsrpSession) -> tuple[str, int] | None:
            if session.queued_messages >= limit:  # unsent (indications included)
                return None
            message_id = session.send_message(
                content_type,
                body,
                success_report=success_report,
                failure_report="yes" if failure_report else "no",
            )
            return message_id, session.config.chunk_size

        queued = channel.call(queue)
        if queued is None:
            return False
        if failure_report:
            message_id, chunk_size = queued
            chunks = max(1, math.ceil(len(body) / chunk_size))
            self._outstanding[message_id] = _Outstanding(len(body), chunks)
            self._bytes += len(body)
        return True

    def acknowledged(self, message_id: str | None) -> None:
        """A transaction response for one chunk of `message_id` arrived."""
        if message_id is None:
            return
        item = self._outstanding.get(message_id)
        if item is None:
            return
        item.responses -= 1
        if item.responses <= 0:
            del self._outstanding[message_id]
            self._bytes -= item.size

    def forget(self, message_id: str | None) -> None:
        item = self._outstanding.pop(message_id or "", None)
        if item is not None:
            self._bytes -= item.size


@dataclass(slots=True, eq=False)
class _Seat:
    room: Room
    participant: Participant
    sink: ChannelSink


class RoomChat:
    """`ChatPort` implementation: a `ChatSwitch` per room (BLINK.md 4.3)."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        limits: QueueLimits | None = None,
        clock: Callable[[], datetime] | None = None,
        on_screen_frame: Callable[[Room, Participant, CpimMessage], ChatStatus | None]
        | None = None,
    ) -> None:
        self._history_size = history_size
        self._history_bytes = history_bytes
        self.limits = limits or QueueLimits()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_screen_frame = on_screen_frame
        self._owner: ChatOwner | None = None
        self._switches: dict[str, ChatSwitch] = {}  # room id -> switch
        self._seats: dict[str, _Seat] = {}  # participant id -> seat
        self._seen: set[tuple[str, str]] = set()  # (room id, participant id) ever in the chat

    def attach(self, owner: ChatOwner) -> None:
        """The focus (built after this object) that fails streams and sends NOTIFYs."""
        self._owner = owner

    # -- queries (web UI, benches) ---------------------------------------------------------------

    def switch(self, room: Room) -> ChatSwitch:
        """The room's switch (created on first use)."""
        switch = self._switches.get(room.id)
        if switch is None:
            switch = ChatSwitch(
                room.uri,
                history_size=self._history_size,
                history_bytes=self._history_bytes,
                clock=self._clock,
                on_overflow=functools.partial(self._overflow, room),
                on_screen_frame=functools.partial(self._screen_frame, room),
            )
            self._switches[room.id] = switch
        return switch

    def sink_of(self, participant_id: str) -> ChannelSink | None:
        seat = self._seats.get(participant_id)
        return None if seat is None else seat.sink

    # -- ChatPort --------------------------------------------------------------------------------

    def join(self, room: Room, participant: Participant, channel: MsrpChannel) -> None:
        switch = self.switch(room)
        if participant.id in switch:
            switch.leave(participant.id, duration=self._since(participant), announce=False)
        sink = ChannelSink(channel, self.limits)
        self._seats[participant.id] = _Seat(room, participant, sink)
        identity = _identity(participant)
        identities = [
            _identity(p)
            for p in room.participants.values()
            if p.state is ParticipantState.CONNECTED or p is participant
        ]
        key = (room.id, participant.id)
        added = key in self._seen or (
            participant.audio is not None and self._since(participant).total_seconds() > 5
        )
        self._seen.add(key)
        media = "audio and chat" if participant.audio is not None else "chat"
        switch.join(
            participant.id,
            identity,
            sink,
            media=media,
            room_identities=identities,
            announce=not added,
        )
        if added and participant.id in switch:
            switch.status(f"{_who(identity)} has added chat", exclude=participant.id)

    def leave(self, room: Room, participant: Participant) -> None:
        seat = self._seats.pop(participant.id, None)
        switch = self._switches.get(room.id)
        if switch is None:
            return
        if participant.id in switch:
            staying = (
                participant.audio is not None
                and participant.state is ParticipantState.CONNECTED
                and participant.id in room.participants
            )
            if staying:
                switch.leave(participant.id, duration=self._since(participant), announce=False)
                switch.status(f"{_who(_identity(participant))} has removed chat")
            else:
                switch.leave(participant.id, duration=self._since(participant))
        if seat is not None and all(p is participant for p in room.participants.values()):
            self._drop_room(room)  # the room ends with this participant

    def handle_event(self, room: Room, participant: Participant, event: MsrpEvent) -> None:
        seat = self._seats.get(participant.id)
        if seat is None:
            return
        channel = seat.sink.channel
        match event:
            case MessageReceived():
                self._on_message(room, participant, channel, event)
            case NicknameRequested():
                self._on_nickname(room, participant, channel, event)
            case ResponseReceived():
                if event.method == "SEND":
                    seat.sink.acknowledged(event.message_id)
                    if event.status != 200:
                        log.debug(
                            "x %s answered %d to a chat message", participant.uri, event.status
                        )
            case ReportReceived():
                if event.status.code != 200:
                    log.debug(
                        "x %s: REPORT %d for %s",
                        participant.uri,
                        event.status.code,
                        event.message_id,
                    )
            case TransactionTimedOut():
                if event.method == "SEND" and event.message_id is not None:
                    seat.sink.forget(event.message_id)
                    self._fail(room, participant, "MSRP SEND timed out (408)")
            case _:
                pass

    # -- SIP MESSAGE (RFC 3428) to the room ------------------------------------------------------

    def relay_sip_message(
        self,
        room: Room,
        sender_uri: str,
        display_name: str | None,
        content_type: str,
        body: bytes,
    ) -> ChatStatus:
        """Relay a SIP MESSAGE sent to the room URI into its chat as from its SIP sender."""
        try:
            identity = Identity(display_name, sender_uri)
        except CpimError:
            return ChatStatus.BAD_REQUEST
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "text/plain":
            charset = _charset(content_type) or "utf-8"
            try:
                body.decode(charset)
            except (LookupError, UnicodeDecodeError):
                return ChatStatus.BAD_REQUEST
            message = cpim.build_message(
                from_=identity,
                to=(Identity.room(room.uri),),
                body=body,
                now=self._clock(),
                charset="utf8" if charset.lower().replace("-", "") == "utf8" else charset,
            )
            body = message.to_bytes()
        elif media != cpim.CONTENT_TYPE:
            return ChatStatus.UNSUPPORTED_MEDIA_TYPE
        return self.switch(room).receive_external(
            f"sip-message:{sender_uri}", identity, cpim.CONTENT_TYPE, body
        )

    def status(
        self, room: Room, text: str, *, to: str | None = None, exclude: str | None = None
    ) -> None:
        """A room status line (uploads, screen sharing...) to the room's chat."""
        switch = self._switches.get(room.id)
        if switch is not None:
            switch.status(text, to=to, exclude=exclude)

    def forget_room(self, room: Room) -> None:
        """The room is gone: drop its switch and history."""
        self._drop_room(room)

    # -- internals -------------------------------------------------------------------------------

    def _on_message(
        self, room: Room, participant: Participant, channel: MsrpChannel, event: MessageReceived
    ) -> None:
        if event.chunked:
            return  # file streams deliver chunks; a chat stream never asks for that
        switch = self.switch(room)
        status = switch.receive(participant.id, event.content_type or "", event.body)
        if not channel.is_open:
            return
        try:
            channel.call(lambda s: s.report(event, int(status), status.comment))
        except MsrpError as exc:
            log.debug("x REPORT to %s failed: %s", participant.uri, exc)

    def _on_nickname(
        self,
        room: Room,
        participant: Participant,
        channel: MsrpChannel,
        event: NicknameRequested,
    ) -> None:
        switch = self.switch(room)
        status = switch.nickname(participant.id, event.nickname)
        try:
            channel.call(lambda s: s.respond(event.request, int(status), status.comment))
        except MsrpError as exc:
            log.debug("x NICKNAME answer to %s failed: %s", participant.uri, exc)
        if status is ChatStatus.OK:
            nickname = switch.nickname_of(participant.id)
            if nickname != participant.nickname:
                participant.nickname = nickname
                if self._owner is not None:
                    self._owner.room_changed(room)

    def _overflow(self, room: Room, participant_id: str) -> None:
        seat = self._seats.get(participant_id)
        if seat is not None:
            self._fail(room, seat.participant, "chat queue full (participant too slow)")

    def _fail(self, room: Room, participant: Participant, reason: str) -> None:
        log.info("x %s: failing the chat stream in %s: %s", participant.uri, room.key, reason)
        if self._owner is not None:
            self._owner.fail_chat(room, participant, reason)
        else:  # no focus attached (tests): just close the stream
            seat = self._seats.get(participant.id)
            if seat is not None:
                seat.sink.channel.close()
            self.leave(room, participant)

    def _screen_frame(
        self, room: Room, participant_id: str, message: CpimMessage
    ) -> ChatStatus | None:
        seat = self._seats.get(participant_id)
        if seat is not None and self._on_screen_frame is not None:
            return self._on_screen_frame(room, seat.participant, message)
        return None

    def _drop_room(self, room: Room) -> None:
        switch = self._switches.get(room.id)
        if switch is not None and not len(switch):
            del self._switches[room.id]
            self._seen = {k for k in self._seen if k[0] != room.id}

    def _since(self, participant: Participant) -> timedelta:
        return self._clock() - participant.joined_at


def _identity(participant: Participant) -> Identity:
    try:
        return Identity(participant.display_name, participant.uri)
    except CpimError:
        return Identity(None, participant.uri)


def _who(identity: Identity) -> str:
    from sylkbox.conference.chat import format_identity

    return format_identity(identity)


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
