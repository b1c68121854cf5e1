"""sipp REFER to the room (RFC 3515, RFC 4579 5.5, RFC 4488) and RFC 5366 recipient-list INVITE.

bob is a sipp UAS on its own port that auto-answers the focus's dial-out INVITE (and checks its
``From: "Conference Call" <sip:room@...>``); carol sends the REFERs and checks the sipfrag NOTIFYs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.server import RunningServer
from tests.interop.sipp import Sipp, run_sipp, start_caller, start_sipp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

TRANSPORTS = ["udp", "tcp"]


def _bob(tmp: Path, transport: str, *, expect_bye: bool) -> tuple[Sipp, str]:
    bob = start_sipp(
        "uas.xml", tmp / "bob", transport=transport, timeout=15,
        extra=["-set", "bye", "1"] if expect_bye else [],
    )
    suffix = ";transport=tcp" if transport == "tcp" else ""
    return bob, f"sip:bob@127.0.0.1:{bob.port}{suffix}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refer_adds_then_removes(server: RunningServer, tmp_path: Path, transport: str) -> None:
    alice = start_caller(server, tmp_path / "alice", transport, "referroom", 5000)
    bob, bob_uri = _bob(tmp_path, transport, expect_bye=True)
    try:
        add = run_sipp(
            "refer.xml", tmp_path / "carol-add", remote=(server.host, server.sip_port),
            transport=transport, service="referroom", keys={"referto": f"<{bob_uri}>"},
            timeout=10,
        )
        assert add.returncode == 0, add.report()
        assert bob.wait_received("INVITE", timeout=5), bob.wait(1).report()
        frags = [n.split("\n\n", 1)[1].strip() for n in add.received("NOTIFY")]
        assert frags[0] == "SIP/2.0 100 Trying" and frags[-1] == "SIP/2.0 200 OK", frags

        remove = run_sipp(
            "refer.xml", tmp_path / "carol-remove", remote=(server.host, server.sip_port),
            transport=transport, service="referroom", keys={"referto": f"<{bob_uri}>;method=BYE"},
            timeout=10,
        )
        assert remove.returncode == 0, remove.report()
        removed = bob.wait()  # bob's scenario ends once it has answered the focus's BYE
        assert removed.returncode == 0, removed.report()
        assert removed.received("BYE sip:bob@"), removed.report()
    finally:
        bob.kill()
        done = alice.wait()
    assert done.returncode == 0, done.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refer_sub_false(server: RunningServer, tmp_path: Path, transport: str) -> None:
    alice = start_caller(server, tmp_path / "alice", transport, "nosub", 4000)
    bob, bob_uri = _bob(tmp_path, transport, expect_bye=False)
    try:
        carol = run_sipp(
            "refer_nosub.xml", tmp_path / "carol", remote=(server.host, server.sip_port),
            transport=transport, service="nosub", keys={"referto": f"<{bob_uri}>"}, timeout=10,
        )
        assert carol.returncode == 0, carol.report()
        assert not carol.received("NOTIFY"), carol.report()
        dialled = bob.wait()
        assert dialled.returncode == 0, dialled.report()
    finally:
        bob.kill()
        done = alice.wait()
    assert done.returncode == 0, done.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resource_list_invite_dials_out(
    server: RunningServer, tmp_path: Path, transport: str
) -> None:
    bob, bob_uri = _bob(tmp_path, transport, expect_bye=False)
    try:
        alice = run_sipp(
            "rlmi.xml", tmp_path / "alice", remote=(server.host, server.sip_port),
            transport=transport, service="adhoc", keys={"caller": "alice", "target": bob_uri},
            duration_ms=1500, timeout=10,
        )
        assert alice.returncode == 0, alice.report()
        dialled = bob.wait()
        assert dialled.returncode == 0, dialled.report()
        invite = dialled.received("INVITE sip:bob@")
        assert invite and "sip:adhoc@" in invite[0], dialled.report()
    finally:
        bob.kill()
