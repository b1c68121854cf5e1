"""The box on IPv6: a call and a subscription over UDP on ::1 (RFC 5118 addressing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sylkbox.sdp import SessionDescription
from sylkbox.sip.message import Request, Response
from tests.helpers.server import start_server
from tests.helpers.sipclient import UdpSipClient, sdp_offer


@pytest.mark.peer
def test_call_and_roster_over_ipv6(tmp_path: Path) -> None:
    server = start_server(tmp_path, bind="::1")
    client = UdpSipClient(("::1", server.sip_port))
    try:
        room = f"sip:room6@[::1]:{server.sip_port}"
        client.request(
            "INVITE", room, body=sdp_offer(40000, host="::1"), content_type="application/sdp"
        )
        ok = client.wait_for(lambda m: isinstance(m, Response) and m.status == 200)
        assert isinstance(ok, Response)
        [contact] = ok.contacts
        assert contact.uri.host == "[::1]"
        assert any(name == "isfocus" for name, _ in contact.params)
        answer = SessionDescription.parse(ok.body)
        assert answer.connection is not None and answer.connection.address == "::1"
        assert answer.connection.addrtype == "IP6"
        via = ok.top_via
        assert via.received is None or via.received == "::1"
        client.ack(room, ok)
        client.request("SUBSCRIBE", room, from_tag="sub", headers="Event: conference\r\n")
        notify = client.wait_for(lambda m: isinstance(m, Request) and m.method == "NOTIFY")
        assert b"sip:alice@[::1]" in notify.body
    finally:
        client.close()
        assert server.stop() == 0
    assert "Traceback" not in server.log_text()
