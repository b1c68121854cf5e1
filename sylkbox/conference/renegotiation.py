"""Offer/answer inside an established session (RFC 3264 8): the focus's rules for re-offers.

Incoming re-offers (re-INVITE or UPDATE with SDP), decided by `Focus._start_reinvite` with the
pure helpers here:

* **A file transfer session** (RFC 5547, BLINK.md 5) has one stream that cannot change: an
  offer repeating it (same ``a=path``, file-selector, direction and file-transfer-id, as an
  RFC 4028 refresh or Blink's hold attempt sends) is answered with our previous answer,
  unchanged (RFC 5547 8.1, RFC 3264 8: same SDP, same version); an offer changing it or adding
  streams is refused with 488 (`file_offer_change`) and the transfer goes on.
* **Every stream at port 0** removes them all (RFC 3264 8.2): answered with port 0, then the
  focus sends BYE, as SylkServer does (BLINK.md 2.2): a conference session without media, or
  a transfer session without its file stream, has no use.
* **A chat stream the box dropped** (its MSRP connection was lost while audio stayed) stays
  dropped: an offer that still carries its ``a=path`` gets that line answered with port 0
  (`mask_dropped_chat`, and `reject_dropped_chat` when the connection is lost while the offer
  is being answered); a chat line with a new path is a new stream and is set up.

Outgoing re-offers, sent by `Reoffers`: when the box drops a chat stream and audio stays, it
tells the peer with a re-INVITE whose ``m=message`` line has port 0 (RFC 3264 8.2; SylkServer
removes the stream the same way), so the client shows the chat as ended.  The offer is our last
SDP with that line disabled and the version raised (RFC 3264 8).  While it is outstanding an
incoming re-INVITE gets 491; a 491 for ours is retried after the RFC 3261 14.1 delay (2.1-4 s
when we own the Call-ID, i.e. dialled out, else 0-2 s) unless the peer's own re-offer has
removed the line meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from sylkbox.conference.capabilities import ALLOW, SUPPORTED
from sylkbox.conference.participant import ChatState, Participant, ParticipantState
from sylkbox.conference.room import Room
from sylkbox.conference.sip_port import SipPort
from sylkbox.msrp.file_selector import FileSelector, FileSelectorError
from sylkbox.msrp.file_selector import parse as parse_file_selector
from sylkbox.sdp import (
    AcceptedChat,
    AcceptedFile,
    InvalidAnswerError,
    OfferPlan,
    Rejected,
    SdpError,
    SessionDescription,
    negotiate_answer,
)
from sylkbox.sdp.model import MediaDescription
from sylkbox.sip.message import Request, Response

if TYPE_CHECKING:
    from sylkbox.conference.focus import Focus

__all__ = [
    "Reoffers",
    "all_streams_removed",
    "file_offer_change",
    "glare_delay",
    "mask_dropped_chat",
    "reject_dropped_chat",
    "removal_offer",
]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Re-INVITEs sent for one removal: the first and two retries after 491."""


# ------------------------------------------------------------------------ incoming offers
def _message_path(media: MediaDescription) -> tuple[str, ...] | None:
    """The ``a=path`` of an active chat (not file transfer) ``m=message`` line."""
    if media.media != "message" or media.port == 0 or media.attribute("file-selector"):
        return None
    path = media.attribute("path")
    return tuple(path.split()) if path else None


def mask_dropped_chat(offer: SessionDescription, dropped: ChatState | None) -> SessionDescription:
    """`offer` with the chat line of the dropped stream (same remote path) at port 0, so that
    negotiation rejects it and may take another chat line (a new stream)."""
    if dropped is None:
        return offer
    media = [
        dataclasses.replace(m, port=0) if _message_path(m) == dropped.remote_path else m
        for m in offer.media
    ]
    return dataclasses.replace(offer, media=media)


