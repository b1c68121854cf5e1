"""Tests for sylkbox/conference/file_push.py: ``[files] push`` (BLINK.md 5, SylkServer's
``push_file_transfer``).

The pure parts (offer, answer, recipients, INVITE) are checked on their own; the push itself
runs in a real `Focus` against the fakes of `tests.helpers.fakes` and the MSRP fakes of
`tests.conference.test_refer_chat`, with the callee's MSRP side a real `MsrpSession` fed the
bytes the box writes (FILE_OFFSET, the SEND chunks, the callee's 200 REPORT).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sylkbox.conference.file_push import (
    build_push_invite,
    build_push_offer,
    read_push_answer,
    recipients,
    sender_uri,
)
from sylkbox.conference.files import FileStore, StoredFile, sender_identity
from sylkbox.conference.focus import Focus
from sylkbox.conference.participant import (
    AudioState,
    ChatState,
    Participant,
    ParticipantState,
)
from sylkbox.conference.room import Room
from sylkbox.config import Config, FilesConfig, RoomPolicy
from sylkbox.msrp.file_selector import parse as parse_file_selector
from sylkbox.msrp.message import MsrpRequest, MsrpResponse
from sylkbox.msrp.parser import MsrpParser
from sylkbox.msrp.session import FileOffsetRequested, MessageReceived, MsrpSession
from sylkbox.msrp.uri import MsrpUri, parse_path
from sylkbox.sdp import (
    Capabilities,
    InvalidAnswerError,
    MsrpPolicy,
    SessionDescription,
    Setup,
    build_answer,
    negotiate,
)
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.message import Request
from sylkbox.sip.parser import parse_message
from sylkbox.sip.transaction import RequestReceived
from sylkbox.sip.uri import SipUri
from tests.conference.test_focus_chat import FakeChannel, FakeMsrpPort, RecordingChat
from tests.helpers.fakes import (
    FakeMediaPort,
    FakeSipPort,
    Phone,
    SentRequest,
    build_request,
    drain,
    received,
)

ROOM_KEY = "room1@sylkbox.local"
ALICE_PATH = "msrps://192.0.2.20:40123/a1b2c3d4e5f6a7b8c9d0;tcp"
OUR_PATH = "msrps://192.0.2.1:2855/0e5a9b1c7d3f8e2a4b6c;tcp"
TRANSFER_ID = "0c8e35c2-6f3a-4bd1-9b1e-3c6c2d7f4a11"


def stored(data: bytes, sender: str = "Bob <sip:bob@192.0.2.30>") -> StoredFile:
    return StoredFile(
        room_key=ROOM_KEY,
        digest=hashlib.sha1(data).digest(),
        name="report.pdf",
        type="application/pdf",
        size=len(data),
        sender=sender,
        uploaded_at=100.0,
    )


def offer_for(record: StoredFile, *, tls: bool = True, path: str = OUR_PATH) -> SessionDescription:
    return build_push_offer(
        record, path=path, tls=tls, address="192.0.2.1", session_id=7, transfer_id=TRANSFER_ID
    )


def callee_answer(
    *,
    setup: str | None = "passive",
    direction: str = "recvonly",
    port: int = 40123,
    proto: str = "TCP/TLS/MSRP",
    file_offset: bool = True,
    path: str = ALICE_PATH,
) -> SessionDescription:
    """An answer as sipsimple writes one for an incoming file (BLINK.md 5, 7)."""
    lines = [
        "v=0", "o=- 3 3 IN IP4 192.0.2.20", "s=-", "c=IN IP4 192.0.2.20", "t=0 0",
        f"m=message {port} {proto} *", f"a=path:{path}", f"a={direction}", "a=accept-types:*",
    ]
    if setup is not None:
        lines.append(f"a=setup:{setup}")
    lines.append('a=file-selector:name:"report.pdf" type:application/pdf size:3 hash:sha-1:'
                 + ":".join(["AB"] * 20))
    if file_offset:
        lines.append("a=x-file-offset")
    lines.append(f"a=file-transfer-id:{TRANSFER_ID}")
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


# ------------------------------------------------------------------------------ the offer
def test_offer_is_one_sendonly_file_stream_with_the_full_selector() -> None:
    data = os.urandom(5000)
    record = stored(data)
    offer = SessionDescription.parse(offer_for(record).to_bytes())
    [media] = offer.media
    assert (media.media, media.port, media.proto, media.formats) == (
        "message", 2855, "TCP/TLS/MSRP", ["*"]
    )
    assert media.attribute("path") == OUR_PATH
    assert media.attribute("accept-types") == "*"
    assert media.attribute("accept-wrapped-types") is None
    assert media.attribute("chatroom") is None
    assert media.attribute("setup") == "active"  # as the dial-out chat line (BLINK.md 7)
    assert media.attribute("file-transfer-id") == TRANSFER_ID
    assert ("x-file-offset", None) in media.attributes
    assert offer.direction_for(media).value == "sendonly"
    assert media.attributes[-1] == ("sendonly", None)
    selector = parse_file_selector(media.attribute("file-selector") or "")
    assert (selector.name, selector.type, selector.size, selector.hash) == (
        "report.pdf", "application/pdf", 5000, hashlib.sha1(data).digest()
    )
    # 20 upper-case hex pairs, as sipsimple writes and wants them (BLINK.md 5)
    assert f"hash:sha-1:{':'.join(f'{b:02X}' for b in hashlib.sha1(data).digest())}" in (
        media.attribute("file-selector") or ""
    )
    assert offer.connection is not None and offer.connection.address == "192.0.2.1"


def test_offer_without_tls_uses_tcp_msrp() -> None:
    offer = offer_for(stored(b"abc"), tls=False, path=OUR_PATH.replace("msrps", "msrp"))
    assert offer.media[0].proto == "TCP/MSRP"


def test_a_receiver_like_the_box_accepts_the_offer_as_an_incoming_file() -> None:
    """Our own answerer (an RFC 5547 receiver) takes the offer as an upload, and its answer
    is one `read_push_answer` uses: recvonly, passive, with ``x-file-offset``."""
    record = stored(os.urandom(100))
    offer = offer_for(record)
    plan = negotiate(offer, Capabilities.from_names(["PCMU/8000"]), msrp=MsrpPolicy(tls=True))
    assert plan.file is not None and plan.file.upload and plan.file.file_offset
    assert plan.file.transfer_id == TRANSFER_ID
    assert parse_file_selector(plan.file.file_selector) == record.selector()
    answer = build_answer(
        offer, plan, address="192.0.2.20", local_ports={}, session_id=3, session_version=1,
        local_paths={0: ALICE_PATH},
    )
    accepted = read_push_answer(offer, answer)
    assert accepted is not None
    assert accepted.we_connect and accepted.file_offset
    assert accepted.remote_path == (ALICE_PATH,)
    assert not accepted.upload  # a download from our side: we send


# ----------------------------------------------------------------------------- the answer
@pytest.mark.parametrize(
    ("setup", "we_connect"),
    [("passive", True), (None, True), ("actpass", True), ("active", False)],
)
def test_answer_setup_decides_who_connects(setup: str | None, we_connect: bool) -> None:
    accepted = read_push_answer(offer_for(stored(b"abc")), callee_answer(setup=setup))
    assert accepted is not None
    assert accepted.we_connect is we_connect
    assert accepted.local_setup is (Setup.ACTIVE if we_connect else Setup.PASSIVE)
    assert accepted.transfer_id == TRANSFER_ID
    assert parse_file_selector(accepted.file_selector) == stored(b"abc").selector()


def test_answer_without_x_file_offset_skips_file_offset() -> None:
    accepted = read_push_answer(offer_for(stored(b"abc")), callee_answer(file_offset=False))
    assert accepted is not None and not accepted.file_offset


def test_answer_with_port_zero_refuses_the_stream() -> None:
    assert read_push_answer(offer_for(stored(b"abc")), callee_answer(port=0)) is None


@pytest.mark.parametrize(
    "answer",
    [
        callee_answer(direction="sendrecv"),
        callee_answer(direction="sendonly"),
        callee_answer(setup="holdconn"),
        callee_answer(proto="TCP/MSRP", path=ALICE_PATH.replace("msrps", "msrp")),
        callee_answer(path="msrps://192.0.2.20:40123"),  # no session-id
        SessionDescription.parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0\r\n"
        ),
    ],
    ids=["sendrecv", "sendonly", "holdconn", "other-transport", "bad-path", "audio"],
)
def test_unusable_answers_are_refused(answer: SessionDescription) -> None:
    with pytest.raises(InvalidAnswerError):
        read_push_answer(offer_for(stored(b"abc")), answer)


def test_answer_with_two_lines_is_refused() -> None:
    answer = callee_answer()
    answer.media.append(answer.media[0])
    with pytest.raises(InvalidAnswerError):
        read_push_answer(offer_for(stored(b"abc")), answer)


# ------------------------------------------------------------------------- who gets it
def session(
    uri: str,
    *,
    chat: bool = False,
    audio: bool = False,
    state: ParticipantState = ParticipantState.CONNECTED,
    contact: str | None = None,
) -> Participant:
    participant = Participant(
        id=os.urandom(6).hex(),
        uri=uri,
        display_name=None,
        contact=contact or uri,
        joined_at=datetime.now(UTC),
        state=state,
    )
    request = build_request(
        "INVITE", f"sip:{ROOM_KEY}", from_=f"<{uri}>;tag=t{participant.id}",
        to=f"<sip:{ROOM_KEY}>", contact=f"<{contact or uri}>",
    )
    participant.dialog = Dialog.from_uas(request, request.create_response(200, to_tag="ft"))
    if chat:
        participant.chat = ChatState(
            local_uri=MsrpUri.parse(OUR_PATH), remote_path=(ALICE_PATH,), we_connect=False,
            tls=True,
        )
    if audio:
        participant.audio = AudioState(stream_id=participant.id)
    return participant


def test_recipients_one_session_per_other_identity() -> None:
    room = Room(key=ROOM_KEY, id="r1", policy=RoomPolicy(), server_name="sylkbox")
    alice_audio = session("sip:alice@192.0.2.20", audio=True)
    alice_chat = session("sip:alice@192.0.2.20;transport=tcp", chat=True)
    bob_chat = session("sip:bob@192.0.2.30", chat=True)
    bob_upload = session("sip:bob@192.0.2.30")  # the upload session (file only)
    carol = session("sip:carol@192.0.2.40", audio=True, state=ParticipantState.DIALING)
    dave = session("sip:dave@192.0.2.50")  # only a file session: still a participant
    for participant in (alice_audio, alice_chat, bob_chat, bob_upload, carol, dave):
        room.add(participant)
    chosen = recipients(room, "sip:bob@192.0.2.30")
    assert [p.id for p in chosen] == [alice_chat.id, dave.id]  # chat preferred, bob skipped
    # identities compare on user@host: port and parameters do not matter (BLINK.md 4.2)
    assert recipients(room, "sip:bob@192.0.2.30:5070;transport=tcp") == chosen
    assert len(recipients(room, "sip:nobody@192.0.2.99")) == 3
    assert {p.uri for p in recipients(room, "sip:dave@192.0.2.50")} == {
        "sip:alice@192.0.2.20;transport=tcp", "sip:bob@192.0.2.30"
    }


@pytest.mark.parametrize(
    ("sender", "uri"),
    [
        ("Bob <sip:bob@192.0.2.30>", "sip:bob@192.0.2.30"),
        ("<sip:bob@192.0.2.30>", "sip:bob@192.0.2.30"),
        ("Bob <x> <sip:bob@h>", "sip:bob@h"),
        ("sip:bob@h", "sip:bob@h"),
    ],
)
def test_sender_uri(sender: str, uri: str) -> None:
    assert sender_uri(sender) == uri


# ----------------------------------------------------------------------------- INVITE
def test_invite_carries_sylkserver_headers() -> None:
    record = stored(b"abc")
    offer = offer_for(record)
    invite = build_push_invite(
        room_uri=f"sip:{ROOM_KEY}",
        target=SipUri.parse("sip:alice@192.0.2.20:5062"),
        to="sip:alice@192.0.2.20",
        contact="<sip:focus-r1@192.0.2.1:5060>;isfocus",
        record=record,
        offer=offer,
    )
    invite.headers.add("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKpush")  # the endpoint's
    wire = parse_message(invite.to_bytes())
    assert isinstance(wire, Request)
    assert str(wire.uri) == "sip:alice@192.0.2.20:5062"  # the session's Contact
    assert wire.from_.display_name == "Conference File Transfer"
    assert str(wire.from_.uri) == f"sip:{ROOM_KEY}" and wire.from_.tag
    assert str(wire.to.uri) == "sip:alice@192.0.2.20" and wire.to.tag is None
    assert wire.headers.get("X-Originator-From") == "sip:bob@192.0.2.30"
    assert wire.headers.get("Subject") == "File uploaded by Bob <sip:bob@192.0.2.30>"
    [contact] = wire.contacts
    assert contact.param("isfocus") is None and "isfocus" in dict(contact.params)
    assert wire.content_type == "application/sdp"
    assert SessionDescription.parse(wire.body).media[0].attribute("file-selector") == str(
        record.selector()
    )


# ------------------------------------------------------------------- the push, in the focus
@dataclass
class PushEnv:
    focus: Focus
    sip: FakeSipPort
    msrp: FakeMsrpPort
    store: FileStore

    def room(self) -> Room:
        return self.focus.rooms[ROOM_KEY]

    def phone(self, user: str, host: str, display: str) -> Phone:
        return Phone(self.focus, self.sip, user, host=host, display=display)

    def store_upload(self, data: bytes, sender: str) -> StoredFile:
        upload = self.store.begin_upload(
            ROOM_KEY, stored(data).selector(), sender
        )
        upload.write(0, data)
        return upload.finish(200.0)

    async def uploaded(self, data: bytes, sender: str = "Bob <sip:bob@192.0.2.30>") -> None:
        """What `FileTransfers` does when an upload is stored: the `uploaded` hook."""
        record = self.store_upload(data, sender)
        files = self.focus.files
        assert files is not None and files.uploaded is not None
        files.uploaded(self.room(), record)
        await drain()

    def invites(self) -> list[SentRequest]:
        return self.sip.sent("INVITE")

    def byes(self, call_id: str) -> list[SentRequest]:
        return [s for s in self.sip.sent("BYE") if s.request.call_id == call_id]

    def acks(self, call_id: str) -> list[Request]:
        return [r for r, _, _ in self.sip.stateless if r.call_id == call_id]


def make_focus(tmp_path: Path, *, push: bool) -> tuple[Focus, FakeSipPort, FakeMsrpPort, FileStore]:
    sip, media, msrp = FakeSipPort(), FakeMediaPort(), FakeMsrpPort()
    store = FileStore(tmp_path, max_size=10**6, room_quota=10**7, retention=3600)
    config = replace(Config(), files=FilesConfig(push=push))
    focus = Focus(config, sip, media, msrp, RecordingChat(), files=store)
    return focus, sip, msrp, store


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[PushEnv]:
    focus, sip, msrp, store = make_focus(tmp_path, push=True)
    sip.auto_reply = {"NOTIFY": 200, "BYE": 200}
    assert focus.file_push is not None
    focus.file_push.end_delay = 0.0
    env = PushEnv(focus, sip, msrp, store)
    alice = env.phone("alice", "192.0.2.20", "Alice")
    bob = env.phone("bob", "192.0.2.30", "Bob")
    assert (await alice.call()).status == 200
    assert (await bob.call()).status == 200
    yield env
    for sent in sip.requests:
        if not sent.done:
            sent.future.set_result(sent.response(408))
    await focus.close(0)
    store.close()


class Callee:
    """The callee's MSRP side: a real `MsrpSession` fed what the box writes on `channel`."""

    def __init__(self, channel: FakeChannel, *, offset: int = 0) -> None:
        self.channel = channel
        self.session = MsrpSession(parse_path(ALICE_PATH), (channel.local_uri,))
        self.offset = offset
        self.offset_requests = 0
        self.messages: list[MessageReceived] = []

    def exchange(self) -> None:
        """Move bytes both ways until nothing is left to say."""
        for _ in range(50):
            data = bytes(self.channel.written)
            self.channel.written.clear()
            for message in _parse(data):
                self.session.receive_message(message, 0.0)
            while (event := self.session.next_event()) is not None:
                match event:
                    case FileOffsetRequested():
                        self.offset_requests += 1
                        self.session.respond_file_offset(event.request, self.offset)
                    case MessageReceived():
                        self.messages.append(event)
                        self.session.report(event, 200)
                    case _:
                        pass
            back = self.session.data_to_send()
            box = self.channel.session
            for message in _parse(back):
                box.receive_message(message, 0.0)
            while (event := box.next_event()) is not None:
                assert self.channel.handler is not None
                self.channel.handler(event)
            self.channel.written += box.data_to_send()
            if not data and not back and not self.channel.written:
                return


