"""The DNS-SD records the box advertises (RFC 6763), built exactly as Blink parses them.

Sans-I/O: no asyncio, no sockets, no zeroconf. `build_records` is a pure function from the box's
identity, one link's addresses, the listening ports and the rooms to the records of that link;
`diff` compares two such sets; `discovery.advertiser` puts them on the wire.

What Blink needs (BLINK.md 1.2-1.4): TXT ``txtvers=1``, ``name``, ``contact`` (``<sip:...>`` with
angle brackets, an ``isfocus`` URI parameter, the address of the link the record is sent on) and
``instance_id`` (a plain UUID), then ``state`` and ``note`` for rooms; all values UTF-8 with
``=``: a record Blink cannot decode breaks its whole neighbour list. Blink-Qt groups records by
``instance_id``, so every room has its own (uuid5 of the box's and the room's user part).
TLS goes in ``_tcp`` with ``;transport=tls`` in the contact.

Instance names (RFC 6763 4.1.1): at most 63 UTF-8 bytes, no ASCII control characters; dots are
replaced because python-zeroconf splits names on them (no ``\\.`` escaping).
"""

from __future__ import annotations

import re
import string
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = [
    "DEFAULT_ROOM",
    "FOCUS_TYPES",
    "MAX_INSTANCE_BYTES",
    "MAX_TXT_STRING",
    "ROOM_TYPES",
    "WEB_TLS_TYPE",
    "WEB_TYPE",
    "Box",
    "Ports",
    "RecordDiff",
    "RecordError",
    "Records",
    "RoomView",
    "ServiceRecord",
    "build_records",
    "contact",
    "diff",
    "host_label",
    "instance_name",
    "note_for",
    "room_display_name",
    "room_instance_id",
    "room_views",
    "txt_bytes",
]

DEFAULT_ROOM = "conference"
"""The room always advertised (SylkServer's default room, BLINK.md 1.4)."""
MAX_INSTANCE_BYTES = 63  # RFC 6763 4.1.1 (a DNS label)
MAX_TXT_STRING = 255  # RFC 6763 6.1
SIP_TRANSPORTS = ("udp", "tcp", "tls")
FOCUS_TYPES = {
    "udp": "_sipfocus._udp.local.",
    "tcp": "_sipfocus._tcp.local.",
    "tls": "_sipfocus._tcp.local.",
}
ROOM_TYPES = {
    "udp": "_sipuri._udp.local.",
    "tcp": "_sipuri._tcp.local.",
    "tls": "_sipuri._tcp.local.",
}
WEB_TYPE = "_http._tcp.local."
WEB_TLS_TYPE = "_https._tcp.local."
TLS_TAG = " (TLS)"
FALLBACK_NAME = "sylkbox"
ROOM_NAME = "Conference Room"

# RFC 3261 25.1 user = 1*( unreserved / escaped / user-unreserved ); we keep the unreserved marks
# and "&=+$," and escape the rest (";", "?", "/" too: equivalent, and safer for other parsers)
_USER_KEEP = frozenset(string.ascii_letters + string.digits + "-_.!~*'()&=+$,")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_TXT_KEY = re.compile(r"[\x20-\x3c\x3e-\x7e]+")  # RFC 6763 6.4: printable ASCII but "="


class RecordError(ValueError):
    """A record that cannot be advertised as asked (too long, bad characters)."""


# ------------------------------------------------------------------------------------ text
def _clean(text: str) -> str:
    """Valid UTF-8 text without control characters, whitespace runs folded to one space."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(text.split())


def _truncate(text: str, limit: int) -> str:
    """The longest prefix of `text` that fits in `limit` UTF-8 bytes (whole characters)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore").rstrip()


