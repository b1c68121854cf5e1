"""Session timers (RFC 4028): negotiation, 422 rejection and the refresh/expiry deadlines.

One `SessionTimer` per INVITE dialog, used on either side. As UAS: `receive_request` on each
INVITE/UPDATE (may raise `SessionIntervalTooSmallError`, answered 422 with its `headers()`), then
`response_headers()` on the 2xx. As UAC: `request_headers()` on the INVITE/UPDATE,
`receive_response()` on its 2xx or 422. After each successful exchange `start(now)` arms
`refresh_at` (we are the refresher: half the interval, section 10) and `expire_at` (send BYE:
interval minus min(32 s, interval/3), section 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import parse_params
from sylkbox.sip.message import Request, Response

__all__ = [
    "MIN_SE_FLOOR",
    "Refresher",
    "SessionExpires",
    "SessionIntervalTooSmallError",
    "SessionTimer",
]

MIN_SE_FLOOR = 90  # RFC 4028 section 4: no Min-SE below 90 seconds
EXPIRY_MARGIN = 32  # RFC 4028 section 10


class Refresher(StrEnum):
    """The `refresher` parameter: roles relative to the transaction that carries it."""

    UAC = "uac"
    UAS = "uas"


def _delta_seconds(text: str, header: str) -> int:
    value = text.strip(" \t")
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise RemoteProtocolError(f"Bad {header} header")
    return int(value)


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """Session-Expires (RFC 4028 section 4): ``delta-seconds [;refresher=uac|uas]``."""

    interval: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        value, semi, rest = text.partition(";")
        interval = _delta_seconds(value, "Session-Expires")
        refresher: Refresher | None = None
        for name, param in parse_params(semi + rest):
            if name.lower() == "refresher":
                try:
                    refresher = Refresher((param or "").lower())
                except ValueError:
                    raise RemoteProtocolError("Bad Session-Expires refresher") from None
        return cls(interval, refresher)

    def __str__(self) -> str:
        return f"{self.interval}" + (f";refresher={self.refresher}" if self.refresher else "")


class SessionIntervalTooSmallError(RemoteProtocolError):
    """Answer with 422 and the `headers()` (Min-SE) of RFC 4028 section 6."""

    def __init__(self, min_se: int) -> None:
        super().__init__("Session Interval Too Small", 422)
        self.min_se = min_se

    def headers(self) -> list[tuple[str, str]]:
        return [("Min-SE", str(self.min_se))]


def _session_expires(message: Request | Response) -> SessionExpires | None:
    value = message.headers.get("Session-Expires")
    return None if value is None else SessionExpires.parse(value)


def _min_se(message: Request | Response) -> int | None:
    value = message.headers.get("Min-SE")
    return None if value is None else _delta_seconds(value.split(";", 1)[0], "Min-SE")


def _has_option(message: Request | Response, tag: str) -> bool:
    values = [*message.headers.get_all("Supported"), *message.headers.get_all("Require")]
    return any(v.strip(" \t").lower() == tag for v in values)


class SessionTimer:
    """RFC 4028 state of one dialog; `interval` is None while no session timer runs."""

    def __init__(self, *, interval: int = 1800, min_se: int = MIN_SE_FLOOR) -> None:
        if min_se < MIN_SE_FLOOR or interval < min_se:
            raise ValueError("need 90 <= min_se <= interval")
        self.preferred = interval
        self.min_se = min_se
        self.interval: int | None = None
        self.we_refresh = False
        self.refresh_at: float | None = None
        self.expire_at: float | None = None

    # --- UAS side (RFC 4028 section 9) -------------------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Negotiate from an incoming INVITE/UPDATE; raises SessionIntervalTooSmallError (422)."""
        supported = _has_option(request, "timer")
        se = _session_expires(request)
        peer_min = max(_min_se(request) or MIN_SE_FLOOR, MIN_SE_FLOOR)
        if se is not None and se.interval < self.min_se:
            if supported:
                raise SessionIntervalTooSmallError(max(self.min_se, peer_min))
            interval = max(se.interval, MIN_SE_FLOOR)  # a proxy chose it; we cannot refuse
        elif se is not None:
            interval = max(min(se.interval, self.preferred), peer_min, self.min_se)
        else:
            interval = max(self.preferred, peer_min)
        if not supported:
            refresher = Refresher.UAS
        else:
            refresher = se.refresher if se and se.refresher else Refresher.UAC
        self.interval = interval
        self.we_refresh = refresher is Refresher.UAS

    def response_headers(self) -> list[tuple[str, str]]:
        """Session-Expires (and Require: timer when the UAC refreshes) for our 2xx."""
        if self.interval is None:
            return []
        refresher = Refresher.UAS if self.we_refresh else Refresher.UAC
        headers = [("Session-Expires", str(SessionExpires(self.interval, refresher)))]
        if refresher is Refresher.UAC:
            headers.append(("Require", "timer"))
        return headers

    # --- UAC side (RFC 4028 section 7) -------------------------------------------------------

    def request_headers(self) -> list[tuple[str, str]]:
        """Headers for our INVITE or UPDATE, initial or refresh (RFC 4028 7.1, 7.4)."""
        if self.interval is None:
            se = SessionExpires(max(self.preferred, self.min_se))
        else:  # a refresh keeps the negotiated refresher, seen from this transaction
            se = SessionExpires(self.interval, Refresher.UAC if self.we_refresh else Refresher.UAS)
        return [("Session-Expires", str(se)), ("Min-SE", str(self.min_se)),
                ("Supported", "timer")]  # fmt: skip

    def receive_response(self, response: Response) -> None:
        """Read the 2xx (negotiated values) or the 422 (raise our interval, RFC 4028 7.3)."""
        if response.status == 422:
            min_se = _min_se(response)
            if min_se is None:
                raise RemoteProtocolError("422 without Min-SE header")
            self.min_se = max(self.min_se, min_se)
            self.preferred = max(self.preferred, min_se)
            if self.interval is not None:
                self.interval = max(self.interval, min_se)
            return
        if not 200 <= response.status < 300:
            return
        se = _session_expires(response)
        if se is None:  # RFC 4028 7.2: no session expiration
            self.interval = None
            self.we_refresh = False
            return
        self.interval = se.interval
        self.we_refresh = se.refresher is not Refresher.UAS

    # --- deadlines (RFC 4028 section 10) -----------------------------------------------------

    def start(self, now: float) -> None:
        """(Re)arm after a successful negotiation or refresh."""
        if self.interval is None:
            self.stop()
            return
        self.refresh_at = now + self.interval / 2 if self.we_refresh else None
        self.expire_at = now + self.interval - min(EXPIRY_MARGIN, self.interval / 3)

    def stop(self) -> None:
        self.refresh_at = None
        self.expire_at = None
