"""The `conference` event package (RFC 4575) over SUBSCRIBE/NOTIFY (RFC 6665).

Every NOTIFY carries the full document (`state="full"`, BLINK.md section 3). NOTIFYs to one
subscriber are coalesced: at most one is in flight, and when it completes the newest room state
is sent if anything changed meanwhile, so a burst of joins costs each subscriber two NOTIFYs,
not fifty. Our address in a NOTIFY (Contact, the screen-sharing URLs) is the one the subscriber
reaches us at (`net.local_address`): one document version may have a body per link.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sylkbox.conference.conference_info import RoomSnapshot, build_conference_info
from sylkbox.conference.errors import AccessDenied, SubscriptionRefused, UnknownEvent
from sylkbox.conference.policy import is_allowed
from sylkbox.conference.room import Room
from sylkbox.conference.sip_port import SipPort
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.message import Request
from sylkbox.sip.transaction import RequestReceived

if TYPE_CHECKING:
    from sylkbox.conference.focus import DialogKey, Focus

__all__ = ["ConferenceSubscription", "SubscriptionManager"]

log = logging.getLogger(__name__)

EVENT = "conference"
CONTENT_TYPE = "application/conference-info+xml"


@dataclass(slots=True, kw_only=True)
class ConferenceSubscription:
    room: Room
    dialog: Dialog
    transport: str
    subscriber: str
    peer_host: str  # where the SUBSCRIBE came from: our address in NOTIFYs is as it sees us
    expires_at: float
    expiry: asyncio.TimerHandle | None = None
    in_flight: bool = False
    dirty: bool = False
    terminated: bool = False
    last_body: bytes = b""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(slots=True)
class _Document:
    """A room's state at one version, and its body for each set of screen URLs (per link)."""

    version: int
    snapshot: RoomSnapshot
    bodies: dict[tuple[str | None, ...], bytes] = field(default_factory=dict)


