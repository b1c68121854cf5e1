"""Typed, validated configuration.

The configuration is TOML, loaded once into nested frozen dataclasses. Every problem (unknown key,
wrong type, value out of range) is reported with the dotted key it concerns, and all problems are
collected before failing, so `sylkbox config check FILE` can list them at once.

Precedence is command line > file > defaults: the CLI builds the file-level `Config` and then
applies its overrides with `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ConferenceConfig",
    "Config",
    "ConfigError",
    "FilesConfig",
    "MdnsConfig",
    "MediaConfig",
    "MsrpConfig",
    "RoomPolicy",
    "ServerConfig",
    "SipConfig",
    "WebConfig",
    "load_config",
    "parse_config",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
ACCESS_POLICIES = ("allow,deny", "deny,allow")
# codec names accepted in `[media] codecs`, with their SDP rtpmap (RFC 3551; Opus: RFC 7587 7,
# always 48000/2 in SDP; G.722: RFC 3551 4.5.2, 8000 in SDP for 16 kHz audio). The default
# order is our preference when we offer (dial-out); answers follow the offerer's order.
CODEC_RTPMAPS = {
    "opus": "opus/48000/2",
    "G722": "G722/8000",
    "PCMU": "PCMU/8000",
    "PCMA": "PCMA/8000",
}
SUPPORTED_CODECS = tuple(CODEC_RTPMAPS)
ROOM_SAMPLE_RATES = (16000, 48000)


class ConfigError(Exception):
    """One or more configuration problems; `problems` holds `(key, message)` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


def _check(cond: bool, message: str) -> str | None:
    return None if cond else message


def _port(value: int) -> str | None:
    return _check(0 <= value <= 65535, "must be a port number between 0 and 65535")


def _positive(value: int) -> str | None:
    return _check(value > 0, "must be greater than 0")


def _non_negative(value: int) -> str | None:
    return _check(value >= 0, "must be 0 or greater")


def _address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "must be an IPv4 or IPv6 address"
    return None


def _optional_address(value: str) -> str | None:
    return None if value == "" else _address(value)


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return _check(value in choices, "must be one of " + ", ".join(repr(c) for c in choices))

    return check


