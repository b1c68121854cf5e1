"""Tests for the screen-sharing routes of sylkbox.webui (BLINK.md 6), over aiohttp's test
client on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from sylkbox import __version__
from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room
from sylkbox.conference.screenshare import ScreenSharing
from sylkbox.config import RoomPolicy
from sylkbox.msrp.cpim import CpimMessage, Identity
from sylkbox.webui import create_app
from sylkbox.webui.app import WEBSOCKETS_KEY
from tests.helpers.jpeg import solid_jpeg

T0 = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
FRAME_A = solid_jpeg(40, 24, 30)
FRAME_B = solid_jpeg(17, 9, 250)


@dataclass
class Rooms:
    rooms: dict[str, object] = field(default_factory=dict)


class Setup:
    def __init__(
        self, tmp: Path, client: TestClient[Any, Any], screens: ScreenSharing, rooms: Rooms
    ) -> None:
        self.client, self.screens, self.rooms = client, screens, rooms
        self.room = Room(key="room@box.local", id="r1", policy=RoomPolicy(), server_name="x")
        self.alice = Participant(
            id="p1",
            uri="sip:alice@192.168.1.20",
            display_name="Alice",
            contact="sip:alice@192.168.1.20",
            joined_at=T0,
        )
        self.room.add(self.alice)
        rooms.rooms[self.room.key] = self.room

    def send(self, data: bytes) -> str:
        message = CpimMessage(
            from_=Identity("Alice", self.alice.uri),
            datetime=T0,
            content_headers=(("Content-Type", "application/blink-screensharing"),),
            body=base64.b64encode(data),
        )
        assert self.screens.on_frame(self.room, self.alice, message) == 200
        return next(iter(self.room.screen_urls.values()))

    @property
    def image(self) -> str:
        [url] = self.room.screen_urls.values()
        return url.rsplit("=", 1)[1].replace("%40", "@")


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    rooms = Rooms()
    screens = ScreenSharing(tmp_path, base_url="http://127.0.0.1:8080", idle_timeout=0.3)
    client = TestClient(TestServer(create_app(focus=rooms, screens=screens), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Setup(tmp_path, client, screens, rooms)
    finally:
        await client.close()
        screens.close()


def _server_header_ok(headers: object) -> None:
    assert headers["Server"] == f"sylkbox/{__version__}"  # type: ignore[index]


async def test_index(setup: Setup) -> None:
    response = await setup.client.get("/")
    assert response.status == 200
    _server_header_ok(response.headers)
    assert "Welcome to sylkbox!" in await response.text()


async def test_viewer_page_and_image(setup: Setup) -> None:
    url = setup.send(FRAME_A)
    path = url.split("8080", 1)[1]
    assert "%40" in path  # the query is URL-encoded
    response = await setup.client.get(path)
    assert response.status == 200
    _server_header_ok(response.headers)
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<title>sylkbox Screen Sharing</title>" in page
    assert f'src="screensharing_img/{setup.image}?0"' in page
    assert "width: 100%" not in page
    fit = await setup.client.get(path + "&fit=1")
    assert 'style="width: 100%;"' in await fit.text()

    image = await setup.client.get(f"/conference/room@box.local/screensharing_img/{setup.image}")
    assert image.status == 200
    _server_header_ok(image.headers)
    assert image.headers["Content-Type"] == "image/jpeg"
    assert "no-store" in image.headers["Cache-Control"]
    assert await image.read() == FRAME_A
    setup.send(FRAME_B)
    again = await setup.client.get(
        f"/conference/room@box.local/screensharing_img/{setup.image}?1"
    )
    assert await again.read() == FRAME_B


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/conference/nosuch@box.local/screensharing?image=a_aB3dE5gH9k.jpg", 404),
        ("/conference/nosuch@box.local/screensharing_img/a_aB3dE5gH9k.jpg", 404),
        ("/conference/room@box.local/screensharing", 400),
        ("/conference/room@box.local/screensharing?image=", 400),
        ("/conference/room@box.local/screensharing?image=a_aB3dE5gH9k.png", 400),
        ("/conference/room@box.local/screensharing?image=..%2F..%2Fetc_aB3dE5gH9k.jpg", 400),
        ("/conference/room@box.local/screensharing_img/..%2Fr1_aB3dE5gH9k.jpg", 400),
        ("/conference/room@box.local/screensharing_img/.._aB3dE5gH9k.jpg", 400),
        ("/conference/room@box.local/screensharing_img/x.jpg", 400),
        ("/conference/room@box.local/screensharing_img/alice_aB3dE5gH9k.jpg", 404),
        ("/conference/room@box.local/screensharing_ws/alice_aB3dE5gH9k.jpg", 404),
        ("/conference/room@box.local/nothing", 404),
    ],
)
async def test_errors(setup: Setup, path: str, status: int) -> None:
    setup.send(FRAME_A)
    response = await setup.client.get(path)
    assert response.status == status, await response.text()
    _server_header_ok(response.headers)


async def test_viewer_page_escapes_and_accepts_unknown_but_valid_names(setup: Setup) -> None:
    # a well-formed name the room does not know yet: the page is served, the image is 404
    response = await setup.client.get(
        "/conference/room@box.local/screensharing?image=bob%40h_aB3dE5gH9k.jpg"
    )
    assert response.status == 200
    assert "<script>" not in (await response.text()).split("<script>", 1)[1]


async def _next(ws: object, timeout: float = 2.0) -> dict[str, object]:
    message = await asyncio.wait_for(ws.receive(), timeout)  # type: ignore[attr-defined]
    assert message.type == WSMsgType.TEXT, message
    return dict(json.loads(message.data))


async def test_websocket_tells_the_page_about_new_frames_and_idle(setup: Setup) -> None:
    setup.send(FRAME_A)
    ws = await setup.client.ws_connect(
        f"/conference/room@box.local/screensharing_ws/{setup.image}"
    )
    assert await _next(ws) == {"frame": 1, "active": True}
    setup.send(FRAME_B)
    assert await _next(ws) == {"frame": 2, "active": True}
    assert await _next(ws) == {"frame": 2, "active": False}  # idle after 0.3 s
    setup.send(FRAME_A)
    assert await _next(ws) == {"frame": 3, "active": True}
    setup.screens.room_ended(setup.room)
    assert (await _next(ws))["ended"] is True
    await ws.close()


async def test_websocket_closed_by_the_page_ends_the_handler(setup: Setup) -> None:
    setup.send(FRAME_A)
    ws = await setup.client.ws_connect(
        f"/conference/room@box.local/screensharing_ws/{setup.image}"
    )
    await _next(ws)
    await ws.close()
    assert setup.client.app is not None
    sockets = setup.client.app[WEBSOCKETS_KEY]
    for _ in range(50):
        if not len(sockets):
            break
        await asyncio.sleep(0.02)
    assert not len(sockets)


def test_url_helper_is_consistent(tmp_path: Path) -> None:
    screens = ScreenSharing(tmp_path, base_url="http://[fd00::1]:8080")
    room = Room(key="r@h", id="x", policy=RoomPolicy(), server_name="x")
    url: Callable[[str], str] = screens.attach(room).url_for
    assert url("a@h_aB3dE5gH9k.jpg") == (
        "http://[fd00::1]:8080/conference/r@h/screensharing?image=a%40h_aB3dE5gH9k.jpg"
    )
