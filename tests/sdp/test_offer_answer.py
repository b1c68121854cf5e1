"""Tests for sylkbox/sdp/offer_answer.py: RFC 3264 negotiation on real-peer vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from sylkbox.sdp import (
    AcceptedAudio,
    Capabilities,
    Codec,
    CodecSpec,
    Direction,
    InvalidAnswerError,
    NoAcceptableMedia,
    OfferPlan,
    Rejected,
    SessionDescription,
    answer_offer,
    build_answer,
    build_offer,
    negotiate,
    negotiate_answer,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "sdp"
G711 = Capabilities()
WIDEBAND = Capabilities.from_names(["opus/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000"])
SR, SO, RO, IN = Direction.SENDRECV, Direction.SENDONLY, Direction.RECVONLY, Direction.INACTIVE


def parse(name: str) -> SessionDescription:
    return SessionDescription.parse((VECTORS / name).read_bytes())


def sdp(text: str) -> SessionDescription:
    return SessionDescription.parse(text.replace("\n", "\r\n"))


@dataclass(frozen=True)
class Expect:
    """One row of the negotiation table (with the default G.711 capabilities)."""

    codec: tuple[int, str]
    te: int | None
    remote: tuple[str, int] | None
    rtcp: tuple[str, int] | None
    remote_dir: Direction
    local_dir: Direction
    on_hold: bool
    rejected: dict[int, str]
    te_fmtp: str = "0-16"


TABLE: dict[str, Expect | str] = {
    "blink_audio_chat.sdp": Expect(
        (0, "PCMU"),
        100,
        ("192.168.1.20", 50010),
        ("192.168.1.20", 50011),
        SR,
        SR,
        False,
        {1: "media type message not supported"},
    ),
    "blink_hold_sendonly.sdp": Expect(
        (0, "PCMU"),
        100,
        ("192.168.1.20", 50010),
        ("192.168.1.20", 50011),
        SO,
        RO,
        True,
        {1: "stream disabled in offer"},
    ),
    "blink_ipv6_offer.sdp": Expect(
        (8, "PCMA"),
        101,
        ("2001:db8:10::20", 50020),
        ("2001:db8:10::20", 50021),
        SR,
        SR,
        False,
        {},
    ),
    "blink_chat_only.sdp": "m-line 0 message: media type message not supported",
    # file transfers without an MSRP policy (tests/sdp/test_file_transfer.py accepts them)
    "blink_file_pull.sdp": "m-line 0 message: media type message not supported",
    "blink_file_push.sdp": "m-line 0 message: media type message not supported",
    "sipp_pcmu.sdp": Expect(
        (0, "PCMU"), None, ("127.0.0.1", 6000), ("127.0.0.1", 6001), SR, SR, False, {}
    ),
    "pjsua2_offer.sdp": Expect(
        (0, "PCMU"), 121, ("127.0.0.1", 4000), ("127.0.0.1", 4001), SR, SR, False, {}
    ),
    "pjsua2_hold_sendonly.sdp": Expect(
        (0, "PCMU"), 121, ("127.0.0.1", 4000), ("127.0.0.1", 4001), SO, RO, True, {}
    ),
    "baresip_offer.sdp": Expect(
        (0, "PCMU"),
        101,
        ("127.0.0.1", 10052),
        ("127.0.0.1", 10053),
        SR,
        SR,
        False,
        {},
        te_fmtp="0-15",
    ),
    "linphone_offer.sdp": Expect(
        (0, "PCMU"),
        100,
        ("192.168.1.30", 7078),
        ("192.168.1.30", 7079),
        SR,
        SR,
        False,
        {1: "media type video not supported"},
    ),
    "linphone_hold_inactive.sdp": Expect(
        (8, "PCMA"),
        100,
        ("192.168.1.30", 7078),
        ("192.168.1.30", 7079),
        IN,
        IN,
        True,
        {1: "stream disabled in offer"},
    ),
    "rfc2543_hold_zero.sdp": Expect((8, "PCMA"), 101, None, None, SR, RO, True, {}, te_fmtp="0-15"),
    "srtp_savp_offer.sdp": "m-line 0 audio: SRTP (RTP/SAVP) disabled",
    "two_audio_session_level.sdp": Expect(
        (8, "PCMA"),
        None,
        ("192.0.2.7", 49170),
        ("192.0.2.7", 49171),
        RO,
        SO,
        False,
        {1: "only one audio stream is accepted"},
    ),
    "no_common_codec.sdp": "m-line 0 audio: no common codec",
    "lf_only_offer.sdp": Expect(
        (0, "PCMU"), None, ("127.0.0.1", 4000), ("127.0.0.1", 4001), SR, SR, False, {}
    ),
}


def test_table_covers_every_parseable_vector() -> None:
    names = {p.name for p in VECTORS.glob("*.sdp") if not p.name.startswith("malformed_")}
    assert names == set(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_negotiation_table(name: str) -> None:
    offer = parse(name)
    expected = TABLE[name]
    if isinstance(expected, str):
        with pytest.raises(NoAcceptableMedia) as info:
            negotiate(offer, G711)
        assert expected in info.value.rejections
        assert info.value.status_hint == 488
        return
    plan = negotiate(offer, G711)
    assert len(plan.decisions) == len(offer.media)
    assert [d.index for d in plan.decisions] == list(range(len(offer.media)))
    audio = plan.audio
    assert audio is not None
    assert (audio.codec.payload_type, audio.codec.name) == expected.codec
    assert audio.codec.clock_rate == 8000
    assert audio.telephone_event_pt == expected.te
    assert audio.telephone_event_fmtp == expected.te_fmtp
    assert audio.remote_address == expected.remote
    assert audio.remote_rtcp == expected.rtcp
    assert audio.remote_direction is expected.remote_dir
    assert audio.local_direction is expected.local_dir
    assert audio.on_hold is expected.on_hold
    assert {r.index: r.reason for r in plan.rejected} == expected.rejected
    assert all(r.media == offer.media[r.index].media for r in plan.rejected)


@pytest.mark.parametrize("name", sorted(n for n, e in TABLE.items() if isinstance(e, Expect)))
def test_answer_mirrors_offer(name: str) -> None:
    offer = parse(name)
    plan = negotiate(offer, G711)
    assert plan.audio is not None
    answer = build_answer(
        offer,
        plan,
        address="192.168.1.10",
        local_ports={plan.audio.index: 40000},
        session_id=77,
        session_version=2,
    )
    assert SessionDescription.parse(answer.to_bytes()) == answer
    assert [m.media for m in answer.media] == [m.media for m in offer.media]
    for decision, offered, answered in zip(plan.decisions, offer.media, answer.media, strict=True):
        if isinstance(decision, Rejected):
            assert answered.port == 0
            assert answered.proto == offered.proto
            assert answered.formats == offered.formats[:1]
            assert answered.attributes == []
        else:
            assert isinstance(decision, AcceptedAudio), decision
            assert answered.port == 40000
            assert answered.proto == "RTP/AVP"
            assert answered.formats[0] == str(decision.codec.payload_type)
            assert set(answered.formats) <= set(offered.formats)
            assert answered.direction is decision.local_direction
            assert answered.attribute("ptime") == "20"
            assert not answered.has_attribute("crypto")
    assert answer.origin.username == "sylkbox"
    assert (answer.origin.session_id, answer.origin.session_version) == ("77", "2")


def test_blink_answer_exact_bytes() -> None:
    offer = parse("blink_audio_chat.sdp")
    answer, plan = answer_offer(
        offer, G711, address="192.168.1.10", session_id=5, session_version=1, ports={0: 50000}
    )
    assert plan == negotiate(offer, G711)
    assert answer.to_bytes() == (
        b"v=0\r\n"
        b"o=sylkbox 5 1 IN IP4 192.168.1.10\r\n"
        b"s=-\r\n"
        b"c=IN IP4 192.168.1.10\r\n"
        b"t=0 0\r\n"
        b"m=audio 50000 RTP/AVP 0 100\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:100 telephone-event/8000\r\n"
        b"a=fmtp:100 0-16\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
        b"m=message 0 TCP/TLS/MSRP *\r\n"
    )


def test_wideband_capabilities_pick_opus_with_its_telephone_event() -> None:
    offer = parse("blink_audio_chat.sdp")
    plan = negotiate(offer, WIDEBAND)
    assert plan.audio is not None
    assert plan.audio.codec == Codec(
        payload_type=113, name="opus", clock_rate=48000, channels=2, fmtp="useinbandfec=1"
    )
    assert plan.audio.telephone_event_pt == 101  # telephone-event/48000, not the 8000 one
    answer = build_answer(
        offer,
        plan,
        address="192.168.1.10",
        local_ports={0: 50000},
        session_id=1,
        session_version=1,
    )
    audio = answer.media[0]
    assert audio.formats == ["113", "101"]
    assert audio.attribute_values("rtpmap") == ["113 opus/48000/2", "101 telephone-event/48000"]


def test_g722_capability_from_configuration() -> None:
    caps = Capabilities(
        codecs=(CodecSpec(name="G722", clock_rate=8000), CodecSpec(name="PCMU", clock_rate=8000))
    )
    plan = negotiate(parse("pjsua2_offer.sdp"), caps)
    assert plan.audio is not None
    assert plan.audio.codec.name == "PCMU"  # the offerer lists 0 before 9
    plan = negotiate(parse("blink_ipv6_offer.sdp"), caps)
    assert plan.audio is not None
    assert (plan.audio.codec.payload_type, plan.audio.codec.name) == (9, "G722")


def test_offerer_order_wins_over_ours() -> None:
    ours = Capabilities.from_names(["PCMA/8000", "PCMU/8000"])
    plan = negotiate(parse("baresip_offer.sdp"), ours)  # offers 96 0 8 101
    assert plan.audio is not None
    assert plan.audio.codec.name == "PCMU"


def test_encoding_names_are_case_insensitive() -> None:
    offer = sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"
        "m=audio 5000 RTP/AVP 97 98\na=rtpmap:97 pcma/8000\na=rtpmap:98 TELEPHONE-EVENT/8000\n"
    )
    plan = negotiate(offer, G711)
    assert plan.audio is not None
    assert (plan.audio.codec.payload_type, plan.audio.telephone_event_pt) == (97, 98)


def test_telephone_event_can_be_disabled() -> None:
    caps = Capabilities(telephone_event=False)
    plan = negotiate(parse("pjsua2_offer.sdp"), caps)
    assert plan.audio is not None
    assert plan.audio.telephone_event_pt is None
    answer = build_answer(
        parse("pjsua2_offer.sdp"),
        plan,
        address="127.0.0.1",
        local_ports={0: 4002},
        session_id=1,
        session_version=1,
    )
    assert answer.media[0].formats == ["0"]


def test_reinvite_hold_and_resume() -> None:
    """RFC 3264 8.4: each re-INVITE offer is negotiated again; hold is read from it."""
    active = negotiate(parse("blink_audio_chat.sdp"), G711).audio
    held = negotiate(parse("blink_hold_sendonly.sdp"), G711).audio
    resumed = negotiate(parse("blink_audio_chat.sdp"), G711).audio
    assert active is not None and held is not None and resumed is not None
    assert [a.on_hold for a in (active, held, resumed)] == [False, True, False]
    assert [a.local_direction for a in (active, held, resumed)] == [SR, RO, SR]
    assert held.codec == active.codec


@pytest.mark.parametrize(
    ("connection", "direction", "local", "on_hold", "remote"),
    [
        ("IN IP4 0.0.0.0", "sendrecv", RO, True, None),
        ("IN IP4 0.0.0.0", "recvonly", IN, True, None),
        ("IN IP4 0.0.0.0", "inactive", IN, True, None),
        ("IN IP6 ::", "sendrecv", RO, True, None),
        ("IN IP4 10.0.0.1", "recvonly", SO, False, ("10.0.0.1", 5000)),
        ("IN IP4 10.0.0.1", "sendonly", RO, True, ("10.0.0.1", 5000)),
        ("IN IP4 10.0.0.1", "inactive", IN, True, ("10.0.0.1", 5000)),
    ],
)
def test_hold_detection(
    connection: str,
    direction: str,
    local: Direction,
    on_hold: bool,
    remote: tuple[str, int] | None,
) -> None:
    offer = sdp(
        f"v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc={connection}\nt=0 0\n"
        f"m=audio 5000 RTP/AVP 0\na={direction}\n"
    )
    audio = negotiate(offer, G711).audio
    assert audio is not None
    assert audio.remote_direction is Direction(direction)
    assert (audio.local_direction, audio.on_hold, audio.remote_address) == (local, on_hold, remote)


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        ("m=audio 5000 RTP/AVPF 0\nc=IN IP4 10.0.0.1\n", "unsupported transport protocol RTP/AVPF"),
        ("m=audio 5000 RTP/AVP 0\n", "no connection address"),
        ("m=audio 5000 RTP/AVP 0\nc=IN IP4 pbx.example.com\n", "is not an IP literal"),
        ("m=audio 5000 RTP/AVP 0\nc=IN IP6 10.0.0.1\n", "does not match IP6"),
        ("m=audio 5000 RTP/AVP 0\nc=IN IP4 224.2.1.1/127\n", "multicast connection address"),
        ("m=audio 5000 RTP/AVP 0\nc=ATM NSAP 47.0005\n", "unsupported connection"),
        ("m=audio 5000 RTP/AVP 96\nc=IN IP4 10.0.0.1\na=rtpmap:96 G729/8000\n", "no common codec"),
        ("m=audio 5000 RTP/AVP 0\nc=IN IP4 10.0.0.1\n".replace("audio", "video"), "video"),
        ("m=image 5000 udptl t38\nc=IN IP4 10.0.0.1\n", "media type image not supported"),
    ],
)
def test_rejection_reasons(media: str, reason: str) -> None:
    offer = sdp("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n" + media)
    with pytest.raises(NoAcceptableMedia) as info:
        negotiate(offer, G711)
    assert reason in info.value.rejections[0]


def test_rtcp_attribute_and_port_edge_cases() -> None:
    base = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"
    with_address = negotiate(
        sdp(base + "m=audio 5000 RTP/AVP 0\na=rtcp:6001 IN IP4 10.0.0.2\n"), G711
    ).audio
    assert with_address is not None and with_address.remote_rtcp == ("10.0.0.2", 6001)
    garbage = negotiate(sdp(base + "m=audio 5000 RTP/AVP 0\na=rtcp: \n"), G711).audio
    assert garbage is not None and garbage.remote_rtcp == ("10.0.0.1", 5001)
    top = negotiate(sdp(base + "m=audio 65535 RTP/AVP 0\n"), G711).audio
    assert top is not None and top.remote_rtcp is None


def test_a_later_audio_line_is_used_when_the_first_is_unusable() -> None:
    offer = sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"
        "m=audio 5000 RTP/SAVP 0\nm=audio 0 RTP/AVP 0\nm=audio 5002 RTP/AVP 8\n"
    )
    plan = negotiate(offer, G711)
    assert plan.audio is not None and plan.audio.index == 2
    answer = build_answer(
        offer, plan, address="10.0.0.9", local_ports={2: 7000}, session_id=1, session_version=1
    )
    assert [(m.port, m.proto, m.formats) for m in answer.media] == [
        (0, "RTP/SAVP", ["0"]),
        (0, "RTP/AVP", ["0"]),
        (7000, "RTP/AVP", ["8"]),
    ]


def test_ipv6_answer_address() -> None:
    offer = parse("blink_ipv6_offer.sdp")
    answer, _ = answer_offer(
        offer, G711, address="2001:db8:10::1", session_id=1, session_version=1, ports={0: 40000}
    )
    assert str(answer.connection) == "IN IP6 2001:db8:10::1"
    assert (answer.origin.addrtype, answer.origin.address) == ("IP6", "2001:db8:10::1")


def test_build_answer_refuses_local_mistakes() -> None:
    offer = parse("sipp_pcmu.sdp")
    plan = negotiate(offer, G711)
    with pytest.raises(ValueError, match="no valid local port"):
        build_answer(
            offer, plan, address="127.0.0.1", local_ports={}, session_id=1, session_version=1
        )
    with pytest.raises(ValueError, match="not an IP literal"):
        build_answer(
            offer,
            plan,
            address="focus.local",
            local_ports={0: 4000},
            session_id=1,
            session_version=1,
        )
    with pytest.raises(ValueError, match="does not match"):
        build_answer(
            offer,
            OfferPlan(),
            address="127.0.0.1",
            local_ports={0: 4000},
            session_id=1,
            session_version=1,
        )


# -- dial-out: our offer and the callee's answer ----------------------------------------------


def test_build_offer_default_exact_bytes() -> None:
    offer = build_offer(
        G711, address="192.168.1.10", audio_port=40000, session_id=9, session_version=9
    )
    assert offer.to_bytes() == (
        b"v=0\r\n"
        b"o=sylkbox 9 9 IN IP4 192.168.1.10\r\n"
        b"s=-\r\n"
        b"c=IN IP4 192.168.1.10\r\n"
        b"t=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 8 101\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
    )


def test_build_offer_wideband_payload_types() -> None:
    caps = Capabilities(
        codecs=(
            CodecSpec(name="opus", clock_rate=48000, channels=2, fmtp="useinbandfec=1"),
            CodecSpec(name="G722", clock_rate=8000),
            CodecSpec(name="PCMU", clock_rate=8000),
        )
    )
    offer = build_offer(
        caps,
        address="::1",
        audio_port=40000,
        session_id=1,
        session_version=1,
        direction="sendonly",
    )
    audio = offer.media[0]
    assert audio.formats == ["96", "9", "0", "101", "102"]
    assert audio.attribute_values("rtpmap") == [
        "96 opus/48000/2",
        "9 G722/8000",
        "0 PCMU/8000",
        "101 telephone-event/48000",
        "102 telephone-event/8000",
    ]
    assert audio.fmtp(96) == "useinbandfec=1"
    assert audio.direction is SO
    assert str(offer.connection) == "IN IP6 ::1"
    # our own offer is acceptable to our own answerer
    plan = negotiate(offer, caps)
    assert plan.audio is not None and plan.audio.codec.name == "opus"
    assert plan.audio.telephone_event_pt == 101
    assert plan.audio.local_direction is RO


def test_build_offer_rejects_bad_port() -> None:
    with pytest.raises(ValueError, match="bad audio port"):
        build_offer(G711, address="127.0.0.1", audio_port=0, session_id=1, session_version=1)


def _our_offer() -> SessionDescription:
    return build_offer(G711, address="10.0.0.10", audio_port=40000, session_id=3, session_version=3)


def test_negotiate_answer_from_our_own_answerer() -> None:
    offer = _our_offer()
    answer, _ = answer_offer(
        offer,
        Capabilities.from_names(["PCMA/8000"]),
        address="10.0.0.20",
        session_id=4,
        session_version=4,
        ports={0: 6000},
    )
    accepted = negotiate_answer(offer, SessionDescription.parse(answer.to_bytes()))
    assert accepted == AcceptedAudio(
        index=0,
        codec=Codec(payload_type=8, name="PCMA", clock_rate=8000),
        telephone_event_pt=101,
        remote_address=("10.0.0.20", 6000),
        remote_rtcp=("10.0.0.20", 6001),
        remote_direction=SR,
        local_direction=SR,
        on_hold=False,
    )


@pytest.mark.parametrize(
    ("answer_media", "expected"),
    [
        ("m=audio 6000 RTP/AVP 0\na=recvonly\n", (0, RO, SO, False)),
        ("m=audio 6000 RTP/AVP 0\na=sendonly\n", (0, SO, RO, True)),
        ("m=audio 6000 RTP/AVP 8 101\na=inactive\n", (8, IN, IN, True)),
        ("m=audio 6000 RTP/AVP 118\na=rtpmap:118 PCMU/8000\n", (118, SR, SR, False)),
    ],
)
def test_negotiate_answer_directions(
    answer_media: str, expected: tuple[int, Direction, Direction, bool]
) -> None:
    answer = sdp("v=0\no=- 5 5 IN IP4 10.0.0.20\ns=-\nc=IN IP4 10.0.0.20\nt=0 0\n" + answer_media)
    accepted = negotiate_answer(_our_offer(), answer)
    assert accepted is not None
    got = (
        accepted.codec.payload_type,
        accepted.remote_direction,
        accepted.local_direction,
        accepted.on_hold,
    )
    assert got == expected


def test_negotiate_answer_rejected_stream_is_none() -> None:
    answer = sdp(
        "v=0\no=- 5 5 IN IP4 10.0.0.20\ns=-\nc=IN IP4 10.0.0.20\nt=0 0\nm=audio 0 RTP/AVP 0\n"
    )
    assert negotiate_answer(_our_offer(), answer) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "answer has 0 m-lines, offer had 1"),
        ("m=audio 6000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n", "answer has 2 m-lines"),
        ("m=video 6000 RTP/AVP 31\n", "m-line 0 is video"),
        ("m=audio 6000 RTP/SAVP 0\n", "answered with RTP/SAVP"),
        ("m=audio 6000 RTP/AVP 18\n", "no codec from our offer"),
    ],
)
def test_negotiate_answer_invalid(body: str, reason: str) -> None:
    answer = sdp("v=0\no=- 5 5 IN IP4 10.0.0.20\ns=-\nc=IN IP4 10.0.0.20\nt=0 0\n" + body)
    with pytest.raises(InvalidAnswerError, match=reason):
        negotiate_answer(_our_offer(), answer)


def test_negotiate_answer_without_connection() -> None:
    answer = sdp("v=0\no=- 5 5 IN IP4 10.0.0.20\ns=-\nt=0 0\nm=audio 6000 RTP/AVP 0\n")
    with pytest.raises(InvalidAnswerError, match="no connection address"):
        negotiate_answer(_our_offer(), answer)


# -- value types ---------------------------------------------------------------------------------


def test_codec_spec_parse_and_validation() -> None:
    assert CodecSpec.parse("opus/48000/2") == CodecSpec(
        name="opus", clock_rate=48000, channels=2, fmtp="useinbandfec=1"
    )
    assert str(CodecSpec.parse(" G722/8000 ")) == "G722/8000"
    assert str(CodecSpec.parse("opus/48000/2")) == "opus/48000/2"
    for bad in ("PCMU", "PCMU/x", "/8000", "PCMU/8000/1/2", "PCMU/0"):
        with pytest.raises(ValueError):
            CodecSpec.parse(bad)
    with pytest.raises(ValueError):
        Capabilities(codecs=())
    with pytest.raises(ValueError):
        Capabilities(ptime=5)
    with pytest.raises(ValueError):
        Codec(payload_type=128, name="x", clock_rate=8000)


# -- codecs (issue 3): offerer's preference among opus, G722, PCMU, PCMA; CN ignored ------------

CONFIGURED = Capabilities.from_names(["opus/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000"])


@pytest.mark.parametrize(
    ("vector", "codec", "te"),
    [
        ("blink_audio_chat.sdp", (113, "opus", 48000, 2), (101, 48000)),
        ("baresip_offer.sdp", (96, "opus", 48000, 2), None),  # its telephone-event is 8000
        ("linphone_offer.sdp", (96, "opus", 48000, 2), (101, 48000)),
        ("pjsua2_offer.sdp", (0, "PCMU", 8000, 1), (121, 8000)),  # lists 0 before 9
        ("blink_ipv6_offer.sdp", (9, "G722", 8000, 1), (101, 8000)),
    ],
)
def test_configured_codecs_follow_the_offerer(
    vector: str, codec: tuple[int, str, int, int], te: tuple[int, int] | None
) -> None:
    offer = parse(vector)
    answer, plan = answer_offer(
        offer, CONFIGURED, address="127.0.0.1", session_id=1, session_version=1,
        ports={i: 50000 for i in range(len(offer.media))},
    )
    audio = plan.audio
    assert audio is not None
    got = audio.codec
    assert (got.payload_type, got.name, got.clock_rate, got.channels) == codec
    if te is None:
        assert audio.telephone_event_pt is None
    else:
        assert audio.telephone_event_pt == te[0]
        assert f"{te[0]} telephone-event/{te[1]}" in answer.media[audio.index].attribute_values(
            "rtpmap"
        )
    line = answer.media[audio.index]
    rtpmap = f"{codec[0]} {codec[1]}/{codec[2]}" + (f"/{codec[3]}" if codec[3] != 1 else "")
    assert line.attribute_values("rtpmap")[0] == rtpmap
    if codec[1] == "opus":  # RFC 7587 6.1: we decode in-band FEC
        assert f"{codec[0]} useinbandfec=1" in line.attribute_values("fmtp")


def test_g722_offer_from_blink_when_opus_is_not_configured() -> None:
    caps = Capabilities.from_names(["G722/8000", "PCMU/8000"])
    plan = negotiate(parse("blink_audio_chat.sdp"), caps)
    assert plan.audio is not None
    assert (plan.audio.codec.payload_type, plan.audio.codec.name) == (9, "G722")
    assert plan.audio.telephone_event_pt == 100  # RFC 3551 4.5.2: G.722's clock is 8000


@pytest.mark.parametrize(
    "offer_text",
    [
        # linphone style: static CN (13) and a wideband dynamic CN listed with the codecs
        "m=audio 7078 RTP/AVP 9 0 13 101 102\na=rtpmap:9 G722/8000\na=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:13 CN/8000\na=rtpmap:101 telephone-event/8000\na=rtpmap:102 CN/16000\n",
        # CN listed first (a peer that prefers sending comfort noise), without rtpmap for 13
        "m=audio 7078 RTP/AVP 13 9 0 101\na=rtpmap:101 telephone-event/8000\n",
    ],
)
def test_comfort_noise_is_understood_and_left_out(offer_text: str) -> None:
    offer = sdp("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n" + offer_text)
    answer, plan = answer_offer(
        offer, CONFIGURED, address="127.0.0.1", session_id=1, session_version=1, ports={0: 50000}
    )
    assert plan.audio is not None
    assert (plan.audio.codec.payload_type, plan.audio.codec.name) == (9, "G722")
    line = answer.media[0]
    assert line.formats == ["9", "101"]
    assert not any("CN" in v for v in line.attribute_values("rtpmap"))


def test_comfort_noise_alone_is_not_acceptable() -> None:
    offer = sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"
        "m=audio 7078 RTP/AVP 13 96\na=rtpmap:96 CN/16000\n"
    )
    with pytest.raises(NoAcceptableMedia):
        negotiate(offer, CONFIGURED)


def test_build_offer_with_configured_codecs() -> None:
    offer = build_offer(CONFIGURED, address="127.0.0.1", audio_port=50000, session_id=1,
                        session_version=1)
    line = offer.media[0]
    assert line.formats == ["96", "9", "0", "8", "101", "102"]
    assert line.attribute_values("rtpmap") == [
        "96 opus/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000",
        "101 telephone-event/48000", "102 telephone-event/8000",
    ]
    assert "96 useinbandfec=1" in line.attribute_values("fmtp")
