"""Sans-I/O SIP transaction layer (RFC 3261 section 17, RFC 6026).

Messages and the time come in (`receive`, `send_request`, `send_response`, `handle_timer`);
events (`next_event`) and datagrams (`data_to_send`) come out. The four machines (INVITE and
non-INVITE, client and server) are the tables in `TABLES`: (state, input) -> next state. An input
with no entry is absorbed when it comes from the network and is a `LocalProtocolError` when the
transaction user asked for it.

Beyond RFC 3261 section 17 the layer also:

* retransmits a 2xx to INVITE until the ACK arrives (RFC 3261 13.3.1.4, in the RFC 6026 Accepted
  state) and reports `AckTimedOut` after 64*T1 so that the TU can send BYE;
* answers CANCEL itself (RFC 3261 9.2): 200 to the CANCEL, 487 to the INVITE, `RequestCancelled`;
  481 when nothing matches;
* answers merged requests with 482 (RFC 3261 8.2.2.2);
* re-sends the ACK the TU sent for a 2xx when that 2xx is retransmitted (RFC 6026 Accepted).

Responses of server transactions go back to the address the request came from (RFC 3581
symmetric response routing), over the transport it came on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto

from sylkbox.sip.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.sip.headers import CSeq, Headers
from sylkbox.sip.message import Request, Response

__all__ = [
    "TABLES",
    "AckTimedOut",
    "Address",
    "ClientKey",
    "Input",
    "Machine",
    "Outgoing",
    "RequestCancelled",
    "RequestReceived",
    "ResponseReceived",
    "ServerKey",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionState",
    "TransactionTimedOut",
    "new_branch",
    "to_dot",
]

logger = logging.getLogger(__name__)

Address = tuple[str, int]
MAGIC_COOKIE = "z9hG4bK"
TRANSPORTS = frozenset({"udp", "tcp", "tls"})
RELIABLE = frozenset({"tcp", "tls"})
TIMER_D_UNRELIABLE = 32.0  # RFC 3261 17.1.1.2: at least 32 s


def new_branch() -> str:
    """A fresh RFC 3261 8.1.1.7 branch (magic cookie + 64 random bits)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


class Machine(Enum):
    """The four transaction machines of RFC 3261 17.1.1, 17.1.2, 17.2.1, 17.2.2."""

    INVITE_CLIENT = auto()
    NON_INVITE_CLIENT = auto()
    INVITE_SERVER = auto()
    NON_INVITE_SERVER = auto()


class TransactionState(Enum):
    CALLING = auto()
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    ACCEPTED = auto()  # RFC 6026 section 7
    CONFIRMED = auto()
    TERMINATED = auto()


class Input(Enum):
    """What can happen to a transaction: a message, or one of the RFC 3261/6026 timers."""

    REQUEST = auto()  # server: retransmission of the request
    ACK = auto()  # server: ACK matching an INVITE transaction
    PROVISIONAL = auto()  # 1xx (received by a client, sent by a server)
    SUCCESS = auto()  # 2xx
    FAILURE = auto()  # 300-699
    TIMER_A = auto()
    TIMER_B = auto()
    TIMER_C = auto()  # 64*T1 after CANCEL without a final response (RFC 3261 9.1)
    TIMER_D = auto()
    TIMER_E = auto()
    TIMER_F = auto()
    TIMER_G = auto()
    TIMER_H = auto()
    TIMER_I = auto()
    TIMER_J = auto()
    TIMER_K = auto()
    TIMER_L = auto()  # RFC 6026 server Accepted
    TIMER_M = auto()  # RFC 6026 client Accepted


S = TransactionState
I = Input  # noqa: E741

