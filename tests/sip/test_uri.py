"""Tests for sylkbox.sip.uri (RFC 3261 19.1, RFC 5118)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.uri import SipUri, uri_equal


def test_parse_full_sip_uri() -> None:
    uri = SipUri.parse("sips:alice:secret@Atlanta.example.com:5061;transport=TCP;lr?subject=x&p=1")
    assert uri == SipUri(
        "sips", "alice", "secret", "Atlanta.example.com", 5061,
        (("transport", "TCP"), ("lr", None)), (("subject", "x"), ("p", "1")),
    )  # fmt: skip
    assert str(uri) == "sips:alice:secret@Atlanta.example.com:5061;transport=TCP;lr?subject=x&p=1"
    assert uri.transport == "tcp"
    assert uri.user_host == "alice@atlanta.example.com"
    assert uri.host_port == ("Atlanta.example.com", 5061)


def test_host_only_and_defaults() -> None:
    uri = SipUri.parse("sip:example.com")
    assert (uri.user, uri.password, uri.port, uri.params) == (None, None, None, ())
    assert uri.transport == "udp"
    assert uri.user_host == "example.com"
    assert uri.host_port == ("example.com", 5060)
    assert SipUri.parse("sips:example.com").host_port == ("example.com", 5061)
    assert SipUri.parse("sip:example.com;transport=TLS").host_port == ("example.com", 5061)


def test_user_may_contain_semicolons_and_escapes() -> None:
    # RFC 4475 3.1.1.9 (semiuri) and 3.1.1.3 (esc01)
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", ())
    uri = SipUri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips%3Auser%40example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),  # RFC 5118 4.3
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),  # RFC 5118 4.4
        ("sip:ted@[::ffff:192.0.2.2]", "[::ffff:192.0.2.2]", None),  # RFC 5118 4.9
        ("sip:user@[2001:db8:::192.0.2.1]", "[2001:db8:::192.0.2.1]", None),  # RFC 5118 4.10
    ],
)
def test_ipv6_references(text: str, host: str, port: int | None) -> None:
    uri = SipUri.parse(text)
    assert (uri.host, uri.port) == (host, port)
    assert uri.host_port == (host[1:-1], port or 5060)
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    ["tel:+1-201-555-0123", "http://www.example.com", "isbn:2983792873",
     "soap.beep://192.0.2.103:3002", "nobodyKnowsThisScheme:totallyopaquecontent"],
)  # fmt: skip
def test_other_schemes_are_opaque(text: str) -> None:
    uri = SipUri.parse(text)
    scheme, opaque = text.split(":", 1)
    assert not uri.is_sip
    assert uri.scheme == scheme.lower()  # schemes are case-insensitive (RFC 3986 3.1)
    assert str(uri) == f"{scheme.lower()}:{opaque}"
    assert uri.opaque == opaque


@pytest.mark.parametrize(
    "text",
    [
        "", "sip:", "sip:@example.com", "<sip:user@example.com>", "sip:user@example.com; lr",
        "sip:a@b:99999", "sip:a@b:", "sip:a@[2001:db8::1", "sip:a@[2001:db8::zz]",
        "sip:2001:db8::10", "sip:a@b;=x", "sip:a@b;x=", "sip:a b@c", "sip:%zz@b",
        "sip:a@b?x", "1sip:a@b", "tel:", "http:a b", "sip:a@b@c",
    ],
)  # fmt: skip
def test_invalid_uris(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        SipUri.parse(text)
    assert info.value.status_hint == 400


def test_params_helpers() -> None:
    uri = SipUri.parse("sip:room@host;Transport=TCP;lr")
    assert uri.param("transport") == "TCP"
    assert uri.has_param("LR") and uri.param("lr") is None
    assert not uri.has_param("maddr")
    changed = uri.with_params(transport="tls", maddr="10.0.0.1", ob=None)
    assert str(changed) == "sip:room@host;Transport=tls;lr;maddr=10.0.0.1;ob"
    assert str(changed.without_params("LR", "maddr")) == "sip:room@host;Transport=tls;ob"
    assert str(uri) == "sip:room@host;Transport=TCP;lr"  # frozen: the original is unchanged


# RFC 3261 19.1.4 examples
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("tel:+123", "tel:+124"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_uri_equal(a: str, b: str) -> None:
    assert uri_equal(SipUri.parse(a), SipUri.parse(b))
    assert uri_equal(SipUri.parse(b), SipUri.parse(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_uri_not_equal(a: str, b: str) -> None:
    assert not uri_equal(SipUri.parse(a), SipUri.parse(b))
    assert not uri_equal(SipUri.parse(b), SipUri.parse(a))


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()", min_size=1, max_size=12)
_hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)


@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | _token,
    host=_hosts,
    port=st.none() | st.integers(0, 65535),
    params=st.lists(st.tuples(_token, st.none() | _token), max_size=4),
)
def test_round_trip(
    scheme: str, user: str | None, host: str, port: int | None,
    params: list[tuple[str, str | None]],
) -> None:  # fmt: skip
    uri = SipUri(scheme, user, None, host, port, tuple(params))
    assert SipUri.parse(str(uri)) == uri
