"""Pushing uploaded files to the room's participants (``[files] push``, BLINK.md 5).

SylkServer's ``push_file_transfer``: once an upload is stored, the focus INVITEs every other
participant of the room with one ``sendonly`` RFC 5547 file stream::

    From: "Conference File Transfer" <sip:room@host>;tag=...
    Contact: <sip:focus-<id>@box:5060>;isfocus
    X-Originator-From: sip:bob@host
    Subject: File uploaded by Bob <sip:bob@host>

Who gets it: one session per identity (user@host of the From URI, BLINK.md 4.2), every
connected identity but the uploader's.  The INVITE is addressed To that identity and sent to
the Contact of its session (its dialog's remote target), the address where that user agent
listens on the LAN.

The offer is the file's full selector (name, type, size, hash), ``a=sendonly``,
``a=accept-types:*``, ``a=x-file-offset``, a fresh ``a=file-transfer-id``, and ``a=setup:active``
as the dial-out chat line offers it (BLINK.md 7: a ``passive`` answer makes us connect to the
callee's path, an ``active`` one makes us wait for its connection).  Once answered the file is
sent by a `FileTransfers` of its own, exactly as a download (``FILE_OFFSET`` first when the
answer has ``a=x-file-offset``, 64 KiB chunks), and the session is ended with BYE 3 s after
the final 200 REPORT, or on failure, as SylkServer does for a sender.  A refused push (4xx-6xx,
no answer) is logged and changes nothing else; a push is never a participant of the room, so
conference-info never shows it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sylkbox.conference.capabilities import ALLOW, SUPPORTED
from sylkbox.conference.errors import MethodNotAllowed, NoAcceptableMedia
from sylkbox.conference.files import FileTransfers, FileTransferState, StoredFile
from sylkbox.conference.participant import Participant, ParticipantState
from sylkbox.conference.room import identity_key
from sylkbox.sdp import (
    AcceptedFile,
    Direction,
    InvalidAnswerError,
    SdpError,
    SessionDescription,
    Setup,
)
from sylkbox.sdp.msrp import build_msrp_media
from sylkbox.sdp.offer_answer import new_session, read_msrp_answer
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import Headers, NameAddr
from sylkbox.sip.message import Request, Response
from sylkbox.sip.transaction import RequestReceived
from sylkbox.sip.uri import SipUri

if TYPE_CHECKING:
    from sylkbox.conference.chat_port import MsrpPort
    from sylkbox.conference.files import FileStore
    from sylkbox.conference.room import Room
    from sylkbox.conference.sip_port import Address, SipPort

__all__ = [
    "FilePush",
    "PushHost",
    "build_push_invite",
    "build_push_offer",
    "read_push_answer",
    "recipients",
    "sender_uri",
]

log = logging.getLogger(__name__)

FROM_DISPLAY_NAME = "Conference File Transfer"
PUSH_END_DELAY = 3.0  # SylkServer ends a sending file session 3 s after the last REPORT
ANSWER_TIMEOUT = 120.0  # a pushed file nobody accepts is cancelled after this long
CANCEL_GRACE = 32.0  # how long the final response to our CANCEL is waited for (64*T1)

DialogKey = tuple[str, str, str]  # call-id, local tag, remote tag (as conference.focus)


class PushHost(Protocol):
    """What `FilePush` needs from the focus."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...

    def contact_for(self, room: Room, transport: str, peer_host: str) -> str: ...

    def answer(self, request: Request, status: int, reason: str | None = None) -> Response: ...

    async def next_hop(self, dialog: Dialog, transport: str) -> tuple[Address, str]: ...

    async def send_in_dialog(
        self, dialog: Dialog, transport: str, request: Request
    ) -> Response: ...


# ------------------------------------------------------------------------ pure helpers
def sender_uri(sender: str) -> str:
    """The URI of a ``Display <sip:u@h>`` sender (`files.sender_identity`), as SylkServer
    takes ``CPIMIdentity.parse(file.sender).uri``; text without brackets is the URI."""
    start, end = sender.rfind("<"), sender.rfind(">")
    if 0 <= start < end:
        return sender[start + 1 : end].strip()
    return sender.strip()


