"""Tests for sylkbox.discovery.records: TXT wire bytes, names, notes, ids, build_records, diff."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zeroconf._utils.name import service_type_name

from sylkbox.discovery.records import (
    Box,
    Ports,
    RecordError,
    RoomView,
    ServiceRecord,
    build_records,
    contact,
    diff,
    host_label,
    instance_name,
    note_for,
    room_display_name,
    room_instance_id,
    room_views,
    txt_bytes,
)
from sylkbox.sip.uri import SipUri
from tests.helpers.mdns_ns import blink_neighbour

BOX_ID = uuid.UUID("7c0e5e0a-52f4-4d0c-9a4c-3f1e2b8d9a10")
BOX = Box(name="sylkbox", instance_id=BOX_ID, host="boxy.local.")
PORTS = Ports(sip=(("udp", 5060), ("tcp", 5060), ("tls", 5061)), web=8080)


def split_txt(data: bytes) -> tuple[bytes, ...]:
    items: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        items.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    assert i == len(data)
    return tuple(items)


def by_key(records: tuple[ServiceRecord, ...]) -> dict[tuple[str, str], ServiceRecord]:
    return {r.key: r for r in records}


# ---------------------------------------------------------------------------- wire vectors
def test_focus_txt_wire_bytes() -> None:
    records = by_key(build_records(BOX, ["10.0.0.2"], PORTS, ()).records)
    udp = records[("_sipfocus._udp.local.", "sylkbox")]
    assert udp.txt_bytes() == (
        b"\x09txtvers=1"
        b"\x0cname=sylkbox"
        b"\x31contact=<sip:10.0.0.2:5060;transport=udp;isfocus>"
        b"\x30instance_id=7c0e5e0a-52f4-4d0c-9a4c-3f1e2b8d9a10"
    )
    tls = records[("_sipfocus._tcp.local.", "sylkbox (TLS)")]
    assert (tls.port, tls.host, tls.addresses) == (5061, "boxy.local.", ("10.0.0.2",))
    assert split_txt(tls.txt_bytes())[2] == b"contact=<sip:10.0.0.2:5061;transport=tls;isfocus>"


def test_room_txt_wire_bytes() -> None:
    rooms = (RoomView(user="conference", participants=1), RoomView(user="board", participants=3))
    records = by_key(build_records(BOX, ["10.0.0.2"], PORTS, rooms).records)
    default = records[("_sipuri._tcp.local.", "Conference Room")]
    room_id = uuid.uuid5(BOX_ID, "conference")
    assert default.txt_bytes() == (
        b"\x09txtvers=1"
        b"\x14name=Conference Room"
        b"\x3ccontact=<sip:conference@10.0.0.2:5060;transport=tcp;isfocus>"
        b"\x30instance_id=" + str(room_id).encode()
        + b"\x0fstate=available"
        b"\x14note=One participant"
    )
    board = records[("_sipuri._udp.local.", "Conference Room board")]
    assert split_txt(board.txt_bytes())[1:] == (
        b"name=Conference Room board",
        b"contact=<sip:board@10.0.0.2:5060;transport=udp;isfocus>",
        f"instance_id={uuid.uuid5(BOX_ID, 'board')}".encode(),
        b"state=available",
        b"note=3 participants",
    )
    assert ("_sipuri._tcp.local.", "Conference Room board (TLS)") in records


def test_web_record_and_https_hook() -> None:
    records = by_key(build_records(BOX, ["10.0.0.2"], PORTS, ()).records)
    web = records[("_http._tcp.local.", "sylkbox")]
    assert (web.port, web.txt_bytes()) == (8080, b"\x06path=/")
    assert not any(r.service_type == "_https._tcp.local." for r in records.values())
    tls = Ports(sip=(("tcp", 5060),), web=8080, web_tls=8443)
    https = by_key(build_records(BOX, ["10.0.0.2"], tls, ()).records)
    assert https[("_https._tcp.local.", "sylkbox")].port == 8443


def test_txt_bytes_limits() -> None:
    assert txt_bytes([]) == b"\x00"  # RFC 6763 6.1
    assert txt_bytes([("k", "é")]) == b"\x04k=\xc3\xa9"
    assert len(txt_bytes([("k", "x" * 253)])) == 256
    with pytest.raises(RecordError, match="255"):
        txt_bytes([("k", "x" * 254)])
    with pytest.raises(RecordError, match="key"):
        txt_bytes([("a=b", "c")])
    with pytest.raises(RecordError, match="key"):
        txt_bytes([("", "c")])


# ---------------------------------------------------------------------------- names and notes
def test_notes() -> None:
    assert [note_for(n) for n in (0, 1, 2, 10)] == [
        "No participants", "One participant", "2 participants", "10 participants"]
    with pytest.raises(ValueError):
        note_for(-1)


def test_instance_names() -> None:
    assert instance_name("sylkbox") == "sylkbox"
    assert instance_name("sylkbox", tag=" (TLS)") == "sylkbox (TLS)"
    assert instance_name("sylkbox", n=2) == "sylkbox (2)"
    assert instance_name("sylkbox", tag=" (TLS)", n=3) == "sylkbox (TLS) (3)"
    assert instance_name("team.alpha\tbox\x00") == "team-alpha box"
    assert instance_name("  \x01 ") == "sylkbox"
    assert instance_name("_sub") == "-sub"  # not a DNS-SD subtype label
    long = "é" * 40  # 80 bytes: truncated on a character boundary, suffixes kept
    assert instance_name(long) == "é" * 31
    assert instance_name(long, tag=" (TLS)", n=12) == "é" * 26 + " (TLS) (12)"
    assert len(instance_name(long, tag=" (TLS)", n=12).encode()) <= 63


def test_room_names_ids_and_host_label() -> None:
    assert room_display_name("conference") == "Conference Room"
    assert room_display_name("board") == "Conference Room board"
    assert room_display_name("caf%C3%A9") == "Conference Room café"
    assert room_instance_id(BOX_ID, "board") == uuid.uuid5(BOX_ID, "board")
    assert room_instance_id(BOX_ID, "board") != room_instance_id(BOX_ID, "conference")
    assert host_label("Box_1.example.com") == "box-1"
    assert host_label("--") == "sylkbox"
    assert host_label("x" * 80) == "x" * 63


def test_contacts_escape_the_user_part() -> None:
    assert contact("10.0.0.2", 5060, "udp") == "<sip:10.0.0.2:5060;transport=udp;isfocus>"
    assert contact("fd00::2", 5061, "tls", "a b") == (
        "<sip:a%20b@[fd00::2]:5061;transport=tls;isfocus>")
    assert contact("10.0.0.2", 5060, "tcp", "x%41;y@z") == (
        "<sip:x%41%3By%40z@10.0.0.2:5060;transport=tcp;isfocus>")


def test_room_views_default_persistent_active() -> None:
    views = room_views([("zeta", 2), ("alpha", 1), ("zeta", 1)], ["weekly", "alpha"])
    assert views == (
        RoomView(user="conference", participants=0),
        RoomView(user="alpha", participants=1),
        RoomView(user="weekly", participants=0),
        RoomView(user="zeta", participants=3),
    )
    assert room_views([("conference", 2)], [])[0] == RoomView(user="conference", participants=2)


def test_build_records_dedupes_names_and_skips_oversized_rooms() -> None:
    long_a, long_b = "a" * 60 + "1", "a" * 60 + "2"  # alike once truncated
    huge = "h" * 230  # the contact cannot fit in one TXT string
    result = build_records(BOX, ["10.0.0.2"], PORTS,
                           room_views([(long_a, 0), (long_b, 0), (huge, 0)], []))
    names = [r.instance for r in result.records if r.service_type == "_sipuri._udp.local."]
    assert len(names) == len({n.lower() for n in names}) == 3
    assert any(n.endswith(" (2)") for n in names)
    assert [user for user, _ in result.skipped] == [huge]
    assert build_records(BOX, [], PORTS, ()).records == ()


def test_record_validation() -> None:
    record = build_records(BOX, ["10.0.0.2"], PORTS, ()).records[0]
    assert record.renamed(2).instance == "sylkbox (2)"
    assert record.renamed(2).full_name == "sylkbox (2)._sipfocus._udp.local."
    for bad in ("a.b", "x" * 64, "", "a\x01"):
        with pytest.raises(RecordError):
            ServiceRecord(service_type=record.service_type, instance=bad, port=1, host="h.local.",
                          addresses=(), txt=())
    with pytest.raises(RecordError):
        Ports(sip=(("sctp", 5060),))
    with pytest.raises(RecordError):
        Box(name="x", instance_id=BOX_ID, host="h.example.")


def test_diff() -> None:
    before = build_records(BOX, ["10.0.0.2"], PORTS, room_views([("a", 1)], [])).records
    after = build_records(BOX, ["10.0.0.2"], PORTS, room_views([("a", 2), ("b", 0)], [])).records
    change = diff(before, after)
    assert {r.instance for r in change.added} == {"Conference Room b", "Conference Room b (TLS)"}
    assert {new.instance for _, new in change.changed} == {"Conference Room a",
                                                           "Conference Room a (TLS)"}
    assert all(new.txt_value("note") == "2 participants" for _, new in change.changed)
    assert change.removed == ()
    assert not diff(after, after)
    gone = diff(after, before)
    assert {r.instance for r in gone.removed} == {"Conference Room b", "Conference Room b (TLS)"}
    moved = diff(after, build_records(BOX, ["10.0.0.3"], PORTS, room_views([("a", 2), ("b", 0)],
                                                                           [])).records)
    assert len(moved.changed) == len(after) and not moved.added and not moved.removed


# ---------------------------------------------------------------------------- Blink's rules
ROOM_USER = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() != "")


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=300), users=st.lists(ROOM_USER, max_size=4, unique=True),
       address=st.sampled_from(["10.0.0.2", "192.168.1.20", "fd00::2", "2001:db8::7"]))
def test_any_name_gives_records_blink_accepts(name: str, users: list[str], address: str) -> None:
    box = Box(name=name, instance_id=BOX_ID, host="boxy.local.")
    result = build_records(box, [address], PORTS, room_views([(u, 1) for u in users], []))
    skipped = {user for user, _ in result.skipped}
    advertised = {r.room for r in result.records if r.room is not None}
    assert advertised | skipped == {"conference", *users}
    names: set[tuple[str, bytes]] = set()
    for record in result.records:
        raw = record.instance.encode()
        assert 0 < len(raw) <= 63 and "." not in record.instance
        assert service_type_name(record.full_name) == record.service_type  # zeroconf takes it
        assert (record.service_type, raw.lower()) not in names
        names.add((record.service_type, raw.lower()))
        if record.service_type.startswith("_http"):
            continue
        neighbour = blink_neighbour(split_txt(record.txt_bytes()),
                                    service_type=record.service_type, host=record.host)
        assert neighbour.hostname == "boxy"
        uri = SipUri.parse(str(neighbour.uri))
        assert uri.has_param("isfocus") and uri.host_port == (address, record.port)
        if record.room is None:
            assert uri.user is None and neighbour.instance_id == str(BOX_ID)
        else:
            assert uri.user is not None
            assert neighbour.instance_id == str(uuid.uuid5(BOX_ID, record.room))
            assert neighbour.note == "One participant" or record.room == "conference"
    for user in skipped:  # only rooms whose contact cannot fit in 255 bytes are left out
        assert len(contact(address, 5061, "tls", user)) > 255 - len("contact=")
