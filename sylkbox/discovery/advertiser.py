"""Bonjour advertisement (RFC 6762, RFC 6763) of the focus, the rooms and the web UI.

The asyncio edge of discovery: `records.build_records` says what to advertise, this module puts
it on the wire with python-zeroconf's asyncio API and keeps it true.

* One `AsyncZeroconf` per advertised interface, bound to that interface's address, carrying the
  records whose contact and A records hold that address (a record sent on another link would
  give Blink an address it cannot reach). ``IP_MULTICAST_ALL`` is turned off on its listening
  socket so that it hears only its own link.
* Probing is ours (RFC 6762 8.1 timing: a random 0-250 ms (0-100 ms at start-up, see
  `STARTUP_PROBE_DELAY_MAX`), three probes 250 ms apart, 250 ms more), all the new names of a
  link in one packet, so that the first records are announced 0.75-0.85 s after `start`;
  python-zeroconf's own probing takes 1.2 s. `start` runs before the server is even imported
  (`start_advertiser`, called by `cli`; the names do not depend on the ports); `serve` gives the
  ports and the rooms once the listeners are bound, and the probed records are registered
  (``cooperating_responders=True``: no second probe). A name someone else holds is renamed
  `` (2)``, `` (3)``... (RFC 6762 9), logged.
* Changes (rooms created and ended, joins and leaves, ports) are reconciled by one worker task
  per link, so bursts coalesce. A TXT change sends a goodbye (TTL 0) for the old TXT, the new
  one, and one more announcement 1.1 s after the last change: avahi otherwise keeps a TXT that
  changed back within 1 s (it flushes only records older than 1 s, RFC 6762 10.2).
* An address change (netlink, `netwatch.InterfaceWatch`) re-binds the link's sockets and
  re-announces (old records out of the registry first, goodbyes for the old TXT and A records,
  then the new ones); a vanished interface is closed; a new one is probed and announced.
  From the first netlink message about a link until the change is handled (netlink is
  debounced) the link is *quiet*: its settle announcements are held and its updates wait, as its
  socket may be bound to an address that is already gone; if nothing changed, the held
  announcements go out when due. Sends zeroconf makes itself in that window (answers, its own
  announcements) fail with ``ENETUNREACH`` and the like: `VanishedAddressFilter` turns
  zeroconf's warning with a traceback into one debug line of ours while the advertiser runs.
* Failures are logged and retried after 1 s (as SylkServer does); nothing here raises into the
  server. `stop` sends goodbyes for everything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import errno
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from zeroconf import IPVersion, ServiceInfo, current_time_millis
from zeroconf._cache import DNSCache
from zeroconf._dns import DNSQuestion, DNSService
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from sylkbox.config import Config
from sylkbox.discovery.identity import load_instance_id
from sylkbox.discovery.netwatch import (
    Interface,
    InterfaceWatch,
    Selection,
    current_interfaces,
    describe,
)
from sylkbox.discovery.records import (
    Box,
    Ports,
    RecordKey,
    Records,
    ServiceRecord,
    build_records,
    diff,
    host_label,
    room_views,
)

if TYPE_CHECKING:  # at run time conference.room would pull in the SIP, SDP and media stack
    from sylkbox.conference.room import Room

__all__ = [
    "Advertiser",
    "AdvertiserSettings",
    "RoomSource",
    "VanishedAddressFilter",
    "name_taken",
    "open_zeroconf",
    "probe_packet",
    "start_advertiser",
]

log = logging.getLogger(__name__)

PROBE_DELAY_MAX = 0.25  # RFC 6762 8.1: a random 0-250 ms before the first probe
# ...except at start-up: issue 5 wants the box seen within 1 s of its start, and the probing
# (750 ms) plus the interpreter start-up before it (~0.1 s) leave ~0.15 s. The delay is a SHOULD
# against hosts that start together all probing at once: 0-100 ms still spreads them, and later
# probing (new rooms, new interfaces, renames) keeps the RFC's 0-250 ms.
STARTUP_PROBE_DELAY_MAX = 0.1
PROBE_INTERVAL = 0.25  # RFC 6762 8.1: 250 ms between probes, and after the last
PROBE_COUNT = 3
CONFLICT_LIMIT = 15  # RFC 6762 8.1: 15 conflicts within 10 s -> 5 s before each new probe
CONFLICT_WINDOW = 10.0
CONFLICT_BACKOFF = 5.0
SETTLE_DELAY = 1.1  # one more announcement this long after the last TXT change
RETRY_DELAY = 1.0  # a failed registration is retried after 1 s (SylkServer)
GOODBYE_WAIT = 1.0  # at stop: how long withdrawals in flight may take
_TYPE_ANY = 255  # RFC 1035 3.2.3
_CLASS_IN = 1
_CLASS_UNIQUE = 0x8000  # in a question: the QU bit (RFC 6762 5.4)
_FLAGS_RESPONSE = 0x8400  # QR + AA (RFC 6762 18.2, 18.4)
_IP_MULTICAST_ALL = 49  # linux/in.h
_VANISHED = frozenset({errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.ENODEV})
_IPV6_MULTICAST_ALL = 29  # linux/in6.h


class RoomSource(Protocol):
    """Where the active rooms come from (the focus): keyed by ``user@host``."""

    @property
    def rooms(self) -> Mapping[str, Room]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvertiserSettings:
    """Everything the advertiser needs from the configuration."""

    box: Box
    selection: Selection
    provisional_ports: Ports  # the configured ones: names can be probed before binding
    persistent_rooms: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config, instance_id: uuid.UUID) -> AdvertiserSettings:
        mdns = config.mdns
        label = host_label(mdns.host_name or socket.gethostname())
        box = Box(name=mdns.name or config.server.name, instance_id=instance_id,
                  host=f"{label}.local.")
        sip = config.sip
        transports = [("udp", sip.udp_port), ("tcp", sip.tcp_port)]
        if sip.tls_port:
            transports.append(("tls", sip.tls_port))
        ports = Ports(sip=tuple((t, p or 9) for t, p in transports), web=config.web.port or 9)
        persistent = sorted({key.partition("@")[0] for key, policy in
                             config.conference.rooms.items() if policy.persistent})
        return cls(box=box, selection=Selection(names=mdns.interfaces, ipv6=mdns.ipv6,
                                                bind=sip.bind),
                   provisional_ports=ports, persistent_rooms=tuple(persistent))


# ---------------------------------------------------------------------------- wire helpers
def probe_packet(records: Sequence[ServiceRecord]) -> DNSOutgoing:
    """One probe for every name (RFC 6762 8.1, 8.2): a QU ``ANY`` question per instance name,
    our PTR for it in the authority section (python-zeroconf takes nothing else there)."""
    out = DNSOutgoing(0)
    for record in records:
        out.add_question(DNSQuestion(record.full_name, _TYPE_ANY, _CLASS_IN | _CLASS_UNIQUE))
        out.add_authorative_answer(_info(record).dns_pointer())
    return out


def name_taken(cache: DNSCache, record: ServiceRecord, now: float | None = None) -> bool:
    """Whether another host holds `record`'s name: a live SRV for it pointing to another host,
    or a PTR to it with no SRV of ours (our own records come back to us over multicast
    loopback and from our other links)."""
    now = current_time_millis() if now is None else now
    ours = False
    for entry in cache.async_entries_with_name(record.full_name):
        if isinstance(entry, DNSService) and not entry.is_expired(now):
            if entry.server.lower() != record.host.lower():
                return True
            ours = True
    alias = cache.current_entry_with_name_and_alias(record.service_type, record.full_name)
    return alias is not None and not ours


def _info(record: ServiceRecord) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        record.service_type,
        record.full_name,
        port=record.port,
        properties=record.txt_bytes(),
        server=record.host,
        parsed_addresses=list(record.addresses),
    )


def _goodbye(infos: Sequence[ServiceInfo], *, addresses: bool) -> DNSOutgoing:
    """Goodbyes (TTL 0, RFC 6762 10.1) for the TXT (and A/AAAA) records of `infos`."""
    out = DNSOutgoing(_FLAGS_RESPONSE)
    for info in infos:
        out.add_answer_at_time(info.dns_text(override_ttl=0), 0)
        if addresses:
            for record in info.dns_addresses(override_ttl=0):
                out.add_answer_at_time(record, 0)
    return out


def open_zeroconf(interface: Interface) -> AsyncZeroconf:
    """An `AsyncZeroconf` on `interface` only (its first address; IPv6 by interface index)."""
    if interface.is_ipv6:
        return AsyncZeroconf(interfaces=[interface.index], ip_version=IPVersion.V6Only)
    return AsyncZeroconf(interfaces=[interface.address], ip_version=IPVersion.V4Only)


def _own_link_only(azc: AsyncZeroconf, ipv6: bool) -> None:
    """Turn ``IP_MULTICAST_ALL`` off on the listening socket (best effort): without it Linux
    hands it the multicast of every interface, and it would answer another link's queries
    with this link's address."""
    sock = getattr(azc.zeroconf.engine, "_listen_socket", None)
    if not isinstance(sock, socket.socket):
        return
    try:
        if ipv6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL, 0)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
    except OSError as exc:
        log.debug("mdns: cannot limit the listening socket to its link: %s", exc)


