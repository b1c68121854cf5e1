"""The web application: a status page and the screen-sharing viewer (BLINK.md 6).

Routes, as SylkServer's ``conference/web.py`` has them:

* ``/``: a minimal status page;
* ``/conference/<room user@host>/screensharing?image=<file>.jpg[&fit=1]``: a small HTML page
  (``sylkbox Screen Sharing``) showing the image; ``fit`` makes it 100 % wide;
* ``/conference/<room>/screensharing_img/<file>``: the newest JPEG (``Cache-Control: no-store``);
* ``/conference/<room>/screensharing_ws/<file>``: a websocket telling the page when a new frame
  is stored (``{"frame": n, "active": bool}``), so the page swaps the image without polling and
  never reloads; if the websocket fails, the page falls back to SylkServer's behaviour (reload the
  image one second after each load with a cache-busting counter).

An unknown room is 404; a missing ``image`` or one that ``conference.screenshare`` could not have
named (``is_image_name``: no separators, no dot-dot, ``_<10 alnum>.jpg``) is 400; a valid name the
room does not know is 404.  Nothing touches the file system under a name from the request: the
room's :class:`ScreenShares` maps known names to paths.  Every response carries ``Server:
sylkbox/<version>``.  Dependencies come in through typed ``web.AppKey`` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import weakref
from collections.abc import Mapping
from typing import Protocol

from aiohttp import WSMsgType, web

from sylkbox import __version__
from sylkbox.conference.screenshare import ScreenShares, ScreenSharing, is_image_name

__all__ = [
    "FOCUS_KEY",
    "SCREENS_KEY",
    "SERVER_HEADER",
    "WEBSOCKETS_KEY",
    "RoomDirectory",
    "create_app",
]

logger = logging.getLogger(__name__)

SERVER_HEADER = f"sylkbox/{__version__}"
WS_WAIT = 20.0  # seconds between two checks of a viewer's websocket when no frame comes


class RoomDirectory(Protocol):
    """What the web UI needs of the focus: its rooms by ``user@host`` (lower case)."""

    @property
    def rooms(self) -> Mapping[str, object]: ...


FOCUS_KEY = web.AppKey("focus", RoomDirectory)
SCREENS_KEY = web.AppKey("screens", ScreenSharing)
WEBSOCKETS_KEY = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])


def create_app(*, focus: RoomDirectory, screens: ScreenSharing) -> web.Application:
    """The web application; run it with ``AppRunner``/``TCPSite`` (``app.py``)."""
    app = web.Application(client_max_size=64 * 1024)
    app[FOCUS_KEY] = focus
    app[SCREENS_KEY] = screens
    app[WEBSOCKETS_KEY] = weakref.WeakSet()
    app.on_response_prepare.append(_server_header)
    app.on_shutdown.append(_close_websockets)
    app.router.add_get("/", _index)
    app.router.add_get("/conference/{room}/screensharing", _viewer)
    app.router.add_get("/conference/{room}/screensharing_img/{image}", _image)
    app.router.add_get("/conference/{room}/screensharing_ws/{image}", _updates)
    return app


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


async def _close_websockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[WEBSOCKETS_KEY]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutdown")


async def _index(request: web.Request) -> web.Response:
    rooms = len(request.app[FOCUS_KEY].rooms)
    body = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sylkbox</title></head>"
        f"<body><h1>Welcome to sylkbox!</h1><p>sylkbox {html.escape(__version__)}: "
        f"{rooms} active room{'' if rooms == 1 else 's'}.</p></body></html>\n"
    )
    return web.Response(text=body, content_type="text/html", headers=_NO_CACHE)


_NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}


def _room_key(request: web.Request) -> str:
    """The room of the path (404 when the focus has no such room)."""
    key = request.match_info["room"].lower()
    if key not in request.app[FOCUS_KEY].rooms:
        raise web.HTTPNotFound(text="No such room\n")
    return key


def _checked_image(name: str | None) -> str:
    if not name:
        raise web.HTTPBadRequest(text="Missing image\n")
    if not is_image_name(name):
        raise web.HTTPBadRequest(text="Invalid image\n")
    return name


def _shares(request: web.Request, key: str) -> ScreenShares | None:
    return request.app[SCREENS_KEY].get(key)


async def _viewer(request: web.Request) -> web.Response:
    key = _room_key(request)
    image = _checked_image(request.query.get("image"))
    fit = request.query.get("fit", "") not in ("", "0")
    style = "width: 100%;" if fit else ""
    config = json.dumps({"image": image}).replace("<", "\\u003c")
    body = _VIEWER.format(
        room=html.escape(key),
        image=html.escape(image),
        style=style,
        config=config,
    )
    return web.Response(text=body, content_type="text/html", headers=_NO_CACHE)


async def _image(request: web.Request) -> web.FileResponse:
    key = _room_key(request)
    image = _checked_image(request.match_info["image"])
    shares = _shares(request, key)
    path = shares.image_path(image) if shares is not None else None
    if path is None:
        raise web.HTTPNotFound(text="No such image\n")
    # The file is replaced atomically (rename), so an open handle always reads one whole frame.
    response = web.FileResponse(path, headers={**_NO_CACHE, "Content-Type": "image/jpeg"})
    return response


async def _updates(request: web.Request) -> web.WebSocketResponse:
    key = _room_key(request)
    image = _checked_image(request.match_info["image"])
    shares = _shares(request, key)
    share = shares.share(image) if shares is not None else None
    if shares is None or share is None:
        raise web.HTTPNotFound(text="No such image\n")
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS_KEY]
    sockets.add(ws)
    reader = asyncio.get_running_loop().create_task(_drain(ws), name="screensharing-ws-reader")
    try:
        frames, active = share.frames, share.active
        await ws.send_str(json.dumps({"frame": frames, "active": active}))
        while not ws.closed and not reader.done():
            waiter = asyncio.ensure_future(shares.wait_frame(image, frames, WS_WAIT))
            done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
                break
            current = waiter.result()
            if current is None:  # the room ended
                await ws.send_str(json.dumps({"frame": frames, "active": False, "ended": True}))
                break
            if (current.frames, current.active) != (frames, active):
                frames, active = current.frames, current.active
                await ws.send_str(json.dumps({"frame": frames, "active": active}))
    except ConnectionResetError:
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        sockets.discard(ws)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the page sends, so a close from its side is noticed."""
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            break


