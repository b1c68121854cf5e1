"""RFC 5547 file sessions with a room, as Blink's sipsimple opens them (BLINK.md 5): SIP over
UDP with `tests.helpers.sipclient`, MSRP with the independent `tests.msrp_client`.

An upload is its own INVITE with one ``sendonly`` file stream (full file-selector); a pull is a
``recvonly`` one whose selector names the file by hash. We are the ``active`` side and connect
to the path of the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from dataclasses import dataclass

from sylkbox.sip.message import Request, Response
from tests.helpers.chat_peer import ChatPeer, answer_path
from tests.helpers.server import RunningServer
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import MsrpTestClient, file_selector, local_uri, sdp_body, sdp_media

__all__ = [
    "FILE_TRANSFER_ID",
    "FileSession",
    "file_session",
    "payload",
    "pull_selector",
    "selector_for",
    "subscribe",
    "upload",
    "wait_notify_with_files",
]

FILE_TRANSFER_ID = "0c8e35c2-6f3a-4bd1-9b1e-3c6c2d7f4a11"


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
    extra.append(("file-transfer-id", FILE_TRANSFER_ID))
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


def selector_for(data: bytes, name: str = "report.pdf", kind: str = "application/pdf") -> str:
    """The full file-selector of an upload (RFC 5547 5: name, type, size, SHA-1)."""
    return file_selector(name, kind, len(data), hashlib.sha1(data).hexdigest())


def pull_selector(data: bytes, name: str = "report.pdf") -> str:
    """The selector of a pull: the name and the hash of the wanted file."""
    pairs = ":".join(f"{b:02X}" for b in hashlib.sha1(data).digest())
    return f'name:"{name}" hash:sha-1:{pairs}'


async def upload(server: RunningServer, room: str, data: bytes) -> FileSession:
    """Bob uploads `data` into `room` (after a FILE_OFFSET); returns on the 200 REPORT."""
    session = await file_session(
        server, room, "bob", direction="sendonly", selector=selector_for(data)
    )
    assert session.final.status == 200, session.final.reason
    assert session.msrp is not None
    await session.msrp.send_file(data, content_type="application/pdf", use_file_offset=True,
                                 timeout=20.0)
    return session


def payload(size: int) -> bytes:
    return os.urandom(size)


async def subscribe(alice: ChatPeer) -> None:
    """SUBSCRIBE to the room's conference event package (RFC 4575)."""
    alice.sip.request(
        "SUBSCRIBE", alice.room_uri, from_tag="sub", call_id="sub-" + secrets.token_hex(4),
        headers="Event: conference\r\nAccept: application/conference-info+xml\r\n"
        "Expires: 600\r\n",
    )


async def wait_notify_with_files(alice: ChatPeer, timeout: float = 10.0) -> Request:
    """The first conference-info NOTIFY that lists a shared file (``agp-conf:file``)."""

    def has_files(m: object) -> bool:
        return isinstance(m, Request) and m.method == "NOTIFY" and b"agp-conf:file " in m.body

    message = await asyncio.to_thread(alice.sip.wait_for, has_files, timeout)
    assert isinstance(message, Request)
    return message
