"""Tests for sylkbox.sip.parser against the RFC 4475 and RFC 5118 torture vectors.

The table below classifies every vector as the RFC does. Some RFC 4475 "invalid" messages
are meant to be accepted by a parser and rejected by a higher layer (transaction or
application); those are marked ``ACCEPT`` with the RFC section saying why.
"""

from __future__ import annotations

import contextlib
import pathlib
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.sip.errors import ParseError
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import (
    KeepAlivePing,
    ParserLimits,
    SipFrame,
    StreamFramer,
    parse_message,
)

VECTORS = pathlib.Path(__file__).parent.parent / "vectors" / "sip"
ACCEPT = 0  # status 0: parses; otherwise the status of the error response, None = drop


@dataclass(frozen=True)
class Case:
    name: str
    status: int | None  # ACCEPT, the status of the error response, or None (dropped)
    note: str


CASES = [
    # RFC 4475 3.1.1: valid messages, every element must accept them
    Case("rfc4475_wsinv", ACCEPT, "3.1.1.1 short tortuous INVITE: folding, LWS, compact forms"),
    Case("rfc4475_intmeth", ACCEPT, "3.1.1.2 wide range of valid characters"),
    Case("rfc4475_esc01", ACCEPT, "3.1.1.3 valid use of the % escaping mechanism"),
    Case("rfc4475_escnull", ACCEPT, "3.1.1.4 escaped NULLs in URIs"),
    Case("rfc4475_esc02", ACCEPT, "3.1.1.5 % that is not an escape"),
    Case("rfc4475_lwsdisp", ACCEPT, "3.1.1.6 no LWS between display name and <"),
    Case("rfc4475_longreq", ACCEPT, "3.1.1.7 long values in header fields"),
    Case("rfc4475_dblreq", ACCEPT, "3.1.1.8 extra trailing octets in a datagram: ignored"),
    Case("rfc4475_semiuri", ACCEPT, "3.1.1.9 semicolon-separated parameters in URI user part"),
    Case("rfc4475_transports", ACCEPT, "3.1.1.10 varied and unknown transport types"),
    Case("rfc4475_mpart01", ACCEPT, "3.1.1.11 multipart MIME body with binary part"),
    Case("rfc4475_unreason", ACCEPT, "3.1.1.12 unusual (UTF-8) reason phrase"),
    Case("rfc4475_noreason", ACCEPT, "3.1.1.13 empty reason phrase"),
    # RFC 4475 3.1.2: invalid messages
    Case("rfc4475_badinv01", 400, "3.1.2.1 extraneous header field separators"),
    Case("rfc4475_clerr", 400, "3.1.2.2 Content-Length larger than message (datagram)"),
    Case("rfc4475_ncl", 400, "3.1.2.3 negative Content-Length"),
    Case("rfc4475_scalar02", 400, "3.1.2.4 request scalar fields with overlarge values"),
    Case("rfc4475_scalarlg", None, "3.1.2.5 response scalar fields overlarge: dropped"),
    Case("rfc4475_quotbal", 400, "3.1.2.6 unterminated quoted string in display name"),
    Case("rfc4475_ltgtruri", 400, "3.1.2.7 <> enclosing Request-URI"),
    Case("rfc4475_lwsruri", 400, "3.1.2.8 malformed Request-URI (embedded LWS)"),
    Case("rfc4475_lwsstart", 400, "3.1.2.9 multiple SP separating Request-Line elements"),
    Case("rfc4475_trws", 400, "3.1.2.10 SP at end of Request-Line (RFC: reject is reasonable)"),
    Case("rfc4475_escruri", 400, "3.1.2.11 escaped headers in Request-URI"),
    Case(
        "rfc4475_baddate",
        ACCEPT,
        "3.1.2.12 invalid Date time zone: only an error to a user of Date, forwarded unchanged",
    ),
    Case("rfc4475_regbadct", 400, "3.1.2.13 addr-spec with ? not enclosed in <>"),
    Case("rfc4475_badaspec", 400, "3.1.2.14 spaces within addr-spec (reject is reasonable)"),
    Case("rfc4475_baddn", 400, "3.1.2.15 non-token characters in display name"),
    Case("rfc4475_badvers", 505, "3.1.2.16 unknown protocol version"),
    Case("rfc4475_mismatch01", 400, "3.1.2.17 start line and CSeq method mismatch"),
    Case(
        "rfc4475_mismatch02",
        400,
        "3.1.2.18 unknown method with CSeq mismatch (RFC allows 400; 501 is a higher-layer choice)",
    ),
    Case("rfc4475_bigcode", None, "3.1.2.19 overlarge response code: dropped"),
    # RFC 4475 3.2 / 3.3 / 3.4: parse fine, the upper layers decide
    Case("rfc4475_badbranch", ACCEPT, "3.2.1 branch is just the magic cookie: transaction layer"),
    Case("rfc4475_insuf", 400, "3.3.1 missing To/From/Call-ID: answered 400 (Via, CSeq present)"),
    Case("rfc4475_unkscm", ACCEPT, "3.3.2 unknown Request-URI scheme: 416 at application"),
    Case("rfc4475_novelsc", ACCEPT, "3.3.3 novel scheme: 416 at application"),
    Case("rfc4475_unksm2", ACCEPT, "3.3.4 unknown URI schemes in headers: application"),
    Case("rfc4475_bext01", ACCEPT, "3.3.5 unknown Require/Proxy-Require: 420 at application"),
    Case("rfc4475_invut", ACCEPT, "3.3.6 unknown Content-Type: 415 at application"),
    Case("rfc4475_regaut01", ACCEPT, "3.3.7 unknown authorization scheme: application"),
    Case("rfc4475_multi01", 400, "3.3.8 multiple values in single-value fields"),
    Case("rfc4475_mcl01", 400, "3.3.9 multiple Content-Length values"),
    Case("rfc4475_bcast", ACCEPT, "3.3.10 200 OK with broadcast Via: transaction layer drops"),
    Case("rfc4475_zeromf", ACCEPT, "3.3.11 Max-Forwards 0: 483 at a proxy"),
    Case("rfc4475_cparam01", ACCEPT, "3.3.12 Contact addr-spec with header parameter"),
    Case("rfc4475_cparam02", ACCEPT, "3.3.13 Contact with URI parameter"),
    Case("rfc4475_regescrt", ACCEPT, "3.3.14 escaped Route header in Contact URI"),
    Case("rfc4475_sdp01", ACCEPT, "3.3.15 unacceptable Accept offering: 415 at application"),
    Case("rfc4475_inv2543", ACCEPT, "3.4.1 RFC 2543 INVITE (no branch, no Content-Length)"),
    # RFC 5118 IPv6 torture tests
    Case("rfc5118_ipv6-good", ACCEPT, "4.1 valid IPv6 references"),
    Case("rfc5118_ipv6-bad", 400, "4.2 IPv6 in Request-URI without brackets"),
    Case("rfc5118_port-ambiguous", ACCEPT, "4.3 [2001:db8::10:5070] is an address, no port"),
    Case("rfc5118_port-unambiguous", ACCEPT, "4.4 [2001:db8::10]:5070"),
    Case("rfc5118_via-received-param-with-delim", ACCEPT, "4.5 received=[IPv6]"),
    Case("rfc5118_via-received-param-no-delim", ACCEPT, "4.5 received=IPv6"),
    Case("rfc5118_ipv6-in-sdp", ACCEPT, "4.6 IPv6 in SDP body"),
    Case("rfc5118_mult-ip-in-header", ACCEPT, "4.7 IPv4 and IPv6 Vias"),
    Case("rfc5118_mult-ip-in-sdp", ACCEPT, "4.8 IPv4 and IPv6 in SDP"),
    Case("rfc5118_ipv4-mapped-ipv6", ACCEPT, "4.9 IPv4-mapped IPv6 addresses"),
    Case("rfc5118_ipv6-bug-abnf-3-colons", ACCEPT, "4.10 RFC 3261 ABNF bug: must be tolerated"),
    Case("rfc5118_ipv6-correct-abnf-2-colons", ACCEPT, "4.10 correct form"),
    # real peers
    Case("blink_invite", ACCEPT, "Blink INVITE over TLS with audio and MSRP chat"),
    Case("sipp_invite", ACCEPT, "SIPp uac scenario INVITE"),
    Case("sipp_200_ok", ACCEPT, "SIPp 200 OK with Record-Route list"),
]
VALID = [c.name for c in CASES if c.status == ACCEPT]


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.sip").read_bytes()


