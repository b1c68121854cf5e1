"""Tests for sylkbox/sdp/msrp.py and the chat part of sdp/offer_answer.py (RFC 4975 8,
RFC 6135, BLINK.md 4.1 and 7), on Blink's own offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sylkbox.sdp import (
    AcceptedAudio,
    AcceptedChat,
    Capabilities,
    Direction,
    MsrpPolicy,
    NoAcceptableMedia,
    Rejected,
    SessionDescription,
    Setup,
    build_answer,
    negotiate,
)
from sylkbox.sdp.msrp import (
    CHATROOM_CAPABILITIES,
    MsrpMedia,
    build_msrp_media,
    connection_role,
    parse_msrp_media,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "sdp"
G711 = Capabilities()
TLS = MsrpPolicy(tls=True)
TCP = MsrpPolicy(tls=False)
BLINK_PATH = "msrps://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp"
OUR_PATH = "msrps://192.168.1.10:2855/a1b2c3d4e5f60718293a;tcp"


def parse(name: str) -> SessionDescription:
    return SessionDescription.parse((VECTORS / name).read_bytes())


def chat_offer(
    *,
    proto: str = "TCP/TLS/MSRP",
    path: str | None = BLINK_PATH,
    setup: str | None = "active",
    direction: str = "sendrecv",
    extra: str = "",
    formats: str = "*",
    port: int = 2855,
) -> SessionDescription:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 192.168.1.20",
        "s=-",
        "c=IN IP4 192.168.1.20",
        "t=0 0",
        f"m=message {port} {proto} {formats}",
    ]
    if path is not None:
        lines.append(f"a=path:{path}")
    lines.append("a=accept-types:message/cpim text/* image/* application/im-iscomposing+xml")
    lines.append("a=accept-wrapped-types:text/* image/* application/im-iscomposing+xml")
    if setup is not None:
        lines.append(f"a=setup:{setup}")
    if extra:
        lines.append(extra)
    lines.append(f"a={direction}")
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


# ----------------------------------------------------------------------------- parsing
def test_parse_blink_chat_line() -> None:
    offer = parse("blink_audio_chat.sdp")
    media = parse_msrp_media(offer, offer.media[1])
    assert media == MsrpMedia(
        tls=True,
        path=(BLINK_PATH,),
        accept_types=("message/cpim", "text/*", "image/*", "application/im-iscomposing+xml"),
        accept_wrapped_types=("text/*", "image/*", "application/im-iscomposing+xml"),
        setup=Setup.ACTIVE,
        direction=Direction.SENDRECV,
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"proto": "TCP/MSRP", "path": BLINK_PATH}, "a=path scheme does not match"),
        ({"proto": "UDP/MSRP"}, "unsupported transport protocol UDP/MSRP"),
        ({"path": None}, "no a=path"),
        ({"path": "sip:alice@example.com"}, "bad MSRP URI"),
        ({"setup": "sideways"}, "bad a=setup value"),
        ({"formats": "text/plain"}, "format must be '*'"),
    ],
)
def test_parse_rejections(kwargs: dict[str, object], reason: str) -> None:
    offer = chat_offer(**kwargs)  # type: ignore[arg-type]
    result = parse_msrp_media(offer, offer.media[0])
    assert isinstance(result, str)
    assert reason in result


def test_absent_setup_means_active() -> None:
    offer = chat_offer(setup=None)
    parsed = parse_msrp_media(offer, offer.media[0])
    assert isinstance(parsed, MsrpMedia)
    assert parsed.setup is Setup.ACTIVE


def test_multi_hop_path_and_chatroom_are_kept() -> None:
    relay = "msrps://relay.example.com:2855;tcp"
    offer = chat_offer(path=f"{relay} {BLINK_PATH}", extra="a=chatroom:nickname private-messages")
    parsed = parse_msrp_media(offer, offer.media[0])
    assert isinstance(parsed, MsrpMedia)
    assert parsed.path == (relay, BLINK_PATH)
    assert parsed.chatroom == ("nickname", "private-messages")


@pytest.mark.parametrize(
    ("remote", "ours"),
    [
        (Setup.ACTIVE, Setup.PASSIVE),
        (Setup.ACTPASS, Setup.ACTIVE),
        (Setup.PASSIVE, Setup.ACTIVE),
        (Setup.HOLDCONN, None),
    ],
)
def test_connection_role_table(remote: Setup, ours: Setup | None) -> None:
    assert connection_role(remote) is ours


def test_build_line_as_sylkserver_focus_writes_it() -> None:
    media = build_msrp_media(path=OUR_PATH, tls=True, setup=Setup.PASSIVE)
    assert "\r\n".join(media.lines()) == (
        "m=message 2855 TCP/TLS/MSRP *\r\n"
        f"a=path:{OUR_PATH}\r\n"
        "a=accept-types:message/cpim\r\n"
        "a=accept-wrapped-types:*\r\n"
        "a=setup:passive\r\n"
        "a=chatroom:nickname private-messages com.ag-projects.screen-sharing"
        " com.ag-projects.zrtp-sas\r\n"
        "a=sendrecv"
    )
    assert CHATROOM_CAPABILITIES[0] == "nickname"


@pytest.mark.parametrize(
    ("path", "port"),
    [
        ("msrp://10.0.0.1:12000/abc;tcp", 12000),
        ("msrp://10.0.0.1/abc;tcp", 2855),
        ("msrps://[2001:db8::1]:2856/abc;tcp", 2856),
    ],
)
def test_build_line_port_is_the_path_port(path: str, port: int) -> None:
    media = build_msrp_media(path=path, tls=path.startswith("msrps"), setup=Setup.ACTIVE)
    assert media.port == port
    assert media.proto == ("TCP/TLS/MSRP" if path.startswith("msrps") else "TCP/MSRP")


def test_build_line_refuses_a_bad_path() -> None:
    with pytest.raises(ValueError, match="bad port"):
        build_msrp_media(path="msrp://10.0.0.1:99999/abc;tcp", tls=False, setup=Setup.ACTIVE)


# --------------------------------------------------------------------- offer/answer
def test_without_policy_chat_is_rejected_as_before() -> None:
    plan = negotiate(parse("blink_audio_chat.sdp"), G711)
    assert plan.chat is None
    assert isinstance(plan.decisions[1], Rejected)
    with pytest.raises(NoAcceptableMedia):
        negotiate(parse("blink_chat_only.sdp"), G711)


def test_blink_audio_and_chat_offer() -> None:
    offer = parse("blink_audio_chat.sdp")
    plan = negotiate(offer, G711, msrp=TLS)
    assert isinstance(plan.decisions[0], AcceptedAudio)
    assert plan.chat == AcceptedChat(
        index=1,
        remote_path=(BLINK_PATH,),
        remote_setup=Setup.ACTIVE,
        local_setup=Setup.PASSIVE,
        accept_types=("message/cpim", "text/*", "image/*", "application/im-iscomposing+xml"),
        accept_wrapped_types=("text/*", "image/*", "application/im-iscomposing+xml"),
        tls=True,
    )
    assert not plan.chat.we_connect
    answer = build_answer(
        offer,
        plan,
        address="192.168.1.10",
        local_ports={0: 50000},
        session_id=5,
        session_version=1,
        local_paths={1: OUR_PATH},
    )
    text = answer.to_bytes()
    # audio unchanged, then our chat line exactly as SylkServer's focus writes it
    assert text.endswith(
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
        b"m=message 2855 TCP/TLS/MSRP *\r\n"
        b"a=path:msrps://192.168.1.10:2855/a1b2c3d4e5f60718293a;tcp\r\n"
        b"a=accept-types:message/cpim\r\n"
        b"a=accept-wrapped-types:*\r\n"
        b"a=setup:passive\r\n"
        b"a=chatroom:nickname private-messages com.ag-projects.screen-sharing"
        b" com.ag-projects.zrtp-sas\r\n"
        b"a=sendrecv\r\n"
    )
    assert SessionDescription.parse(text).to_bytes() == text


def test_chat_only_offer_is_acceptable() -> None:
    offer = parse("blink_chat_only.sdp")
    plan = negotiate(offer, G711, msrp=TLS)
    assert plan.audio is None
    assert plan.chat is not None and plan.chat.index == 0
    answer = build_answer(
        offer,
        plan,
        address="192.168.1.10",
        local_ports={},
        session_id=5,
        session_version=1,
        local_paths={0: OUR_PATH},
    )
    [media] = answer.media
    assert (media.media, media.port, media.proto) == ("message", 2855, "TCP/TLS/MSRP")


def test_chat_answer_needs_a_path() -> None:
    offer = parse("blink_chat_only.sdp")
    plan = negotiate(offer, G711, msrp=TLS)
    with pytest.raises(ValueError, match="no local MSRP path"):
        build_answer(offer, plan, address="192.0.2.1", local_ports={}, session_id=1,
                     session_version=1)


@pytest.mark.parametrize(
    ("proto", "path", "policy"),
    [
        ("TCP/TLS/MSRP", BLINK_PATH, TCP),
        ("TCP/MSRP", "msrp://192.168.1.20:2855/0e5a9b1c7d3f8e2a4b6c;tcp", TLS),
    ],
)
def test_transport_mismatch_rejects_the_stream(proto: str, path: str, policy: MsrpPolicy) -> None:
    offer = parse("blink_audio_chat.sdp")
    offer.media[1].proto = proto
    offer.media[1].attributes[0] = ("path", path)
    plan = negotiate(offer, G711, msrp=policy)
    assert plan.chat is None
    rejected = plan.decisions[1]
    assert isinstance(rejected, Rejected)
    assert "transport mismatch" in rejected.reason
    answer = build_answer(offer, plan, address="192.0.2.1", local_ports={0: 50000},
                          session_id=1, session_version=1)
    assert answer.media[1].port == 0
    # a chat-only offer with the wrong transport has nothing acceptable: 488
    with pytest.raises(NoAcceptableMedia):
        negotiate(chat_offer(proto=proto, path=path), G711, msrp=policy)


def test_plain_tcp_chat_when_configured() -> None:
    offer = chat_offer(proto="TCP/MSRP", path="msrp://192.168.1.20:2855/abc;tcp")
    chat = negotiate(offer, G711, msrp=TCP).chat
    assert chat is not None and not chat.tls


@pytest.mark.parametrize(
    ("setup", "ours"),
    [
        ("active", Setup.PASSIVE),
        (None, Setup.PASSIVE),
        ("actpass", Setup.ACTIVE),
        ("passive", Setup.ACTIVE),
        ("ACTPASS", Setup.ACTIVE),
    ],
)
def test_setup_variants(setup: str | None, ours: Setup) -> None:
    chat = negotiate(chat_offer(setup=setup), G711, msrp=TLS).chat
    assert chat is not None
    assert chat.local_setup is ours
    assert chat.we_connect is (ours is Setup.ACTIVE)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"setup": "holdconn"}, "holdconn"),
        ({"direction": "sendonly"}, "must be sendrecv"),
        ({"extra": 'a=file-selector:name:"a.txt" type:text/plain size:3'}, "file transfer"),
        ({"port": 0}, "disabled"),
    ],
)
def test_unusable_chat_streams(kwargs: dict[str, object], reason: str) -> None:
    offer = chat_offer(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(NoAcceptableMedia) as info:
        negotiate(offer, G711, msrp=TLS)
    assert reason in info.value.rejections[0]


def test_only_the_first_chat_stream_is_taken() -> None:
    offer = chat_offer()
    offer.media.append(chat_offer(path=OUR_PATH).media[0])
    plan = negotiate(offer, G711, msrp=TLS)
    assert plan.chat is not None and plan.chat.index == 0
    second = plan.decisions[1]
    assert isinstance(second, Rejected) and "only one chat" in second.reason
