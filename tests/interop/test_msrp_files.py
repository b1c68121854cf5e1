"""RFC 5547 file transfer in rooms, end to end against the real server process (BLINK.md 5).

SIP over UDP with `tests.helpers.sipclient`, MSRP with the independent byte-level
`tests.msrp_client` (never `sylkbox.msrp`): an upload in its own INVITE (``sendonly``), the
200 REPORT after the hash check and the BYE 1 s later, conference-info ``agp-conf:files`` in a
NOTIFY, a late joiner pulling the file by hash (SHA-1 of the received bytes), resume with
FILE_OFFSET both ways, 413 for an oversized offer, 404 for an unknown hash or room, a corrupted
upload refused, and files surviving a restart of a persistent room.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Request, Response
from tests.helpers.chat_peer import ChatPeer, answer_path, join_room
from tests.helpers.server import RunningServer, start_server
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import MsrpTestClient, file_selector, local_uri, sdp_body, sdp_media

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

BASE_CONFIG = "[media]\nrtp_timeout = 3600\nprompts = false\n"
FILES_CONFIG = "[files]\nmax_size = 4000000\nroom_quota = 6000000\n[web]\nport = 0\n"


def _run(tmp: Path, extra: str = "") -> Iterator[RunningServer]:
    srv = start_server(tmp, config=BASE_CONFIG + FILES_CONFIG + extra, log_level="info")
    try:
        yield srv
    finally:
        code = srv.stop()
        log = srv.log_text()
        assert "Traceback" not in log, log[-4000:]
        assert code == 0, log[-4000:]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from _run(tmp_path)


@pytest.fixture
async def peers() -> AsyncIterator[list[ChatPeer]]:
    joined: list[ChatPeer] = []
    yield joined
    for peer in joined:
        with contextlib.suppress(Exception):
            await peer.close()


@dataclass
class FileSession:
    sip: UdpSipClient
    room_uri: str
    final: Response
    msrp: MsrpTestClient | None
    local_uri: str = ""

    async def wait_bye(self, timeout: float = 6.0) -> Request:
        message = await asyncio.to_thread(
            self.sip.wait_for,
            lambda m: isinstance(m, Request) and m.method == "BYE",
            timeout,
        )
        assert isinstance(message, Request)
        return message

    async def close(self) -> None:
        if self.msrp is not None:
            await self.msrp.close()
        self.sip.close()


def room_name() -> str:
    return "room" + secrets.token_hex(3)


async def file_session(
    server: RunningServer,
    room: str,
    user: str,
    *,
    direction: str,
    selector: str,
    file_offset: bool = True,
    connect: bool = True,
) -> FileSession:
    """INVITE the room with one file stream as sipsimple writes it (BLINK.md 5), we are
    ``active``; ACK and connect when the answer is 200."""
    room_uri = f"sip:{room}@{server.host}"
    sip = UdpSipClient((server.host, server.sip_port), user=user)
    uri = local_uri(tls=True)
    extra: list[tuple[str, str | None]] = [("file-selector", selector)]
    if file_offset:
        extra.append(("x-file-offset", None))
    extra.append(("file-transfer-id", "0c8e35c2-6f3a-4bd1-9b1e-3c6c2d7f4a11"))
    media = sdp_media(
        [uri], setup="active", direction=direction, accept_types=("*",),
        accept_wrapped_types=None, extra=extra,
    )
    call_id = sip.request(
        "INVITE", room_uri, body=sdp_body(media, host=server.host), content_type="application/sdp"
    )
    final = await asyncio.to_thread(
        sip.wait_for,
        lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200,
        10.0,
    )
    assert isinstance(final, Response)
    if final.status != 200:
        return FileSession(sip, room_uri, final, None, uri)
    sip.ack(room_uri, final)
    msrp = None
    if connect:
        msrp = await MsrpTestClient.connect(answer_path(final.body), local_uri=uri, timeout=10.0)
    return FileSession(sip, room_uri, final, msrp, uri)


def answer_attributes(final: Response) -> dict[str, str | None]:
    attributes: dict[str, str | None] = {}
    for line in final.body.decode().split("\r\n"):
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            attributes[name] = value if _ else None
    return attributes


def selector_for(data: bytes, name: str = "report.pdf", kind: str = "application/pdf") -> str:
    return file_selector(name, kind, len(data), hashlib.sha1(data).hexdigest())


def pull_selector(data: bytes, name: str = "report.pdf") -> str:
    pairs = ":".join(f"{b:02X}" for b in hashlib.sha1(data).digest())
    return f'name:"{name}" hash:sha-1:{pairs}'


async def upload(server: RunningServer, room: str, data: bytes, **kwargs: object) -> FileSession:
    session = await file_session(
        server, room, "bob", direction="sendonly", selector=selector_for(data)
    )
    assert session.final.status == 200, session.final.reason
    assert session.msrp is not None
    await session.msrp.send_file(data, content_type="application/pdf", use_file_offset=True,
                                 timeout=20.0, **kwargs)  # type: ignore[arg-type]
    return session


def payload(size: int) -> bytes:
    return os.urandom(size)


async def subscribe(alice: ChatPeer) -> None:
    alice.sip.request(
        "SUBSCRIBE", alice.room_uri, from_tag="sub", call_id="sub-" + secrets.token_hex(4),
        headers="Event: conference\r\nAccept: application/conference-info+xml\r\n"
        "Expires: 600\r\n",
    )


async def wait_notify_with_files(alice: ChatPeer, timeout: float = 10.0) -> Request:
    def has_files(m: object) -> bool:
        return isinstance(m, Request) and m.method == "NOTIFY" and b"agp-conf:file " in m.body

    message = await asyncio.to_thread(alice.sip.wait_for, has_files, timeout)
    assert isinstance(message, Request)
    return message


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
    assert answer["file-transfer-id"] == "0c8e35c2-6f3a-4bd1-9b1e-3c6c2d7f4a11"
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
