"""Tests for sylkbox.sip.message (RFC 3261 7, 8.2.6, 12.1.1, 20)."""

from __future__ import annotations

import pytest

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import CSeq, Headers, NameAddr
from sylkbox.sip.message import Request, Response, default_reason
from sylkbox.sip.uri import SipUri


def make_invite(body: bytes = b"") -> Request:
    headers = Headers([
        ("Via", "SIP/2.0/UDP 10.0.0.2:5062;rport;branch=z9hG4bKtop"),
        ("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1"),
        ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:alice@example.com>;tag=a1'),
        ("To", "<sip:room1@sylkbox.local>"),
        ("Call-ID", "c1@10.0.0.2"),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:alice@10.0.0.2:5062>;expires=60, <sip:alice@[2001:db8::2]>"),
        ("Record-Route", "<sip:proxy.example.com;lr>"),
        ("Content-Type", "Application/SDP; charset=utf-8"),
        ("Expires", "0120"),
    ])  # fmt: skip
    return Request("INVITE", SipUri.parse("sip:room1@sylkbox.local"), headers, body)


def test_accessors() -> None:
    invite = make_invite()
    assert invite.call_id == "c1@10.0.0.2"
    assert invite.cseq == CSeq(1, "INVITE")
    assert invite.from_.tag == "a1" and invite.from_.display_name == "Alice"
    assert invite.to.tag is None and str(invite.to.uri) == "sip:room1@sylkbox.local"
    assert [v.host for v in invite.vias] == ["10.0.0.2", "proxy.example.com"]
    assert invite.top_via.branch == "z9hG4bKtop" and invite.top_via.rport == -1
    assert [str(c.uri) for c in invite.contacts] == [
        "sip:alice@10.0.0.2:5062", "sip:alice@[2001:db8::2]",
    ]  # fmt: skip
    assert invite.max_forwards == 70
    assert invite.content_type == "application/sdp"
    assert invite.expires == 120


def test_optional_accessors_absent() -> None:
    request = Request("OPTIONS", SipUri.parse("sip:a@b"), Headers([("Contact", "*")]))
    assert request.max_forwards is None and request.content_type is None
    assert request.expires is None and request.contacts == []
    request.headers.set("Expires", "1" + "0" * 100)
    assert request.expires == 2**32 - 1  # RFC 3261 20.19: overlarge is clamped


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Call-ID", None, "Missing Call-ID header"),
        ("Call-ID", "a b", "Bad Call-ID header"),
        ("CSeq", None, "Missing CSeq header"),
        ("CSeq", "x INVITE", "Bad CSeq header"),
        ("From", "Bell, Alexander <sip:a@b>", "Bad From header"),
        ("To", '"unterminated <sip:a@b>', "Bad To header"),
        ("Via", None, "Missing Via header"),
        ("Via", "SIP/2.0/UDP", "Bad Via header"),
        ("Contact", "<sip:a@b>;;", "Bad Contact header"),
        ("Max-Forwards", "256", "Bad Max-Forwards header"),
        ("Max-Forwards", "-1", "Bad Max-Forwards header"),
        ("Content-Type", "sdp", "Bad Content-Type header"),
        ("Expires", "soon", "Bad Expires header"),
    ],
)
def test_accessor_errors(name: str, value: str | None, reason: str) -> None:
    invite = make_invite()
    if value is None:
        invite.headers.remove(name)
    else:
        invite.headers.set(name, value)
    attribute = {"Call-ID": "call_id", "CSeq": "cseq", "From": "from_", "To": "to",
                 "Via": "vias", "Contact": "contacts", "Max-Forwards": "max_forwards",
                 "Content-Type": "content_type", "Expires": "expires"}[name]  # fmt: skip
    with pytest.raises(RemoteProtocolError) as info:
        getattr(invite, attribute)
    assert (info.value.reason, info.value.status_hint) == (reason, 400)
    if name == "Via":
        with pytest.raises(RemoteProtocolError, match=reason):
            invite.top_via  # noqa: B018