def recipients(room: Room, uploader_uri: str) -> list[Participant]:
    """One connected session per identity other than the uploader's (BLINK.md 5: "every
    other participant URI"), preferring a chat session, then audio, then a file session."""

    def rank(participant: Participant) -> int:
        if participant.chat is not None:
            return 0
        return 1 if participant.audio is not None else 2

    uploader = identity_key(uploader_uri)
    chosen: dict[str, Participant] = {}
    for participant in room.participants.values():
        if participant.state is not ParticipantState.CONNECTED or participant.dialog is None:
            continue
        key = identity_key(participant.uri)
        if key == uploader:
            continue
        current = chosen.get(key)
        if current is None or rank(participant) < rank(current):
            chosen[key] = participant
    return list(chosen.values())


def build_push_offer(
    record: StoredFile,
    *,
    path: str,
    tls: bool,
    address: str,
    session_id: int,
    transfer_id: str,
) -> SessionDescription:
    """Our offer for a pushed file (RFC 5547 8, BLINK.md 5): one ``sendonly`` MSRP line with
    the full selector, ``a=x-file-offset`` and ``a=file-transfer-id``; ``a=setup:active`` as
    the dial-out chat line (BLINK.md 7).  ``address`` is an IP literal (the ``c=`` line)."""
    media = build_msrp_media(
        path=path,
        tls=tls,
        setup=Setup.ACTIVE,
        accept_types=("*",),
        accept_wrapped_types=(),
        chatroom=(),
        direction=Direction.SENDONLY,
    )
    position = len(media.attributes) - 1  # before the direction, as build_answer writes it
    media.attributes[position:position] = [
        ("file-selector", str(record.selector())),
        ("x-file-offset", None),
        ("file-transfer-id", transfer_id),
    ]
    return new_session(
        address.strip("[]"), username="sylkbox", session_id=session_id, session_version=1,
        media=[media],
    )


def read_push_answer(
    offer: SessionDescription, answer: SessionDescription
) -> AcceptedFile | None:
    """The callee's answer to `build_push_offer`: ``None`` when it refused the stream (port
    0, RFC 3264 6), else the stream as a download sees it (we send, ``file_offset`` when the
    answer has ``a=x-file-offset``).  Our role follows the answer's ``a=setup`` as for a
    dial-out chat line: ``passive`` (or none) means we connect, ``active`` that we wait.
    Raises `InvalidAnswerError` for an answer we cannot use (RFC 5547 8: it must be
    ``recvonly`` on the offered transport)."""
    if len(answer.media) != len(offer.media) or len(offer.media) != 1:
        raise InvalidAnswerError(f"answer has {len(answer.media)} m-lines, offer had 1")
    ours, theirs = offer.media[0], answer.media[0]
    line = read_msrp_answer(
        answer, ours, theirs, index=0, kind="pushed file", direction=Direction.RECVONLY
    )
    if line is None:
        return None
    parsed, remote_setup, local_setup = line
    return AcceptedFile(
        index=0,
        remote_path=parsed.path,
        remote_setup=remote_setup,
        local_setup=local_setup,
        tls=parsed.tls,
        file_selector=ours.attribute("file-selector") or "",
        remote_direction=Direction.RECVONLY,
        local_direction=Direction.SENDONLY,
        transfer_id=ours.attribute("file-transfer-id"),
        file_offset=any(name == "x-file-offset" for name, _ in theirs.attributes),
    )


def build_push_invite(
    *,
    room_uri: str,
    target: SipUri,
    to: str,
    contact: str,
    record: StoredFile,
    offer: SessionDescription,
) -> Request:
    """The INVITE of a push (BLINK.md 5, SylkServer ``FileTransferHandler.init_outgoing``):
    Request-URI `target` (the session's Contact), To the participant's identity ``to``."""
    headers = Headers()
    origin = NameAddr(FROM_DISPLAY_NAME, SipUri.parse(room_uri), ())
    headers.add("From", str(origin.with_tag(secrets.token_hex(6))))
    headers.add("To", f"<{to}>")
    headers.add("Call-ID", secrets.token_hex(12))
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", contact)
    headers.add("X-Originator-From", sender_uri(record.sender))
    headers.add("Subject", f"File uploaded by {record.sender}")
    headers.add("Allow", ALLOW)
    headers.add("Supported", SUPPORTED)
    headers.add("Content-Type", "application/sdp")
    return Request("INVITE", target, headers, offer.to_bytes())


# --------------------------------------------------------------------------- the pushes
@dataclass(slots=True, kw_only=True)
class _Push:
    """One answered push: its dialog and the transfer (run like a download)."""

    key: DialogKey
    participant: Participant  # a stand-in for the callee: never added to the room
    dialog: Dialog
    transport: str
    state: FileTransferState