def _one_of_int(*choices: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return _check(value in choices, "must be one of " + ", ".join(map(str, choices)))

    return check


def _codecs(value: tuple[str, ...]) -> str | None:
    unknown = [c for c in value if c not in SUPPORTED_CODECS]
    if unknown:
        return (
            f"unsupported codec(s) {', '.join(unknown)}; supported: {', '.join(SUPPORTED_CODECS)}"
        )
    return _check(len(value) > 0, "must list at least one codec")


def _room_sample_rate(value: int) -> str | None:
    return _check(
        value == 0 or value in ROOM_SAMPLE_RATES,
        "must be 16000 or 48000 (or 0 for the [media] sample_rate)",
    )


def _port_range(value: str) -> str | None:
    low, sep, high = value.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        return "must be written LOW-HIGH, e.g. 50000-50999"
    lo, hi = int(low), int(high)
    if not 1024 <= lo < hi <= 65535 or hi - lo < 3:
        return "must be an increasing range within 1024-65535 holding at least 4 ports"
    return None


def _validated(check: Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": check}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """`[server]`: identity and housekeeping."""

    name: str = "sylkbox"
    data_dir: str = "./var"
    log_level: str = field(default="info", metadata=_validated(_one_of(*LOG_LEVELS)))
    shutdown_timeout: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SipConfig:
    """`[sip]`: listening sockets and protocol limits."""

    bind: str = field(default="0.0.0.0", metadata=_validated(_address))
    advertised_address: str = field(default="", metadata=_validated(_optional_address))
    udp_port: int = field(default=5060, metadata=_validated(_port))
    tcp_port: int = field(default=5060, metadata=_validated(_port))
    tls_port: int = field(default=5061, metadata=_validated(_port))
    tls_certificate: str = ""
    tls_private_key: str = ""
    domains: tuple[str, ...] = ()
    max_message_size: int = field(default=65535, metadata=_validated(_positive))
    session_expires: int = field(default=1800, metadata=_validated(_positive))
    min_session_expires: int = field(default=90, metadata=_validated(_positive))
    subscription_max_expires: int = field(default=3600, metadata=_validated(_positive))
    answer_delay: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaConfig:
    """`[media]`: RTP and the media worker."""

    port_range: str = field(default="50000-50999", metadata=_validated(_port_range))
    rtp_timeout: int = field(default=30, metadata=_validated(_non_negative))
    codecs: tuple[str, ...] = field(default=SUPPORTED_CODECS, metadata=_validated(_codecs))
    sample_rate: int = field(default=16000, metadata=_validated(_one_of_int(*ROOM_SAMPLE_RATES)))
    # SRTP with SDES (RFC 4568): "optional" answers SRTP when offered (RTP/SAVP, or RTP/AVP
    # with a=crypto as Blink does), "required" refuses plain RTP (488), "disabled" never uses it
    srtp: str = field(
        default="optional", metadata=_validated(_one_of("optional", "required", "disabled"))
    )
    # Room prompts: a join tone for everyone, "you are the only participant" (espeak-ng) to a
    # lone joiner, *6 confirmation tones; `alone` is what a lone participant hears.
    prompts: bool = True
    alone: str = field(default="music", metadata=_validated(_one_of("music", "silence")))

    @property
    def port_bounds(self) -> tuple[int, int]:
        low, _, high = self.port_range.partition("-")
        return int(low), int(high)


@dataclass(frozen=True, slots=True, kw_only=True)
class MsrpConfig:
    """`[msrp]`: the one MSRP listening port shared by every chat session (RFC 4975, RFC 4976),
    bound on the SIP bind address; `tls` chooses msrps (TCP/TLS/MSRP, the default, as Blink's
    Bonjour account uses) or plain TCP/MSRP; `max_message_size` is the largest complete
    message accepted (413 beyond it, RFC 4975 7.3)."""

    port: int = field(default=2855, metadata=_validated(_port))
    tls: bool = True
    max_message_size: int = field(default=10 * 1024 * 1024, metadata=_validated(_positive))


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesConfig:
    """`[files]`: file sharing in rooms (RFC 5547): the largest file, the total per room (both
    answered 413), and how long files of non-persistent rooms are kept after the upload
    (seconds; persistent rooms keep them).  With ``push`` every upload is also sent to the
    room's other participants (SylkServer's ``push_file_transfer``, BLINK.md 5)."""

    max_size: int = field(default=100 * 1024 * 1024, metadata=_validated(_positive))
    room_quota: int = field(default=1024 * 1024 * 1024, metadata=_validated(_positive))
    retention: int = field(default=86400, metadata=_validated(_non_negative))
    push: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomPolicy:
    """Who may join a room and how many (`[conference]` defaults, `[rooms."user@host"]`)."""

    access_policy: str = field(default="allow,deny", metadata=_validated(_one_of(*ACCESS_POLICIES)))
    allow: tuple[str, ...] = ("all",)
    deny: tuple[str, ...] = ()
    max_participants: int = field(default=0, metadata=_validated(_non_negative))
    persistent: bool = False
    # mixing rate of the room (Hz); 0: `[media] sample_rate`
    sample_rate: int = field(default=0, metadata=_validated(_room_sample_rate))

    def mixing_rate(self, media: MediaConfig) -> int:
        """The room's mixing rate: its own `sample_rate`, else the `[media]` one."""
        return self.sample_rate or media.sample_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceConfig:
    """`[conference]`: defaults for every room, plus per-room overrides in `rooms`."""

    defaults: RoomPolicy = RoomPolicy()
    rooms: Mapping[str, RoomPolicy] = field(default_factory=dict)

    def policy_for(self, room: str) -> RoomPolicy:
        return self.rooms.get(room.lower(), self.defaults)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    """`[web]`: the web UI (aiohttp), bound on the SIP bind address: the screen-sharing
    viewer (BLINK.md 6). `max_screen_frame` is the largest screen-sharing JPEG accepted
    (bytes, 413 beyond it); a share goes idle `screen_idle_timeout` seconds after its last
    frame."""

    port: int = field(default=8080, metadata=_validated(_port))
    max_screen_frame: int = field(default=2 * 1024 * 1024, metadata=_validated(_positive))
    screen_idle_timeout: float = field(default=10.0, metadata=_validated(_positive))


def _mdns_name(value: str) -> str | None:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        return "must not contain control characters"
    return _check(len(value.encode("utf-8", "replace")) <= 200, "must be at most 200 bytes")


def _host_label(value: str) -> str | None:
    ok = value == "" or (
        len(value) <= 63
        and all(c.isascii() and (c.isalnum() or c == "-") for c in value)
        and not value.startswith("-")
        and not value.endswith("-")
    )
    return _check(ok, "must be a DNS label: letters, digits and inner hyphens, 63 at most")


def _interface_names(value: tuple[str, ...]) -> str | None:
    ok = all(0 < len(n) <= 15 and not any(c.isspace() or c == "/" for c in n) for n in value)
    return _check(ok, "must list interface names (1-15 characters, no spaces or '/')")


@dataclass(frozen=True, slots=True, kw_only=True)
class MdnsConfig:
    """`[mdns]`: Bonjour advertisement (RFC 6762/6763, BLINK.md 1). `name` is the focus's
    friendly name (empty: `[server] name`), `host_name` the `.local` host label (empty: the
    machine's host name), `interfaces` the interfaces to advertise on (empty: every usable
    one), `ipv6` adds global/ULA IPv6 addresses when SIP is bound to IPv6."""

    enabled: bool = True
    name: str = field(default="", metadata=_validated(_mdns_name))
    host_name: str = field(default="", metadata=_validated(_host_label))
    interfaces: tuple[str, ...] = field(default=(), metadata=_validated(_interface_names))
    ipv6: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig = ServerConfig()
    sip: SipConfig = SipConfig()
    media: MediaConfig = MediaConfig()
    msrp: MsrpConfig = MsrpConfig()
    files: FilesConfig = FilesConfig()
    conference: ConferenceConfig = ConferenceConfig()
    web: WebConfig = WebConfig()
    mdns: MdnsConfig = MdnsConfig()

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)