def _parse(data: bytes) -> list[MsrpRequest | MsrpResponse]:
    parser = MsrpParser()
    parser.feed(data)
    messages = []
    while (message := parser.next_message()) is not None:
        messages.append(message)
    return messages


def answer_push(env: PushEnv, sent: SentRequest, **answer: object) -> None:
    body = callee_answer(**answer).to_bytes()  # type: ignore[arg-type]
    sent.reply(
        200, contact="<sip:alice@192.0.2.20:5060>", body=body, content_type="application/sdp"
    )


async def test_push_off_by_default(tmp_path: Path) -> None:
    focus, _, _, store = make_focus(tmp_path, push=False)
    assert focus.file_push is None
    assert focus.files is not None and focus.files.uploaded is None
    await focus.close(0)
    store.close()


async def test_upload_is_pushed_to_the_others_and_sent_like_a_download(env: PushEnv) -> None:
    data = os.urandom(150_000)  # three 64 KiB chunks
    await env.uploaded(data)
    [sent] = env.invites()  # alice only: bob uploaded it
    invite = sent.request
    assert sent.dest == ("192.0.2.20", 5060) and sent.transport == "udp"
    assert str(invite.uri) == "sip:alice@192.0.2.20:5060"  # her session's Contact
    assert str(invite.to.uri) == "sip:alice@192.0.2.20"
    assert invite.from_.display_name == "Conference File Transfer"
    assert str(invite.from_.uri) == f"sip:{ROOM_KEY}"
    assert invite.headers.get("X-Originator-From") == "sip:bob@192.0.2.30"
    assert invite.headers.get("Subject") == "File uploaded by Bob <sip:bob@192.0.2.30>"
    assert invite.headers.get("Contact") == (
        f"<sip:focus-{env.room().id}@192.0.2.1:5060>;isfocus"
    )
    [media] = SessionDescription.parse(invite.body).media
    assert media.attribute("setup") == "active" and ("sendonly", None) in media.attributes
    our_path = media.attribute("path")
    roster = env.room().snapshot()

    answer_push(env, sent)
    await drain()
    assert len(env.acks(invite.call_id)) == 1
    assert env.msrp.connects == [(MsrpUri.parse(our_path or ""), ALICE_PATH)]
    [channel] = env.msrp.channels
    assert env.focus.file_push is not None and env.focus.file_push.active == 1
    assert env.room().snapshot() == roster  # never a participant: no user, no endpoint
    assert len(env.room().participants) == 2

    callee = Callee(channel)
    callee.exchange()  # FILE_OFFSET first (the answer had x-file-offset)
    await drain()
    callee.exchange()  # the chunks, the callee's 200 REPORT
    await drain()
    assert callee.offset_requests == 1
    [message] = callee.messages
    assert message.body == data and message.content_type == "application/pdf"
    assert len(env.byes(invite.call_id)) == 1  # end_delay 0 here (3 s by default)
    assert env.focus.file_push.active == 0
    assert channel.closed
    assert env.room().snapshot() == roster


