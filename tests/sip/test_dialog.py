"""Tests for sylkbox.sip.dialog: RFC 3261 section 12 dialogs and the section 14 glare guard."""

from __future__ import annotations

import itertools

import pytest

from sylkbox.sip.dialog import (
    DIALOG_TABLE,
    INVITE_SESSION_TABLE,
    Dialog,
    DialogId,
    DialogInput,
    DialogState,
    InviteSession,
    InviteState,
    SessionInput,
)
from sylkbox.sip.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.sip.headers import NameAddr, Via
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message

INVITE = (
    b"INVITE sip:room@box.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP p2.example.org;branch=z9hG4bKp2\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKua\r\n"
    b"Record-Route: <sip:p2.example.org;lr>\r\n"
    b"Record-Route: <sip:p1.example.org;lr>\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Alice" <sip:alice@example.org>;tag=alice-tag\r\n'
    b"To: <sip:room@box.local>\r\n"
    b"Call-ID: dlg-1@192.0.2.10\r\n"
    b"CSeq: 10 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OUR_INVITE = (
    b"INVITE sip:bob@example.org SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbox\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:room@box.local>;tag=box-tag\r\n"
    b"To: <sip:bob@example.org>\r\n"
    b"Call-ID: out-1@box.local\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:room@192.0.2.1:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def their_response(
    status: int,
    reason: str,
    *,
    to_tag: str = "bob-tag",
    contact: str = "sip:bob@192.0.2.20",
    cseq: str = "1 INVITE",
    record_route: tuple[str, ...] = ("p1", "p2"),
) -> Response:
    rr = "".join(f"Record-Route: <sip:{host}.example.org;lr>\r\n" for host in record_route)
    data = (
        f"SIP/2.0 {status} {reason}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbox\r\n"
        f"{rr}"
        "From: <sip:room@box.local>;tag=box-tag\r\n"
        f"To: <sip:bob@example.org>;tag={to_tag}\r\n"
        "Call-ID: out-1@box.local\r\n"
        f"CSeq: {cseq}\r\n"
        f"Contact: <{contact}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def in_dialog(method: str, seq: int, *, contact: str | None = None) -> Request:
    contact_line = f"Contact: <{contact}>\r\n" if contact else ""
    data = (
        f"{method} sip:room@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKin" + str(seq) + "\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@example.org>;tag=alice-tag\r\n'
        "To: <sip:room@box.local>;tag=room-tag\r\n"
        "Call-ID: dlg-1@192.0.2.10\r\n"
        f"CSeq: {seq} {method}\r\n"
        f"{contact_line}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def current(machine: Dialog | InviteSession) -> DialogState | InviteState:
    """Read the state afresh (mypy narrows attribute reads across calls)."""
    return machine.state


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def uas_dialog(status: int = 200) -> tuple[Dialog, Request]:
    invite = request(INVITE)
    response = invite.create_response(status, to_tag="room-tag")
    response.headers.add("Contact", "<sip:room@192.0.2.1:5060>")
    return Dialog.from_uas(invite, response), invite


def uac_dialog(status: int = 200) -> Dialog:
    return Dialog.from_uac(request(OUR_INVITE), their_response(status, "X"))


# --- creation (RFC 3261 12.1) -------------------------------------------------------------


def test_uas_dialog_from_invite() -> None:
    dialog, _invite = uas_dialog()
    assert dialog.id == DialogId("dlg-1@192.0.2.10", "room-tag", "alice-tag")
    assert dialog.id == DialogId.for_incoming(in_dialog("BYE", 11))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.remote_seq == 10 and dialog.local_seq == 0
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p2.example.org;lr",
        "sip:p1.example.org;lr",
    ]  # request order for the UAS
    assert str(dialog.local_uri) == "sip:room@box.local"
    assert str(dialog.remote_uri) == "sip:alice@example.org"
    assert not dialog.secure


def test_uac_dialog_reverses_record_route() -> None:
    dialog = uac_dialog()
    assert dialog.id == DialogId("out-1@box.local", "box-tag", "bob-tag")
    assert dialog.id == DialogId.for_response(their_response(200, "OK"))
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p2.example.org;lr",
        "sip:p1.example.org;lr",
    ]
    assert dialog.local_seq == 1 and dialog.remote_seq is None
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20"


def test_dialog_needs_a_to_tag_and_a_contact() -> None:
    invite = request(INVITE)
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(invite, invite.create_response(200))
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(invite, invite.create_response(486, to_tag="x"))
    response = their_response(200, "OK")
    response.headers.remove("Contact")
    with pytest.raises(RemoteProtocolError, match="Contact"):
        Dialog.from_uac(request(OUR_INVITE), response)


