"""Shared files across a restart of the real server process (BLINK.md 5, ``[files]``).

A persistent room keeps its files: upload, SIGTERM (exit 0), a new server on the same data dir
says how many stored files it loaded, a new participant's conference-info NOTIFY lists the file
in ``agp-conf:files`` and a pull by hash returns the same bytes.  A non-persistent room keeps
them ``[files] retention`` seconds after the upload: still there when the room is created again
after the restart, then expired by housekeeping (gone from the index, the disk and the NOTIFYed
list; a pull is answered 404).  A download that is still running when its session ends or the
server stops has its file descriptor closed.

SIP with `tests.helpers.sipclient`, MSRP with the independent `tests.msrp_client`, through the
helpers of `tests.helpers.file_transfer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import cast

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Request
from tests.helpers import msrp_server
from tests.helpers.chat_peer import ChatPeer, join_room
from tests.helpers.file_transfer import (
    FileSession,
    file_session,
    payload,
    pull_selector,
    subscribe,
    upload,
    wait_notify_with_files,
)
from tests.helpers.msrp_server import BASE_CONFIG, room_name
from tests.helpers.server import RunningServer, start_server

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]

# seconds: the restart (~1 s here) must fit well inside it on a loaded machine; housekeeping
# then sweeps every 2 s (files.expiry_interval)
RETENTION = 4


def files_config(*, retention: int = 86400, max_size: int = 4_000_000) -> str:
    return (
        f"[files]\nmax_size = {max_size}\nroom_quota = {max_size * 2}\n"
        f"retention = {retention}\n"
    )


def persistent(room: str) -> str:
    return f'[rooms."{room}@127.0.0.1"]\npersistent = true\n'


def stop_cleanly(server: RunningServer) -> str:
    """SIGTERM: the server must exit 0 without a traceback, saying so; returns its log."""
    log = msrp_server.stop_cleanly(server, timeout=10.0)
    assert "sylkbox stopped" in log, log[-4000:]
    return log


async def stop_answering(server: RunningServer, *byes: Awaitable[Request]) -> str:
    """Stop while sessions are up: each gets the server's BYE (the clients answer it)."""
    stopped = asyncio.create_task(asyncio.to_thread(stop_cleanly, server))
    for bye in byes:
        await bye
    return await stopped


async def stop_with_peer(server: RunningServer, peer: ChatPeer) -> str:
    """Stop while `peer` is in the room (see `stop_answering`)."""
    log = await stop_answering(server, peer.wait_bye())
    await peer.close()
    return log


def stored_path(server: RunningServer, data: bytes) -> Path:
    [path] = (server.data_dir / "files").glob(f"*/{hashlib.sha1(data).hexdigest()}")
    return path


def indexed(server: RunningServer) -> list[tuple[str, str]]:
    """The ``shared_files`` rows (room, sha1), read beside the running server."""
    db = sqlite3.connect(server.data_dir / "state.sqlite")
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT room_key, sha1 FROM shared_files")]
    finally:
        db.close()


async def pull(server: RunningServer, room: str, data: bytes) -> tuple[bytes, float]:
    """Download by hash only: the received bytes (after the server's BYE) and when the
    INVITE was accepted (monotonic)."""
    session = await file_session(
        server, room, "carol", direction="recvonly", selector=pull_selector(data, "any.bin")
    )
    accepted = time.monotonic()
    assert session.final.status == 200, session.final.reason
    assert session.msrp is not None
    message = await session.msrp.wait_for(timeout=20.0)
    await session.wait_bye()
    await session.close()
    return message.body, accepted


async def test_persistent_room_files_survive_a_restart(tmp_path: Path) -> None:
    room = room_name()
    config = BASE_CONFIG + files_config() + persistent(room)
    data = payload(150_000)
    first = start_server(tmp_path, config=config, log_level="info")
    try:
        assert "0 stored files of 0 rooms loaded" in first.log_text()
        alice = await join_room(first.host, first.sip_port, room, "alice")
        session = await upload(first, room, data)
        await session.wait_bye()
        await session.close()
        on_disk = stored_path(first, data)
        await stop_with_peer(first, alice)
    finally:
        first.stop()

    second = start_server(tmp_path, config=config, log_level="info")
    try:
        assert second.data_dir == first.data_dir and on_disk.is_file()
        assert "1 stored files of 1 rooms loaded" in second.log_text()
        dave = await join_room(second.host, second.sip_port, room, "dave")
        await subscribe(dave)
        notify = await wait_notify_with_files(dave)
        [shared] = parse_conference_info(notify.body).room.files
        digest = hashlib.sha1(data).digest()
        assert shared.hash == "sha-1:" + ":".join(f"{b:02X}" for b in digest)
        assert shared.name == "report.pdf" and shared.size == len(data)
        assert shared.sender == "Bob <sip:bob@127.0.0.1>"
        received, _ = await pull(second, room, data)
        assert hashlib.sha1(received).digest() == digest
        await stop_with_peer(second, dave)
    finally:
        second.stop()
    assert on_disk.is_file()  # persistent: never expired