def test_request_to_bytes_exact() -> None:
    request = Request(
        "OPTIONS",
        SipUri.parse("sip:room@[2001:db8::1]:5070;transport=tcp"),
        Headers([
            ("v", "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK1"),
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:room@b>"),
            ("i", "x@y"),
            ("CSeq", "7 OPTIONS"),
            ("X-Weird", "a, b ; c"),
        ]),
        b"hello",
    )  # fmt: skip
    assert request.to_bytes() == (
        b"OPTIONS sip:room@[2001:db8::1]:5070;transport=tcp SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=1\r\n"
        b"To: <sip:room@b>\r\n"
        b"Call-ID: x@y\r\n"
        b"CSeq: 7 OPTIONS\r\n"
        b"X-Weird: a, b ; c\r\n"
        b"Content-Length: 5\r\n"
        b"\r\n"
        b"hello"
    )


def test_response_to_bytes_keeps_content_length_position() -> None:
    response = Response(
        200, "OK", Headers([("Content-Length", "999"), ("Call-ID", "x"), ("l", "1")]), b"ab"
    )
    assert response.to_bytes() == (b"SIP/2.0 200 OK\r\nContent-Length: 2\r\nCall-ID: x\r\n\r\nab")
    assert Response(100, "", Headers()).to_bytes() == b"SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n"


def test_utf8_values_round_trip_in_bytes() -> None:
    response = Response(200, "Dobrý den", Headers([("Subject", "日本")]))
    assert response.to_bytes() == (
        "SIP/2.0 200 Dobrý den\r\nSubject: 日本\r\nContent-Length: 0\r\n\r\n".encode()
    )


def test_create_response_copies_headers() -> None:
    invite = make_invite(b"v=0\r\n")
    response = invite.create_response(180, to_tag="room-tag")
    assert (response.status, response.reason, response.body) == (180, "Ringing", b"")
    assert response.headers.items() == [
        ("Via", "SIP/2.0/UDP 10.0.0.2:5062;rport;branch=z9hG4bKtop"),
        ("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1"),
        ("From", '"Alice" <sip:alice@example.com>;tag=a1'),
        ("To", "<sip:room1@sylkbox.local>;tag=room-tag"),
        ("Call-ID", "c1@10.0.0.2"),
        ("CSeq", "1 INVITE"),
        ("Record-Route", "<sip:proxy.example.com;lr>"),
    ]
    assert response.to.tag == "room-tag"


def test_create_response_record_route_only_for_dialog_creating() -> None:
    invite = make_invite()
    assert "Record-Route" in invite.create_response(200).headers
    assert "Record-Route" not in invite.create_response(100).headers
    assert "Record-Route" not in invite.create_response(486).headers
    invite.method = "OPTIONS"
    invite.headers.set("CSeq", "1 OPTIONS")
    assert "Record-Route" not in invite.create_response(200).headers
    invite.method = "SUBSCRIBE"
    assert "Record-Route" in invite.create_response(202).headers


def test_create_response_keeps_existing_to_tag() -> None:
    invite = make_invite()
    invite.headers.set("To", "<sip:room1@sylkbox.local>;tag=existing")
    response = invite.create_response(200, "Fine", to_tag="other")
    assert response.reason == "Fine"
    assert response.headers.get("To") == "<sip:room1@sylkbox.local>;tag=existing"
    assert invite.create_response(200).headers.get("To") == (
        "<sip:room1@sylkbox.local>;tag=existing"
    )


def test_create_response_bytes() -> None:
    request = Request("BYE", SipUri.parse("sip:a@b"), Headers([
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKb"), ("From", "<sip:x@y>;tag=1"),
        ("To", "<sip:a@b>;tag=2"), ("Call-ID", "c"), ("CSeq", "2 BYE"), ("Max-Forwards", "70"),
    ]))  # fmt: skip
    assert request.create_response(481).to_bytes() == (
        b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
        b"Via: SIP/2.0/UDP h;branch=z9hG4bKb\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\n"
        b"Call-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [(100, "Trying"), (200, "OK"), (202, "Accepted"), (400, "Bad Request"),
     (481, "Call/Transaction Does Not Exist"), (488, "Not Acceptable Here"),
     (491, "Request Pending"), (505, "Version Not Supported"), (513, "Message Too Large"),
     (603, "Decline"), (299, "OK"), (499, "Client Error"), (799, "Unknown")],
)  # fmt: skip
def test_default_reason(status: int, reason: str) -> None:
    assert default_reason(status) == reason


def test_name_addr_of_from_is_usable() -> None:
    invite = make_invite()
    assert invite.from_ == NameAddr(
        "Alice", SipUri.parse("sip:alice@example.com"), (("tag", "a1"),)
    )