class FilePush:
    """Sends every stored upload to the room's other participants (see the module doc).

    Wire `push` as `FileTransfers.uploaded`; in-dialog requests of a push's dialog go to
    `on_request` (`owns` says which); `terminate_all` at shutdown."""

    def __init__(
        self,
        host: PushHost,
        sip: SipPort,
        msrp: MsrpPort,
        store: FileStore,
        *,
        end_delay: float = PUSH_END_DELAY,
    ) -> None:
        self._host = host
        self._sip = sip
        self._msrp = msrp
        # our own FileTransfers: a push ends with our BYE, not by leaving the room
        self._transfers = FileTransfers(store, msrp, self, persistent=lambda _key: True)
        self._transfers.end_delay = end_delay
        self.answer_timeout = ANSWER_TIMEOUT
        self._pushes: dict[DialogKey, _Push] = {}
        self._by_participant: dict[str, DialogKey] = {}
        self._ringing: dict[str, asyncio.Future[Response]] = {}

    @property
    def end_delay(self) -> float:
        """Seconds between the end of a transfer and our BYE."""
        return self._transfers.end_delay

    @end_delay.setter
    def end_delay(self, value: float) -> None:
        self._transfers.end_delay = value

    @property
    def active(self) -> int:
        """Pushes answered and not ended yet."""
        return len(self._pushes)

    def owns(self, key: DialogKey) -> bool:
        return key in self._pushes

    # ---------------------------------------------------------------- the trigger
    def push(self, room: Room, record: StoredFile) -> None:
        """An upload was stored in `room`: INVITE every other participant (one task each)."""
        uploader = sender_uri(record.sender)
        targets = recipients(room, uploader)
        if targets:
            log.info(
                "pushing file %s of %s to %d participants of %s",
                record.hash_text,
                uploader,
                len(targets),
                room.key,
            )
        for target in targets:
            self._host.spawn(self._push(room, target, record), name=f"push-{target.id}")

    async def _push(self, room: Room, target: Participant, record: StoredFile) -> None:
        assert target.dialog is not None
        remote = target.dialog.remote_target
        transport = (remote.param("transport") or target.transport).lower()
        port = remote.port or (5061 if transport == "tls" else 5060)
        try:
            dest = await self._sip.resolve(remote.host, port, transport)
        except OSError as exc:
            log.info("x push to %s: cannot resolve %s: %s", target.uri, remote.host, exc)
            return
        local_uri = self._msrp.new_local_uri(dest[0])
        host, _ = self._sip.contact_host(transport, dest[0])
        offer = build_push_offer(
            record,
            path=str(local_uri),
            tls=self._msrp.tls,
            address=host,
            session_id=secrets.randbits(48),
            transfer_id=str(uuid.uuid4()),
        )
        invite = build_push_invite(
            room_uri=room.uri,
            target=remote,
            to=target.uri,
            contact=self._host.contact_for(room, transport, dest[0]),
            record=record,
            offer=offer,
        )
        response = await self._invite(invite, dest, transport)
        if response is None or not 200 <= response.status < 300:
            status = f"{response.status} {response.reason}" if response else "no answer"
            log.info("x push of %s to %s refused: %s", record.name, target.uri, status)
            return
        try:
            dialog = Dialog.from_uac(invite, response)
        except RemoteProtocolError as exc:
            log.warning("x push to %s: unusable 2xx (%s)", target.uri, exc.reason)
            return
        try:
            accepted = read_push_answer(offer, SessionDescription.parse(response.body))
        except SdpError as exc:
            log.warning("x push to %s: unusable answer (%s), hanging up", target.uri, exc)
            accepted = None
        if accepted is None:
            await self._ack(dialog, invite, dest, transport)
            self._host.spawn(self._bye(dialog, transport, target.uri), name="push-bye")
            return
        participant = Participant(
            id=secrets.token_hex(6),
            uri=target.uri,
            display_name=target.display_name,
            contact=str(dialog.remote_target),
            joined_at=datetime.now(UTC),
            dialog=dialog,
            transport=transport,
            invited=True,
        )
        state = FileTransferState(
            decision=accepted, selector=record.selector(), record=record, local_uri=local_uri
        )
        if not accepted.we_connect:  # before the ACK: the callee may connect at once
            state.pending = self._msrp.expect(local_uri, " ".join(accepted.remote_path))
        key = (dialog.id.call_id, dialog.id.local_tag, dialog.id.remote_tag)
        self._pushes[key] = _Push(
            key=key, participant=participant, dialog=dialog, transport=transport, state=state
        )
        self._by_participant[participant.id] = key
        log.info("push of %s to %s accepted", record.name, target.uri)
        self._transfers.start(room, participant, state)
        await self._ack(dialog, invite, dest, transport)

    async def _invite(
        self, invite: Request, dest: Address, transport: str
    ) -> Response | None:
        """Send the INVITE; CANCEL it when nobody answers within `answer_timeout`."""
        future = self._sip.request(invite, dest, transport)
        self._ringing[invite.call_id] = future
        try:
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.answer_timeout)
            except TimeoutError:
                log.info("x push INVITE to %s not answered, cancelling", invite.uri)
                self._sip.cancel(future)
            try:
                return await asyncio.wait_for(asyncio.shield(future), CANCEL_GRACE)
            except TimeoutError:
                return None
        finally:
            self._ringing.pop(invite.call_id, None)

    async def _ack(self, dialog: Dialog, invite: Request, dest: Address, transport: str) -> None:
        ack = dialog.create_ack(invite.cseq.seq)
        try:  # RFC 3261 13.2.2.4: the ACK follows the dialog's route set and target
            ack_dest, ack_transport = await self._host.next_hop(dialog, transport)
        except OSError:
            ack_dest, ack_transport = dest, transport
        self._sip.send_stateless(ack, ack_dest, ack_transport)

    async def _bye(self, dialog: Dialog, transport: str, who: str) -> None:
        response = await self._host.send_in_dialog(dialog, transport, dialog.create_request("BYE"))
        if response.status >= 300:
            log.info("x BYE of the push to %s: %d %s", who, response.status, response.reason)

    # ------------------------------------------------------------------ FileHost
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self._host.spawn(coro, name)

    def end_file_session(self, room: Room, participant: Participant, reason: str) -> None:
        """The transfer is over (done, failed, connection lost): BYE (BLINK.md 5)."""
        push = self._forget(participant.id)
        if push is None:
            return
        log.info("push to %s in %s ended (%s)", participant.uri, room.key, reason)
        self._transfers.stop(push.state)
        self._host.spawn(
            self._bye(push.dialog, push.transport, participant.uri),
            name=f"push-bye-{participant.id}",
        )

    def files_changed(self, room_key: str) -> None:
        """Pushes change no file list."""

    def _forget(self, participant_id: str) -> _Push | None:
        key = self._by_participant.pop(participant_id, None)
        return self._pushes.pop(key, None) if key is not None else None

    # ------------------------------------------------------------- in-dialog requests
    def on_request(self, event: RequestReceived) -> None:
        """A request in a push's dialog: BYE ends the transfer; OPTIONS, INFO and NOTIFY
        get 200; an offer (re-INVITE, UPDATE) is refused (488), others 405.  Raises
        `FocusError` or `RemoteProtocolError` (the focus answers them)."""
        request = event.request
        key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        push = self._pushes.get(key)
        if push is None:
            return
        push.dialog.receive_request(request)
        match request.method:
            case "BYE":
                self._host.answer(request, 200)
                self._forget(push.participant.id)
                self._transfers.stop(push.state)
                log.info("push to %s ended by the callee", push.participant.uri)
            case "OPTIONS" | "INFO" | "NOTIFY":
                self._host.answer(request, 200)
            case "INVITE" | "UPDATE":
                raise NoAcceptableMedia("Not Acceptable Here: a pushed file cannot change")
            case _:
                raise MethodNotAllowed("Method Not Allowed")

    # ------------------------------------------------------------------- shutdown
    def terminate_all(self) -> list[asyncio.Task[None]]:
        """Shutdown: CANCEL unanswered pushes, stop the transfers, BYE the answered ones."""
        for future in list(self._ringing.values()):
            self._sip.cancel(future)
        tasks: list[asyncio.Task[None]] = []
        for push in list(self._pushes.values()):
            self._forget(push.participant.id)
            self._transfers.stop(push.state)
            tasks.append(
                self._host.spawn(
                    self._bye(push.dialog, push.transport, push.participant.uri),
                    name=f"push-bye-{push.participant.id}",
                )
            )
        return tasks