def reject_dropped_chat(plan: OfferPlan, dropped: ChatState | None) -> OfferPlan:
    """`plan` with the accepted chat stream rejected when it is the dropped one (its
    connection was lost while the offer was being answered)."""
    chat = plan.chat
    if dropped is None or chat is None or chat.remote_path != dropped.remote_path:
        return plan
    decisions = tuple(
        Rejected(index=d.index, media="message", reason="chat stream was closed")
        if isinstance(d, AcceptedChat)
        else d
        for d in plan.decisions
    )
    return OfferPlan(decisions=decisions)


def file_offer_change(
    current: AcceptedFile, selector: FileSelector, offer: SessionDescription, plan: OfferPlan | None
) -> str | None:
    """Why a re-offer in a file transfer session is not the same stream (`None`: it is).

    `current` is the accepted stream and `selector` its parsed ``a=file-selector``; `plan` is
    the negotiation of `offer` (`None` when nothing in it was acceptable).  The selector is
    compared parsed (RFC 5547 5: name, type, size, hash), so writing it differently is no
    change; a new ``a=file-transfer-id`` is a new transfer (RFC 5547 8.1), not supported in
    one session."""
    if len(offer.media) != 1:
        return f"{len(offer.media)} m-lines offered, the transfer session has one"
    decision = plan.file if plan is not None else None
    if decision is None:
        return "the file stream is not offered as a usable file transfer"
    if decision.remote_path != current.remote_path:
        return "a=path changed"
    try:
        offered = parse_file_selector(decision.file_selector)
    except FileSelectorError as exc:
        return f"bad file-selector: {exc.reason}"
    if offered != selector:
        return "file-selector changed"
    if decision.remote_direction is not current.remote_direction:
        return f"direction changed to {decision.remote_direction.value}"
    if decision.transfer_id != current.transfer_id:
        return "file-transfer-id changed"
    return None


def all_streams_removed(offer: SessionDescription) -> bool:
    """Every m-line of the offer has port 0 (RFC 3264 8.2)."""
    return bool(offer.media) and all(m.port == 0 for m in offer.media)


# ------------------------------------------------------------------------ outgoing offers
def glare_delay(call_id_owner: bool) -> float:
    """How long to wait before re-sending a re-INVITE that got 491 (RFC 3261 14.1): 2.1-4 s
    for the owner of the dialog's Call-ID (the UAC of the first INVITE), else 0-2 s."""
    return random.uniform(2.1, 4.0) if call_id_owner else random.uniform(0.0, 2.0)


def removal_offer(
    current: SessionDescription, local_path: str, version: int
) -> SessionDescription | None:
    """Our last SDP with the active ``m=message`` line whose ``a=path`` is `local_path` at
    port 0 and the origin version set to `version`; `None` when there is no such line."""
    offer = SessionDescription.parse(current.to_bytes())  # a copy we may change
    for index, media in enumerate(offer.media):
        path = _message_path(media)
        if path is not None and path[0] == local_path:
            offer.media[index] = MediaDescription(
                media=media.media, port=0, proto=media.proto, formats=media.formats[:1] or ["*"]
            )
            offer.origin = dataclasses.replace(offer.origin, session_version=str(version))
            return offer
    return None


