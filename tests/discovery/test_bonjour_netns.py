"""Issue 5 proof: the real sylkbox advertises itself and its rooms over mDNS, as Blink parses them.

sylkbox runs in the "box" network namespace of `tests.helpers.mdns_ns` (bound to 0.0.0.0, mDNS on,
``[mdns] name`` and ``host_name`` set); the "peer" namespace holds avahi-daemon (private D-Bus),
``avahi-browse`` watchers for every type, a python-zeroconf browser and the SIP participants
(`tests.helpers.sip_participant`). Expected records are written from the issue-5 record spec:

* ``_sipfocus._udp`` / ``_sipfocus._tcp`` (tcp and tls, ``<name> (TLS)``): TXT ``txtvers=1``,
  ``name``, ``contact=<sip:ADDR:PORT;transport=T;isfocus>``, ``instance_id`` (the box's UUID,
  kept in ``<data_dir>/instance_id``);
* ``_sipuri._udp`` / ``_sipuri._tcp`` for ``conference``, every persistent and every active room:
  ``Conference Room[ <user>]``, contact ``<sip:USER@ADDR:PORT;transport=T;isfocus>``,
  ``instance_id`` = uuid5(box UUID, user), ``state=available``, ``note`` (``No participants`` /
  ``One participant`` / ``N participants``);
* ``_http._tcp`` ``<name>`` on the web port, TXT ``path=/``.

One box (and one link) is shared by the module; `Env.main_box` (re)starts it when a test needed
another configuration and waits until avahi holds exactly the idle records again, so that each
test starts from the same state whatever ran before. Every stop of an advertising box also checks
that its goodbyes emptied avahi's cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.mdns_ns import (
    BOX_INTERFACE,
    AvahiPeer,
    AvahiWatch,
    BlinkNeighbour,
    BrowseEvent,
    MdnsLink,
    ZeroconfBrowser,
    avahi_peer,
    blink_neighbour,
    mdns_link,
    parse_browse_line,
)
from tests.helpers.server import RunningServer, start_server
from tests.helpers.sip_participant import Participant, start_participant

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

TYPES = ("_sipfocus._udp", "_sipfocus._tcp", "_sipuri._udp", "_sipuri._tcp", "_http._tcp")
NAME = "sylkbox Bürö"  # [mdns] name (UTF-8 and a space: both legal in instance names and TXT)
PERSISTENT = "weekly"
SIP_PORT, TLS_PORT, WEB_PORT = 5060, 5061, 8080  # start_server uses 5060/5061 in a namespace
TRANSPORTS = (("udp", SIP_PORT), ("tcp", SIP_PORT), ("tls", TLS_PORT))
IDLE_ROOMS: Mapping[str, int] = {"conference": 0, PERSISTENT: 0}

Key = tuple[str, str]  # (service type as avahi prints it, instance name)


@dataclass(frozen=True, slots=True)
class Seen:
    """One resolved record: SRV target, address (A), SRV port, TXT strings in wire order."""

    host: str
    address: str
    port: int
    txt: tuple[bytes, ...]


def note_for(count: int) -> str:
    if count == 0:
        return "No participants"
    if count == 1:
        return "One participant"
    return f"{count} participants"


def room_name(room: str) -> str:
    return "Conference Room" if room == "conference" else f"Conference Room {room}"


def expected_records(host: str, address: str, box_id: str,
                     rooms: Mapping[str, int] = IDLE_ROOMS) -> dict[Key, Seen]:
    """Every record the box must advertise (the issue-5 record spec), keyed as avahi shows it."""
    records: dict[Key, Seen] = {}
    for transport, port in TRANSPORTS:
        proto = "_udp" if transport == "udp" else "_tcp"
        suffix = " (TLS)" if transport == "tls" else ""
        records[(f"_sipfocus.{proto}", NAME + suffix)] = Seen(host, address, port, _txt(
            "txtvers=1", f"name={NAME}",
            f"contact=<sip:{address}:{port};transport={transport};isfocus>",
            f"instance_id={box_id}"))
        for room, count in rooms.items():
            name = room_name(room)
            records[(f"_sipuri.{proto}", name + suffix)] = Seen(host, address, port, _txt(
                "txtvers=1", f"name={name}",
                f"contact=<sip:{room}@{address}:{port};transport={transport};isfocus>",
                f"instance_id={uuid.uuid5(uuid.UUID(box_id), room)}",
                "state=available", f"note={note_for(count)}"))
    records[("_http._tcp", NAME)] = Seen(host, address, WEB_PORT, (b"path=/",))
    return records


def _txt(*items: str) -> tuple[bytes, ...]:
    return tuple(item.encode() for item in items)


# ---------------------------------------------------------------------------- avahi's view
def avahi_view(avahi: AvahiPeer) -> dict[Key, list[Seen]]:
    """What avahi's cache resolves now, for every type (``avahi-browse -rptc``, ~20 ms each)."""
    view: dict[Key, list[Seen]] = {}
    for service_type in TYPES:  # keyed by the type browsed: avahi-browse without -k prints
        for e in avahi.browse(service_type, cache=True):  # "Web Site" for _http._tcp
            view.setdefault((service_type, e.name), []).append(
                Seen(e.host, e.address, e.port, e.txt))
    return view


