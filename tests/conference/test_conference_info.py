"""Tests for sylkbox.conference.conference_info (RFC 4575 documents, BLINK.md section 3)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlschema

from sylkbox.conference.conference_info import (
    AGP_CONF_NS,
    CONFERENCE_INFO_NS,
    SCHEMA_FILES,
    ConferenceInfoError,
    EndpointInfo,
    MediaInfo,
    ParsedConferenceInfo,
    RoomSnapshot,
    SharedFile,
    UserInfo,
    build_conference_info,
    parse_conference_info,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "conference"
NS = {"c": CONFERENCE_INFO_NS, "agp": AGP_CONF_NS}
T0 = datetime(2026, 11, 22, 18, 52, 37, 48736, tzinfo=UTC)


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema([str(path.resolve()) for path in SCHEMA_FILES])


def _endpoint(
    contact: str, status: str = "connected", media: tuple[str, ...] = ("audio",), n: int = 0
) -> EndpointInfo:
    return EndpointInfo(
        entity=contact,
        display_text=None,
        status=status,
        joined_at=T0 + timedelta(seconds=n),
        media=tuple(MediaInfo(id=str(1000 + 10 * n + i), type=t) for i, t in enumerate(media)),
    )


def two_users_room() -> RoomSnapshot:
    alice = UserInfo(
        entity="sip:alice@192.168.1.20",
        display_text="Alice",
        endpoints=(
            EndpointInfo(
                entity="sip:48213790@192.168.1.20:51234;transport=tcp",
                display_text="Alice",
                status="connected",
                joined_at=T0,
                media=(
                    MediaInfo(id="140234", type="audio"),
                    MediaInfo(id="140235", type="message"),
                ),
            ),
        ),
        screen_image_url=(
            "http://192.168.1.10:10888/conference/room@192.168.1.10/screensharing"
            "?image=alice%40192.168.1.20_AbCdEfGhIj.jpg"
        ),
    )
    bob = UserInfo(
        entity="sip:bob@192.168.1.30",
        display_text="Bob",
        endpoints=(
            EndpointInfo(
                entity="sip:bob@192.168.1.30:5060",
                display_text="Bob",
                status="on-hold",
                joined_at=datetime(2026, 11, 22, 19, 0, 1, tzinfo=timezone(timedelta(hours=1))),
                media=(MediaInfo(id="140236", type="audio", status="sendonly"),),
            ),
        ),
    )
    return RoomSnapshot(
        entity="sip:room@192.168.1.10",
        users=(alice, bob),
        user_count=2,
        files=(
            SharedFile(
                name="report.pdf",
                hash="sha-1:AB:CD:EF",
                size=12345,
                sender="Alice <sip:alice@192.168.1.20>",
            ),
        ),
        server_name="sylkbox/0.1.0",
        web_page="http://192.168.1.10/",
    )


def _rooms() -> dict[str, RoomSnapshot]:
    hostile = "<&\"'> ]]> &amp; <!-- x --> \u00e9\u4e2d\U0001f600"
    three = RoomSnapshot(
        entity="sip:team@box.local",
        user_count=4,
        server_name="sylkbox/0.1.0",
        extra_conf_uris=("xmpp:team@conference.box.local", "tel:+4930123"),
        users=(
            UserInfo(
                entity="sip:carol@box.local",
                display_text="Carol",
                endpoints=(
                    _endpoint("sip:carol@10.0.0.3:5060", media=("audio", "message")),
                    _endpoint("sip:carol@10.0.0.4:5062;transport=tls", "on-hold", n=1),
                    _endpoint("sip:carol@10.0.0.5", "dialing-out", media=(), n=2),
                ),
            ),
            UserInfo(
                entity="sip:dave@box.local",
                display_text=None,
                endpoints=(_endpoint("sip:dave@10.0.0.6", "alerting", n=3),),
            ),
            UserInfo(
                entity="sip:erin@box.local",
                display_text="Erin",
                endpoints=(_endpoint("sip:erin@10.0.0.7", "disconnected", ("message",), n=4),),
            ),
        ),
    )
    hostile_room = RoomSnapshot(
        entity="sip:r%20oom@box.local",
        user_count=1,
        server_name=hostile,
        files=(SharedFile(name=hostile, hash="sha-1:00", size=0, sender=f"{hostile} <sip:x@y>"),),
        users=(
            UserInfo(
                entity="sip:x@y",
                display_text=hostile,
                endpoints=(
                    EndpointInfo(
                        entity="sip:x@y;a=\"'<>&",
                        display_text=hostile,
                        status="connected",
                        joined_at=T0,
                        media=(MediaInfo(id="<&>", type="audio"),),
                    ),
                ),
                screen_image_url="http://box/img?a=1&b=<2>",
            ),
        ),
    )
    return {
        "empty": RoomSnapshot(entity="sip:empty@box.local", server_name="sylkbox/0.1.0"),
        "two_users": two_users_room(),
        "three_users": three,
        "hostile": hostile_room,
        "inactive_no_files": RoomSnapshot(
            entity="sips:quiet@box.local", active=False, subject="Weekly", display_text="Q"
        ),
    }


ROOMS = _rooms()


@pytest.mark.parametrize("name", sorted(ROOMS))
def test_documents_validate_against_rfc4575_schema(schema: xmlschema.XMLSchema, name: str) -> None:
    document = build_conference_info(ROOMS[name], 7)
    schema.validate(document.decode("utf-8"))


@pytest.mark.parametrize("name", sorted(ROOMS))
def test_round_trip(name: str) -> None:
    room = ROOMS[name]
    parsed = parse_conference_info(build_conference_info(room, 42))
    assert parsed == ParsedConferenceInfo(version=42, state="full", room=room)


def test_golden_document_exact_bytes() -> None:
    golden = (VECTORS / "room_two_users.xml").read_bytes()
    assert build_conference_info(two_users_room(), 3) == golden
    assert parse_conference_info(golden).room == two_users_room()


def test_shape_full_state_and_percent_encoded_uri() -> None:
    root = ET.fromstring(build_conference_info(two_users_room(), 5))
    assert root.get("state") == "full"
    assert root.get("version") == "5"
    assert root.get("entity") == "sip:room@192.168.1.10"
    assert root.find("c:users", NS).get("state") == "full"  # type: ignore[union-attr]
    for element in root.iterfind("c:users/c:user", NS):
        assert element.get("state") == "full"
    for element in root.iterfind("c:users/c:user/c:endpoint", NS):
        assert element.get("state") == "full"
    uri = root.find("c:conference-description/c:conf-uris/c:entry/c:uri", NS)
    assert uri is not None and uri.text == "sip%3Aroom%40192.168.1.10"
    free_text = root.find("c:conference-description/c:free-text", NS)
    assert free_text is not None and free_text.text == "Hosted by sylkbox/0.1.0"
    state = root.find("c:conference-state", NS)
    assert state is not None
    assert [(child.tag.split("}")[1], child.text) for child in state] == [
        ("user-count", "2"),
        ("active", "true"),
    ]


def test_agp_namespace_declared_on_root() -> None:
    head = build_conference_info(ROOMS["empty"], 1).split(b">", 2)[1]
    assert b'xmlns:agp-conf="urn:ag-projects:xml:ns:conference-info"' in head
    assert b'xmlns="urn:ietf:params:xml:ns:conference-info"' in head


def test_optional_parts_omitted() -> None:
    root = ET.fromstring(build_conference_info(ROOMS["empty"], 1))
    assert root.find("c:conference-description/agp:resources", NS) is None
    assert root.find("c:host-info", NS) is None
    assert list(root.find("c:users", NS) or []) == []
    three = ET.fromstring(build_conference_info(ROOMS["three_users"], 1))
    assert three.find(".//agp:screen_image_url", NS) is None
    assert [e.text for e in three.iterfind(".//c:conf-uris/c:entry/c:uri", NS)] == [
        "sip%3Ateam%40box.local",
        "xmpp%3Ateam%40conference.box.local",
        "tel%3A%2B4930123",
    ]


def test_files_and_screen_url_present() -> None:
    root = ET.fromstring(build_conference_info(two_users_room(), 1))
    files = root.findall("c:conference-description/agp:resources/agp:files/agp:file", NS)
    assert [f.attrib for f in files] == [
        {
            "name": "report.pdf",
            "hash": "sha-1:AB:CD:EF",
            "size": "12345",
            "sender": "Alice <sip:alice@192.168.1.20>",
            "status": "OK",
        }
    ]
    urls = root.findall("c:users/c:user/agp:screen_image_url", NS)
    assert len(urls) == 1 and urls[0].text is not None and urls[0].text.endswith("Ij.jpg")
    host = root.find("c:host-info/c:web-page", NS)
    assert host is not None and host.text == "http://192.168.1.10/"


def test_control_characters_dropped() -> None:
    room = RoomSnapshot(
        entity="sip:r@h",
        users=(UserInfo(entity="sip:u@h", display_text="a\x00b\x1bc\ud800d"),),
    )
    parsed = parse_conference_info(build_conference_info(room, 1))
    assert parsed.room.users[0].display_text == "abcd"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "talking"},
        {"joined_at": datetime(2026, 1, 1)},  # naive
    ],
)
def test_endpoint_validation(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "entity": "sip:a@b",
        "display_text": None,
        "status": "connected",
        "joined_at": T0,
    }
    base.update(kwargs)
    with pytest.raises(ValueError):
        EndpointInfo(**base)  # type: ignore[arg-type]


def test_version_range() -> None:
    with pytest.raises(ValueError):
        build_conference_info(ROOMS["empty"], -1)
    with pytest.raises(ValueError):
        build_conference_info(ROOMS["empty"], 2**32)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b">&lol2;
</conference-info>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE c SYSTEM "http://evil.example/x.dtd">
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b"/>"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BILLION_LAUGHS, "DOCTYPE"),
        (EXTERNAL, "DOCTYPE"),
        (b"<conference-info entity='sip:a@b'/>", "root"),
        (b"<conference-info xmlns='urn:ietf:params:xml:ns:conference-info'/>", "entity"),
        (b"<conference-info xmlns='urn:ietf:params:xml:ns:conference-info'", "malformed"),
        (
            b"<conference-info xmlns='urn:ietf:params:xml:ns:conference-info' entity='s:a'"
            b" version='x1'/>",
            "version",
        ),
        (b"<a>" + b"x" * (1024 * 1024) + b"</a>", "larger"),
    ],
)
def test_hostile_or_bad_documents_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(ConferenceInfoError) as info:
        parse_conference_info(data)
    assert reason in info.value.reason


def test_parse_foreign_document_ignores_unknown_elements() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" xmlns:x="urn:x"
    entity="sips:conf233@example.com" state="partial" version="9">
  <conference-description><subject>Agenda</subject><x:extra/></conference-description>
  <users>
    <user entity="sip:bob@example.com" state="full">
      <roles><entry>participant</entry></roles>
      <endpoint entity="sip:bob@pc33.example.com">
        <status>connected</status>
        <joining-method>dialed-in</joining-method>
        <joining-info><when>2005-03-04T20:00:00Z</when></joining-info>
        <media id="1"><type>video</type><status>sendrecv</status></media>
      </endpoint>
    </user>
  </users>
</conference-info>"""
    parsed = parse_conference_info(data)
    assert parsed.version == 9
    assert parsed.state == "partial"
    assert parsed.room.subject == "Agenda"
    assert parsed.room.active is False
    (endpoint,) = parsed.room.users[0].endpoints
    assert endpoint.joined_at == datetime(2005, 3, 4, 20, tzinfo=UTC)
    assert endpoint.media == (MediaInfo(id="1", type="video", status="sendrecv"),)


def test_schema_is_not_vacuous(schema: xmlschema.XMLSchema) -> None:
    good = build_conference_info(two_users_room(), 1).decode()
    assert schema.is_valid(good)
    # An extension element before <endpoint> (the order of the SylkServer sample) is refused by
    # the RFC 4575 user-type sequence; that is why the builder writes it after the endpoints.
    root = ET.fromstring(good)
    user = root.find("c:users/c:user", NS)
    assert user is not None
    url = user.find("agp:screen_image_url", NS)
    assert url is not None
    user.remove(url)
    user.insert(1, url)
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))
    assert not schema.is_valid(good.replace("<status>connected<", "<status>talking<"))
    assert not schema.is_valid(good.replace('size="12345"', 'size="-1"'))
    assert not schema.is_valid(good.replace('state="full" version', 'state="fresh" version'))
