"""sylkbox.msrp: sans-I/O MSRP (RFC 4975, RFC 4976 paths, RFC 7701 nicknames).

Bytes go into `MsrpParser`, parsed chunks into `MsrpSession`, typed events come out; the
session's `data_to_send()` gives the bytes to write. No I/O, no asyncio: see ``net/msrp.py``.
"""

from sylkbox.msrp.errors import LocalProtocolError, MsrpError, ParseError, RemoteProtocolError
from sylkbox.msrp.message import (
    ByteRange,
    MsrpRequest,
    MsrpResponse,
    Status,
    make_response,
)
from sylkbox.msrp.parser import MsrpParser, ParserLimits
from sylkbox.msrp.session import (
    ChunkReceived,
    ChunkSource,
    FileOffsetRequested,
    MessageAborted,
    MessageReceived,
    MsrpEvent,
    MsrpSession,
    NicknameRequested,
    ReportReceived,
    ResponseReceived,
    SessionConfig,
    SessionState,
    TransactionTimedOut,
)
from sylkbox.msrp.uri import MsrpUri, new_session_id, parse_path

__all__ = [
    "ByteRange",
    "ChunkReceived",
    "ChunkSource",
    "FileOffsetRequested",
    "LocalProtocolError",
    "MessageAborted",
    "MessageReceived",
    "MsrpError",
    "MsrpEvent",
    "MsrpParser",
    "MsrpRequest",
    "MsrpResponse",
    "MsrpSession",
    "MsrpUri",
    "NicknameRequested",
    "ParseError",
    "ParserLimits",
    "RemoteProtocolError",
    "ReportReceived",
    "ResponseReceived",
    "SessionConfig",
    "SessionState",
    "Status",
    "TransactionTimedOut",
    "make_response",
    "new_session_id",
    "parse_path",
]
