"""The focus's view of the media worker: a `typing.Protocol` port (as aioice's senders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sylkbox.media.control import SrtpParams

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
    srtp: SrtpParams | None = None  # SDES keys (hidden in repr); None: plain RTP
    room_rate: int = 0  # the room's mixing rate (RoomPolicy.mixing_rate); 0: [media] default


class MediaPort(Protocol):
    async def add_stream(self, room_id: str, spec: StreamSpec) -> int:
        """Create the stream in the room's mixer; return the local RTP port."""
        ...

    async def update_stream(self, spec: StreamSpec) -> None: ...

    async def remove_stream(self, stream_id: str) -> None: ...

    async def set_mute(self, stream_id: str, muted: bool) -> None:
        """Keep (or stop keeping) the stream's audio out of the room mix; it still hears."""
        ...

    def play_prompt(self, room_id: str, prompt: str, stream_id: str | None = None) -> None:
        """Play a prompt (`media.control.PROMPT_NAMES`) to the whole room, or privately to
        one stream; fire and forget."""
        ...
