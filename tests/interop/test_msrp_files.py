"""RFC 5547 file transfer in rooms, end to end against the real server process (BLINK.md 5).

SIP over UDP with `tests.helpers.sipclient`, MSRP with the independent byte-level
`tests.msrp_client` (never `sylkbox.msrp`): an upload in its own INVITE (``sendonly``), the
200 REPORT after the hash check and the BYE 1 s later, conference-info ``agp-conf:files`` in a
NOTIFY, a late joiner pulling the file by hash (SHA-1 of the received bytes), resume with
FILE_OFFSET both ways, 413 for an oversized offer, 404 for an unknown hash or room, a corrupted
upload refused, and files surviving a restart of a persistent room.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Response
from tests.helpers.chat_peer import ChatPeer, answer_path, join_room
from tests.helpers.file_transfer import (
    FILE_TRANSFER_ID,
    file_session,
    payload,
    pull_selector,
    selector_for,
    subscribe,
    upload,
    wait_notify_with_files,
)
from tests.helpers.msrp_server import room_name, serve
from tests.helpers.server import RunningServer
from tests.msrp_client import MsrpTestClient, file_selector

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

FILES_CONFIG = "[files]\nmax_size = 4000000\nroom_quota = 6000000\n[web]\nport = 0\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path, FILES_CONFIG)


def answer_attributes(final: Response) -> dict[str, str | None]:
    attributes: dict[str, str | None] = {}
    for line in final.body.decode().split("\r\n"):
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            attributes[name] = value if _ else None
    return attributes


# ------------------------------------------------------------------------------ tests


async def test_upload_notify_and_late_joiner_pull(
    server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    await subscribe(alice)
    data = payload(300_000)  # five 64 KiB chunks
    session = await upload(server, room, data)
    answer = answer_attributes(session.final)
    assert "recvonly" in answer and "x-file-offset" in answer
    assert answer["file-selector"] == selector_for(data)
    assert answer["file-transfer-id"] == FILE_TRANSFER_ID
    assert session.msrp is not None
    assert all(c.code == 200 for c in session.msrp.chunks() if c.method is None)
    await session.wait_bye()  # the server ends the upload session (~1 s)
    notify = await wait_notify_with_files(alice)
    info = parse_conference_info(notify.body)
    [shared] = info.room.files
    assert shared.name == "report.pdf" and shared.size == len(data)
    assert shared.hash == "sha-1:" + ":".join(f"{b:02X}" for b in hashlib.sha1(data).digest())
    assert shared.sender == "Bob <sip:bob@127.0.0.1>"
    assert {u.entity for u in info.room.users} == {"sip:alice@127.0.0.1"}  # no file-only users
    stored = list((server.data_dir / "files").glob("*/*"))
    assert hashlib.sha1(data).hexdigest() in [p.name for p in stored]
    assert not any("report" in str(p) for p in (server.data_dir / "files").rglob("*"))
    await session.close()

    carol = await file_session(
        server, room, "carol", direction="recvonly", selector=pull_selector(data)
    )
    assert carol.final.status == 200
    answer = answer_attributes(carol.final)
    assert "sendonly" in answer
    assert answer["file-selector"] == selector_for(data)  # name, type, size, hash
    assert carol.msrp is not None
    message = await carol.msrp.wait_for(timeout=20.0)
    assert hashlib.sha1(message.body).digest() == hashlib.sha1(data).digest()
    assert message.content_type == "application/pdf"
    offsets = [c for c in carol.msrp.chunks("FILE_OFFSET")]
    assert len(offsets) == 1  # asked first, as msrplib does
    assert all(len(c.body) <= 65536 for c in carol.msrp.chunks("SEND"))
    await carol.wait_bye()
    await carol.close()


async def test_download_resumes_from_file_offset(
    server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    data = payload(200_000)
    session = await upload(server, room, data)
    await session.close()
    carol = await file_session(
        server, room, "carol", direction="recvonly", selector=pull_selector(data), connect=False
    )
    assert carol.final.status == 200
    offer_path = [
        line.split(":", 1)[1] for line in carol.final.body.decode().split("\r\n")
        if line.startswith("a=path:")
    ]
    assert offer_path
    client = await MsrpTestClient.connect(
        answer_path(carol.final.body), local_uri=carol.local_uri, bind=False, timeout=10.0
    )
    carol.msrp = client
    client.file_offset = 70_000  # we already have that much: the box sends only the rest
    await client.bind()
    last = await client.wait_for_chunk(
        lambda c: c.method == "SEND" and c.flag == "$" and bool(c.body), timeout=20.0
    )
    sends = [c for c in client.chunks("SEND") if c.message_id == last.message_id]
    assert sends[0].byte_range is not None and sends[0].byte_range.start == 70_001
    assert b"".join(c.body for c in sends) == data[70_000:]
    await carol.wait_bye()
    await carol.close()


async def test_upload_resume_after_abort(server: RunningServer, peers: list[ChatPeer]) -> None:
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    data = payload(400_000)
    first = await file_session(
        server, room, "bob", direction="sendonly", selector=selector_for(data)
    )
    assert first.msrp is not None
    await first.msrp.send_file(data, abort_at=65536 * 3, timeout=20.0)
    await first.wait_bye()
    await first.close()
    second = await file_session(
        server, room, "bob", direction="sendonly", selector=selector_for(data)
    )
    assert second.msrp is not None
    code, offset = await second.msrp.send_file_offset()
    # the chunks before the aborting '#' one are kept (its own body is dropped with it)
    assert code == 200 and offset == 65536 * 2
    sent = await second.msrp.send_file(data, use_file_offset=True, timeout=20.0)
    assert sent.chunks[0].byte_range is not None and sent.chunks[0].byte_range.start == offset + 1
    assert sum(len(c.body) for c in sent.chunks) == len(data) - offset  # only the rest
    await second.wait_bye()
    await second.close()
    pull = await file_session(
        server, room, "carol", direction="recvonly", selector=pull_selector(data)
    )
    assert pull.msrp is not None
    message = await pull.msrp.wait_for(timeout=20.0)
    assert message.body == data
    await pull.close()


async def test_corrupted_upload_is_refused(server: RunningServer, peers: list[ChatPeer]) -> None:
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    data = payload(100_000)
    wrong = hashlib.sha1(b"something else").hexdigest()
    session = await file_session(
        server, room, "bob", direction="sendonly",
        selector=file_selector("x.bin", "application/octet-stream", len(data), wrong),
    )
    assert session.msrp is not None
    sent = await session.msrp.send_file(data, wait_report=False, timeout=20.0)
    report = await session.msrp.wait_for_chunk(
        lambda c: c.method == "REPORT" and c.message_id == sent.message_id, timeout=10.0
    )
    assert report.status is not None and report.status[0] != 200
    await session.wait_bye()
    await session.close()
    assert not list((server.data_dir / "files").glob("*/[0-9a-f]*"))


async def test_oversize_unknown_hash_and_missing_room(
    server: RunningServer, peers: list[ChatPeer]
) -> None:
    room = room_name()
    missing = await file_session(
        server, room, "bob", direction="sendonly", selector=selector_for(b"abc")
    )
    assert missing.final.status == 404  # the room must exist (BLINK.md 5)
    missing.sip.close()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    big = file_selector("big.iso", "application/octet-stream", 5_000_000, "00" * 20)
    oversize = await file_session(server, room, "bob", direction="sendonly", selector=big)
    assert oversize.final.status == 413
    oversize.sip.close()
    unknown = await file_session(
        server, room, "carol", direction="recvonly", selector=pull_selector(b"never uploaded")
    )
    assert unknown.final.status == 404
    unknown.sip.close()


@pytest.mark.parametrize("name", ["../../etc/passwd", "a\x00b", "x" * 4000 + ".txt", "%FF%FEbad"])
async def test_hostile_names_never_reach_the_file_system(
    server: RunningServer, peers: list[ChatPeer], name: str
) -> None:
    room = room_name()
    alice = await join_room(server.host, server.sip_port, room, "alice")
    peers.append(alice)
    await subscribe(alice)
    data = payload(1000)
    encoded = name.replace("\x00", "%00")
    session = await file_session(
        server, room, "bob", direction="sendonly",
        selector=file_selector(encoded, "text/plain", len(data), hashlib.sha1(data).hexdigest()),
    )
    assert session.final.status == 200
    assert session.msrp is not None
    await session.msrp.send_file(data, content_type="text/plain", timeout=10.0)
    notify = await wait_notify_with_files(alice)
    [shared] = parse_conference_info(notify.body).room.files
    assert "/" not in shared.name and "\x00" not in shared.name and len(shared.name) <= 128
    root = server.data_dir / "files"
    names = {p.name for p in root.rglob("*")}
    assert hashlib.sha1(data).hexdigest() in names
    assert not (server.data_dir.parent / "etc").exists()
    await session.close()
