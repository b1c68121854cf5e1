"""The conference focus (RFC 4353, RFC 4579): rooms, INVITE sessions, SUBSCRIBE, REFER.

The focus receives requests from the SIP endpoint, decides, and answers. It owns the rooms and
the dialogs that belong to them; media goes through the `MediaPort` (the media supervisor).
The one table mapping application errors to SIP responses is `_ERROR_STATUS` below.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from sylkbox.conference.capabilities import ACCEPT, ALLOW, SERVER_NAME, SUPPORTED, SUPPORTED_TAGS
from sylkbox.conference.chat_port import ChatPort, EchoToRoomChat, MsrpPort
from sylkbox.conference.errors import (
    AccessDenied,
    BadRequest,
    FileNotFound,
    FileTooLarge,
    FocusError,
    MethodNotAllowed,
    NoAcceptableMedia,
    NoSuchDialog,
    RoomFull,
    RoomNotFound,
    SubscriptionRefused,
    TransferForbidden,
    UnknownEvent,
    UnsupportedExtension,
)
from sylkbox.conference.file_push import FilePush
from sylkbox.conference.files import FileStore, FileTransfers
from sylkbox.conference.media_port import MediaPort, StreamSpec
from sylkbox.conference.participant import AudioState, ChatState, Participant, ParticipantState
from sylkbox.conference.policy import is_allowed
from sylkbox.conference.renegotiation import (
    Reoffers,
    all_streams_removed,
    file_offer_change,
    mask_dropped_chat,
    reject_dropped_chat,
)
from sylkbox.conference.room import Room
from sylkbox.conference.room_observer import RoomObserver
from sylkbox.conference.screenshare import ScreenSharing
from sylkbox.conference.sip_port import Address, SipPort
from sylkbox.conference.timers import SessionTimers
from sylkbox.config import CODEC_RTPMAPS, Config
from sylkbox.media.control import (
    Dtmf,
    MediaEvent,
    RtpTimeout,
    SrtpParams,
    StreamFailed,
    StreamStats,
)
from sylkbox.msrp.session import MsrpEvent
from sylkbox.msrp.uri import MsrpUri
from sylkbox.sdp import (
    AcceptedAudio,
    AcceptedChat,
    AcceptedFile,
    Capabilities,
    MsrpPolicy,
    OfferPlan,
    Rejected,
    SdpError,
    SessionDescription,
    build_answer,
    negotiate,
    negotiate_answer,
)
from sylkbox.sdp import NoAcceptableMedia as SdpNoAcceptableMedia
from sylkbox.sdp.crypto import SUITE_KEY_SALT_LENGTHS, SrtpPolicy, new_inline_key
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.message import Request, Response
from sylkbox.sip.session_timer import SessionIntervalTooSmallError, SessionTimer
from sylkbox.sip.transaction import AckTimedOut, RequestCancelled, RequestReceived, ServerKey
from sylkbox.sip.uri import SipUri

__all__ = ["Focus", "dialog_key"]

log = logging.getLogger(__name__)


_ERROR_STATUS: dict[type[FocusError], int] = {
    BadRequest: 400,
    AccessDenied: 403,
    TransferForbidden: 403,
    RoomNotFound: 404,
    FileNotFound: 404,
    FileTooLarge: 413,
    MethodNotAllowed: 405,
    SubscriptionRefused: 480,
    NoSuchDialog: 481,
    RoomFull: 486,
    NoAcceptableMedia: 488,
    UnknownEvent: 489,
    UnsupportedExtension: 420,
}

_CHAT_SIP_STATUS: dict[int, int] = {  # chat switch (MSRP) status -> SIP MESSAGE response
    200: 200,
    400: 400,
    403: 403,
    404: 404,
    413: 415,  # "Unwanted message": a wrapped type the room does not relay
    415: 415,
}

DialogKey = tuple[str, str, str]  # call-id, local tag, remote tag
DTMF_MUTE_WINDOW = 2.0
"""'*' then '6' (RFC 4733 events) within this many seconds toggles the sender's mute."""
MSRP_CONNECT_TIMEOUT = 30.0
"""How long a passive chat stream waits for the remote's connection (RFC 4975 7.1.1)."""


def dialog_key(request: Request) -> DialogKey:
    """The key of the dialog an incoming request belongs to (RFC 3261 12.2.2)."""
    return request.call_id, request.to.tag or "", request.from_.tag or ""


