from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers.chat_peer import ChatPeer
from tests.helpers.server import RunningServer, serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from serve(tmp_path)


@pytest.fixture
async def peers() -> AsyncIterator[list[ChatPeer]]:
    """Chat participants the test appends to, closed at the end whatever happened."""
    joined: list[ChatPeer] = []
    yield joined
    for peer in joined:
        with contextlib.suppress(Exception):
            await peer.close()
