"""Tests for sylkbox.msrp.uri (RFC 4975 6 and 6.1, RFC 4976 relay URIs)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.msrp.errors import RemoteProtocolError
from sylkbox.msrp.uri import DEFAULT_PORT, MsrpUri, new_session_id, parse_path, path_to_str


@pytest.mark.parametrize(
    "text",
    [
        "msrp://bob.example.com:8888/9di4eae923wzd;tcp",
        "msrps://192.168.1.10:2855/1d2c3b4a5968778695a4;tcp",
        "msrps://relay.example.net;tcp",
        "msrp://alice@atlanta.example.com:7654/jshA7weztas;tcp",
        "msrps://[2001:db8::1]:2855/abc;tcp",
        "msrp://h/s;tcp;foo=bar;baz",
    ],
)
def test_round_trip(text: str) -> None:
    assert str(MsrpUri.parse(text)) == text


def test_fields() -> None:
    uri = MsrpUri.parse("msrps://Alice@[2001:db8::1]:9999/s1d;TCP")
    assert uri.secure and uri.scheme == "msrps"
    assert uri.user == "Alice"
    assert uri.host == "[2001:db8::1]"
    assert uri.port == 9999
    assert uri.session_id == "s1d"
    assert uri.transport == "TCP"
    assert uri.address == ("2001:db8::1", 9999)
    assert MsrpUri.parse("msrp://h/x;tcp").address == ("h", DEFAULT_PORT)


def test_equality_rfc4975_6_1() -> None:
    a = MsrpUri.parse("msrp://Bob.Example.COM:8888/9di4eae923wzd;tcp")
    assert a == MsrpUri.parse("MSRP://bob.example.com:8888/9di4eae923wzd;TCP")
    assert hash(a) == hash(MsrpUri.parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp"))
    assert a != MsrpUri.parse("msrp://bob.example.com:8888/9DI4EAE923WZD;tcp")  # sid exact
    assert a != MsrpUri.parse("msrps://bob.example.com:8888/9di4eae923wzd;tcp")
    assert a != MsrpUri.parse("msrp://bob.example.com/9di4eae923wzd;tcp")  # port absent
    assert a != MsrpUri.parse("msrp://bob.example.com:8889/9di4eae923wzd;tcp")
    # userinfo and extra parameters are not compared
    assert a == MsrpUri.parse("msrp://x@bob.example.com:8888/9di4eae923wzd;tcp;p=1")
    assert a != "msrp://bob.example.com:8888/9di4eae923wzd;tcp"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:bob@example.com",
        "msrp://bob.example.com:8888/9di4eae923wzd",  # transport missing
        "msrp://:8888/x;tcp",
        "msrp://h:99999/x;tcp",
        "msrp://h/x y;tcp",
        "http://h/x;tcp",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        MsrpUri.parse(text)
    assert info.value.status == 400


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        MsrpUri(secure=False, host="", port=None, session_id="x")
    with pytest.raises(ValueError):
        MsrpUri(secure=False, host="h", port=0, session_id="x")
    with pytest.raises(ValueError):
        MsrpUri(secure=False, host="h", port=None, session_id="a b")
    uri = MsrpUri(secure=True, host="10.0.0.1", port=2855, session_id="abc")
    assert str(uri) == "msrps://10.0.0.1:2855/abc;tcp"


def test_path_with_relays() -> None:
    text = "msrps://relay.example.net:2855/7e6d;tcp msrps://192.168.1.10:2855/1d2c;tcp"
    path = parse_path(text)
    assert len(path) == 2
    assert path[0].host == "relay.example.net" and path[1].session_id == "1d2c"
    assert path_to_str(path) == text
    assert parse_path("  msrp://a/b;tcp\t msrp://c/d;tcp ") == (
        MsrpUri.parse("msrp://a/b;tcp"),
        MsrpUri.parse("msrp://c/d;tcp"),
    )
    with pytest.raises(RemoteProtocolError):
        parse_path("   ")


def test_new_session_id() -> None:
    sid = new_session_id()
    assert re.fullmatch(r"[0-9a-f]{20}", sid)  # 80 bits, lower-case hex (BLINK.md 7)
    assert sid != new_session_id()


@given(st.text(max_size=80))
def test_fuzz_only_remote_error(text: str) -> None:
    try:
        uri = MsrpUri.parse(text)
    except RemoteProtocolError:
        return
    assert MsrpUri.parse(str(uri)) == uri