def test_every_vector_is_classified() -> None:
    mine = {
        p.stem
        for p in VECTORS.glob("*.sip")
        if p.stem.startswith(("rfc4475_", "rfc5118_", "blink_", "sipp_"))
    }
    assert mine == {c.name for c in CASES}
    for case in CASES:  # vectors are raw wire bytes with CRLF line ends
        data = load(case.name)
        assert b"\r\n" in data and b"\r\n\r\n" in data, case.name


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vector(case: Case) -> None:
    data = load(case.name)
    if case.status == ACCEPT:
        assert isinstance(parse_message(data), Request | Response)
        return
    with pytest.raises(ParseError) as info:
        parse_message(data)
    error = info.value
    if case.status is None:
        assert error.error_response is None
        return
    assert error.status_hint == case.status
    assert error.error_response is not None
    head, _, body = error.error_response.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    assert status_line == f"SIP/2.0 {case.status} {error.reason}".encode()
    assert body == b"" and lines[-1] == b"Content-Length: 0"
    request_lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    names = [line.split(b":", 1)[0] for line in lines[:-1]]
    assert b"Via" in names and b"CSeq" in names
    for line in lines[:-1]:  # copied from the request (RFC 3261 8.2.6.2), a To tag added
        name, value = line.split(b": ", 1)
        assert name in (b"Via", b"From", b"To", b"Call-ID", b"CSeq")
        assert any(value.split(b";tag=")[0] in req for req in request_lines), line