async def test_push_resumes_from_the_callee_offset_and_without_file_offset(
    env: PushEnv,
) -> None:
    data = os.urandom(100_000)
    await env.uploaded(data)
    [sent] = env.invites()
    answer_push(env, sent, file_offset=False)
    await drain()
    [channel] = env.msrp.channels
    callee = Callee(channel, offset=50)
    callee.exchange()
    await drain()
    callee.exchange()
    await drain()
    assert callee.offset_requests == 0  # not announced: not asked
    assert callee.messages[0].body == data
    assert env.byes(sent.request.call_id)


async def test_active_callee_connects_to_us(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, setup="active")
    await drain()
    assert env.msrp.connects == []
    [(local, remote, exact, _)] = env.msrp.expected.values()
    assert remote == ALICE_PATH and exact
    channel = env.msrp.remote_connects(local)
    await drain()
    callee = Callee(channel)
    callee.exchange()
    await drain()
    callee.exchange()
    await drain()
    assert len(callee.messages) == 1
    assert env.byes(sent.request.call_id)


@pytest.mark.parametrize("status", [486, 603, 408, 404])
async def test_refused_push_changes_nothing(env: PushEnv, status: int) -> None:
    room = env.room()
    before = (room.snapshot(), room.version, len(env.sip.sent("NOTIFY")))
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    sent.reply(status)
    await drain()
    assert env.acks(sent.request.call_id) == []  # the transaction layer ACKs non-2xx
    assert env.byes(sent.request.call_id) == []
    assert env.msrp.connects == [] and env.msrp.expected == {}
    assert env.focus.file_push is not None and env.focus.file_push.active == 0
    assert (room.snapshot(), room.version, len(env.sip.sent("NOTIFY"))) == before
    assert all(p.state is ParticipantState.CONNECTED for p in room.participants.values())


