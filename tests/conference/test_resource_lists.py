"""Tests for sylkbox.conference.resource_lists (RFC 4826 / RFC 5366 recipient lists)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sylkbox.conference.resource_lists import BadResourceList, ListEntry, parse_resource_lists

VECTORS = Path(__file__).parent.parent / "vectors" / "conference"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_rfc5366_example() -> None:
    assert parse_resource_lists(vector("rfc5366_recipient_list.xml")) == [
        ListEntry("sip:bill@example.com", None),
        ListEntry("sip:randy@example.net", None),
        ListEntry("sip:joe@example.org", None),
        ListEntry("sip:ted@example.net", None),
    ]


def test_blink_like_list_with_display_names() -> None:
    entries = parse_resource_lists(vector("blink_recipient_list.xml"))
    assert entries == [("sip:bob@192.168.1.30", "Bob"), ("sip:carol@192.168.1.40", None)]
    assert entries[0].uri == "sip:bob@192.168.1.30"
    assert entries[0].display_name == "Bob"


def test_nested_lists_flattened_refs_ignored_duplicates_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="sylkbox.conference.resource_lists"):
        entries = parse_resource_lists(vector("nested_recipient_list.xml"))
    assert entries == [
        ListEntry("sip:alice@example.com", "Alice \u00c4"),
        ListEntry("sip:bob@example.com", None),
        ListEntry("sip:carol@example.com", None),
    ]
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "entry-ref" in messages
    assert "external" in messages


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("doctype_recipient_list.xml", "DOCTYPE"),
        ("truncated_recipient_list.xml", "malformed"),
    ],
)
def test_bad_vectors(name: str, reason: str) -> None:
    with pytest.raises(BadResourceList) as info:
        parse_resource_lists(vector(name))
    assert reason in info.value.reason


def _doc(inner: str, ns: str = "urn:ietf:params:xml:ns:resource-lists") -> bytes:
    return f'<resource-lists xmlns="{ns}">{inner}</resource-lists>'.encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_doc("<list><entry uri='sip:a@b'/></list>", ns="urn:example:other"), "root"),
        (b"<resource-lists><list><entry uri='sip:a@b'/></list></resource-lists>", "root"),
        (_doc("<list><entry/></list>"), "without a uri"),
        (_doc("<list><entry uri='  '/></list>"), "without a uri"),
        (_doc("<entry uri='sip:a@b'/>"), "unexpected element"),
        (_doc("<list>" + "<entry uri='sip:a@b'/>" * 1 + "&undefined;</list>"), "malformed"),
        (_doc("<list>" * 20 + "</list>" * 20), "nested"),
        (_doc("<list>" + "x" * 70000 + "</list>"), "larger"),
        (
            _doc("<list>" + "".join(f"<entry uri='sip:u{i}@b'/>" for i in range(101)) + "</list>"),
            "more than 100",
        ),
        (b"", "malformed"),
        (
            # A DOCTYPE hidden from byte-level scans by a UTF-16 encoding is still refused.
            (
                "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE r [<!ENTITY e 'x'>]>"
                "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'/>"
            ).encode("utf-16"),
            "DOCTYPE",
        ),
    ],
)
def test_hostile_and_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(BadResourceList) as info:
        parse_resource_lists(data)
    assert reason in info.value.reason


def test_limits_are_configurable() -> None:
    data = _doc("<list><entry uri='sip:a@b'/><entry uri='sip:c@d'/></list>")
    with pytest.raises(BadResourceList):
        parse_resource_lists(data, max_entries=1)
    assert len(parse_resource_lists(data, max_entries=2)) == 2


def test_foreign_elements_and_attributes_ignored() -> None:
    data = _doc(
        "<list xmlns:x='urn:x'><x:thing/><entry uri='sip:a@b' x:flag='1'>"
        "<x:note>hi</x:note><display-name>A</display-name></entry></list><x:more/>"
    ).replace(b"<x:more/>", b"")
    assert parse_resource_lists(data) == [ListEntry("sip:a@b", "A")]


def test_recipient_list_part_of_rfc5366_invite_body() -> None:
    from sylkbox.sip.multipart import parse_multipart

    body = (VECTORS.parent / "sip" / "rfc5366_invite_body.bin").read_bytes()
    parts = parse_multipart(body, 'multipart/mixed;boundary="boundary1"')
    (recipients,) = [part for part in parts if part.disposition == "recipient-list"]
    assert recipients.media_type == "application/resource-lists+xml"
    assert [entry.uri for entry in parse_resource_lists(recipients.body)] == [
        "sip:bill@example.com",
        "sip:randy@example.net",
        "sip:joe@example.org",
        "sip:ted@example.net",
    ]


def test_unknown_declared_encoding_is_a_bad_list() -> None:
    """An XML declaration naming an encoding Python lacks must not escape as LookupError."""
    data = b'<?xml version="1.0" encoding="rot13"?><resource-lists/>'
    with pytest.raises(BadResourceList):
        parse_resource_lists(data)