@pytest.mark.parametrize("name", VALID)
def test_round_trip(name: str) -> None:
    first = parse_message(load(name))
    wire = first.to_bytes()
    second = parse_message(wire)
    assert type(second) is type(first)
    assert second.body == first.body
    strip = [(n, v) for n, v in first.headers.items() if n != "Content-Length"]
    assert [(n, v) for n, v in second.headers.items() if n != "Content-Length"] == strip
    if isinstance(first, Request):
        assert isinstance(second, Request)
        assert (second.method, second.uri) == (first.method, first.uri)
    else:
        assert isinstance(second, Response)
        assert (second.status, second.reason) == (first.status, first.reason)
    assert second.to_bytes() == wire


def test_wsinv_details() -> None:
    message = parse_message(load("rfc4475_wsinv"))
    assert isinstance(message, Request)
    assert message.method == "INVITE" and message.uri.has_param("unknownparam")
    assert message.to.tag == "1918181833n" and message.to.display_name is None
    assert message.from_.display_name == 'J Rosenberg \\"' and message.from_.tag == "98asjd8"
    assert message.max_forwards == 68 and message.cseq.seq == 9
    assert message.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in message.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert message.headers.get("Subject") == ""
    assert message.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert message.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = message.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(message.body) == 150 and message.body.startswith(b"v=0\r\n")


def test_intmeth_details() -> None:
    message = parse_message(load("rfc4475_intmeth"))
    assert isinstance(message, Request)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert message.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert message.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert message.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_other_valid_details() -> None:
    esc02 = parse_message(load("rfc4475_esc02"))
    assert isinstance(esc02, Request) and esc02.method == "RE%47IST%45R"
    assert len(esc02.contacts) == 2 and esc02.headers.get("C%6Fntact") is not None
    dblreq = parse_message(load("rfc4475_dblreq"))
    assert isinstance(dblreq, Request) and dblreq.method == "REGISTER" and dblreq.body == b""
    mpart = parse_message(load("rfc4475_mpart01"))
    assert mpart.content_type == "multipart/mixed" and b"\x00" in mpart.body
    unreason = parse_message(load("rfc4475_unreason"))
    assert isinstance(unreason, Response)
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(load("rfc4475_noreason"))
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")
    inv2543 = parse_message(load("rfc4475_inv2543"))
    assert inv2543.top_via.branch is None and inv2543.body.endswith(b"RTP/AVP 0\r\n")
    ambiguous = parse_message(load("rfc5118_port-ambiguous"))
    assert isinstance(ambiguous, Request)
    assert (ambiguous.uri.host, ambiguous.uri.port) == ("[2001:db8::10:5070]", None)
    mapped = parse_message(load("rfc5118_ipv4-mapped-ipv6"))
    assert [(v.host, v.port) for v in mapped.vias] == [
        ("[::ffff:192.0.2.10]", 19823), ("[::ffff:192.0.2.2]", None),
    ]  # fmt: skip
    blink = parse_message(load("blink_invite"))
    assert blink.contacts[0].param("+sip.instance") == (
        '"<urn:uuid:1b2c3d4e-5f60-4a1b-9c2d-3e4f5a6b7c8d>"'
    )
    assert blink.top_via.transport == "TLS" and blink.top_via.rport == -1


