"""Session timers (RFC 4028) for the focus's INVITE sessions.

The sans-I/O `SessionTimer` negotiates and computes deadlines; this module arms them on the loop:
when we are the refresher we send an UPDATE (or a re-INVITE when the peer does not allow UPDATE)
at half the interval; when the session expires without a refresh we send BYE (RFC 4028 10).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room
from sylkbox.sip.message import Request, Response
from sylkbox.sip.session_timer import SessionTimer

if TYPE_CHECKING:
    from sylkbox.conference.focus import Focus

__all__ = ["SessionTimers"]

log = logging.getLogger(__name__)


class SessionTimers:
    def __init__(self, focus: Focus) -> None:
        self._focus = focus

    def negotiate(self, current: SessionTimer | None, request: Request) -> SessionTimer:
        """Read an INVITE/UPDATE; raises `SessionIntervalTooSmallError` (422)."""
        config = self._focus.config.sip
        timer = current or SessionTimer(
            interval=config.session_expires, min_se=config.min_session_expires
        )
        timer.receive_request(request)
        return timer

    def answer(self, participant: Participant, timer: SessionTimer, response: Response) -> None:
        """Put the negotiated headers on our 2xx and arm the deadlines."""
        for name, value in timer.response_headers():
            if name == "Require":
                response.headers.add(name, value)
            else:
                response.headers.set(name, value)
        participant.session_timer = timer

    def arm(self, room: Room, participant: Participant) -> None:
        timer = participant.session_timer
        if participant.session_timer_handle is not None:
            participant.session_timer_handle.cancel()
            participant.session_timer_handle = None
        if timer is None:
            return
        loop = asyncio.get_running_loop()
        timer.start(loop.time())
        if timer.refresh_at is not None:
            participant.session_timer_handle = loop.call_at(
                timer.refresh_at, self._refresh, room, participant
            )
        elif timer.expire_at is not None:
            participant.session_timer_handle = loop.call_at(
                timer.expire_at, self._expired, room, participant
            )

    def _expired(self, room: Room, participant: Participant) -> None:
        log.info("session timer expired for %s, sending BYE", participant.uri)
        self._focus.leave(room, participant, send_bye=True, reason="(session expired)")

    def _refresh(self, room: Room, participant: Participant) -> None:
        participant.session_timer_handle = None
        self._focus.spawn(self._send_refresh(room, participant), name="session-refresh")

    async def _send_refresh(self, room: Room, participant: Participant) -> None:
        timer = participant.session_timer
        dialog = participant.dialog
        if timer is None or dialog is None:
            return
        update = dialog.create_request("UPDATE", extra_headers=timer.request_headers())
        response = await self._focus.send_in_dialog(dialog, participant.transport, update)
        if 200 <= response.status < 300:
            timer.receive_response(response)
            self.arm(room, participant)
            return
        if response.status in (481, 408):
            log.info(
                "refresh of %s failed (%d), ending the session", participant.uri, response.status
            )
            self._focus.leave(
                room, participant, send_bye=response.status != 481, reason="(refresh failed)"
            )
            return
        # peer refused UPDATE (405/501...): keep the session, the expiry still protects it
        log.warning(
            "session refresh to %s got %d %s", participant.uri, response.status, response.reason
        )
        if timer.expire_at is not None:
            loop = asyncio.get_running_loop()
            participant.session_timer_handle = loop.call_at(
                timer.expire_at, self._expired, room, participant
            )
