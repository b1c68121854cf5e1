"""pjsua2 participants with SRTP (SDES, RFC 4568) in one room: audio goes through, encrypted.

alice and bob run pjsua2 with ``srtpUse = PJMEDIA_SRTP_MANDATORY`` (they offer RTP/SAVP),
carol with ``PJMEDIA_SRTP_OPTIONAL`` (RTP/AVP with a=crypto, the opportunistic mode Blink uses).
Each plays its own tone and records what it hears; an FFT of each recording shows the others'
tones and not its own.  pjsua2 reports the negotiated transport profile, the server's log shows
every stream keyed with SRTP, and no key material appears anywhere in that log.  With
``media.srtp = "required"`` a plain pjsua2 call is refused with 488.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.pjsua_agent import spawn_agent
from tests.helpers.server import RunningServer, serve
from tests.helpers.tone_room import assert_mix_minus, run_tone_room

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

TONES = {"alice": 440.0, "bob": 1000.0, "carol": 1700.0}
SRTP_USE = {"alice": "mandatory", "bob": "mandatory", "carol": "optional"}
STAGGER = 2.0
LAST_DURATION = 10.0


def test_srtp_participants_hear_each_other(server: RunningServer, tmp_path: Path) -> None:
    room = f"sip:secure@{server.host}:{server.sip_port}"
    result = run_tone_room(
        tmp_path,
        room,
        TONES,
        stagger=STAGGER,
        last_duration=LAST_DURATION,
        options=lambda name: {"srtp": SRTP_USE[name]},
    )
    summaries = result.summaries

    log = server.log_text()
    for name, summary in summaries.items():
        assert summary["confirmed"], (name, summary)
        assert summary["rx_packets"] > 100, (name, summary, log[-3000:])
    # pjsua2's own view of the negotiated media transport
    assert summaries["alice"]["proto"] == "RTP/SAVP", summaries["alice"]
    assert summaries["bob"]["proto"] == "RTP/SAVP", summaries["bob"]
    assert summaries["carol"]["proto"] == "RTP/AVP", summaries["carol"]  # opportunistic
    # the server answered with SRTP for all three: profile and suite logged, never a key
    answers = re.findall(r"answer to sip:(\w+)@\S+: (RTP/S?AVP) \w+, SRTP (\w+)", log)
    assert sorted(answers) == [
        ("alice", "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80"),
        ("bob", "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80"),
        ("carol", "RTP/AVP", "AES_CM_128_HMAC_SHA1_80"),
    ], log[-4000:]
    assert len(re.findall(r"stream \S+ SRTP AES_CM_128_HMAC_SHA1_80", log)) == 3, log[-4000:]
    assert "inline:" not in log and "local_key" not in log and "remote_key" not in log
    assert "dropped SRTP" not in log, log[-4000:]

    print("\n".join(assert_mix_minus(result)))


@pytest.fixture
def required_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path / "srv", config='srtp = "required"\n')


def test_required_srtp_refuses_plain_rtp(required_server: RunningServer, tmp_path: Path) -> None:
    room = f"sip:secure@{required_server.host}:{required_server.sip_port}"
    plain = spawn_agent(tmp_path, "plain", room, duration=1.0, answer_timeout=5.0)
    secure = spawn_agent(tmp_path, "secure", room, duration=2.0, srtp="mandatory")
    try:
        plain_summary = plain.finish(timeout=20)
        secure_summary = secure.finish(timeout=20)
    finally:
        plain.stop()
        secure.stop()
    assert not plain_summary["confirmed"]
    assert plain_summary["last_status"] == 488, plain_summary
    assert secure_summary["confirmed"], secure_summary
    assert secure_summary["proto"] == "RTP/SAVP", secure_summary
    assert secure_summary["rx_packets"] > 30, secure_summary