def test_error_response_is_complete() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("rfc4475_scalar02"))
    assert info.value.reason == "Bad CSeq header"
    assert info.value.error_response is not None
    lines = info.value.error_response.split(b"\r\n")
    assert lines[0] == b"SIP/2.0 400 Bad CSeq header"
    assert lines[1:5] == [
        b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
        b"To: <sip:user@example.com>;tag=" + lines[2].rsplit(b"=", 1)[1],
        b"From: <sip:user@example.com>;tag=239232jh3",
        b"CSeq: 36893488147419103232 REGISTER",
    ]
    assert lines[5] == b"Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32"
    assert lines[-3:] == [b"Content-Length: 0", b"", b""]
    with pytest.raises(ParseError) as second:  # the To tag is stable across retransmissions
        parse_message(load("rfc4475_scalar02"))
    assert second.value.error_response == info.value.error_response


def test_multi01_error_response_copies_first_values_only() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("rfc4475_multi01"))
    assert info.value.error_response is not None
    response = parse_message(info.value.error_response)
    assert response.call_id == "multi01.98asdh@192.0.2.1" and response.cseq.seq == 5


MINIMAL = (
    b"OPTIONS sip:room@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKm\r\n"
    b"From: <sip:a@example.com>;tag=1\r\n"
    b"To: <sip:room@example.com>\r\n"
    b"Call-ID: m@10.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


def test_content_length_framing_for_datagrams() -> None:
    message = parse_message(MINIMAL + b"Content-Length: 3\r\n\r\nabcdef")
    assert message.body == b"abc"  # RFC 3261 18.3: extra octets are discarded
    with pytest.raises(ParseError) as info:
        parse_message(MINIMAL + b"Content-Length: 10\r\n\r\nabc")
    assert info.value.status_hint == 400 and info.value.error_response is not None
    assert parse_message(MINIMAL + b"\r\nxyz").body == b"xyz"  # no Content-Length: the rest
    with pytest.raises(ParseError, match="Bad Content-Length"):
        parse_message(MINIMAL + b"Content-Length: 1e3\r\n\r\n")


def test_tolerated_framing_variants() -> None:
    assert parse_message(b"\r\n\r\n" + MINIMAL + b"\r\n").headers.get("Call-ID") == "m@10.0.0.1"
    lf_only = MINIMAL.replace(b"\r\n", b"\n") + b"\nbody"
    assert parse_message(lf_only).body == b"body"
    assert parse_message(MINIMAL).body == b""  # no empty line at all


def test_version_and_status_line_errors() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(MINIMAL.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1) + b"\r\n")
    assert info.value.status_hint == 505 and info.value.error_response is not None
    assert info.value.error_response.startswith(b"SIP/2.0 505 Version Not Supported\r\n")
    with pytest.raises(ParseError) as info:
        parse_message(b"SIP/3.0 200 OK\r\n\r\n")
    assert info.value.status_hint == 505 and info.value.error_response is None
    for bad in (b"SIP/2.0 20 OK\r\n\r\n", b"SIP/2.0 999 X\r\n\r\n", b"", b"\r\n\r\n",
                b"HTTP/1.1 200 OK\r\n\r\n"):  # fmt: skip
        with pytest.raises(ParseError) as info:
            parse_message(bad)


def test_ack_is_never_answered() -> None:
    ack = MINIMAL.replace(b"OPTIONS", b"ACK").replace(b"CSeq: 1 ACK", b"CSeq: x ACK")
    with pytest.raises(ParseError) as info:
        parse_message(ack + b"\r\n")
    assert info.value.reason == "Bad CSeq header" and info.value.error_response is None


def test_request_without_via_or_cseq_is_dropped() -> None:
    no_via = b"\r\n".join(line for line in MINIMAL.split(b"\r\n") if not line.startswith(b"Via"))
    with pytest.raises(ParseError) as info:
        parse_message(no_via + b"\r\n")
    assert info.value.reason == "Missing Via header" and info.value.error_response is None


def test_limits() -> None:
    limits = ParserLimits(max_message_size=300, max_header_count=8, max_header_line=60)
    assert parse_message(MINIMAL + b"\r\n", limits).method == "OPTIONS"  # type: ignore[union-attr]
    with pytest.raises(ParseError) as info:
        parse_message(MINIMAL + b"\r\n" + b"x" * 300, limits)
    assert info.value.status_hint == 513 and info.value.error_response is not None
    assert info.value.error_response.startswith(b"SIP/2.0 513 Message Too Large\r\n")
    with pytest.raises(ParseError) as info:
        parse_message(b"SIP/2.0 200 OK\r\n" + MINIMAL[37:] + b"\r\n" + b"x" * 300, limits)
    assert info.value.status_hint == 513 and info.value.error_response is None
    with pytest.raises(ParseError, match="Too many headers") as info:
        parse_message(MINIMAL + b"X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n\r\n", limits)
    assert info.value.error_response is not None
    with pytest.raises(ParseError, match="Header line too long"):
        parse_message(MINIMAL + b"Subject: " + b"s" * 60 + b"\r\n\r\n", limits)
    with pytest.raises(ValueError):
        ParserLimits(max_message_size=0)


