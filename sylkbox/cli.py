"""Command line: `sylkbox run`, `sylkbox config check FILE`, `sylkbox --version`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import logging
import sys
from pathlib import Path

from sylkbox import __version__
from sylkbox.config import LOG_LEVELS, Config, ConfigError, load_config

__all__ = ["main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sylkbox", description="sylkbox conference server")
    parser.add_argument("--version", action="version", version=f"sylkbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the server")
    run.add_argument("--config", type=Path, help="TOML configuration file")
    run.add_argument("--data-dir", help="data directory (default ./var)")
    run.add_argument("--bind", help="address to listen on (default 0.0.0.0)")
    run.add_argument("--sip-port", type=int, help="SIP UDP and TCP port (default 5060)")
    run.add_argument("--sip-tls-port", type=int, help="SIP TLS port (default 5061)")
    run.add_argument("--web-port", type=int, help="web UI port (default 8080)")
    run.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    run.add_argument("--log-level", choices=LOG_LEVELS, help="log level (default info)")
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    return parser


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """Command-line options override the file (precedence CLI > file > defaults)."""
    server, sip, web, mdns = config.server, config.sip, config.web, config.mdns
    if args.data_dir is not None:
        server = dataclasses.replace(server, data_dir=args.data_dir)
    if args.log_level is not None:
        server = dataclasses.replace(server, log_level=args.log_level)
    if args.bind is not None:
        sip = dataclasses.replace(sip, bind=args.bind)
    if args.sip_port is not None:
        sip = dataclasses.replace(sip, udp_port=args.sip_port, tcp_port=args.sip_port)
    if args.sip_tls_port is not None:
        sip = dataclasses.replace(sip, tls_port=args.sip_tls_port)
    if args.web_port is not None:
        web = dataclasses.replace(web, port=args.web_port)
    if args.no_mdns:
        mdns = dataclasses.replace(mdns, enabled=False)
    merged = dataclasses.replace(config, server=server, sip=sip, web=web, mdns=mdns)
    # Re-validate: CLI values go through the same checks as file values.
    from sylkbox.config import parse_config

    parse_config(_as_toml(merged))
    return merged


def _as_toml(config: Config) -> dict[str, object]:
    def table(obj: object) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    return {
        "server": table(config.server),
        "sip": table(config.sip),
        "media": table(config.media),
        "web": table(config.web),
        "mdns": table(config.mdns),
    }


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _print_problems(error: ConfigError) -> None:
    for key, message in error.problems:
        print(f"{key}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "config":
        try:
            load_config(args.file)
        except ConfigError as exc:
            _print_problems(exc)
            return 1
        print(f"{args.file}: OK")
        return 0
    try:
        config = apply_overrides(load_config(args.config), args)
    except ConfigError as exc:
        _print_problems(exc)
        return 1
    _configure_logging(config.server.log_level)
    try:
        return asyncio.run(_run(config))
    except KeyboardInterrupt:
        return 0


async def _run(config: Config) -> int:
    """The server, advertised as early as possible (issue 5: seen on the LAN within 1 s).

    RFC 6762 8.1 probing takes 0.75-1 s before the first record may be announced, and importing
    the server (aiohttp, numpy, cryptography...) about 0.4 s: so the advertiser starts probing
    first, and the server is imported in a worker thread while the loop sends the probes on
    time. The server announces the probed records once its listeners are bound."""
    advertiser = None
    if config.mdns.enabled:
        from sylkbox.discovery.advertiser import start_advertiser  # zeroconf only when on

        advertiser = await start_advertiser(config)
    try:
        await asyncio.to_thread(importlib.import_module, "sylkbox.app")
    except BaseException:
        if advertiser is not None:
            await advertiser.stop()
        raise
    from sylkbox.app import run  # imported above, in the worker thread

    return await run(config, advertiser)
