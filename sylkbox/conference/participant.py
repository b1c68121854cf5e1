"""A participant: one INVITE session in a room (RFC 4579 section 4), and its media state."""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sylkbox.media.control import StreamStats
from sylkbox.sdp import SessionDescription
from sylkbox.sip.dialog import Dialog
from sylkbox.sip.session_timer import SessionTimer

if TYPE_CHECKING:
    from sylkbox.conference.chat_port import MsrpChannel
    from sylkbox.conference.files import FileTransferState
    from sylkbox.msrp.uri import MsrpUri

__all__ = ["AudioState", "ChatState", "Participant", "ParticipantState"]

_media_ids = itertools.count(1000)


def next_media_id() -> str:
    """Opaque, unique media ids for conference-info `<media id=...>` (RFC 4575 5.7)."""
    return str(next(_media_ids))


class ParticipantState(enum.Enum):
    """Life cycle of a participant's INVITE session."""

    DIALING = "dialing-out"  # our INVITE is out (dial-out by REFER or resource list)
    ALERTING = "alerting"  # the callee rings
    CONNECTED = "connected"  # 200 sent or received
    DISCONNECTED = "disconnected"


@dataclass(slots=True, kw_only=True)
class AudioState:
    """The negotiated audio stream; the media worker owns the packets."""

    stream_id: str
    media_id: str = field(default_factory=next_media_id)
    local_port: int = 0
    payload_type: int = 0
    codec: str = "PCMU"
    clock_rate: int = 8000
    telephone_event_pt: int | None = None
    remote_host: str | None = None
    remote_port: int | None = None
    local_direction: str = "sendrecv"
    remote_on_hold: bool = False
    # SRTP (SDES, RFC 4568): suite and base64 master key || salt of each side; never in repr
    srtp_suite: str | None = None
    local_key: str | None = field(default=None, repr=False)
    remote_key: str | None = field(default=None, repr=False)
    stats: StreamStats | None = None  # the worker's latest RTCP figures (for the web UI)


@dataclass(slots=True, kw_only=True)
class ChatState:
    """The negotiated MSRP chat stream (RFC 4975, BLINK.md 4.1 and 7).

    ``local_uri`` is our ``a=path``; ``we_connect`` says whether we are the active side.
    ``pending`` is the listener's expectation (passive side) until the remote connects;
    ``task`` sets the connection up; ``channel`` is the connected session.
    """

    local_uri: MsrpUri
    remote_path: tuple[str, ...]
    we_connect: bool
    tls: bool
    media_id: str = field(default_factory=next_media_id)
    pending: Awaitable[MsrpChannel] | None = None
    task: asyncio.Task[Any] | None = None
    channel: MsrpChannel | None = None
    joined: bool = False  # handed to the chat port


@dataclass(slots=True, kw_only=True)
class Participant:
    """One session in a room. `uri` is the From (or dialled) URI, `contact` the remote Contact."""

    id: str
    uri: str
    display_name: str | None
    contact: str
    joined_at: datetime
    dialog: Dialog | None = None
    state: ParticipantState = ParticipantState.CONNECTED
    audio: AudioState | None = None
    chat: ChatState | None = None
    # a chat stream the box dropped (MSRP connection lost) while audio stayed: its path is
    # answered with port 0 from then on (conference.renegotiation)
    dropped_chat: ChatState | None = None
    file: FileTransferState | None = None  # an RFC 5547 transfer: the session's only stream
    sdp_version: int = 1
    session_timer: SessionTimer | None = None
    transport: str = "udp"
    invited: bool = False
    nickname: str | None = None
    reinvite_pending: bool = False
    local_sdp: SessionDescription | None = None  # our last answer (or offer)
    pending_offer: SessionDescription | None = None  # our offer in a 2xx, answered in the ACK
    session_timer_handle: asyncio.TimerHandle | None = None
    muted: bool = False  # self-muted with *6 (RFC 4575 endpoint status muted-via-focus)
    dtmf_star_at: float | None = None  # monotonic time of the last '*' key, for *6

    @property
    def on_hold(self) -> bool:
        """RFC 4575 `on-hold`: every holdable stream is held by the remote side."""
        return self.audio is not None and self.audio.remote_on_hold

    @property
    def status(self) -> str:
        if self.state is ParticipantState.CONNECTED:
            if self.on_hold:
                return "on-hold"
            return "muted-via-focus" if self.muted else "connected"
        return str(self.state.value)