def test_malformed_header_lines() -> None:
    for extra in (b"NoColon\r\n", b": empty name\r\n", b"Bad Name: x\r\n", b"X: a\rb\r\n"):
        with pytest.raises(ParseError) as info:
            parse_message(MINIMAL + extra + b"\r\n")
        assert info.value.error_response is not None
    with pytest.raises(ParseError, match="Continuation"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n")


# ---------------------------------------------------------------- stream framing


def frames(framer: StreamFramer) -> list[SipFrame | KeepAlivePing]:
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def test_stream_framer_byte_by_byte() -> None:
    invite = load("sipp_invite")
    stream = b"\r\n" + invite + b"\r\n\r\n" + load("blink_invite")
    framer = StreamFramer()
    got: list[SipFrame | KeepAlivePing] = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        got += frames(framer)
    assert got == [SipFrame(invite), KeepAlivePing(), SipFrame(load("blink_invite"))]


def test_stream_framer_many_in_one_feed() -> None:
    one = MINIMAL + b"Content-Length: 4\r\n\r\nbody"
    framer = StreamFramer()
    framer.feed(b"\r\n\r\n" + one + one + b"\r\n")
    assert frames(framer) == [KeepAlivePing(), SipFrame(one), SipFrame(one)]
    framer.feed(b"\r\n")  # the lone CRLF was a leading CRLF, now a second one: a ping
    assert frames(framer) == [KeepAlivePing()]
    framer.feed(MINIMAL + b"l: 2\r\n\r\nab")
    assert frames(framer) == [SipFrame(MINIMAL + b"l: 2\r\n\r\nab")]
    assert parse_message(SipFrame(one).data).body == b"body"


def test_stream_framer_errors_are_final() -> None:
    framer = StreamFramer()
    framer.feed(MINIMAL + b"\r\n")
    with pytest.raises(ParseError, match="Missing Content-Length"):
        framer.next_frame()
    with pytest.raises(ParseError):
        framer.feed(b"more")
    with pytest.raises(ParseError):
        framer.next_frame()


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (MINIMAL + b"Content-Length: 1\r\nl: 2\r\n\r\n", "Multiple Content-Length"),
        (MINIMAL + b"Content-Length: -1\r\n\r\n", "Bad Content-Length"),
        (MINIMAL + b"Content-Length: 70000\r\n\r\n", "Message Too Large"),
        (b"X" * 70000, "Message Too Large"),
    ],
)
def test_stream_framer_rejects(stream: bytes, reason: str) -> None:
    framer = StreamFramer()
    framer.feed(stream)
    with pytest.raises(ParseError, match=reason):
        framer.next_frame()


# ---------------------------------------------------------------- fuzzing


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_message(data)


@settings(max_examples=600, deadline=None)
@given(
    name=st.sampled_from([c.name for c in CASES]),
    edits=st.lists(
        st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10_000),
                  st.sampled_from(b'\x00\r\n \t:;,<>"\\@[]%=?/0123456789aZ\xff')),
        min_size=1, max_size=8,
    ),
)  # fmt: skip
def test_fuzz_mutated_vectors(name: str, edits: list[tuple[str, int, int]]) -> None:
    data = bytearray(load(name))
    for op, offset, byte in edits:
        pos = offset % (len(data) + 1)
        if op == "insert":
            data[pos:pos] = bytes([byte])
        elif data and pos < len(data):
            if op == "set":
                data[pos] = byte
            else:
                del data[pos]
    try:
        message = parse_message(bytes(data))
    except ParseError as error:
        if error.error_response is not None:
            assert error.error_response.startswith(b"SIP/2.0 ")
            assert error.error_response.endswith(b"\r\nContent-Length: 0\r\n\r\n")
        return
    parse_message(message.to_bytes())  # whatever was accepted serializes to something valid


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.integers(1, 97), min_size=1, max_size=40))
def test_fuzz_stream_split(chunks: list[int]) -> None:
    stream = load("rfc4475_wsinv") + b"\r\n\r\n" + load("sipp_200_ok")
    framer = StreamFramer()
    got: list[SipFrame | KeepAlivePing] = []
    pos = 0
    for size in chunks * (len(stream) // sum(chunks) + 1):
        framer.feed(stream[pos : pos + size])
        pos += size
        got += frames(framer)
    assert got == [SipFrame(load("rfc4475_wsinv")), KeepAlivePing(), SipFrame(load("sipp_200_ok"))]
