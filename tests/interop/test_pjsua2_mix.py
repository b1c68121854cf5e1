"""Three pjsua2 participants in one room: mix-minus audio (each hears the others, not itself).

Each participant is its own process (tests/helpers/pjsua_agent.py) playing its own tone. The
tones are well apart, inside G.711's 300-3400 Hz band and not harmonics of one another, so an FFT
of each recording tells who was heard.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.audio import level_db, rms_dbfs, tone_power, write_sine
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent
from tests.helpers.server import RunningServer

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


TONES = {"alice": 440.0, "bob": 1000.0, "carol": 1700.0}
STAGGER = 2.0  # seconds between joins
LAST_DURATION = 10.0  # the last participant stays this long; everyone leaves together


def _overlap(summaries: dict[str, dict[str, float]], durations: dict[str, float]) -> tuple[
    float, float
]:
    """Epoch interval where all participants had media flowing (jitter margins removed)."""
    start = max(s["media_at"] for s in summaries.values()) + 1.5
    end = min(s["confirmed_at"] + durations[n] for n, s in summaries.items()) - 0.5
    return start, end


def test_three_participants_hear_the_others_not_themselves(
    server: RunningServer, tmp_path: Path
) -> None:
    room = f"sip:mix@{server.host}:{server.sip_port}"
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
            )
            agents[name].wait_event("confirmed", timeout=10)
            time.sleep(STAGGER)
        summaries = {name: agent.finish(timeout=40) for name, agent in agents.items()}
    finally:
        for agent in agents.values():
            agent.stop()

    for name, summary in summaries.items():
        assert summary["confirmed"], (name, summary)
        assert summary["codec"] == "PCMU", (name, summary)
        assert summary["rx_packets"] > 100, (name, summary, server.log_text()[-3000:])

    start, end = _overlap(summaries, durations)
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
        report.append(f"{name}: rms {loudness:.1f} dBFS, " + ", ".join(
            f"{other} {level:.1f} dB" for other, level in levels.items()
        ))
        others = [level for other, level in levels.items() if other != name]
        assert loudness > -40.0, report
        # Each other participant's tone carries a large share of what this one hears...
        assert min(others) > -10.0, report
        # ...and this participant's own tone is at least 20 dB below the weaker of them.
        assert levels[name] < min(others) - 20.0, report
