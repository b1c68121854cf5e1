"""Tests for sylkbox/sdp/crypto.py (RFC 4568 a=crypto) and the SRTP side of offer/answer."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from sylkbox.sdp import (
    Capabilities,
    InvalidAnswerError,
    NoAcceptableMedia,
    SessionDescription,
    answer_offer,
    build_answer,
    build_offer,
    negotiate,
    negotiate_answer,
)
from sylkbox.sdp.crypto import (
    CryptoAttribute,
    CryptoParseError,
    KeyParam,
    SrtpPolicy,
    choose_crypto,
    new_inline_key,
    offer_lines,
    parse_crypto_lines,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "sdp"
OPTIONAL = Capabilities(srtp=SrtpPolicy.OPTIONAL)
REQUIRED = Capabilities(srtp=SrtpPolicy.REQUIRED)
DISABLED = Capabilities(srtp=SrtpPolicy.DISABLED)
POLICIES = {"optional": OPTIONAL, "required": REQUIRED, "disabled": DISABLED}

# RFC 4568 examples (sections 4, 5.1, 6.1, 6.3.x) and real-peer lines
RFC_SECTION_4 = (
    "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
)
RFC_OFFER_2 = (
    "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4 "
    "FEC_ORDER=FEC_SRTP"
)
RFC_TWO_KEYS = (
    "1 AES_CM_128_HMAC_SHA1_80 "
    "inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:4;"
    "inline:QUJjZGVmZ2hpSktMbW9QcXJzVHVWd1l6MTIzNDU2|2^20|2:4"
)
BLINK_80 = "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx"
BLINK_32 = "2 AES_CM_128_HMAC_SHA1_32 inline:wkBqJZ4iY8xsn0ZNUYdPjULj1pgxjpq+x1qnOY0j"
PJSIP_LIFETIME_31 = "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|2^31"


def sdp(text: str) -> SessionDescription:
    return SessionDescription.parse(text.replace("\n", "\r\n"))


def offer(proto: str, *crypto: str) -> SessionDescription:
    lines = "".join(f"a=crypto:{c}\n" for c in crypto)
    return sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"
        f"m=audio 5000 {proto} 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n"
        f"{lines}a=sendrecv\n"
    )


# -- parse / serialize --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line", [RFC_SECTION_4, RFC_OFFER_2, RFC_TWO_KEYS, BLINK_80, BLINK_32, PJSIP_LIFETIME_31]
)
def test_round_trip_exact(line: str) -> None:
    assert CryptoAttribute.parse(line).serialize() == line


def test_rfc_section_4_fields() -> None:
    attr = CryptoAttribute.parse(RFC_SECTION_4)
    assert (attr.tag, attr.suite, attr.session_params) == (1, "AES_CM_128_HMAC_SHA1_80", ())
    (key,) = attr.key_params
    assert key.lifetime == 2**20 and key.mki == (1, 32)
    assert len(key.key_bytes) == 30
    assert attr.usable() == "MKI is not supported"


def test_usable_reasons() -> None:
    assert CryptoAttribute.parse(BLINK_80).usable() is None
    assert CryptoAttribute.parse(BLINK_32).usable() is None
    assert CryptoAttribute.parse(PJSIP_LIFETIME_31).usable() is None
    assert CryptoAttribute.parse(RFC_TWO_KEYS).usable() == "more than one master key"
    assert CryptoAttribute.parse(RFC_OFFER_2).usable() == "MKI is not supported"
    short = "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|2^20"
    assert CryptoAttribute.parse(short).usable() == (
        "key lifetime too short (re-keying is not supported)"
    )
    decimal = "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|1048576"
    assert CryptoAttribute.parse(decimal).key_params[0].lifetime == 2**20
    assert CryptoAttribute.parse(BLINK_80 + " UNENCRYPTED_SRTP").usable() == (
        "unsupported session parameter UNENCRYPTED_SRTP"
    )
    assert CryptoAttribute.parse(BLINK_80 + " KDR=23").usable() == (
        "unsupported session parameter KDR"
    )
    assert CryptoAttribute.parse(BLINK_80 + " WSH=256").usable() is None
    gcm = "3 AEAD_AES_128_GCM inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx"
    assert CryptoAttribute.parse(gcm).usable() == "unsupported crypto-suite AEAD_AES_128_GCM"
    short_key = "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 16).decode()
    assert CryptoAttribute.parse(short_key).usable() == "key||salt must be 30 bytes"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",  # no key params
        "x AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx",
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx",
        "1 AES-CM inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx",
        "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key",
        "1 AES_CM_128_HMAC_SHA1_80 inline:",
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!",
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dxy",  # bad length
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|2^x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|2^20|1:4|x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx|2^99",
    ],
)
def test_malformed_lines(value: str) -> None:
    with pytest.raises(CryptoParseError):
        CryptoAttribute.parse(value)


def test_malformed_lines_are_skipped_not_fatal() -> None:
    parsed = parse_crypto_lines(["garbage", BLINK_32])
    assert isinstance(parsed[0], CryptoParseError)
    assert isinstance(parsed[1], CryptoAttribute)
    chosen = choose_crypto(["garbage", RFC_SECTION_4, BLINK_32, BLINK_80])
    assert chosen is not None and chosen.tag == 2  # first usable, in the offerer's order


def test_keys_never_in_repr_or_errors() -> None:
    attr = CryptoAttribute.parse(BLINK_80)
    assert "7Q8dx" not in repr(attr)
    assert "7Q8dx" not in repr(attr.key_params)
    assert "<hidden>" in repr(attr)
    with pytest.raises(CryptoParseError) as info:
        CryptoAttribute.parse("1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6Z*")
    assert "7Q8dx" not in str(info.value)
    bad = sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5000 RTP/AVP 0\n"
    )
    assert bad.media  # a valid SDP parses; an SDP parse error never quotes a crypto line:
    with pytest.raises(Exception) as sdp_error:
        SessionDescription.parse(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx"
            "\x00\r\n"
        )
    assert "7Q8dx" not in str(sdp_error.value)


def test_new_keys_and_offer_lines() -> None:
    key = new_inline_key()
    assert len(base64.b64decode(key)) == 30 and key != new_inline_key()
    lines = offer_lines()
    assert [(c.tag, c.suite) for c in lines] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert all(c.usable() is None for c in lines)
    assert lines[0].key != lines[1].key
    assert KeyParam(key_salt=key).serialize() == f"inline:{key}"


# -- negotiation matrix (RFC 4568 7.1.2, media.srtp) --------------------------------------------

BLINK = SessionDescription.parse((VECTORS / "blink_audio_chat.sdp").read_bytes())
UNUSABLE_SAVP = SessionDescription.parse((VECTORS / "srtp_savp_offer.sdp").read_bytes())
OFFERS = {
    "savp": offer("RTP/SAVP", BLINK_80, BLINK_32),
    "avp_crypto": BLINK,  # Blink's opportunistic SRTP: RTP/AVP with a=crypto
    "avp_plain": offer("RTP/AVP"),
    "savp_unusable": UNUSABLE_SAVP,  # only an MKI + 2^20 line
    "savp_no_crypto": offer("RTP/SAVP"),
    "avp_unusable": offer("RTP/AVP", RFC_SECTION_4),
}
# (offer, policy) -> (profile, chosen tag or None) or the rejection reason
MATRIX: dict[tuple[str, str], tuple[str, int | None] | str] = {
    ("savp", "optional"): ("RTP/SAVP", 1),
    ("savp", "required"): ("RTP/SAVP", 1),
    ("savp", "disabled"): "SRTP (RTP/SAVP) disabled",
    ("avp_crypto", "optional"): ("RTP/AVP", 1),
    ("avp_crypto", "required"): ("RTP/AVP", 1),
    ("avp_crypto", "disabled"): ("RTP/AVP", None),
    ("avp_plain", "optional"): ("RTP/AVP", None),
    ("avp_plain", "required"): "SRTP required",
    ("avp_plain", "disabled"): ("RTP/AVP", None),
    ("savp_unusable", "optional"): "no usable a=crypto line",
    ("savp_unusable", "required"): "no usable a=crypto line",
    ("savp_unusable", "disabled"): "SRTP (RTP/SAVP) disabled",
    ("savp_no_crypto", "optional"): "RTP/SAVP without a=crypto",
    ("savp_no_crypto", "required"): "RTP/SAVP without a=crypto",
    ("savp_no_crypto", "disabled"): "SRTP (RTP/SAVP) disabled",
    ("avp_unusable", "optional"): ("RTP/AVP", None),
    ("avp_unusable", "required"): "SRTP required: no usable a=crypto line",
    ("avp_unusable", "disabled"): ("RTP/AVP", None),
}


def test_matrix_is_complete() -> None:
    assert set(MATRIX) == {(o, p) for o in OFFERS for p in POLICIES}


@pytest.mark.parametrize(("name", "policy"), sorted(MATRIX))
def test_negotiation_matrix(name: str, policy: str) -> None:
    expected = MATRIX[(name, policy)]
    the_offer = OFFERS[name]
    if isinstance(expected, str):
        with pytest.raises(NoAcceptableMedia) as info:
            negotiate(the_offer, POLICIES[policy])
        assert info.value.status_hint == 488
        assert f"m-line 0 audio: {expected}" in info.value.rejections
        return
    plan = negotiate(the_offer, POLICIES[policy])
    audio = plan.audio
    assert audio is not None
    profile, tag = expected
    assert audio.profile == profile
    assert (audio.crypto.tag if audio.crypto else None) == tag
    key = new_inline_key()
    answer = build_answer(
        the_offer,
        plan,
        address="10.0.0.9",
        local_ports={audio.index: 7000},
        session_id=1,
        session_version=1,
        local_keys={audio.index: key},
    )
    answered = answer.media[audio.index]
    assert answered.proto == profile  # the answer keeps the offer's profile
    crypto = answered.attribute_values("crypto")
    if tag is None:
        assert crypto == []
    else:
        assert audio.crypto is not None
        assert crypto == [f"{tag} {audio.crypto.suite} inline:{key}"]


def test_blink_answer_exact_bytes_with_srtp() -> None:
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    answer, plan = answer_offer(
        BLINK,
        OPTIONAL,
        address="192.168.1.10",
        session_id=5,
        session_version=1,
        ports={0: 50000},
        local_keys={0: key},
    )
    assert plan.audio is not None and plan.audio.crypto is not None
    assert plan.audio.crypto.key == "7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx"  # the remote's
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
        b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key.encode() + b"\r\n"
        b"a=sendrecv\r\n"
        b"m=message 0 TCP/TLS/MSRP *\r\n"
    )


def test_the_offerers_preference_wins() -> None:
    plan = negotiate(offer("RTP/SAVP", BLINK_32.replace("2 ", "7 ", 1), BLINK_80), OPTIONAL)
    assert plan.audio is not None and plan.audio.crypto is not None
    assert (plan.audio.crypto.tag, plan.audio.crypto.suite) == (7, "AES_CM_128_HMAC_SHA1_32")


def test_an_unusable_first_line_falls_back_to_the_next() -> None:
    plan = negotiate(offer("RTP/SAVP", RFC_SECTION_4, "garbage", BLINK_32), REQUIRED)
    assert plan.audio is not None and plan.audio.crypto is not None
    assert plan.audio.crypto.tag == 2


def test_answer_without_local_key_is_a_local_error() -> None:
    plan = negotiate(OFFERS["savp"], OPTIONAL)
    with pytest.raises(ValueError, match="no local SRTP key"):
        build_answer(
            OFFERS["savp"], plan, address="10.0.0.9", local_ports={0: 7000},
            session_id=1, session_version=1,
        )


# -- our offers (dial-out) and their answers ----------------------------------------------------


def _our(policy: Capabilities, crypto: tuple[CryptoAttribute, ...]) -> SessionDescription:
    return build_offer(
        policy, address="10.0.0.10", audio_port=40000, session_id=3, session_version=3,
        crypto=crypto,
    )


def test_build_offer_profiles() -> None:
    lines = offer_lines()
    required = _our(REQUIRED, lines).media[0]
    optional = _our(OPTIONAL, lines).media[0]
    disabled = _our(DISABLED, lines).media[0]
    assert required.proto == "RTP/SAVP"
    assert optional.proto == "RTP/AVP"  # opportunistic, as Blink offers
    assert disabled.proto == "RTP/AVP" and not disabled.has_attribute("crypto")
    for media in (required, optional):
        assert media.attribute_values("crypto") == [c.serialize() for c in lines]
        assert media.attributes[-1] == ("sendrecv", None)
    with pytest.raises(ValueError, match="SRTP is required"):
        _our(REQUIRED, ())


def _answer(proto: str, *crypto: str) -> SessionDescription:
    lines = "".join(f"a=crypto:{c}\n" for c in crypto)
    return sdp(
        "v=0\no=- 5 5 IN IP4 10.0.0.20\ns=-\nc=IN IP4 10.0.0.20\nt=0 0\n"
        f"m=audio 6000 {proto} 0\na=rtpmap:0 PCMU/8000\n{lines}"
    )


def test_negotiate_answer_reads_the_chosen_line() -> None:
    lines = offer_lines()
    ours = _our(REQUIRED, lines)
    remote_key = new_inline_key()
    accepted = negotiate_answer(
        ours, _answer("RTP/SAVP", f"2 AES_CM_128_HMAC_SHA1_32 inline:{remote_key}")
    )
    assert accepted is not None and accepted.crypto is not None
    assert (accepted.crypto.tag, accepted.crypto.key) == (2, remote_key)
    assert accepted.local_crypto == lines[1]
    assert accepted.profile == "RTP/SAVP"


def test_negotiate_answer_opportunistic_plain_is_fine() -> None:
    accepted = negotiate_answer(_our(OPTIONAL, offer_lines()), _answer("RTP/AVP"))
    assert accepted is not None and accepted.crypto is None and accepted.local_crypto is None


@pytest.mark.parametrize(
    ("proto", "crypto", "reason"),
    [
        ("RTP/SAVP", (), "RTP/SAVP answered without a=crypto"),
        ("RTP/SAVP", (BLINK_80, BLINK_32), "one a=crypto line"),
        ("RTP/SAVP", ("9 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40,), "tag 9 was not offered"),
        ("RTP/SAVP", ("1 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40,), "tag 1 was not offered"),
        ("RTP/SAVP", (RFC_SECTION_4,), "unusable a=crypto line"),
        ("RTP/AVP", (BLINK_80,), "answered with RTP/AVP"),
    ],
)
def test_negotiate_answer_invalid_crypto(proto: str, crypto: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidAnswerError, match=reason):
        negotiate_answer(_our(REQUIRED, offer_lines()), _answer(proto, *crypto))


def test_our_answer_is_read_back_by_negotiate_answer() -> None:
    """Round trip through both halves: our offer, our own answerer, our answer reader."""
    lines = offer_lines()
    ours = _our(OPTIONAL, lines)
    key = new_inline_key()
    caps = dataclasses.replace(OPTIONAL, codecs=OPTIONAL.codecs)
    answer, plan = answer_offer(
        ours, caps, address="10.0.0.20", session_id=4, session_version=4,
        ports={0: 6000}, local_keys={0: key},
    )
    assert plan.audio is not None and plan.audio.crypto == lines[0]
    accepted = negotiate_answer(ours, SessionDescription.parse(answer.to_bytes()))
    assert accepted is not None and accepted.crypto is not None
    assert accepted.crypto.key == key and accepted.local_crypto == lines[0]