async def test_retention_keeps_files_over_a_restart_then_expires_them(tmp_path: Path) -> None:
    room = room_name()
    config = BASE_CONFIG + files_config(retention=RETENTION)
    data = payload(100_000)
    first = start_server(tmp_path, config=config, log_level="info")
    try:
        alice = await join_room(first.host, first.sip_port, room, "alice")
        session = await upload(first, room, data)  # returns on the 200 REPORT: stored
        uploaded = time.monotonic()
        await alice.hang_up()
        on_disk = stored_path(first, data)
        await stop_answering(first, session.wait_bye())  # the room ends; its files stay
        await session.close()
    finally:
        first.stop()

    second = start_server(tmp_path, config=config, log_level="info")
    try:
        assert "1 stored files of 1 rooms loaded" in second.log_text()
        dave = await join_room(second.host, second.sip_port, room, "dave")  # the room again
        received, accepted = await pull(second, room, data)
        # the pull was accepted within the retention, or this run proves nothing
        assert accepted - uploaded < RETENTION, "restart slower than the retention"
        assert received == data
        await subscribe(dave)
        await wait_notify_with_files(dave)
        # expired by housekeeping (every RETENTION / 2 s): disk, index, then a NOTIFY
        deadline = uploaded + RETENTION * 1.5 + 5.0
        while on_disk.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not on_disk.exists(), "not expired"
        assert indexed(second) == []
        notify = await dave.sip_wait(
            lambda m: isinstance(m, Request) and m.method == "NOTIFY"
            and b"agp-conf:file " not in m.body,
            5.0,
        )
        assert not parse_conference_info(notify.body).room.files
        gone = await file_session(
            second, room, "carol", direction="recvonly", selector=pull_selector(data)
        )
        assert gone.final.status == 404
        gone.sip.close()
        assert not list((second.data_dir / "files").glob("*/[0-9a-f]*"))
        await stop_with_peer(second, dave)
    finally:
        second.stop()


def open_paths(pid: int) -> set[Path]:
    """What the server process has open (``/proc/<pid>/fd``)."""
    paths = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            paths.add(Path(os.readlink(fd)))
        except OSError:
            continue  # closed meanwhile
    return paths


async def stalled_download(server: RunningServer, room: str, data: bytes, user: str) -> FileSession:
    """Start a pull and stop reading it: the server's send stalls with the file open."""
    session = await file_session(
        server, room, user, direction="recvonly", selector=pull_selector(data)
    )
    assert session.final.status == 200, session.final.reason
    assert session.msrp is not None
    writer = session.msrp._writer
    assert writer is not None
    cast(asyncio.Transport, writer.transport).pause_reading()
    return session


async def test_running_download_is_closed_on_bye_and_on_shutdown(tmp_path: Path) -> None:
    room = room_name()
    size = 24_000_000  # more than the loopback socket buffers hold: the send stalls
    config = BASE_CONFIG + files_config(max_size=size)
    data = payload(size)
    server = start_server(tmp_path, config=config, log_level="info")
    try:
        alice = await join_room(server.host, server.sip_port, room, "alice")
        session = await upload(server, room, data)
        await session.wait_bye(timeout=10.0)
        await session.close()
        path = stored_path(server, data).resolve()
        pid = server.process.pid
        assert path not in open_paths(pid)

        carol = await stalled_download(server, room, data, "carol")
        deadline = time.monotonic() + 10.0
        while path not in open_paths(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert path in open_paths(pid), "the download never opened the file"
        await asyncio.sleep(0.5)
        assert path in open_paths(pid), "the download ended early"
        # the peer hangs up mid-download: the transfer stops and the descriptor is closed
        to = carol.final.headers.get("To") or ""
        carol.sip.request("BYE", carol.room_uri, call_id=carol.final.call_id, to=to, cseq=2)
        deadline = time.monotonic() + 5.0
        while path in open_paths(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert path not in open_paths(pid)
        await carol.close()

        # and a download still running at SIGTERM does not keep the server from a clean exit
        dave = await stalled_download(server, room, data, "dave")
        deadline = time.monotonic() + 10.0
        while path not in open_paths(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert path in open_paths(pid)
        await stop_answering(server, alice.wait_bye(), dave.wait_bye())
        await alice.close()
        await dave.close()
    finally:
        server.stop()
