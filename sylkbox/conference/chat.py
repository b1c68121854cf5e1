"""The room chat switch: MSRP chat fan-out of one room, independent of transports.

What SylkServer's ``Room`` does with chat streams (BLINK.md 4.3, SylkServer ``room.py``
``_NH_ChatStreamGotMessage``, ``_message_dispatcher``, ``dispatch_*``), without sockets, timers
or MSRP framing: the owner (the focus) hands the switch each participant's complete chat
message (``receive``) and NICKNAME request (``nickname``) and answers the MSRP transaction /
REPORT with the status returned; outgoing messages go through one :class:`ChatSink` per
participant, whose ``send`` never blocks and is bounded (the transport owns the queue).

Rules (BLINK.md 4.3):

* only ``message/cpim`` is accepted (else 415); a CPIM body that cannot be parsed is 400
  (RFC 3862 section 2);
* the CPIM ``From`` must name the participant's SIP identity (same user and host, BLINK.md 4.2),
  else the message is refused with **403** and nothing is relayed (SylkServer drops it silently
  after a 200; issue 4 asks for a failure REPORT). A message without ``From`` is taken as sent
  by the participant;
* wrapped ``text/*`` and ``image/*`` are relayed; ``application/im-iscomposing+xml`` (RFC 3994)
  is checked and relayed with ``Success-Report: no`` / ``Failure-Report: no``;
  ``application/blink-screensharing`` goes to ``on_screen_frame`` (200); anything else is
  **413 Unwanted message**; a body starting with ``?OTR:`` is dropped after a 200, as
  SylkServer does;
* a message is private when it has exactly one ``To`` that is not the room; it goes to every
  session of that identity and is mirrored to the sender's *other* sessions, never back to the
  session it came from. A private message whose recipient has no chat session in the room is
  refused with **404** (nothing is relayed, so Blink shows it as not delivered; SylkServer
  answers 200 and drops it). Private is-composing to an unknown recipient is dropped with 200
  (indications carry no reports);
* public messages go to every other chat session; the relayed CPIM keeps the original ``From``
  (display name replaced by the nickname, if any), ``DateTime`` (now when absent) and extension
  headers (minus a forged ``agp.Message-Type``), with ``To: Conference Room <sip:room>``. The
  relayed bytes are built once per message, not per recipient. Text and image messages are kept
  in a bounded history replayed to joiners after the welcome text;
* room messages (welcome, history, status lines with ``agp.Message-Type: status``) come from
  ``Conference Room <sip:room>``.

A sink whose ``send`` returns ``False`` (its queue is full) gets no further message: the switch
calls ``on_overflow(participant_id)`` once, after the fan-out in progress, and the owner fails
that stream (and later calls :meth:`ChatSwitch.leave`). A slow participant never delays others.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sylkbox.msrp import cpim, iscomposing
from sylkbox.msrp.cpim import CpimMessage, Identity
from sylkbox.msrp.errors import MsrpError, RemoteProtocolError

__all__ = [
    "DEFAULT_HISTORY_BYTES",
    "DEFAULT_HISTORY_SIZE",
    "MAX_NICKNAME_LENGTH",
    "SCREEN_SHARING_TYPE",
    "ChatSink",
    "ChatStatus",
    "ChatSwitch",
    "format_duration",
    "format_identity",
    "welcome_text",
]

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_SIZE = 20
DEFAULT_HISTORY_BYTES = 8 * 1024 * 1024
MAX_NICKNAME_LENGTH = 128
SCREEN_SHARING_TYPE = "application/blink-screensharing"
_CPIM = cpim.CONTENT_TYPE
_ISCOMPOSING = iscomposing.CONTENT_TYPE
_OTR_PREFIX = b"?OTR:"


class ChatStatus(enum.IntEnum):
    """What :meth:`ChatSwitch.receive` and :meth:`ChatSwitch.nickname` answer (RFC 4975 10,
    RFC 7701 for 425); ``comment`` is the reason phrase SylkServer/msrplib write."""

    OK = 200
    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    UNWANTED = 413
    UNSUPPORTED_MEDIA_TYPE = 415
    NICKNAME_IN_USE = 425

    @property
    def comment(self) -> str:
        return _COMMENTS[self]


_COMMENTS = {
    ChatStatus.OK: "OK",
    ChatStatus.BAD_REQUEST: "Bad Request",
    ChatStatus.FORBIDDEN: "Forbidden",
    ChatStatus.NOT_FOUND: "Not Found",
    ChatStatus.UNWANTED: "Unwanted message",
    ChatStatus.UNSUPPORTED_MEDIA_TYPE: "Unsupported Media Type",
    ChatStatus.NICKNAME_IN_USE: "Nickname reserved or already in use",
}


class ChatSink(Protocol):
    """One participant's outgoing chat stream (implemented by the MSRP transport glue)."""

    def send(
        self, content_type: str, body: bytes, *, success_report: bool, failure_report: bool
    ) -> bool:
        """Queue one complete message without blocking; ``False`` when the bounded queue is
        full (the switch then stops using this sink and reports it through ``on_overflow``)."""
        ...