class Focus:
    """All rooms of the box and the SIP logic around them."""

    def __init__(
        self,
        config: Config,
        sip: SipPort,
        media: MediaPort,
        msrp: MsrpPort | None = None,
        chat: ChatPort | None = None,
        *,
        screens: ScreenSharing | None = None,
        files: FileStore | None = None,
    ) -> None:
        self._config = config
        # screen shares (BLINK.md 6): their files go when the room ends
        self.screens = screens
        self._sip = sip
        self._media = media
        # MSRP chat (BLINK.md 4, 7) is accepted only with a listener to carry it
        self._msrp = msrp
        self._msrp_policy = MsrpPolicy(tls=msrp.tls) if msrp is not None else None
        self.chat: ChatPort = chat or EchoToRoomChat()
        self.msrp_connect_timeout = MSRP_CONNECT_TIMEOUT
        self._rooms: dict[str, Room] = {}
        self._rooms_by_id: dict[str, Room] = {}
        self._participants: dict[DialogKey, tuple[Room, Participant]] = {}
        self._pending_invites: dict[ServerKey | None, asyncio.Task[None]] = {}
        self._awaiting_ack: dict[ServerKey, DialogKey] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._capabilities = Capabilities.from_names(CODEC_RTPMAPS[n] for n in config.media.codecs)
        self._capabilities = dataclasses.replace(
            self._capabilities, srtp=SrtpPolicy(config.media.srtp)
        )
        # late imports keep the module graph acyclic: they need Focus's helpers
        from sylkbox.conference.refer import ReferHandler
        from sylkbox.conference.subscriptions import SubscriptionManager

        # RFC 5547 file sharing (BLINK.md 5): needs the MSRP listener and a file store
        self.files: FileTransfers | None = None
        if files is not None and msrp is not None:
            self.files = FileTransfers(
                files,
                msrp,
                self,
                persistent=lambda key: self._config.conference.policy_for(key).persistent,
            )
        self.subscriptions = SubscriptionManager(self, sip)
        self.refer = ReferHandler(self, sip, media)
        # [files] push: every upload is INVITEd to the other participants (BLINK.md 5)
        self.file_push: FilePush | None = None
        if self.files is not None and msrp is not None and config.files.push:
            self.file_push = FilePush(self, sip, msrp, self.files.store)
            self.files.uploaded = self.file_push.push
        self.timers = SessionTimers(self)
        self.reoffers = Reoffers(self, sip)
        self.closing = False
        # told about rooms created, changed and ended (Bonjour discovery, app.py wires it)
        self.observers: list[RoomObserver] = []

    # ----------------------------------------------------------------- queries
    @property
    def config(self) -> Config:
        return self._config

    @property
    def rooms(self) -> dict[str, Room]:
        return self._rooms

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def room_for_request(self, request: Request) -> Room | None:
        """Find the room a request is for: focus Contact, then Request-URI, then To URI."""
        for uri in (request.uri, request.to.uri):
            room = self._room_by_uri(uri)
            if room is not None:
                return room
        return None

    def _room_by_uri(self, uri: SipUri) -> Room | None:
        user = uri.user or ""
        if user.startswith("focus-"):
            room = self._rooms_by_id.get(user[len("focus-") :])
            if room is not None:
                return room
        return self._rooms.get(uri.user_host.lower()) if uri.user else None

    def participant_for(self, key: DialogKey) -> tuple[Room, Participant] | None:
        return self._participants.get(key)

    # ---------------------------------------------------------- task ownership
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task the focus owns (cancelled and awaited in `close()`)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    # ---------------------------------------------------------- SIP callbacks
    def handle_request(self, event: RequestReceived) -> None:
        request = event.request
        if request.method == "ACK":
            self._on_ack(request)
            return
        try:
            self._dispatch(event)
        except FocusError as exc:
            self.reject(request, _ERROR_STATUS[type(exc)], exc.reason, headers=exc.headers())
        except SessionIntervalTooSmallError as exc:
            response = request.create_response(422, exc.reason, to_tag=self._to_tag(request))
            for name, value in exc.headers():
                response.headers.set(name, value)
            self._sip.respond(response)
        except RemoteProtocolError as exc:
            self.reject(request, exc.status_hint, exc.reason)

    def handle_cancel(self, event: RequestCancelled) -> None:
        task = self._pending_invites.pop(event.server_key, None)
        if task is not None:
            log.info("INVITE cancelled by the caller")
            task.cancel()

    def handle_ack_timeout(self, event: AckTimedOut) -> None:
        """No ACK for our 2xx: end the session with BYE (RFC 3261 13.3.1.4)."""
        key = self._awaiting_ack.pop(event.server_key, None)
        found = self._participants.get(key) if key is not None else None
        if found is not None and 200 <= event.status < 300:
            log.warning("no ACK from %s, ending the session", found[1].uri)
            self.leave(found[0], found[1], send_bye=True, reason="(no ACK)")

    def _dispatch(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        in_dialog = bool(request.to.tag)
        if method == "OPTIONS" and not in_dialog:
            self._on_options(request)
        elif method == "INVITE" and not in_dialog:
            self._start_invite(event)
        elif method == "SUBSCRIBE":
            self.subscriptions.on_subscribe(event)
        elif method == "MESSAGE":
            self._on_message(request)
        elif method == "REFER":
            if in_dialog:
                raise TransferForbidden("REFER must be sent outside the dialog (RFC 4579 5.5)")
            self.refer.on_refer(event)
        elif not in_dialog:
            if method in ("BYE", "UPDATE", "NOTIFY", "INFO", "PRACK"):
                raise NoSuchDialog("Call/Transaction Does Not Exist")
            raise MethodNotAllowed("Method Not Allowed")
        else:
            self._in_dialog(event)

    def _in_dialog(self, event: RequestReceived) -> None:
        request = event.request
        found = self._participants.get(dialog_key(request))
        if found is None:
            if request.method == "NOTIFY" and self.refer.owns(dialog_key(request)):
                self.answer(request, 200)
                return
            if self.file_push is not None and self.file_push.owns(dialog_key(request)):
                self.file_push.on_request(event)
                return
            raise NoSuchDialog("Call/Transaction Does Not Exist")
        room, participant = found
        assert participant.dialog is not None
        participant.dialog.receive_request(request)
        match request.method:
            case "BYE":
                self.answer(request, 200)
                self.leave(room, participant, send_bye=False)
            case "INVITE" | "UPDATE":
                self._start_reinvite(event, room, participant)
            case "OPTIONS":
                self._on_options(request)
            case "INFO" | "NOTIFY":
                self.answer(request, 200)
            case _:
                raise MethodNotAllowed("Method Not Allowed")

    # ---------------------------------------------------------------- replies
    def reject(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if request.method == "ACK":
            return
        log.info("x %s %s -> %d %s", request.method, request.uri, status, reason or "")
        response = request.create_response(status, reason, to_tag=self._to_tag(request))
        if status == 405:
            response.headers.set("Allow", ALLOW)
        for name, value in headers or ():
            response.headers.set(name, value)
        self._sip.respond(response)

    def answer(self, request: Request, status: int, reason: str | None = None) -> Response:
        response = request.create_response(status, reason, to_tag=self._to_tag(request))
        self._sip.respond(response)
        return response

    @staticmethod
    def _to_tag(request: Request) -> str | None:
        return None if request.to.tag else secrets.token_hex(6)

    def _on_options(self, request: Request) -> None:
        response = request.create_response(200, to_tag=self._to_tag(request))
        response.headers.set("Allow", ALLOW)
        response.headers.set("Accept", ACCEPT)
        response.headers.set("Supported", SUPPORTED)
        self._sip.respond(response)

    def _on_message(self, request: Request) -> None:
        """SIP MESSAGE (RFC 3428) to the room URI: relayed into the room's chat as from its
        SIP sender (``text/plain`` is wrapped in CPIM, ``message/cpim`` is checked as an MSRP
        message is); 200 even when nobody is in the chat (the history keeps it)."""
        room = self.room_for_request(request)
        if room is None:
            raise RoomNotFound("Not Found")
        sender = request.from_
        if not is_allowed(room.policy, sender.uri.user, sender.uri.host.strip("[]")):
            raise AccessDenied("Forbidden by the room's access policy")
        status = self.chat.relay_sip_message(
            room,
            str(sender.uri),
            sender.display_name,
            request.headers.get("Content-Type") or "text/plain",
            request.body,
        )
        sip_status = _CHAT_SIP_STATUS.get(status, 500)
        if sip_status >= 300:
            self.reject(request, sip_status)
        else:
            self.answer(request, sip_status)

    def _answer_ok(self, event: RequestReceived, room: Room, answer: bytes) -> Response:
        """The 200 carrying our SDP `answer` to an in-dialog offer (RFC 3264 8), with the
        Contact for the requester's transport and address."""
        response = event.request.create_response(200)
        response.headers.set("Contact", self.contact_for(room, event.transport, event.source[0]))
        response.headers.set("Content-Type", "application/sdp")
        response.body = answer
        return response

    def contact_for(self, room: Room, transport: str, peer_host: str) -> str:
        """The focus Contact: identifies the room, `isfocus` as a header parameter."""
        host, port = self._sip.contact_host(transport, peer_host)
        host = f"[{host}]" if ":" in host else host
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:focus-{room.id}@{host}:{port}{suffix}>;isfocus"

    # ------------------------------------------------------------------ rooms
    def _room_key(self, uri: SipUri) -> str:
        if not uri.user:
            raise RoomNotFound("No room in the Request-URI")
        key = uri.user_host.lower()
        host = key.rpartition("@")[2]
        domains = self._config.sip.domains
        if domains and host not in {d.lower() for d in domains}:
            raise RoomNotFound(f"Domain {host} is not served here")
        return key

    def _get_or_create_room(self, key: str) -> Room:
        room = self._rooms.get(key)
        if room is None:
            room = Room(
                key=key,
                id=secrets.token_hex(4),
                policy=self._config.conference.policy_for(key),
                server_name=SERVER_NAME,
            )
            if self.files is not None:
                room.files = self.files.store.shared_files(key)
            self._rooms[key] = room
            self._rooms_by_id[room.id] = room
            log.info("room %s created", key)
            self._notify_observers(room, lambda observer: observer.room_created(room))
        return room

    def _maybe_remove_room(self, room: Room) -> None:
        if room.is_empty and not room.policy.persistent and not self._room_has_pending(room):
            self._rooms.pop(room.key, None)
            self._rooms_by_id.pop(room.id, None)
            self.subscriptions.room_ended(room)
            if self.screens is not None:
                self.screens.room_ended(room)
            self.chat.forget_room(room)
            log.info("room %s removed", room.key)
            self._notify_observers(room, lambda observer: observer.room_ended(room))

    def _room_has_pending(self, room: Room) -> bool:
        return any(p.state is not ParticipantState.CONNECTED for p in room.participants.values())

    def check_policy(self, room: Room, uri: SipUri) -> None:
        if not is_allowed(room.policy, uri.user, uri.host.strip("[]")):
            raise AccessDenied("Forbidden by the room's access policy")
        limit = room.policy.max_participants
        if limit and len(room.participants) >= limit:
            raise RoomFull(f"Room is full ({limit} participants)")

    # ----------------------------------------------------------------- INVITE
    def _start_invite(self, event: RequestReceived) -> None:
        request = event.request
        if "Replaces" in request.headers:
            raise AccessDenied("Replaces is not supported by the focus")
        self._check_require(request)
        key = self._room_key(request.uri)
        room = self._rooms.get(key)
        offer, resources = self._split_body(request)
        if room is not None:
            self.check_policy(room, request.from_.uri)
        else:
            policy = self._config.conference.policy_for(key)
            if not is_allowed(policy, request.from_.uri.user, request.from_.uri.host.strip("[]")):
                raise AccessDenied("Forbidden by the room's access policy")
        plan = self._negotiate(offer)
        file_offer = None
        if plan.file is not None:  # RFC 5547 upload or download (BLINK.md 5)
            if self.files is None:
                raise NoAcceptableMedia("Not Acceptable Here: file transfer is not available")
            if room is None and plan.file.upload:
                raise RoomNotFound("Not Found")
            file_offer = self.files.check_offer(key, plan.file)
        timer = self._session_timer_for(None, request)
        room = self._get_or_create_room(key)
        participant = Participant(
            id=secrets.token_hex(6),
            uri=str(request.from_.uri),
            display_name=request.from_.display_name,
            contact=str(request.contacts[0].uri) if request.contacts else str(request.from_.uri),
            joined_at=datetime.now(UTC),
            state=ParticipantState.ALERTING,
            transport=event.transport,
        )
        room.add(participant)
        if plan.file is not None and self.files is not None and file_offer is not None:
            participant.file = self.files.prepare(
                participant, plan.file, *file_offer, peer_host=event.source[0]
            )
        task = self.spawn(
            self._accept_invite(event, room, participant, offer, plan, resources, timer),
            name=f"invite-{participant.id}",
        )
        self._pending_invites[event.server_key] = task

    def _check_require(self, request: Request) -> None:
        required = {v.strip().lower() for v in request.headers.get_all("Require")}
        unsupported = sorted(required - set(SUPPORTED_TAGS))
        if unsupported:
            raise UnsupportedExtension(unsupported)

    def _split_body(self, request: Request) -> tuple[SessionDescription, list[str]]:
        """The SDP offer and, for RFC 5366 request-contained lists, the URIs to dial out."""
        from sylkbox.conference.body import split_invite_body

        try:
            return split_invite_body(request)
        except SdpError as exc:
            raise BadRequest(f"Bad SDP: {exc.reason}") from exc

    def _negotiate(self, offer: SessionDescription) -> Any:
        try:
            return negotiate(offer, self._capabilities, msrp=self._msrp_policy)
        except SdpNoAcceptableMedia as exc:
            raise NoAcceptableMedia("Not Acceptable Here: no usable media stream") from exc

    async def _accept_invite(
        self,
        event: RequestReceived,
        room: Room,
        participant: Participant,
        offer: SessionDescription,
        plan: Any,
        resources: list[str],
        timer: SessionTimer | None,
    ) -> None:
        request = event.request
        to_tag = secrets.token_hex(6)
        audio = _first_audio(plan)
        try:
            if audio is not None:
                participant.audio = await self._start_audio(room, participant, audio)
            if plan.chat is not None:
                self._prepare_chat(participant, plan.chat, peer_host=event.source[0])
            if self._config.sip.answer_delay:
                ringing = request.create_response(180, to_tag=to_tag)
                ringing.headers.set(
                    "Contact", self.contact_for(room, event.transport, event.source[0])
                )
                self._sip.respond(ringing)
                await asyncio.sleep(self._config.sip.answer_delay)
        except asyncio.CancelledError:
            await self._discard(room, participant, had_audio=audio is not None)
            raise
        except Exception as exc:
            log.exception("cannot set up media")
            await self._discard(room, participant, had_audio=audio is not None)
            self.reject(request, 500, f"Media setup failed: {exc}")
            return
        finally:
            self._pending_invites.pop(event.server_key, None)
        answer = self._build_answer(offer, plan, participant, event.source[0])
        response = request.create_response(200, to_tag=to_tag)
        response.headers.set("Contact", self.contact_for(room, event.transport, event.source[0]))
        response.headers.set("Allow", ALLOW)
        response.headers.set("Supported", SUPPORTED)
        response.headers.set("Content-Type", "application/sdp")
        response.body = answer
        if timer is not None:
            self.timers.answer(participant, timer, response)
        participant.dialog = Dialog.from_uas(request, response)
        participant.state = ParticipantState.CONNECTED
        key = (request.call_id, to_tag, request.from_.tag or "")
        self._participants[key] = (room, participant)
        if event.server_key is not None:
            self._awaiting_ack[event.server_key] = key
        self._sip.respond(response)
        self.timers.arm(room, participant)
        log.info("%s joined %s (%d connected)", participant.uri, room.key, room.connected_count)
        self._start_chat(room, participant)
        if participant.file is not None and self.files is not None:
            self.files.start(room, participant, participant.file)
        self._announce_join(room, participant)
        if participant.file is None:  # file sessions are not announced (BLINK.md 3)
            self.room_changed(room)
        for uri in resources:
            self.refer.dial_out(room, uri, referrer=participant.uri, report=None)

    def _session_timer_for(
        self, participant: Participant | None, request: Request
    ) -> SessionTimer | None:
        """RFC 4028 applies when the peer supports it or a proxy asked for it."""
        supported = {v.strip().lower() for v in request.headers.get_all("Supported")}
        if "timer" not in supported and "Session-Expires" not in request.headers:
            return None
        return self.timers.negotiate(participant.session_timer if participant else None, request)

    async def _start_audio(
        self, room: Room, participant: Participant, audio: AcceptedAudio
    ) -> AudioState:
        state = AudioState(stream_id=_stream_id(room, participant))
        _apply_audio(state, audio)
        rate = room.policy.mixing_rate(self._config.media)
        spec = dataclasses.replace(_spec(state), room_rate=rate)
        state.local_port = await self._media.add_stream(room.id, spec)
        return state

    def _build_answer(
        self, offer: SessionDescription, plan: Any, participant: Participant, peer_host: str
    ) -> bytes:
        host, _ = self._sip.contact_host("udp", peer_host)
        ports = {}
        keys = {}
        for decision in plan.decisions:
            if isinstance(decision, AcceptedAudio) and participant.audio is not None:
                ports[decision.index] = participant.audio.local_port
                if participant.audio.local_key is not None:
                    keys[decision.index] = participant.audio.local_key
                log.debug("answer to %s: %s %s, SRTP %s", participant.uri, decision.profile,
                          decision.codec.name, participant.audio.srtp_suite or "no")
        paths = {}
        selectors = {}
        for decision in plan.decisions:
            if isinstance(decision, AcceptedChat) and participant.chat is not None:
                paths[decision.index] = str(participant.chat.local_uri)
            if isinstance(decision, AcceptedFile) and participant.file is not None:
                paths[decision.index] = str(participant.file.local_uri)
                selectors[decision.index] = participant.file.answer_selector
        participant.sdp_version += 1
        answer = build_answer(
            offer,
            plan,
            address=host,
            local_ports=ports,
            session_id=int(participant.id, 16),
            session_version=participant.sdp_version,
            local_keys=keys,
            local_paths=paths,
            local_file_selectors=selectors,
        )
        participant.local_sdp = answer
        return answer.to_bytes()

    async def _discard(self, room: Room, participant: Participant, *, had_audio: bool) -> None:
        """Undo a join that did not complete; the stream may exist even if `add_stream` was
        interrupted (the worker got the command), so remove it by id."""
        room.remove(participant.id)
        self._stop_chat(room, participant)
        self._stop_file(participant)
        self._maybe_remove_room(room)
        if had_audio:
            try:
                await self._media.remove_stream(_stream_id(room, participant))
            except Exception as exc:  # the worker may never have created it
                log.debug("removing stream of %s: %s", participant.uri, exc)

    def _on_ack(self, request: Request) -> None:
        key = dialog_key(request)
        for server_key, waiting in list(self._awaiting_ack.items()):
            if waiting == key:
                del self._awaiting_ack[server_key]
        found = self._participants.get(key)
        if found is None:
            return
        room, participant = found
        if participant.dropped_chat is not None:  # chat was lost before this ACK came
            self.reoffers.sync(room, participant)
        if not request.body:
            return
        offer, participant.pending_offer = participant.pending_offer, None
        if offer is None or participant.audio is None:
            return
        try:  # the answer to the offer we put in a 2xx (RFC 3264 7)
            accepted = negotiate_answer(offer, SessionDescription.parse(request.body))
        except SdpError as exc:
            log.warning("bad SDP answer in ACK from %s: %s", participant.uri, exc.reason)
            return
        if accepted is not None:
            self.apply_audio_answer(room, participant, accepted)

    def awaiting_ack(self, participant: Participant) -> bool:
        """Our 2xx to the participant's INVITE waits for its ACK (no re-INVITE of ours may
        start meanwhile, RFC 3261 14.1)."""
        if participant.dialog is None:
            return False
        return _key_of(participant.dialog) in self._awaiting_ack.values()

    def apply_audio_answer(
        self, room: Room, participant: Participant, accepted: AcceptedAudio
    ) -> None:
        """The peer's answer to an offer of ours (in a 2xx or our re-INVITE) for the audio
        stream: update the media worker and the roster (hold state)."""
        if participant.audio is None:
            return
        _apply_audio(participant.audio, accepted)
        self.spawn(self._media.update_stream(_spec(participant.audio)), name="audio-answer")
        self.room_changed(room)

    # -------------------------------------------------------------- re-INVITE
    def _start_reinvite(self, event: RequestReceived, room: Room, participant: Participant) -> None:
        request = event.request
        if participant.reinvite_pending:
            raise RemoteProtocolError("Request Pending", status_hint=491)
        if (request.method == "INVITE" or request.body) and self.reoffers.outstanding(participant):
            # our own re-INVITE is out: glare (RFC 3261 14.2; an UPDATE refresh is no offer)
            raise RemoteProtocolError("Request Pending", status_hint=491)
        offer = None
        if request.body:
            offer, _ = self._split_body(request)
        if offer is None:
            # An UPDATE without SDP only refreshes the session (RFC 4028 7.4); a re-INVITE
            # without an offer gets our current session as the offer, answered in the ACK
            # (RFC 3261 14.2).
            timer = self._session_timer_for(participant, request)
            response = request.create_response(200)
            response.headers.set(
                "Contact", self.contact_for(room, event.transport, event.source[0])
            )
            if request.method == "INVITE" and participant.local_sdp is not None:
                participant.sdp_version += 1
                participant.local_sdp.origin = dataclasses.replace(
                    participant.local_sdp.origin, session_version=str(participant.sdp_version)
                )
                participant.pending_offer = participant.local_sdp
                response.headers.set("Content-Type", "application/sdp")
                response.body = participant.local_sdp.to_bytes()
            if timer is not None:
                self.timers.answer(participant, timer, response)
            self._sip.respond(response)
            self.timers.arm(room, participant)
            return
        offer = mask_dropped_chat(offer, participant.dropped_chat)
        if all_streams_removed(offer):
            self._end_by_reoffer(event, room, participant, offer)
            return
        if participant.file is not None:
            self._file_reoffer(event, room, participant, offer)
            return
        plan = self._negotiate(offer)
        timer = self._session_timer_for(participant, request)
        participant.reinvite_pending = True
        self.spawn(
            self._accept_reinvite(event, room, participant, offer, plan, timer),
            name=f"reinvite-{participant.id}",
        )

    async def _accept_reinvite(
        self,
        event: RequestReceived,
        room: Room,
        participant: Participant,
        offer: SessionDescription,
        plan: Any,
        timer: SessionTimer | None,
    ) -> None:
        request = event.request
        try:
            audio = _first_audio(plan)
            was_held = participant.on_hold
            if audio is None and participant.audio is not None:
                await self._media.remove_stream(participant.audio.stream_id)
                participant.audio = None
            elif audio is not None and participant.audio is None:
                participant.audio = await self._start_audio(room, participant, audio)
            elif audio is not None and participant.audio is not None:
                _apply_audio(participant.audio, audio)
                await self._media.update_stream(_spec(participant.audio))
            # the chat connection may have been lost while the media was updated
            plan = reject_dropped_chat(plan, participant.dropped_chat)
            chat_changed = self._update_chat(room, participant, plan.chat, event.source[0])
            answer = self._build_answer(offer, plan, participant, event.source[0])
        except Exception as exc:
            log.exception("re-INVITE failed")
            self.reject(request, 500, f"Media update failed: {exc}")
            return
        finally:
            participant.reinvite_pending = False
        response = self._answer_ok(event, room, answer)
        if timer is not None:
            self.timers.answer(participant, timer, response)
        self._sip.respond(response)
        self.timers.arm(room, participant)
        if participant.audio is None and participant.chat is None:
            # what was offered is gone (the dropped chat, audio removed): nothing is left
            self.leave(room, participant, send_bye=True, reason="(no stream left)")
            return
        if chat_changed:
            self._start_chat(room, participant)
        if participant.on_hold != was_held:
            log.info("%s %s", participant.uri, "on hold" if participant.on_hold else "resumed")
        self.room_changed(room)

    def _end_by_reoffer(
        self,
        event: RequestReceived,
        room: Room,
        participant: Participant,
        offer: SessionDescription,
    ) -> None:
        """Every stream at port 0 (RFC 3264 8.2): answer with port 0, then BYE.

        RFC 3264 would let the session live without streams, but a conference session (or an
        RFC 5547 transfer session, whose only stream this was) has no use then; SylkServer
        ends such sessions (BLINK.md 2.2).  The BYE follows the 200 at once: the dialog is
        confirmed, so RFC 3261 15 allows it, and the peer's ACK finds no session, as after
        any BYE.  A transfer in progress is stopped (an upload keeps its prefix for a resume).
        """
        plan = OfferPlan(
            decisions=tuple(
                Rejected(index=i, media=m.media, reason="stream removed")
                for i, m in enumerate(offer.media)
            )
        )
        response = self._answer_ok(
            event, room, self._build_answer(offer, plan, participant, event.source[0])
        )
        self._sip.respond(response)
        what = "file transfer" if participant.file is not None else "session"
        log.info("%s removed every stream of its %s in %s", participant.uri, what, room.key)
        self.leave(room, participant, send_bye=True, reason="(every stream removed)")

    def _file_reoffer(
        self,
        event: RequestReceived,
        room: Room,
        participant: Participant,
        offer: SessionDescription,
    ) -> None:
        """A re-offer in an RFC 5547 transfer session: the same stream again (a session
        refresh, Blink's hold attempt) gets our previous answer unchanged (RFC 3264 8: same
        SDP, same version); anything else 488, and the transfer goes on (RFC 3261 14.2)."""
        request = event.request
        state = participant.file
        assert state is not None
        try:
            plan: OfferPlan | None = self._negotiate(offer)
        except NoAcceptableMedia:
            plan = None
        why = file_offer_change(state.decision, state.selector, offer, plan)
        if why is not None or participant.local_sdp is None:
            log.info(
                "x %s from %s in file transfer session: %s", request.method, participant.uri, why
            )
            raise NoAcceptableMedia(
                "Not Acceptable Here: a file transfer stream cannot change (RFC 5547)"
            )
        timer = self._session_timer_for(participant, request)
        response = self._answer_ok(event, room, participant.local_sdp.to_bytes())
        if timer is not None:
            self.timers.answer(participant, timer, response)
        self._sip.respond(response)
        self.timers.arm(room, participant)

    # ----------------------------------------------------------------- leave
    def add_participant_dialog(self, key: DialogKey, room: Room, participant: Participant) -> None:
        self._participants[key] = (room, participant)

    def leave(
        self, room: Room, participant: Participant, *, send_bye: bool, reason: str = ""
    ) -> None:
        """Remove a participant; with `send_bye` the focus ends the dialog itself."""
        if room.remove(participant.id) is None:
            return
        participant.state = ParticipantState.DISCONNECTED
        if participant.dialog is not None:
            self._participants.pop(_key_of(participant.dialog), None)
        if participant.session_timer_handle is not None:
            participant.session_timer_handle.cancel()
        if participant.audio is not None:
            self.spawn(self._media.remove_stream(participant.audio.stream_id), name="rm-stream")
        self._stop_chat(room, participant)
        self._stop_file(participant)
        if send_bye and participant.dialog is not None:
            self.spawn(self._send_bye(participant), name=f"bye-{participant.id}")
        log.info("%s left %s %s", participant.uri, room.key, reason)
        if participant.file is None:  # file sessions are not announced (BLINK.md 3)
            self.room_changed(room)
        self._maybe_remove_room(room)

    async def _send_bye(self, participant: Participant) -> Response:
        assert participant.dialog is not None
        bye = participant.dialog.create_request("BYE")
        return await self.send_in_dialog(participant.dialog, participant.transport, bye)

    async def next_hop(self, dialog: Dialog, transport: str) -> tuple[Address, str]:
        """Where in-dialog requests go (RFC 3261 12.2.1.1): the first Route or the remote
        target; `transport` is used when that URI names none. Raises OSError."""
        target = _next_hop(dialog)
        transport = (target.param("transport") or transport).lower()
        port = target.port or _default_port(transport)
        return await self._sip.resolve(target.host, port, transport), transport

    async def send_in_dialog(self, dialog: Dialog, transport: str, request: Request) -> Response:
        """Send a request inside `dialog` (a 503 response when the target cannot be resolved)."""
        try:
            dest, transport = await self.next_hop(dialog, transport)
        except OSError as exc:
            log.warning("cannot resolve %s: %s", _next_hop(dialog), exc)
            return request.create_response(503, "Cannot resolve target")
        return await self._sip.request(request, dest, transport)

    def room_changed(self, room: Room) -> None:
        """Something RFC 4575 shows changed: NOTIFY every subscriber of the room."""
        self.subscriptions.room_changed(room)
        self._notify_observers(room, lambda observer: observer.room_updated(room))

    def _notify_observers(self, room: Room, call: Callable[[RoomObserver], None]) -> None:
        for observer in self.observers:
            try:
                call(observer)
            except Exception:  # an observer never breaks the focus
                log.exception("room observer %r failed on %s", observer, room.key)

    # -------------------------------------------------------------------- chat
    @property
    def msrp(self) -> MsrpPort | None:
        """The MSRP listener (`None`: chat is not offered nor accepted)."""
        return self._msrp

    def start_dialled_chat(
        self, room: Room, participant: Participant, chat: AcceptedChat, local_uri: MsrpUri
    ) -> None:
        """Dial-out (`conference.refer`): the callee answered our chat line, which offered
        `local_uri`; connect (or wait for the callee's connection) and hand the session to
        the chat port exactly as for an incoming chat stream."""
        self._prepare_chat(participant, chat, local_uri)
        self._start_chat(room, participant)

    def _prepare_chat(
        self,
        participant: Participant,
        chat: AcceptedChat,
        local_uri: MsrpUri | None = None,
        *,
        peer_host: str | None = None,
    ) -> None:
        """Our side of an accepted chat stream, before the answer goes out: a fresh local
        URI (our address as `peer_host` reaches it) or the one our own offer carried, and,
        when we are passive, the listener's expectation (BLINK.md 7: exact paths)."""
        assert self._msrp is not None
        state = ChatState(
            local_uri=local_uri or self._msrp.new_local_uri(peer_host),
            remote_path=chat.remote_path,
            we_connect=chat.we_connect,
            tls=chat.tls,
        )
        if not chat.we_connect:
            state.pending = self._msrp.expect(state.local_uri, " ".join(chat.remote_path))
        participant.chat = state

    def _update_chat(
        self, room: Room, participant: Participant, chat: AcceptedChat | None, peer_host: str
    ) -> bool:
        """A re-INVITE adds, keeps or removes the chat stream; True when a new one must be
        started once the answer is out."""
        current = participant.chat
        if chat is None:
            if current is not None:
                log.info("%s removed chat in %s", participant.uri, room.key)
                self._stop_chat(room, participant)
            return False
        if current is not None and current.remote_path == chat.remote_path:
            return False  # the same stream, our same path in the answer (RFC 4975 8.4)
        if current is not None:
            self._stop_chat(room, participant)
        self._prepare_chat(participant, chat, peer_host=peer_host)
        return True

    def _start_chat(self, room: Room, participant: Participant) -> None:
        state = participant.chat
        if state is not None and state.task is None and state.channel is None:
            state.task = self.spawn(
                self._connect_chat(room, participant, state), name=f"chat-{participant.id}"
            )

    async def _connect_chat(self, room: Room, participant: Participant, state: ChatState) -> None:
        """Wait for (passive) or make (active) the MSRP connection, then hand the session to
        the chat port; failure is handled as a lost connection."""
        assert self._msrp is not None
        try:
            if state.we_connect:
                channel = await self._msrp.connect(state.local_uri, " ".join(state.remote_path))
            else:
                assert state.pending is not None
                channel = await asyncio.wait_for(state.pending, self.msrp_connect_timeout)
        except (ConnectionError, OSError, TimeoutError) as exc:
            if participant.chat is state:
                state.task = None
                self._chat_lost(room, participant, f"MSRP connection failed: {exc}")
            return
        finally:
            state.pending = None
        if participant.chat is not state or participant.state is ParticipantState.DISCONNECTED:
            channel.close()
            return
        state.task = None
        state.channel = channel
        channel.set_handler(
            lambda event: self._chat_event(room, participant, state, event),
            lambda reason: self._chat_lost(room, participant, reason, state),
        )
        state.joined = True
        log.info("%s chat connected in %s", participant.uri, room.key)
        self.chat.join(room, participant, channel)

    def _chat_event(
        self, room: Room, participant: Participant, state: ChatState, event: MsrpEvent
    ) -> None:
        if participant.chat is state and state.joined:
            self.chat.handle_event(room, participant, event)

    def fail_chat(self, room: Room, participant: Participant, reason: str) -> None:
        """The chat port gives up on a stream (queue full, SEND timed out): handled as a lost
        connection."""
        self._chat_lost(room, participant, reason)

    def _chat_lost(
        self, room: Room, participant: Participant, reason: str, state: ChatState | None = None
    ) -> None:
        """The chat stream's connection is gone: drop the stream; a session left without
        any stream is ended with BYE (BLINK.md 4, SylkServer ends such sessions), one that
        keeps audio is told with a re-INVITE disabling the chat line (`Reoffers`)."""
        if participant.chat is None or (state is not None and participant.chat is not state):
            return
        log.info("%s lost chat in %s: %s", participant.uri, room.key, reason)
        participant.dropped_chat = participant.chat
        self._stop_chat(room, participant)
        if participant.audio is None:
            self.leave(room, participant, send_bye=True, reason="(MSRP connection lost)")
        else:
            self.room_changed(room)
            # tell the peer (a re-INVITE with the chat line at port 0, as SylkServer does);
            # an offer being answered right now gets that line rejected instead
            self.reoffers.sync(room, participant)

    def _stop_chat(self, room: Room, participant: Participant) -> None:
        """Tear the chat stream down: expectation, connect task, connection, chat port."""
        state, participant.chat = participant.chat, None
        if state is None:
            return
        if state.pending is not None and self._msrp is not None:
            self._msrp.forget_expected(state.local_uri)
            state.pending = None
        if state.task is not None and state.task is not asyncio.current_task():
            state.task.cancel()
        state.task = None
        if state.joined:
            state.joined = False
            self.chat.leave(room, participant)
        if state.channel is not None:
            state.channel.close()
            state.channel = None

    # ------------------------------------------------------------------- files
    def _stop_file(self, participant: Participant) -> None:
        """Tear a file session's transfer down (the participant stays a file session)."""
        if participant.file is not None and self.files is not None:
            self.files.stop(participant.file)

    def end_file_session(self, room: Room, participant: Participant, reason: str) -> None:
        """A transfer is over (done, failed or its connection lost): BYE (BLINK.md 5)."""
        self.leave(room, participant, send_bye=True, reason=f"({reason})")

    def files_changed(self, room_key: str) -> None:
        """A room's file list changed (upload finished, files expired): NOTIFY."""
        room = self._rooms.get(room_key.lower())
        if room is not None and self.files is not None:
            room.files = self.files.store.shared_files(room.key)
            self.room_changed(room)

    # ------------------------------------------------------------ media events
    def media_event(self, event: MediaEvent) -> None:
        """Events from the media worker: RTP timeout ends audio-only sessions (BLINK.md 8)."""
        match event:
            case RtpTimeout():
                found = self._participant_by_stream(event.stream_id)
                if found is not None:
                    room, participant = found
                    log.info("RTP timeout for %s in %s", participant.uri, room.key)
                    self.leave(room, participant, send_bye=True, reason="(RTP timeout)")
            case Dtmf():
                found = self._participant_by_stream(event.stream_id)
                if found is not None:
                    self._on_dtmf(*found, event.digit)
            case StreamFailed():
                log.warning("media stream %s failed: %s", event.stream_id, event.reason)
            case StreamStats():
                found = self._participant_by_stream(event.stream_id)
                if found is not None and found[1].audio is not None:
                    found[1].audio.stats = event
            case _:
                pass

    def _on_dtmf(self, room: Room, participant: Participant, digit: str) -> None:
        """RFC 4733 key presses: '*' followed by '6' within `DTMF_MUTE_WINDOW` toggles the
        sender's own mute; any other key cancels a pending '*'."""
        log.info("DTMF %s from %s", digit, participant.uri)
        now = asyncio.get_running_loop().time()
        star, participant.dtmf_star_at = participant.dtmf_star_at, None
        if digit == "*":
            participant.dtmf_star_at = now
        elif digit == "6" and star is not None and now - star <= DTMF_MUTE_WINDOW:
            self.set_muted(room, participant, not participant.muted)

    def set_muted(self, room: Room, participant: Participant, muted: bool) -> None:
        """Mute (not heard by the others, still hears the room) or unmute a participant;
        the participant hears a confirmation tone, subscribers see muted-via-focus."""
        if participant.audio is None or participant.muted == muted:
            return
        participant.muted = muted
        stream_id = participant.audio.stream_id
        log.info("%s %s in %s", participant.uri, "muted" if muted else "unmuted", room.key)
        self.spawn(self._media.set_mute(stream_id, muted), name=f"mute-{participant.id}")
        if self._config.media.prompts:
            self._media.play_prompt(room.id, "muted" if muted else "unmuted", stream_id)
        self.room_changed(room)

    def _announce_join(self, room: Room, participant: Participant) -> None:
        """Join tone to everyone when someone joins others; a lone joiner is told privately
        that they are the only participant."""
        if participant.audio is None or not self._config.media.prompts:
            return
        others = any(
            p is not participant and p.audio is not None
            and p.state is ParticipantState.CONNECTED
            for p in room.participants.values()
        )
        if others:
            self._media.play_prompt(room.id, "join")
        else:
            self._media.play_prompt(room.id, "alone", participant.audio.stream_id)

    def _participant_by_stream(self, stream_id: str) -> tuple[Room, Participant] | None:
        for room in self._rooms.values():
            for participant in room.participants.values():
                if participant.audio is not None and participant.audio.stream_id == stream_id:
                    return room, participant
        return None

    # ----------------------------------------------------------------- close
    async def close(self, timeout: float) -> None:
        """Graceful shutdown: BYE everyone, terminate subscriptions, within `timeout`."""
        self.closing = True
        byes: list[asyncio.Task[Any]] = []
        for room in list(self._rooms.values()):
            for participant in list(room.participants.values()):
                if (
                    participant.dialog is not None
                    and participant.state is ParticipantState.CONNECTED
                ):
                    byes.append(self.spawn(self._send_bye(participant), name="bye"))
                self._stop_chat(room, participant)
                self._stop_file(participant)
                room.remove(participant.id)
        byes.extend(self.subscriptions.terminate_all())
        byes.extend(self.refer.terminate_all())
        if self.file_push is not None:
            byes.extend(self.file_push.terminate_all())
        if byes:
            await asyncio.wait(byes, timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=0.2)


def _stream_id(room: Room, participant: Participant) -> str:
    return f"{room.id}-{participant.id}"


def _first_audio(plan: Any) -> AcceptedAudio | None:
    return next((d for d in plan.decisions if isinstance(d, AcceptedAudio)), None)


def _apply_audio(state: AudioState, audio: AcceptedAudio) -> None:
    state.payload_type = audio.codec.payload_type
    state.codec = audio.codec.name
    state.clock_rate = audio.codec.clock_rate
    state.telephone_event_pt = audio.telephone_event_pt
    if audio.remote_address is not None:
        state.remote_host, state.remote_port = audio.remote_address
    state.local_direction = audio.local_direction
    state.remote_on_hold = audio.on_hold
    _apply_srtp(state, audio)


def _apply_srtp(state: AudioState, audio: AcceptedAudio) -> None:
    """SDES keys (RFC 4568): the remote's from its a=crypto; ours from our own offer's line
    (dial-out), else kept across re-INVITEs unless the suite or the remote's key changed
    (RFC 4568 7.1.4 lets the answerer keep its key), else fresh (RFC 4568 6.1)."""
    crypto = audio.crypto
    if crypto is None:
        state.srtp_suite = state.local_key = state.remote_key = None
        return
    if audio.local_crypto is not None:
        local = audio.local_crypto.key
    elif (
        state.local_key is not None
        and state.srtp_suite == crypto.suite
        and state.remote_key == crypto.key
    ):
        local = state.local_key
    else:
        local = new_inline_key(SUITE_KEY_SALT_LENGTHS[crypto.suite])
    state.srtp_suite, state.local_key, state.remote_key = crypto.suite, local, crypto.key


def _spec(state: AudioState) -> StreamSpec:
    return StreamSpec(
        stream_id=state.stream_id,
        local_port=state.local_port or None,
        remote_host=state.remote_host,
        remote_port=state.remote_port,
        payload_type=state.payload_type,
        codec=state.codec,
        clock_rate=state.clock_rate,
        telephone_event_pt=state.telephone_event_pt,
        direction=state.local_direction,
        srtp=_srtp_params(state),
    )


def _srtp_params(state: AudioState) -> SrtpParams | None:
    if state.srtp_suite is None or state.local_key is None or state.remote_key is None:
        return None
    return SrtpParams(
        suite=state.srtp_suite, local_key=state.local_key, remote_key=state.remote_key
    )


def _key_of(dialog: Dialog) -> DialogKey:
    return dialog.id.call_id, dialog.id.local_tag, dialog.id.remote_tag


def _next_hop(dialog: Dialog) -> SipUri:
    """Where an in-dialog request goes: first Route if loose routing, else the target."""
    if dialog.route_set:
        return dialog.route_set[0].uri
    return dialog.remote_target


def _default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060
