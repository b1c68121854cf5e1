"""Composition root: builds every component from `Config` and runs them until a signal.

Nothing else in sylkbox constructs long-lived components; they are passed down by constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sylkbox import __version__
from sylkbox.conference.files import FileStore
from sylkbox.conference.focus import Focus
from sylkbox.conference.media_port import StreamSpec
from sylkbox.conference.room_chat import RoomChat
from sylkbox.conference.screenshare import ScreenSharing
from sylkbox.config import Config
from sylkbox.discovery.records import Ports
from sylkbox.media.control import AddStream, Direction, PlayPrompt, UpdateStream
from sylkbox.media.prompts import ensure_prompts
from sylkbox.media.supervisor import MediaSupervisor
from sylkbox.msrp.session import SessionConfig
from sylkbox.net.certs import ensure_certificate
from sylkbox.net.local_address import LocalAddresses
from sylkbox.net.msrp import MsrpListener, default_session_factory
from sylkbox.net.sip_endpoint import SipEndpoint
from sylkbox.net.transport import SipTransports, TransportLimits
from sylkbox.sip.parser import ParserLimits
from sylkbox.sip.transaction import TransactionLayer
from sylkbox.webui import create_app

if TYPE_CHECKING:
    from sylkbox.discovery.advertiser import Advertiser

__all__ = ["Server", "run"]

log = logging.getLogger(__name__)


class MediaAdapter:
    """Implements the focus's `MediaPort` over the media supervisor's control commands."""

    def __init__(self, supervisor: MediaSupervisor, local_host: str, room_rate: int) -> None:
        self._supervisor = supervisor
        self._local_host = local_host
        self._room_rate = room_rate

    async def add_stream(self, room_id: str, spec: StreamSpec) -> int:
        return await self._supervisor.add_stream(
            AddStream(
                room_id=room_id,
                stream_id=spec.stream_id,
                local_host=self._local_host,
                local_port=spec.local_port,
                remote_host=spec.remote_host or "0.0.0.0",
                remote_port=spec.remote_port or 0,
                payload_type=spec.payload_type,
                codec=spec.codec,
                clock_rate=spec.clock_rate,
                telephone_event_pt=spec.telephone_event_pt,
                direction=Direction(spec.direction),
                room_rate=spec.room_rate or self._room_rate,
                srtp=spec.srtp,
            )
        )

    async def update_stream(self, spec: StreamSpec) -> None:
        await self._supervisor.update_stream(
            UpdateStream(
                stream_id=spec.stream_id,
                remote_host=spec.remote_host or "0.0.0.0",
                remote_port=spec.remote_port or 0,
                payload_type=spec.payload_type,
                codec=spec.codec,
                clock_rate=spec.clock_rate,
                telephone_event_pt=spec.telephone_event_pt,
                direction=Direction(spec.direction),
                srtp=spec.srtp,
            )
        )

    async def remove_stream(self, stream_id: str) -> None:
        await self._supervisor.remove_stream(stream_id)

    async def set_mute(self, stream_id: str, muted: bool) -> None:
        await self._supervisor.set_mute(stream_id, muted)

    def play_prompt(self, room_id: str, prompt: str, stream_id: str | None = None) -> None:
        self._supervisor.play_prompt(
            PlayPrompt(room_id=room_id, prompt=prompt, stream_id=stream_id)
        )


def _server_ssl_context(config: Config) -> ssl.SSLContext:
    if config.sip.tls_certificate:
        cert, key = Path(config.sip.tls_certificate), Path(config.sip.tls_private_key)
    else:
        cert, key = ensure_certificate(config.data_dir / "tls", config.server.name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Server:
    """Everything running: transports, transaction layer, focus, media worker.

    `advertiser`: one already started (probing) by `cli` before it imported this module, which
    the server then owns; without it the server starts its own when mDNS is on.
    """

    def __init__(self, config: Config, advertiser: Advertiser | None = None) -> None:
        self.config = config
        self.addresses: list[str] = []
        self._endpoint: SipEndpoint | None = None
        self._transports: SipTransports | None = None
        self._media: MediaSupervisor | None = None
        self._msrp: MsrpListener | None = None
        self.focus: Focus | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._screens: ScreenSharing | None = None
        self._files: FileStore | None = None
        self._web: web.AppRunner | None = None
        self._advertiser = advertiser

    @staticmethod
    async def _forward_media_events(media: MediaSupervisor, focus: Focus) -> None:
        async for event in media.events():
            focus.media_event(event)

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if config.mdns.enabled and self._advertiser is None:
            # Bonjour (issue 5): probing runs while the listeners are set up (the names do not
            # depend on the ports). Imported here: zeroconf only when enabled.
            from sylkbox.discovery.advertiser import start_advertiser

            self._advertiser = await start_advertiser(config)
        # the address peers reach us at: configured, the bind address, or per peer (its link)
        addresses = LocalAddresses(bind=config.sip.bind, advertised=config.sip.advertised_address)
        limits = ParserLimits(max_message_size=config.sip.max_message_size)
        endpoint = SipEndpoint(TransactionLayer(), limits=limits, addresses=addresses)
        transports = SipTransports(
            endpoint.on_message,
            limits=TransportLimits(parser=limits),
            on_send_error=endpoint.on_send_error,
        )
        endpoint.attach(transports)
        self._transports = transports
        self._endpoint = endpoint
        low, high = config.media.port_bounds
        prompts_dir = None
        if config.media.prompts:  # espeak-ng at first start (and when its version changes)
            prompts_dir = await asyncio.to_thread(ensure_prompts, config.data_dir / "prompts")
        media = MediaSupervisor(
            port_range=(low, high),
            rtp_timeout=config.media.rtp_timeout,
            python=sys.executable,
            prompts_dir=prompts_dir,
            alone=config.media.alone,
        )
        await media.start()
        self._media = media
        # one certificate for MSRP and SIP TLS, loaded (made at first start) in a thread: that
        # takes 30 ms to seconds of CPU, and the loop keeps the mDNS probes on time meanwhile
        need_tls = config.msrp.tls or bool(config.sip.tls_port)
        server_ssl = await asyncio.to_thread(_server_ssl_context, config) if need_tls else None
        # one MSRP port for every chat session (BLINK.md 7), msrps by default
        msrp = MsrpListener(
            bind=config.sip.bind,
            port=config.msrp.port,
            addresses=addresses,
            server_ssl=server_ssl if config.msrp.tls else None,
            session_factory=default_session_factory(
                SessionConfig(max_message_size=config.msrp.max_message_size)
            ),
        )
        msrp_address = await msrp.start()
        self._msrp = msrp
        # screen sharing (BLINK.md 6): frames from the chat, files under data_dir/screens
        screens = ScreenSharing(
            config.data_dir,
            max_frame_size=config.web.max_screen_frame,
            idle_timeout=config.web.screen_idle_timeout,
        )
        self._screens = screens
        room_chat = RoomChat(on_screen_frame=screens.on_frame)
        files = FileStore(
            config.data_dir,
            max_size=config.files.max_size,
            room_quota=config.files.room_quota,
            retention=config.files.retention,
        )
        self._files = files
        focus = Focus(
            config,
            endpoint,
            MediaAdapter(media, config.sip.bind, config.media.sample_rate),
            msrp,
            room_chat,
            screens=screens,
            files=files,
        )
        room_chat.attach(focus)
        if focus.files is not None:  # RFC 5547 (BLINK.md 5): status lines, expiry
            focus.files.announce = room_chat.status
            focus.spawn(focus.files.housekeeping(), name="files-expiry")
        screens.on_change = focus.room_changed
        screens.status = room_chat.status
        endpoint.handler = focus
        self.focus = focus
        self._events_task = asyncio.get_running_loop().create_task(
            self._forward_media_events(media, focus), name="media-events"
        )
        bind = config.sip.bind
        listening: list[str] = []
        udp = await transports.listen_udp(bind, config.sip.udp_port)
        listening.append(f"sip:{_hp(udp)};transport=udp")
        tcp = await transports.listen_tcp(bind, config.sip.tcp_port)
        listening.append(f"sip:{_hp(tcp)};transport=tcp")
        sip_ports = [("udp", udp[1]), ("tcp", tcp[1])]
        if config.sip.tls_port and server_ssl is not None:
            tls = await transports.listen_tls(bind, config.sip.tls_port, server_ssl)
            listening.append(f"sips:{_hp(tls)};transport=tls")
            sip_ports.append(("tls", tls[1]))
        listening.append(f"rtp:{bind}:{config.media.port_range}")
        listening.append(f"{'msrps' if msrp.tls else 'msrp'}:{_hp(msrp_address)}")
        # the web UI (screen-sharing viewer) on the SIP bind address
        runner = web.AppRunner(
            create_app(focus=focus, screens=screens), access_log=None, handle_signals=False
        )
        await runner.setup()
        self._web = runner
        site = web.TCPSite(runner, bind, config.web.port)
        await site.start()
        web_port = _bound_port(runner, config.web.port)
        screens.base_url = f"http://{_host(addresses.default())}:{web_port}"
        screens.host_for = addresses.for_peer
        listening.append(f"http://{_hp((bind, web_port))}/")
        self.addresses = listening
        if self._advertiser is not None:  # the ports are known: register what was probed
            focus.observers.append(self._advertiser)
            self._advertiser.serve(Ports(sip=tuple(sip_ports), web=web_port), focus)
        log.info(
            "sylkbox %s listening on %s (advertised address %s%s)",
            __version__,
            ", ".join(listening),
            "per peer, default " if addresses.per_peer else "",
            addresses.default(),
        )

    async def stop(self) -> None:
        timeout = self.config.server.shutdown_timeout
        advertising: asyncio.Task[None] | None = None
        if self._advertiser is not None:  # goodbyes (RFC 6762 10.1) while the rest stops
            advertiser, self._advertiser = self._advertiser, None
            if self.focus is not None and advertiser in self.focus.observers:
                self.focus.observers.remove(advertiser)
            advertising = asyncio.get_running_loop().create_task(advertiser.stop(), name="mdns")
        if self.focus is not None:
            await self.focus.close(timeout * 0.75)
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
        if self._web is not None:
            await self._web.cleanup()
        if self._screens is not None:
            self._screens.close()
        if self._msrp is not None:
            await self._msrp.close()
        if self._files is not None:  # after focus.close ended the file sessions and MSRP
            self._files.close()
        if self._endpoint is not None:
            self._endpoint.close()
        if self._media is not None:
            await self._media.stop()
        if self._transports is not None:
            await self._transports.close()
        if advertising is not None:
            await advertising
        log.info("sylkbox stopped")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    """The web port actually bound (the configured one, or the OS's pick for 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured


def _hp(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run(config: Config, advertiser: Advertiser | None = None) -> int:
    """Run until SIGINT or SIGTERM; shut down gracefully within the configured timeout.
    `advertiser`: see `Server`."""
    server = Server(config, advertiser)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await server.start()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            await server.stop()
            return 1
        await stop.wait()
        log.info("shutting down")
        await server.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    return 0
