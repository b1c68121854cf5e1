"""An independent, byte-level MSRP peer for tests (RFC 4975, RFC 7701, RFC 3862, BLINK.md 4-7).

Nothing here imports `sylkbox.msrp`: the framing, CPIM and SDP helpers are written from the RFCs
and from what Blink's msrplib/sipsimple put on the wire, so that a misreading shared with the
server core shows up as a failing test. Modules: `wire` (framing, builders, parser),
`cpim` (CPIM as sipsimple writes it), `sdp` (m=message lines), `client` (asyncio endpoint).
"""

from tests.msrp_client.client import (
    FILE_CHUNK_SIZE,
    Message,
    MsrpTestClient,
    Received,
    SentMessage,
    local_uri,
)
from tests.msrp_client.cpim import CpimMessage, build_cpim, parse_cpim
from tests.msrp_client.sdp import file_selector, sdp_body, sdp_media
from tests.msrp_client.wire import ByteRange, Chunk, WireError, WireParser

__all__ = [
    "FILE_CHUNK_SIZE",
    "ByteRange",
    "Chunk",
    "CpimMessage",
    "Message",
    "MsrpTestClient",
    "Received",
    "SentMessage",
    "WireError",
    "WireParser",
    "build_cpim",
    "file_selector",
    "local_uri",
    "parse_cpim",
    "sdp_body",
    "sdp_media",
]
