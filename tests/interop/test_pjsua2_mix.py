"""Three pjsua2 participants in one room: mix-minus audio (each hears the others, not itself).

Each participant is its own process (tests/helpers/pjsua_agent.py) playing its own tone. The
tones are well apart, inside G.711's 300-3400 Hz band and not harmonics of one another, so an FFT
of each recording tells who was heard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.server import RunningServer
from tests.helpers.tone_room import assert_mix_minus, run_tone_room

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


TONES = {"alice": 440.0, "bob": 1000.0, "carol": 1700.0}
STAGGER = 2.0  # seconds between joins
LAST_DURATION = 10.0  # the last participant stays this long; everyone leaves together


def test_three_participants_hear_the_others_not_themselves(
    server: RunningServer, tmp_path: Path
) -> None:
    room = f"sip:mix@{server.host}:{server.sip_port}"
    result = run_tone_room(tmp_path, room, TONES, stagger=STAGGER, last_duration=LAST_DURATION)
    summaries = result.summaries
    for name, summary in summaries.items():
        assert summary["confirmed"], (name, summary)
        assert summary["codec"] == "PCMU", (name, summary)
        assert summary["rx_packets"] > 100, (name, summary, server.log_text()[-3000:])

    print("\n".join(assert_mix_minus(result)))
