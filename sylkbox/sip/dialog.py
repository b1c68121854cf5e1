"""SIP dialogs (RFC 3261 section 12) and the INVITE session offer/answer guard (section 14).

`Dialog` holds the dialog state of section 12: identifiers, sequence numbers, route set and
remote target, and builds in-dialog requests. `InviteSession` tracks which INVITE/UPDATE exchange
is in progress so that overlapping ones are refused with 491 (RFC 3261 14.1/14.2, RFC 3311 5.2).
Requests for an unknown dialog are the TU's business (481, RFC 3261 12.2.2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, auto

from sylkbox.sip.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.sip.headers import CSeq, Headers, NameAddr, Via
from sylkbox.sip.message import Request, Response
from sylkbox.sip.session_timer import SessionTimer
from sylkbox.sip.uri import SipUri

__all__ = [
    "DIALOG_TABLE",
    "INVITE_SESSION_TABLE",
    "Dialog",
    "DialogId",
    "DialogInput",
    "DialogState",
    "InviteSession",
    "InviteState",
    "SessionInput",
    "SessionTimer",
]

logger = logging.getLogger(__name__)

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})  # RFC 6665 4.1


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 12: Call-ID, local tag and remote tag."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def for_incoming(cls, request: Request) -> DialogId:
        """The id an incoming in-dialog request names (our tag is in To)."""
        return cls(request.call_id, request.to.tag or "", request.from_.tag or "")

    @classmethod
    def for_response(cls, response: Response) -> DialogId:
        """The id a response to one of our requests names (our tag is in From)."""
        return cls(response.call_id, response.from_.tag or "", response.to.tag or "")


class DialogState(Enum):
    EARLY = auto()
    CONFIRMED = auto()
    TERMINATED = auto()


class DialogInput(Enum):
    PROVISIONAL = auto()  # 101-199 with To tag to the dialog-creating request
    SUCCESS = auto()  # 2xx to the dialog-creating request
    FAILURE = auto()  # non-2xx final to the dialog-creating request (12.3)
    BYE = auto()  # BYE sent or received, or 408/481 to an in-dialog request (12.2.1.2)


DIALOG_TABLE: dict[tuple[DialogState, DialogInput], DialogState] = {
    (DialogState.EARLY, DialogInput.PROVISIONAL): DialogState.EARLY,
    (DialogState.EARLY, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogInput.FAILURE): DialogState.TERMINATED,
    (DialogState.EARLY, DialogInput.BYE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogInput.BYE): DialogState.TERMINATED,
}


def _dialog_input(status: int) -> DialogInput:
    if status < 200:
        return DialogInput.PROVISIONAL
    return DialogInput.SUCCESS if status < 300 else DialogInput.FAILURE


def _route_set(values: list[str]) -> tuple[NameAddr, ...]:
    try:
        return tuple(NameAddr.parse(value) for value in values)
    except RemoteProtocolError:
        raise RemoteProtocolError("Bad Record-Route header") from None


def _target(message: Request | Response) -> SipUri:
    contacts = message.contacts
    if not contacts:
        raise RemoteProtocolError("Missing Contact header")
    return contacts[0].uri


@dataclass(slots=True, eq=False)
class Dialog:
    """Dialog state of RFC 3261 12.1; build with `from_uas` or `from_uac`."""

    id: DialogId
    state: DialogState
    local_seq: int
    remote_seq: int | None
    local_party: NameAddr  # our From (or To when we are the UAS), with our tag
    remote_party: NameAddr
    remote_target: SipUri
    route_set: tuple[NameAddr, ...]
    secure: bool
    initial_seq: int  # CSeq of the dialog-creating request
    is_uac: bool
    local_contact: NameAddr | None = None

    @property
    def local_uri(self) -> SipUri:
        return self.local_party.uri

    @property
    def remote_uri(self) -> SipUri:
        return self.remote_party.uri

    @classmethod
    def from_uas(cls, request: Request, response: Response, *, local_seq: int = 0) -> Dialog:
        """RFC 3261 12.1.1: the dialog a UAS creates with a 101-299 response (To tag set)."""
        to = response.to
        if to.tag is None or not 100 < response.status < 300:
            raise LocalProtocolError("a dialog needs a 101-299 response with a To tag")
        contacts = response.contacts
        remote = request.from_
        return cls(
            id=DialogId(request.call_id, to.tag, remote.tag or ""),
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            local_seq=local_seq,
            remote_seq=request.cseq.seq,
            local_party=to,
            remote_party=remote,
            remote_target=_target(request),
            route_set=_route_set(request.headers.get_all("Record-Route")),
            secure=request.uri.scheme == "sips",
            initial_seq=request.cseq.seq,
            is_uac=False,
            local_contact=contacts[0] if contacts else None,
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """RFC 3261 12.1.2: the dialog a 101-299 response with a To tag creates at the UAC."""
        to = response.to
        if to.tag is None or not 100 < response.status < 300:
            raise RemoteProtocolError("a dialog needs a 101-299 response with a To tag")
        local = request.from_
        contacts = request.contacts
        return cls(
            id=DialogId(request.call_id, local.tag or "", to.tag),
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_party=local,
            remote_party=to,
            remote_target=_target(response),
            route_set=tuple(reversed(_route_set(response.headers.get_all("Record-Route")))),
            secure=request.uri.scheme == "sips",
            initial_seq=request.cseq.seq,
            is_uac=True,
            local_contact=contacts[0] if contacts else None,
        )

    # --- state -----------------------------------------------------------------------------

    def _step(self, inp: DialogInput) -> None:
        nxt = DIALOG_TABLE.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"dialog {self.id}: {inp.name} in {self.state.name}")
        self.state = nxt

    def receive_response(self, response: Response) -> None:
        """A response to one of our requests in this dialog (RFC 3261 12.2.1.2, 13.2.2.4)."""
        cseq = response.cseq
        if cseq.seq == self.initial_seq and cseq.method == "INVITE" and self.is_uac:
            inp = _dialog_input(response.status)
            if (self.state, inp) not in DIALOG_TABLE:
                return  # e.g. a late 1xx after the 2xx
            if self.state is DialogState.EARLY and inp is DialogInput.SUCCESS:
                rr = response.headers.get_all("Record-Route")
                self.route_set = tuple(reversed(_route_set(rr)))
            self._step(inp)
        elif response.status in (408, 481) and self.state is not DialogState.TERMINATED:
            self._step(DialogInput.BYE)
        if 200 <= response.status < 300 and cseq.method in TARGET_REFRESH_METHODS:
            contacts = response.contacts
            if contacts:
                self.remote_target = contacts[0].uri

    def send_response(self, response: Response) -> None:
        """A response we send to the dialog-creating INVITE (early -> confirmed/terminated)."""
        cseq = response.cseq
        if not self.is_uac and cseq.seq == self.initial_seq and cseq.method == "INVITE":
            inp = _dialog_input(response.status)
            if (self.state, inp) in DIALOG_TABLE:
                self._step(inp)

    def receive_request(self, request: Request) -> None:
        """An in-dialog request (RFC 3261 12.2.2): CSeq ordering and target refresh."""
        if self.state is DialogState.TERMINATED:
            raise RemoteProtocolError("Dialog terminated", 481)
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                raise RemoteProtocolError("CSeq out of order", 500)
            self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        if request.method == "BYE":
            self._step(DialogInput.BYE)

    # --- requests --------------------------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        via: Via | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A new in-dialog request (RFC 3261 12.2.1.1) with the next local CSeq.

        The caller adds the Via (it knows the transport) unless it passes `via`.
        Sending BYE terminates the dialog.
        """
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method} reuses the INVITE CSeq: use create_ack")
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"dialog {self.id} is terminated")
        self.local_seq += 1
        request = self._build(
            method, CSeq(self.local_seq, method), body, content_type, via=via, extra=extra_headers
        )
        if method == "BYE":
            self._step(DialogInput.BYE)
        return request

    def create_ack(
        self,
        invite_cseq: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        via: Via | None = None,
    ) -> Request:
        """The ACK for a 2xx to INVITE (RFC 3261 13.2.2.4): same CSeq number as the INVITE."""
        return self._build("ACK", CSeq(invite_cseq, "ACK"), body, content_type, via=via)

    def _build(
        self,
        method: str,
        cseq: CSeq,
        body: bytes,
        content_type: str | None,
        *,
        via: Via | None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Request:
        uri, routes = self._request_target()
        headers = Headers()
        if via is not None:
            headers.add("Via", str(via))
        for route in routes:
            headers.add("Route", str(route))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local_party))
        headers.add("To", str(self.remote_party))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", str(cseq))
        if self.local_contact is not None and method != "ACK":
            headers.add("Contact", str(self.local_contact))
        for name, value in extra:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def _request_target(self) -> tuple[SipUri, list[NameAddr]]:
        """Request-URI and Route headers (RFC 3261 12.2.1.1, loose and strict routing)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.has_param("lr"):
            return self.remote_target, list(self.route_set)
        strict_uri = first.uri.without_params("method", "maddr", "ttl", "transport", "lr")
        return strict_uri, [*self.route_set[1:], NameAddr(None, self.remote_target)]


class InviteState(Enum):
    """Which offer/answer exchange (INVITE or UPDATE) is in progress on the dialog."""

    IDLE = auto()
    LOCAL_INVITE = auto()  # we sent an INVITE, no final response yet
    LOCAL_UPDATE = auto()
    REMOTE_INVITE = auto()  # we received an INVITE and have not answered finally
    REMOTE_UPDATE = auto()
    AWAITING_ACK = auto()  # we answered an INVITE with 2xx and wait for the ACK
    TERMINATED = auto()


class SessionInput(Enum):
    SEND_INVITE = auto()
    SEND_UPDATE = auto()
    RECEIVE_INVITE = auto()
    RECEIVE_UPDATE = auto()
    SEND_SUCCESS = auto()  # our 2xx to their INVITE/UPDATE
    SEND_FAILURE = auto()
    RECEIVE_SUCCESS = auto()  # their 2xx to our INVITE/UPDATE
    RECEIVE_FAILURE = auto()
    RECEIVE_ACK = auto()
    BYE = auto()  # sent or received; also an ACK timeout


_S = InviteState
_I = SessionInput
INVITE_SESSION_TABLE: dict[tuple[InviteState, SessionInput], InviteState] = {
    (_S.IDLE, _I.SEND_INVITE): _S.LOCAL_INVITE,
    (_S.IDLE, _I.SEND_UPDATE): _S.LOCAL_UPDATE,
    (_S.IDLE, _I.RECEIVE_INVITE): _S.REMOTE_INVITE,
    (_S.IDLE, _I.RECEIVE_UPDATE): _S.REMOTE_UPDATE,
    (_S.IDLE, _I.RECEIVE_ACK): _S.IDLE,  # retransmitted ACK
    (_S.LOCAL_INVITE, _I.RECEIVE_SUCCESS): _S.IDLE,  # the TU sends the ACK at once
    (_S.LOCAL_INVITE, _I.RECEIVE_FAILURE): _S.IDLE,
    (_S.LOCAL_UPDATE, _I.RECEIVE_SUCCESS): _S.IDLE,
    (_S.LOCAL_UPDATE, _I.RECEIVE_FAILURE): _S.IDLE,
    (_S.REMOTE_INVITE, _I.SEND_SUCCESS): _S.AWAITING_ACK,
    (_S.REMOTE_INVITE, _I.SEND_FAILURE): _S.IDLE,  # the transaction absorbs that ACK
    (_S.REMOTE_UPDATE, _I.SEND_SUCCESS): _S.IDLE,
    (_S.REMOTE_UPDATE, _I.SEND_FAILURE): _S.IDLE,
    (_S.AWAITING_ACK, _I.RECEIVE_ACK): _S.IDLE,
    **{(state, _I.BYE): _S.TERMINATED for state in InviteState if state is not _S.TERMINATED},
}
_REMOTE_OFFERS = frozenset({_I.RECEIVE_INVITE, _I.RECEIVE_UPDATE})


class InviteSession:
    """The offer/answer guard of an INVITE dialog (RFC 3261 14, RFC 3311 5.2).

    Local inputs that the table refuses raise `LocalProtocolError`; a re-INVITE or UPDATE that
    arrives while another exchange is pending raises `RemoteProtocolError` with status_hint 491
    (glare); the caller answers with that status.
    """

    def __init__(self, state: InviteState = InviteState.IDLE) -> None:
        self.state = state

    @classmethod
    def for_uas(cls) -> InviteSession:
        """Session of an incoming initial INVITE, before our final response."""
        return cls(InviteState.REMOTE_INVITE)

    @classmethod
    def for_uac(cls) -> InviteSession:
        """Session of our initial INVITE, before its final response."""
        return cls(InviteState.LOCAL_INVITE)

    def handle(self, inp: SessionInput) -> InviteState:
        nxt = INVITE_SESSION_TABLE.get((self.state, inp))
        if nxt is None:
            if inp in _REMOTE_OFFERS and self.state is not InviteState.TERMINATED:
                logger.info("x glare: %s in %s", inp.name, self.state.name)
                raise RemoteProtocolError("Request Pending", 491)
            if inp is SessionInput.RECEIVE_ACK:
                return self.state  # a stray ACK changes nothing
            if inp in _REMOTE_OFFERS:
                raise RemoteProtocolError("Session terminated", 481)
            raise LocalProtocolError(f"{inp.name} not allowed in {self.state.name}")
        self.state = nxt
        return nxt

    # Convenience wrappers keyed on SIP methods and status codes.

    def send_request(self, method: str) -> None:
        if method in ("INVITE", "UPDATE", "BYE"):
            self.handle({"INVITE": _I.SEND_INVITE, "UPDATE": _I.SEND_UPDATE}.get(method, _I.BYE))

    def receive_request(self, method: str) -> None:
        table = {"INVITE": _I.RECEIVE_INVITE, "UPDATE": _I.RECEIVE_UPDATE,
                 "ACK": _I.RECEIVE_ACK, "BYE": _I.BYE}  # fmt: skip
        if method in table:
            self.handle(table[method])

    def send_response(self, method: str, status: int) -> None:
        if method in ("INVITE", "UPDATE") and status >= 200:
            self.handle(_I.SEND_SUCCESS if status < 300 else _I.SEND_FAILURE)

    def receive_response(self, method: str, status: int) -> None:
        """Final responses move the state; late ones (after BYE, retransmitted 2xx) do not."""
        if method in ("INVITE", "UPDATE") and status >= 200:
            inp = _I.RECEIVE_SUCCESS if status < 300 else _I.RECEIVE_FAILURE
            if (self.state, inp) in INVITE_SESSION_TABLE:
                self.handle(inp)
