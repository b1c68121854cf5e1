"""Tests for sylkbox.net.local_address: our address as each peer reaches it.

The real kernel answers on loopback here; several links and an address change are proven in
network namespaces by tests/interop/test_local_address.py. Where a test needs answers that the
machine's own routes cannot give (no route, a changing address), `source_address` is replaced.
"""

from __future__ import annotations

import socket

import pytest

from sylkbox.net import local_address
from sylkbox.net.local_address import LocalAddresses, source_address
from sylkbox.net.msrp import MsrpListener
from sylkbox.net.sip_endpoint import SipEndpoint
from sylkbox.net.transport import SipTransports
from sylkbox.sip.message import Request
from sylkbox.sip.parser import ParserLimits, parse_message
from sylkbox.sip.transaction import TransactionLayer


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Replace the kernel's answers: peer -> source address (absent: no route)."""
    table: dict[str, str] = {}
    monkeypatch.setattr(local_address, "source_address", table.get)
    return table


# ------------------------------------------------------------------------ the real kernel
def test_source_address_of_a_loopback_peer_is_loopback() -> None:
    assert source_address("127.0.0.1") == "127.0.0.1"
    assert source_address("127.0.0.53") == "127.0.0.1"  # the lo route's source


def test_loopback_peer_gets_127_0_0_1_with_a_wildcard_bind() -> None:
    picker = LocalAddresses(bind="0.0.0.0")
    assert picker.per_peer
    assert picker.for_peer("127.0.0.1") == "127.0.0.1"
    assert picker.for_peer("[127.0.0.1]") == "127.0.0.1"


def test_ipv4_mapped_peer_gets_our_ipv4_address() -> None:
    # an IPv4 peer seen through a dual-stack socket: it must be given an IPv4 address
    assert LocalAddresses(bind="::").for_peer("::ffff:127.0.0.1") == "127.0.0.1"


@needs_ipv6
def test_ipv6_loopback_peer_gets_ipv6_loopback() -> None:
    picker = LocalAddresses(bind="::")
    assert picker.for_peer("::1") == "::1"
    assert picker.for_peer("[::1]") == "::1"


def test_default_is_the_default_routes_source_or_loopback() -> None:
    expected = source_address("192.0.2.1") or "127.0.0.1"
    picker = LocalAddresses(bind="0.0.0.0")
    assert picker.default() == expected
    for peer in (None, "", "blink.example.com", "not an address"):
        assert picker.for_peer(peer) == expected


# ------------------------------------------------------------------------ configuration
def test_configured_address_is_used_for_every_peer() -> None:
    picker = LocalAddresses(bind="0.0.0.0", advertised="198.51.100.7")
    assert not picker.per_peer
    assert picker.for_peer("127.0.0.1") == "198.51.100.7"
    assert picker.for_peer(None) == "198.51.100.7"
    assert picker.default() == "198.51.100.7"


def test_specific_bind_address_is_used_for_every_peer() -> None:
    picker = LocalAddresses(bind="127.0.0.1")
    assert not picker.per_peer
    assert picker.for_peer("192.0.2.50") == "127.0.0.1"
    assert LocalAddresses(bind="[::1]").for_peer("::1") == "::1"


def test_bad_bind_address_is_refused() -> None:
    with pytest.raises(ValueError):
        LocalAddresses(bind="example.com")


# ------------------------------------------------------------------------ replaced routes
def test_each_peer_gets_the_source_of_its_own_link(routes: dict[str, str]) -> None:
    routes.update({"10.1.0.9": "10.1.0.1", "10.2.0.9": "10.2.0.1", "fd00::9": "fd00::1"})
    picker = LocalAddresses(bind="0.0.0.0")
    assert picker.for_peer("10.1.0.9") == "10.1.0.1"
    assert picker.for_peer("10.2.0.9") == "10.2.0.1"
    assert picker.for_peer("fd00::9") == "fd00::1"


def test_no_route_to_the_peer_falls_back_to_the_default(routes: dict[str, str]) -> None:
    picker = LocalAddresses(bind="0.0.0.0")
    assert picker.for_peer("10.3.0.9") == "127.0.0.1"  # no default route either: loopback
    routes["192.0.2.1"] = "10.1.0.1"  # a default route appears
    picker = LocalAddresses(bind="0.0.0.0")
    assert picker.for_peer("10.3.0.9") == "10.1.0.1"
    assert picker.default() == "10.1.0.1"
    assert LocalAddresses(bind="::").for_peer("fd00::9") == "::1"