TABLES: dict[Machine, dict[tuple[TransactionState, Input], TransactionState]] = {
    Machine.INVITE_CLIENT: {  # RFC 3261 figure 5, RFC 6026 figure 3
        (S.CALLING, I.TIMER_A): S.CALLING,
        (S.CALLING, I.TIMER_B): S.TERMINATED,
        (S.CALLING, I.PROVISIONAL): S.PROCEEDING,
        (S.CALLING, I.SUCCESS): S.ACCEPTED,
        (S.CALLING, I.FAILURE): S.COMPLETED,
        (S.PROCEEDING, I.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, I.SUCCESS): S.ACCEPTED,
        (S.PROCEEDING, I.FAILURE): S.COMPLETED,
        (S.PROCEEDING, I.TIMER_C): S.TERMINATED,
        (S.COMPLETED, I.FAILURE): S.COMPLETED,
        (S.COMPLETED, I.TIMER_D): S.TERMINATED,
        (S.ACCEPTED, I.SUCCESS): S.ACCEPTED,
        (S.ACCEPTED, I.TIMER_M): S.TERMINATED,
    },
    Machine.NON_INVITE_CLIENT: {  # RFC 3261 figure 6
        (S.TRYING, I.TIMER_E): S.TRYING,
        (S.TRYING, I.TIMER_F): S.TERMINATED,
        (S.TRYING, I.PROVISIONAL): S.PROCEEDING,
        (S.TRYING, I.SUCCESS): S.COMPLETED,
        (S.TRYING, I.FAILURE): S.COMPLETED,
        (S.PROCEEDING, I.TIMER_E): S.PROCEEDING,
        (S.PROCEEDING, I.TIMER_F): S.TERMINATED,
        (S.PROCEEDING, I.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, I.SUCCESS): S.COMPLETED,
        (S.PROCEEDING, I.FAILURE): S.COMPLETED,
        (S.COMPLETED, I.TIMER_K): S.TERMINATED,
    },
    Machine.INVITE_SERVER: {  # RFC 3261 figure 7, RFC 6026 figure 5
        (S.PROCEEDING, I.REQUEST): S.PROCEEDING,
        (S.PROCEEDING, I.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, I.SUCCESS): S.ACCEPTED,
        (S.PROCEEDING, I.FAILURE): S.COMPLETED,
        (S.COMPLETED, I.REQUEST): S.COMPLETED,
        (S.COMPLETED, I.TIMER_G): S.COMPLETED,
        (S.COMPLETED, I.TIMER_H): S.TERMINATED,
        (S.COMPLETED, I.ACK): S.CONFIRMED,
        (S.CONFIRMED, I.REQUEST): S.CONFIRMED,
        (S.CONFIRMED, I.ACK): S.CONFIRMED,
        (S.CONFIRMED, I.TIMER_I): S.TERMINATED,
        (S.ACCEPTED, I.REQUEST): S.ACCEPTED,
        (S.ACCEPTED, I.ACK): S.ACCEPTED,
        (S.ACCEPTED, I.SUCCESS): S.ACCEPTED,
        (S.ACCEPTED, I.TIMER_G): S.ACCEPTED,
        (S.ACCEPTED, I.TIMER_L): S.TERMINATED,
    },
    Machine.NON_INVITE_SERVER: {  # RFC 3261 figure 8
        (S.TRYING, I.REQUEST): S.TRYING,
        (S.TRYING, I.PROVISIONAL): S.PROCEEDING,
        (S.TRYING, I.SUCCESS): S.COMPLETED,
        (S.TRYING, I.FAILURE): S.COMPLETED,
        (S.PROCEEDING, I.REQUEST): S.PROCEEDING,
        (S.PROCEEDING, I.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, I.SUCCESS): S.COMPLETED,
        (S.PROCEEDING, I.FAILURE): S.COMPLETED,
        (S.COMPLETED, I.REQUEST): S.COMPLETED,
        (S.COMPLETED, I.TIMER_J): S.TERMINATED,
    },
}
INITIAL_STATE = {
    Machine.INVITE_CLIENT: S.CALLING,
    Machine.NON_INVITE_CLIENT: S.TRYING,
    Machine.INVITE_SERVER: S.PROCEEDING,
    Machine.NON_INVITE_SERVER: S.TRYING,
}
TIMERS = frozenset(i for i in Input if i.name.startswith("TIMER_"))


