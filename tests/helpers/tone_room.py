"""A room of pjsua2 participants each playing its own tone: the proof of mix-minus.

Participants join `stagger` seconds apart (one pjsua2 process each), so that they all overlap
for a while; each records what it hears. `assert_mix_minus` then checks, over the overlap, that
every recording carries the other participants' tones and not its own (FFT).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.audio import level_db, rms_dbfs, tone_power, write_sine
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent

__all__ = ["ToneRoom", "assert_mix_minus", "run_tone_room"]


@dataclass
class ToneRoom:
    tones: Mapping[str, float]
    summaries: dict[str, dict[str, Any]]
    recordings: dict[str, Path]
    start: float  # epoch seconds where every participant had media flowing
    end: float


def run_tone_room(
    tmp_path: Path,
    room: str,
    tones: Mapping[str, float],
    *,
    stagger: float = 2.0,
    last_duration: float = 10.0,
    options: Callable[[str], dict[str, Any]] = lambda _name: {},
) -> ToneRoom:
    """Join every participant (extra `spawn_agent` options per name), wait for all to end."""
    agents: dict[str, AgentProcess] = {}
    durations = {
        name: last_duration + stagger * (len(tones) - 1 - i) for i, name in enumerate(tones)
    }
    recordings = {name: tmp_path / f"{name}_heard.wav" for name in tones}
    try:
        for name, freq in tones.items():
            tone = write_sine(tmp_path / f"{name}_tone.wav", freq, 5.0, rate=16000)
            agents[name] = spawn_agent(
                tmp_path,
                name,
                room,
                play=tone,
                record=recordings[name],
                duration=durations[name],
                **options(name),
            )
            agents[name].wait_event("confirmed", timeout=10)
            time.sleep(stagger)
        summaries = {name: agent.finish(timeout=40) for name, agent in agents.items()}
    finally:
        for agent in agents.values():
            agent.stop()
    # jitter margins removed: media settles 1.5 s after it starts, hang-up is 0.5 s early
    start = max(s["media_at"] for s in summaries.values()) + 1.5
    end = min(s["confirmed_at"] + durations[n] for n, s in summaries.items()) - 0.5
    return ToneRoom(tones, summaries, recordings, start, end)


def assert_mix_minus(result: ToneRoom) -> list[str]:
    """Everyone hears every other tone (> -10 dB of what it hears, > -40 dBFS overall) and its
    own at least 20 dB below the weakest other; returns the per-participant report lines."""
    start, end = result.start, result.end
    assert end - start >= 4.0, f"participants overlapped only {end - start:.1f}s"
    report: list[str] = []
    for name in result.tones:
        heard = result.recordings[name]
        skip = start - result.summaries[name]["media_at"]
        levels = {
            other: level_db(tone_power(heard, f, skip=skip, duration=end - start))
            for other, f in result.tones.items()
        }
        loudness = rms_dbfs(heard, skip=skip, duration=end - start)
        report.append(
            f"{name}: rms {loudness:.1f} dBFS, "
            + ", ".join(f"{other} {level:.1f} dB" for other, level in levels.items())
        )
        others = [level for other, level in levels.items() if other != name]
        assert loudness > -40.0, report
        # Each other participant's tone carries a large share of what this one hears...
        assert min(others) > -10.0, report
        # ...and this participant's own tone is at least 20 dB below the weaker of them.
        assert levels[name] < min(others) - 20.0, report
    return report
