"""Tests for sylkbox/conference/room_chat.py: the `ChatPort` glue between MSRP channels and the
room's `ChatSwitch` (REPORT statuses, NICKNAME answers and display-text, bounded queues that
fail a slow stream, SIP MESSAGE relay and history), without sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room
from sylkbox.conference.room_chat import QueueLimits, RoomChat
from sylkbox.config import RoomPolicy
from sylkbox.msrp.message import MsrpRequest
from sylkbox.msrp.parser import MsrpParser
from sylkbox.msrp.session import (
    MessageReceived,
    MsrpSession,
    NicknameRequested,
    ResponseReceived,
)
from sylkbox.msrp.uri import MsrpUri, new_session_id

T = TypeVar("T")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ROOM = "room@example.com"


class Channel:
    def __init__(self) -> None:
        local = MsrpUri(secure=True, host="192.0.2.1", port=2855, session_id=new_session_id())
        remote = MsrpUri(secure=True, host="192.0.2.9", port=2855, session_id=new_session_id())
        self.session = MsrpSession(local, (remote,))
        self.written = bytearray()
        self.open = True
        self.stalled = False

    local_uri = property(lambda self: self.session.local_uri)
    remote_path = property(lambda self: self.session.remote_path)
    writable = property(lambda self: self.open and not self.stalled)
    is_open = property(lambda self: self.open)

    def set_handler(self, handler: object, on_lost: object = None) -> None:
        pass

    def call(self, action: Callable[[MsrpSession], T]) -> T:
        result = action(self.session)
        if not self.stalled:
            self.written += self.session.data_to_send()
        return result

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.open = False

    def sends(self) -> list[MsrpRequest]:
        parser = MsrpParser()
        parser.feed(bytes(self.written))
        out = []
        while (m := parser.next_message()) is not None:
            if isinstance(m, MsrpRequest):
                out.append(m)
        return out


class Owner:
    def __init__(self, chat: RoomChat) -> None:
        self.chat = chat
        self.failed: list[tuple[str, str]] = []
        self.changed = 0

    def fail_chat(self, room: Room, participant: Participant, reason: str) -> None:
        self.failed.append((participant.uri, reason))
        self.chat.leave(room, participant)

    def room_changed(self, room: Room) -> None:
        self.changed += 1


def setup(limits: QueueLimits | None = None) -> tuple[RoomChat, Owner, Room]:
    chat = RoomChat(clock=lambda: NOW, limits=limits)
    owner = Owner(chat)
    chat.attach(owner)
    room = Room(key=ROOM, id="r1", policy=RoomPolicy(), server_name="sylkbox")
    return chat, owner, room


def add(chat: RoomChat, room: Room, user: str) -> tuple[Participant, Channel]:
    participant = Participant(
        id=user, uri=f"sip:{user}@example.com", display_name=user.title(),
        contact=f"sip:{user}@192.0.2.9", joined_at=NOW - timedelta(seconds=1),
    )
    room.add(participant)
    channel = Channel()
    chat.join(room, participant, channel)
    return participant, channel


def cpim(sender: str, text: str, to: str = f"<sip:{ROOM}>") -> bytes:
    return (
        f"From: <{sender}>\r\nTo: {to}\r\nDateTime: 2024-05-01T12:00:00+00:00\r\n\r\n"
        f"Content-Type: text/plain\r\n\r\n{text}"
    ).encode()


def received(channel: Channel, body: bytes) -> MessageReceived:
    return MessageReceived(
        message_id="m1", content_type="message/cpim", body=body, headers={}, size=len(body),
        success_report=True, failure_report="yes", reply_path=channel.session.remote_path,
    )


def texts(channel: Channel) -> list[bytes]:
    return [r.body.rsplit(b"\r\n\r\n", 1)[-1] for r in channel.sends() if r.method == "SEND"]


def test_public_message_is_relayed_and_reported() -> None:
    chat, _, room = setup()
    alice, a = add(chat, room, "alice")
    _, b = add(chat, room, "bob")
    chat.handle_event(room, alice, received(a, cpim(alice.uri, "hello")))
    assert b"hello" in texts(b)
    assert b"hello" not in texts(a)
    [report] = [r for r in a.sends() if r.method == "REPORT"]
    assert report.headers["Status"] == "000 200 OK"


def test_forged_from_gets_a_403_report_and_is_not_relayed() -> None:
    chat, _, room = setup()
    alice, a = add(chat, room, "alice")
    _, b = add(chat, room, "bob")
    chat.handle_event(room, alice, received(a, cpim("sip:bob@example.com", "forged")))
    [report] = [r for r in a.sends() if r.method == "REPORT"]
    assert report.headers["Status"].startswith("000 403")
    assert b"forged" not in texts(b)


def test_nickname_sets_display_text_and_conflict_is_425() -> None:
    chat, owner, room = setup()
    alice, a = add(chat, room, "alice")
    bob, b = add(chat, room, "bob")
    for participant, channel, name in ((alice, a, "Ace"), (bob, b, "ace")):
        req = MsrpRequest(
            "NICKNAME", "t" + participant.id, (channel.local_uri,), channel.remote_path,
            {"Use-Nickname": name}, b"", "$",
        )
        chat.handle_event(
            room, participant,
            NicknameRequested(transaction_id=req.transaction_id, nickname=name, request=req),
        )
    assert alice.nickname == "Ace" and bob.nickname is None
    assert owner.changed == 1
    assert b"MSRP talice 200" in bytes(a.written)
    assert b"MSRP tbob 425 Nickname reserved or already in use" in bytes(b.written)


def test_a_stalled_participant_overflows_and_is_failed() -> None:
    chat, owner, room = setup(QueueLimits(messages=5, bytes=1 << 20))
    alice, a = add(chat, room, "alice")
    bob, b = add(chat, room, "bob")
    b.stalled = True
    for i in range(10):
        chat.handle_event(room, alice, received(a, cpim(alice.uri, f"m{i}")))
    assert owner.failed == [(bob.uri, "chat queue full (participant too slow)")]
    # acknowledgements free the queue of a reading participant
    sink = chat.sink_of(alice.id)
    assert sink is not None
    pending = sink.pending_messages
    for request in a.sends():
        if request.method == "SEND":
            chat.handle_event(room, alice, ResponseReceived(
                transaction_id=request.transaction_id, method="SEND",
                message_id=request.headers.get("Message-ID"), status=200, comment="OK",
                headers={},
            ))
    assert sink.pending_messages < pending


def test_sip_message_is_relayed_and_kept_in_history() -> None:
    chat, _, room = setup()
    status = chat.relay_sip_message(room, "sip:dave@example.com", "Dave", "text/plain", b"hi")
    assert status == 200
    _, a = add(chat, room, "alice")
    assert b"hi" in texts(a)  # replayed from the history
    _, b = add(chat, room, "bob")
    status = chat.relay_sip_message(
        room, "sip:dave@example.com", None, "message/cpim", cpim("sip:alice@example.com", "x")
    )
    assert status == 403
    assert chat.relay_sip_message(room, "sip:dave@example.com", None, "image/png", b"") == 415
    assert b"x" not in texts(b)
