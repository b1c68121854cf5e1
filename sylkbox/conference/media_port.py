"""The focus's view of the media worker: a `typing.Protocol` port (as aioice's senders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["MediaPort", "StreamSpec"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """One negotiated RTP stream. `direction` is ours (the answer's), RFC 3264 6.1."""

    stream_id: str
    local_port: int | None
    remote_host: str | None
    remote_port: int | None
    payload_type: int
    codec: str
    clock_rate: int
    telephone_event_pt: int | None
    direction: str


class MediaPort(Protocol):
    async def add_stream(self, room_id: str, spec: StreamSpec) -> int:
        """Create the stream in the room's mixer; return the local RTP port."""
        ...

    async def update_stream(self, spec: StreamSpec) -> None: ...

    async def remove_stream(self, stream_id: str) -> None: ...
