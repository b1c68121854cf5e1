"""SIGTERM ends every session with BYE and every subscription with a terminated NOTIFY."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from sylkbox.sip.message import Request, Response
from tests.helpers.server import start_server
from tests.helpers.sipclient import UdpSipClient, sdp_offer


@pytest.mark.peer
def test_sigterm_sends_bye_and_terminated_notify(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    client = UdpSipClient(("127.0.0.1", server.sip_port))
    try:
        room = f"sip:room@127.0.0.1:{server.sip_port}"
        client.request("INVITE", room, body=sdp_offer(40000), content_type="application/sdp")
        ok = client.wait_for(lambda m: isinstance(m, Response) and m.status == 200)
        assert isinstance(ok, Response)
        client.ack(room, ok)
        client.request("SUBSCRIBE", room, from_tag="sub", headers="Event: conference\r\n")
        client.wait_for(lambda m: isinstance(m, Request) and m.method == "NOTIFY")
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        seen: dict[str, Request] = {}
        while len(seen) < 2:
            message = client.receive(3.0)
            if isinstance(message, Request):
                seen[message.method] = message
        assert "BYE" in seen
        state = seen["NOTIFY"].headers.get("Subscription-State") or ""
        assert state.startswith("terminated")
        assert server.process.wait(5) == 0
        assert time.monotonic() - started < 2.5
    finally:
        client.close()
        server.stop()
    assert "Traceback" not in server.log_text()
