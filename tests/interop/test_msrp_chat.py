"""MSRP chat in a room, end to end against the real server process (BLINK.md 4 and 7).

SIP over UDP with `tests.helpers.sipclient` (offers built by `tests.msrp_client.sdp`), MSRP with
the independent byte-level `tests.msrp_client` (never `sylkbox.msrp`): msrps (the default) and
plain TCP (``[msrp] tls = false``), both connection roles, fan-out without echo, private
messages, nicknames (425, conference-info display-text), is-composing, history, welcome text,
SIP MESSAGE into the room, a stalled reader, a dropped connection, a forged CPIM From.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Unpack

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Request, Response
from tests.helpers.chat_peer import ChatPeer, JoinOptions, join_room
from tests.helpers.msrp_server import room_name, serve
from tests.helpers.server import RunningServer
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import Message

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

CHAT_CONFIG = "[web]\nport = 0\n"
STATUS_NS = "urn:ag-projects:xml:ns:cpim"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, CHAT_CONFIG)


@pytest.fixture
def tcp_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, CHAT_CONFIG + "[msrp]\nport = 0\ntls = false\n")


async def join(
    server: RunningServer,
    peers: list[ChatPeer],
    room: str,
    user: str,
    **options: Unpack[JoinOptions],
) -> ChatPeer:
    peer = await join_room(server.host, server.sip_port, room, user, **options)
    peers.append(peer)
    return peer


def is_chat(text: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return m.cpim is not None and not m.cpim.is_status and m.text == text

    return match


def texts(peer: ChatPeer) -> list[str]:
    return [m.text for m in peer.msrp.messages() if m.cpim is not None and not m.cpim.is_status]


async def settle(seconds: float = 0.3) -> None:
    await asyncio.sleep(seconds)


# ----------------------------------------------------------------------------- fan-out


@pytest.mark.parametrize("kind", ["tls", "tcp"])
@pytest.mark.parametrize("setup", ["active", "passive", "actpass"])
async def test_fan_out_without_echo(
    kind: str, setup: str, request: pytest.FixtureRequest, peers: list[ChatPeer]
) -> None:
    server: RunningServer = request.getfixturevalue(f"{kind}_server")
    tls = kind == "tls"
    room = room_name()
    alice = await join(server, peers, room, "alice", tls=tls, setup=setup)
    bob = await join(server, peers, room, "bob", tls=tls, setup="active", audio=False)
    carol = await join(server, peers, room, "carol", tls=tls, setup="passive")
    for peer in (alice, bob, carol):
        assert peer.msrp.tls is tls
    sent = await alice.msrp.send_chat("hello room")
    assert sent.codes == [200]
    report = await alice.msrp.wait_for_chunk(
        lambda c: c.method == "REPORT" and c.message_id == sent.message_id
    )
    assert report.status is not None and report.status[0] == 200
    for peer in (bob, carol):
        message = await peer.msrp.wait_for(is_chat("hello room"))
        assert message.cpim is not None
        assert message.cpim.sender_uri == alice.sip.aor
        assert message.cpim.recipient_uris == [f"sip:{room}@{server.host}"]
    await settle()
    assert "hello room" not in texts(alice)  # never echoed to the sender


# ------------------------------------------------------------------- welcome and history


async def test_welcome_status_and_history_for_a_late_joiner(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    welcome = await alice.msrp.wait_for(lambda m: m.text.startswith("Welcome!"))
    assert "You are the first participant" in welcome.text
    assert f"SIP: {room}@{tls_server.host}" in welcome.text
    for i in range(3):
        await alice.msrp.send_chat(f"before {i}")
    bob = await join(tls_server, peers, room, "bob", audio=False)
    welcome = await bob.msrp.wait_for(lambda m: m.text.startswith("Welcome!"))
    assert "There is one more participant" in welcome.text
    for i in range(3):
        await bob.msrp.wait_for(is_chat(f"before {i}"))
    order = [t for t in texts(bob) if t.startswith("before")]
    assert order == ["before 0", "before 1", "before 2"]
    # the status line about bob reaches alice, not bob
    joined = await alice.msrp.wait_for(
        lambda m: m.cpim is not None and m.cpim.is_status and "has joined the room" in m.text
    )
    assert "bob@" in joined.text and "with chat" in joined.text
    assert joined.cpim is not None and joined.cpim.ns(STATUS_NS, "Message-Type") == "status"
    await settle()
    assert not any(
        m.cpim is not None and m.cpim.is_status and "Bob" in m.text and "joined" in m.text
        for m in bob.msrp.messages()
    )


# ---------------------------------------------------------------------- private messages


async def test_private_message_reaches_only_the_recipient(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    bob = await join(tls_server, peers, room, "bob", setup="passive")
    carol = await join(tls_server, peers, room, "carol", audio=False)
    sent = await alice.msrp.send_chat("psst bob", to=f"<{bob.sip.aor}>")
    assert sent.codes == [200]
    message = await bob.msrp.wait_for(is_chat("psst bob"))
    assert message.cpim is not None and message.cpim.recipient_uris == [bob.sip.aor]
    await settle()
    assert "psst bob" not in texts(carol)
    assert "psst bob" not in texts(alice)


# ---------------------------------------------------------------- nicknames (RFC 7701)


async def test_nickname_conflict_and_conference_info(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    bob = await join(tls_server, peers, room, "bob", audio=False)
    watcher = UdpSipClient((tls_server.host, tls_server.sip_port), user="watcher")
    try:
        room_uri = f"sip:{room}@{tls_server.host}"
        watcher.request(
            "SUBSCRIBE",
            room_uri,
            headers=(
                "Event: conference\r\nExpires: 600\r\n"
                "Accept: application/conference-info+xml\r\n"
            ),
        )
        await asyncio.to_thread(
            watcher.wait_for, lambda m: isinstance(m, Response) and m.status < 300, 5.0
        )
        assert await alice.msrp.send_nickname("Wonder") == 200
        assert await bob.msrp.send_nickname("wonder") == 425
        assert await bob.msrp.send_nickname("Builder") == 200

        def shows_nicknames(m: Request | Response) -> bool:
            if not (isinstance(m, Request) and m.method == "NOTIFY" and m.body):
                return False
            info = parse_conference_info(m.body)
            names = {u.display_text for u in info.room.users}
            return {"Wonder", "Builder"} <= names

        await asyncio.to_thread(watcher.wait_for, shows_nicknames, 5.0)
        await alice.msrp.send_chat("from a nickname")
        message = await bob.msrp.wait_for(is_chat("from a nickname"))
        assert message.cpim is not None and message.cpim.sender_display == "Wonder"
    finally:
        watcher.close()


# ---------------------------------------------------------------- is-composing (RFC 3994)


async def test_is_composing_is_relayed(tls_server: RunningServer, peers: list[ChatPeer]) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    bob = await join(tls_server, peers, room, "bob", setup="actpass", audio=False)
    await alice.msrp.send_composing("active")
    message = await bob.msrp.wait_for(
        lambda m: m.cpim is not None
        and m.cpim.content_type.startswith("application/im-iscomposing+xml")
    )
    assert message.cpim is not None
    assert b"<state>active</state>" in message.cpim.body
    [chunk] = message.chunks
    assert chunk.success_report == "no" and chunk.failure_report == "no"


# --------------------------------------------------------------------------- SIP MESSAGE


async def test_sip_message_reaches_msrp_participants(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    bob = await join(tls_server, peers, room, "bob", setup="passive", audio=False)
    phone = UdpSipClient((tls_server.host, tls_server.sip_port), user="dave")
    try:
        room_uri = f"sip:{room}@{tls_server.host}"
        call_id = phone.request(
            "MESSAGE", room_uri, body="hi from SIP", content_type="text/plain; charset=utf-8"
        )
        response = await asyncio.to_thread(
            phone.wait_for, lambda m: isinstance(m, Response) and m.call_id == call_id, 5.0
        )
        assert isinstance(response, Response) and response.status == 200
        for peer in (alice, bob):
            message = await peer.msrp.wait_for(is_chat("hi from SIP"))
            assert message.cpim is not None and message.cpim.sender_uri == phone.aor
        # a forged message/cpim From is refused
        forged = (
            "From: Alice <sip:alice@127.0.0.1>\r\nTo: <" + room_uri + ">\r\n"
            "DateTime: 2024-01-01T00:00:00+00:00\r\n\r\n"
            "Content-Type: text/plain\r\n\r\nforged via SIP"
        )
        call_id = phone.request("MESSAGE", room_uri, body=forged, content_type="message/cpim")
        response = await asyncio.to_thread(
            phone.wait_for, lambda m: isinstance(m, Response) and m.call_id == call_id, 5.0
        )
        assert isinstance(response, Response) and response.status == 403
        # a MESSAGE to a room that does not exist
        call_id = phone.request("MESSAGE", f"sip:nobody-{room}@{tls_server.host}", body="x",
                                content_type="text/plain")
        response = await asyncio.to_thread(
            phone.wait_for, lambda m: isinstance(m, Response) and m.call_id == call_id, 5.0
        )
        assert isinstance(response, Response) and response.status == 404
    finally:
        phone.close()
    await settle()
    assert "forged via SIP" not in texts(bob)


async def test_sip_message_with_nobody_in_the_chat_is_kept_in_history(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    # an audio-only participant keeps the room alive without any chat session
    audio_only = UdpSipClient((tls_server.host, tls_server.sip_port), user="erin")
    from tests.helpers.sipclient import sdp_offer

    try:
        room_uri = f"sip:{room}@{tls_server.host}"
        call_id = audio_only.request(
            "INVITE", room_uri, body=sdp_offer(40000), content_type="application/sdp"
        )
        ok = await asyncio.to_thread(
            audio_only.wait_for,
            lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200,
            5.0,
        )
        assert isinstance(ok, Response) and ok.status == 200
        audio_only.ack(room_uri, ok)
        phone = UdpSipClient((tls_server.host, tls_server.sip_port), user="dave")
        try:
            mid = phone.request("MESSAGE", room_uri, body="for later", content_type="text/plain")
            response = await asyncio.to_thread(
                phone.wait_for, lambda m: isinstance(m, Response) and m.call_id == mid, 5.0
            )
            assert isinstance(response, Response) and response.status == 200
        finally:
            phone.close()
        alice = await join(tls_server, peers, room, "alice", audio=False)
        message = await alice.msrp.wait_for(is_chat("for later"))
        assert message.cpim is not None and message.cpim.sender_uri == "sip:dave@127.0.0.1"
    finally:
        audio_only.close()


# ------------------------------------------------------------------------ CPIM From check


async def test_forged_cpim_from_gets_a_failure_report(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    bob = await join(tls_server, peers, room, "bob", audio=False)
    sent = await alice.msrp.send_chat("I am bob", sender=bob.identity)
    report = await alice.msrp.wait_for_chunk(
        lambda c: c.method == "REPORT" and c.message_id == sent.message_id
    )
    assert report.status is not None and report.status[0] != 200
    await settle()
    assert "I am bob" not in texts(bob)


# --------------------------------------------------------------- failures and slow peers


async def test_dropped_connection_of_a_chat_only_participant_ends_the_session(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice")
    watcher = UdpSipClient((tls_server.host, tls_server.sip_port), user="watcher")
    try:
        watcher.request(
            "SUBSCRIBE",
            f"sip:{room}@{tls_server.host}",
            headers="Event: conference\r\nExpires: 600\r\n",
        )
        await asyncio.to_thread(
            watcher.wait_for, lambda m: isinstance(m, Response) and m.status < 300, 5.0
        )
        bob = await join(tls_server, peers, room, "bob", audio=False)

        def roster(m: Request | Response) -> set[str] | None:
            if isinstance(m, Request) and m.method == "NOTIFY" and m.body:
                return {u.entity for u in parse_conference_info(m.body).room.users}
            return None

        await asyncio.to_thread(
            watcher.wait_for, lambda m: bob.sip.aor in (roster(m) or set()), 5.0
        )
        await bob.msrp.close()  # the MSRP connection drops, the SIP dialog is still up
        bye = await bob.wait_bye(10.0)
        assert bye.call_id == bob.call_id
        await asyncio.to_thread(
            watcher.wait_for,
            lambda m: (r := roster(m)) is not None and bob.sip.aor not in r and alice.sip.aor in r,
            5.0,
        )
        left = await alice.msrp.wait_for(
            lambda m: m.cpim is not None and m.cpim.is_status and "has left the room" in m.text
        )
        assert "bob@" in left.text
    finally:
        watcher.close()


def _numbered(i: int) -> Callable[[Message], bool]:
    return lambda m: m.text.startswith(f"{i} ")


async def test_a_stalled_participant_does_not_block_the_others(
    tls_server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join(tls_server, peers, room, "alice", audio=False)
    bob = await join(tls_server, peers, room, "bob", audio=False)
    stalled = await join(tls_server, peers, room, "stan", audio=False)
    await stalled.msrp.wait_for(lambda m: m.text.startswith("Welcome!"))
    # stop reading (the socket stays open: the TCP window fills up, nothing is answered)
    assert stalled.msrp._writer is not None
    transport = stalled.msrp._writer.transport
    assert isinstance(transport, asyncio.ReadTransport)
    transport.pause_reading()
    body = "x" * 16000
    count = 600  # 9.6 MB: beyond the box's per-participant queue and the socket buffers
    for i in range(count):
        sent = await alice.msrp.send_message(
            ("From: Alice <sip:alice@127.0.0.1>\r\nTo: <sip:" + f"{room}@127.0.0.1>\r\n"
             "DateTime: 2024-01-01T00:00:00+00:00\r\n\r\nContent-Type: text/plain\r\n\r\n"
             f"{i} {body}").encode(),
            "message/cpim",
            wait=False,
        )
        assert sent.message_id
        if i % 50 == 49:  # bob keeps up (his backlog stays far below the box's bound of 256
            # messages even on a loaded machine); only the stalled reader falls behind
            await bob.msrp.wait_for(_numbered(i), timeout=30)
    await bob.msrp.wait_for(lambda m: m.text.startswith(f"{count - 1} "), timeout=30)
    received = [m.text.split(" ", 1)[0] for m in bob.msrp.messages() if m.text.endswith(body)]
    assert received == [str(i) for i in range(count)]
    bye = await stalled.wait_bye(30.0)
    assert bye.call_id == stalled.call_id