async def test_unusable_answer_is_acked_and_hung_up(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, direction="sendrecv")
    await drain()
    assert len(env.acks(sent.request.call_id)) == 1
    assert len(env.byes(sent.request.call_id)) == 1
    assert env.msrp.connects == []


async def test_refused_stream_is_hung_up(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, port=0)
    await drain()
    assert len(env.byes(sent.request.call_id)) == 1


async def test_callee_bye_ends_the_push(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, setup="active")  # we wait for the callee's connection
    await drain()
    invite = sent.request
    ok = sent.response(200)
    bye = build_request(
        "BYE",
        str(invite.from_.uri),
        from_=str(ok.to),
        to=str(invite.from_),
        call_id=invite.call_id,
        cseq=1,
    )
    env.focus.handle_request(_received(bye))
    await drain()
    [response] = env.sip.responses_to(bye)
    assert response.status == 200
    assert env.focus.file_push is not None and env.focus.file_push.active == 0
    assert env.msrp.expected == {}  # the expectation is forgotten
    assert env.byes(invite.call_id) == []  # no BYE of ours
    # another request in that dialog now gets 481, as any unknown dialog
    options = build_request(
        "OPTIONS", str(invite.from_.uri), from_=str(ok.to), to=str(invite.from_),
        call_id=invite.call_id, cseq=2,
    )
    env.focus.handle_request(_received(options))
    assert env.sip.final(options).status == 481