class Reoffers:
    """The focus's own re-INVITEs removing a dropped stream (see the module docstring)."""

    def __init__(self, focus: Focus, sip: SipPort) -> None:
        self._focus = focus
        self._sip = sip
        self._running: dict[str, asyncio.Task[None]] = {}
        self._outstanding: set[str] = set()
        self.retry_delay: Callable[[bool], float] = glare_delay

    def outstanding(self, participant: Participant) -> bool:
        """Our re-INVITE to `participant` waits for its final response (glare: 491)."""
        return participant.id in self._outstanding

    def sync(self, room: Room, participant: Participant) -> None:
        """Tell the peer about a dropped chat stream its session still shows, once the
        session can take a re-INVITE (connected, no offer/answer in progress)."""
        if participant.id in self._running or not self._ready(participant):
            return
        if self._needed(participant) is None:
            return
        task = self._focus.spawn(self._run(room, participant), name=f"reoffer-{participant.id}")
        self._running[participant.id] = task
        task.add_done_callback(lambda _: self._running.pop(participant.id, None))

    def _ready(self, participant: Participant) -> bool:
        return (
            not self._focus.closing
            and participant.state is ParticipantState.CONNECTED
            and participant.dialog is not None
            and participant.local_sdp is not None
            and not participant.reinvite_pending
            and not self._focus.awaiting_ack(participant)
        )

    def _needed(self, participant: Participant) -> SessionDescription | None:
        dropped = participant.dropped_chat
        if dropped is None or participant.local_sdp is None:
            return None
        return removal_offer(
            participant.local_sdp, str(dropped.local_uri), participant.sdp_version + 1
        )

    async def _run(self, room: Room, participant: Participant) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                assert participant.dialog is not None
                await asyncio.sleep(self.retry_delay(participant.dialog.is_uac))
            if not self._ready(participant):
                return
            offer = self._needed(participant)
            if offer is None:
                return  # the peer's own re-offer removed the stream meanwhile
            response = await self._send(participant, offer)
            if self._focus.closing or participant.state is ParticipantState.DISCONNECTED:
                return
            if 200 <= response.status < 300:
                await self._answered(room, participant, offer, response)
                return
            if response.status == 491:
                log.info("re-INVITE to %s crossed one of its own (491), retrying", participant.uri)
                continue
            if response.status in (408, 481):
                log.info(
                    "re-INVITE to %s got %d, ending the session", participant.uri, response.status
                )
                self._focus.leave(
                    room, participant, send_bye=response.status != 481, reason="(re-INVITE failed)"
                )
                return
            # RFC 3261 14.1: the session goes on as it was; our side has no chat already
            log.warning(
                "re-INVITE to %s removing chat got %d %s",
                participant.uri,
                response.status,
                response.reason,
            )
            return

    async def _send(self, participant: Participant, offer: SessionDescription) -> Response:
        dialog = participant.dialog
        assert dialog is not None
        headers: list[tuple[str, str]] = [("Allow", ALLOW), ("Supported", SUPPORTED)]
        if participant.session_timer is not None:  # a re-INVITE refreshes too (RFC 4028 7.4)
            headers += [
                h for h in participant.session_timer.request_headers() if h[0] != "Supported"
            ]
        participant.sdp_version = int(offer.origin.session_version)
        request = dialog.create_request(
            "INVITE", body=offer.to_bytes(), content_type="application/sdp", extra_headers=headers
        )
        log.info("> re-INVITE to %s: chat stream removed (port 0)", participant.uri)
        self._outstanding.add(participant.id)
        try:
            return await self._focus.send_in_dialog(dialog, participant.transport, request)
        finally:
            self._outstanding.discard(participant.id)

    async def _answered(
        self, room: Room, participant: Participant, offer: SessionDescription, response: Response
    ) -> None:
        dialog = participant.dialog
        assert dialog is not None
        dialog.receive_response(response)  # target refresh (RFC 3261 12.2.1.2)
        await self._ack(participant, response)
        participant.local_sdp = offer
        timer = participant.session_timer
        if timer is not None:
            timer.receive_response(response)
            self._focus.timers.arm(room, participant)
        try:
            answer = SessionDescription.parse(response.body)
            accepted = negotiate_answer(offer, answer) if participant.audio is not None else None
        except (SdpError, InvalidAnswerError) as exc:
            log.warning("x bad SDP answer to our re-INVITE from %s: %s", participant.uri, exc)
            return
        if accepted is not None and participant.audio is not None:
            self._focus.apply_audio_answer(room, participant, accepted)

    async def _ack(self, participant: Participant, response: Response) -> None:
        dialog = participant.dialog
        assert dialog is not None
        ack: Request = dialog.create_ack(response.cseq.seq)
        try:  # RFC 3261 13.2.2.4: the ACK follows the dialog's route set and target
            dest, transport = await self._focus.next_hop(dialog, participant.transport)
        except OSError as exc:
            log.warning("x cannot ACK %s: %s", participant.uri, exc)
            return
        self._sip.send_stateless(ack, dest, transport)
