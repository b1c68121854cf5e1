"""The mDNS namespace helper (tests/helpers/mdns_ns.py), proven against avahi and python-zeroconf.

Prototype for issue 5: python-zeroconf in the "box" namespace registers a ``_sipfocus._udp``
service with Blink's TXT keys (BLINK.md 1.4); in the "peer" namespace avahi-daemon (on a private
D-Bus) and a python-zeroconf browser resolve it with the right address, port and TXT; a Blink-rules
parser accepts it; a TXT update, an address change and the goodbyes on stop are followed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.mdns_ns import (
    BlinkParseError,
    BrowseEvent,
    avahi_peer,
    blink_neighbour,
    mdns_link,
    parse_browse_line,
    parse_txt_field,
    unescape_label,
)

INSTANCE_ID = "7c0e5e0a-52f4-4d0c-9a4c-3f1e2b8d9a10"


# ---------------------------------------------------------------------------- parsing (no root)
# lines captured from avahi-browse 0.8 -rp against python-zeroconf 0.154.0
ESCAPED = (
    r"=;mdp0;IPv4;Ro\059om\032\0402\041\032\195\169\\x\047y;_sipfocus._udp;local;sbox.local;"
    r'10.233.1.1;5060;"instance_id=7c0e5e0a-1111-2222-3333-444455556666" '
    r'"contact=<sip:10.233.1.1:5060;isfocus>" "name=Box \195\169;x" "empty=" "flag" '
    r'"q=a\"b\\\\c d" "txtvers=1"'
)


def test_parse_resolved_line_unescapes_name_and_txt() -> None:
    event = parse_browse_line(ESCAPED)
    assert event is not None
    assert event.kind == "="
    assert (event.interface, event.protocol, event.type, event.domain) == (
        "mdp0", "IPv4", "_sipfocus._udp", "local")
    assert event.name == "Ro;om (2) é\\x/y"
    assert (event.host, event.address, event.port) == ("sbox.local", "10.233.1.1", 5060)
    # back in wire order (avahi prints the reverse)
    assert event.txt == (
        b"txtvers=1", b'q=a"b\\\\c d', b"flag", b"empty=", "name=Box é;x".encode(),
        b"contact=<sip:10.233.1.1:5060;isfocus>",
        b"instance_id=7c0e5e0a-1111-2222-3333-444455556666",
    )
    keys = event.txt_dict()
    assert keys["flag"] is None and keys["empty"] == b""


def test_parse_new_and_removed_lines() -> None:
    added = parse_browse_line("+;mdp0;IPv4;Conference\\032Room;_sipuri._udp;local")
    removed = parse_browse_line("-;mdp0;IPv4;Conference\\032Room;_sipuri._udp;local")
    assert added is not None and added.kind == "+" and added.name == "Conference Room"
    assert removed is not None and removed.kind == "-"
    assert parse_browse_line("Failed to create client object: Daemon not running") is None
    assert parse_browse_line("=;truncated;line") is None


def test_unescape_and_txt_field_edge_cases() -> None:
    assert unescape_label(r"a\.b\\c") == "a.b\\c"
    assert parse_txt_field("") == ()
    with pytest.raises(ValueError, match="unterminated"):
        parse_txt_field('"abc')
    with pytest.raises(ValueError, match="not quoted"):
        parse_txt_field("abc")


def _focus_txt(contact: str = "<sip:10.0.0.1:5060;isfocus>") -> tuple[bytes, ...]:
    return (b"txtvers=1", b"name=sylkbox", f"contact={contact}".encode(),
            f"instance_id={INSTANCE_ID}".encode())


def test_blink_rules_accept_a_focus_record() -> None:
    neighbour = blink_neighbour(_focus_txt(), service_type="_sipfocus._udp", host="sbox.local")
    assert neighbour.name == "sylkbox" and neighbour.hostname == "sbox"
    assert neighbour.instance_id == INSTANCE_ID
    assert neighbour.uri.user is None and neighbour.is_focus
    assert neighbour.uri.host_port == ("10.0.0.1", 5060)
    assert neighbour.state is None and neighbour.note is None
    tls = blink_neighbour(_focus_txt("<sip:10.0.0.1:5061;transport=tls;isfocus>"),
                          service_type="_sipfocus._tcp.local.", host="sbox.local.")
    assert tls.uri.transport == "tls" and tls.hostname == "sbox"


@pytest.mark.parametrize(
    ("txt", "service_type", "message"),
    [
        ((b"txtvers=1", b"name=x", f"instance_id={INSTANCE_ID}".encode()),
         "_sipuri._udp", "contact"),
        ((b"name=x", b"contact=<sip:a@10.0.0.1>"), "_sipuri._udp", "instance_id"),
        ((b"name", b"contact=<sip:a@10.0.0.1>", b"instance_id=1"), "_sipuri._udp", "no value"),
        ((b"name=\xff", b"contact=<sip:a@10.0.0.1>", b"instance_id=1"), "_sipuri._udp", "UTF-8"),
        ((b"name=x", b"contact=sip:a@10.0.0.1", b"instance_id=1"), "_sipuri._udp", "angle"),
        ((b"name=x", b"contact=<sip:a@@>", b"instance_id=1"), "_sipuri._udp", "SIP URI"),
        ((b"name=x", b"contact=<sip:a@10.0.0.1;transport=tcp>", b"instance_id=1"),
         "_sipuri._udp", "transport"),
        ((b"name=x", b"contact=<sip:a@10.0.0.1>", b"instance_id=1"), "_sipuri._tcp",
         "transport"),
    ],
)
def test_blink_rules_reject_what_breaks_blink(
    txt: tuple[bytes, ...], service_type: str, message: str
) -> None:
    with pytest.raises(BlinkParseError, match=message):
        blink_neighbour(txt, service_type=service_type, host="h.local")


# ---------------------------------------------------------------------------- namespaces
def _focus_service(contact_host: str, note: str | None = None) -> dict[str, object]:
    txt = ["txtvers=1", "name=sylkbox test", f"contact=<sip:{contact_host}:5060;isfocus>",
           f"instance_id={INSTANCE_ID}"]
    if note is not None:
        txt += ["state=available", f"note={note}"]
    return {"type": "_sipfocus._udp.local.", "name": "sylkbox test", "port": 5060, "txt": txt}


def _is_focus(event: BrowseEvent) -> bool:
    return event.name == "sylkbox test" and event.type == "_sipfocus._udp"


@pytest.mark.timeout(90)
def test_zeroconf_in_one_namespace_is_resolved_by_avahi_and_zeroconf_in_another(
    tmp_path: Path,
) -> None:
    with mdns_link(tmp_path) as link:
        avahi = avahi_peer(link)
        watch = avahi.watch("_sipfocus._udp")
        browser = link.start_browser("_sipfocus._udp.local.")
        host = f"box-{link.prefix}.local."
        started = time.monotonic()
        publisher = link.start_publisher({"host": host,
                                          "services": [_focus_service(link.box_address)]})
        assert publisher.ready["names"] == ["sylkbox test._sipfocus._udp.local."]

        # avahi: the streaming browser sees it appear and resolves it
        resolved = watch.wait_event(lambda e: e.kind == "=" and _is_focus(e), 10.0)
        first_resolution = time.monotonic() - started
        assert resolved.interface == "mdpeer0" and resolved.protocol == "IPv4"
        assert (resolved.host, resolved.address, resolved.port) == (
            host.rstrip("."), link.box_address, 5060)
        assert resolved.txt == (
            b"txtvers=1", b"name=sylkbox test",
            f"contact=<sip:{link.box_address}:5060;isfocus>".encode(),
            f"instance_id={INSTANCE_ID}".encode(),
        )
        neighbour = blink_neighbour(resolved.txt, service_type=resolved.type,
                                    host=resolved.host)
        assert neighbour.is_focus and neighbour.uri.user is None
        assert neighbour.uri.host_port == (link.box_address, 5060)
        assert neighbour.hostname == f"box-{link.prefix}"
        # probing (~1.2 s in python-zeroconf 0.154) dominates the time to the first resolution
        assert publisher.ready["probe_ms"] < 2000
        assert first_resolution < 5.0

        # python-zeroconf browser: same record
        found = browser.wait_json(lambda m: m["event"] in ("added", "updated")
                                  and m["name"] == "sylkbox test._sipfocus._udp.local.", 10.0)
        assert found["addresses"] == [link.box_address] and found["port"] == 5060
        assert found["host"] == host
        assert found["txt"] == [s.decode() for s in resolved.txt]

        # TXT update: avahi's cache follows (poll avahi-browse -rpt)
        publisher.command(op="update", index=0,
                          service=_focus_service(link.box_address, note="One participant"))
        updated = avahi.wait_resolved(
            "_sipfocus._udp", lambda e: _is_focus(e) and b"note=One participant" in e.txt, 5.0)
        assert blink_neighbour(updated.txt, service_type=updated.type,
                               host=updated.host).note == "One participant"

        # address change, and back: the record follows with the new address and contact
        for new_address in (link.address(3), link.address(1)):
            link.set_box_address(new_address)
            assert link.box_addresses() == [new_address]
            changed = time.monotonic()
            publisher.command(op="set_addresses", addresses=[new_address],
                              services=[_focus_service(new_address)])
            contact = f"contact=<sip:{new_address}:5060;isfocus>".encode()

            def moved_to(e: BrowseEvent, address: str = new_address,
                         contact: bytes = contact) -> bool:
                return _is_focus(e) and e.address == address and contact in e.txt

            moved = avahi.wait_resolved("_sipfocus._udp", moved_to, 5.0)
            assert moved.port == 5060
            assert time.monotonic() - changed < 3.0
        # the service was never withdrawn meanwhile (PTR and SRV were not said goodbye to)
        assert not any(line.startswith("-") for line in watch.drain())

        # stop: goodbyes withdraw the record (avahi drops it 1 s later, RFC 6762 10.1)
        publisher.stop()
        assert any('"closed"' in line for line in publisher.lines)
        removed = watch.wait_event(lambda e: e.kind == "-" and _is_focus(e), 5.0)
        assert removed.interface == "mdpeer0"
        browser.wait_json(lambda m: m["event"] == "removed", 5.0)
        assert avahi.browse("_sipfocus._udp") == []


@pytest.mark.timeout(60)
def test_a_name_taken_on_the_link_is_detected_by_zeroconf_probing(tmp_path: Path) -> None:
    """avahi-publish holds the name first: python-zeroconf's probe sees it (its own renaming
    gives ``name-2``; sylkbox wants ``name (2)``, so the advertiser renames by itself)."""
    with mdns_link(tmp_path) as link:
        avahi = avahi_peer(link)
        avahi.publish("sylkbox test", "_sipfocus._udp", 5070, "name=taken")
        publisher = link.start_publisher({
            "host": f"box-{link.prefix}.local.", "allow_name_change": True,
            "services": [_focus_service(link.box_address)]})
        assert publisher.ready["names"] == ["sylkbox test-2._sipfocus._udp.local."]
        records = avahi.wait_resolved(
            "_sipfocus._udp", lambda e: e.name == "sylkbox test-2", 5.0)
        assert (records.address, records.port) == (link.box_address, 5060)
        held = {(e.name, e.address, e.port) for e in avahi.browse("_sipfocus._udp", cache=True)}
        assert ("sylkbox test", link.peer_address, 5070) in held