def to_dot(machine: Machine) -> str:
    """Graphviz source of one machine's table (the diagram is generated, never drawn by hand)."""
    lines = [f"digraph {machine.name} {{"]
    for (state, inp), nxt in TABLES[machine].items():
        lines.append(f'  {state.name} -> {nxt.name} [label="{inp.name}"];')
    lines.append("}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ClientKey:
    """RFC 3261 17.1.3: branch of the top Via plus CSeq method."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerKey:
    """RFC 3261 17.2.3: branch, sent-by and method (ACK counts as INVITE).

    Without the magic cookie (RFC 2543 peers) `branch` is empty and `legacy` holds Call-ID,
    From tag, CSeq number and the top Via instead.
    """

    branch: str
    sent_by: str
    method: str
    legacy: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outgoing:
    data: bytes
    dest: Address
    transport: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEvent:
    """Base class of everything `TransactionLayer.next_event()` returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived(TransactionEvent):
    """A new request for the TU. ACKs for 2xx have no transaction: `server_key` is None."""

    request: Request
    source: Address
    transport: str
    server_key: ServerKey | None

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}")
        if (self.server_key is None) != (self.request.method == "ACK"):
            raise ValueError("only ACK requests come without a server transaction")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived(TransactionEvent):
    """A response for the TU; `client_key` is None for a stray 2xx to INVITE (RFC 6026 8.4)."""

    response: Response
    client_key: ClientKey | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut(TransactionEvent):
    """Timer B, C or F fired: treat as 408 (RFC 3261 8.1.3.1)."""

    client_key: ClientKey


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelled(TransactionEvent):
    """The INVITE `server_key` was cancelled; 200 (CANCEL) and 487 (INVITE) are already sent."""

    server_key: ServerKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AckTimedOut(TransactionEvent):
    """No ACK for our final response within 64*T1 (timer H, or timer L for a 2xx).

    For a 2xx the dialog is confirmed but the TU SHOULD end the session with BYE
    (RFC 3261 13.3.1.4).
    """

    server_key: ServerKey
    status: int


@dataclass(slots=True, eq=False)
class _Transaction:
    machine: Machine
    key: ClientKey | ServerKey
    request: Request
    peer: Address
    transport: str
    state: TransactionState
    request_data: bytes = b""
    last_response: bytes | None = None
    last_status: int = 0
    ack_data: dict[str, bytes] = field(default_factory=dict)  # client: To tag -> ACK sent
    ack_seen: bool = False
    to_tag: str | None = None  # server: the tag of our responses
    cancel_pending: bool = False
    deadlines: dict[Input, float] = field(default_factory=dict)
    intervals: dict[Input, float] = field(default_factory=dict)
    merge_id: tuple[str, str, int, str] | None = None  # our entry in the merge index
    ack_id: tuple[str, int, str] | None = None  # our entry in the 2xx-ACK index
    alive: bool = True

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE


def _classify(status: int) -> Input:
    if status < 200:
        return Input.PROVISIONAL
    return Input.SUCCESS if status < 300 else Input.FAILURE


def _tag() -> str:
    return secrets.token_hex(6)


def _replace_method(key: ServerKey, method: str) -> ServerKey:
    return ServerKey(key.branch, key.sent_by, method, key.legacy)


