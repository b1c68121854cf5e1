from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
