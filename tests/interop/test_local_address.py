"""Issue 5 proof: with ``[sip] bind = 0.0.0.0`` and no advertised address, each peer is given the
box's address on its own link, and a new address (DHCP) is used for new calls.

Topology (private to the test; every interface is created inside its namespace)::

    ns "a"  10.236.1.2/24 --veth-- lan-a 10.236.1.1/24  ns "box"  lan-b 10.236.2.1/24 --veth--
    10.236.2.2/24  ns "b"

The box has no default route (a LAN without a router): the old box-wide address was 127.0.0.1
there, and one address cannot be right on both links anyway. sylkbox runs in "box"; the SIP clients
are UDP sockets of this process opened inside "a" and "b" (`setns(2)` on this thread while the
socket is created; a socket stays in the namespace it was made in). Each call checks that the 200's
Contact, the SDP ``c=``/``o=`` and the MSRP ``a=path`` name the box's address on the caller's link,
and then sends ACK and BYE to that Contact: the BYE's 200 shows the address is the one that works.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sylkbox.msrp.uri import MsrpUri
from sylkbox.sdp import SessionDescription
from sylkbox.sip.message import Request, Response
from tests.helpers.server import RunningServer, start_server
from tests.helpers.sipclient import UdpSipClient

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

VECTORS = Path(__file__).parent.parent / "vectors"
BOX_A, PEER_A = "10.236.1.1", "10.236.1.2"
BOX_B, PEER_B = "10.236.2.1", "10.236.2.2"
BOX_A_NEW = "10.236.1.11"  # the address "DHCP" gives the box on link a later
SIP_PORT = 5060  # start_server uses the standard port inside a namespace
CONFIG = "[media]\nrtp_timeout = 3600\nprompts = false\n"
CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Links:
    prefix: str

    @property
    def box(self) -> str:
        return f"{self.prefix}-box"

    @property
    def a(self) -> str:
        return f"{self.prefix}-a"

    @property
    def b(self) -> str:
        return f"{self.prefix}-b"


@contextmanager
def two_links() -> Iterator[Links]:
    links = Links(f"sbl{os.getpid()}-{next(_counter)}")
    created: list[str] = []
    try:
        for ns in (links.box, links.a, links.b):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for name, peer_ns, box_address, peer_address in (
            ("lan-a", links.a, BOX_A, PEER_A),
            ("lan-b", links.b, BOX_B, PEER_B),
        ):
            _ip("-n", links.box, "link", "add", name, "type", "veth", "peer", "name", "eth0",
                "netns", peer_ns)
            _ip("-n", links.box, "addr", "add", f"{box_address}/24", "dev", name)
            _ip("-n", peer_ns, "addr", "add", f"{peer_address}/24", "dev", "eth0")
            _ip("-n", links.box, "link", "set", name, "up")
            _ip("-n", peer_ns, "link", "set", "eth0", "up")
        yield links
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20,
                           check=False)


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block with this thread in `netns` (sockets made there stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({netns}): {os.strerror(errno)}")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # never carry on in the wrong namespace
                os.write(2, f"cannot leave {netns}: errno {ctypes.get_errno()}\n".encode())
                os._exit(70)
    finally:
        os.close(target)
        os.close(own)


@dataclass
class LinkClient(UdpSipClient):
    """`UdpSipClient` on `local`, a socket opened in `netns`."""

    netns: str = ""
    local: str = ""

    def __post_init__(self) -> None:
        with inside(self.netns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.local, 0))
        self.port = self.sock.getsockname()[1]

    @property
    def host(self) -> str:
        return self.local


def chat_offer(local: str) -> str:
    """Blink's audio + chat offer, from `local`."""
    return (VECTORS / "sdp/blink_audio_chat.sdp").read_text().replace("192.168.1.20", local)


@dataclass(frozen=True)
class Seen:
    contact: str
    origin: str
    connection: str
    msrp_host: str


