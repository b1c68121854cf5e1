"""A Blink-like chat participant for end-to-end tests and benches: SIP over UDP with
`tests.helpers.sipclient.UdpSipClient` (INVITE with audio and/or an ``m=message`` line built by
`tests.msrp_client.sdp`), MSRP with the independent `tests.msrp_client.MsrpTestClient`.

Connection roles (BLINK.md 7): ``setup="active"`` (the box is passive and we connect to the
path of its answer) or ``"passive"``/``"actpass"`` (we listen, the box connects to us).
The blocking SIP socket is only read in a worker thread, so MSRP keeps flowing meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Unpack

from sylkbox.sip.message import Request, Response
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import MsrpTestClient, local_uri, sdp_body, sdp_media
from tests.msrp_client.client import ClientOptions

__all__ = ["ChatPeer", "JoinOptions", "answer_path", "audio_section", "join_room"]


class JoinOptions(ClientOptions, total=False):
    """The keyword options of `join_room`, for helpers that pass them on."""

    tls: bool
    setup: str
    audio: bool
    timeout: float


def audio_section(port: int, host: str = "127.0.0.1") -> str:
    return f"m=audio {port} RTP/AVP 0\r\nc=IN IP4 {host}\r\na=sendrecv\r\n"


def answer_path(body: bytes) -> str:
    """The ``a=path`` of the answer's (first) ``m=message`` section."""
    in_message = False
    for line in body.decode().split("\r\n"):
        if line.startswith("m="):
            in_message = line.startswith("m=message")
        elif in_message and line.startswith("a=path:"):
            return line[len("a=path:") :].strip()
    raise AssertionError(f"no m=message path in the answer:\n{body.decode()}")


@dataclass
class ChatPeer:
    """One participant: its SIP client, its dialog and its MSRP session."""

    sip: UdpSipClient
    room_uri: str
    msrp: MsrpTestClient
    invite_ok: Response
    call_id: str
    rtp: socket.socket | None = None
    cseq: int = 1
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return f"{self.sip.user.title()} <{self.sip.aor}>"

    async def sip_wait(
        self, predicate: Callable[[Request | Response], bool], timeout: float = 5.0
    ) -> Request | Response:
        return await asyncio.to_thread(self.sip.wait_for, predicate, timeout)

    async def wait_bye(self, timeout: float = 10.0) -> Request:
        message = await self.sip_wait(
            lambda m: isinstance(m, Request) and m.method == "BYE" and m.call_id == self.call_id,
            timeout,
        )
        assert isinstance(message, Request)
        return message

    async def hang_up(self) -> None:
        """BYE (when still in the call), then close the MSRP connection and the sockets."""
        to = self.invite_ok.headers.get("To") or ""
        self.cseq += 1
        self.sip.request(
            "BYE", self.room_uri, call_id=self.call_id, to=to, cseq=self.cseq, from_tag="ft"
        )
        with contextlib.suppress(TimeoutError):
            await self.sip_wait(
                lambda m: isinstance(m, Response) and m.call_id == self.call_id
                and m.cseq.method == "BYE",
                3.0,
            )
        await self.close()

    async def close(self) -> None:
        await self.msrp.close()
        self.sip.close()
        if self.rtp is not None:
            self.rtp.close()


async def join_room(
    host: str,
    sip_port: int,
    room: str,
    user: str,
    *,
    tls: bool = True,
    setup: str = "active",
    audio: bool = True,
    timeout: float = 10.0,
    **msrp_options: Unpack[ClientOptions],
) -> ChatPeer:
    """INVITE ``sip:<room>@<host>`` with audio (optional) and chat, ACK, connect MSRP."""
    room_uri = f"sip:{room}@{host}"
    sip = UdpSipClient((host, sip_port), user=user)
    identity = f"{user.title()} <{sip.aor}>"
    options: ClientOptions = {
        "identity": identity,
        "peer_identity": f"<{room_uri}>",
        **msrp_options,
    }
    listener: MsrpTestClient | None = None
    if setup == "active":
        uri = local_uri(tls=tls)
    else:
        listener = await MsrpTestClient.listen(tls=tls, **options)
        uri = listener.local_uri
    sections = [sdp_media([uri], setup=setup)]
    rtp = None
    if audio:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        sections.insert(0, audio_section(rtp.getsockname()[1], host))
    offer = sdp_body(sections, host=host)
    call_id = sip.request("INVITE", room_uri, body=offer, content_type="application/sdp")
    final = await asyncio.to_thread(
        sip.wait_for,
        lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200,
        timeout,
    )
    assert isinstance(final, Response)
    if final.status != 200:
        sip.close()
        raise AssertionError(f"INVITE answered {final.status} {final.reason}")
    sip.ack(room_uri, final)
    path = answer_path(final.body)
    if listener is None:
        msrp = await MsrpTestClient.connect(path, local_uri=uri, timeout=timeout, **options)
    else:
        await listener.accept(path, timeout=timeout)
        msrp = listener
    # the welcome text comes once the box has the session in the room's chat (BLINK.md 4.3)
    await msrp.wait_for(lambda m: m.text.startswith("Welcome!"), timeout=timeout)
    return ChatPeer(sip, room_uri, msrp, final, call_id, rtp)