def wait_avahi(avahi: AvahiPeer, expected: Mapping[Key, Seen], timeout: float) -> float:
    """Wait until avahi resolves exactly `expected` (no record more, none less, one entry
    each); returns the time it took. On timeout the assertion shows the difference."""
    started = time.monotonic()
    want = {key: [seen] for key, seen in expected.items()}
    while True:
        view = avahi_view(avahi)
        if view == want:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            missing = {k: v for k, v in want.items() if view.get(k) != v}
            extra = {k: v for k, v in view.items() if k not in want}
            pytest.fail(f"avahi did not resolve the expected records in {timeout} s\n"
                        f"wrong or missing: {missing}\nseen for them: "
                        f"{ {k: view.get(k) for k in missing} }\nextra: {extra}")
        time.sleep(0.03)


def removed_keys(watches: Mapping[str, AvahiWatch]) -> set[Key]:
    """Services the running ``avahi-browse -rp`` watchers reported removed (``-``) since the
    last call."""
    gone: set[Key] = set()
    for service_type, watch in watches.items():
        for line in watch.drain():
            event = parse_browse_line(line)
            if event is not None and event.kind == "-":
                gone.add((service_type, event.name))
    return gone


# ---------------------------------------------------------------------------- zeroconf's view
class ZeroconfView:
    """The python-zeroconf browser's current view, built from its added/updated/removed lines."""

    def __init__(self, browser: ZeroconfBrowser) -> None:
        self.browser = browser
        self.records: dict[Key, Seen] = {}
        self.history: list[dict[str, object]] = []

    def refresh(self) -> dict[Key, Seen]:
        for line in self.browser.drain():
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            self.history.append(message)
            service_type = str(message.get("type", ""))
            avahi_type = service_type.removesuffix(".local.")
            key = (avahi_type, str(message.get("name", "")).removesuffix("." + service_type))
            if message["event"] == "removed":
                self.records.pop(key, None)
            elif message["event"] in ("added", "updated"):
                addresses = message["addresses"]
                self.records[key] = Seen(
                    str(message["host"]).removesuffix("."),
                    addresses[0] if len(addresses) == 1 else ",".join(addresses),
                    int(message["port"]), tuple(s.encode() for s in message["txt"]))
        return self.records

    def wait(self, expected: Mapping[Key, Seen], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.refresh() != expected:
            if time.monotonic() > deadline:
                missing = {k: v for k, v in expected.items() if self.records.get(k) != v}
                extra = {k: v for k, v in self.records.items() if k not in expected}
                pytest.fail(f"zeroconf browser: wrong or missing {missing}\nseen: "
                            f"{ {k: self.records.get(k) for k in missing} }\nextra: {extra}")
            time.sleep(0.05)


# ---------------------------------------------------------------------------- the box
def box_config(host_label: str, *, mdns_extra: str = "") -> str:
    return (
        '[server]\nname = "server name, not the mdns one"\n'
        "[media]\nrtp_timeout = 3600\nprompts = false\n"
        f"[web]\nport = {WEB_PORT}\n"
        f'[mdns]\nname = "{NAME}"\nhost_name = "{host_label}"\n{mdns_extra}'
        f'[rooms."{PERSISTENT}@example.com"]\npersistent = true\n'
    )


@dataclass
class Env:
    link: MdnsLink
    avahi: AvahiPeer
    watches: dict[str, AvahiWatch]
    zeroconf: ZeroconfView
    tmp: Path
    server: RunningServer | None = None
    kind: str = ""
    advertising: bool = False

    @property
    def host_label(self) -> str:
        return f"box-{self.link.prefix}"

    @property
    def host(self) -> str:
        """The SRV target as avahi prints it."""
        return f"{self.host_label}.local"

    @property
    def box_address(self) -> str:
        return self.link.address(1)

    def start(self, kind: str, config: str, *, mdns: bool = True) -> RunningServer:
        """Start a box (data dir per `kind`: the same kind keeps its instance_id)."""
        self.stop()
        tmp = self.tmp / kind
        tmp.mkdir(exist_ok=True)
        self.server = start_server(tmp, config=config, bind="0.0.0.0",
                                   netns=self.link.box_ns, mdns=mdns)
        self.kind, self.advertising = kind, mdns
        return self.server

    def stop(self, *, wait_withdrawn: bool = True) -> float | None:
        """SIGTERM the box; checks its exit and log; with `wait_withdrawn` (and mDNS on) also
        that avahi's cache is empty within 3 s. Returns the time from SIGTERM to empty."""
        server, self.server, self.kind = self.server, None, ""
        if server is None:
            return None
        started = time.monotonic()
        code = server.stop()
        log = server.log_text()
        assert "Traceback" not in log, log[-4000:]
        assert code == 0, log[-4000:]
        if not (self.advertising and wait_withdrawn):
            return None
        while (view := avahi_view(self.avahi)) != {}:
            assert time.monotonic() - started < 3.0, f"not withdrawn after stop: {view}"
            time.sleep(0.03)
        return time.monotonic() - started

    def check_log(self) -> None:
        """Fail if the running box logged a traceback; the box is stopped first, so that the
        next test starts a fresh one instead of failing for the same reason."""
        server = self.server
        if server is not None and "Traceback" in (log := server.log_text()):
            self.server, self.kind = None, ""
            server.stop()
            pytest.fail(f"the box logged a traceback:\n{log[-4000:]}")

    def main_box(self) -> RunningServer:
        """The shared box, idle, with exactly its idle records resolved by avahi."""
        if self.server is None or self.kind != "main" or self.server.process.poll() is not None:
            self.start("main", box_config(self.host_label))
        assert self.link.box_addresses() == [self.box_address]
        wait_avahi(self.avahi, self.idle_records(), 10.0)
        assert self.server is not None
        return self.server

    def box_id(self, server: RunningServer | None = None) -> str:
        server = server or self.server
        assert server is not None
        return (server.data_dir / "instance_id").read_text().strip()

    def idle_records(self, address: str | None = None) -> dict[Key, Seen]:
        return expected_records(self.host, address or self.box_address, self.box_id())

    def join(self, room: str, user: str, *, address: str | None = None) -> Participant:
        """A participant from the peer namespace joins ``sip:ROOM@BOX:5060``."""
        uri = f"sip:{room}@{address or self.box_address}:{SIP_PORT}"
        return start_participant(uri, local=self.link.peer_address, user=user,
                                 netns=self.link.peer_ns)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("bonjour")
    with mdns_link(tmp) as link:
        avahi = avahi_peer(link)
        watches = {t: avahi.watch(t) for t in TYPES}
        browser = link.start_browser(*(f"{t}.local." for t in TYPES))
        environment = Env(link, avahi, watches, ZeroconfView(browser), tmp)
        try:
            yield environment
        finally:
            environment.stop(wait_withdrawn=False)


@pytest.fixture(autouse=True)
def _no_traceback_left(env: Env) -> Iterator[None]:
    """The box a test leaves running is checked after it (a shared box's log is otherwise
    only read when it stops, in a later test)."""
    yield
    env.check_log()


# ---------------------------------------------------------------------------- tests
def test_avahi_resolves_every_record_with_address_port_and_txt(env: Env) -> None:
    server = env.main_box()  # waits for exactly expected_records(...) in avahi's cache
    box_id = env.box_id()
    assert uuid.UUID(box_id).version == 4 and str(uuid.UUID(box_id)) == box_id
    records = env.idle_records()
    assert len(records) == 10
    # focus, each room: distinct instance_ids; the udp/tcp/tls records of one share theirs
    ids: dict[str, set[bytes]] = {}
    for (service_type, name), seen in records.items():
        if service_type != "_http._tcp":
            owner = name.removesuffix(" (TLS)") + service_type.split(".")[0]
            ids.setdefault(owner, set()).update(t for t in seen.txt if t.startswith(b"inst"))
    assert all(len(v) == 1 for v in ids.values()) and len(set.union(*ids.values())) == 3
    # a fresh query answers the same (not only what the cache kept): avahi-browse -rpt per
    # type, which waits ~1 s for avahi's "all for now", so the five run at once
    with ThreadPoolExecutor(len(TYPES)) as pool:
        answers = list(pool.map(env.avahi.browse, TYPES))
    fresh = {(service_type, e.name): Seen(e.host, e.address, e.port, e.txt)
             for service_type, events in zip(TYPES, answers, strict=True) for e in events}
    assert fresh == records
    log = server.log_text()
    started = re.findall(r"mdns: advertising (\d+) services on (\S+) \((\S+)\) as (\S+)", log)
    assert started[:1] == [("10", BOX_INTERFACE, env.box_address, f"{env.host}.")], log[-3000:]


def test_zeroconf_browser_resolves_the_same_records(env: Env) -> None:
    env.main_box()
    env.zeroconf.wait(env.idle_records(), 10.0)


def _check_blink(event: BrowseEvent, env: Env, address: str) -> BlinkNeighbour:
    """Blink's parser on one record, plus what the record spec adds to Blink's rules."""
    neighbour = blink_neighbour(event.txt, service_type=event.type, host=event.host)
    transport = "tls" if event.name.endswith(" (TLS)") else event.type.rsplit("_", 1)[1]
    assert neighbour.uri.transport == transport
    assert neighbour.uri.param("transport") == transport  # always written
    assert neighbour.is_focus  # isfocus as a URI parameter
    assert neighbour.uri.host_port == (address, event.port)  # SRV port = contact port
    assert neighbour.hostname == env.host_label
    return neighbour


def test_blink_rules_accept_every_record_and_its_contact_is_a_room(env: Env) -> None:
    env.main_box()
    box_id = env.box_id()
    neighbours: dict[Key, BlinkNeighbour] = {}
    for service_type in TYPES[:4]:
        for event in env.avahi.browse(service_type, cache=True):
            neighbour = _check_blink(event, env, env.box_address)
            neighbours[(event.type, event.name)] = neighbour
            if event.type.startswith("_sipfocus"):
                assert neighbour.uri.user is None
                assert neighbour.name == NAME and neighbour.instance_id == box_id
                assert neighbour.state is None and neighbour.note is None
            else:
                room = neighbour.uri.user
                assert room is not None and room in IDLE_ROOMS
                assert neighbour.name == room_name(room)
                assert neighbour.instance_id == str(uuid.uuid5(uuid.UUID(box_id), room))
                assert (neighbour.state, neighbour.note) == ("available", "No participants")
    assert len(neighbours) == 9
    # Blink dials the TXT contact: it reaches the room from the other namespace
    contact = neighbours[("_sipuri._udp", "Conference Room")].uri
    participant = start_participant(str(contact), local=env.link.peer_address,
                                    netns=env.link.peer_ns)
    try:
        assert participant.joined["status"] == 200
    finally:
        assert participant.leave()["status"] == 200


def _wait_removed(env: Env, keys: set[Key], since: float, timeout: float) -> float:
    gone: set[Key] = set()
    while not keys <= gone:
        assert time.monotonic() - since < timeout, f"no '-' line for {keys - gone}"
        gone |= removed_keys(env.watches)
        time.sleep(0.02)
    return time.monotonic() - since


def test_participants_change_notes_and_ad_hoc_rooms_come_and_go(env: Env) -> None:
    env.main_box()
    box_id, addr = env.box_id(), env.box_address

    def rooms(**counts: int) -> dict[Key, Seen]:
        return expected_records(env.host, addr, box_id, {**IDLE_ROOMS, **counts})

    removed_keys(env.watches)  # forget older lines
    alice = env.join("standup", "alice")
    bob: Participant | None = None
    try:
        wait_avahi(env.avahi, rooms(standup=1), 5.0)  # a new room: new records (probed)
        env.zeroconf.wait(rooms(standup=1), 5.0)
        bob = env.join("standup", "bob")
        wait_avahi(env.avahi, rooms(standup=2), 3.0)
        env.zeroconf.wait(rooms(standup=2), 3.0)
        assert bob.leave()["status"] == 200
        bob = None
        # back to a value announced < 1 s ago: avahi's cache must not keep "2 participants"
        wait_avahi(env.avahi, rooms(standup=1), 4.0)
        time.sleep(1.5)
        assert avahi_view(env.avahi) == {k: [v] for k, v in rooms(standup=1).items()}
        env.zeroconf.wait(rooms(standup=1), 3.0)
        left = alice.leave()
        assert left["status"] == 200
        # the ad-hoc room ended: its three records are withdrawn (goodbyes), the others stay
        standup = {(t, room_name("standup") + s) for t, s in
                   (("_sipuri._udp", ""), ("_sipuri._tcp", ""), ("_sipuri._tcp", " (TLS)"))}
        _wait_removed(env, standup, left["at"], 4.0)
        wait_avahi(env.avahi, rooms(), 3.0)
        env.zeroconf.wait(rooms(), 3.0)
    finally:
        for participant in (alice, bob):
            if participant is not None:
                participant.stop()
    # the default room (and the persistent one) stay; their notes follow joins and leaves
    carol = env.join("conference", "carol")
    dave = env.join(PERSISTENT, "dave")
    try:
        wait_avahi(env.avahi, rooms(conference=1, **{PERSISTENT: 1}), 3.0)
    finally:
        assert carol.leave()["status"] == 200
        assert dave.leave()["status"] == 200
    wait_avahi(env.avahi, rooms(), 4.0)
    assert not removed_keys(env.watches)  # conference and weekly were never withdrawn


def test_an_address_change_is_followed(env: Env) -> None:
    server = env.main_box()
    box_id = env.box_id()
    old, new = env.box_address, env.link.address(3)
    removed_keys(env.watches)
    try:
        env.link.set_box_address(new)
        took = wait_avahi(env.avahi, expected_records(env.host, new, box_id), 5.0)
        env.zeroconf.wait(expected_records(env.host, new, box_id), 5.0)
        # the contact in the TXT is reachable: the box (bound to 0.0.0.0) answers there
        participant = env.join("conference", "erin", address=new)
        wait_avahi(env.avahi, expected_records(env.host, new, box_id, {
            **IDLE_ROOMS, "conference": 1}), 3.0)
        left = float(participant.leave()["at"])
        # move back while that change's settle announcement (~1.1 s after it, spec) is still
        # due: it must not go out on the socket of the address that is gone
        time.sleep(max(0.0, left + 1.04 - time.monotonic()))
    finally:
        if env.link.box_address != old:
            env.link.set_box_address(old)
    # back to an address avahi has seen before, and the note back to "No participants"
    wait_avahi(env.avahi, expected_records(env.host, old, box_id), 5.0)
    env.zeroconf.wait(expected_records(env.host, old, box_id), 5.0)
    assert not removed_keys(env.watches), "records were withdrawn instead of updated"
    log = server.log_text()
    assert any("mdns" in line and new in line for line in log.splitlines()), log[-3000:]
    env.check_log()
    print(f"address change followed by avahi in {took:.2f} s")


def test_sigterm_withdraws_everything_and_a_restart_keeps_the_instance_id(env: Env) -> None:
    server = env.main_box()
    box_id = env.box_id()
    records = env.idle_records()
    removed_keys(env.watches)
    data_dir = server.data_dir
    stopped = time.monotonic()
    withdrawn = env.stop()  # asserts exit 0, a clean log and an empty avahi cache within 3 s
    assert withdrawn is not None and withdrawn < 2.5
    assert "sylkbox stopped" in server.log_text()
    _wait_removed(env, set(records), stopped, 3.0)  # a '-' line for every service
    env.zeroconf.wait({}, 3.0)
    # same data dir: same instance_id (focus) and the same room ids (uuid5 of it)
    restarted = env.main_box()
    assert restarted.data_dir == data_dir
    assert env.box_id() == box_id
    env.zeroconf.wait(records, 5.0)


def test_a_name_taken_on_the_link_is_renamed_with_a_number(env: Env) -> None:
    env.stop()
    holder = env.avahi.publish(NAME, "_sipfocus._udp", 5070, "name=taken")
    try:
        server = env.start("conflict", box_config(env.host_label))
        records = expected_records(env.host, env.box_address, env.box_id())
        ours = records.pop(("_sipfocus._udp", NAME))
        records[("_sipfocus._udp", f"{NAME} (2)")] = ours  # same TXT, only the name moves
        records[("_sipfocus._udp", NAME)] = Seen(f"{env.avahi.host_name}.local",
                                                 env.link.peer_address, 5070, (b"name=taken",))
        wait_avahi(env.avahi, records, 8.0)
        warnings = [line for line in server.log_text().splitlines()
                    if "WARNING" in line and f"{NAME} (2)" in line]
        assert warnings, server.log_text()[-3000:]
        assert NAME in warnings[0].replace(f"{NAME} (2)", "")  # names the old one too
    finally:
        holder.stop()
        env.stop(wait_withdrawn=False)
    deadline = time.monotonic() + 3.0
    while avahi_view(env.avahi):
        assert time.monotonic() < deadline, avahi_view(env.avahi)
        time.sleep(0.05)


def _advertises_nothing(env: Env, server: RunningServer) -> None:
    removed_keys(env.watches)
    seen: list[str] = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        for watch in env.watches.values():
            seen += [line for line in watch.drain() if line[:1] in "+="]
        time.sleep(0.1)
    assert seen == [] and avahi_view(env.avahi) == {}
    sockets = subprocess.run(
        env.link.exec_argv(env.link.box_ns, ["ss", "-Hluan"]), capture_output=True, text=True,
        check=True, timeout=10).stdout
    assert f":{SIP_PORT} " in sockets  # the box runs...
    assert ":5353 " not in sockets  # ...without an mDNS socket
    assert "mdns: advertising" not in server.log_text()


def test_no_mdns_flag_advertises_nothing(env: Env) -> None:
    env.stop()
    _advertises_nothing(env, env.start("off-flag", box_config(env.host_label), mdns=False))
    env.stop()


def test_config_switch_off_advertises_nothing(env: Env) -> None:
    env.stop()
    config = box_config(env.host_label, mdns_extra="enabled = false\n")
    _advertises_nothing(env, env.start("off-config", config))
    env.stop()
