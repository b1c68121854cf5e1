"""Headless Chromium driven over the DevTools protocol (no selenium here), for browser tests.

``async with HeadlessChromium.start(tmp, url) as browser: await browser.evaluate("1 + 1")``
starts ``/usr/bin/chromium`` with the flags of ``PEERS.md`` (Browser), reads the port from
``DevToolsActivePort`` in its profile directory, attaches to the page target over a websocket
(aiohttp) and evaluates expressions with ``Runtime.evaluate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["CHROMIUM", "HeadlessChromium", "chromium_available"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


class DevToolsError(RuntimeError):
    pass


class HeadlessChromium:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
    ) -> None:
        self.process = process
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, profile: Path, url: str, timeout: float = 20.0) -> AsyncIterator[
        HeadlessChromium
    ]:
        profile.mkdir(parents=True, exist_ok=True)
        log = (profile.parent / "chromium.log").open("wb")
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        session = aiohttp.ClientSession()
        try:
            port_file = profile / "DevToolsActivePort"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not port_file.exists() or not port_file.read_text().strip():
                if process.poll() is not None or loop.time() > deadline:
                    raise DevToolsError("chromium did not start")
                await asyncio.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            target = None
            while target is None:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json(content_type=None)
                target = next((t for t in targets if t.get("type") == "page"), None)
                if target is None:
                    if loop.time() > deadline:
                        raise DevToolsError("no page target")
                    await asyncio.sleep(0.05)
            ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            browser = cls(process, session, ws)
            try:
                yield browser
            finally:
                await ws.close()
        finally:
            await session.close()
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.close()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One DevTools command; events arriving meanwhile are ignored."""
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = await asyncio.wait_for(self._ws.receive(), 20)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise DevToolsError(f"DevTools connection closed: {message.type}")
            data = json.loads(message.data)
            if data.get("id") == ident:
                if "error" in data:
                    raise DevToolsError(str(data["error"]))
                return dict(data.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises are awaited)."""
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise DevToolsError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    async def wait_until(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                raise TimeoutError(f"{expression!r} still false after {timeout} s")
            await asyncio.sleep(0.1)