# --- requests within the dialog (RFC 3261 12.2.1) -----------------------------------------


def test_create_request_uses_route_set_and_next_cseq() -> None:
    dialog, _ = uas_dialog()
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnew")
    bye = dialog.create_request(
        "INFO", body=b"x", content_type="text/plain", via=via, extra_headers=[("Subject", "hi")]
    )
    parsed = parse_message(bye.to_bytes())
    assert isinstance(parsed, Request)
    assert str(parsed.uri) == "sip:alice@192.0.2.10:5060"
    assert parsed.headers.get_all("Route") == ["<sip:p2.example.org;lr>", "<sip:p1.example.org;lr>"]
    assert parsed.cseq.seq == 1 and parsed.cseq.method == "INFO"
    assert parsed.from_.tag == "room-tag" and parsed.to.tag == "alice-tag"
    assert parsed.call_id == "dlg-1@192.0.2.10"
    assert parsed.top_via.branch == "z9hG4bKnew"
    assert parsed.headers.get("Subject") == "hi" and parsed.body == b"x"
    assert parsed.content_type == "text/plain"
    assert [str(c.uri) for c in parsed.contacts] == ["sip:room@192.0.2.1:5060"]
    assert dialog.create_request("OPTIONS").cseq.seq == 2


def test_strict_route_puts_remote_target_last() -> None:
    dialog = Dialog.from_uac(request(OUR_INVITE), their_response(200, "OK", record_route=()))
    dialog.route_set = (
        NameAddr.parse("<sip:strict.example.org;maddr=192.0.2.5>"),
        NameAddr.parse("<sip:p2.example.org;lr>"),
    )
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:strict.example.org"  # RFC 3261 12.2.1.1 strict routing
    assert bye.headers.get_all("Route") == ["<sip:p2.example.org;lr>", "<sip:bob@192.0.2.20>"]


def test_no_route_set_targets_contact_directly() -> None:
    dialog = Dialog.from_uac(request(OUR_INVITE), their_response(200, "OK", record_route=()))
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.20" and "Route" not in bye.headers


def test_create_ack_reuses_the_invite_cseq() -> None:
    dialog = uac_dialog()
    ack = dialog.create_ack(1)
    assert ack.method == "ACK" and ack.cseq.seq == 1 and ack.cseq.method == "ACK"
    assert "Contact" not in ack.headers and dialog.local_seq == 1
    with pytest.raises(LocalProtocolError):
        dialog.create_request("ACK")
    with pytest.raises(LocalProtocolError):
        dialog.create_request("CANCEL")


# --- incoming requests (RFC 3261 12.2.2) --------------------------------------------------


def test_lower_cseq_is_rejected_with_500() -> None:
    dialog, _ = uas_dialog()
    dialog.receive_request(in_dialog("INFO", 12))
    dialog.receive_request(in_dialog("INFO", 12))  # equal is not out of order
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(in_dialog("INFO", 11))
    assert info.value.status_hint == 500
    assert dialog.remote_seq == 12
    dialog.receive_request(in_dialog("ACK", 10))  # ACK carries the INVITE's number


def test_target_refresh_on_reinvite_and_update_only() -> None:
    dialog, _ = uas_dialog()
    dialog.receive_request(in_dialog("INFO", 11, contact="sip:ignored@192.0.2.99"))
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    dialog.receive_request(in_dialog("INVITE", 12, contact="sip:alice@192.0.2.11"))
    assert str(dialog.remote_target) == "sip:alice@192.0.2.11"
    dialog.receive_request(in_dialog("UPDATE", 13, contact="sip:alice@192.0.2.12"))
    assert str(dialog.remote_target) == "sip:alice@192.0.2.12"
    assert str(dialog.create_request("BYE").uri) == "sip:alice@192.0.2.12"


def test_uac_target_refresh_from_2xx_to_reinvite() -> None:
    dialog = uac_dialog()
    reinvite = dialog.create_request("INVITE")
    assert reinvite.cseq.seq == 2
    dialog.receive_response(
        their_response(200, "OK", cseq="2 INVITE", contact="sip:bob@192.0.2.21")
    )
    assert str(dialog.remote_target) == "sip:bob@192.0.2.21"
    assert dialog.state is DialogState.CONFIRMED


def test_early_dialog_confirmed_recomputes_route_set() -> None:
    dialog = uac_dialog(180)
    assert dialog.state is DialogState.EARLY
    dialog.receive_response(their_response(200, "OK", record_route=("p9",)))
    assert current(dialog) is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p9.example.org;lr"]


