"""Tests for sylkbox.discovery.advertiser.

In-process tests drive the advertiser against a fake `AsyncZeroconf` (no sockets: mDNS must
never leave this machine's real interfaces) with shortened timers; they check what it asks
zeroconf to do: probes, registrations, TXT updates with a goodbye for the old TXT and the
settle announcement, withdrawals, renames, retries, address changes, goodbyes on stop.
The real thing (python-zeroconf on a veth, avahi resolving it) is `test_advertiser_in_a_namespace`
below and tests/discovery/test_bonjour_netns.py.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from zeroconf import ServiceInfo
from zeroconf._cache import DNSCache
from zeroconf._dns import DNSPointer, DNSService
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf._services.registry import ServiceRegistry
from zeroconf.asyncio import AsyncZeroconf

from sylkbox.conference.participant import Participant, ParticipantState
from sylkbox.conference.room import Room
from sylkbox.config import RoomPolicy
from sylkbox.discovery import advertiser as advertiser_module
from sylkbox.discovery.advertiser import (
    Advertiser,
    AdvertiserSettings,
    VanishedAddressFilter,
    name_taken,
    probe_packet,
)
from sylkbox.discovery.netwatch import Interface, Selection
from sylkbox.discovery.records import Box, Ports, build_records, room_views
from tests.helpers.mdns_ns import BOX_INTERFACE, LineReader, avahi_peer, mdns_link

BOX_ID = uuid.UUID("7c0e5e0a-52f4-4d0c-9a4c-3f1e2b8d9a10")
BOX = Box(name="sylkbox", instance_id=BOX_ID, host="boxy.local.")
PORTS = Ports(sip=(("udp", 5060), ("tcp", 5060)), web=8080)
ETH = Interface(name="eth0", index=2, addresses=("10.0.0.2",))
SRV, PTR, IN = 33, 12, 1


# ---------------------------------------------------------------------------- wire helpers
def test_probe_packet_asks_any_qu_for_every_name() -> None:
    records = build_records(BOX, ["10.0.0.2"], PORTS, ()).records[:2]
    out = probe_packet(records)
    assert out.flags == 0  # a query
    assert [(q.name, q.type, q.unique) for q in out.questions] == [
        (r.full_name, 255, True) for r in records]  # QU: RFC 6762 8.1
    assert [a.alias for a in out.authorities] == [r.full_name for r in records]
    assert out.packets()  # serializes


def test_name_taken_ignores_our_own_records() -> None:
    record = build_records(BOX, ["10.0.0.2"], PORTS, ()).records[0]
    cache = DNSCache()
    assert not name_taken(cache, record)
    ours = DNSService(record.full_name, SRV, IN, 120, 0, 0, 5060, "BOXY.local.")
    cache.async_add_records([ours, DNSPointer(record.service_type, PTR, IN, 4500,
                                              record.full_name)])
    assert not name_taken(cache, record)  # our own announcement, looped back
    other = DNSService(record.full_name, SRV, IN, 120, 0, 0, 5060, "peer.local.")
    cache.async_add_records([other])
    assert name_taken(cache, record)
    alone = DNSCache()  # a PTR to the name and no SRV of ours: someone else's
    alone.async_add_records([DNSPointer(record.service_type, PTR, IN, 4500, record.full_name)])
    assert name_taken(alone, record)


# ---------------------------------------------------------------------------- the fake
@dataclass
class FakeZeroconf:
    """The parts of `zeroconf.Zeroconf` the advertiser uses, recording what is sent."""

    log: list[tuple[str, Any]]
    cache: DNSCache = field(default_factory=DNSCache)
    registry: ServiceRegistry = field(default_factory=ServiceRegistry)
    engine: object = field(default_factory=object)

    async def async_wait_for_start(self) -> None:
        return None

    def async_send(self, out: DNSOutgoing) -> None:
        if out.questions:
            self.log.append(("probe", tuple(q.name for q in out.questions)))
        elif out.answers and all(ttl == 0 for _, ttl in out.answers) and all(
            record.ttl == 0 for record, _ in out.answers
        ):
            self.log.append(("goodbye", tuple(sorted({r.name for r, _ in out.answers}))))
        else:
            self.log.append(("send", tuple(sorted({r.name for r, _ in out.answers}))))

    def generate_service_broadcast(self, info: ServiceInfo, ttl: int | None) -> DNSOutgoing:
        self.log.append(("settle", info.name))
        return DNSOutgoing(0x8400)


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


@dataclass
class FakeAsyncZeroconf:
    interface: Interface
    log: list[tuple[str, Any]]
    fail_registrations: int = 0
    zeroconf: FakeZeroconf = field(init=False)

    def __post_init__(self) -> None:
        self.zeroconf = FakeZeroconf(self.log)

    async def async_register_service(self, info: ServiceInfo,
                                     cooperating_responders: bool = False) -> Awaitable[None]:
        assert cooperating_responders  # we probed ourselves
        if self.fail_registrations:
            self.fail_registrations -= 1
            raise OSError("no buffer space")
        self.zeroconf.registry.async_add(info)
        self.log.append(("register", (info.name, info.text, tuple(info.parsed_addresses()))))
        return _done()

    async def async_update_service(self, info: ServiceInfo) -> Awaitable[None]:
        self.zeroconf.registry.async_update(info)
        self.log.append(("update", (info.name, info.text)))
        return _done()

    async def async_unregister_service(self, info: ServiceInfo) -> Awaitable[None]:
        self.zeroconf.registry.async_remove(info)
        self.log.append(("unregister", info.name))
        return _done()

    async def async_update_interfaces(self, interfaces: list[str], ip_version: Any) -> None:
        self.log.append(("interfaces", tuple(interfaces)))

    async def async_close(self) -> None:
        names = sorted(i.name for i in self.zeroconf.registry.async_get_service_infos())
        self.log.append(("close", tuple(names)))


@dataclass
class FakeRooms:
    rooms: dict[str, Room] = field(default_factory=dict)

    def room(self, key: str, connected: int) -> Room:
        room = self.rooms.setdefault(key, Room(key=key, id=key[:4], policy=RoomPolicy(),
                                               server_name="t"))
        room.participants.clear()
        for n in range(connected):
            room.add(Participant(id=str(n), uri=f"sip:user{n}@peer", display_name=None,
                                 contact="sip:x@peer", joined_at=datetime.now(UTC),
                                 state=ParticipantState.CONNECTED))
        return room


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(advertiser_module, "PROBE_DELAY_MAX", 0.0)
    monkeypatch.setattr(advertiser_module, "STARTUP_PROBE_DELAY_MAX", 0.0)
    monkeypatch.setattr(advertiser_module, "PROBE_INTERVAL", 0.01)
    monkeypatch.setattr(advertiser_module, "SETTLE_DELAY", 0.1)
    monkeypatch.setattr(advertiser_module, "RETRY_DELAY", 0.05)


class Harness:
    def __init__(self, *, persistent: tuple[str, ...] = (), fail: int = 0) -> None:
        self.log: list[tuple[str, Any]] = []
        self.zcs: list[FakeAsyncZeroconf] = []
        self.interfaces: tuple[Interface, ...] = (ETH,)
        self.fail = fail
        settings = AdvertiserSettings(box=BOX, selection=Selection(), provisional_ports=PORTS,
                                      persistent_rooms=persistent)
        self.advertiser = Advertiser(settings, enumerate=lambda _: self.interfaces,
                                     netlink=False, zeroconf=self.open)
        self.rooms = FakeRooms()

    def open(self, interface: Interface) -> AsyncZeroconf:
        zc = FakeAsyncZeroconf(interface, self.log, fail_registrations=self.fail)
        self.zcs.append(zc)
        return cast(AsyncZeroconf, zc)

    def kinds(self, kind: str) -> list[Any]:
        return [value for k, value in self.log if k == kind]

    async def until(self, predicate: Any, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, self.log
            await asyncio.sleep(0.005)

    async def started(self) -> None:
        await self.advertiser.start()
        self.advertiser.serve(PORTS, self.rooms)
        await self.until(lambda: len(self.advertiser.records("eth0")) == 5)


async def test_probes_then_registers_everything(
    fast: None, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(persistent=("weekly",))
    caplog.set_level(logging.INFO, logger="sylkbox.discovery")
    await h.advertiser.start()
    await h.until(lambda: len(h.kinds("probe")) == 3)
    await asyncio.sleep(0.05)
    assert h.kinds("register") == []  # probed, but the ports are not known yet
    h.advertiser.serve(PORTS, h.rooms)
    await h.until(lambda: len(h.kinds("register")) == 7)
    names = {name for name, _, _ in h.kinds("register")}
    assert set(h.kinds("probe")[0]) == names  # all of them in one probe packet
    assert "Conference Room weekly._sipuri._tcp.local." in names
    assert all(addresses == ("10.0.0.2",) for _, _, addresses in h.kinds("register"))
    assert "mdns: advertising 7 services on eth0 (10.0.0.2) as boxy.local." in caplog.text
    assert "mdns: room weekly added on eth0: Conference Room weekly._sipuri._udp.local. " \
           "(No participants)" in caplog.text
    await h.advertiser.stop()
    assert h.kinds("close") == [tuple(sorted(names))]
    assert "mdns: stopped; goodbyes sent for 7 services" in caplog.text


async def test_joins_update_the_note_with_goodbye_and_settle(fast: None) -> None:
    h = Harness()
    await h.started()
    room = h.rooms.room("conference@10.0.0.2", 1)
    h.log.clear()
    for _ in range(3):  # one change, told three times: one update per record
        h.advertiser.room_updated(room)
    await h.until(lambda: len(h.kinds("update")) == 2)
    await asyncio.sleep(0.02)
    assert len(h.kinds("update")) == 2
    assert all(b"\x14note=One participant" in text for _, text in h.kinds("update"))
    kinds = [k for k, _ in h.log]
    assert kinds[:2] == ["goodbye", "update"]  # the old TXT goes first
    assert h.kinds("goodbye")[0] == ("Conference Room._sipuri._udp.local.",)
    await h.until(lambda: len(h.kinds("settle")) == 2)
    h.rooms.room("conference@10.0.0.2", 2)  # a join and a leave 30 ms apart
    h.advertiser.room_updated(room)
    await asyncio.sleep(0.03)
    h.rooms.room("conference@10.0.0.2", 1)
    h.advertiser.room_updated(room)
    await h.until(lambda: len(h.kinds("settle")) == 4)
    await asyncio.sleep(0.15)
    assert len(h.kinds("settle")) == 4  # one per record, after the last change only
    notes = [text.rsplit(b"note=", 1)[1] for _, text in h.kinds("update")]
    assert notes == [b"One participant"] * 2 + [b"2 participants"] * 2 + [b"One participant"] * 2
    assert len(h.kinds("goodbye")) == 6  # each change sends the old TXT's goodbye
    await h.advertiser.stop()


async def test_ad_hoc_rooms_are_probed_added_and_withdrawn(
    fast: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sylkbox.discovery")
    h = Harness()
    await h.started()
    room = h.rooms.room("board@box.local", 0)
    h.advertiser.room_created(room)
    await h.until(lambda: len(h.kinds("register")) == 7)
    assert ("Conference Room board._sipuri._udp.local.",
            "Conference Room board._sipuri._tcp.local.") in h.kinds("probe")
    del h.rooms.rooms["board@box.local"]
    h.advertiser.room_ended(room)
    await h.until(lambda: len(h.kinds("unregister")) == 2)
    assert "mdns: room board withdrawn on eth0: Conference Room board._sipuri._tcp.local." \
           in caplog.text
    await h.advertiser.stop()
    assert "Conference Room board._sipuri._udp.local." not in h.kinds("close")[0]


async def test_a_taken_name_is_renamed(fast: None, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    await h.advertiser.start()
    await h.until(lambda: h.zcs)
    zc = h.zcs[0].zeroconf
    zc.cache.async_add_records([DNSService("sylkbox._sipfocus._udp.local.", SRV, IN, 120, 0, 0,
                                           5060, "other.local.")])
    h.advertiser.serve(PORTS, h.rooms)
    await h.until(lambda: len(h.kinds("register")) == 5)
    names = {name for name, _, _ in h.kinds("register")}
    assert "sylkbox (2)._sipfocus._udp.local." in names
    assert "sylkbox._sipfocus._tcp.local." in names  # another type: no conflict
    assert ("mdns: name conflict on eth0: sylkbox._sipfocus._udp.local. is taken; renamed to "
            "sylkbox (2)._sipfocus._udp.local.") in caplog.text
    await h.advertiser.stop()


async def test_failed_registrations_are_retried(
    fast: None, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(fail=2)
    await h.started()
    assert "failed; retrying in 0.05 s" in caplog.text
    await h.advertiser.stop()


async def test_an_address_change_is_followed(fast: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sylkbox.discovery")
    h = Harness()
    await h.started()
    h.log.clear()
    moved = Interface(name="eth0", index=2, addresses=("10.0.0.3",))
    h.advertiser.interfaces_changed((moved,))
    await h.until(lambda: len(h.kinds("register")) == 5)
    kinds = [k for k, _ in h.log]
    assert kinds[:2] == ["interfaces", "goodbye"]  # rebind, then the old TXT and A go
    assert h.kinds("interfaces") == [("10.0.0.3",)]
    assert "boxy.local." in h.kinds("goodbye")[0]  # the old A record
    assert all(addresses == ("10.0.0.3",) for _, _, addresses in h.kinds("register"))
    assert all(b"10.0.0.3:" in text for name, text, _ in h.kinds("register")
               if "_sip" in name)
    assert "mdns: eth0 address changed 10.0.0.2 -> 10.0.0.3; re-announcing 5 services" \
           in caplog.text
    assert "room conference added" not in caplog.text.split("address changed")[1]
    h.advertiser.interfaces_changed(())  # the interface is gone
    await h.until(lambda: len(h.kinds("close")) == 1)
    assert h.advertiser.records("eth0") == ()
    wlan = Interface(name="wlan0", index=3, addresses=("192.168.1.9",))
    h.advertiser.interfaces_changed((wlan,))
    await h.until(lambda: len(h.advertiser.records("wlan0")) == 5)
    await h.advertiser.stop()
    assert len(h.kinds("close")) == 2


async def test_a_quiet_link_holds_its_settle_announcement_until_settled(fast: None) -> None:
    """Netlink spoke about eth0 (its address may be going): the settle announcement due meanwhile
    and updates wait; nothing changed after all, so both go out once it is settled."""
    h = Harness()
    await h.started()
    room = h.rooms.room("conference@10.0.0.2", 1)
    h.advertiser.room_updated(room)
    await h.until(lambda: len(h.kinds("update")) == 2)
    h.log.clear()
    h.advertiser.interfaces_unsettled(frozenset({ETH.index}))
    h.rooms.room("conference@10.0.0.2", 2)
    h.advertiser.room_updated(room)
    await asyncio.sleep(0.2)  # the settle was due after 0.1 s
    assert h.log == []  # no settle, no goodbye, no update
    h.advertiser.interfaces_settled()
    await h.until(lambda: len(h.kinds("update")) == 2)
    assert all(b"note=2 participants" in text for _, text in h.kinds("update"))
    await asyncio.sleep(0.25)
    last_update = max(i for i, (k, _) in enumerate(h.log) if k == "update")
    assert len({name for k, name in h.log[last_update:] if k == "settle"}) == 2  # after it
    await h.advertiser.stop()


async def test_a_held_settle_goes_out_when_due_if_nothing_changed(fast: None) -> None:
    h = Harness()
    await h.started()
    h.advertiser.room_updated(h.rooms.room("conference@10.0.0.2", 1))
    await h.until(lambda: len(h.kinds("update")) == 2)
    h.advertiser.interfaces_unsettled(None)  # messages lost: every link
    await asyncio.sleep(0.02)
    h.advertiser.interfaces_settled()  # before it was due: it keeps its time
    await asyncio.sleep(0.03)
    assert h.kinds("settle") == []
    await h.until(lambda: len(h.kinds("settle")) == 2)
    await h.advertiser.stop()


async def test_no_settle_on_the_vanished_address_when_it_changes(fast: None) -> None:
    """The address changes within SETTLE_DELAY of a leave (netlink is debounced): the settle
    announcement must not go out on the socket of the deleted address; the rebind re-announces
    with the final TXT."""
    h = Harness()
    await h.started()
    h.advertiser.room_updated(h.rooms.room("conference@10.0.0.2", 1))
    await h.until(lambda: len(h.kinds("update")) == 2)
    h.rooms.room("conference@10.0.0.2", 0)
    h.advertiser.room_updated(h.rooms.room("conference@10.0.0.2", 0))  # the leave
    await h.until(lambda: len(h.kinds("update")) == 4)
    h.log.clear()
    h.advertiser.interfaces_unsettled(frozenset({ETH.index}))  # DELADDR, at once
    await asyncio.sleep(0.15)  # the debounce outlasts the settle's due time
    moved = Interface(name="eth0", index=2, addresses=("10.0.0.3",))
    h.advertiser.interfaces_changed((moved,))
    h.advertiser.interfaces_settled()
    await h.until(lambda: len(h.kinds("register")) == 5)
    await asyncio.sleep(0.15)
    assert [k for k, _ in h.log][:2] == ["interfaces", "goodbye"]
    assert h.kinds("settle") == []
    assert all(b"note=No participants" in text for name, text, _ in h.kinds("register")
               if "Conference Room._sipuri" in name)
    await h.advertiser.stop()


async def test_only_the_links_netlink_names_are_quiet(fast: None) -> None:
    h = Harness()
    wlan = Interface(name="wlan0", index=3, addresses=("192.168.1.9",))
    h.interfaces = (ETH, wlan)
    await h.started()
    await h.until(lambda: len(h.advertiser.records("wlan0")) == 5)
    h.advertiser.room_updated(h.rooms.room("conference@10.0.0.2", 1))
    await h.until(lambda: len(h.kinds("update")) == 4)
    h.advertiser.interfaces_unsettled(frozenset({wlan.index}))
    await h.until(lambda: len(h.kinds("settle")) == 2)  # eth0's
    await asyncio.sleep(0.15)
    assert len(h.kinds("settle")) == 2
    h.advertiser.interfaces_settled()
    await h.until(lambda: len(h.kinds("settle")) == 4)  # wlan0's, overdue: at once
    await h.advertiser.stop()


def _send_failed(code: int, text: str) -> None:
    """What python-zeroconf does when a send fails (`AsyncListener.error_received`); it warns
    once per message string, hence a new socket description each time."""
    from zeroconf._logger import QuietLogger

    exc = OSError(code, text)
    QuietLogger.log_exception_once(exc, f"Error with socket {uuid.uuid4()}): %s", exc)


async def test_sends_on_a_vanished_address_are_not_tracebacks(
    fast: None, caplog: pytest.LogCaptureFixture
) -> None:
    """zeroconf logs a warning with a traceback when a send fails because the socket's address
    just vanished; while the advertiser runs that is one debug line of ours. Other zeroconf
    warnings stay; after `stop` the filter is gone."""
    caplog.set_level(logging.DEBUG, logger="sylkbox.discovery")
    zeroconf_log = logging.getLogger("zeroconf")
    h = Harness()
    await h.started()
    for code in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.ENODEV):
        _send_failed(code, "vanished")
    _send_failed(errno.EPERM, "not permitted")
    zeroconf_log.warning("no exception at all")
    assert [(r.levelno, r.getMessage().rsplit(": ", 1)[-1]) for r in caplog.records
            if r.name == "zeroconf"] == [(logging.WARNING, "[Errno 1] not permitted"),
                                         (logging.WARNING, "no exception at all")]
    ours = [r for r in caplog.records if "going away" in r.getMessage()]
    assert [(r.levelno, r.exc_info, r.getMessage().rsplit(": ", 1)[-1]) for r in ours] == [
        (logging.DEBUG, None, f"[Errno {code}] vanished")
        for code in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.ENODEV)]
    assert ours[0].getMessage().startswith("mdns: x zeroconf send failed, the address is going "
                                           "away: Error with socket ")
    await h.advertiser.stop()
    assert not [f for f in zeroconf_log.filters if isinstance(f, VanishedAddressFilter)]
    caplog.clear()
    _send_failed(errno.ENETUNREACH, "after stop")
    assert [r.levelno for r in caplog.records if r.name == "zeroconf"] == [logging.WARNING]


async def test_only_the_start_up_probe_has_a_shorter_random_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 6762 8.1's random 0-250 ms before a first probe, except at start-up: 0-100 ms, so
    that the box is seen within 1 s of its start (issue 5). New rooms and new interfaces
    (the hub case the RFC has in mind) keep 0-250 ms."""
    draws: list[tuple[float, float]] = []

    class Draw:  # records the range and waits for nothing
        @staticmethod
        def uniform(low: float, high: float) -> float:
            draws.append((low, high))
            return 0.0

    monkeypatch.setattr(advertiser_module, "random", Draw)
    monkeypatch.setattr(advertiser_module, "PROBE_INTERVAL", 0.01)
    h = Harness()
    await h.started()
    assert draws == [(0, 0.1)]
    h.advertiser.room_created(h.rooms.room("board@box.local", 1))
    await h.until(lambda: len(h.kinds("register")) == 7)
    wlan = Interface(name="wlan0", index=3, addresses=("192.168.1.9",))
    h.advertiser.interfaces_changed((ETH, wlan))
    await h.until(lambda: len(h.advertiser.records("wlan0")) == 7)
    assert draws == [(0, 0.1), (0, 0.25), (0, 0.25)]
    await h.advertiser.stop()


