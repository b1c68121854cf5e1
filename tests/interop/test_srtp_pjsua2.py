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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.audio import level_db, rms_dbfs, tone_power, write_sine
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent
from tests.helpers.server import RunningServer, start_server

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

TONES = {"alice": 440.0, "bob": 1000.0, "carol": 1700.0}
SRTP_USE = {"alice": "mandatory", "bob": "mandatory", "carol": "optional"}
STAGGER = 2.0
LAST_DURATION = 10.0


def test_srtp_participants_hear_each_other(server: RunningServer, tmp_path: Path) -> None:
    room = f"sip:secure@{server.host}:{server.sip_port}"
    agents: dict[str, AgentProcess] = {}
    durations = {
        name: LAST_DURATION + STAGGER * (len(TONES) - 1 - i) for i, name in enumerate(TONES)
    }
    try:
        for name, freq in TONES.items():
            tone = write_sine(tmp_path / f"{name}_tone.wav", freq, 5.0, rate=16000)
            agents[name] = spawn_agent(
                tmp_path,
                name,
                room,
                play=tone,
                record=tmp_path / f"{name}_heard.wav",
                duration=durations[name],
                srtp=SRTP_USE[name],
            )
            agents[name].wait_event("confirmed", timeout=10)
            time.sleep(STAGGER)
        summaries = {name: agent.finish(timeout=40) for name, agent in agents.items()}
    finally:
        for agent in agents.values():
            agent.stop()

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

    start = max(s["media_at"] for s in summaries.values()) + 1.5
    end = min(s["confirmed_at"] + durations[n] for n, s in summaries.items()) - 0.5
    assert end - start >= 4.0, f"participants overlapped only {end - start:.1f}s"
    report: list[str] = []
    for name in TONES:
        heard = tmp_path / f"{name}_heard.wav"
        skip = start - summaries[name]["media_at"]
        levels = {
            other: level_db(tone_power(heard, f, skip=skip, duration=end - start))
            for other, f in TONES.items()
        }
        loudness = rms_dbfs(heard, skip=skip, duration=end - start)
        report.append(
            f"{name}: rms {loudness:.1f} dBFS, "
            + ", ".join(f"{other} {level:.1f} dB" for other, level in levels.items())
        )
        others = [level for other, level in levels.items() if other != name]
        assert loudness > -40.0, report
        assert min(others) > -10.0, report
        assert levels[name] < min(others) - 20.0, report


@pytest.fixture
def required_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path / "srv", config='srtp = "required"\n')
    try:
        yield srv
    finally:
        code = srv.stop()
        log = srv.log_text()
        assert "Traceback" not in log, log[-4000:]
        assert code == 0, log[-4000:]


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
