"""RFC 5547 file transfer streams in sylkbox/sdp/offer_answer.py (BLINK.md 5): an upload
(``sendonly``) and a download (``recvonly``, name and hash only) as Blink offers them, our
answers (reverse direction, selector, ``x-file-offset``, the transfer id), and the offers we
refuse (``sendrecv``, a transport mismatch, a transfer beside other streams)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sylkbox.sdp import (
    AcceptedFile,
    Capabilities,
    MsrpPolicy,
    Rejected,
    SessionDescription,
    build_answer,
    negotiate,
)
from sylkbox.sdp.errors import NoAcceptableMedia
from sylkbox.sdp.model import Direction
from sylkbox.sdp.msrp import Setup

VECTORS = Path(__file__).parent.parent / "vectors" / "sdp"
TLS = MsrpPolicy(tls=True)
OUR_PATH = "msrps://192.168.1.10:2855/a1b2c3d4e5f60718293a;tcp"
HASH = "sha-1:3A:85:E7:42:6D:1C:00:7F:A1:B4:9E:50:22:C8:F1:6B:DE:03:A9:77"
FULL = f'name:"report.pdf" type:application/pdf size:12345 hash:{HASH}'


def offer(name: str) -> SessionDescription:
    return SessionDescription.parse((VECTORS / name).read_bytes())


def answer_for(sdp: SessionDescription, selectors: dict[int, str] | None = None) -> bytes:
    plan = negotiate(sdp, Capabilities(), msrp=TLS)
    return build_answer(
        sdp,
        plan,
        address="192.168.1.10",
        local_ports={},
        session_id=1,
        session_version=1,
        local_paths={0: OUR_PATH},
        local_file_selectors=selectors,
    ).to_bytes()


def test_blink_push_is_an_upload() -> None:
    plan = negotiate(offer("blink_file_push.sdp"), Capabilities(), msrp=TLS)
    decision = plan.file
    assert isinstance(decision, AcceptedFile)
    assert plan.chat is None and plan.audio is None
    assert decision.upload
    assert decision.remote_direction is Direction.SENDONLY
    assert decision.local_direction is Direction.RECVONLY
    assert decision.file_selector == FULL
    assert decision.file_offset
    assert decision.transfer_id == "9d2c6a58-5f0e-4bd9-8a3c-0f6b1d2e4c7a"
    assert decision.local_setup is Setup.PASSIVE and not decision.we_connect
    assert decision.remote_path == ("msrps://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp",)


def test_upload_answer_exact_bytes() -> None:
    body = answer_for(offer("blink_file_push.sdp"))
    assert body.split(b"m=", 1)[1] == (
        b"message 2855 TCP/TLS/MSRP *\r\n"
        b"a=path:" + OUR_PATH.encode() + b"\r\n"
        b"a=accept-types:*\r\n"
        b"a=setup:passive\r\n"
        b"a=file-selector:" + FULL.encode() + b"\r\n"
        b"a=x-file-offset\r\n"
        b"a=file-transfer-id:9d2c6a58-5f0e-4bd9-8a3c-0f6b1d2e4c7a\r\n"
        b"a=recvonly\r\n"
    )


def test_blink_pull_is_a_download_answered_with_the_full_selector() -> None:
    sdp = offer("blink_file_pull.sdp")
    decision = negotiate(sdp, Capabilities(), msrp=TLS).file
    assert decision is not None and not decision.upload
    assert decision.file_selector == f'name:"report.pdf" hash:{HASH}'
    answer = SessionDescription.parse(answer_for(sdp, {0: FULL}))
    [media] = answer.media
    assert media.attribute("file-selector") == FULL
    assert answer.direction_for(media) is Direction.SENDONLY
    assert media.attribute("file-transfer-id") == "1b7e0c44-8a21-4f1e-9d35-6c2b7a8e0f13"


def _variant(old: str, new: str) -> SessionDescription:
    text = (VECTORS / "blink_file_push.sdp").read_text()
    assert old in text
    return SessionDescription.parse(text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("a=sendonly", "a=sendrecv", "sendonly or recvonly"),
        ("a=sendonly", "a=inactive", "sendonly or recvonly"),
        ("a=setup:active", "a=setup:holdconn", "holdconn"),
        ("a=file-selector:name", "a=file-selector: name", "MSRP"),
    ],
)
def test_unusable_file_streams(old: str, new: str, reason: str) -> None:
    sdp = _variant(old, new)
    if reason == "MSRP":  # a leading space is harmless: still accepted
        assert negotiate(sdp, Capabilities(), msrp=TLS).file is not None
        return
    with pytest.raises(NoAcceptableMedia) as info:
        negotiate(sdp, Capabilities(), msrp=TLS)
    assert reason in info.value.rejections[0]


def test_transport_mismatch_is_rejected() -> None:
    with pytest.raises(NoAcceptableMedia) as info:
        negotiate(offer("blink_file_push.sdp"), Capabilities(), msrp=MsrpPolicy(tls=False))
    assert "transport mismatch" in info.value.rejections[0]


def test_without_msrp_file_streams_are_rejected() -> None:
    with pytest.raises(NoAcceptableMedia):
        negotiate(offer("blink_file_push.sdp"), Capabilities())


def test_a_transfer_beside_audio_is_rejected_and_audio_kept() -> None:
    text = (VECTORS / "blink_file_push.sdp").read_text()
    head, media = text.split("m=message", 1)
    audio = "m=audio 50000 RTP/AVP 0\r\nc=IN IP4 192.168.1.20\r\na=sendrecv\r\n"
    plan = negotiate(SessionDescription.parse(head + audio + "m=message" + media),
                     Capabilities(), msrp=TLS)
    assert plan.audio is not None and plan.file is None
    rejected = plan.decisions[1]
    assert isinstance(rejected, Rejected) and "alone" in rejected.reason


def test_answer_needs_a_path() -> None:
    sdp = offer("blink_file_push.sdp")
    plan = negotiate(sdp, Capabilities(), msrp=TLS)
    with pytest.raises(ValueError, match="MSRP path"):
        build_answer(sdp, plan, address="192.168.1.10", local_ports={}, session_id=1,
                     session_version=1)