def test_room_views_from_the_focus_count_connected_people() -> None:
    rooms = FakeRooms()
    room = rooms.room("team@box", 3)
    room.participants["1"].state = ParticipantState.ALERTING
    views = room_views([("team", sum(1 for _ in room.connected()))], [])
    assert views[1].participants == 2


# ---------------------------------------------------------------------------- namespace
@pytest.mark.timeout(90)
def test_advertiser_in_a_namespace(tmp_path: Path) -> None:
    """The real server in the box namespace, avahi in the peer one: first records within about
    a second of the advertiser starting, a name avahi holds renamed, an address change
    followed, goodbyes on SIGTERM."""
    with mdns_link(tmp_path) as link:
        avahi = avahi_peer(link)
        holder = avahi.publish("nsbox", "_sipfocus._udp", 5999, "txtvers=1")
        watch = avahi.watch("_sipuri._udp")
        config = tmp_path / "sylkbox.toml"
        config.write_text('[mdns]\nname = "nsbox"\nhost_name = "nsbox"\n[msrp]\nport = 0\n'
                          '[web]\nport = 8080\n[media]\nport_range = "33000-33099"\n'
                          '[sip]\ntls_port = 0\n')
        log_path = tmp_path / "server.log"
        with log_path.open("w") as out:
            server = LineReader(subprocess.Popen(
                link.exec_argv(link.box_ns, [
                    sys.executable, "-m", "sylkbox", "run", "--config", str(config),
                    "--data-dir", str(tmp_path / "var"), "--log-level", "debug"]),
                stdout=subprocess.PIPE, stderr=out, text=True,
                cwd=Path(__file__).resolve().parents[2]), "sylkbox")
        link.children.append(server)
        resolved = watch.wait_event(lambda e: e.kind == "=" and e.name == "Conference Room", 10)
        assert (resolved.address, resolved.port, resolved.host) == (
            link.box_address, 5060, "nsbox.local")
        deadline = time.monotonic() + 5
        while "mdns: advertising" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = log_path.read_text()
        assert f"mdns: advertising 5 services on {BOX_INTERFACE} ({link.box_address}) as " \
               "nsbox.local." in text
        assert ("mdns: name conflict on mdbox0: nsbox._sipfocus._udp.local. is taken; renamed "
                "to nsbox (2)._sipfocus._udp.local.") in text
        renamed = avahi.wait_resolved("_sipfocus._udp", lambda e: e.name == "nsbox (2)", 5)
        assert (b"contact=<sip:%s:5060;transport=udp;isfocus>" % link.box_address.encode()
                in renamed.txt)
        holder.stop()

        old, new = link.box_address, link.address(7)
        link.set_box_address(new)
        moved = avahi.wait_resolved(
            "_sipuri._tcp", lambda e: e.name == "Conference Room" and e.address == new, 5)
        assert (b"contact=<sip:conference@%s:5060;transport=tcp;isfocus>" % new.encode()
                in moved.txt)
        assert f"mdns: {BOX_INTERFACE} address changed {old} -> {new}; re-announcing 5 " \
               "services" in log_path.read_text()

        started = time.monotonic()
        assert server.stop(10) == 0
        gone = watch.wait_event(lambda e: e.kind == "-" and e.name == "Conference Room", 5)
        assert gone.type == "_sipuri._udp" and time.monotonic() - started < 3
        assert "mdns: stopped; goodbyes sent for 5 services" in log_path.read_text()
