"""sipp calls against sylkbox: join with RTP, CANCEL, hold/unhold, Max-Forwards 0, OPTIONS.

Each scenario asserts with sipp's own checks (``ereg check_it``, responses in order, unexpected
messages fail the call); a test fails when sipp exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import RunningServer, serve
from tests.interop.sipp import run_sipp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

TRANSPORTS = ["udp", "tcp"]


@pytest.fixture
def delayed_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A focus that rings and waits 2 s before answering, so a CANCEL finds the INVITE pending."""
    yield from serve(tmp_path / "srv", config="[sip]\nanswer_delay = 2.0\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_call_with_rtp(server: RunningServer, tmp_path: Path, transport: str) -> None:
    result = run_sipp(
        "call.xml", tmp_path / "alice", remote=(server.host, server.sip_port),
        transport=transport, service="room1", keys={"caller": "alice", "maxfwd": "70"},
        duration_ms=1500, timeout=15, extra=["-set", "rtp", "1"],
    )
    assert result.returncode == 0, result.report()
    assert "In pcap /usr/share/sip-tester/g711a.pcap" in result.output  # RTP was played
    assert "joined room1@" in server.log_text()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_max_forwards_zero_invite_is_answered(
    server: RunningServer, tmp_path: Path, transport: str
) -> None:
    # A focus is the final destination: Max-Forwards 0 only limits forwarding (RFC 3261 16.3).
    result = run_sipp(
        "call.xml", tmp_path / "alice", remote=(server.host, server.sip_port),
        transport=transport, service="mf0", keys={"caller": "alice", "maxfwd": "0"},
        duration_ms=200, timeout=10,
    )
    assert result.returncode == 0, result.report()
    assert "Max-Forwards: 0" in result.messages


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sequential_calls_same_room(server: RunningServer, tmp_path: Path, transport: str) -> None:
    result = run_sipp(
        "call.xml", tmp_path / "alice", remote=(server.host, server.sip_port),
        transport=transport, service="again", keys={"caller": "alice", "maxfwd": "70"},
        calls=5, rate=10, limit=2, duration_ms=100, timeout=15,
    )
    assert result.returncode == 0, result.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_before_answer(
    delayed_server: RunningServer, tmp_path: Path, transport: str
) -> None:
    result = run_sipp(
        "cancel.xml", tmp_path / "alice", remote=(delayed_server.host, delayed_server.sip_port),
        transport=transport, service="cancelled", keys={"caller": "alice"}, timeout=15,
    )
    assert result.returncode == 0, result.report()
    assert "SIP/2.0 487" in result.messages


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hold_and_unhold(server: RunningServer, tmp_path: Path, transport: str) -> None:
    result = run_sipp(
        "hold.xml", tmp_path / "alice", remote=(server.host, server.sip_port),
        transport=transport, service="holdroom", keys={"caller": "alice"},
        duration_ms=300, timeout=15,
    )
    assert result.returncode == 0, result.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_options(server: RunningServer, tmp_path: Path, transport: str) -> None:
    result = run_sipp(
        "options.xml", tmp_path / "carol", remote=(server.host, server.sip_port),
        transport=transport, service="anything", timeout=10,
    )
    assert result.returncode == 0, result.report()
