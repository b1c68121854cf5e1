"""Tests for sylkbox.cli: how `run` starts the server (issue 5: advertised within 1 s).

The advertiser and the server are fakes here (nothing is bound, nothing multicast); the real
timing is measured by bench/discovery.py in network namespaces.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType, SimpleNamespace
from typing import cast

import pytest

import sylkbox.app
from sylkbox import cli
from sylkbox.config import Config, parse_config
from sylkbox.discovery import advertiser as advertiser_module
from sylkbox.discovery.advertiser import Advertiser


class FakeAdvertiser:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def stop(self) -> None:
        self.events.append("advertiser stopped")


def _wire(monkeypatch: pytest.MonkeyPatch, events: list[str], *,
          import_error: Exception | None = None) -> FakeAdvertiser:
    advertiser = FakeAdvertiser(events)

    async def start_advertiser(config: Config) -> Advertiser:
        events.append("advertiser started")
        return cast(Advertiser, advertiser)

    def import_module(name: str) -> ModuleType:
        main = threading.current_thread() is threading.main_thread()
        events.append(f"import {name} in {'the main thread' if main else 'a worker thread'}")
        if import_error is not None:
            raise import_error
        return importlib.import_module(name)

    async def run(config: Config, advertiser: Advertiser | None = None) -> int:
        events.append(f"run with {'the' if advertiser is not None else 'no'} advertiser")
        return 0

    monkeypatch.setattr(advertiser_module, "start_advertiser", start_advertiser)
    monkeypatch.setattr(cli, "importlib", SimpleNamespace(import_module=import_module))
    monkeypatch.setattr(sylkbox.app, "run", run)
    return advertiser


async def test_probing_starts_before_the_server_is_imported_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    _wire(monkeypatch, events)
    assert await cli._run(parse_config({})) == 0
    assert events == ["advertiser started", "import sylkbox.app in a worker thread",
                      "run with the advertiser"]


async def test_no_advertiser_without_mdns(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    _wire(monkeypatch, events)
    assert await cli._run(parse_config({"mdns": {"enabled": False}})) == 0
    assert events == ["import sylkbox.app in a worker thread", "run with no advertiser"]


async def test_the_advertiser_is_stopped_if_the_server_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    _wire(monkeypatch, events, import_error=ImportError("no aiohttp"))
    with pytest.raises(ImportError, match="no aiohttp"):
        await cli._run(parse_config({}))
    assert events == ["advertiser started", "import sylkbox.app in a worker thread",
                      "advertiser stopped"]
