"""Tests for sylkbox.conference.room: membership, identities and the RFC 4575 snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from sylkbox.conference.participant import AudioState, Participant, ParticipantState
from sylkbox.conference.room import Room, RoomState
from sylkbox.config import RoomPolicy

T0 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def room() -> Room:
    return Room(key="room1@sylkbox.local", id="abcd1234", policy=RoomPolicy(), server_name="t/1")


def participant(
    pid: str,
    uri: str,
    *,
    contact: str | None = None,
    state: ParticipantState = ParticipantState.CONNECTED,
    display: str | None = None,
    on_hold: bool = False,
    audio: bool = True,
) -> Participant:
    p = Participant(
        id=pid,
        uri=uri,
        display_name=display,
        contact=contact or uri,
        joined_at=T0,
        state=state,
    )
    if audio:
        p.audio = AudioState(stream_id=f"s-{pid}", remote_on_hold=on_hold)
    return p


def test_new_room_is_active_and_empty() -> None:
    r = room()
    assert r.state is RoomState.ACTIVE
    assert r.is_empty
    assert r.uri == "sip:room1@sylkbox.local"
    assert r.connected_count == 0


def test_add_and_remove() -> None:
    r = room()
    alice = participant("a", "sip:alice@192.0.2.20")
    r.add(alice)
    assert not r.is_empty
    assert r.participants == {"a": alice}
    assert r.remove("a") is alice
    assert r.remove("a") is None
    assert r.is_empty


def test_connected_counts_only_connected_sessions() -> None:
    r = room()
    r.add(participant("a", "sip:alice@192.0.2.20"))
    r.add(participant("b", "sip:bob@192.0.2.30", state=ParticipantState.ALERTING))
    r.add(participant("c", "sip:carol@192.0.2.40", state=ParticipantState.DIALING))
    assert [p.id for p in r.connected()] == ["a"]
    assert r.connected_count == 1


def test_by_uri_compares_user_and_host_only() -> None:
    r = room()
    r.add(participant("a", "sip:alice@Example.COM:5070;transport=tcp"))
    r.add(participant("b", "sip:bob@example.com"))
    assert [p.id for p in r.by_uri("sip:alice@example.com")] == ["a"]
    assert [p.id for p in r.by_uri("<sip:alice@example.com;transport=tls>")] == ["a"]
    assert r.by_uri("sip:alice@example.org") == []
    assert r.by_uri("sip:example.com") == []


def test_bump_advances_the_version() -> None:
    r = room()
    assert [r.bump(), r.bump(), r.bump()] == [1, 2, 3]
    assert r.version == 3


def test_snapshot_groups_sessions_of_one_user() -> None:
    r = room()
    r.add(participant("a1", "sip:alice@192.0.2.20", contact="sip:1@192.0.2.20:5060", display="Al"))
    r.add(participant("b", "sip:bob@192.0.2.30", on_hold=True))
    r.add(participant("a2", "sip:alice@192.0.2.20", contact="sip:2@192.0.2.21:5060"))
    snap = r.snapshot()
    assert snap.entity == "sip:room1@sylkbox.local"
    assert snap.user_count == 2
    assert snap.server_name == "t/1"
    alice, bob = snap.users
    assert alice.entity == "sip:alice@192.0.2.20"
    assert alice.display_text == "Al"
    assert [e.entity for e in alice.endpoints] == ["sip:1@192.0.2.20:5060", "sip:2@192.0.2.21:5060"]
    assert [e.status for e in bob.endpoints] == ["on-hold"]
    assert [m.type for m in bob.endpoints[0].media] == ["audio"]


def test_snapshot_leaves_out_disconnected_and_shows_pending_states() -> None:
    r = room()
    r.add(participant("a", "sip:alice@192.0.2.20", state=ParticipantState.DISCONNECTED))
    r.add(participant("c", "sip:carol@192.0.2.40", state=ParticipantState.DIALING, audio=False))
    snap = r.snapshot()
    assert snap.user_count == 1
    [carol] = snap.users
    [endpoint] = carol.endpoints
    assert endpoint.status == "dialing-out"
    assert endpoint.media == ()


def test_nickname_wins_over_display_name() -> None:
    r = room()
    p = participant("a", "sip:alice@192.0.2.20", display="Alice")
    p.nickname = "ally"
    r.add(p)
    [user] = r.snapshot().users
    assert user.display_text == "ally"
    assert user.endpoints[0].display_text == "ally"


def test_participant_status() -> None:
    p = participant("a", "sip:alice@192.0.2.20")
    assert p.status == "connected"
    assert not p.on_hold
    assert p.audio is not None
    p.audio.remote_on_hold = True
    assert p.on_hold
    assert p.status == "on-hold"
    p.state = ParticipantState.ALERTING
    assert p.status == "alerting"
    assert not participant("b", "sip:b@h", audio=False).on_hold