@dataclass(slots=True, eq=False)
class _Member:
    participant_id: str
    identity: Identity
    key: tuple[str, str]  # (user, host) of the SIP identity: BLINK.md 4.2 comparison
    sink: ChatSink
    nickname: str | None = None
    failed: bool = False


class _NoSink:
    """The sink of an external sender (SIP MESSAGE): it is never in the member list."""

    def send(
        self, content_type: str, body: bytes, *, success_report: bool, failure_report: bool
    ) -> bool:
        return True


_NO_SINK = _NoSink()


# -- texts (SylkServer room.py) --------------------------------------------------------------------


def format_identity(identity: Identity) -> str:
    """``Display <user@host>`` or ``user@host``: SylkServer's ``format_identity``."""
    user, host = identity.user_host
    aor = f"{user}@{host}" if user else host
    return f"{identity.display_name} <{aor}>" if identity.display_name else aor


def format_duration(duration: timedelta) -> str:
    """SylkServer's ``format_session_duration``: ``N seconds``, ``MM:SS`` or ``HH:MM:SS``."""
    seconds = max(0, round(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if not hours and not minutes:
        return f"{seconds} seconds"
    if not hours:
        return f"{minutes:02d}:{seconds:02d}"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def _aor(room_uri: str) -> str:
    text = room_uri.strip()
    for scheme in ("sip:", "sips:"):
        if text.lower().startswith(scheme):
            return text[len(scheme) :]
    return text


def welcome_text(room_uri: str, others: int, extra: Sequence[str] = ()) -> str:
    """The welcome message of BLINK.md 4.3 (SylkServer ``WelcomeHandler.chat_welcome``).

    ``others`` counts the *other* participants (distinct identities); ``extra`` lines such as
    ``Phones: ...`` and ``WEB: ...`` follow the ``SIP:`` line.
    """
    if others <= 0:
        who = "You are the first participant"
    elif others == 1:
        who = "There is one more participant"
    else:
        who = f"There are {others} more participants"
    text = f"Welcome! {who} in the conference. Others can join by using:\n\nSIP: {_aor(room_uri)}\n"
    text += "".join(f"{line}\n" for line in extra)
    return text.rstrip()


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _clean_nickname(name: str) -> str:
    """msrplib writes ``Use-Nickname`` unquoted and reads it raw: strip quotes leniently."""
    value = name.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value.strip()


# -- the switch ------------------------------------------------------------------------------------


class ChatSwitch:
    """The chat of one room (BLINK.md 4.3): fan-out, private routing, nicknames, history."""

    def __init__(
        self,
        room_uri: str,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        welcome_extra: Sequence[str] = (),
        clock: Callable[[], datetime],
        on_overflow: Callable[[str], None],
        on_screen_frame: Callable[[str, CpimMessage], ChatStatus | None] | None = None,
    ) -> None:
        if history_size < 0 or history_bytes < 0:
            raise ValueError("history limits must not be negative")
        self.room_uri = room_uri
        self._room = Identity.room(room_uri)
        self._room_key = self._room.user_host
        self._history_bytes = history_bytes
        self._welcome_extra = tuple(welcome_extra)
        self._clock = clock
        self._on_overflow = on_overflow
        self._on_screen_frame = on_screen_frame
        self._members: dict[str, _Member] = {}
        self._order: tuple[_Member, ...] = ()  # snapshot used by the fan-out loops
        self._history: deque[bytes] = deque(maxlen=history_size)
        self._history_total = 0
        self.deliveries = 0  # messages handed to sinks (for benches and the web UI)

    # -- membership ------------------------------------------------------------------------------

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def participant_ids(self) -> tuple[str, ...]:
        return tuple(m.participant_id for m in self._order)

    def nickname_of(self, participant_id: str) -> str | None:
        member = self._members.get(participant_id)
        return None if member is None else member.nickname

    def join(
        self,
        participant_id: str,
        identity: Identity,
        sink: ChatSink,
        *,
        media: str = "audio and chat",
        room_identities: Iterable[Identity] | None = None,
        announce: bool = True,
    ) -> None:
        """A participant's chat stream is up: welcome text, history replay, then the status
        line ``<who> has joined the room with <media>`` to the others (not to the joiner, and
        only when no other session of that identity is in the chat already).

        ``room_identities`` are the SIP identities of everyone in the room (any media), used to
        count "more participants" in the welcome as SylkServer does; by default the chat
        members.  ``announce=False`` skips the join line (the owner announces a chat stream
        added to an existing session itself, e.g. ``... has added chat``).
        """
        if participant_id in self._members:
            raise ValueError(f"participant {participant_id!r} already joined the chat")
        member = _Member(participant_id, identity, identity.user_host, sink)
        if room_identities is None:
            keys = {m.key for m in self._order}
        else:
            keys = {i.user_host for i in room_identities}
        keys.discard(member.key)
        already_here = any(m.key == member.key for m in self._order)
        self._members[participant_id] = member
        self._order = (*self._order, member)
        logger.debug("> %s joined the chat of %s", participant_id, self.room_uri)

        now = self._clock()
        welcome = welcome_text(self.room_uri, len(keys), self._welcome_extra)
        overflowed: list[_Member] = []
        body = cpim.build_status(self.room_uri, welcome, now=now, status=False).to_bytes()
        self._deliver(member, body, True, overflowed)
        for item in self._history:
            self._deliver(member, item, True, overflowed)
        if announce and not already_here:
            text = f"{format_identity(identity)} has joined the room"
            if media:
                text += f" with {media}"
            self._broadcast(
                self._status_bytes(text, now), exclude=member, reports=True, overflowed=overflowed
            )
        self._report_overflow(overflowed)

    def leave(self, participant_id: str, *, duration: timedelta, announce: bool = True) -> None:
        """The participant's chat stream is gone: ``<who> has left the room after <duration>``
        to the others, unless another session of that identity is still in the chat."""
        member = self._members.pop(participant_id, None)
        if member is None:
            return
        self._order = tuple(m for m in self._order if m is not member)
        logger.debug("x %s left the chat of %s", participant_id, self.room_uri)
        if not announce or any(m.key == member.key for m in self._order):
            return
        who = format_identity(member.identity)
        text = f"{who} has left the room after {format_duration(duration)}"
        overflowed: list[_Member] = []
        self._broadcast(
            self._status_bytes(text, self._clock()),
            exclude=None,
            reports=True,
            overflowed=overflowed,
        )
        self._report_overflow(overflowed)

    # -- room messages ---------------------------------------------------------------------------

    def status(self, text: str, *, to: str | None = None, exclude: str | None = None) -> None:
        """A room status line (``agp.Message-Type: status``): uploads, screen sharing...

        ``to`` sends it to that participant only; ``exclude`` leaves that participant out.
        """
        body = self._status_bytes(text, self._clock())
        overflowed: list[_Member] = []
        if to is not None:
            member = self._members.get(to)
            if member is not None:
                self._deliver(member, body, True, overflowed)
        else:
            skip = None if exclude is None else self._members.get(exclude)
            self._broadcast(body, exclude=skip, reports=True, overflowed=overflowed)
        self._report_overflow(overflowed)

    def _status_bytes(self, text: str, now: datetime) -> bytes:
        return cpim.build_status(self.room_uri, text, now=now).to_bytes()

    # -- NICKNAME (RFC 7701, BLINK.md 4.3) -------------------------------------------------------

    def nickname(self, participant_id: str, name: str) -> ChatStatus:
        """Set (``''`` clears) the participant's nickname: 200, or 425 when a participant of
        another identity holds it (compared case-insensitively, so nobody can pass as someone
        else by case).  400 for a name with control characters or over 128 characters; 403
        for an unknown participant."""
        member = self._members.get(participant_id)
        if member is None:
            return ChatStatus.FORBIDDEN
        value = _clean_nickname(name)
        if not value:
            member.nickname = None
            return ChatStatus.OK
        if len(value) > MAX_NICKNAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
            return ChatStatus.BAD_REQUEST
        folded = value.casefold()
        for other in self._order:
            if (
                other is not member
                and other.key != member.key
                and other.nickname is not None
                and other.nickname.casefold() == folded
            ):
                return ChatStatus.NICKNAME_IN_USE
        member.nickname = value
        logger.debug("< %s is now known as %r", participant_id, value)
        return ChatStatus.OK

    # -- incoming messages -----------------------------------------------------------------------

    def receive(self, participant_id: str, content_type: str, body: bytes) -> ChatStatus:
        """A complete chat message from a participant; returns the status of the REPORT /
        transaction response (see the module docstring for the rules)."""
        member = self._members.get(participant_id)
        if member is None:
            return ChatStatus.FORBIDDEN
        return self._receive(member, content_type, body)

    def receive_external(
        self, sender_id: str, identity: Identity, content_type: str, body: bytes
    ) -> ChatStatus:
        """A message from someone outside the chat (a SIP MESSAGE to the room URI): checked
        and relayed as a member's would be (its CPIM ``From`` must be ``identity``), to every
        chat session, and kept in the history even when nobody is in the chat."""
        member = _Member(sender_id, identity, identity.user_host, _NO_SINK)
        return self._receive(member, content_type, body)

    def _receive(self, member: _Member, content_type: str, body: bytes) -> ChatStatus:
        participant_id = member.participant_id
        if _media_type(content_type) != _CPIM:
            return ChatStatus.UNSUPPORTED_MEDIA_TYPE
        try:
            message = cpim.parse(body)
        except RemoteProtocolError as exc:
            logger.debug("x %s: bad CPIM: %s", participant_id, exc)
            return ChatStatus.BAD_REQUEST
        if message.from_ is not None and message.from_.user_host != member.key:
            logger.info(
                "x %s: CPIM From %s is not the SIP identity %s",
                participant_id,
                message.from_.uri,
                member.identity.uri,
            )
            return ChatStatus.FORBIDDEN
        wrapped = message.content_type
        if wrapped == _ISCOMPOSING:
            return self._relay_iscomposing(member, message)
        if wrapped == SCREEN_SHARING_TYPE:  # BLINK.md 6: the frame's status is the REPORT's
            if self._on_screen_frame is not None:
                return self._on_screen_frame(participant_id, message) or ChatStatus.OK
            return ChatStatus.OK
        if not wrapped.startswith(("text/", "image/")):
            return ChatStatus.UNWANTED
        if message.body.startswith(_OTR_PREFIX):
            logger.debug("x %s: OTR message dropped", participant_id)
            return ChatStatus.OK
        if message.is_private(self.room_uri):
            return self._relay_private(member, message, reports=True, mirror=True)
        relayed = self._relayed_bytes(member, message)
        overflowed: list[_Member] = []
        self._broadcast(relayed, exclude=member, reports=True, overflowed=overflowed)
        self._remember(relayed)
        self._report_overflow(overflowed)
        return ChatStatus.OK

    def _relayed_bytes(self, member: _Member, message: CpimMessage) -> bytes:
        return cpim.build_relayed(
            message,
            room_uri=self.room_uri,
            sender=member.identity,
            nickname=member.nickname,
            now=self._clock(),
        ).to_bytes()

    def _relay_iscomposing(self, member: _Member, message: CpimMessage) -> ChatStatus:
        try:
            iscomposing.parse(message.body)
        except RemoteProtocolError as exc:
            logger.debug("x %s: bad is-composing: %s", member.participant_id, exc)
            return ChatStatus.BAD_REQUEST
        if message.is_private(self.room_uri):
            # Indications go to the recipient's sessions only, and carry no reports.
            self._relay_private(member, message, reports=False, mirror=False)
            return ChatStatus.OK
        overflowed: list[_Member] = []
        self._broadcast(
            self._relayed_bytes(member, message),
            exclude=member,
            reports=False,
            overflowed=overflowed,
        )
        self._report_overflow(overflowed)
        return ChatStatus.OK

    def _relay_private(
        self, member: _Member, message: CpimMessage, *, reports: bool, mirror: bool
    ) -> ChatStatus:
        recipient = message.to[0].user_host
        targets = [
            m
            for m in self._order
            if m is not member and (m.key == recipient or (mirror and m.key == member.key))
        ]
        if not any(m.key == recipient for m in targets):
            if reports:
                logger.debug("x %s: private recipient not in the chat", member.participant_id)
                return ChatStatus.NOT_FOUND
            return ChatStatus.OK
        relayed = self._relayed_bytes(member, message)
        overflowed: list[_Member] = []
        for target in targets:
            self._deliver(target, relayed, reports, overflowed)
        self._report_overflow(overflowed)
        return ChatStatus.OK

    # -- delivery --------------------------------------------------------------------------------

    def _remember(self, relayed: bytes) -> None:
        history = self._history
        if history.maxlen == 0 or len(relayed) > self._history_bytes:
            return
        if len(history) == history.maxlen:
            self._history_total -= len(history[0])
        history.append(relayed)
        self._history_total += len(relayed)
        while self._history_total > self._history_bytes:
            self._history_total -= len(history.popleft())

    def _broadcast(
        self, body: bytes, *, exclude: _Member | None, reports: bool, overflowed: list[_Member]
    ) -> None:
        delivered = 0
        for member in self._order:
            if member is exclude or member.failed:
                continue
            try:
                accepted = member.sink.send(
                    _CPIM, body, success_report=reports, failure_report=reports
                )
            except MsrpError as exc:
                logger.debug("x %s: send failed: %s", member.participant_id, exc)
                accepted = False
            if accepted:
                delivered += 1
            else:
                member.failed = True
                overflowed.append(member)
        self.deliveries += delivered

    def _deliver(
        self, member: _Member, body: bytes, reports: bool, overflowed: list[_Member]
    ) -> None:
        if member.failed:
            return
        try:
            accepted = member.sink.send(_CPIM, body, success_report=reports, failure_report=reports)
        except MsrpError as exc:
            logger.debug("x %s: send failed: %s", member.participant_id, exc)
            accepted = False
        if accepted:
            self.deliveries += 1
        else:
            member.failed = True
            overflowed.append(member)

    def _report_overflow(self, overflowed: list[_Member]) -> None:
        # After the fan-out, so an owner that calls leave() from the callback is safe.
        for member in overflowed:
            logger.info("x %s: chat queue full, failing the stream", member.participant_id)
            self._on_overflow(member.participant_id)
