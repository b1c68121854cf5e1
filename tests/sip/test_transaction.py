"""Tests for sylkbox.sip.transaction: RFC 3261 section 17 and RFC 6026 with a fake clock."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.sip.errors import LocalProtocolError
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from sylkbox.sip.transaction import (
    TABLES,
    AckTimedOut,
    ClientKey,
    Input,
    Machine,
    RequestCancelled,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    TransactionEvent,
    TransactionLayer,
    TransactionState,
    TransactionTimedOut,
    new_branch,
    to_dot,
)
from tests.helpers.clock import FakeClock

S = TransactionState
PEER = ("192.0.2.10", 5060)
BOX_VIA = "SIP/2.0/UDP 192.0.2.1:5060"
PEER_VIA = "SIP/2.0/UDP 192.0.2.10:5060"


def wire_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKinv1",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str = "ft1",
    to_tag: str | None = None,
    via: str = PEER_VIA,
    call_id: str = "call-1@192.0.2.10",
) -> bytes:
    branch_param = "" if branch is None else f";branch={branch}"
    to = "<sip:room@box.local>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:room@box.local SIP/2.0\r\n"
        f"Via: {via}{branch_param}\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Alice" <sip:alice@example.org>;tag={from_tag}\r\n'
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@192.0.2.10:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def wire_response(
    status: int,
    reason: str,
    *,
    branch: str = "z9hG4bKout1",
    method: str = "INVITE",
    cseq: int = 1,
    to_tag: str | None = "tt1",
) -> bytes:
    to = "<sip:bob@example.org>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"SIP/2.0 {status} {reason}\r\n"
        f"Via: {BOX_VIA};branch={branch}\r\n"
        "From: <sip:room@box.local>;tag=box1\r\n"
        f"To: {to}\r\n"
        "Call-ID: out-1@box.local\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def our_request(method: str = "INVITE", *, branch: str = "z9hG4bKout1") -> Request:
    data = (
        f"{method} sip:bob@192.0.2.10 SIP/2.0\r\n"
        f"Via: {BOX_VIA};branch={branch}\r\n"
        "Route: <sip:proxy.example.org;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:room@box.local>;tag=box1\r\n"
        "To: <sip:bob@example.org>\r\n"
        "Call-ID: out-1@box.local\r\n"
        f"CSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


class Harness:
    def __init__(self, transport: str = "udp") -> None:
        self.layer = TransactionLayer()
        self.clock = FakeClock()
        self.transport = transport
        self.requests: dict[bytes, Request] = {}

    def rx(self, data: bytes) -> None:
        self.layer.receive(parse_message(data), PEER, self.transport, self.clock.now)

    def events(self) -> list[TransactionEvent]:
        out = []
        while (event := self.layer.next_event()) is not None:
            out.append(event)
        return out

    def sent(self) -> list[str]:
        """First lines of what went out (all to PEER over our transport)."""
        out = self.layer.data_to_send()
        assert all(o.dest == PEER and o.transport == self.transport for o in out)
        return [o.data.split(b"\r\n", 1)[0].decode() for o in out]

    def sent_messages(self) -> list[Request | Response]:
        return [parse_message(o.data) for o in self.layer.data_to_send()]

    def receive_invite(self, data: bytes | None = None) -> tuple[ServerKey, Request]:
        data = data or wire_request()
        self.rx(data)
        events = self.events()
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, RequestReceived)
        assert event.server_key is not None
        return event.server_key, event.request

    def respond(self, request: Request, status: int, to_tag: str | None = "box-tag") -> None:
        self.layer.send_response(request.create_response(status, to_tag=to_tag), self.clock.now)

    def send(self, request: Request) -> ClientKey:
        return self.layer.send_request(request, PEER, self.transport, self.clock.now)

    def run(self, seconds: float) -> list[float]:
        return self.clock.run(self.layer, seconds)


# --- INVITE server (RFC 3261 17.2.1, RFC 6026 7.1) --------------------------------------------


def test_invite_server_sends_100_trying_at_once() -> None:
    h = Harness()
    key, request = h.receive_invite()
    assert key == ServerKey("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    assert request.method == "INVITE"
    assert h.sent() == ["SIP/2.0 100 Trying"]
    assert h.layer.state_of(key) is S.PROCEEDING
    assert h.layer.get_timer() is None  # the TU answers; no timer in Proceeding


def test_invite_retransmission_resends_last_provisional() -> None:
    h = Harness()
    _key, request = h.receive_invite()
    h.sent()
    h.rx(wire_request())
    assert h.sent() == ["SIP/2.0 100 Trying"]
    h.respond(request, 180)
    assert h.sent() == ["SIP/2.0 180 Ringing"]
    h.rx(wire_request())
    assert h.sent() == ["SIP/2.0 180 Ringing"]
    assert h.events() == []


def test_invite_2xx_retransmitted_until_ack() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 200)
    assert h.sent() == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
    assert h.layer.state_of(key) is S.ACCEPTED
    fired = h.run(12)  # T1 doubling, capped at T2 = 4 (RFC 3261 13.3.1.4)
    assert fired == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert h.sent() == ["SIP/2.0 200 OK"] * 5
    h.rx(wire_request("ACK", branch="z9hG4bKack1", to_tag="box-tag"))
    (event,) = h.events()
    assert isinstance(event, RequestReceived)
    assert event.request.method == "ACK" and event.server_key is None
    h.rx(wire_request("ACK", branch="z9hG4bKack1", to_tag="box-tag"))  # duplicate: absorbed
    h.rx(wire_request())  # INVITE retransmission in Accepted: absorbed (RFC 6026)
    assert h.events() == [] and h.sent() == []
    h.run(40)
    assert h.sent() == [] and h.events() == []
    assert h.layer.state_of(key) is S.TERMINATED and len(h.layer) == 0


def test_invite_2xx_without_ack_reports_ack_timeout() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 200)
    h.sent()
    fired = h.run(40)
    assert fired[-1] == 32.0  # timer L = 64*T1
    assert h.events() == [AckTimedOut(server_key=key, status=200)]
    assert len(h.layer) == 0


def test_invite_2xx_over_tcp_is_not_retransmitted() -> None:
    h = Harness("tcp")
    key, request = h.receive_invite()
    h.respond(request, 200)
    assert h.sent() == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
    assert h.layer.deadlines(key) == {Input.TIMER_L: h.clock.now + 32}
    h.rx(wire_request("ACK", branch="z9hG4bKack1", to_tag="box-tag"))
    assert [type(e) for e in h.events()] == [RequestReceived]
    h.run(40)
    assert h.sent() == [] and h.events() == []


def test_ack_on_the_invite_branch_confirms_an_accepted_transaction() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 200)
    h.rx(wire_request("ACK", to_tag="box-tag"))  # same branch as the INVITE
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.server_key is None
    assert Input.TIMER_G not in h.layer.deadlines(key)


def test_invite_failure_retransmitted_until_ack_then_confirmed() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 486)
    assert h.sent() == ["SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here"]
    assert h.run(4) == [0.5, 1.5, 3.5]  # timer G
    assert h.sent() == ["SIP/2.0 486 Busy Here"] * 3
    h.rx(wire_request())  # INVITE retransmission in Completed: final re-sent
    assert h.sent() == ["SIP/2.0 486 Busy Here"]
    h.rx(wire_request("ACK", to_tag="box-tag"))
    assert h.layer.state_of(key) is S.CONFIRMED
    assert h.events() == []  # ACK for a non-2xx never reaches the TU
    h.rx(wire_request())  # absorbed in Confirmed
    h.rx(wire_request("ACK", to_tag="box-tag"))
    assert h.sent() == []
    assert h.run(6) == [5.0]  # timer I = T4
    assert h.layer.state_of(key) is S.TERMINATED
    assert h.sent() == []


def test_invite_failure_without_ack_times_out_with_timer_h() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 603)
    h.run(40)
    assert h.events() == [AckTimedOut(server_key=key, status=603)]
    assert len(h.layer) == 0


def test_invite_failure_over_tls_ends_at_ack() -> None:
    h = Harness("tls")
    key, request = h.receive_invite()
    h.respond(request, 404)
    assert h.layer.deadlines(key) == {Input.TIMER_H: h.clock.now + 32}
    h.rx(wire_request("ACK", to_tag="box-tag"))
    assert h.layer.state_of(key) is S.TERMINATED  # timer I is zero on reliable transports


def test_tu_cannot_send_a_second_final_response() -> None:
    h = Harness()
    _, request = h.receive_invite()
    h.respond(request, 486)
    with pytest.raises(LocalProtocolError):
        h.respond(request, 200)
    other = parse_message(wire_request(branch="z9hG4bKnope"))
    assert isinstance(other, Request)
    with pytest.raises(LocalProtocolError):
        h.respond(other, 200)


# --- CANCEL (RFC 3261 9.2) ----------------------------------------------------------------


def test_cancel_answers_200_and_487_and_reports() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 180)
    h.sent()
    h.rx(wire_request("CANCEL"))
    messages = h.sent_messages()
    assert [(type(m).__name__, getattr(m, "status", 0)) for m in messages] == [
        ("Response", 200),
        ("Response", 487),
    ]
    assert messages[0].cseq.method == "CANCEL" and messages[1].cseq.method == "INVITE"
    assert messages[1].to.tag == "box-tag"  # the tag of our 180
    assert h.events() == [RequestCancelled(server_key=key)]
    h.rx(wire_request("CANCEL"))  # retransmitted CANCEL: 200 again, no new event
    assert h.sent() == ["SIP/2.0 200 OK"]
    assert h.events() == []
    h.rx(wire_request("ACK", to_tag="box-tag"))
    assert h.layer.state_of(key) is S.CONFIRMED
    with pytest.raises(LocalProtocolError):  # the TU lost the race: declared error
        h.respond(request, 200)


def test_cancel_without_transaction_gets_481() -> None:
    h = Harness()
    h.rx(wire_request("CANCEL", branch="z9hG4bKunknown"))
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 481
    assert response.to.tag is not None
    assert h.events() == []


def test_cancel_after_final_response_has_no_effect() -> None:
    h = Harness()
    key, request = h.receive_invite()
    h.respond(request, 200)
    h.sent()
    h.rx(wire_request("CANCEL"))
    assert h.sent() == ["SIP/2.0 200 OK"]
    assert h.events() == []
    assert h.layer.state_of(key) is S.ACCEPTED


def test_cancel_of_non_invite_is_answered_200() -> None:
    h = Harness()
    h.rx(wire_request("OPTIONS", branch="z9hG4bKopt"))
    (_event,) = h.events()
    h.rx(wire_request("CANCEL", branch="z9hG4bKopt"))
    assert h.sent() == ["SIP/2.0 200 OK"]
    assert h.events() == []


# --- merged requests (RFC 3261 8.2.2.2) and RFC 2543 matching ----------------------------------


def test_merged_request_gets_482() -> None:
    h = Harness()
    key, _ = h.receive_invite()
    h.sent()
    h.rx(wire_request(branch="z9hG4bKforked", via="SIP/2.0/UDP 192.0.2.99:5060"))
    assert h.sent() == ["SIP/2.0 482 Loop Detected"]
    assert h.events() == []
    h.rx(wire_request(branch="z9hG4bKforked", via="SIP/2.0/UDP 192.0.2.99:5060"))
    assert h.sent() == ["SIP/2.0 482 Loop Detected"]  # its retransmission too
    assert h.layer.state_of(key) is S.PROCEEDING


def test_in_dialog_request_with_to_tag_is_not_merged() -> None:
    h = Harness()
    h.rx(wire_request("INFO", branch="z9hG4bKi1", to_tag="x", cseq=5))
    h.rx(wire_request("INFO", branch="z9hG4bKi2", to_tag="x", cseq=5))
    assert len(h.events()) == 2


@pytest.mark.parametrize("branch", [None, "1234abc"])
def test_rfc2543_matching_without_magic_cookie(branch: str | None) -> None:
    h = Harness()
    key, _request = h.receive_invite(wire_request(branch=branch))
    assert key.branch == "" and key.legacy
    h.sent()
    h.rx(wire_request(branch=branch))  # retransmission recognised
    assert h.sent() == ["SIP/2.0 100 Trying"] and h.events() == []
    h.rx(wire_request("CANCEL", branch=branch))
    assert h.sent() == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    assert h.events() == [RequestCancelled(server_key=key)]
    h.rx(wire_request("ACK", branch=branch, to_tag="whatever"))
    assert h.layer.state_of(key) is S.CONFIRMED


# --- non-INVITE server (RFC 3261 17.2.2) --------------------------------------------------


def test_non_invite_server_lifecycle() -> None:
    h = Harness()
    h.rx(wire_request("OPTIONS", branch="z9hG4bKopt"))
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.server_key is not None
    key = event.server_key
    assert h.sent() == []  # no 100 Trying for non-INVITE
    h.rx(wire_request("OPTIONS", branch="z9hG4bKopt"))  # absorbed in Trying
    assert h.sent() == [] and h.events() == []
    h.layer.send_response(event.request.create_response(200, to_tag="t"), h.clock.now)
    assert h.sent() == ["SIP/2.0 200 OK"]
    h.rx(wire_request("OPTIONS", branch="z9hG4bKopt"))
    assert h.sent() == ["SIP/2.0 200 OK"]
    assert h.run(40) == [32.0]  # timer J
    assert h.layer.state_of(key) is S.TERMINATED


def test_non_invite_server_over_tcp_ends_at_final_response() -> None:
    h = Harness("tcp")
    h.rx(wire_request("MESSAGE", branch="z9hG4bKm"))
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.server_key is not None
    h.layer.send_response(event.request.create_response(202), h.clock.now)
    assert h.layer.state_of(event.server_key) is S.TERMINATED


# --- INVITE client (RFC 3261 17.1.1, RFC 6026 7.2) -----------------------------------------


def test_invite_client_retransmits_with_timer_a_and_times_out() -> None:
    h = Harness()
    key = h.send(our_request())
    assert key == ClientKey("z9hG4bKout1", "INVITE")
    assert h.sent() == ["INVITE sip:bob@192.0.2.10 SIP/2.0"]
    fired = h.run(40)
    assert fired == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0]  # A doubles without cap, B at 64*T1
    assert len(h.sent()) == 6
    assert h.events() == [TransactionTimedOut(client_key=key)]


def test_invite_client_failure_is_acked_by_the_transaction() -> None:
    h = Harness()
    key = h.send(our_request())
    h.sent()
    h.rx(wire_response(180, "Ringing"))
    assert h.layer.state_of(key) is S.PROCEEDING and h.layer.deadlines(key) == {}
    h.rx(wire_response(486, "Busy Here"))
    events = h.events()
    assert [e.response.status for e in events if isinstance(e, ResponseReceived)] == [180, 486]
    (ack,) = h.sent_messages()
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@192.0.2.10"
    assert ack.top_via.branch == "z9hG4bKout1" and len(ack.vias) == 1
    assert ack.cseq.seq == 1 and ack.cseq.method == "ACK"
    assert ack.to.tag == "tt1"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.org;lr>"]
    h.rx(wire_response(486, "Busy Here"))  # retransmission: ACK again, TU not bothered
    assert h.sent() == ["ACK sip:bob@192.0.2.10 SIP/2.0"] and h.events() == []
    assert h.run(40) == [32.0]  # timer D
    assert h.layer.state_of(key) is S.TERMINATED


def test_invite_client_2xx_and_tu_ack_resent_on_retransmission() -> None:
    h = Harness()
    key = h.send(our_request())
    h.sent()
    h.rx(wire_response(200, "OK"))
    assert h.layer.state_of(key) is S.ACCEPTED
    (event,) = h.events()
    assert isinstance(event, ResponseReceived) and event.client_key == key
    assert h.sent() == []  # the ACK for 2xx is the TU's
    ack_data = wire_request(
        "ACK", branch=new_branch(), to_tag="tt1", call_id="out-1@box.local", via=BOX_VIA
    )
    ack = parse_message(ack_data)
    assert isinstance(ack, Request)
    assert h.send(ack).method == "ACK"
    assert h.sent() == ["ACK sip:room@box.local SIP/2.0"]
    h.rx(wire_response(200, "OK"))  # retransmitted 2xx: same ACK, absorbed
    assert h.sent() == ["ACK sip:room@box.local SIP/2.0"] and h.events() == []
    h.rx(wire_response(200, "OK", to_tag="fork2"))  # another fork: the TU decides
    (fork,) = h.events()
    assert isinstance(fork, ResponseReceived) and fork.response.to.tag == "fork2"
    assert h.run(40) == [32.0]  # timer M
    h.rx(wire_response(200, "OK"))  # stray 2xx after the transaction: to the TU core
    (stray,) = h.events()
    assert isinstance(stray, ResponseReceived) and stray.client_key is None


def test_stray_non_2xx_is_dropped() -> None:
    h = Harness()
    h.rx(wire_response(486, "Busy Here"))
    h.rx(wire_response(200, "OK", method="OPTIONS"))
    assert h.events() == []


def test_invite_client_over_tcp() -> None:
    h = Harness("tcp")
    key = h.send(our_request())
    assert set(h.layer.deadlines(key)) == {Input.TIMER_B}
    h.rx(wire_response(500, "Server Internal Error"))
    assert h.sent() == ["INVITE sip:bob@192.0.2.10 SIP/2.0", "ACK sip:bob@192.0.2.10 SIP/2.0"]
    assert h.layer.state_of(key) is S.TERMINATED  # timer D is zero


def test_response_matching_uses_branch_and_cseq_method() -> None:
    h = Harness()
    key = h.send(our_request())
    h.rx(wire_response(200, "OK", method="CANCEL"))  # same branch, other method
    assert h.layer.state_of(key) is S.CALLING and h.events() == []


def test_cancel_waits_for_a_provisional_response() -> None:
    h = Harness()
    key = h.send(our_request())
    h.sent()
    cancel_key = h.layer.send_cancel(key, h.clock.now)
    assert cancel_key == ClientKey("z9hG4bKout1", "CANCEL")
    assert h.sent() == []  # RFC 3261 9.1: not before a provisional response
    h.rx(wire_response(180, "Ringing"))
    (cancel,) = h.sent_messages()
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.cseq.seq == 1 and cancel.cseq.method == "CANCEL"
    assert cancel.top_via.branch == "z9hG4bKout1" and cancel.to.tag is None
    assert cancel.headers.get_all("Route") == ["<sip:proxy.example.org;lr>"]
    assert h.layer.state_of(cancel_key) is S.TRYING
    h.rx(wire_response(200, "OK", method="CANCEL"))
    h.rx(wire_response(487, "Request Terminated"))
    statuses = [
        (e.client_key, e.response.status) for e in h.events() if isinstance(e, ResponseReceived)
    ]
    assert statuses == [(key, 180), (cancel_key, 200), (key, 487)]
    assert h.sent() == ["ACK sip:bob@192.0.2.10 SIP/2.0"]


def test_cancelled_invite_without_final_times_out_with_timer_c() -> None:
    h = Harness()
    key = h.send(our_request())
    h.rx(wire_response(183, "Session Progress"))
    h.layer.send_cancel(key, h.clock.now)
    h.rx(wire_response(200, "OK", method="CANCEL"))
    h.events()
    h.run(40)
    assert TransactionTimedOut(client_key=key) in h.events()
    assert h.layer.state_of(key) is S.TERMINATED


def test_cancel_is_refused_after_a_final_response() -> None:
    h = Harness()
    key = h.send(our_request())
    h.rx(wire_response(486, "Busy Here"))
    with pytest.raises(LocalProtocolError):
        h.layer.send_cancel(key, h.clock.now)
    with pytest.raises(LocalProtocolError):
        h.layer.send_cancel(ClientKey("z9hG4bKnone", "INVITE"), h.clock.now)


def test_send_request_needs_branch_and_unique_key() -> None:
    h = Harness()
    h.send(our_request())
    with pytest.raises(LocalProtocolError):
        h.send(our_request())
    with pytest.raises(LocalProtocolError):
        h.layer.send_request(our_request(), PEER, "sctp", h.clock.now)


# --- non-INVITE client (RFC 3261 17.1.2) --------------------------------------------------


def test_non_invite_client_timer_e_caps_at_t2_and_f_times_out() -> None:
    h = Harness()
    key = h.send(our_request("OPTIONS"))
    assert h.run(40) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert h.events() == [TransactionTimedOut(client_key=key)]


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    h = Harness()
    key = h.send(our_request("OPTIONS"))
    h.rx(wire_response(100, "Trying", method="OPTIONS"))
    assert h.layer.state_of(key) is S.PROCEEDING
    assert h.run(10) == [0.5, 4.5, 8.5]
    h.rx(wire_response(200, "OK", method="OPTIONS"))
    h.rx(wire_response(200, "OK", method="OPTIONS"))  # retransmission absorbed in Completed
    statuses = [e.response.status for e in h.events() if isinstance(e, ResponseReceived)]
    assert statuses == [100, 200]
    h.sent()
    assert h.run(10) == [5.0]  # timer K = T4
    assert h.sent() == [] and h.layer.state_of(key) is S.TERMINATED


def test_non_invite_client_over_tcp_never_retransmits() -> None:
    h = Harness("tcp")
    key = h.send(our_request("BYE"))
    assert h.run(40) == [32.0]
    assert h.sent() == ["BYE sip:bob@192.0.2.10 SIP/2.0"]
    assert h.events() == [TransactionTimedOut(client_key=key)]


# --- every (state, input) pair of every table ---------------------------------------------

Step = Callable[[Harness, dict[str, object]], None]


def _recv(data: bytes) -> Step:
    return lambda h, ctx: h.rx(data)


def _respond(status: int) -> Step:
    def step(h: Harness, ctx: dict[str, object]) -> None:
        request = ctx["request"]
        assert isinstance(request, Request)
        h.respond(request, status)

    return step


def _start_server(data: bytes) -> Step:
    def step(h: Harness, ctx: dict[str, object]) -> None:
        h.rx(data)
        (event,) = [e for e in h.events() if isinstance(e, RequestReceived)]
        ctx["request"], ctx["key"] = event.request, event.server_key

    return step


def _start_client(method: str) -> Step:
    def step(h: Harness, ctx: dict[str, object]) -> None:
        ctx["key"] = h.send(our_request(method))

    return step


def _cancel(h: Harness, ctx: dict[str, object]) -> None:
    key = ctx["key"]
    assert isinstance(key, ClientKey)
    h.layer.send_cancel(key, h.clock.now)


INVITE = wire_request()
ACK = wire_request("ACK", to_tag="box-tag")
OPTIONS = wire_request("OPTIONS", branch="z9hG4bKo")

SCENARIOS: dict[Machine, tuple[dict[S, list[Step]], dict[Input, Step]]] = {
    Machine.INVITE_SERVER: (
        {
            S.PROCEEDING: [_start_server(INVITE)],
            S.COMPLETED: [_start_server(INVITE), _respond(486)],
            S.CONFIRMED: [_start_server(INVITE), _respond(486), _recv(ACK)],
            S.ACCEPTED: [_start_server(INVITE), _respond(200)],
        },
        {
            Input.REQUEST: _recv(INVITE),
            Input.ACK: _recv(ACK),
            Input.PROVISIONAL: _respond(180),
            Input.SUCCESS: _respond(200),
            Input.FAILURE: _respond(486),
        },
    ),
    Machine.NON_INVITE_SERVER: (
        {
            S.TRYING: [_start_server(OPTIONS)],
            S.PROCEEDING: [_start_server(OPTIONS), _respond(100)],
            S.COMPLETED: [_start_server(OPTIONS), _respond(200)],
        },
        {
            Input.REQUEST: _recv(OPTIONS),
            Input.PROVISIONAL: _respond(180),
            Input.SUCCESS: _respond(200),
            Input.FAILURE: _respond(486),
        },
    ),
    Machine.INVITE_CLIENT: (
        {
            S.CALLING: [_start_client("INVITE")],
            S.PROCEEDING: [_start_client("INVITE"), _recv(wire_response(180, "Ringing")), _cancel],
            S.COMPLETED: [_start_client("INVITE"), _recv(wire_response(486, "Busy Here"))],
            S.ACCEPTED: [_start_client("INVITE"), _recv(wire_response(200, "OK"))],
        },
        {
            Input.PROVISIONAL: _recv(wire_response(183, "Session Progress")),
            Input.SUCCESS: _recv(wire_response(200, "OK")),
            Input.FAILURE: _recv(wire_response(486, "Busy Here")),
        },
    ),
    Machine.NON_INVITE_CLIENT: (
        {
            S.TRYING: [_start_client("OPTIONS")],
            S.PROCEEDING: [
                _start_client("OPTIONS"),
                _recv(wire_response(100, "Trying", method="OPTIONS")),
            ],
            S.COMPLETED: [
                _start_client("OPTIONS"),
                _recv(wire_response(200, "OK", method="OPTIONS")),
            ],
        },
        {
            Input.PROVISIONAL: _recv(wire_response(180, "Ringing", method="OPTIONS")),
            Input.SUCCESS: _recv(wire_response(200, "OK", method="OPTIONS")),
            Input.FAILURE: _recv(wire_response(486, "Busy Here", method="OPTIONS")),
        },
    ),
}
TIMERS = [i for i in Input if i.name.startswith("TIMER_")]
PAIRS = [
    (machine, state, inp)
    for machine, (reach, apply) in SCENARIOS.items()
    for state, inp in itertools.product(reach, [*apply, *TIMERS])
]


@pytest.mark.parametrize(("machine", "state", "inp"), PAIRS)
def test_every_state_input_pair(machine: Machine, state: S, inp: Input) -> None:
    reach, apply = SCENARIOS[machine]
    h = Harness()
    ctx: dict[str, object] = {}
    for step in reach[state]:
        step(h, ctx)
    key = ctx["key"]
    assert isinstance(key, ClientKey | ServerKey)
    assert h.layer.state_of(key) is state
    expected = TABLES[machine].get((state, inp))
    if inp in apply:
        tu_input = machine in (Machine.INVITE_SERVER, Machine.NON_INVITE_SERVER) and inp in (
            Input.PROVISIONAL,
            Input.SUCCESS,
            Input.FAILURE,
        )
        if expected is None and tu_input:
            with pytest.raises(LocalProtocolError):
                apply[inp](h, ctx)
        else:
            apply[inp](h, ctx)
    else:  # a timer: fire it if armed; the table must know every armed timer
        deadline = h.layer.deadlines(key).get(inp)
        assert (deadline is not None) == (expected is not None), "timer armed iff in table"
        if deadline is not None:
            h.layer.handle_timer(deadline)
    assert h.layer.state_of(key) is (expected or state)


def test_tables_only_use_declared_states_and_render() -> None:
    for machine, table in TABLES.items():
        assert all(isinstance(s, S) and isinstance(n, S) for (s, _), n in table.items())
        assert f"digraph {machine.name}" in to_dot(machine)


# --- Hypothesis: random sequences, declared errors only, always terminated after timers ----

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), st.floats(min_value=0, max_value=3)
    ),
    max_size=20,
)


def _random_server(h: Harness, invite: bool, actions: list[tuple[str, float]]) -> None:
    request_data = INVITE if invite else OPTIONS
    ctx: dict[str, object] = {}
    _start_server(request_data)(h, ctx)
    request = ctx["request"]
    assert isinstance(request, Request)
    steps: dict[str, Callable[[], None]] = {
        "a": lambda: h.rx(request_data),
        "b": lambda: h.rx(ACK),
        "c": lambda: h.respond(request, 180),
        "d": lambda: h.respond(request, 200),
        "e": lambda: h.respond(request, 486),
        "f": lambda: h.rx(wire_request("CANCEL", branch="z9hG4bKinv1" if invite else "z9hG4bKo")),
        "g": lambda: h.rx(wire_request("ACK", branch="z9hG4bKack", to_tag="box-tag")),
    }
    for name, dt in actions:
        with contextlib.suppress(LocalProtocolError):
            steps[name]()
        h.run(dt)
    key = ctx["key"]
    assert isinstance(key, ServerKey)
    if h.layer.state_of(key) in (S.TRYING, S.PROCEEDING):
        h.respond(request, 500)  # the TU must answer every request


def _random_client(h: Harness, invite: bool, actions: list[tuple[str, float]]) -> None:
    method = "INVITE" if invite else "OPTIONS"
    key = h.send(our_request(method))
    steps: dict[str, Callable[[], object]] = {
        "a": lambda: h.rx(wire_response(100, "Trying", method=method)),
        "b": lambda: h.rx(wire_response(180, "Ringing", method=method)),
        "c": lambda: h.rx(wire_response(200, "OK", method=method)),
        "d": lambda: h.rx(wire_response(486, "Busy Here", method=method)),
        "e": lambda: h.layer.send_cancel(key, h.clock.now),
        "f": lambda: h.rx(wire_response(200, "OK", method="CANCEL")),
        "g": lambda: h.rx(wire_response(200, "OK", method=method, to_tag="fork")),
    }
    for name, dt in actions:
        with contextlib.suppress(LocalProtocolError):
            steps[name]()
        h.run(dt)
    if h.layer.state_of(key) is S.PROCEEDING and invite:
        # the TU gives up on a ringing call (refused when already cancelled: timer C runs)
        with contextlib.suppress(LocalProtocolError):
            h.layer.send_cancel(key, h.clock.now)


@settings(max_examples=150, deadline=None)
@given(
    machine=st.sampled_from(list(Machine)),
    transport=st.sampled_from(["udp", "tcp"]),
    actions=ACTIONS,
)
def test_random_sequences_end_terminated(
    machine: Machine, transport: str, actions: list[tuple[str, float]]
) -> None:
    h = Harness(transport)
    invite = machine in (Machine.INVITE_CLIENT, Machine.INVITE_SERVER)
    if machine in (Machine.INVITE_SERVER, Machine.NON_INVITE_SERVER):
        _random_server(h, invite, actions)
    else:
        _random_client(h, invite, actions)
    h.run(200)
    assert len(h.layer) == 0
    assert h.layer.get_timer() is None
