"""Screen sharing end to end (BLINK.md 6): a participant (SIP with `tests.helpers.sipclient`,
MSRP with the independent `tests.msrp_client`) sends ``application/blink-screensharing`` frames
as Blink for macOS does; a real headless Chromium shows the viewer page and must swap the image
without reloading; a conference-info subscriber sees ``screen_image_url`` come and go.

The JPEGs are made at test time by `tests.helpers.jpeg` (no image library here); Chromium
decoding them to the expected size and grey level is itself a check of the frames.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sylkbox.conference.conference_info import parse_conference_info
from sylkbox.sip.message import Request, Response
from tests.helpers.chat_peer import join_room
from tests.helpers.chromium import HeadlessChromium, chromium_available
from tests.helpers.jpeg import solid_jpeg
from tests.helpers.server import RunningServer, free_port, start_server
from tests.helpers.sipclient import UdpSipClient
from tests.msrp_client import Message

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]

FRAME_A = solid_jpeg(40, 24, 30)
FRAME_B = solid_jpeg(17, 9, 250)
SCREEN_TYPE = "application/blink-screensharing"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningServer, int]]:
    assert chromium_available(), "Debian chromium is needed for this test"
    web_port = free_port(socket.SOCK_STREAM, both=False)
    config = f"[media]\nrtp_timeout = 3600\nprompts = false\n[web]\nport = {web_port}\n"
    srv = start_server(tmp_path, config=config, log_level="info")
    try:
        yield srv, web_port
    finally:
        code = srv.stop()
        log = srv.log_text()
        assert "Traceback" not in log, log[-4000:]
        assert code == 0, log[-4000:]


def _screen_urls(message: Request | Response) -> list[str] | None:
    """The screen_image_url values of a conference-info NOTIFY (None for anything else)."""
    if not (isinstance(message, Request) and message.method == "NOTIFY" and message.body):
        return None
    info = parse_conference_info(message.body)
    return [u.screen_image_url for u in info.room.users if u.screen_image_url]


def _status(text: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return m.cpim is not None and m.cpim.is_status and text in m.text

    return match


IMAGE_STATE = """(() => {
  const img = document.getElementById("screen");
  if (!img) return {complete: false};
  return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
          src: img.src, viewer: window.sylkboxViewer || null, title: document.title,
          navigations: performance.getEntriesByType("navigation").length};
})()"""

PIXEL_AND_BYTES = """(async () => {
  const img = document.getElementById("screen");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const pixel = Array.from(ctx.getImageData(0, 0, 1, 1).data);
  const response = await fetch(img.src);
  const bytes = Array.from(new Uint8Array(await response.arrayBuffer()));
  return {pixel, bytes, type: response.headers.get("content-type")};
})()"""


async def test_browser_follows_frames_and_conference_info_shows_the_url(
    server: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, web_port = server
    assert f"http://127.0.0.1:{web_port}/" in srv.log_text()  # the startup line names the web UI
    room = "screens"
    room_uri = f"sip:{room}@{srv.host}"
    watcher = UdpSipClient((srv.host, srv.sip_port), user="watcher")
    peer = await join_room(srv.host, srv.sip_port, room, "alice")
    try:
        watcher.request(
            "SUBSCRIBE",
            room_uri,
            headers="Event: conference\r\nExpires: 600\r\n"
            "Accept: application/conference-info+xml\r\n",
        )
        await asyncio.to_thread(
            watcher.wait_for, lambda m: isinstance(m, Response) and m.status < 300, 5.0
        )

        # first frame: REPORT 200, status line with the URL, NOTIFY with the URL
        sent = await peer.msrp.send_chat(
            base64.b64encode(FRAME_A), content_type=SCREEN_TYPE
        )
        assert sent.codes == [200]
        status = await peer.msrp.wait_for(_status("is sharing the screen at"), timeout=5)
        url = status.text.rsplit(" at ", 1)[1]
        assert status.text.startswith(f"Room {room}@{srv.host} - Alice <alice@{srv.host}>")
        base = f"http://{srv.host}:{web_port}/conference/{room}@{srv.host}/screensharing?image="
        assert url.startswith(base + "alice%40")
        notify = await asyncio.to_thread(
            watcher.wait_for, lambda m: bool(_screen_urls(m)), 5.0
        )
        assert _screen_urls(notify) == [url]

        # the viewer page in a real browser
        async with HeadlessChromium.start(tmp_path / "chromium", url + "&fit=1") as browser:
            first = await browser.wait_until(
                f"(() => {{ const s = {IMAGE_STATE}; "
                "return s.complete && s.width === 40 ? s : null; })()",
                timeout=15,
            )
            assert first["title"] == "sylkbox Screen Sharing"
            assert first["height"] == 24
            loaded_at = first["viewer"]["loadedAt"]
            content = await browser.evaluate(PIXEL_AND_BYTES)
            assert bytes(content["bytes"]) == FRAME_A
            assert content["type"] == "image/jpeg"
            assert content["pixel"][:3] == [30, 30, 30]

            # second frame: the page swaps the image, without a reload and without polling
            sent = await peer.msrp.send_chat(
                base64.b64encode(FRAME_B), content_type=SCREEN_TYPE
            )
            assert sent.codes == [200]
            started = last_frame = time.monotonic()
            second = await browser.wait_until(
                f"(() => {{ const s = {IMAGE_STATE}; "
                "return s.complete && s.width === 17 ? s : null; })()",
                timeout=5,
            )
            assert time.monotonic() - started < 4.0
            assert second["height"] == 9
            assert second["viewer"]["loadedAt"] == loaded_at  # same document
            assert second["viewer"]["mode"] == "websocket"
            assert second["navigations"] == 1
            content = await browser.evaluate(PIXEL_AND_BYTES)
            assert bytes(content["bytes"]) == FRAME_B
            assert content["pixel"][:3] == [250, 250, 250]

            # a refused frame (not a JPEG) changes nothing on the page
            await peer.msrp.send_chat(
                base64.b64encode(b"GIF89a not a jpeg"), content_type=SCREEN_TYPE
            )
            await asyncio.sleep(0.5)
            assert (await browser.evaluate(IMAGE_STATE))["width"] == 17

        # idle: ~10 s after the last frame the URL leaves conference-info
        def without_url(m: Request | Response) -> bool:
            return _screen_urls(m) == []

        await asyncio.to_thread(watcher.wait_for, without_url, 15.0)
        idle_after = time.monotonic() - last_frame
        assert 9.0 <= idle_after <= 15.0, idle_after
        stopped = await peer.msrp.wait_for(_status("stopped sharing the screen"), timeout=5)
        assert stopped.text == f"Alice <alice@{srv.host}> stopped sharing the screen"

        screens = srv.data_dir / "screens"
        assert [p.suffix for d in screens.iterdir() for p in d.iterdir()] == [".jpg"]
        await peer.hang_up()
        deadline = time.monotonic() + 5
        while any(screens.iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any(screens.iterdir())  # the room ended: its images are gone
    finally:
        watcher.close()
        await peer.close()


def test_viewer_status_codes(server: tuple[RunningServer, int]) -> None:
    """Plain HTTP against the running server: 404 unknown room, 400 bad image, Server header."""
    import http.client

    srv, web_port = server
    conn = http.client.HTTPConnection(srv.host, web_port, timeout=5)
    try:
        for path, expected in (
            ("/", 200),
            ("/conference/nosuch@127.0.0.1/screensharing?image=a_aB3dE5gH9k.jpg", 404),
            ("/conference/nosuch@127.0.0.1/screensharing_img/..%2F..%2Fetc%2Fpasswd", 404),
        ):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == expected, path
            assert (response.getheader("Server") or "").startswith("sylkbox/")
    finally:
        conn.close()