def instance_name(text: str, *, tag: str = "", n: int = 1) -> str:
    """A DNS-SD instance name for `text` (RFC 6763 4.1.1): no control characters, dots
    replaced by ``-``, at most 63 UTF-8 bytes including `tag` (e.g. `` (TLS)``) and, for
    ``n >= 2``, the conflict suffix `` (n)`` (RFC 6762 9); the text is what gets truncated."""
    if n < 1:
        raise ValueError("n must be 1 or more")
    tail = tag + (f" ({n})" if n > 1 else "")
    base = _clean(text).replace(".", "-") or FALLBACK_NAME
    if base + tail == "_sub":  # python-zeroconf would take it for a subtype label
        base = "-sub"
    room = MAX_INSTANCE_BYTES - len(tail.encode("utf-8"))
    if room < 1:
        raise RecordError(f"instance name suffix too long: {tail!r}")
    return (_truncate(base, room) or base[:1]) + tail


def host_label(text: str) -> str:
    """A DNS host label (RFC 1035 2.3.1: letters, digits, hyphens; 63 bytes) from a host name:
    its first label, other characters replaced by ``-``; ``sylkbox`` when nothing is left."""
    first = text.strip().split(".", 1)[0].lower()
    label = re.sub(r"[^a-z0-9-]+", "-", first).strip("-")[:MAX_INSTANCE_BYTES].strip("-")
    return label or FALLBACK_NAME


def note_for(participants: int) -> str:
    """The room's presence note: ``No participants``, ``One participant``, ``N participants``."""
    if participants < 0:
        raise ValueError("participants must be 0 or more")
    if participants == 0:
        return "No participants"
    if participants == 1:
        return "One participant"
    return f"{participants} participants"


def room_display_name(user: str) -> str:
    """``Conference Room`` for the default room, ``Conference Room <user>`` otherwise."""
    if user == DEFAULT_ROOM:
        return ROOM_NAME
    return f"{ROOM_NAME} {_clean(unquote(user, errors='replace'))}".rstrip()


def room_instance_id(box: uuid.UUID, user: str) -> uuid.UUID:
    """Each room's own ``instance_id`` (Blink-Qt groups records by it): uuid5(box, user)."""
    return uuid.uuid5(box, user)


def _escape_user(user: str) -> str:
    """The room's user part for a SIP URI: existing ``%XX`` escapes kept, the rest escaped."""
    out: list[str] = []
    i = 0
    while i < len(user):
        if _ESCAPE.match(user, i):
            out.append(user[i : i + 3])
            i += 3
            continue
        ch = user[i]
        if ch in _USER_KEEP:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "replace"))
        i += 1
    return "".join(out)


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def contact(address: str, port: int, transport: str, user: str | None = None) -> str:
    """``<sip:[USER@]IP:PORT;transport=T;isfocus>`` (BLINK.md 1.4; transport always written)."""
    userinfo = "" if user is None else _escape_user(user) + "@"
    return f"<sip:{userinfo}{_uri_host(address)}:{port};transport={transport};isfocus>"


# ------------------------------------------------------------------------------------ TXT
def _txt_value(key: str, value: str) -> str:
    """`value` cleaned and truncated so that ``key=value`` fits in one TXT string."""
    return _truncate(_clean(value), MAX_TXT_STRING - len(key.encode("ascii")) - 1)


def txt_bytes(items: Iterable[tuple[str, str]]) -> bytes:
    """TXT RDATA exactly in the given order (RFC 6763 6.1-6.4): length-prefixed ``key=value``
    UTF-8 strings of at most 255 bytes; raises `RecordError` otherwise."""
    out = bytearray()
    for key, value in items:
        if not _TXT_KEY.fullmatch(key):
            raise RecordError(f"bad TXT key {key!r}")
        raw = f"{key}={value}".encode()
        if len(raw) > MAX_TXT_STRING:
            raise RecordError(f"TXT string {key}=... is {len(raw)} bytes (255 at most)")
        out.append(len(raw))
        out += raw
    return bytes(out) or b"\x00"  # RFC 6763 6.1: an empty TXT is one empty string