class SubscriptionManager:
    """All `conference` subscriptions of the focus."""

    def __init__(self, focus: Focus, sip: SipPort) -> None:
        self._focus = focus
        self._sip = sip
        self._subs: dict[DialogKey, ConferenceSubscription] = {}
        self._documents: dict[str, _Document] = {}

    # -------------------------------------------------------------- requests
    def on_subscribe(self, event: RequestReceived) -> None:
        request = event.request
        package = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if package != EVENT:
            raise UnknownEvent("Bad Event")
        expires = self._expires(request)
        if request.to.tag:
            self._refresh(request, expires, event.source[0])
            return
        room = self._focus.room_for_request(request)
        if room is None:
            raise SubscriptionRefused("Temporarily Unavailable: no such conference")
        sender = request.from_.uri
        invited = any(p.invited for p in room.by_uri(str(sender)))
        if not invited and not is_allowed(room.policy, sender.user, sender.host.strip("[]")):
            raise AccessDenied("Forbidden by the room's access policy")
        response = request.create_response(200, to_tag=secrets.token_hex(6))
        response.headers.set("Expires", str(expires))
        response.headers.set(
            "Contact", self._focus.contact_for(room, event.transport, event.source[0])
        )
        dialog = Dialog.from_uas(request, response)
        self._sip.respond(response)
        sub = ConferenceSubscription(
            room=room,
            dialog=dialog,
            transport=event.transport,
            subscriber=str(sender),
            peer_host=event.source[0],
            expires_at=_now() + expires,
        )
        log.info("%s subscribed to %s for %d s", sender, room.key, expires)
        if expires == 0:
            self._send(sub, self._document(sub, fresh=True), terminated="timeout")
            return
        self._subs[_key(dialog)] = sub
        self._arm_expiry(sub, expires)
        self._send(sub, self._document(sub, fresh=True))

    def _expires(self, request: Request) -> int:
        cap = self._focus.config.sip.subscription_max_expires
        value = request.expires
        return cap if value is None else min(value, cap)

    def _refresh(self, request: Request, expires: int, peer_host: str) -> None:
        from sylkbox.conference.focus import dialog_key

        sub = self._subs.get(dialog_key(request))
        if sub is None:
            self._focus.reject(request, 481, "Subscription Does Not Exist")
            return
        sub.dialog.receive_request(request)
        sub.peer_host = peer_host
        response = request.create_response(200)
        response.headers.set("Expires", str(expires))
        self._sip.respond(response)
        if expires == 0:
            log.info("%s unsubscribed from %s", sub.subscriber, sub.room.key)
            self._end(sub, "timeout")
            return
        sub.expires_at = _now() + expires
        self._arm_expiry(sub, expires)
        # RFC 6665 4.2.1.2: a refresh gets a NOTIFY; repeat the last body, as sipsimple does
        self._send(sub, sub.last_body)

    # ------------------------------------------------------------- room state
    def room_changed(self, room: Room) -> None:
        self._documents.pop(room.id, None)
        for sub in list(self._subs.values()):
            if sub.room is room:
                sub.dirty = True
                if not sub.in_flight:
                    self._send(sub, self._document(sub))

    def room_ended(self, room: Room) -> None:
        self._documents.pop(room.id, None)
        for sub in list(self._subs.values()):
            if sub.room is room:
                self._end(sub, "noresource")

    def terminate_all(self) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        for sub in list(self._subs.values()):
            tasks.extend(self._end(sub, "noresource"))
        return tasks

    def count(self, room: Room) -> int:
        return sum(1 for s in self._subs.values() if s.room is room)

    def _document(self, sub: ConferenceSubscription, *, fresh: bool = False) -> bytes:
        """The room's current document for `sub`; a new version per room state (BLINK.md 3),
        the screen-sharing URLs with our address as the subscriber reaches it."""
        room = sub.room
        cached = self._documents.get(room.id)
        if cached is None or fresh:
            cached = _Document(room.bump(), room.snapshot())
            self._documents[room.id] = cached
        snapshot = self._localized(cached.snapshot, sub.peer_host)
        key = tuple(user.screen_image_url for user in snapshot.users)
        body = cached.bodies.get(key)
        if body is None:
            body = cached.bodies[key] = build_conference_info(snapshot, cached.version)
        return body

    def _localized(self, snapshot: RoomSnapshot, peer_host: str) -> RoomSnapshot:
        screens = self._focus.screens
        if screens is None or not any(user.screen_image_url for user in snapshot.users):
            return snapshot
        users = tuple(
            dataclasses.replace(user, screen_image_url=screens.url_for_peer(url, peer_host))
            if (url := user.screen_image_url)
            else user
            for user in snapshot.users
        )
        return dataclasses.replace(snapshot, users=users)

    # ----------------------------------------------------------------- NOTIFY
    def _send(
        self, sub: ConferenceSubscription, body: bytes, *, terminated: str | None = None
    ) -> list[asyncio.Task[None]]:
        sub.dirty = False
        sub.in_flight = True
        sub.last_body = body
        if terminated:
            state = f"terminated;reason={terminated}"
        else:
            state = f"active;expires={max(0, int(sub.expires_at - _now()))}"
        notify = sub.dialog.create_request("NOTIFY", body=body, content_type=CONTENT_TYPE)
        notify.headers.set("Event", EVENT)
        notify.headers.set("Subscription-State", state)
        contact = self._focus.contact_for(sub.room, sub.transport, sub.peer_host)
        notify.headers.set("Contact", contact)
        task = self._focus.spawn(self._deliver(sub, notify, final=bool(terminated)), name="notify")
        return [task]

    async def _deliver(self, sub: ConferenceSubscription, notify: Request, *, final: bool) -> None:
        response = await self._focus.send_in_dialog(sub.dialog, sub.transport, notify)
        sub.in_flight = False
        if final or sub.terminated:
            return
        if response.status in (481, 408) or (response.status >= 500 and response.status != 503):
            log.info("subscription of %s ended: NOTIFY got %d", sub.subscriber, response.status)
            self._forget(sub)
            return
        if response.status >= 300:
            log.warning("NOTIFY to %s got %d %s", sub.subscriber, response.status, response.reason)
        if sub.dirty:
            self._send(sub, self._document(sub))

    def _end(self, sub: ConferenceSubscription, reason: str) -> list[asyncio.Task[None]]:
        if sub.terminated:
            return []
        self._forget(sub)
        # the final NOTIFY carries the newest state: a change may not have been sent yet
        body = self._document(sub) if sub.dirty or not sub.last_body else sub.last_body
        return self._send(sub, body, terminated=reason)

    def _forget(self, sub: ConferenceSubscription) -> None:
        sub.terminated = True
        if sub.expiry is not None:
            sub.expiry.cancel()
        self._subs.pop(_key(sub.dialog), None)

    def _arm_expiry(self, sub: ConferenceSubscription, expires: int) -> None:
        if sub.expiry is not None:
            sub.expiry.cancel()
        loop = asyncio.get_running_loop()
        sub.expiry = loop.call_later(expires, self._expired, sub)

    def _expired(self, sub: ConferenceSubscription) -> None:
        log.info("subscription of %s to %s expired", sub.subscriber, sub.room.key)
        self._end(sub, "timeout")


def _key(dialog: Dialog) -> DialogKey:
    return dialog.id.call_id, dialog.id.local_tag, dialog.id.remote_tag


def _now() -> float:
    return asyncio.get_running_loop().time()