T = TypeVar("T")


def _describe(tp: Any) -> str:
    if tp is bool:
        return "a boolean"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    return "a list of strings"


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, converted) for a TOML value against a field type."""
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    origin = typing.get_origin(tp)
    if origin is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    raise TypeError(f"unsupported config field type {tp!r}")


def _build(cls: type[T], table: Any, prefix: str, problems: list[tuple[str, str]]) -> T:
    if not isinstance(table, dict):
        problems.append((prefix.rstrip("."), "must be a table"))
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in table.items():
        dotted = prefix + key
        f = fields.get(key)
        if f is None or not f.init:
            problems.append((dotted, "unknown key"))
            continue
        ok, value = _coerce(raw, hints[key])
        if not ok:
            problems.append((dotted, f"must be {_describe(hints[key])}"))
            continue
        check = f.metadata.get("check")
        message = check(value) if check else None
        if message:
            problems.append((dotted, message))
            continue
        values[key] = value
    return cls(**values)


def _room_key_problem(key: str) -> str | None:
    user, at, host = key.partition("@")
    if not at or not user or not host or any(c.isspace() for c in key):
        return 'room sections must be named "user@host"'
    return None


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a `Config` from parsed TOML; raise `ConfigError` listing every problem."""
    problems: list[tuple[str, str]] = []
    sections: dict[str, Any] = {}
    simple = {
        "server": ServerConfig,
        "sip": SipConfig,
        "media": MediaConfig,
        "msrp": MsrpConfig,
        "files": FilesConfig,
        "web": WebConfig,
        "mdns": MdnsConfig,
    }
    for key in data:
        if key not in simple and key not in ("conference", "rooms"):
            problems.append((key, "unknown section"))
    for name, cls in simple.items():
        if name in data:
            sections[name] = _build(cls, data[name], name + ".", problems)
    defaults = RoomPolicy()
    if "conference" in data:
        defaults = _build(RoomPolicy, data["conference"], "conference.", problems)
    rooms: dict[str, RoomPolicy] = {}
    raw_rooms = data.get("rooms", {})
    if not isinstance(raw_rooms, dict):
        problems.append(("rooms", "must be a table of room sections"))
        raw_rooms = {}
    for room_key, table in raw_rooms.items():
        message = _room_key_problem(room_key)
        if message:
            problems.append((f"rooms.{room_key}", message))
            continue
        if not isinstance(table, dict):
            problems.append((f"rooms.{room_key}", "must be a table"))
            continue
        merged = {**{f.name: getattr(defaults, f.name) for f in dataclasses.fields(RoomPolicy)}}
        override = _build(RoomPolicy, table, f'rooms."{room_key}".', problems)
        for k in table:
            if k in merged:
                merged[k] = getattr(override, k)
        rooms[room_key.lower()] = RoomPolicy(**merged)
    if problems:
        raise ConfigError(problems)
    return Config(conference=ConferenceConfig(defaults=defaults, rooms=rooms), **sections)


def load_config(path: Path | None) -> Config:
    """Load a TOML file (or the defaults when `path` is None)."""
    if path is None:
        return Config()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("(file)", f"invalid TOML: {exc}")]) from exc
    return parse_config(data)
