"""Tests for sylkbox.sip.multipart (RFC 2046 section 5.1 bodies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.sip.multipart import (
    BodyPart,
    MultipartError,
    build_multipart,
    parse_content_type,
    parse_multipart,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "sip"
RFC5366_CT = 'multipart/mixed;boundary="boundary1"'


def test_rfc5366_invite_body() -> None:
    body = (VECTORS / "rfc5366_invite_body.bin").read_bytes()
    sdp, recipients = parse_multipart(body, RFC5366_CT)
    assert sdp.media_type == "application/sdp"
    assert sdp.headers == {}
    assert sdp.disposition is None
    assert sdp.body.startswith(b"v=0\r\no=alice 2890844526")
    assert sdp.body.endswith(b"a=rtpmap:31 H261/90000\r\n")
    assert recipients.content_type == "application/resource-lists+xml"
    assert recipients.disposition == "recipient-list"
    assert recipients.headers == {"content-disposition": "recipient-list"}
    assert recipients.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n')
    assert recipients.body.endswith(b"</resource-lists>")


def test_rfc5366_body_rebuilds_byte_for_byte() -> None:
    body = (VECTORS / "rfc5366_invite_body.bin").read_bytes()
    parts = parse_multipart(body, RFC5366_CT)
    rebuilt, content_type = build_multipart(parts, boundary="boundary1")
    assert rebuilt == body
    assert content_type == "multipart/mixed;boundary=boundary1"


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed;boundary=boundary1",
        'Multipart/Mixed; Boundary = "boundary1" ; charset=utf-8',
        'multipart/related;type="application/sdp";boundary=boundary1',
    ],
)
def test_boundary_parameter_forms(content_type: str) -> None:
    body = (VECTORS / "rfc5366_invite_body.bin").read_bytes()
    assert len(parse_multipart(body, content_type)) == 2


def test_preamble_epilogue_padding_headers() -> None:
    body = (
        b"This is the preamble.\r\n"
        b"--b \t\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"Content-ID: <part1@example.com>\r\n"
        b"Content-Disposition: render;\r\n handling=optional\r\n"
        b"X-Thing: one\r\n"
        b"X-Thing: two\r\n"
        b"\r\n"
        b"hello --b not a delimiter\r\n"
        b"\r\n--b\r\n"
        b"\r\n"
        b"no headers\r\n"
        b"--b--\r\n"
        b"epilogue --b\r\n"
    )
    first, second = parse_multipart(body, "multipart/mixed; boundary=b")
    assert first.content_type == "text/plain; charset=utf-8"
    assert first.content_id == "part1@example.com"
    assert first.disposition == "render"
    assert first.headers["content-disposition"] == "render; handling=optional"
    assert first.headers["x-thing"] == "one, two"
    assert first.body == b"hello --b not a delimiter\r\n"
    assert second.media_type == "text/plain"  # RFC 2046 5.1 default
    assert second.body == b"no headers"


def test_empty_part() -> None:
    (part,) = parse_multipart(b"--b\r\n\r\n--b--", "multipart/mixed;boundary=b")
    assert part.body == b""
    assert part.headers == {}


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"--b\r\n\r\nx\r\n--b--", "application/sdp", "not a multipart"),
        (b"--b\r\n\r\nx\r\n--b--", "multipart/mixed", "boundary"),
        (b"--b\r\n\r\nx\r\n--b--", 'multipart/mixed;boundary=""', "boundary"),
        (b"--b\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=" + "x" * 71, "boundary"),
        (b"--b\r\n\r\nx\r\n--b--", 'multipart/mixed;boundary="b', "unterminated"),
        (b"--b\r\n\r\nx\r\n--b--", "multipart/mixed;boundary", "parameter"),
        (b"--b\r\n\r\nx\r\n--b--", "multipart;boundary=b", "media type"),
        (b"no delimiter at all", "multipart/mixed;boundary=b", "no boundary"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nx", "multipart/mixed;boundary=b", "close"),
        (b"--b\r\n\r\nx\r\n--b", "multipart/mixed;boundary=b", "inside a boundary"),
        (b"--bc\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=b", "after a boundary"),
        (b"--b\r\nContent-Type text\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=b", "header"),
        (b"--b\r\nContent-Type: text/plain", "multipart/mixed;boundary=b", "close"),
        (b"--b\r\nContent-Type: text/plain\r\n--b--", "multipart/mixed;boundary=b", "empty line"),
        (
            b"--b\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\nx\r\n--b--",
            "multipart/mixed;boundary=b",
            "duplicate",
        ),
        (b"--b\r\nContent-Type: nonsense\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=b", "media"),
        (b"--b\r\nX: \xff\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=b", "UTF-8"),
        (b"--b\r\n\r\nx\r\n" * 20 + b"--b--", "multipart/mixed;boundary=b", "more than 16"),
    ],
)
def test_errors(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(MultipartError) as info:
        parse_multipart(body, content_type)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_parse_content_type() -> None:
    assert parse_content_type('Message/SIPfrag;version="2.0"') == (
        "message/sipfrag",
        {"version": "2.0"},
    )
    assert parse_content_type('a/b; x="semi;colon \\"q\\""; y=z') == (
        "a/b",
        {"x": 'semi;colon "q"', "y": "z"},
    )


def test_build_quotes_boundary_and_canonical_headers() -> None:
    parts = [
        BodyPart(content_type="application/sdp", body=b"v=0\r\n"),
        BodyPart(
            content_type="application/resource-lists+xml",
            body=b"<x/>",
            headers={"Content-Disposition": "recipient-list", "content-id": "<l@h>"},
        ),
    ]
    body, content_type = build_multipart(parts, boundary="a b")
    assert content_type == 'multipart/mixed;boundary="a b"'
    assert body == (
        b"--a b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n"
        b"--a b\r\nContent-Type: application/resource-lists+xml\r\n"
        b"Content-Disposition: recipient-list\r\nContent-ID: <l@h>\r\n\r\n<x/>\r\n"
        b"--a b--\r\n"
    )
    assert parse_multipart(body, content_type) == parts


def test_build_errors() -> None:
    part = BodyPart(content_type="text/plain", body=b"--b inside")
    with pytest.raises(MultipartError):
        build_multipart([part], boundary="b")
    with pytest.raises(MultipartError):
        build_multipart([])
    with pytest.raises(MultipartError):
        build_multipart([part], boundary="bad\r\n")
    with pytest.raises(ValueError):
        BodyPart(content_type="text/plain", body=b"", headers={"Content-Type": "a/b"})
    with pytest.raises(ValueError):
        BodyPart(content_type="text/plain", body=b"", headers={"X": "a\r\nInjected: 1"})


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["application/sdp", "text/plain;charset=utf-8", "a/b"]),
            st.binary(max_size=200),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_round_trip_random_bodies(items: list[tuple[str, bytes]]) -> None:
    parts = [BodyPart(content_type=ct, body=body) for ct, body in items]
    body, content_type = build_multipart(parts)
    assert parse_multipart(body, content_type) == parts
