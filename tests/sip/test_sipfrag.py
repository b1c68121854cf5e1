"""Tests for sylkbox.sip.sipfrag (RFC 3420 status-line bodies)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.sip.sipfrag import SipfragError, parse_sipfrag, sipfrag_status


@pytest.mark.parametrize(
    ("code", "reason", "wire"),
    [
        (100, "Trying", b"SIP/2.0 100 Trying\r\n"),
        (180, "Ringing", b"SIP/2.0 180 Ringing\r\n"),
        (200, "OK", b"SIP/2.0 200 OK\r\n"),
        (486, "Busy Here", b"SIP/2.0 486 Busy Here\r\n"),
        (500, "", b"SIP/2.0 500 \r\n"),
        (603, "Declin\u00e9", "SIP/2.0 603 Declin\u00e9\r\n".encode()),
    ],
)
def test_status_round_trip(code: int, reason: str, wire: bytes) -> None:
    assert sipfrag_status(code, reason) == wire
    assert parse_sipfrag(wire) == (code, reason)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"SIP/2.0 200 OK", (200, "OK")),
        (b"SIP/2.0 200 OK\nContent-Length: 0\n", (200, "OK")),
        (b"SIP/2.0 183 Session Progress\r\nTo: <sip:b@h>;tag=1\r\n\r\n", (183, "Session Progress")),
        (b"SIP/2.0 404", (404, "")),
    ],
)
def test_parse_lenient_forms(data: bytes, expected: tuple[int, str]) -> None:
    assert parse_sipfrag(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SIP/2.0 20 OK",
        b"SIP/2.0 700 Bad",
        b"INVITE sip:a@b SIP/2.0\r\n",
        b"SIP/1.0 200 OK",
        b"SIP/2.0 2000 OK",
        b"SIP/2.0 200 \xff",
    ],
)
def test_parse_errors(data: bytes) -> None:
    with pytest.raises(SipfragError):
        parse_sipfrag(data)


@pytest.mark.parametrize(("code", "reason"), [(99, "x"), (700, "x"), (200, "OK\r\nX: y")])
def test_build_errors(code: int, reason: str) -> None:
    with pytest.raises(ValueError):
        sipfrag_status(code, reason)


@given(
    st.integers(100, 699),
    st.text(
        st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=40
    ),
)
def test_round_trip_property(code: int, reason: str) -> None:
    assert parse_sipfrag(sipfrag_status(code, reason)) == (code, reason.strip())


def test_undecodable_reason_still_builds_a_body() -> None:
    body = sipfrag_status(486, "Busy \udcff here")
    assert body == b"SIP/2.0 486 Busy ? here\r\n"