def call(client: LinkClient, box: str, room: str = "lan") -> None:
    """INVITE the room at `box`; the 200 must name `box` everywhere. Then ACK and BYE are sent
    to the focus Contact (a dead address there would time the BYE out)."""
    uri = f"sip:{room}@{box}:{SIP_PORT}"
    client.server = (box, SIP_PORT)
    call_id = client.request("INVITE", uri, body=chat_offer(client.local),
                             content_type="application/sdp", from_tag=secrets.token_hex(4))
    ok = client.wait_for(lambda m: isinstance(m, Response) and m.status >= 200
                         and m.call_id == call_id, 10.0)
    assert isinstance(ok, Response) and ok.status == 200, ok
    [contact] = ok.contacts
    target = contact.uri.host_port
    answer = SessionDescription.parse(ok.body)
    assert answer.connection is not None
    paths = [m.attribute("path") for m in answer.media if m.media == "message"]
    assert len(paths) == 1 and paths[0] is not None, ok.body
    seen = Seen(contact.uri.host, answer.origin.address, answer.connection.address,
                MsrpUri.parse(paths[0]).host)
    assert seen == Seen(box, box, box, box), ok
    for media in answer.media:
        assert media.connection is None or media.connection.address == box
    client.server = target  # in-dialog requests go to the Contact (RFC 3261 12.2.1.1)
    from_tag = ok.from_.tag or ""
    client.ack(str(contact.uri), ok)
    client.request("BYE", str(contact.uri), call_id=call_id, to=ok.headers.get("To"), cseq=2,
                   from_tag=from_tag)
    bye = client.wait_for(lambda m: isinstance(m, Response) and m.cseq.method == "BYE", 10.0)
    assert isinstance(bye, Response) and bye.status == 200, bye


def subscribe_contact(client: LinkClient, box: str, uri: str) -> str:
    """SUBSCRIBE (sent to `box`) to the conference events of room `uri`; the Contact host of
    the first NOTIFY."""
    client.server = (box, SIP_PORT)
    client.request("SUBSCRIBE", uri, from_tag=secrets.token_hex(4), headers=(
        "Event: conference\r\nAccept: application/conference-info+xml\r\nExpires: 0\r\n"))
    notify = client.wait_for(lambda m: isinstance(m, Request) and m.method == "NOTIFY", 10.0)
    return notify.contacts[0].uri.host


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[Links, RunningServer]]:
    with two_links() as links:
        server = start_server(tmp_path, config=CONFIG, bind="0.0.0.0", netns=links.box)
        try:
            yield links, server
        finally:
            code = server.stop()
            log = server.log_text()
            assert "Traceback" not in log, log[-4000:]
            assert code == 0, log[-4000:]


def test_each_link_gets_the_boxs_address_on_that_link(
    box: tuple[Links, RunningServer],
) -> None:
    links, server = box
    assert "per peer" in server.log_text()
    a = LinkClient((BOX_A, SIP_PORT), user="alice", netns=links.a, local=PEER_A)
    b = LinkClient((BOX_B, SIP_PORT), user="bob", netns=links.b, local=PEER_B)
    try:
        call(a, BOX_A)
        call(b, BOX_B)
        # a room exists while someone is in it: carol calls it on link a, and bob on link b
        # subscribes to it (its URI names the box's address on link a)
        keep = LinkClient((BOX_A, SIP_PORT), user="carol", netns=links.a, local=PEER_A)
        try:
            uri = f"sip:lan@{BOX_A}:{SIP_PORT}"
            keep.request("INVITE", uri, body=chat_offer(PEER_A), content_type="application/sdp")
            ok = keep.wait_for(lambda m: isinstance(m, Response) and m.status >= 200, 10.0)
            assert isinstance(ok, Response) and ok.status == 200
            keep.ack(uri, ok)
            assert subscribe_contact(b, BOX_B, uri) == BOX_B
        finally:
            keep.close()
    finally:
        a.close()
        b.close()


def test_a_new_address_is_used_for_new_calls(box: tuple[Links, RunningServer]) -> None:
    links, _ = box
    a = LinkClient((BOX_A, SIP_PORT), user="alice", netns=links.a, local=PEER_A)
    try:
        call(a, BOX_A)
        # DHCP renumbers the box on link a
        _ip("-n", links.box, "addr", "del", f"{BOX_A}/24", "dev", "lan-a")
        _ip("-n", links.box, "addr", "add", f"{BOX_A_NEW}/24", "dev", "lan-a")
        time.sleep(2.2)  # the per-peer answer is kept 2 s (net.local_address.DEFAULT_TTL)
        call(a, BOX_A_NEW)
    finally:
        a.close()