class VanishedAddressFilter(logging.Filter):
    """For the ``zeroconf`` logger: drops its records of a send that failed because the
    socket's address just vanished (an address change, `Advertiser` follows it) and logs one
    debug line instead; other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, OSError) or exc.errno not in _VANISHED:
            return True
        log.debug("mdns: x zeroconf send failed, the address is going away: %s",
                  record.getMessage())
        return False


# ---------------------------------------------------------------------------- state
class _State(enum.Enum):
    PROBING = "probing"  # our probes are out
    PROBED = "probed"  # the name is ours; waiting for `serve` (or a retry) to register it
    ANNOUNCED = "announced"  # in zeroconf's registry, answered and announced
    WITHDRAWN = "withdrawn"


@dataclass(slots=True, eq=False, kw_only=True)
class _Registration:
    """One record on one link: what it should be, and what zeroconf has."""

    desired: ServiceRecord
    state: _State = _State.PROBING
    n: int = 1  # the conflict suffix (RFC 6762 9): 1 = none
    info: AsyncServiceInfo | None = None
    announced: ServiceRecord | None = None
    announcing: Awaitable[Any] | None = None
    settle: asyncio.TimerHandle | None = None
    held_settle: float | None = None  # loop time the settle held by a quiet link is due

    def hold_settle(self) -> None:
        if self.settle is not None:
            self.settle.cancel()
            self.held_settle, self.settle = self.settle.when(), None

    @property
    def record(self) -> ServiceRecord:
        return self.desired if self.n == 1 else self.desired.renamed(self.n)

    def stop_announcing(self) -> None:
        if isinstance(self.announcing, asyncio.Future):
            self.announcing.cancel()
        self.announcing = None
        if self.settle is not None:
            self.settle.cancel()
            self.settle = None
        self.held_settle = None


@dataclass(slots=True, eq=False)
class _Link:
    interface: Interface
    probe_delay_max: float  # before the next first probe (RFC 6762 8.1)
    azc: AsyncZeroconf | None = None
    regs: dict[RecordKey, _Registration] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None
    probes: set[asyncio.Task[None]] = field(default_factory=set)
    goodbyes: set[Awaitable[Any]] = field(default_factory=set)
    moved_from: Interface | None = None
    quiet: bool = False  # netlink says its addresses may be changing: send nothing
    retry: asyncio.TimerHandle | None = None
    failures: int = 0
    started: bool = False  # the "advertising N services" line was logged

    @property
    def name(self) -> str:
        return self.interface.name


# ---------------------------------------------------------------------------- advertiser
class Advertiser:
    """Advertises the box on every selected interface, from `start` to `stop`.

    Also a `conference.room_observer.RoomObserver`: the focus calls `room_created`,
    `room_updated` and `room_ended`, and the rooms' records follow.
    """

    def __init__(
        self,
        settings: AdvertiserSettings,
        *,
        enumerate: Callable[[Selection], tuple[Interface, ...]] = current_interfaces,
        netlink: bool = True,
        zeroconf: Callable[[Interface], AsyncZeroconf] = open_zeroconf,
    ) -> None:
        self._settings = settings
        self._enumerate = enumerate
        self._zeroconf = zeroconf
        self._netlink = netlink
        self._links: dict[str, _Link] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._ports: Ports | None = None
        self._rooms: RoomSource | None = None
        self._watch: InterfaceWatch | None = None
        self._conflicts: collections.deque[float] = collections.deque()
        self._skipped: set[str] = set()
        self._stopping = False
        self._zeroconf_filter = VanishedAddressFilter()

    @property
    def settings(self) -> AdvertiserSettings:
        return self._settings

    @property
    def host(self) -> str:
        return self._settings.box.host

    def records(self, interface: str) -> tuple[ServiceRecord, ...]:
        """What is announced on `interface` now (with conflict names)."""
        link = self._links.get(interface)
        if link is None:
            return ()
        return tuple(r.announced for r in link.regs.values()
                     if r.state is _State.ANNOUNCED and r.announced is not None)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Find the interfaces, start watching them and start probing; returns at once."""
        logging.getLogger("zeroconf").addFilter(self._zeroconf_filter)
        try:
            self._watch = InterfaceWatch(self._settings.selection, self.interfaces_changed,
                                         on_unsettled=self.interfaces_unsettled,
                                         on_settled=self.interfaces_settled,
                                         enumerate=self._enumerate, netlink=self._netlink)
            interfaces = self._watch.start()
        except Exception:
            log.exception("mdns: cannot start")
            return
        if not interfaces:
            log.warning("mdns: no usable interface to advertise on (bind %s%s); waiting for one",
                        self._settings.selection.bind,
                        ", interfaces " + ", ".join(self._settings.selection.names)
                        if self._settings.selection.names else "")
        for interface in interfaces:
            self._add_link(interface, starting=True)

    def serve(self, ports: Ports, rooms: RoomSource | None = None) -> None:
        """The listeners are bound: register the records (probed meanwhile) with these ports."""
        self._ports = ports
        self._rooms = rooms
        self._wake_all()

    async def stop(self) -> None:
        """Goodbyes for every record, sockets closed, tasks ended."""
        if self._stopping:
            return
        self._stopping = True
        try:
            if self._watch is not None:
                await self._watch.close()
            links = list(self._links.values())
            self._links.clear()
            count = sum(_announced(link) for link in links)
            await asyncio.gather(*(self._close_link(link) for link in links), *list(self._closing),
                                 return_exceptions=True)
        except Exception:
            log.exception("mdns: stopping")
            return
        finally:
            logging.getLogger("zeroconf").removeFilter(self._zeroconf_filter)
        log.info("mdns: stopped; goodbyes sent for %d services", count)

    # ------------------------------------------------------------------ RoomObserver
    def room_created(self, room: Room) -> None:
        self._wake_all()

    def room_updated(self, room: Room) -> None:
        self._wake_all()

    def room_ended(self, room: Room) -> None:
        self._wake_all()

    # ------------------------------------------------------------------ links
    def _wake_all(self) -> None:
        for link in self._links.values():
            link.wake.set()

    def _add_link(self, interface: Interface, *, starting: bool = False) -> None:
        link = _Link(interface, STARTUP_PROBE_DELAY_MAX if starting else PROBE_DELAY_MAX)
        self._links[interface.name] = link
        link.worker = asyncio.get_running_loop().create_task(
            self._work(link), name=f"mdns-{interface.name}")
        link.wake.set()

    def interfaces_changed(self, interfaces: tuple[Interface, ...]) -> None:
        """The selected interfaces are now `interfaces` (the `InterfaceWatch` callback)."""
        if self._stopping:
            return
        log.debug("mdns: interfaces now %s", describe(interfaces))
        found = {i.name: i for i in interfaces}
        for name, link in list(self._links.items()):
            new = found.get(name)
            if new is None:
                del self._links[name]
                log.info("mdns: %s (%s) is gone; withdrawing its %d services", name,
                         link.interface.address, _announced(link))
                task = asyncio.get_running_loop().create_task(
                    self._close_link(link), name=f"mdns-close-{name}")
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            elif new != link.interface:
                if new.address != link.interface.address and link.azc is not None:
                    link.moved_from = link.moved_from or link.interface
                link.interface = new
                link.wake.set()
        for name, interface in found.items():
            if name not in self._links:
                self._add_link(interface)

    def interfaces_unsettled(self, indices: frozenset[int] | None) -> None:
        """Netlink messages about the interfaces with these indices (None: any) arrived; the
        change is known after the debounce (`interfaces_changed`, then `interfaces_settled`).
        Until then their links are quiet: an address may be gone under their sockets."""
        for link in self._links.values():
            index = link.interface.index
            if indices is None or index in indices or not index:
                if not link.quiet:
                    log.debug("mdns: %s may be changing; holding its announcements", link.name)
                link.quiet = True
                for reg in link.regs.values():
                    reg.hold_settle()

    def interfaces_settled(self) -> None:
        """The interfaces were enumerated again (the `InterfaceWatch` callback, after
        `interfaces_changed` if something changed): quiet links resume. One whose address
        changed re-announces everything (`_follow`); the others send their held settle
        announcements when due."""
        loop = asyncio.get_running_loop()
        for link in self._links.values():
            if not link.quiet:
                continue
            link.quiet = False
            if link.moved_from is None:
                log.debug("mdns: %s unchanged; resuming", link.name)
            for reg in link.regs.values():
                due, reg.held_settle = reg.held_settle, None
                if due is not None and link.moved_from is None:
                    reg.settle = loop.call_at(due, self._settle, link, reg)
            link.wake.set()

    async def _close_link(self, link: _Link) -> None:
        if link.retry is not None:
            link.retry.cancel()
        tasks = [t for t in (link.worker, *link.probes) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for reg in link.regs.values():
            reg.stop_announcing()
        if link.goodbyes:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*link.goodbyes, return_exceptions=True),
                                       GOODBYE_WAIT)
        if link.azc is not None:
            try:
                await link.azc.async_close()  # goodbyes (TTL 0) for everything registered
            except Exception as exc:
                log.warning("mdns: closing %s: %s", link.name, exc)
            link.azc = None

    async def _open(self, link: _Link) -> AsyncZeroconf:
        if link.azc is None:
            azc = self._zeroconf(link.interface)
            try:
                await azc.zeroconf.async_wait_for_start()
            except BaseException:
                await azc.async_close()
                raise
            _own_link_only(azc, link.interface.is_ipv6)
            link.azc = azc
        return link.azc

    # ------------------------------------------------------------------ the worker
    async def _work(self, link: _Link) -> None:
        """Every change of one link, in order: open, follow an address change, reconcile."""
        while not self._stopping:
            await link.wake.wait()
            link.wake.clear()
            if link.quiet:  # woken again by `interfaces_settled`
                continue
            try:
                azc = await self._open(link)
                if link.moved_from is not None:
                    await self._follow(link, azc)
                failed = await self._reconcile(link, azc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed = True
                self._log_failure(link, f"{link.name}: {exc!r}")
            if failed:
                self._retry_later(link)
            else:
                link.failures = 0

    def _log_failure(self, link: _Link, what: str) -> None:
        link.failures += 1
        level = logging.WARNING if link.failures <= 3 else logging.DEBUG
        log.log(level, "mdns: %s failed; retrying in %g s", what, RETRY_DELAY)

    def _retry_later(self, link: _Link) -> None:
        if link.retry is not None:
            link.retry.cancel()
        link.retry = asyncio.get_running_loop().call_later(RETRY_DELAY, link.wake.set)

    def _desired(self, link: _Link) -> Records:
        rooms: list[tuple[str, int]] = []
        if self._rooms is not None:  # imported late: the room model is not needed to probe
            from sylkbox.conference.room import identity_key

            for key, room in list(self._rooms.rooms.items()):
                count = len({identity_key(p.uri) for p in room.connected() if p.file is None})
                rooms.append((key.partition("@")[0], count))
        views = room_views(rooms, self._settings.persistent_rooms)
        ports = self._ports or self._settings.provisional_ports
        result = build_records(self._settings.box, link.interface.addresses, ports, views)
        for user, why in result.skipped:
            if user not in self._skipped:
                self._skipped.add(user)
                log.warning("mdns: room %s not advertised: %s", user, why)
        return result

    async def _reconcile(self, link: _Link, azc: AsyncZeroconf) -> bool:
        """Bring the link's records to what they should be; True if something failed."""
        desired = self._desired(link).records
        change = diff((r.desired for r in link.regs.values()), desired)
        for record in change.removed:
            await self._withdraw(link, azc, link.regs.pop(record.key))
        for _, record in change.changed:
            link.regs[record.key].desired = record
        new = []
        for record in change.added:
            reg = _Registration(desired=record)
            link.regs[record.key] = reg
            new.append(reg)
        if new:
            log.debug("mdns: probing %d names on %s", len(new), link.name)
            self._probe_later(link, azc, new, delay=random.uniform(0, link.probe_delay_max))
            link.probe_delay_max = PROBE_DELAY_MAX
        if self._ports is None:
            return False
        failed = False
        for reg in list(link.regs.values()):
            if link.quiet or link.moved_from is not None:
                break  # the worker is woken again when the change is known
            try:
                if reg.state is _State.PROBED:
                    await self._register(link, azc, reg)
                elif reg.state is _State.ANNOUNCED and reg.announced != reg.record:
                    await self._update(link, azc, reg)
            except Exception as exc:
                failed = True
                self._log_failure(link, f"registering {reg.record.full_name} on {link.name}: "
                                        f"{exc!r}")
        if not link.started and link.regs and all(
            r.state is _State.ANNOUNCED for r in link.regs.values()
        ):
            link.started = True
            log.info("mdns: advertising %d services on %s (%s) as %s", len(link.regs), link.name,
                     link.interface.address, self.host)
        return failed

    async def _register(self, link: _Link, azc: AsyncZeroconf, reg: _Registration) -> None:
        record, first = reg.record, reg.announced is None
        info = _info(record)
        # the name was probed by us: no second probe (RFC 6762 8.1 done in `_probe`)
        reg.announcing = await azc.async_register_service(info, cooperating_responders=True)
        reg.info, reg.announced, reg.state = info, record, _State.ANNOUNCED
        if record.room is not None and first:
            log.info("mdns: room %s added on %s: %s (%s)", record.room, link.name,
                     record.full_name, record.txt_value("note"))
        else:
            log.debug("mdns: announced %s on %s", record.full_name, link.name)

    async def _update(self, link: _Link, azc: AsyncZeroconf, reg: _Registration) -> None:
        """New TXT (or port, addresses) for a registered record: goodbye for the old TXT, the
        new records (3 announcements), and one more announcement 1.1 s after the last change
        (avahi keeps a TXT that came back within 1 s otherwise, RFC 6762 10.2)."""
        old, record = reg.info, reg.record
        reg.stop_announcing()
        if old is not None and reg.announced is not None and reg.announced.txt != record.txt:
            azc.zeroconf.async_send(_goodbye([old], addresses=False))
        info = _info(record)
        reg.info, reg.announced = info, record
        reg.announcing = await azc.async_update_service(info)
        reg.settle = asyncio.get_running_loop().call_later(SETTLE_DELAY, self._settle, link, reg)
        log.debug("mdns: updated %s on %s: %s", record.full_name, link.name,
                  record.txt_value("note") or record.port)

    def _settle(self, link: _Link, reg: _Registration) -> None:
        reg.settle = None
        azc = link.azc
        if azc is None or reg.state is not _State.ANNOUNCED or reg.info is None:
            return
        if link.quiet:  # scheduled by an update that was under way: `interfaces_settled`
            reg.held_settle = asyncio.get_running_loop().time()
            return
        if link.moved_from is not None:  # the rebind re-announces
            return
        try:
            azc.zeroconf.async_send(azc.zeroconf.generate_service_broadcast(reg.info, None))
        except Exception as exc:
            log.debug("mdns: settle announcement of %s: %r", reg.info.name, exc)

    async def _withdraw(self, link: _Link, azc: AsyncZeroconf, reg: _Registration) -> None:
        was, reg.state = reg.state, _State.WITHDRAWN
        reg.stop_announcing()
        if was is not _State.ANNOUNCED or reg.info is None or reg.announced is None:
            return
        record = reg.announced
        goodbye = await azc.async_unregister_service(reg.info)
        link.goodbyes.add(goodbye)
        if isinstance(goodbye, asyncio.Future):
            goodbye.add_done_callback(link.goodbyes.discard)
        if record.room is not None:
            log.info("mdns: room %s withdrawn on %s: %s", record.room, link.name,
                     record.full_name)
        else:
            log.debug("mdns: withdrew %s on %s", record.full_name, link.name)

    async def _follow(self, link: _Link, azc: AsyncZeroconf) -> None:
        """The link's address changed: re-bind and re-announce (measured against avahi 0.8,
        see the module docstring); the names stay ours, so nothing is probed again."""
        old, link.moved_from = link.moved_from, None
        assert old is not None
        new = link.interface
        moving = [r for r in link.regs.values() if r.state is _State.ANNOUNCED]
        infos: list[ServiceInfo] = [r.info for r in moving if r.info is not None]
        for reg in moving:
            reg.stop_announcing()
            reg.state = _State.PROBED  # registered again by `_reconcile`, new addresses
        azc.zeroconf.registry.async_remove(infos)  # so the rebind does not re-announce
        log.info("mdns: %s address changed %s -> %s; re-announcing %d services", link.name,
                 old.address, new.address, len(moving))
        await azc.async_update_interfaces(
            interfaces=[new.index if new.is_ipv6 else new.address],
            ip_version=IPVersion.V6Only if new.is_ipv6 else IPVersion.V4Only,
        )
        _own_link_only(azc, new.is_ipv6)
        if infos:  # from the new address: the old one is gone
            azc.zeroconf.async_send(_goodbye(infos, addresses=True))

    # ------------------------------------------------------------------ probing
    def _probe_later(self, link: _Link, azc: AsyncZeroconf, regs: list[_Registration], *,
                     delay: float) -> None:
        task = asyncio.get_running_loop().create_task(
            self._probe(link, azc, regs, delay), name=f"mdns-probe-{link.name}")
        link.probes.add(task)
        task.add_done_callback(link.probes.discard)

    async def _probe(self, link: _Link, azc: AsyncZeroconf, regs: list[_Registration],
                     delay: float) -> None:
        """RFC 6762 8.1: after `delay`, three probes 250 ms apart and 250 ms
        to hear answers; a name someone else holds is renamed and probed again."""
        try:
            if delay:
                await asyncio.sleep(delay)
            for sent in range(PROBE_COUNT + 1):
                regs = [r for r in regs if r.state is _State.PROBING
                        and link.regs.get(r.desired.key) is r]
                regs = self._drop_conflicts(link, azc, regs)
                if not regs:
                    return
                if sent == PROBE_COUNT:
                    break
                azc.zeroconf.async_send(probe_packet([r.record for r in regs]))
                await asyncio.sleep(PROBE_INTERVAL)
            for reg in regs:
                reg.state = _State.PROBED
            link.wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log_failure(link, f"probing on {link.name}: {exc!r}")
            for reg in regs:
                if reg.state is _State.PROBING and link.regs.get(reg.desired.key) is reg:
                    self._probe_later(link, azc, [reg], delay=RETRY_DELAY)

    def _drop_conflicts(self, link: _Link, azc: AsyncZeroconf,
                        regs: list[_Registration]) -> list[_Registration]:
        kept = []
        for reg in regs:
            if not name_taken(azc.zeroconf.cache, reg.record):
                kept.append(reg)
                continue
            old = reg.record.full_name
            reg.n = max(reg.n, 1) + 1
            log.warning("mdns: name conflict on %s: %s is taken; renamed to %s", link.name, old,
                        reg.record.full_name)
            self._probe_later(link, azc, [reg], delay=self._conflict_delay())
        return kept

    def _conflict_delay(self) -> float:
        now = time.monotonic()
        self._conflicts.append(now)
        while self._conflicts and self._conflicts[0] < now - CONFLICT_WINDOW:
            self._conflicts.popleft()
        return CONFLICT_BACKOFF if len(self._conflicts) >= CONFLICT_LIMIT else 0.0


def _announced(link: _Link) -> int:
    return sum(1 for r in link.regs.values() if r.state is _State.ANNOUNCED)


async def start_advertiser(config: Config) -> Advertiser | None:
    """An `Advertiser` for `config`, started (probing); None if it cannot be set up (logged).

    Cheap on purpose (no room model, no SIP or media stack): `cli` calls it before it imports
    the server so that the RFC 6762 probing runs while the server starts, and the first records
    are announced about 1 s after the process starts (issue 5)."""
    try:
        settings = AdvertiserSettings.from_config(config, load_instance_id(config.data_dir))
    except Exception:
        log.exception("mdns: cannot advertise")
        return None
    advertiser = Advertiser(settings)
    await advertiser.start()
    return advertiser
