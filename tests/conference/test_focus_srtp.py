"""The focus with SRTP (SDES, RFC 4568): our a=crypto in answers, keys to the media port,
re-INVITE key handling, and the three `media.srtp` modes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sylkbox.config import Config, ConfigError, MediaConfig, parse_config
from sylkbox.sdp import SessionDescription
from sylkbox.sdp.crypto import CryptoAttribute, new_inline_key
from tests.helpers.fakes import FocusEnv, audio_sdp, drain, parse_request, received

VECTORS = Path(__file__).parent.parent / "vectors" / "sdp"
BLINK_KEY = "7Q8dxkFEXQn0QZsVnJHBHY6ZTFzHdhYAwq8Qc4Dx"


def savp_offer(key: str, *, version: int = 1, direction: str = "sendrecv") -> bytes:
    return (
        f"v=0\r\no=- 42 {version} IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        "m=audio 50010 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{key}\r\na={direction}\r\n"
    ).encode()


def env_with(srtp: str) -> FocusEnv:
    return FocusEnv.create(Config(media=MediaConfig(srtp=srtp)))


@pytest.fixture
async def env() -> AsyncIterator[FocusEnv]:
    env = FocusEnv.create()
    yield env
    await env.close()


def our_crypto(body: bytes) -> CryptoAttribute:
    [value] = SessionDescription.parse(body).media[0].attribute_values("crypto")
    return CryptoAttribute.parse(value)


async def test_blink_opportunistic_offer_is_answered_with_srtp(env: FocusEnv) -> None:
    response = await env.phone().call((VECTORS / "blink_audio_chat.sdp").read_bytes())
    assert response.status == 200
    audio = SessionDescription.parse(response.body).media[0]
    assert audio.proto == "RTP/AVP"
    ours = our_crypto(response.body)
    assert (ours.tag, ours.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert ours.key != BLINK_KEY and len(base64.b64decode(ours.key)) == 30
    [(_, spec)] = env.media.added
    assert spec.srtp is not None
    assert (spec.srtp.suite, spec.srtp.local_key, spec.srtp.remote_key) == (
        "AES_CM_128_HMAC_SHA1_80", ours.key, BLINK_KEY
    )
    assert ours.key not in repr(spec)


async def test_reinvite_keeps_keys_unless_the_remote_key_changes(env: FocusEnv) -> None:
    alice = env.phone()
    remote = new_inline_key()
    response = await alice.call(savp_offer(remote))
    assert response.status == 200
    first = our_crypto(response.body)
    assert (first.tag, first.suite) == (3, "AES_CM_128_HMAC_SHA1_32")
    assert SessionDescription.parse(response.body).media[0].proto == "RTP/SAVP"

    hold = await alice.in_dialog(
        "INVITE", body=savp_offer(remote, version=2, direction="sendonly"),
        content_type="application/sdp",
    )
    held = env.sip.final(hold)
    assert our_crypto(held.body).key == first.key  # same remote key: ours is kept
    assert env.media.updated[-1].srtp == env.media.added[0][1].srtp

    rekey = new_inline_key()
    again = await alice.in_dialog(
        "INVITE", body=savp_offer(rekey, version=3), content_type="application/sdp"
    )
    answer = our_crypto(env.sip.final(again).body)
    assert answer.key != first.key  # the remote re-keyed: so do we
    srtp = env.media.updated[-1].srtp
    assert srtp is not None and (srtp.local_key, srtp.remote_key) == (answer.key, rekey)

    plain = await alice.in_dialog(
        "INVITE", body=audio_sdp("192.0.2.20", 50010, version=4), content_type="application/sdp"
    )
    assert env.sip.final(plain).status == 200  # optional: back to plain RTP
    assert env.media.updated[-1].srtp is None


async def test_required_refuses_plain_offers() -> None:
    env = env_with("required")
    try:
        assert (await env.phone("plain").call(audio_sdp("192.0.2.20", 50010))).status == 488
        response = await env.phone("secure").call(savp_offer(new_inline_key()))
        assert response.status == 200
    finally:
        await env.close()


async def test_disabled_rejects_savp_and_ignores_crypto() -> None:
    env = env_with("disabled")
    try:
        assert (await env.phone("savp").call(savp_offer(new_inline_key()))).status == 488
        blink = await env.phone("blink").call((VECTORS / "blink_audio_chat.sdp").read_bytes())
        assert blink.status == 200
        assert not SessionDescription.parse(blink.body).media[0].has_attribute("crypto")
        assert env.media.added[-1][1].srtp is None
    finally:
        await env.close()


async def _dial_out_answered(env: FocusEnv, answer_crypto: str | None) -> tuple[
    SessionDescription, list[object]
]:
    env.sip.auto_reply["NOTIFY"] = 200
    caller = savp_offer(new_inline_key())  # acceptable in every mode but "disabled"
    assert (await env.phone("alice").call(caller)).status == 200
    refer = parse_request((VECTORS.parent / "conference" / "blink_refer_add.sip").read_bytes())
    env.focus.handle_request(received(refer))
    await drain()
    [invite] = env.sip.pending("INVITE")
    offer = SessionDescription.parse(invite.request.body)
    proto = offer.media[0].proto
    body = (
        "v=0\r\no=- 7 7 IN IP4 192.0.2.40\r\ns=-\r\nc=IN IP4 192.0.2.40\r\nt=0 0\r\n"
        f"m=audio 30000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n"
        + (f"a=crypto:{answer_crypto}\r\n" if answer_crypto else "")
    ).encode()
    invite.reply(200, contact="<sip:carol@192.0.2.40:5060>", body=body,
                 content_type="application/sdp")
    await drain()
    return offer, list(env.media.updated)


async def test_dial_out_offers_crypto_and_reads_the_answer(env: FocusEnv) -> None:
    remote = new_inline_key()
    offer, updated = await _dial_out_answered(env, f"2 AES_CM_128_HMAC_SHA1_32 inline:{remote}")
    audio = offer.media[0]
    assert audio.proto == "RTP/AVP"  # optional: opportunistic, as Blink offers
    lines = [CryptoAttribute.parse(v) for v in audio.attribute_values("crypto")]
    assert [(c.tag, c.suite) for c in lines] == [
        (1, "AES_CM_128_HMAC_SHA1_80"), (2, "AES_CM_128_HMAC_SHA1_32")
    ]
    srtp = updated[-1].srtp  # type: ignore[attr-defined]
    assert srtp is not None
    assert (srtp.suite, srtp.local_key, srtp.remote_key) == (
        "AES_CM_128_HMAC_SHA1_32", lines[1].key, remote
    )


async def test_dial_out_required_offers_savp() -> None:
    env = env_with("required")
    try:
        remote = new_inline_key()
        offer, updated = await _dial_out_answered(
            env, f"1 AES_CM_128_HMAC_SHA1_80 inline:{remote}"
        )
        assert offer.media[0].proto == "RTP/SAVP"
        srtp = updated[-1].srtp  # type: ignore[attr-defined]
        assert srtp is not None and srtp.remote_key == remote
    finally:
        await env.close()


def test_config_validates_media_srtp() -> None:
    assert parse_config({"media": {"srtp": "required"}}).media.srtp == "required"
    assert Config().media.srtp == "optional"
    with pytest.raises(ConfigError, match=r"media\.srtp"):
        parse_config({"media": {"srtp": "sometimes"}})