def test_an_address_change_is_seen_once_the_entry_expires(routes: dict[str, str]) -> None:
    clock = Clock()
    picker = LocalAddresses(bind="0.0.0.0", ttl=2.0, clock=clock)
    routes["10.1.0.9"] = "10.1.0.1"
    assert picker.for_peer("10.1.0.9") == "10.1.0.1"
    routes["10.1.0.9"] = "10.1.0.11"  # DHCP gave the box a new address
    clock.now += 1.9
    assert picker.for_peer("10.1.0.9") == "10.1.0.1"  # cached a moment
    clock.now += 0.2
    assert picker.for_peer("10.1.0.9") == "10.1.0.11"


def test_the_default_follows_address_changes_too(routes: dict[str, str]) -> None:
    clock = Clock()
    picker = LocalAddresses(bind="0.0.0.0", ttl=2.0, clock=clock)
    assert picker.default() == "127.0.0.1"
    routes["192.0.2.1"] = "10.1.0.1"
    clock.now += 2.1
    assert picker.default() == "10.1.0.1"


def test_the_cache_stays_bounded(routes: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_address, "MAX_ENTRIES", 8)
    picker = LocalAddresses(bind="0.0.0.0")
    for n in range(50):
        routes[f"10.0.0.{n}"] = f"10.9.0.{n}"
        assert picker.for_peer(f"10.0.0.{n}") == f"10.9.0.{n}"
    # every answer above was right; an evicted peer is simply asked again
    routes["10.0.0.0"] = "10.8.0.0"
    assert picker.for_peer("10.0.0.0") == "10.8.0.0"


# ------------------------------------------------------------------------ the users
async def test_sip_endpoint_contact_and_via_use_the_peers_address(routes: dict[str, str]) -> None:
    routes.update({"10.1.0.9": "10.1.0.1", "10.2.0.9": "10.2.0.1"})
    endpoint = SipEndpoint(
        TransactionLayer(), limits=ParserLimits(), addresses=LocalAddresses(bind="0.0.0.0")
    )
    transports = SipTransports(endpoint.on_message)
    endpoint.attach(transports)
    try:
        _, port = await transports.listen_udp("127.0.0.1", 0)
        assert endpoint.contact_host("udp", "10.1.0.9") == ("10.1.0.1", port)
        assert endpoint.contact_host("udp", "10.2.0.9") == ("10.2.0.1", port)
        request = parse_message(
            b"OPTIONS sip:bob@10.2.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0:9;branch=z9hG4bKx\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:bob@10.2.0.9>\r\nCall-ID: x\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        assert isinstance(request, Request)
        endpoint.prepare_request(request, "udp", "10.2.0.9")
        assert request.top_via.host == "10.2.0.1" and request.top_via.port == port
    finally:
        endpoint.close()
        await transports.close()


async def test_sip_endpoint_without_a_picker_uses_the_bound_address() -> None:
    endpoint = SipEndpoint(TransactionLayer(), limits=ParserLimits())
    transports = SipTransports(endpoint.on_message)
    endpoint.attach(transports)
    try:
        bound = await transports.listen_udp("127.0.0.1", 0)
        assert endpoint.contact_host("udp", "192.0.2.9") == bound
    finally:
        endpoint.close()
        await transports.close()


def test_msrp_uris_carry_the_peers_address(routes: dict[str, str]) -> None:
    routes.update({"10.1.0.9": "10.1.0.1", "fd00::9": "fd00::1"})
    listener = MsrpListener(
        bind="0.0.0.0", port=2855, addresses=LocalAddresses(bind="0.0.0.0"), server_ssl=None
    )
    assert listener.new_local_uri("10.1.0.9").host == "10.1.0.1"
    assert listener.new_local_uri("fd00::9").host == "[fd00::1]"
    assert listener.new_local_uri(None).host == "127.0.0.1"  # no peer, no default route
    assert str(listener.new_local_uri("10.1.0.9")).startswith("msrp://10.1.0.1:2855/")


def test_msrp_advertised_host_is_kept_for_every_peer() -> None:
    listener = MsrpListener(
        bind="0.0.0.0", port=2855, advertised_host="198.51.100.7", server_ssl=None
    )
    assert listener.new_local_uri("127.0.0.1").host == "198.51.100.7"
    assert listener.new_local_uri().host == "198.51.100.7"