_VIEWER = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>sylkbox Screen Sharing</title>
<style>body {{ margin: 0; background: #222; color: #ddd; font-family: sans-serif; }}
#status {{ position: fixed; bottom: 0; left: 0; padding: 2px 6px; font-size: 12px;
background: rgba(0, 0, 0, 0.5); }}</style>
</head>
<body>
<img id="screen" alt="Screen shared in {room}" style="{style}"
 src="screensharing_img/{image}?0">
<div id="status"></div>
<script>
"use strict";
(function () {{
  const config = {config};
  const img = document.getElementById("screen");
  const status = document.getElementById("status");
  const base = "screensharing_img/" + encodeURIComponent(config.image) + "?";
  let counter = 0;
  let polling = false;
  let loading = false;
  let wanted = null;
  window.sylkboxViewer = {{loadedAt: Date.now(), frames: 0, mode: "websocket"}};
  function show(frame) {{
    if (loading) {{ wanted = frame; return; }}
    loading = true;
    counter += 1;
    img.src = base + frame + "-" + counter;
  }}
  img.addEventListener("load", function () {{
    loading = false;
    window.sylkboxViewer.frames += 1;
    if (wanted !== null) {{ const f = wanted; wanted = null; show(f); return; }}
    if (polling) setTimeout(function () {{ show("p"); }}, 1000);
  }});
  img.addEventListener("error", function () {{
    loading = false;
    if (polling) setTimeout(function () {{ show("p"); }}, 1000);
  }});
  function poll() {{
    if (polling) return;
    polling = true;
    window.sylkboxViewer.mode = "polling";
    show("p");
  }}
  try {{
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = location.pathname.replace(/screensharing$/, "screensharing_ws/");
    const ws = new WebSocket(scheme + location.host + path + encodeURIComponent(config.image));
    let ended = false;
    ws.onmessage = function (event) {{
      const update = JSON.parse(event.data);
      status.textContent = update.active ? "" : "Screen sharing is paused";
      if (update.ended) {{ ended = true; status.textContent = "Screen sharing has ended"; }}
      if (update.frame > 0) show(update.frame);
    }};
    ws.onclose = function () {{ if (!ended) poll(); }};
  }} catch (e) {{
    poll();
  }}
}})();
</script>
</body>
</html>
"""
