"""The focus's view of the SIP endpoint (implemented by `net.sip_endpoint.SipEndpoint`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from sylkbox.sip.message import Request, Response

__all__ = ["Address", "SipPort"]

Address = tuple[str, int]


class SipPort(Protocol):
    def respond(self, response: Response) -> None: ...

    def request(
        self,
        request: Request,
        dest: Address,
        transport: str,
        *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> asyncio.Future[Response]: ...

    def cancel(self, future: asyncio.Future[Response]) -> None: ...

    def send_stateless(self, request: Request, dest: Address, transport: str) -> None: ...

    def contact_host(self, transport: str, peer_host: str) -> Address: ...

    async def resolve(self, host: str, port: int, transport: str) -> Address: ...
