"""Tests for sylkbox.msrp.message (RFC 4975 7.1, 7.1.1, 7.1.2, 7.2, 9; RFC 7701)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.msrp.errors import LocalProtocolError, RemoteProtocolError
from sylkbox.msrp.message import (
    ByteRange,
    MsrpRequest,
    MsrpResponse,
    Status,
    canonical_name,
    default_comment,
    make_response,
)
from sylkbox.msrp.serializer import serialize
from sylkbox.msrp.uri import MsrpUri

A = MsrpUri.parse("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")
B = MsrpUri.parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
RELAY = MsrpUri.parse("msrps://relay.example.net;tcp")


def test_byte_range() -> None:
    assert ByteRange.parse("1-25/25") == ByteRange(1, 25, 25)
    assert ByteRange.parse("65537-*/100000") == ByteRange(65537, None, 100000)
    assert ByteRange.parse("1-*/*") == ByteRange(1, None, None)
    assert ByteRange.parse("1-0/0") == ByteRange(1, 0, 0)  # empty SEND (BLINK.md 7)
    for text in ("1-25/25", "11-*/*", "1-*/2049", "1-0/0"):
        assert str(ByteRange.parse(text)) == text
    for bad in ("0-4/4", "5-3/10", "1-20/10", "x", "1-2", "-1-2/3", "1-2/3/4"):
        with pytest.raises(RemoteProtocolError):
            ByteRange.parse(bad)


def test_status() -> None:
    status = Status.parse("000 200 OK")
    assert status == Status(200, "OK", 0)
    assert str(status) == "000 200 OK"
    assert Status.parse("000 413 Unwanted message").comment == "Unwanted message"
    assert str(Status.parse("000 481")) == "000 481"
    for bad in ("200 OK", "000 20 OK", "abc 200", ""):
        with pytest.raises(RemoteProtocolError):
            Status.parse(bad)


def test_canonical_names() -> None:
    assert canonical_name("message-id") == "Message-ID"
    assert canonical_name("BYTE-RANGE") == "Byte-Range"
    assert canonical_name("use-nickname") == "Use-Nickname"
    assert canonical_name("x-my-header") == "X-My-Header"
    assert default_comment(425) == "Nickname reserved or already in use"


def test_request_to_bytes_rfc_example() -> None:
    # RFC 4975 section 7.1 example
    req = MsrpRequest(
        "SEND",
        "a786hjs2",
        (B,),
        (A,),
        {"Message-ID": "87652491", "Byte-Range": "1-25/25", "Content-Type": "text/plain"},
        b"Hey Bob, are you there?",
    )
    assert req.to_bytes() == (
        b"MSRP a786hjs2 SEND\r\n"
        b"To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
        b"From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
        b"Message-ID: 87652491\r\n"
        b"Byte-Range: 1-25/25\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"Hey Bob, are you there?\r\n"
        b"-------a786hjs2$\r\n"
    )
    assert serialize(req) == req.to_bytes()
    assert req.message_id == "87652491"
    assert req.byte_range == ByteRange(1, 25, 25)
    assert req.content_type == "text/plain"
    assert req.header("message-id") == "87652491"
    assert not req.success_report and req.failure_report == "yes"


def test_content_type_goes_last() -> None:
    req = MsrpRequest(
        "SEND",
        "tid12345",
        (B,),
        (A,),
        {
            "Content-Type": "message/cpim",
            "Message-ID": "m1",
            "Content-Disposition": "inline",
            "Byte-Range": "1-2/2",
        },
        b"hi",
    )
    head = req.to_bytes().split(b"\r\n\r\n")[0].split(b"\r\n")
    assert [h.split(b":")[0] for h in head[3:]] == [
        b"Message-ID",
        b"Byte-Range",
        b"Content-Disposition",
        b"Content-Type",
    ]


def test_bodyless_and_empty_body() -> None:
    req = MsrpRequest("SEND", "tid12345", (B,), (A,), {"Message-ID": "m", "Byte-Range": "1-0/0"})
    assert req.to_bytes().endswith(b"Byte-Range: 1-0/0\r\n-------tid12345$\r\n")
    req.headers["Content-Type"] = "text/plain"
    assert req.to_bytes().endswith(b"Content-Type: text/plain\r\n\r\n\r\n-------tid12345$\r\n")


def test_serializer_refuses_bad_bodies() -> None:
    req = MsrpRequest("SEND", "tid12345", (B,), (A,), {"Message-ID": "m"}, b"body")
    with pytest.raises(LocalProtocolError):
        req.to_bytes()  # no Content-Type
    req.headers["Content-Type"] = "text/plain"
    req.body = b"a\r\n-------tid12345$\r\nb"
    with pytest.raises(LocalProtocolError):
        req.to_bytes()


def test_report_headers() -> None:
    req = MsrpRequest("SEND", "t1234", (B,), (A,), {"Success-Report": "YES"})
    assert req.success_report
    req.headers["Failure-Report"] = "partial"
    assert req.failure_report == "partial"
    req.headers["Failure-Report"] = "maybe"
    with pytest.raises(RemoteProtocolError):
        _ = req.failure_report
    report = MsrpRequest("REPORT", "t1234", (A,), (B,), {"Status": "000 200 OK"})
    assert report.status == Status(200, "OK")


def test_make_response_uses_first_hops() -> None:
    req = MsrpRequest("SEND", "t1234", (B,), (RELAY, A), {"Message-ID": "m"})
    response = make_response(req, 200)
    assert response.to_path == (RELAY,) and response.from_path == (B,)
    assert response.to_bytes() == (
        b"MSRP t1234 200 OK\r\nTo-Path: msrps://relay.example.net;tcp\r\n"
        b"From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n-------t1234$\r\n"
    )
    offset = req.response(200, headers={"Offset": "1024"})
    assert offset.header("offset") == "1024"
    assert b"\r\nOffset: 1024\r\n-------t1234$" in offset.to_bytes()
    assert req.response(425).comment == "Nickname reserved or already in use"
    with pytest.raises(LocalProtocolError):
        make_response(req, 100)
    bare = MsrpResponse("t1234", 200, None, (A,), (B,))
    assert bare.to_bytes().startswith(b"MSRP t1234 200\r\n")


@given(st.text(max_size=30))
def test_byte_range_fuzz(text: str) -> None:
    try:
        value = ByteRange.parse(text)
    except RemoteProtocolError:
        return
    assert ByteRange.parse(str(value)) == value
