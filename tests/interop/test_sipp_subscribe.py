"""sipp SUBSCRIBE/NOTIFY for the conference event package (RFC 4575, RFC 6665) against sylkbox.

alice keeps the room open; carol subscribes and checks every NOTIFY body with ereg while bob joins,
(optionally) holds and resumes, and leaves; then carol unsubscribes with Expires: 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.server import RunningServer
from tests.interop.sipp import run_sipp, start_caller, start_sipp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

TRANSPORTS = ["udp", "tcp"]


@pytest.mark.parametrize("hold", [False, True], ids=["join-leave", "join-hold-leave"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_roster_notifies(server: RunningServer, tmp_path: Path, transport: str, hold: bool) -> None:
    alice = start_caller(server, tmp_path / "alice", transport, "roster", 6000)
    carol = start_sipp(
        "subscribe_roster.xml", tmp_path / "carol", remote=(server.host, server.sip_port),
        transport=transport, service="roster", timeout=15,
        extra=["-set", "hold", "1"] if hold else [],
    )
    try:
        assert carol.wait_received("NOTIFY", timeout=10), carol.wait(1).report()
        bob = run_sipp(
            "hold.xml" if hold else "call.xml", tmp_path / "bob",
            remote=(server.host, server.sip_port), transport=transport, service="roster",
            keys={"caller": "bob", "maxfwd": "70"}, duration_ms=300, timeout=10,
        )
        assert bob.returncode == 0, bob.report()
        watched = carol.wait()
        assert watched.returncode == 0, watched.report()
        notifies = watched.received("NOTIFY")
        assert len(notifies) == (6 if hold else 4), watched.report()
    finally:
        carol.kill()
        done = alice.wait()
    assert done.returncode == 0, done.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_room_is_480(server: RunningServer, tmp_path: Path, transport: str) -> None:
    result = run_sipp(
        "subscribe_480.xml", tmp_path / "carol", remote=(server.host, server.sip_port),
        transport=transport, service="nosuchroom", keys={"event": "conference"}, timeout=10,
    )
    assert result.returncode == 0, result.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_event_is_489(server: RunningServer, tmp_path: Path, transport: str) -> None:
    alice = start_caller(server, tmp_path / "alice", transport, "evroom", 1500)
    try:
        result = run_sipp(
            "subscribe_489.xml", tmp_path / "carol", remote=(server.host, server.sip_port),
            transport=transport, service="evroom", keys={"event": "presence"}, timeout=10,
        )
        assert result.returncode == 0, result.report()
    finally:
        done = alice.wait()
    assert done.returncode == 0, done.report()