async def test_reinvite_of_a_push_is_refused(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, setup="active")
    await drain()
    invite = sent.request
    ok = sent.response(200)
    reinvite = build_request(
        "INVITE", str(invite.from_.uri), from_=str(ok.to), to=str(invite.from_),
        call_id=invite.call_id, cseq=1, contact="<sip:alice@192.0.2.20:5060>",
    )
    env.focus.handle_request(_received(reinvite))
    assert env.sip.final(reinvite).status == 488
    assert env.focus.file_push is not None and env.focus.file_push.active == 1


async def test_shutdown_ends_pushes(env: PushEnv) -> None:
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    answer_push(env, sent, setup="active")
    await drain()
    await env.focus.close(1.0)
    assert len(env.byes(sent.request.call_id)) == 1


async def test_unanswered_push_is_cancelled(env: PushEnv) -> None:
    assert env.focus.file_push is not None
    env.focus.file_push.answer_timeout = 0.01
    await env.uploaded(os.urandom(1000))
    [sent] = env.invites()
    sent.reply(180)
    await asyncio.sleep(0.05)
    await drain()
    assert env.sip.cancelled == [sent]
    assert env.byes(sent.request.call_id) == []


def _received(request: Request) -> RequestReceived:
    return received(request, ("192.0.2.20", 5060))


def test_sender_identity_round_trip() -> None:
    assert sender_uri(sender_identity('Bob "B"', "sip:bob@h")) == "sip:bob@h"