def _server_key(message: Request | Response, *, method: str | None = None) -> ServerKey:
    """RFC 3261 17.2.3 matching key, with the RFC 2543 fallback for branches without cookie."""
    via = message.top_via
    cseq = message.cseq
    method = method or cseq.method
    if method == "ACK":
        method = "INVITE"
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return ServerKey(branch, sent_by, method)
    legacy = (message.call_id, message.from_.tag or "", str(cseq.seq), str(via))
    return ServerKey("", sent_by, method, legacy)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint (RFC 3261 section 17)."""

    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self._clients: dict[ClientKey, _Transaction] = {}
        self._servers: dict[ServerKey, _Transaction] = {}
        self._merge_index: dict[tuple[str, str, int, str], ServerKey] = {}
        self._accepted: dict[tuple[str, int, str], ServerKey] = {}  # for ACKs of 2xx
        self._events: deque[TransactionEvent] = deque()
        self._out: list[Outgoing] = []
        # (deadline, seq, transaction, timer); entries whose deadline no longer matches the
        # transaction's armed timer are stale and skipped (lazy deletion keeps arming O(log n))
        self._timers: list[tuple[float, int, _Transaction, Input]] = []
        self._seq = itertools.count()

    # --- outputs ---------------------------------------------------------------------------

    def next_event(self) -> TransactionEvent | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        self._drop_stale()
        return self._timers[0][0] if self._timers else None

    def _drop_stale(self) -> None:
        timers = self._timers
        while timers:
            deadline, _, txn, timer = timers[0]
            if txn.alive and txn.deadlines.get(timer) == deadline:
                return
            heapq.heappop(timers)

    def state_of(self, key: ClientKey | ServerKey) -> TransactionState:
        """Current state of a transaction; TERMINATED once it is gone."""
        txn = self._clients.get(key) if isinstance(key, ClientKey) else self._servers.get(key)
        return txn.state if txn else TransactionState.TERMINATED

    def deadlines(self, key: ClientKey | ServerKey) -> dict[Input, float]:
        """The armed timers of a transaction and when they fire (empty once it is gone)."""
        txn = self._clients.get(key) if isinstance(key, ClientKey) else self._servers.get(key)
        return dict(txn.deadlines) if txn else {}

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # --- inputs ----------------------------------------------------------------------------

    def receive(
        self, message: Request | Response, source: Address, transport: str, now: float
    ) -> None:
        """A message from the network. Bad header values are logged and the message dropped."""
        try:
            if isinstance(message, Request):
                self._receive_request(message, source, transport, now)
            else:
                self._receive_response(message, now)
        except RemoteProtocolError as exc:
            logger.info("x %s from %s: %s", type(message).__name__, source, exc.reason)

    def send_request(
        self, request: Request, dest: Address, transport: str, now: float
    ) -> ClientKey:
        """Start a client transaction; the request must carry its top Via with a branch.

        An ACK (for a 2xx) is sent without a transaction and remembered by the INVITE
        transaction so that retransmitted 2xx get the same ACK (RFC 3261 13.2.2.4).
        """
        if transport not in TRANSPORTS:
            raise LocalProtocolError(f"unknown transport {transport!r}")
        try:
            branch = request.top_via.branch
            cseq = request.cseq
        except RemoteProtocolError as exc:
            raise LocalProtocolError(exc.reason) from exc
        if not branch:
            raise LocalProtocolError("request has no Via branch")
        data = request.to_bytes()
        key = ClientKey(branch, request.method)
        if request.method == "ACK":
            self._remember_ack(request, cseq, data)
            self._out.append(Outgoing(data, dest, transport))
            return key
        if key in self._clients:
            raise LocalProtocolError(f"client transaction {key} exists")
        machine = Machine.INVITE_CLIENT if request.method == "INVITE" else Machine.NON_INVITE_CLIENT
        txn = _Transaction(machine, key, request, dest, transport, INITIAL_STATE[machine], data)
        self._clients[key] = txn
        self._out.append(Outgoing(data, dest, transport))
        if machine is Machine.INVITE_CLIENT:
            self._arm(txn, Input.TIMER_A, self.t1, now, retransmit=True)
            self._arm(txn, Input.TIMER_B, 64 * self.t1, now)
        else:
            self._arm(txn, Input.TIMER_E, self.t1, now, retransmit=True)
            self._arm(txn, Input.TIMER_F, 64 * self.t1, now)
        logger.debug("> %s %s", request.method, key)
        return key

    def send_cancel(self, client_key: ClientKey, now: float) -> ClientKey:
        """CANCEL a pending INVITE (RFC 3261 9.1); sent once a provisional response arrived."""
        txn = self._clients.get(client_key)
        if txn is None or txn.machine is not Machine.INVITE_CLIENT:
            raise LocalProtocolError("no INVITE client transaction to cancel")
        if txn.state not in (S.CALLING, S.PROCEEDING):
            raise LocalProtocolError(f"cannot cancel an INVITE in state {txn.state.name}")
        if txn.state is S.PROCEEDING:
            self._start_cancel(txn, now)
        else:
            txn.cancel_pending = True
        return ClientKey(client_key.branch, "CANCEL")

    def send_response(self, response: Response, now: float) -> None:
        """Send a response through its server transaction (found by top Via and CSeq method)."""
        try:
            key = _server_key(response)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(exc.reason) from exc
        txn = self._servers.get(key)
        if txn is None:
            raise LocalProtocolError(f"no server transaction for {key}")
        self._respond(txn, response, now)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now`, earliest first."""
        while True:
            self._drop_stale()
            if not self._timers or self._timers[0][0] > now:
                return
            deadline, _, txn, timer = heapq.heappop(self._timers)
            del txn.deadlines[timer]
            self._on_timer(txn, timer, deadline)

    # --- server side -----------------------------------------------------------------------

    def _receive_request(
        self, request: Request, source: Address, transport: str, now: float
    ) -> None:
        if request.method == "CANCEL":
            self._receive_cancel(request, source, transport, now)
            return
        key = _server_key(request)
        txn = self._servers.get(key)
        if txn is not None:
            inp = Input.ACK if request.method == "ACK" else Input.REQUEST
            self._network_input(txn, inp, now, request)
            return
        if request.method == "ACK":
            self._receive_ack_2xx(request, source, transport)
            return
        to_tag = request.to.tag
        merge_id = (request.from_.tag or "", request.call_id, request.cseq.seq, request.method)
        merged = to_tag is None and merge_id in self._merge_index
        txn = self._new_server(key, request, source, transport)
        if merged:  # RFC 3261 8.2.2.2
            logger.info("x merged request %s %s", request.method, request.call_id)
            self._respond(txn, request.create_response(482, "Loop Detected", to_tag=_tag()), now)
            return
        if to_tag is None:
            self._merge_index[merge_id] = key
            txn.merge_id = merge_id
        self._events.append(
            RequestReceived(request=request, source=source, transport=transport, server_key=key)
        )
        if txn.machine is Machine.INVITE_SERVER:  # RFC 3261 17.2.1: 100 Trying at once
            self._respond(txn, request.create_response(100, "Trying"), now)

    def _new_server(
        self, key: ServerKey, request: Request, source: Address, transport: str
    ) -> _Transaction:
        machine = Machine.INVITE_SERVER if request.method == "INVITE" else Machine.NON_INVITE_SERVER
        txn = _Transaction(machine, key, request, source, transport, INITIAL_STATE[machine])
        self._servers[key] = txn
        return txn

    def _receive_cancel(self, cancel: Request, source: Address, transport: str, now: float) -> None:
        """RFC 3261 9.2: answer the CANCEL here; 487 the INVITE if it has no final response."""
        key = _server_key(cancel)
        own = self._servers.get(key)
        if own is not None:  # a retransmitted CANCEL
            self._network_input(own, Input.REQUEST, now, cancel)
            return
        target = self._cancel_target(key)
        own = self._new_server(key, cancel, source, transport)
        if target is None:
            self._respond(own, cancel.create_response(481, to_tag=_tag()), now)
            return
        self._respond(own, cancel.create_response(200, to_tag=target.to_tag or _tag()), now)
        if target.machine is Machine.INVITE_SERVER and target.state is S.PROCEEDING:
            to_tag = target.to_tag or _tag()
            self._respond(target, target.request.create_response(487, to_tag=to_tag), now)
            assert isinstance(target.key, ServerKey)
            self._events.append(RequestCancelled(server_key=target.key))

    def _cancel_target(self, cancel_key: ServerKey) -> _Transaction | None:
        """The INVITE (or other) server transaction a CANCEL matches (RFC 3261 9.2)."""
        invite = self._servers.get(_replace_method(cancel_key, "INVITE"))
        if invite is not None:
            return invite
        for key, txn in self._servers.items():
            if key.method != "CANCEL" and _replace_method(key, "CANCEL") == cancel_key:
                return txn
        return None

    def _receive_ack_2xx(self, ack: Request, source: Address, transport: str) -> None:
        accepted = self._accepted.get((ack.call_id, ack.cseq.seq, ack.from_.tag or ""))
        txn = self._servers.get(accepted) if accepted else None
        if txn is not None:
            if txn.ack_seen:
                return  # a retransmitted ACK: the TU already has it
            txn.ack_seen = True
            txn.deadlines.pop(Input.TIMER_G, None)
        self._events.append(
            RequestReceived(request=ack, source=source, transport=transport, server_key=None)
        )

    def _respond(self, txn: _Transaction, response: Response, now: float) -> None:
        inp = _classify(response.status)
        nxt = TABLES[txn.machine].get((txn.state, inp))
        if nxt is None:
            raise LocalProtocolError(
                f"cannot send {response.status} in state {txn.state.name} of {txn.key}"
            )
        txn.last_response = response.to_bytes()
        txn.last_status = response.status
        txn.to_tag = response.to.tag or txn.to_tag
        self._out.append(Outgoing(txn.last_response, txn.peer, txn.transport))
        logger.debug("> %d %s", response.status, txn.key)
        self._transition(txn, nxt, now)
        if nxt is S.ACCEPTED and isinstance(txn.key, ServerKey):
            request = txn.request
            ack_id = (request.call_id, request.cseq.seq, request.from_.tag or "")
            self._accepted[ack_id] = txn.key
            txn.ack_id = ack_id

    # --- client side -----------------------------------------------------------------------

    def _receive_response(self, response: Response, now: float) -> None:
        key = ClientKey(response.top_via.branch or "", response.cseq.method)
        txn = self._clients.get(key)
        if txn is None:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._events.append(ResponseReceived(response=response, client_key=None))
            else:
                logger.info("x stray %d for %s", response.status, key)
            return
        self._network_input(txn, _classify(response.status), now, response)

    def _remember_ack(self, ack: Request, cseq: CSeq, data: bytes) -> None:
        for txn in self._clients.values():
            request = txn.request
            if (
                txn.state is S.ACCEPTED
                and request.call_id == ack.call_id
                and request.cseq.seq == cseq.seq
            ):
                txn.ack_data[ack.to.tag or ""] = data

    def _start_cancel(self, invite: _Transaction, now: float) -> None:
        """Build and send the CANCEL of RFC 3261 9.1 and guard the INVITE with timer C."""
        invite.cancel_pending = False
        req = invite.request
        headers = Headers()
        headers.add("Via", req.headers.get_all("Via")[0])
        for value in req.headers.get_all("Route"):
            headers.add("Route", value)
        headers.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            headers.add(name, req.headers.get(name) or "")
        headers.add("CSeq", str(CSeq(req.cseq.seq, "CANCEL")))
        cancel = Request("CANCEL", req.uri, headers)
        self.send_request(cancel, invite.peer, invite.transport, now)
        self._arm(invite, Input.TIMER_C, 64 * self.t1, now)

    def _send_ack(self, txn: _Transaction, response: Response) -> None:
        """RFC 3261 17.1.1.3: the ACK for a non-2xx final response."""
        req = txn.request
        headers = Headers()
        headers.add("Via", req.headers.get_all("Via")[0])
        for value in req.headers.get_all("Route"):
            headers.add("Route", value)
        headers.add("Max-Forwards", "70")
        headers.add("From", req.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", req.call_id)
        headers.add("CSeq", str(CSeq(req.cseq.seq, "ACK")))
        data = Request("ACK", req.uri, headers).to_bytes()
        txn.ack_data[""] = data
        self._out.append(Outgoing(data, txn.peer, txn.transport))

    # --- the machines ----------------------------------------------------------------------

    def _network_input(
        self, txn: _Transaction, inp: Input, now: float, message: Request | Response
    ) -> None:
        """Input from the wire; inputs without a table entry are absorbed."""
        nxt = TABLES[txn.machine].get((txn.state, inp))
        if nxt is None:
            logger.debug("x absorbed %s in %s of %s", inp.name, txn.state.name, txn.key)
            return
        before = txn.state
        if isinstance(message, Response):
            self._client_response(txn, inp, before, message, now)
        elif inp is Input.REQUEST:
            if before in (S.PROCEEDING, S.COMPLETED) and txn.last_response is not None:
                self._out.append(Outgoing(txn.last_response, txn.peer, txn.transport))
        elif before is S.ACCEPTED and not txn.ack_seen:  # ACK for the 2xx on the INVITE branch
            txn.ack_seen = True
            txn.deadlines.pop(Input.TIMER_G, None)
            self._events.append(
                RequestReceived(
                    request=message, source=txn.peer, transport=txn.transport, server_key=None
                )
            )
        self._transition(txn, nxt, now)

    def _client_response(
        self,
        txn: _Transaction,
        inp: Input,
        before: TransactionState,
        response: Response,
        now: float,
    ) -> None:
        assert isinstance(txn.key, ClientKey)
        if before is S.COMPLETED:  # retransmitted non-2xx final: ACK again (17.1.1.2)
            self._out.append(Outgoing(txn.ack_data[""], txn.peer, txn.transport))
            return
        if before is S.ACCEPTED:
            ack = txn.ack_data.get(response.to.tag or "")
            if ack is not None:  # retransmitted 2xx we already ACKed
                self._out.append(Outgoing(ack, txn.peer, txn.transport))
                return
        if txn.machine is Machine.INVITE_CLIENT and inp is Input.FAILURE:
            self._send_ack(txn, response)
        self._events.append(ResponseReceived(response=response, client_key=txn.key))
        if inp is Input.PROVISIONAL and txn.cancel_pending:
            self._start_cancel(txn, now)

    def _on_timer(self, txn: _Transaction, timer: Input, now: float) -> None:
        nxt = TABLES[txn.machine].get((txn.state, timer))
        if nxt is None:
            return
        if nxt is not S.TERMINATED:  # a retransmission timer (A, E, G)
            data = txn.request_data if isinstance(txn.key, ClientKey) else txn.last_response
            if data:
                self._out.append(Outgoing(data, txn.peer, txn.transport))
            interval = txn.intervals[timer] * 2
            if timer is not Input.TIMER_A:
                interval = min(interval, self.t2)
            if timer is Input.TIMER_E and txn.state is S.PROCEEDING:
                interval = self.t2  # RFC 3261 17.1.2.2
            self._arm(txn, timer, interval, now, retransmit=True)
        elif timer in (Input.TIMER_B, Input.TIMER_C, Input.TIMER_F):
            assert isinstance(txn.key, ClientKey)
            self._events.append(TransactionTimedOut(client_key=txn.key))
        elif timer is Input.TIMER_H or (timer is Input.TIMER_L and not txn.ack_seen):
            assert isinstance(txn.key, ServerKey)
            self._events.append(AckTimedOut(server_key=txn.key, status=txn.last_status))
        self._transition(txn, nxt, now)

    def _arm(
        self,
        txn: _Transaction,
        timer: Input,
        delay: float,
        now: float,
        *,
        retransmit: bool = False,
    ) -> None:
        if retransmit:
            if txn.reliable:
                return  # RFC 3261 17.1.1.2: no retransmissions over reliable transports
            txn.intervals[timer] = delay
        txn.deadlines[timer] = now + delay
        heapq.heappush(self._timers, (now + delay, next(self._seq), txn, timer))

    def _transition(self, txn: _Transaction, nxt: TransactionState, now: float) -> None:
        if nxt is txn.state:
            return
        txn.state = nxt
        table = TABLES[txn.machine]
        for timer in list(txn.deadlines):  # leaving a state disarms the timers it does not know
            if (nxt, timer) not in table:
                del txn.deadlines[timer]
        if nxt is S.TERMINATED:
            self._forget(txn)
            return
        unreliable = not txn.reliable
        match txn.machine, nxt:
            case Machine.INVITE_CLIENT, S.COMPLETED:
                self._arm_final(txn, Input.TIMER_D, TIMER_D_UNRELIABLE if unreliable else 0, now)
            case Machine.INVITE_CLIENT, S.ACCEPTED:
                self._arm(txn, Input.TIMER_M, 64 * self.t1, now)
            case Machine.NON_INVITE_CLIENT, S.COMPLETED:
                self._arm_final(txn, Input.TIMER_K, self.t4 if unreliable else 0, now)
            case Machine.INVITE_SERVER, S.COMPLETED:
                self._arm(txn, Input.TIMER_G, self.t1, now, retransmit=True)
                self._arm(txn, Input.TIMER_H, 64 * self.t1, now)
            case Machine.INVITE_SERVER, S.ACCEPTED:
                self._arm(txn, Input.TIMER_G, self.t1, now, retransmit=True)
                self._arm(txn, Input.TIMER_L, 64 * self.t1, now)
            case Machine.INVITE_SERVER, S.CONFIRMED:
                self._arm_final(txn, Input.TIMER_I, self.t4 if unreliable else 0, now)
            case Machine.NON_INVITE_SERVER, S.COMPLETED:
                self._arm_final(txn, Input.TIMER_J, 64 * self.t1 if unreliable else 0, now)

    def _arm_final(self, txn: _Transaction, timer: Input, delay: float, now: float) -> None:
        """Arm a timer that ends the transaction; zero (reliable transports) ends it now."""
        if delay:
            self._arm(txn, timer, delay, now)
        else:
            self._on_timer(txn, timer, now)

    def _forget(self, txn: _Transaction) -> None:
        txn.deadlines.clear()
        txn.alive = False
        if isinstance(txn.key, ClientKey):
            self._clients.pop(txn.key, None)
            return
        self._servers.pop(txn.key, None)
        if txn.merge_id is not None and self._merge_index.get(txn.merge_id) == txn.key:
            del self._merge_index[txn.merge_id]
        if txn.ack_id is not None and self._accepted.get(txn.ack_id) == txn.key:
            del self._accepted[txn.ack_id]
