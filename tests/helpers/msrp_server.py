"""The sylkbox server process of the MSRP end-to-end tests and benches (chat, files, push).

`serve` is the body of their server fixtures: a server on loopback with `BASE_CONFIG` plus the
test's own sections, which must exit 0 with no traceback in its log when the test is over.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import server
from tests.helpers.server import RunningServer, stop_cleanly

__all__ = ["BASE_CONFIG", "room_name", "serve", "stop_cleanly"]

# no RTP timeout and no prompts: the participants of these tests often have no audio
BASE_CONFIG = "[media]\nrtp_timeout = 3600\nprompts = false\n"


def room_name() -> str:
    """A room of its own for each test."""
    return "room" + secrets.token_hex(3)


def serve(tmp: Path, config: str = "") -> Iterator[RunningServer]:
    """Yield a server with `BASE_CONFIG` + `config` (info log), then stop it cleanly."""
    yield from server.serve(tmp, config=BASE_CONFIG + config, log_level="info")
