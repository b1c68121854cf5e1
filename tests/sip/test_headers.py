"""Tests for sylkbox.sip.headers (RFC 3261 7.3, 20, 25.1; RFC 3581; RFC 5118)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.headers import CSeq, Headers, NameAddr, Via, canonical_name, split_list
from sylkbox.sip.uri import SipUri


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("v", "Via"), ("i", "Call-ID"), ("f", "From"), ("t", "To"), ("m", "Contact"),
     ("l", "Content-Length"), ("c", "Content-Type"), ("e", "Content-Encoding"),
     ("k", "Supported"), ("s", "Subject"), ("o", "Event"), ("r", "Refer-To"),
     ("b", "Referred-By"), ("x", "Session-Expires"), ("u", "Allow-Events"), ("V", "Via"),
     ("call-id", "Call-ID"), ("CSEQ", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
     ("X-Custom", "X-Custom"), ("C%6Fntact", "C%6Fntact")],
)  # fmt: skip
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_headers_multimap() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2")])
    headers.add("Subject", "hello, world")
    headers.add("VIA", "SIP/2.0/UDP c;branch=z9hG4bK3")
    headers.add("m", '"Bell, Alexander" <sip:a@b>;q=0.5, <sip:c@d>')
    assert headers.get("via") == "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2"
    assert headers.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/TCP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]  # fmt: skip
    assert headers.get_all("Subject") == ["hello, world"]  # not a list header
    assert headers.get_all("contact") == ['"Bell, Alexander" <sip:a@b>;q=0.5', "<sip:c@d>"]
    assert "s" in headers and "Route" not in headers and 3 not in headers
    assert [name for name, _ in headers.items()] == ["Via", "Subject", "Via", "Contact"]
    assert headers.get("Route") is None and headers.get_all("Route") == []


def test_headers_set_remove_copy() -> None:
    headers = Headers([("X-A", "1"), ("Via", "x"), ("X-B", "2"), ("via", "y")])
    copy = headers.copy()
    headers.set("v", "z")
    assert headers.items() == [("X-A", "1"), ("Via", "z"), ("X-B", "2")]
    headers.set("New", "n")
    assert headers.items()[-1] == ("New", "n")
    headers.remove("x-a")
    assert headers.items() == [("Via", "z"), ("X-B", "2"), ("New", "n")]
    assert copy.items() == [("X-A", "1"), ("Via", "x"), ("X-B", "2"), ("Via", "y")]
    assert copy == Headers([("X-A", "1"), ("Via", "x"), ("X-B", "2"), ("Via", "y")])
    assert Headers([("a", "compact")]).items() == [("Accept-Contact", "compact")]
    assert len(copy) == 4


def test_split_list_respects_quotes_and_brackets() -> None:
    value = '"a, \\"b\\"" <sip:x@y;p=1,2>;tag=1 , <sip:z@w?h=a,b>,sip:q@r'
    assert split_list(value) == ['"a, \\"b\\"" <sip:x@y;p=1,2>;tag=1', "<sip:z@w?h=a,b>", "sip:q@r"]


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com> ; tag = 98asjd8',
         'J Rosenberg \\"', "sip:jdrosen@example.com", (("tag", "98asjd8"),)),
        ("token1~` token2'+_  token3*%!.- <sip:mundane@example.com>;tag=_t~1",
         "token1~` token2'+_ token3*%!.-", "sip:mundane@example.com", (("tag", "_t~1"),)),
        ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com",
         (("tag", "323"),)),
        ("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", None,
         "sip:vivekg@chair-dnrc.example.com", (("tag", "1918181833n"),)),
        ("sip:+1972@gw1.example.net;unknownparam", None, "sip:+1972@gw1.example.net",
         (("unknownparam", None),)),
        ("<sip:+1972@gw1.example.net;unknownparam>", None,
         "sip:+1972@gw1.example.net;unknownparam", ()),
        ('<sip:a@b>;+sip.instance="<urn:uuid:1;2>";expires=60', None, "sip:a@b",
         (("+sip.instance", '"<urn:uuid:1;2>"'), ("expires", "60"))),
        ("isbn:2983792873", None, "isbn:2983792873", ()),
        ('"" <sip:a@b>', "", "sip:a@b", ()),
    ],
)  # fmt: skip
def test_name_addr_parse(
    text: str, display: str | None, uri: str, params: tuple[tuple[str, str | None], ...]
) -> None:
    value = NameAddr.parse(text)
    assert (value.display_name, str(value.uri), value.params) == (display, uri, params)
    assert NameAddr.parse(str(value)) == value  # symmetric


@pytest.mark.parametrize(
    "text",
    ['"Mr. J. User <sip:j.user@example.com>', "< sip:t.watson@example.org >",
     "Watson, Thomas <sip:t.watson@example.org>", '"Joe" <sip:joe@example.org>;;;;',
     "sip:user@example.com?Route=%3Csip:sip.example.com%3E", "<sip:a@b", "", "<>",
     '"Joe" sip:joe@example.org', "<sip:a@b> junk", "<sip:a@b>;tag=\"x"],
)  # fmt: skip
def test_name_addr_invalid(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        NameAddr.parse(text)


def test_name_addr_helpers() -> None:
    value = NameAddr.parse('"A \\"B\\"" <sip:a@b>')
    assert value.tag is None
    tagged = value.with_tag("xyz")
    assert tagged.tag == "xyz" and tagged.param("TAG") == "xyz"
    assert str(tagged) == '"A \\"B\\"" <sip:a@b>;tag=xyz'
    assert str(tagged.with_tag("new")) == '"A \\"B\\"" <sip:a@b>;tag=new'
    assert str(NameAddr(None, SipUri.parse("sip:x@y")).with_params(expires=30)) == (
        "<sip:x@y>;expires=30"
    )


def test_via_parse_with_lws() -> None:
    via = Via.parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw")
    assert via == Via("SIP/2.0", "UDP", "192.0.2.2", None, (("branch", "390skdjuw"),))
    via = Via.parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
    assert (via.transport, via.host, via.branch) == ("TCP", "spindle.example.com", "z9hG4bK9ikj8")
    assert str(via) == "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"


def test_via_ipv6_and_received_forms() -> None:
    via = Via.parse("SIP/2.0/udp [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKx")
    assert (via.transport, via.host, via.port) == ("UDP", "[2001:db8::9:1]", 6050)
    assert via.received == "[2001:db8::9:255]"
    assert Via.parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255").received == (
        "2001:db8::9:255"
    )


def test_via_rport_and_with_params() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5062;rport;branch=z9hG4bKabc")
    assert via.rport == -1 and via.received is None
    answered = via.with_params(received="10.0.0.9", rport=40000)
    assert answered.rport == 40000
    assert (
        str(answered) == "SIP/2.0/UDP 10.0.0.1:5062;rport=40000;branch=z9hG4bKabc;received=10.0.0.9"
    )
    assert Via.parse("SIP/2.0/TLS h;branch=z9hG4bK1").rport is None


@pytest.mark.parametrize(
    "text",
    ["SIP/2.0/UDP 192.0.2.15;;", "SIP/2.0 192.0.2.1", "SIP/2.0/UDP", "SIP/2.0/UDP a b",
     "SIP/2.0/UDP host:99999", "SIP/2.0/UDP [::1", "SIP/2.0/UDP [zz::1]", "",
     "SIP/2.0/UDP host;rport=abc", "SIP/2.0/UDP host;branch="],
)  # fmt: skip
def test_via_invalid(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("0009 INVITE") == CSeq(9, "INVITE")
    assert CSeq.parse("  139122385 \t!interesting-Method0123456789_*+`.%indeed'~ ") == CSeq(
        139122385, "!interesting-Method0123456789_*+`.%indeed'~"
    )
    assert str(CSeq(2**31 - 1, "BYE")) == "2147483647 BYE"
    for bad in ("36893488147419103232 REGISTER", "2147483648 BYE", "INVITE", "1", "-1 BYE",
                "1 IN VITE", "fhdjkgfhdkjhgkj", ""):  # fmt: skip
        with pytest.raises(RemoteProtocolError, match="CSeq"):
            CSeq.parse(bad)
    with pytest.raises(RemoteProtocolError):
        CSeq(1, "")


@given(seq=st.integers(0, 2**31 - 1), method=st.sampled_from(["INVITE", "ACK", "FOO.BAR"]))
def test_cseq_round_trip(seq: int, method: str) -> None:
    assert CSeq.parse(str(CSeq(seq, method))) == CSeq(seq, method)
