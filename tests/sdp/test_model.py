"""Tests for sylkbox/sdp/model.py: RFC 4566 parse/serialize on real-peer vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sylkbox.sdp import (
    Capabilities,
    Connection,
    Direction,
    MediaDescription,
    NoAcceptableMedia,
    RtpMap,
    SdpLimits,
    SdpParseError,
    SessionDescription,
    build_answer,
    negotiate,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "sdp"
VALID = sorted(
    p.name
    for p in VECTORS.glob("*.sdp")
    if not p.name.startswith("malformed_") and not p.name.startswith("lf_")
)


def load(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def parse(name: str) -> SessionDescription:
    return SessionDescription.parse(load(name))


def test_vector_set_is_complete() -> None:
    assert len(VALID) >= 14
    assert all(b"\r\n" in load(n) for n in VALID)


@pytest.mark.parametrize("name", VALID)
def test_round_trip_exact_bytes(name: str) -> None:
    data = load(name)
    sdp = SessionDescription.parse(data)
    assert sdp.to_bytes() == data
    assert str(sdp).encode() == data
    assert SessionDescription.parse(data.decode()) == sdp


def test_lf_only_line_ends_are_normalised_to_crlf() -> None:
    data = load("lf_only_offer.sdp")
    assert b"\r" not in data
    sdp = SessionDescription.parse(data)
    assert sdp.to_bytes() == data.replace(b"\n", b"\r\n")
    assert sdp.media[0].direction is Direction.SENDRECV


def test_missing_final_line_end_is_added() -> None:
    data = load("sipp_pcmu.sdp")
    assert SessionDescription.parse(data.removesuffix(b"\r\n")).to_bytes() == data


def test_blink_offer_fields() -> None:
    sdp = parse("blink_audio_chat.sdp")
    assert sdp.origin.username == "-"
    assert sdp.origin.session_id == sdp.origin.session_version == "3917440182"
    assert sdp.origin.address == "192.168.1.20"
    assert sdp.session_name == "Blink 6.0.4 (Linux)"
    assert sdp.connection is None
    audio, chat = sdp.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 50010, "RTP/AVP")
    assert audio.formats == ["113", "9", "0", "8", "101", "100"]
    assert audio.payload_types() == [113, 9, 0, 8, 101, 100]
    assert audio.connection == Connection("IN", "IP4", "192.168.1.20")
    assert sdp.connection_for(audio) is audio.connection
    assert audio.rtpmap(113) == RtpMap(113, "opus", 48000, 2, True)
    assert audio.fmtp(113) == "useinbandfec=1"
    assert audio.fmtp(0) is None
    assert len(audio.attribute_values("crypto")) == 2
    assert audio.attribute("rtcp") == "50011"
    assert audio.direction is Direction.SENDRECV
    assert (chat.media, chat.port, chat.proto, chat.formats) == (
        "message",
        2855,
        "TCP/TLS/MSRP",
        ["*"],
    )
    assert chat.attribute("path") == "msrps://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp"
    assert chat.attribute("accept-types") == (
        "message/cpim text/* image/* application/im-iscomposing+xml"
    )
    assert chat.attribute("setup") == "active"
    assert chat.payload_types() == []
    assert chat.rtpmap(0) is None  # static payload types only mean something for audio
    # order of unknown attributes is kept
    assert [name for name, _ in audio.attributes][:3] == ["rtcp", "rtpmap", "fmtp"]


def test_static_payload_types_without_rtpmap() -> None:
    audio = parse("linphone_offer.sdp").media[0]
    assert not any(v.startswith("0 ") for v in audio.attribute_values("rtpmap"))
    assert audio.rtpmap(0) == RtpMap(0, "PCMU", 8000)
    assert audio.rtpmap(8) == RtpMap(8, "PCMA", 8000)
    assert audio.rtpmap(18) == RtpMap(18, "G729", 8000)
    assert audio.fmtp(18) == "annexb=yes"
    assert audio.rtpmap(35) is None
    assert str(audio.rtpmap(96)) == "96 opus/48000/2"


def test_session_level_fields_and_inheritance() -> None:
    sdp = parse("two_audio_session_level.sdp")
    assert sdp.information == "A session with two audio lines"
    assert sdp.uri == "http://example.com/seminars/sdp.pdf"
    assert sdp.emails == ["bob@example.com (Bob)"]
    assert sdp.phones == ["+1 617 555-6011"]
    assert sdp.bandwidths == [("CT", 128)]
    assert len(sdp.times) == 1
    assert (sdp.times[0].start, sdp.times[0].stop) == (3034423619, 3042462419)
    assert sdp.times[0].repeats == ["604800 3600 0 90000"]
    assert sdp.zone == "2882844526 -1h 2898848070 0"
    assert sdp.key == "prompt"
    # a property attribute and an empty value are told apart
    assert ("tool", None) in sdp.attributes
    assert ("x-empty", "") in sdp.attributes
    assert sdp.attribute("tool") == ""
    assert sdp.has_attribute("x-empty")
    assert sdp.attribute("nope") is None
    first, second = sdp.media
    assert first.port_count == 2
    assert first.information == "first audio"
    assert first.bandwidths == [("AS", 64)]
    assert first.direction is None
    assert sdp.direction_for(first) is Direction.RECVONLY  # inherited from session level
    assert sdp.direction_for(second) is Direction.SENDRECV  # media level wins
    assert sdp.connection_for(first) == Connection("IN", "IP4", "192.0.2.7")
    assert sdp.connection_for(second) == Connection("IN", "IP4", "192.0.2.8")


def test_direction_defaults_to_sendrecv() -> None:
    sdp = parse("sipp_pcmu.sdp")
    assert sdp.media[0].direction is None
    assert sdp.direction_for(sdp.media[0]) is Direction.SENDRECV


def test_ipv6_connection() -> None:
    sdp = parse("blink_ipv6_offer.sdp")
    assert sdp.origin.addrtype == "IP6"
    assert sdp.connection == Connection("IN", "IP6", "2001:db8:10::20")
    assert sdp.connection.host == "2001:db8:10::20"


def test_multicast_connection_host_drops_ttl() -> None:
    assert Connection("IN", "IP4", "224.2.1.1/127/3").host == "224.2.1.1"


@pytest.mark.parametrize(
    ("direction", "sends", "receives", "reverse"),
    [
        (Direction.SENDRECV, True, True, Direction.SENDRECV),
        (Direction.SENDONLY, True, False, Direction.RECVONLY),
        (Direction.RECVONLY, False, True, Direction.SENDONLY),
        (Direction.INACTIVE, False, False, Direction.INACTIVE),
    ],
)
def test_direction_table(
    direction: Direction, sends: bool, receives: bool, reverse: Direction
) -> None:
    assert (direction.sends, direction.receives) == (sends, receives)
    assert direction.reversed() is reverse
    assert Direction.from_flags(sends=sends, receives=receives) is direction


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed_missing_origin.sdp", "missing o= line"),
        ("malformed_bad_port.sdp", "line 6 'm=audio 70000 RTP/AVP 0': bad port"),
        ("malformed_bad_rtpmap.sdp", "line 7 'a=rtpmap:0 PCMU/eight': bad rtpmap encoding"),
        ("malformed_truncated.sdp", "line 6 'm=audio 40': m= needs"),
        ("malformed_not_sdp.sdp", "line 1 'INVITE sip:room@127.0.0.1 SIP/2.0': expected"),
        ("malformed_origin_in_media.sdp", "line 6 'o=- 2 2 IN IP4 127.0.0.1': o= is not allowed"),
        ("malformed_unknown_type.sdp", "line 5 'x=unknown': unknown field type 'x'"),
        ("malformed_short_connection.sdp", "line 4 'c=IN IP4': c= needs 3 fields"),
        ("malformed_version.sdp", "line 1 'v=1': unsupported SDP version"),
    ],
)
def test_malformed_vectors(name: str, reason: str) -> None:
    with pytest.raises(SdpParseError) as info:
        parse(name)
    assert info.value.reason.startswith(reason)
    assert info.value.status_hint == 400
    assert isinstance(info.value, ValueError)


HEAD = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty session description"),
        ("o=- 1 1 IN IP4 127.0.0.1\r\n", "line 1 'o=- 1 1 IN IP4 127.0.0.1': session description"),
        ("v=0\r\ns=-\r\n", "missing o= line"),
        ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "missing s= line"),
        (HEAD + "o=- 2 2 IN IP4 127.0.0.1\r\n", "line 5 'o=- 2 2 IN IP4 127.0.0.1': duplicate o="),
        (HEAD + "v=0\r\n", "line 5 'v=0': duplicate v="),
        (HEAD + "\r\na=x\r\n", "line 5 '': expected <type>=<value>"),
        (HEAD + "a=x\x00y\r\n", "line 5 'a=x\\x00y': control character"),
        (HEAD + "a=x\ry\r\n", "line 5 'a=x\\ry': control character"),
        ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nr=1 2\r\n", "line 4 'r=1 2': r= without"),
        (HEAD + "b=AS\r\n", "line 5 'b=AS': b= needs"),
        (HEAD + "b=AS:1" + "0" * 40 + "\r\n", "line 5"),
        (HEAD + "t=now later\r\n", "line 5 't=now later': t= needs"),
        (
            "v=0\r\no=- x 1 IN IP4 127.0.0.1\r\ns=-\r\n",
            "line 2 'o=- x 1 IN IP4 127.0.0.1': o= session",
        ),
        ("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\n", "line 2 'o=- 1 1 IN IP4': o= needs 6"),
        (HEAD + "a=:x\r\n", "line 5 'a=:x': bad attribute name"),
        (HEAD + "m=audio 01 RTP/AVP 0\r\n", "line 5 'm=audio 01 RTP/AVP 0': bad port"),
        (HEAD + "m=audio 1/0 RTP/AVP 0\r\n", "line 5 'm=audio 1/0 RTP/AVP 0': bad port count"),
        (HEAD + "m=audio 1/x RTP/AVP 0\r\n", "bad port count"),
        (HEAD + "m=audio 1 RTP/AVP  0\r\n", "line 5 'm=audio 1 RTP/AVP  0': m= needs"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n", "line 7 'c=IN IP4 b'"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\nt=0 0\r\n", "line 6 't=0 0': t= is not allowed"),
        (HEAD + "a=rtpmap:128 x/8000\r\n", "line 5 'a=rtpmap:128 x/8000': bad rtpmap payload"),
        (HEAD + "a=rtpmap:96 x/8000/0\r\n", "bad rtpmap channel count"),
        (HEAD + "a=rtpmap:96 x/0\r\n", "bad rtpmap clock rate"),
        (HEAD + "a=rtpmap:96 x\r\n", "bad rtpmap encoding"),
    ],
)
def test_parse_errors_name_the_line(text: str, reason: str) -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(text)
    assert reason in info.value.reason, info.value.reason


def test_long_lines_are_shortened_in_the_reason() -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(HEAD + "m=" + "x" * 500 + "\r\n")
    assert len(info.value.reason) < 150


def test_media_without_formats_is_tolerated() -> None:
    sdp = SessionDescription.parse(HEAD + "m=video 0 RTP/AVP\r\n")
    assert sdp.media[0].formats == []
    assert sdp.to_bytes() == (HEAD + "m=video 0 RTP/AVP\r\n").encode()


def test_non_utf8_bytes_round_trip() -> None:
    data = (HEAD + "a=x-latin1:caf").encode() + b"\xe9\r\n"
    sdp = SessionDescription.parse(data)
    assert sdp.to_bytes() == data


def test_session_level_order_is_tolerated_and_serialized_canonically() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 127.0.0.1\r\n"
    sdp = SessionDescription.parse(text)
    assert sdp.to_bytes() == (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    )


def test_limits() -> None:
    media = "m=audio 1 RTP/AVP 0\r\n"
    assert len(SessionDescription.parse(HEAD + media * 64).media) == 64
    with pytest.raises(SdpParseError, match="more than 64 media"):
        SessionDescription.parse(HEAD + media * 65)
    assert len(SessionDescription.parse(HEAD + "a=x\r\n" * 1024).attributes) == 1024
    with pytest.raises(SdpParseError, match="more than 1024 attributes"):
        SessionDescription.parse(HEAD + "a=x\r\n" * 1025)
    with pytest.raises(SdpParseError, match="larger than 65535 bytes"):
        SessionDescription.parse(HEAD + "a=" + "x" * 65536 + "\r\n")
    with pytest.raises(SdpParseError, match="more than 10 lines"):
        SessionDescription.parse(HEAD + "e=x\r\n" * 7, SdpLimits(max_lines=10))


def test_to_bytes_refuses_line_injection() -> None:
    sdp = parse("sipp_pcmu.sdp")
    sdp.media[0].attributes.append(("label", "1\r\nm=video 1 RTP/AVP 0"))
    with pytest.raises(ValueError, match="line break"):
        sdp.to_bytes()


def test_model_is_editable_and_reserialized() -> None:
    sdp = parse("sipp_pcmu.sdp")
    sdp.media.append(MediaDescription(media="video", port=0, proto="RTP/AVP", formats=["31"]))
    sdp.media[0].attributes.append(("sendonly", None))
    again = SessionDescription.parse(sdp.to_bytes())
    assert again == sdp
    assert again.media[0].direction is Direction.SENDONLY


# -- fuzzing: the parser raises SdpParseError and nothing else --------------------------------

VECTOR_LINES = sorted(
    {line for name in VALID for line in load(name).decode().split("\r\n") if line}
)


def _check(data: bytes | str) -> None:
    try:
        sdp = SessionDescription.parse(data)
    except SdpParseError as exc:
        assert exc.reason
        return
    again = SessionDescription.parse(sdp.to_bytes())
    assert again == sdp
    try:
        plan = negotiate(sdp, Capabilities())
    except NoAcceptableMedia as exc:
        assert len(exc.rejections) == len(sdp.media)
        return
    assert plan.audio is not None
    answer = build_answer(
        sdp,
        plan,
        address="127.0.0.1",
        local_ports={plan.audio.index: 4000},
        session_id=1,
        session_version=1,
    )
    assert SessionDescription.parse(answer.to_bytes()) == answer
    assert len(answer.media) == len(sdp.media)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _check(data)
    _check(HEAD.encode() + data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(VECTOR_LINES),
            st.text(alphabet="vosicbtmaer=: /0123456789IPN4.-*", max_size=40),
        ),
        max_size=40,
    )
)
def test_fuzz_recombined_vector_lines(lines: list[str]) -> None:
    _check("v=0\r\n" + "".join(f"{line}\r\n" for line in lines))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(min_value=0, max_value=5000), st.binary(max_size=8))
def test_fuzz_mutated_vectors(name: str, position: int, junk: bytes) -> None:
    data = load(name)
    position %= len(data)
    _check(data[:position] + junk + data[position + len(junk) :])
    _check(data[:position])