# ------------------------------------------------------------------------------------ model
@dataclass(frozen=True, slots=True, kw_only=True)
class Box:
    """Who advertises: the focus's friendly name, the stored instance id, the mDNS host name."""

    name: str
    instance_id: uuid.UUID
    host: str  # "label.local."

    def __post_init__(self) -> None:
        if not self.host.endswith(".local."):
            raise RecordError(f"host must end with .local.: {self.host!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """What is listening: SIP ``(transport, port)`` pairs, the web UI (and, once the web UI
    has TLS, its HTTPS port: the ``_https._tcp`` hook)."""

    sip: tuple[tuple[str, int], ...]
    web: int | None = None
    web_tls: int | None = None

    def __post_init__(self) -> None:
        for transport, port in self.sip:
            if transport not in SIP_TRANSPORTS:
                raise RecordError(f"unknown SIP transport {transport!r}")
            _check_port(port)
        for web in (self.web, self.web_tls):
            if web is not None:
                _check_port(web)


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise RecordError(f"bad port {port}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomView:
    """A room as discovery sees it: its user part (as on the wire) and who is in it."""

    user: str
    participants: int = 0

    def __post_init__(self) -> None:
        if not self.user:
            raise RecordError("a room needs a user part")
        if self.participants < 0:
            raise RecordError("participants must be 0 or more")


def room_views(
    active: Iterable[tuple[str, int]], persistent: Iterable[str]
) -> tuple[RoomView, ...]:
    """The rooms to advertise: the default room, every persistent and every active one (by user
    part; rooms of one user under several host names add up), default room first."""
    counts: dict[str, int] = {DEFAULT_ROOM: 0}
    for user in persistent:
        counts.setdefault(user, 0)
    for user, participants in active:
        counts[user] = counts.get(user, 0) + participants
    default = counts.pop(DEFAULT_ROOM)
    others = (RoomView(user=user, participants=counts[user]) for user in sorted(counts))
    return (RoomView(user=DEFAULT_ROOM, participants=default), *others)


RecordKey = tuple[str, str]  # (service type, instance name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord:
    """One DNS-SD service instance: PTR ``type -> instance.type``, SRV ``-> host:port``, TXT,
    and the host's A/AAAA records (`addresses`)."""

    service_type: str
    instance: str
    port: int
    host: str
    addresses: tuple[str, ...]
    txt: tuple[tuple[str, str], ...]
    room: str | None = field(default=None, compare=False)  # the room's user part (_sipuri)

    def __post_init__(self) -> None:
        raw = self.instance.encode("utf-8", "replace")
        if not self.instance or len(raw) > MAX_INSTANCE_BYTES:
            raise RecordError(f"instance name must be 1-63 bytes: {self.instance!r}")
        if "." in self.instance or any(ord(c) < 0x20 or ord(c) == 0x7F for c in self.instance):
            raise RecordError(f"instance name holds a dot or control character: {self.instance!r}")
        if not self.service_type.endswith(("._udp.local.", "._tcp.local.")):
            raise RecordError(f"bad service type {self.service_type!r}")
        _check_port(self.port)
        txt_bytes(self.txt)  # validates every string

    @property
    def key(self) -> RecordKey:
        return self.service_type, self.instance

    @property
    def full_name(self) -> str:
        return f"{self.instance}.{self.service_type}"

    def txt_bytes(self) -> bytes:
        return txt_bytes(self.txt)

    def txt_value(self, key: str) -> str | None:
        return next((v for k, v in self.txt if k == key), None)

    def renamed(self, n: int) -> ServiceRecord:
        """This record under the conflict name `` (n)`` (RFC 6762 9)."""
        return _replace_instance(self, instance_name(self.instance, n=n))


def _replace_instance(record: ServiceRecord, instance: str) -> ServiceRecord:
    return ServiceRecord(
        service_type=record.service_type,
        instance=instance,
        port=record.port,
        host=record.host,
        addresses=record.addresses,
        txt=record.txt,
        room=record.room,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Records:
    """`build_records`' result: the records, and the rooms that could not be advertised."""

    records: tuple[ServiceRecord, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (room user, why)


def _focus_txt(box: Box, address: str, port: int, transport: str) -> tuple[tuple[str, str], ...]:
    return (
        ("txtvers", "1"),
        ("name", _txt_value("name", box.name) or FALLBACK_NAME),
        ("contact", contact(address, port, transport)),
        ("instance_id", str(box.instance_id)),
    )


def _room_txt(
    box: Box, room: RoomView, address: str, port: int, transport: str
) -> tuple[tuple[str, str], ...]:
    return (
        ("txtvers", "1"),
        ("name", _txt_value("name", room_display_name(room.user))),
        ("contact", contact(address, port, transport, room.user)),
        ("instance_id", str(room_instance_id(box.instance_id, room.user))),
        ("state", "available"),
        ("note", note_for(room.participants)),
    )


def build_records(
    box: Box, addresses: Sequence[str], ports: Ports, rooms: Sequence[RoomView]
) -> Records:
    """Every record of one link: the focus and each room per SIP transport, the web UI.

    `addresses` are the link's addresses (A/AAAA records); the first is the one written in the
    contacts. Instance names are unique per type (case-insensitively, RFC 6762 16): a clash
    (two names truncated alike) gets a `` (n)`` suffix. A room whose contact does not fit in a
    TXT string is left out and listed in `Records.skipped`.
    """
    if not addresses:
        return Records(records=())
    address, host, addrs = addresses[0], box.host, tuple(addresses)
    records: list[ServiceRecord] = []
    taken: set[tuple[str, bytes]] = set()

    def add(service_type: str, text: str, tag: str, port: int, txt: tuple[tuple[str, str], ...],
            room: str | None = None) -> None:
        n = 1
        while True:
            name = instance_name(text, tag=tag, n=n)
            folded = (service_type, name.encode("utf-8").lower())
            if folded not in taken:
                break
            n += 1
        taken.add(folded)
        records.append(ServiceRecord(service_type=service_type, instance=name, port=port,
                                     host=host, addresses=addrs, txt=txt, room=room))

    for transport, port in ports.sip:
        tag = TLS_TAG if transport == "tls" else ""
        add(FOCUS_TYPES[transport], box.name, tag, port, _focus_txt(box, address, port, transport))
    skipped: list[tuple[str, str]] = []
    for room in rooms:
        try:
            txts = [(t, p, _room_txt(box, room, address, p, t)) for t, p in ports.sip]
            for _, _, txt in txts:
                txt_bytes(txt)
        except RecordError as exc:
            skipped.append((room.user, str(exc)))
            continue
        text = room_display_name(room.user)
        for transport, port, txt in txts:
            tag = TLS_TAG if transport == "tls" else ""
            add(ROOM_TYPES[transport], text, tag, port, txt, room=room.user)
    if ports.web is not None:
        add(WEB_TYPE, box.name, "", ports.web, (("path", "/"),))
    if ports.web_tls is not None:
        add(WEB_TLS_TYPE, box.name, "", ports.web_tls, (("path", "/"),))
    return Records(records=tuple(records), skipped=tuple(skipped))


# ------------------------------------------------------------------------------------ diff
@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDiff:
    """What changed between two record sets, keyed by (type, instance)."""

    added: tuple[ServiceRecord, ...] = ()
    changed: tuple[tuple[ServiceRecord, ServiceRecord], ...] = ()  # (old, new)
    removed: tuple[ServiceRecord, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def diff(old: Iterable[ServiceRecord], new: Iterable[ServiceRecord]) -> RecordDiff:
    """Records to add, to update (same name; TXT, port or addresses differ) and to withdraw."""
    before = {r.key: r for r in old}
    after = {r.key: r for r in new}
    return RecordDiff(
        added=tuple(r for k, r in after.items() if k not in before),
        changed=tuple((before[k], r) for k, r in after.items() if k in before and before[k] != r),
        removed=tuple(r for k, r in before.items() if k not in after),
    )
