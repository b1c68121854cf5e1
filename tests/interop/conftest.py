from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers.chat_peer import ChatPeer
from tests.helpers.server import RunningServer, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path)
    try:
        yield srv
    finally:
        code = srv.stop()
        log = srv.log_text()
        assert "Traceback" not in log, log[-4000:]
        assert code == 0, log[-4000:]


@pytest.fixture
async def peers() -> AsyncIterator[list[ChatPeer]]:
    """Chat participants the test appends to, closed at the end whatever happened."""
    joined: list[ChatPeer] = []
    yield joined
    for peer in joined:
        with contextlib.suppress(Exception):
            await peer.close()
