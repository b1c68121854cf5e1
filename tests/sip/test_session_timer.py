"""Tests for sylkbox.sip.session_timer (RFC 4028) with wire messages and a fake clock."""

from __future__ import annotations

import pytest

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.message import Request, Response
from sylkbox.sip.parser import parse_message
from sylkbox.sip.session_timer import (
    Refresher,
    SessionExpires,
    SessionIntervalTooSmallError,
    SessionTimer,
)
from tests.helpers.clock import FakeClock


def invite(*extra: str) -> Request:
    lines = "".join(f"{line}\r\n" for line in extra)
    data = (
        "INVITE sip:room@box.local SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKst\r\n"
        "From: <sip:alice@example.org>;tag=a\r\n"
        "To: <sip:room@box.local>\r\n"
        "Call-ID: st-1@192.0.2.10\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@192.0.2.10>\r\n"
        f"{lines}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response(status: int, reason: str, *extra: str) -> Response:
    lines = "".join(f"{line}\r\n" for line in extra)
    data = (
        f"SIP/2.0 {status} {reason}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKout\r\n"
        "From: <sip:room@box.local>;tag=box\r\n"
        "To: <sip:bob@example.org>;tag=b\r\n"
        "Call-ID: out-1@box.local\r\n"
        "CSeq: 1 INVITE\r\n"
        f"{lines}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def test_session_expires_round_trip() -> None:
    se = SessionExpires.parse("1800 ; refresher=UAS")
    assert se == SessionExpires(1800, Refresher.UAS)
    assert str(se) == "1800;refresher=uas"
    assert str(SessionExpires.parse("90")) == "90"
    for bad in ("", "abc", "-5", "90;refresher=proxy"):
        with pytest.raises(RemoteProtocolError):
            SessionExpires.parse(bad)


def test_uas_rejects_small_interval_with_422_and_min_se() -> None:
    timer = SessionTimer()
    with pytest.raises(SessionIntervalTooSmallError) as info:
        timer.receive_request(invite("Supported: timer", "Session-Expires: 60"))
    assert info.value.status_hint == 422
    assert info.value.headers() == [("Min-SE", "90")]
    strict = SessionTimer(min_se=300)
    with pytest.raises(SessionIntervalTooSmallError) as info:
        strict.receive_request(invite("k: timer", "x: 200", "Min-SE: 120"))
    assert info.value.min_se == 300


def test_uas_lets_a_supporting_uac_refresh() -> None:
    clock = FakeClock()
    timer = SessionTimer()
    timer.receive_request(invite("Supported: replaces, timer", "Session-Expires: 1800"))
    assert timer.interval == 1800 and not timer.we_refresh
    assert timer.response_headers() == [
        ("Session-Expires", "1800;refresher=uac"),
        ("Require", "timer"),
    ]
    timer.start(clock.now)
    assert timer.refresh_at is None
    assert timer.expire_at == clock.now + 1800 - 32  # BYE: interval - min(32, interval/3)


def test_uas_refreshes_when_the_uac_lacks_support() -> None:
    clock = FakeClock()
    timer = SessionTimer(interval=600)
    timer.receive_request(invite("Session-Expires: 1800;refresher=uac"))
    assert timer.we_refresh and timer.interval == 600  # the UAS may shorten the interval
    assert timer.response_headers() == [("Session-Expires", "600;refresher=uas")]
    timer.start(clock.now)
    assert timer.refresh_at == clock.now + 300  # half the interval
    assert timer.expire_at == clock.now + 600 - 32


def test_uas_honours_refresher_param_and_peer_min_se() -> None:
    timer = SessionTimer(interval=90)
    timer.receive_request(
        invite("Supported: timer", "Session-Expires: 400;refresher=uas", "Min-SE: 200")
    )
    assert timer.interval == 200 and timer.we_refresh
    timer.start(0.0)
    assert timer.expire_at == 200 - 32
    short = SessionTimer()
    short.receive_request(invite("Supported: timer", "Session-Expires: 90"))
    short.start(0.0)
    assert short.expire_at == 60.0  # min(32, 90/3) = 30


def test_uas_without_session_expires_in_request_inserts_its_own() -> None:
    timer = SessionTimer()
    timer.receive_request(invite("Supported: timer"))
    assert timer.response_headers()[0] == ("Session-Expires", "1800;refresher=uac")
    bare = SessionTimer()
    bare.receive_request(invite())
    assert bare.response_headers() == [("Session-Expires", "1800;refresher=uas")]


def test_uac_request_headers_and_422_retry() -> None:
    timer = SessionTimer()
    assert timer.request_headers() == [
        ("Session-Expires", "1800"),
        ("Min-SE", "90"),
        ("Supported", "timer"),
    ]
    timer.receive_response(response(422, "Session Interval Too Small", "Min-SE: 2000"))
    assert timer.request_headers()[:2] == [("Session-Expires", "2000"), ("Min-SE", "2000")]
    with pytest.raises(RemoteProtocolError):
        timer.receive_response(response(422, "Session Interval Too Small"))


@pytest.mark.parametrize(
    ("param", "we_refresh", "refresh_param"), [("uac", True, "uac"), ("uas", False, "uas")]
)
def test_uac_reads_the_2xx(param: str, we_refresh: bool, refresh_param: str) -> None:
    clock = FakeClock()
    timer = SessionTimer()
    timer.receive_response(
        response(200, "OK", f"Session-Expires: 1200;refresher={param}", "Require: timer")
    )
    assert timer.interval == 1200 and timer.we_refresh is we_refresh
    assert timer.request_headers()[0] == ("Session-Expires", f"1200;refresher={refresh_param}")
    timer.start(clock.now)
    assert timer.refresh_at == (clock.now + 600 if we_refresh else None)
    clock.advance(600)
    timer.start(clock.now)  # a successful refresh moves both deadlines
    assert timer.expire_at == clock.now + 1200 - 32


def test_uac_without_session_expires_in_2xx_has_no_timer() -> None:
    timer = SessionTimer()
    timer.receive_response(response(180, "Ringing"))
    timer.receive_response(response(200, "OK"))
    assert timer.interval is None and timer.response_headers() == []
    timer.start(5.0)
    assert timer.refresh_at is None and timer.expire_at is None


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        SessionTimer(min_se=60)
    with pytest.raises(ValueError):
        SessionTimer(interval=100, min_se=120)