def test_bye_and_481_terminate() -> None:
    dialog, _ = uas_dialog()
    dialog.receive_request(in_dialog("BYE", 11))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(in_dialog("INFO", 12))
    assert info.value.status_hint == 481
    with pytest.raises(LocalProtocolError):
        dialog.create_request("INFO")
    other = uac_dialog()
    other.create_request("INFO")
    other.receive_response(their_response(481, "Call/Transaction Does Not Exist", cseq="2 INFO"))
    assert other.state is DialogState.TERMINATED


# --- every (state, input) pair of the dialog table ---------------------------------------


def _reach(state: DialogState) -> tuple[Dialog, Dialog]:
    """A UAC and a UAS dialog in `state`."""
    uac, (uas, _) = uac_dialog(180), uas_dialog(180)
    if state is DialogState.CONFIRMED:
        uac.receive_response(their_response(200, "OK"))
        uas.send_response(request(INVITE).create_response(200, to_tag="room-tag"))
    elif state is DialogState.TERMINATED:
        uac.receive_response(their_response(486, "Busy Here"))
        uas.send_response(request(INVITE).create_response(486, to_tag="room-tag"))
    assert uac.state is state and uas.state is state
    return uac, uas


STATUS = {DialogInput.PROVISIONAL: 183, DialogInput.SUCCESS: 200, DialogInput.FAILURE: 603}


@pytest.mark.parametrize(("state", "inp"), list(itertools.product(DialogState, DialogInput)))
def test_every_dialog_pair(state: DialogState, inp: DialogInput) -> None:
    uac, uas = _reach(state)
    expected = DIALOG_TABLE.get((state, inp), state)
    if inp is DialogInput.BYE:
        if state is DialogState.TERMINATED:
            with pytest.raises(LocalProtocolError):
                uac.create_request("BYE")
            with pytest.raises(RemoteProtocolError):
                uas.receive_request(in_dialog("BYE", 11))
        else:
            uac.create_request("BYE")
            uas.receive_request(in_dialog("BYE", 11))
    else:
        uac.receive_response(their_response(STATUS[inp], "X"))
        uas.send_response(request(INVITE).create_response(STATUS[inp], to_tag="room-tag"))
    assert uac.state is expected and uas.state is expected


# --- InviteSession: offer/answer in progress and glare (RFC 3261 14, RFC 3311) ------------


@pytest.mark.parametrize(("state", "inp"), list(itertools.product(InviteState, SessionInput)))
def test_every_invite_session_pair(state: InviteState, inp: SessionInput) -> None:
    session = InviteSession(state)
    expected = INVITE_SESSION_TABLE.get((state, inp))
    remote_offer = inp in (SessionInput.RECEIVE_INVITE, SessionInput.RECEIVE_UPDATE)
    if expected is not None:
        assert session.handle(inp) is expected
    elif remote_offer:
        with pytest.raises(RemoteProtocolError) as info:
            session.handle(inp)
        assert info.value.status_hint == (481 if state is InviteState.TERMINATED else 491)
    elif inp is SessionInput.RECEIVE_ACK:
        assert session.handle(inp) is state
    else:
        with pytest.raises(LocalProtocolError):
            session.handle(inp)
    assert session.state is (expected or state)


def test_glare_our_reinvite_pending() -> None:
    session = InviteSession()
    session.send_request("INVITE")
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_request("INVITE")
    assert info.value.status_hint == 491
    session.receive_response("INVITE", 200)
    session.receive_request("INVITE")
    assert session.state is InviteState.REMOTE_INVITE


def test_second_incoming_reinvite_while_one_pending_gets_491() -> None:
    session = InviteSession.for_uas()
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_request("INVITE")
    assert info.value.status_hint == 491
    session.send_response("INVITE", 200)
    assert session.state is InviteState.AWAITING_ACK
    with pytest.raises(RemoteProtocolError):
        session.receive_request("UPDATE")
    session.receive_request("ACK")
    assert current(session) is InviteState.IDLE


def test_invite_session_flows() -> None:
    session = InviteSession.for_uac()
    session.receive_response("INVITE", 180)  # provisional: no change
    assert session.state is InviteState.LOCAL_INVITE
    session.receive_response("INVITE", 200)
    session.receive_response("INVITE", 200)  # retransmitted 2xx is harmless
    session.send_request("INFO")  # not an offer/answer method
    session.send_request("UPDATE")
    session.receive_response("UPDATE", 500)
    session.receive_request("UPDATE")
    session.send_response("UPDATE", 200)
    assert current(session) is InviteState.IDLE
    with pytest.raises(LocalProtocolError):
        session.send_response("INVITE", 200)
    session.receive_request("BYE")
    assert current(session) is InviteState.TERMINATED
