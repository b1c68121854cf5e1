"""Tests for sylkbox.conference.chat: the room chat switch of BLINK.md 4.3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.conference.chat import (
    ChatStatus,
    ChatSwitch,
    format_duration,
    format_identity,
    welcome_text,
)
from sylkbox.msrp import cpim
from sylkbox.msrp.cpim import CpimMessage, Identity
from sylkbox.msrp.errors import LocalProtocolError

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
ROOM = "room@sylkbox.local"
NOW = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
ALICE = Identity("Alice Smith", "sip:alice@192.168.1.20")
BOB = Identity("Bob", "sip:bob@192.168.1.21")
CAROL = Identity(None, "sip:carol@192.168.1.22")
ROOM_ID = Identity("Conference Room", "sip:room@sylkbox.local")


class Sink:
    """A bounded fake outgoing stream: accepts `capacity` messages, then refuses."""

    def __init__(self, capacity: int | None = None, *, raises: bool = False) -> None:
        self.capacity = capacity
        self.raises = raises
        self.sent: list[tuple[str, bytes, bool, bool]] = []

    def send(
        self, content_type: str, body: bytes, *, success_report: bool, failure_report: bool
    ) -> bool:
        if self.raises:
            raise LocalProtocolError("session closed")
        if self.capacity is not None and len(self.sent) >= self.capacity:
            return False
        self.sent.append((content_type, body, success_report, failure_report))
        return True

    @property
    def messages(self) -> list[CpimMessage]:
        return [cpim.parse(body) for _, body, _, _ in self.sent]

    @property
    def texts(self) -> list[str]:
        return [m.text() for m in self.messages]

    def clear(self) -> None:
        self.sent.clear()


class Room:
    """A switch with a fixed clock and a record of overflow callbacks."""

    def __init__(self, **kwargs: object) -> None:
        self.overflows: list[str] = []
        self.frames: list[tuple[str, CpimMessage]] = []
        self.sinks: dict[str, Sink] = {}
        self.switch = ChatSwitch(
            ROOM,
            clock=lambda: NOW,
            on_overflow=self.overflows.append,
            on_screen_frame=lambda pid, msg: self.frames.append((pid, msg)),
            **kwargs,  # type: ignore[arg-type]
        )

    def join(
        self, pid: str, identity: Identity, sink: Sink | None = None, **kwargs: object
    ) -> Sink:
        sink = sink or Sink()
        self.sinks[pid] = sink
        self.switch.join(pid, identity, sink, **kwargs)  # type: ignore[arg-type]
        return sink

    def clear(self) -> None:
        for sink in self.sinks.values():
            sink.clear()


def chat(
    sender: Identity | None,
    text: str = "hello",
    *,
    to: tuple[Identity, ...] = (ROOM_ID,),
    content_type: str = "text/plain",
    stamp: datetime | None = datetime(2024, 5, 2, 10, 0, tzinfo=UTC),
    extra: tuple[tuple[str, str, str], ...] = (),
    body: bytes | None = None,
) -> bytes:
    value = f'{content_type}; charset="utf8"' if content_type.startswith("text/") else content_type
    return CpimMessage(
        from_=sender,
        to=to,
        datetime=stamp,
        ns_headers=extra,
        content_headers=(("Content-Type", value),),
        body=text.encode() if body is None else body,
    ).to_bytes()


ISCOMPOSING = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n"
    b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>'
    b"<contenttype>text</contenttype><refresh>60</refresh></isComposing>"
)


@pytest.fixture
def room() -> Room:
    return Room()


# -- welcome (BLINK.md 4.3) -------------------------------------------------------------------


def test_welcome_wording_for_one_two_and_three_participants(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB)
    c = room.join("c", CAROL)
    tail = " in the conference. Others can join by using:\n\nSIP: room@sylkbox.local"
    assert a.texts[0] == "Welcome! You are the first participant" + tail
    assert b.texts[0] == "Welcome! There is one more participant" + tail
    assert c.texts[0] == "Welcome! There are 2 more participants" + tail
    for sink in (a, b, c):
        welcome = sink.messages[0]
        assert welcome.from_ == ROOM_ID
        assert welcome.to == (ROOM_ID,)
        assert not welcome.is_status
        assert sink.sent[0][2:] == (True, True)


def test_welcome_first_participant_exact_bytes(room: Room) -> None:
    a = room.join("a", ALICE)
    assert a.sent[0][:2] == ("message/cpim", (VECTORS / "chat_welcome_first.cpim").read_bytes())


def test_welcome_counts_distinct_room_identities_and_extra_lines() -> None:
    room = Room(welcome_extra=("Phones: 100 or 200", "WEB: https://box/room"))
    # Two devices of Bob and an audio-only Carol are in the room: 2 other identities.
    a = room.join("a", ALICE, room_identities=[ALICE, BOB, BOB, CAROL])
    assert a.texts[0] == (
        "Welcome! There are 2 more participants in the conference. Others can join by using:"
        "\n\nSIP: room@sylkbox.local\nPhones: 100 or 200\nWEB: https://box/room"
    )


def test_welcome_text_accepts_sip_scheme() -> None:
    assert welcome_text("sip:r@h", 1).endswith("\n\nSIP: r@h")


def test_second_session_of_same_identity_is_not_counted(room: Room) -> None:
    room.join("a1", ALICE)
    a2 = room.join("a2", ALICE)
    assert a2.texts[0].startswith("Welcome! You are the first participant")


def test_join_twice_is_refused(room: Room) -> None:
    room.join("a", ALICE)
    with pytest.raises(ValueError, match="already"):
        room.join("a", ALICE)


# -- join / leave status lines ----------------------------------------------------------------


def test_join_status_goes_to_others_not_to_the_joiner(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB, media="audio")
    assert a.texts[1:] == ["Bob <bob@192.168.1.21> has joined the room with audio"]
    assert a.messages[1].is_status
    assert a.messages[1].from_ == ROOM_ID
    assert len(b.sent) == 1  # only its welcome
    c = room.join("c", CAROL)
    assert (
        a.texts[-1] == b.texts[-1] == "carol@192.168.1.22 has joined the room with audio and chat"
    )
    assert len(c.sent) == 1


def test_join_status_skipped_for_second_device_and_when_not_announced(room: Room) -> None:
    a = room.join("a", ALICE)
    room.join("b1", BOB)
    room.join("b2", BOB)
    room.join("c", CAROL, announce=False)
    assert a.texts[1:] == ["Bob <bob@192.168.1.21> has joined the room with audio and chat"]


def test_leave_status_to_others_with_duration(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    room.switch.leave("b", duration=timedelta(minutes=2, seconds=5))
    assert a.texts == ["Bob <bob@192.168.1.21> has left the room after 02:05"]
    assert a.messages[0].is_status
    assert b.sent == []
    assert "b" not in room.switch
    room.switch.leave("b", duration=timedelta(0))  # unknown: nothing happens
    assert len(a.sent) == 1


def test_leave_of_one_device_is_silent_until_the_last(room: Room) -> None:
    a = room.join("a", ALICE)
    room.join("b1", BOB)
    room.join("b2", BOB)
    room.clear()
    room.switch.leave("b1", duration=timedelta(seconds=3))
    assert a.sent == []
    room.switch.leave("b2", duration=timedelta(seconds=3))
    assert a.texts == ["Bob <bob@192.168.1.21> has left the room after 3 seconds"]


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0 seconds"),
        (timedelta(seconds=59, milliseconds=499), "59 seconds"),
        (timedelta(seconds=59, milliseconds=600), "01:00"),
        (timedelta(minutes=59, seconds=59), "59:59"),
        (timedelta(hours=1, minutes=2, seconds=5), "01:02:05"),
        (timedelta(days=1, hours=1), "25:00:00"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_format_identity() -> None:
    assert format_identity(ALICE) == "Alice Smith <alice@192.168.1.20>"
    assert format_identity(CAROL) == "carol@192.168.1.22"


def test_room_status_to_all_one_or_all_but_one(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    room.switch.status("Room x - uploading")
    room.switch.status("only for bob", to="b")
    room.switch.status("not for bob", exclude="b")
    room.switch.status("nobody", to="zz")
    assert a.texts == ["Room x - uploading", "not for bob"]
    assert b.texts == ["Room x - uploading", "only for bob"]
    assert all(m.is_status for m in a.messages + b.messages)


# -- public fan-out ---------------------------------------------------------------------------


def test_public_message_fans_out_once_built_never_echoed(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB)
    c = room.join("c", CAROL)
    room.clear()
    assert room.switch.receive("a", "message/cpim", chat(ALICE, "hi all")) == 200
    assert a.sent == []
    assert len(b.sent) == len(c.sent) == 1
    assert b.sent[0][1] is c.sent[0][1]  # built once for every recipient
    assert b.sent[0][0] == "message/cpim"
    assert b.sent[0][2:] == (True, True)
    relayed = b.messages[0]
    assert relayed.from_ == ALICE
    assert relayed.to == (ROOM_ID,)
    assert relayed.datetime == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert relayed.text() == "hi all"


def test_blink_message_relayed_exact_bytes(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    data = (VECTORS / "payload_blink_chat.cpim").read_bytes()
    assert room.switch.receive("a", 'message/cpim; charset="utf-8"', data) == 200
    assert b.sent[-1][1] == (VECTORS / "chat_relayed_public.cpim").read_bytes()


def test_missing_datetime_set_to_now_and_missing_from_is_the_sender(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    assert room.switch.receive("a", "message/cpim", chat(None, stamp=None)) == 200
    relayed = b.messages[-1]
    assert relayed.datetime == NOW
    assert relayed.from_ == ALICE


def test_extension_headers_kept_and_forged_status_marker_dropped(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    extra = (
        ("", "NS", "agp <urn:ag-projects:xml:ns:cpim>"),
        ("agp", "Message-Type", "status"),
        ("", "NS", "x <urn:example>"),
        ("x", "Mood", "happy"),
    )
    assert room.switch.receive("a", "message/cpim", chat(ALICE, extra=extra)) == 200
    relayed = b.messages[-1]
    assert not relayed.is_status
    assert relayed.extension("urn:example", "Mood") == "happy"


def test_image_is_relayed_and_kept(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    body = chat(ALICE, content_type="image/png", body=b"\x89PNG\r\n\x1a\n")
    assert room.switch.receive("a", "message/cpim", body) == 200
    assert b.messages[-1].body == b"\x89PNG\r\n\x1a\n"
    c = room.join("c", CAROL)
    assert c.messages[1].content_type == "image/png"


# -- refusals ---------------------------------------------------------------------------------


def test_from_mismatch_is_refused_with_403_and_nothing_relayed(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    assert room.switch.receive("a", "message/cpim", chat(BOB, "I am Bob")) == 403
    assert room.switch.receive("a", "message/cpim", chat(BOB, to=(CAROL,))) == 403
    assert b.sent == []
    c = room.join("c", CAROL)
    assert len(c.sent) == 1  # no history was kept


def test_from_with_other_display_name_or_scheme_is_the_same_identity(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    other = Identity("Al", "sips:alice@192.168.1.20")
    assert room.switch.receive("a", "message/cpim", chat(other)) == 200
    assert b.messages[-1].from_ == other


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"plain text", ChatStatus.UNSUPPORTED_MEDIA_TYPE),
        ("application/octet-stream", b"x", ChatStatus.UNSUPPORTED_MEDIA_TYPE),
        ("message/cpim", b"From: <sip:alice@192.168.1.20>\r\nno blank line", 400),
        ("message/cpim", b"\xff\xfe\r\n\r\n", 400),
        ("message/cpim", chat(ALICE, content_type="application/octet-stream"), 413),
        ("message/cpim", chat(ALICE, content_type="application/blink-zrtp-sas"), 413),
        ("message/cpim", chat(ALICE, content_type="application/im-iscomposing+xml"), 400),
    ],
)
def test_refused_messages(room: Room, content_type: str, body: bytes, status: int) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    result = room.switch.receive("a", content_type, body)
    assert result == status
    assert b.sent == []


def test_status_comments() -> None:
    assert ChatStatus.UNWANTED.comment == "Unwanted message"
    assert ChatStatus.NICKNAME_IN_USE.comment == "Nickname reserved or already in use"
    assert ChatStatus.OK.comment == "OK"


def test_unknown_participant_is_forbidden(room: Room) -> None:
    assert room.switch.receive("zz", "message/cpim", chat(ALICE)) == 403
    assert room.switch.nickname("zz", "x") == 403


def test_otr_is_dropped_with_200(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    assert room.switch.receive("a", "message/cpim", chat(ALICE, "?OTR:AAMG...")) == 200
    assert b.sent == []


def test_screen_sharing_frames_go_to_the_callback(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    room.clear()
    frame = chat(ALICE, content_type="application/blink-screensharing", body=b"/9j/4AAQ")
    assert room.switch.receive("a", "message/cpim", frame) == 200
    assert b.sent == []
    assert [(pid, m.body) for pid, m in room.frames] == [("a", b"/9j/4AAQ")]
    bare = ChatSwitch(ROOM, clock=lambda: NOW, on_overflow=lambda _pid: None)
    bare.join("a", ALICE, Sink())
    assert bare.receive("a", "message/cpim", frame) == 200


# -- nicknames (RFC 7701) ---------------------------------------------------------------------


def test_nickname_replaces_display_name_in_relayed_from(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    assert room.switch.nickname("a", '"Ally"') == 200
    assert room.switch.nickname_of("a") == "Ally"
    assert room.switch.receive("a", "message/cpim", chat(ALICE)) == 200
    assert b.messages[-1].from_ == Identity("Ally", ALICE.uri)
    assert room.switch.nickname("a", "") == 200
    assert room.switch.nickname_of("a") is None
    assert room.switch.receive("a", "message/cpim", chat(ALICE)) == 200
    assert b.messages[-1].from_ == ALICE


def test_nickname_conflict_is_425(room: Room) -> None:
    room.join("a1", ALICE)
    room.join("a2", ALICE)
    room.join("b", BOB)
    assert room.switch.nickname("a1", "Boss") == 200
    assert room.switch.nickname("b", "Boss") == 425
    assert room.switch.nickname("b", "boss") == 425
    assert room.switch.nickname_of("b") is None
    assert room.switch.nickname("a2", "Boss") == 200  # Alice's other device may use it
    assert room.switch.nickname("a1", "") == 200
    assert room.switch.nickname("b", "Boss") == 425  # still held by a2
    room.switch.leave("a2", duration=timedelta(0))
    assert room.switch.nickname("b", "Boss") == 200


def test_nickname_with_control_characters_or_too_long_is_400(room: Room) -> None:
    room.join("a", ALICE)
    assert room.switch.nickname("a", "bad\r\nname") == 400
    assert room.switch.nickname("a", "x" * 129) == 400
    assert room.switch.nickname("a", "  spaced  ") == 200
    assert room.switch.nickname_of("a") == "spaced"


# -- private messages -------------------------------------------------------------------------


def test_private_message_routing_and_mirroring(room: Room) -> None:
    a1 = room.join("a1", ALICE)
    a2 = room.join("a2", ALICE)
    b1 = room.join("b1", BOB)
    b2 = room.join("b2", BOB)
    c = room.join("c", CAROL)
    room.clear()
    to_bob = Identity(None, "sip:bob@192.168.1.21")
    assert room.switch.receive("a1", "message/cpim", chat(ALICE, "psst", to=(to_bob,))) == 200
    assert a1.sent == [] and c.sent == []
    for sink in (a2, b1, b2):
        assert len(sink.sent) == 1
        assert sink.sent[0][2:] == (True, True)
        message = sink.messages[0]
        assert message.to == (to_bob,)
        assert message.from_ == ALICE
        assert message.text() == "psst"
    d = room.join("d", Identity(None, "sip:dave@192.168.1.23"))
    assert len(d.sent) == 1  # private messages are not in the history


def test_private_blink_vector(room: Room) -> None:
    a = room.join("a", ALICE)
    room.join("b", BOB)
    c = room.join("c", CAROL)
    room.clear()
    data = (VECTORS / "payload_blink_private.cpim").read_bytes()  # Bob -> <sip:alice@...20>
    assert room.switch.receive("b", "message/cpim", data) == 200
    assert c.sent == []
    assert a.messages[0].to == (Identity(None, "sip:alice@192.168.1.20"),)
    assert a.messages[0].from_ == BOB
    assert a.messages[0].text() == "psst"


def test_private_message_to_unknown_recipient_is_404(room: Room) -> None:
    room.join("a1", ALICE)
    a2 = room.join("a2", ALICE)
    b = room.join("b", BOB)
    room.clear()
    ghost = Identity(None, "sip:ghost@192.168.1.99")
    assert room.switch.receive("a1", "message/cpim", chat(ALICE, to=(ghost,))) == 404
    assert a2.sent == [] and b.sent == []


def test_several_to_headers_make_a_public_message(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    c = room.join("c", CAROL)
    room.clear()
    assert room.switch.receive("a", "message/cpim", chat(ALICE, to=(BOB, CAROL))) == 200
    assert b.messages[0].to == c.messages[0].to == (ROOM_ID,)


# -- is-composing (RFC 3994) ------------------------------------------------------------------


def test_public_iscomposing_relayed_without_reports(room: Room) -> None:
    a = room.join("a", ALICE)
    b = room.join("b", BOB)
    c = room.join("c", CAROL)
    room.clear()
    body = chat(ALICE, content_type="application/im-iscomposing+xml", body=ISCOMPOSING)
    assert room.switch.receive("a", "message/cpim", body) == 200
    assert a.sent == []
    for sink in (b, c):
        assert sink.sent[0][2:] == (False, False)
        assert sink.messages[0].content_type == "application/im-iscomposing+xml"
        assert sink.messages[0].body == ISCOMPOSING
        assert sink.messages[0].to == (ROOM_ID,)
    d = room.join("d", Identity(None, "sip:dave@192.168.1.23"))
    assert len(d.sent) == 1  # indications are not history


def test_blink_iscomposing_vector_is_public(room: Room) -> None:
    room.join("a", ALICE)
    b = room.join("b", BOB)
    data = (VECTORS / "payload_blink_iscomposing.cpim").read_bytes()
    assert room.switch.receive("a", "message/cpim", data) == 200
    assert b.sent[-1][2:] == (False, False)


def test_private_iscomposing_only_to_recipient(room: Room) -> None:
    room.join("a1", ALICE)
    a2 = room.join("a2", ALICE)
    b = room.join("b", BOB)
    c = room.join("c", CAROL)
    room.clear()
    body = chat(ALICE, content_type="application/im-iscomposing+xml", body=ISCOMPOSING, to=(BOB,))
    assert room.switch.receive("a1", "message/cpim", body) == 200
    assert a2.sent == [] and c.sent == []
    assert b.sent[0][2:] == (False, False)
    assert b.messages[0].to == (BOB,)
    ghost = chat(
        ALICE,
        content_type="application/im-iscomposing+xml",
        body=ISCOMPOSING,
        to=(Identity(None, "sip:ghost@h"),),
    )
    room.clear()
    assert room.switch.receive("a1", "message/cpim", ghost) == 200
    assert all(sink.sent == [] for sink in room.sinks.values())


# -- history ----------------------------------------------------------------------------------


def test_history_replay_order_and_bound() -> None:
    room = Room(history_size=3)
    room.join("a", ALICE)
    b = room.join("b", BOB)
    for i in range(5):
        assert room.switch.receive("a", "message/cpim", chat(ALICE, f"m{i}")) == 200
    assert room.switch.receive("b", "message/cpim", chat(BOB, "from bob")) == 200
    c = room.join("c", CAROL)
    texts = c.texts
    assert texts[0].startswith("Welcome! There are 2 more participants")
    assert texts[1:] == ["m3", "m4", "from bob"]
    replay = c.messages[1:]
    assert [m.from_ for m in replay] == [ALICE, ALICE, BOB]
    assert all(m.to == (ROOM_ID,) for m in replay)
    assert all(sent[2:] == (True, True) for sent in c.sent)
    assert len(b.sent) == 1 + 5 + 1  # welcome, Alice's five, then the join line of Carol


def test_history_keeps_the_nickname_of_the_time() -> None:
    room = Room()
    room.join("a", ALICE)
    room.switch.nickname("a", "Ally")
    room.switch.receive("a", "message/cpim", chat(ALICE, "old"))
    room.switch.nickname("a", "")
    c = room.join("c", CAROL)
    assert c.messages[1].from_ == Identity("Ally", ALICE.uri)


def test_history_byte_bound_and_disabled() -> None:
    room = Room(history_bytes=800)  # two 200-character messages fit, not three
    room.join("a", ALICE)
    for i in range(4):
        room.switch.receive("a", "message/cpim", chat(ALICE, f"{i}" * 200))
    c = room.join("c", CAROL)
    assert [t[0] for t in c.texts[1:]] == ["2", "3"]
    room.switch.receive("a", "message/cpim", chat(ALICE, "x" * 1000))  # larger than the bound
    d = room.join("d", BOB)
    assert [t[0] for t in d.texts[1:]] == ["2", "3"]

    none = Room(history_size=0)
    none.join("a", ALICE)
    none.switch.receive("a", "message/cpim", chat(ALICE))
    assert len(none.join("c", CAROL).sent) == 1

    with pytest.raises(ValueError, match="negative"):
        ChatSwitch(ROOM, history_size=-1, clock=lambda: NOW, on_overflow=lambda _pid: None)


# -- overflow ---------------------------------------------------------------------------------


def test_overflow_reported_once_and_slow_sink_skipped(room: Room) -> None:
    room.join("a", ALICE)
    slow = room.join("b", BOB, Sink(capacity=3))  # welcome + 2 messages
    c = room.join("c", CAROL)
    for i in range(5):
        assert room.switch.receive("a", "message/cpim", chat(ALICE, f"m{i}")) == 200
    assert room.overflows == ["b"]
    assert slow.texts[1:] == ["carol@192.168.1.22 has joined the room with audio and chat", "m0"]
    assert c.texts[1:] == ["m0", "m1", "m2", "m3", "m4"]
    room.switch.status("still skipped")
    assert len(slow.sent) == 3
    assert room.overflows == ["b"]


def test_owner_may_leave_from_the_overflow_callback() -> None:
    switch: ChatSwitch
    left: list[str] = []

    def on_overflow(pid: str) -> None:
        left.append(pid)
        switch.leave(pid, duration=timedelta(seconds=1))

    switch = ChatSwitch(ROOM, clock=lambda: NOW, on_overflow=on_overflow)
    a, c = Sink(), Sink()
    switch.join("a", ALICE, a)
    switch.join("b", BOB, Sink(capacity=1))  # only the welcome fits
    switch.join("c", CAROL, c)
    assert left == ["b"]  # the join line of Carol overflowed Bob
    assert "b" not in switch
    assert (
        cpim.parse(c.sent[-1][1]).text()
        == "Bob <bob@192.168.1.21> has left the room after 1 seconds"
    )
    assert switch.receive("a", "message/cpim", chat(ALICE)) == 200
    assert switch.participant_ids == ("a", "c")


def test_sink_that_raises_a_protocol_error_is_treated_as_overflowed(room: Room) -> None:
    room.join("a", ALICE)
    room.join("b", BOB, Sink(raises=True))
    assert room.overflows == ["b"]
    assert room.switch.receive("a", "message/cpim", chat(ALICE)) == 200
    assert room.switch.receive("a", "message/cpim", chat(ALICE, to=(BOB,))) == 200
    assert room.overflows == ["b"]


def test_deliveries_counter(room: Room) -> None:
    room.join("a", ALICE)
    room.join("b", BOB)
    room.join("c", CAROL)
    before = room.switch.deliveries
    room.switch.receive("a", "message/cpim", chat(ALICE))
    assert room.switch.deliveries == before + 2
    assert len(room.switch) == 3


# -- fuzzing ----------------------------------------------------------------------------------

STATUSES = {200, 400, 403, 404, 413, 415}


@settings(max_examples=300, deadline=None)
@given(
    content_type=st.sampled_from(["message/cpim", "MESSAGE/CPIM; x=y", "text/plain"]),
    body=st.binary(max_size=400)
    | st.builds(
        lambda head, inner, payload: head + b"\r\n\r\n" + inner + b"\n\n" + payload,
        st.sampled_from(
            [
                b"From: <sip:alice@192.168.1.20>",
                b"From: <sip:alice@192.168.1.20>\r\nTo: <sip:bob@192.168.1.21>",
                b"To: <sip:room@sylkbox.local>",
                b"From: x",
                b"",
            ]
        ),
        st.sampled_from(
            [
                b"Content-Type: text/plain",
                b"Content-Type: application/im-iscomposing+xml",
                b"Content-Type: image/jpeg",
                b"Content-Type: application/blink-screensharing",
                b"",
            ]
        ),
        st.binary(max_size=200),
    ),
)
def test_receive_never_raises(content_type: str, body: bytes) -> None:
    room = Room()
    room.join("a", ALICE)
    room.join("b", BOB)
    assert room.switch.receive("a", content_type, body) in STATUSES


def test_screen_frame_status_becomes_the_report_status() -> None:
    """A frame the screen-share module refuses (not a JPEG, too large) is not reported 200."""
    switch = ChatSwitch(
        ROOM,
        clock=lambda: NOW,
        on_overflow=lambda _pid: None,
        on_screen_frame=lambda _pid, _msg: ChatStatus.UNWANTED,
    )
    switch.join("a", ALICE, Sink())
    frame = chat(ALICE, content_type="application/blink-screensharing", body=b"not a jpeg")
    assert switch.receive("a", "message/cpim", frame) == 413
