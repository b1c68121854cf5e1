"""Participant management by REFER (RFC 4579 5.1, 5.2, 5.5, 5.11; RFC 3515) and dial-out.

An out-of-dialog REFER to the room adds (`method=INVITE`, the default) or removes (`method=BYE`)
a participant. The REFER creates an implicit `refer` subscription whose NOTIFYs carry
`message/sipfrag` progress (RFC 3515 2.4.5), unless the referrer sent `Refer-Sub: false`
(RFC 4488).

A dial-out carries the media types active in the room (BLINK.md 2.2): audio and/or an MSRP chat
line offering ``a=setup:active`` (BLINK.md 7: a Blink Bonjour account answers ``passive`` and
listens, so we connect to its ``a=path`` and bind; a callee answering ``active`` is waited for).
The answered chat stream goes through the focus's own chat path (`Focus.start_dialled_chat`),
so a failed connection drops the stream, and the call when chat was all it had.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sylkbox.conference.capabilities import ALLOW, SUPPORTED
from sylkbox.conference.errors import BadRequest, NoAcceptableMedia, RoomNotFound
from sylkbox.conference.media_port import MediaPort, StreamSpec
from sylkbox.conference.participant import AudioState, Participant, ParticipantState
from sylkbox.conference.refer_to import BadReferTo, parse_refer_to
from sylkbox.conference.room import Room
from sylkbox.conference.sip_port import SipPort
from sylkbox.msrp.uri import MsrpUri
from sylkbox.sdp import (
    AcceptedAudio,
    AcceptedChat,
    InvalidAnswerError,
    SdpError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    negotiate_chat_answer,
)
from sylkbox.sdp.crypto import SrtpPolicy, offer_lines
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import Headers, NameAddr
from sylkbox.sip.message import Request, Response
from sylkbox.sip.session_timer import SessionTimer
from sylkbox.sip.sipfrag import sipfrag_status
from sylkbox.sip.transaction import RequestReceived
from sylkbox.sip.uri import SipUri

if TYPE_CHECKING:
    from sylkbox.conference.focus import DialogKey, Focus

__all__ = ["ReferHandler"]

log = logging.getLogger(__name__)

Report = Callable[[int, str], None]


@dataclass(slots=True)
class _ReferSubscription:
    dialog: Dialog
    transport: str
    done: bool = False
    last: asyncio.Task[None] | None = None


class ReferHandler:
    def __init__(self, focus: Focus, sip: SipPort, media: MediaPort) -> None:
        self._focus = focus
        self._sip = sip
        self._media = media
        self._subs: dict[DialogKey, _ReferSubscription] = {}
        self._offers: dict[str, SessionDescription] = {}

    def owns(self, key: DialogKey) -> bool:
        return key in self._subs

    # ------------------------------------------------------------------ REFER
    def on_refer(self, event: RequestReceived) -> None:
        request = event.request
        refer_to = request.headers.get("Refer-To")
        if refer_to is None:
            raise BadRequest("Missing Refer-To header")
        room = self._focus.room_for_request(request)
        if room is None:
            raise RoomNotFound("No such conference")
        try:
            target = parse_refer_to(refer_to)
        except BadReferTo as exc:
            raise RemoteProtocolError(f"Bad Refer-To: {exc.reason}", status_hint=488) from exc
        if target.method not in ("INVITE", "BYE"):
            raise RemoteProtocolError(f"Unsupported refer method {target.method}", status_hint=488)
        try:
            target_uri = SipUri.parse(target.uri_text)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"Bad Refer-To URI: {exc.reason}", status_hint=488) from exc
        if target.method == "INVITE":
            self._focus.check_policy(room, request.from_.uri)
        no_sub = (request.headers.get("Refer-Sub") or "").strip().lower() == "false"
        response = request.create_response(202, to_tag=secrets.token_hex(6))
        response.headers.set(
            "Contact", self._focus.contact_for(room, event.transport, event.source[0])
        )
        if no_sub:
            response.headers.set("Refer-Sub", "false")
        self._sip.respond(response)
        report: Report | None = None
        if not no_sub:
            sub = _ReferSubscription(Dialog.from_uas(request, response), event.transport)
            key = (sub.dialog.id.call_id, sub.dialog.id.local_tag, sub.dialog.id.remote_tag)
            self._subs[key] = sub
            report = lambda code, reason: self._notify(key, code, reason)  # noqa: E731
            report(100, "Trying")
        referrer = str(request.from_.uri)
        log.info("REFER from %s: %s %s in %s", referrer, target.method, target_uri, room.key)
        if target.method == "BYE":
            self._remove(room, target_uri, report)
        else:
            referred_by = request.headers.get("Referred-By") or f"<{referrer}>"
            self.dial_out(
                room,
                str(target_uri),
                referrer=referrer,
                report=report,
                referred_by=referred_by,
                referrer_name=request.from_.display_name,
            )

    def _remove(self, room: Room, target: SipUri, report: Report | None) -> None:
        victims = room.by_uri(str(target))
        for participant in victims:
            self._focus.leave(room, participant, send_bye=True, reason="(removed by REFER)")
        if report is not None:
            if victims:
                report(200, "OK")
            else:
                report(404, "Not Found")

    def _notify(self, key: DialogKey, code: int, reason: str) -> None:
        sub = self._subs.get(key)
        if sub is None or sub.done:
            return
        final = code >= 200
        state = "terminated;reason=noresource" if final else "active;expires=180"
        notify = sub.dialog.create_request(
            "NOTIFY", body=sipfrag_status(code, reason), content_type="message/sipfrag;version=2.0"
        )
        notify.headers.set("Event", "refer")
        notify.headers.set("Subscription-State", state)
        if final:
            sub.done = True
            self._subs.pop(key, None)
        previous = sub.last

        async def send() -> None:
            if previous is not None:  # keep the NOTIFYs of one subscription in order
                await asyncio.wait([previous])
            await self._focus.send_in_dialog(sub.dialog, sub.transport, notify)

        sub.last = self._focus.spawn(send(), name="refer-notify")

    def terminate_all(self) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        for key in list(self._subs):
            sub = self._subs[key]
            self._notify(key, 503, "Service Unavailable")
            if sub.last is not None:
                tasks.append(sub.last)
        return tasks

    # --------------------------------------------------------------- dial-out
    def dial_out(
        self,
        room: Room,
        uri: str,
        *,
        referrer: str,
        report: Report | None,
        referred_by: str | None = None,
        referrer_name: str | None = None,
    ) -> None:
        self._focus.spawn(
            self._dial(room, uri, referrer, report, referred_by, referrer_name),
            name=f"dial-{uri}",
        )

    async def _dial(
        self,
        room: Room,
        uri: str,
        referrer: str,
        report: Report | None,
        referred_by: str | None,
        referrer_name: str | None,
    ) -> None:
        def progress(code: int, reason: str) -> None:
            if report is not None:
                report(code, reason)

        try:
            target = SipUri.parse(uri if ":" in uri.split("@", maxsplit=1)[0] else f"sip:{uri}")
        except RemoteProtocolError as exc:
            progress(400, f"Bad target: {exc.reason}")
            return
        if room.key not in self._focus.rooms:
            progress(500, "Conference not active")
            return
        transport = target.transport
        try:
            dest = await self._sip.resolve(
                target.host, target.port or _port_for(transport), transport
            )
        except OSError as exc:
            progress(404, f"Cannot resolve {target.host}: {exc}")
            return
        want_audio, want_chat = self._room_media(room)
        participant = Participant(
            id=secrets.token_hex(6),
            uri=str(target.without_params()),
            display_name=None,
            contact=str(target),
            joined_at=datetime.now(UTC),
            state=ParticipantState.DIALING,
            transport=transport,
            invited=True,
        )
        room.add(participant)
        self._focus.room_changed(room)
        audio: AudioState | None = None
        if want_audio:
            audio = AudioState(stream_id=f"{room.id}-{participant.id}")
            try:
                rate = room.policy.mixing_rate(self._focus.config.media)
                audio.local_port = await self._media.add_stream(
                    room.id, replace(_placeholder(audio), room_rate=rate)
                )
            except Exception as exc:
                log.exception("media for dial-out failed")
                room.remove(participant.id)
                progress(500, f"Media setup failed: {exc}")
                return
            participant.audio = audio
        msrp = self._focus.msrp
        chat_uri = msrp.new_local_uri(dest[0]) if want_chat and msrp is not None else None
        invite = self._build_invite(
            room, target, dest, transport, participant, referrer, referred_by, referrer_name,
            chat_uri,
        )

        def on_provisional(response: Response) -> None:
            if response.status == 100:
                return
            if response.status in (180, 183) and participant.state is ParticipantState.DIALING:
                participant.state = ParticipantState.ALERTING
                self._focus.room_changed(room)
            progress(response.status, response.reason)

        response = await self._sip.request(invite, dest, transport, on_provisional=on_provisional)
        if response.status >= 300 or response.status < 200:
            log.info("dial-out to %s failed: %d %s", target, response.status, response.reason)
            self._offers.pop(participant.id, None)
            if audio is not None:
                await self._media.remove_stream(audio.stream_id)
            room.remove(participant.id)
            self._focus.room_changed(room)
            progress(response.status, response.reason)
            return
        dialog = Dialog.from_uac(invite, response)
        participant.dialog = dialog
        if participant.session_timer is not None:
            participant.session_timer.receive_response(response)
        if response.contacts:
            participant.contact = str(response.contacts[0].uri)
        offer = self._offers.pop(participant.id, None)
        participant.local_sdp = offer  # our current SDP: the base of later offers (RFC 3264 8)
        accepted: AcceptedAudio | None = None
        chat: AcceptedChat | None = None
        try:
            if offer is None:
                raise NoAcceptableMedia("no offer for this dial-out")
            answer = SessionDescription.parse(response.body)
            if audio is not None:
                accepted = negotiate_answer(offer, answer)
            if chat_uri is not None:
                chat = self._chat_answer(target, offer, answer)
            if accepted is None and chat is None:
                raise NoAcceptableMedia("no usable stream in the answer")
        except (SdpError, NoAcceptableMedia) as exc:
            log.warning("dial-out to %s: unusable answer (%s), hanging up", target, exc)
            await self._ack(dialog, invite, dest, transport)
            self._focus.add_participant_dialog(_key(dialog), room, participant)
            self._focus.leave(room, participant, send_bye=True, reason="(bad SDP answer)")
            progress(488, "Not Acceptable Here")
            return
        self._focus.add_participant_dialog(_key(dialog), room, participant)
        if chat is not None and chat_uri is not None:
            # before the ACK: a callee that answered active may connect at once (BLINK.md 7)
            self._focus.start_dialled_chat(room, participant, chat, chat_uri)
        await self._ack(dialog, invite, dest, transport)
        from sylkbox.conference.focus import _apply_audio, _spec

        if audio is not None and accepted is None:  # the callee refused audio, kept chat
            participant.audio = None
            await self._media.remove_stream(audio.stream_id)
        elif audio is not None and accepted is not None:
            _apply_audio(audio, accepted)
            await self._media.update_stream(_spec(audio))
        if participant.state is ParticipantState.DISCONNECTED:  # chat failed, nothing left
            progress(200, "OK")
            return
        participant.state = ParticipantState.CONNECTED
        self._focus.timers.arm(room, participant)
        log.info("%s joined %s (dialled out)", participant.uri, room.key)
        self._focus.room_changed(room)
        self._focus.reoffers.sync(room, participant)  # chat lost before we were connected
        progress(200, "OK")

    def _room_media(self, room: Room) -> tuple[bool, bool]:
        """The media types active in the room (BLINK.md 2.2): (audio, chat).  Chat needs the
        MSRP listener; a room where nothing is active yet gets audio, as before."""
        others = [p for p in room.participants.values() if p.state is ParticipantState.CONNECTED]
        audio = any(p.audio is not None for p in others)
        chat = self._focus.msrp is not None and any(p.chat is not None for p in others)
        return audio or not chat, chat

    def _chat_answer(
        self, target: SipUri, offer: SessionDescription, answer: SessionDescription
    ) -> AcceptedChat | None:
        """The callee's chat line; an unusable one drops only the chat stream."""
        try:
            return negotiate_chat_answer(offer, answer)
        except InvalidAnswerError as exc:
            log.warning("dial-out to %s: unusable chat answer (%s)", target, exc.reason)
            return None

    async def _ack(
        self, dialog: Dialog, invite: Request, dest: tuple[str, int], transport: str
    ) -> None:
        ack = dialog.create_ack(invite.cseq.seq)
        try:  # RFC 3261 13.2.2.4: the ACK follows the dialog's route set and target
            ack_dest, ack_transport = await self._focus.next_hop(dialog, transport)
        except OSError:
            ack_dest, ack_transport = dest, transport
        self._sip.send_stateless(ack, ack_dest, ack_transport)

    def _build_invite(
        self,
        room: Room,
        target: SipUri,
        dest: tuple[str, int],
        transport: str,
        participant: Participant,
        referrer: str,
        referred_by: str | None,
        referrer_name: str | None,
        chat_uri: MsrpUri | None = None,
    ) -> Request:
        host, _ = self._sip.contact_host(transport, dest[0])
        audio = participant.audio
        srtp = self._focus.capabilities.srtp is not SrtpPolicy.DISABLED
        offer = build_offer(
            self._focus.capabilities,
            address=host,
            audio_port=audio.local_port if audio is not None else None,
            session_id=int(participant.id, 16),
            session_version=1,
            crypto=offer_lines() if srtp and audio is not None else (),
            chat_path=str(chat_uri) if chat_uri is not None else None,
            chat_tls=self._focus.msrp.tls if self._focus.msrp is not None else True,
        )
        self._offers[participant.id] = offer
        headers = Headers()
        headers.add(
            "From",
            str(
                NameAddr("Conference Call", SipUri.parse(room.uri), ()).with_tag(
                    secrets.token_hex(6)
                )
            ),
        )
        headers.add("To", f"<{target}>")
        headers.add("Call-ID", secrets.token_hex(12))
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", self._focus.contact_for(room, transport, dest[0]))
        headers.add("X-Orig-From", f"<{referrer}>")
        who = f"{referrer_name} <{referrer}>" if referrer_name else referrer
        headers.add("Subject", f"Join conference request from {who}")
        if referred_by:
            headers.add("Referred-By", referred_by)
        headers.add("Allow", ALLOW)
        headers.add("Supported", SUPPORTED)
        sip = self._focus.config.sip
        timer = SessionTimer(interval=sip.session_expires, min_se=sip.min_session_expires)
        participant.session_timer = timer
        for name, value in timer.request_headers():  # RFC 4028 7.1
            if name != "Supported":
                headers.add(name, value)
        headers.add("Content-Type", "application/sdp")
        return Request("INVITE", target, headers, offer.to_bytes())


def _placeholder(audio: AudioState) -> StreamSpec:
    """The stream before the callee answers: no remote address yet, nothing is sent."""
    return StreamSpec(
        stream_id=audio.stream_id,
        local_port=None,
        remote_host=None,
        remote_port=None,
        payload_type=0,
        codec="PCMU",
        clock_rate=8000,
        telephone_event_pt=None,
        direction="sendrecv",
    )


def _key(dialog: Dialog) -> DialogKey:
    return dialog.id.call_id, dialog.id.local_tag, dialog.id.remote_tag


def _port_for(transport: str) -> int:
    return 5061 if transport == "tls" else 5060
