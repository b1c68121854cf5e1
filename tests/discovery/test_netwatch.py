"""Tests for sylkbox.discovery.netwatch: interface selection, netlink parsing, the watcher.

The last test runs the watcher in the box namespace of `tests.helpers.mdns_ns` (a child process)
and changes the namespace's address: netlink must report it, debounced, within a second.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import ifaddr
import pytest

from sylkbox.discovery.netwatch import (
    IFF_LOOPBACK,
    IFF_MULTICAST,
    IFF_UP,
    Interface,
    InterfaceWatch,
    Selection,
    netlink_interface_indices,
    netlink_message_types,
    select_interfaces,
)
from tests.helpers.mdns_ns import BOX_INTERFACE, LineReader, mdns_link

UP = IFF_UP | IFF_MULTICAST


def adapter(name: str, index: int, *ips: str) -> ifaddr.Adapter:
    entries = []
    for ip in ips:
        value: str | tuple[str, int, int] = (ip, 0, 0) if ":" in ip else ip
        entries.append(ifaddr.IP(value, 24 if ":" not in ip else 64, name))
    return ifaddr.Adapter(name, name, entries, index=index)


ADAPTERS = [
    adapter("lo", 1, "127.0.0.1", "::1"),
    adapter("eth0", 2, "192.168.1.5", "192.168.1.6", "fe80::1", "2a01:4f8::5", "fd00::5"),
    adapter("wlan0", 3, "10.0.0.7"),
    adapter("down0", 4, "10.9.0.1"),
    adapter("tun0", 5, "10.8.0.1"),  # no multicast
    adapter("bare0", 6, "fe80::6"),
    adapter("ll0", 7, "169.254.3.4"),  # IPv4 link-local: mDNS's own ground
]
FLAGS = {"lo": IFF_UP | IFF_LOOPBACK, "eth0": UP, "wlan0": UP, "down0": IFF_MULTICAST,
         "tun0": IFF_UP, "bare0": UP, "ll0": UP}


def select(**kwargs: object) -> dict[str, tuple[str, ...]]:
    selection = Selection(**kwargs)  # type: ignore[arg-type]
    found = select_interfaces(ADAPTERS, lambda n: FLAGS.get(n, 0), selection)
    return {i.name: i.addresses for i in found}


def test_every_usable_ipv4_interface() -> None:
    assert select() == {"eth0": ("192.168.1.5", "192.168.1.6"), "ll0": ("169.254.3.4",),
                        "wlan0": ("10.0.0.7",)}
    assert select(ipv6=True) == select()  # IPv6 only with an IPv6 bind


def test_named_interfaces_and_specific_bind() -> None:
    assert select(names=("wlan0", "down0", "nope")) == {"wlan0": ("10.0.0.7",)}
    assert select(bind="192.168.1.6") == {"eth0": ("192.168.1.6",)}
    assert select(bind="10.77.0.1") == {}


def test_ipv6_global_and_ula_only() -> None:
    assert select(bind="::", ipv6=True) == {"eth0": ("2a01:4f8::5", "fd00::5")}
    assert select(bind="::") == {}
    assert select(bind="fd00::5") == {"eth0": ("fd00::5",)}


def test_interface_properties() -> None:
    v4 = Interface(name="eth0", index=2, addresses=("10.0.0.2", "10.0.0.3"))
    v6 = Interface(name="eth0", index=2, addresses=("fd00::2",))
    assert (v4.address, v4.is_ipv6, v6.is_ipv6) == ("10.0.0.2", False, True)


def message(kind: int, payload: bytes) -> bytes:
    length = 16 + len(payload)
    pad = b"\x00" * (-length % 4)
    return struct.pack("=IHHII", length, kind, 0, 0, 0) + payload + pad


def ifaddrmsg(index: int) -> bytes:  # family, prefixlen, flags, scope, index (rtnetlink(7))
    return struct.pack("=BBBBI", 2, 24, 0, 0, index) + b"\x08\x00\x01\x00\x0a\x00\x00\x02"


def ifinfomsg(index: int) -> bytes:  # family, pad, type, index, flags, change
    return struct.pack("=BBHiII", 0, 0, 1, index, 0x1003, 0)


def test_netlink_message_types() -> None:
    data = message(20, b"\x02" * 6) + message(21, b"") + message(16, b"\x01" * 9)
    assert netlink_message_types(data) == [20, 21, 16]
    assert netlink_message_types(b"\x00" * 8) == []
    assert netlink_message_types(struct.pack("=IHHII", 3, 20, 0, 0, 0)) == []  # bad length


def test_netlink_interface_indices() -> None:
    """The index an address or link message is about: RTM_DELADDR/NEWADDR (ifaddrmsg) and
    RTM_NEWLINK/DELLINK (ifinfomsg) both hold it at offset 4; None if one cannot be told."""
    assert netlink_interface_indices(message(21, ifaddrmsg(7))) == frozenset({7})
    batch = message(21, ifaddrmsg(7)) + message(20, ifaddrmsg(7)) + message(16, ifinfomsg(3))
    assert netlink_interface_indices(batch) == frozenset({3, 7})
    assert netlink_interface_indices(b"") == frozenset()
    assert netlink_interface_indices(message(21, b"\x02\x18")) is None  # too short
    assert netlink_interface_indices(message(21, ifaddrmsg(7))[:20]) is None  # truncated
    assert netlink_interface_indices(batch + message(24, ifaddrmsg(7))) is None  # NEWROUTE


async def test_polling_watch_reports_changes_once() -> None:
    eth = Interface(name="eth0", index=2, addresses=("10.0.0.2",))
    state: list[tuple[Interface, ...]] = [(eth,)]
    seen: list[tuple[Interface, ...]] = []
    watch = InterfaceWatch(Selection(), seen.append, enumerate=lambda _: state[0],
                           netlink=False, poll_interval=0.02)
    assert watch.start() == (eth,) and watch.polling
    await asyncio.sleep(0.1)
    assert seen == []  # nothing changed
    moved = Interface(name="eth0", index=2, addresses=("10.0.0.3",))
    state[0] = (moved,)
    await asyncio.sleep(0.1)
    state[0] = ()
    await asyncio.sleep(0.1)
    await watch.close()
    assert seen == [(moved,), ()]


async def test_debounce_coalesces_and_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    result: list[tuple[Interface, ...]] = [()]

    def enumerate(_: Selection) -> tuple[Interface, ...]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("boom")
        return result[0]

    seen: list[tuple[Interface, ...]] = []
    watch = InterfaceWatch(Selection(), seen.append, enumerate=enumerate, netlink=False,
                           poll_interval=3600, debounce=0.05)
    watch.start()
    for _ in range(5):
        watch.schedule_scan()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert len(calls) == 2  # one enumeration for the burst (which failed, logged)
    assert "cannot enumerate" in caplog.text
    result[0] = (Interface(name="x", index=9, addresses=("10.1.1.1",)),)
    watch.schedule_scan()
    await asyncio.sleep(0.1)
    await watch.close()
    assert seen == [result[0]]


async def test_unsettled_is_told_at_once_and_settled_after_the_rescan() -> None:
    """`on_unsettled` runs as soon as netlink speaks (before the debounce), `on_settled` after
    the re-enumeration (after `on_change` if something changed), exactly once per burst."""
    eth = Interface(name="eth0", index=2, addresses=("10.0.0.2",))
    state: list[tuple[Interface, ...]] = [(eth,)]
    events: list[object] = []
    watch = InterfaceWatch(Selection(), lambda found: events.append(("change", found)),
                           on_unsettled=lambda ix: events.append(("unsettled", ix)),
                           on_settled=lambda: events.append("settled"),
                           enumerate=lambda _: state[0], netlink=False, poll_interval=3600,
                           debounce=0.05)
    watch.start()
    watch.unsettled(frozenset({2}))  # what the netlink reader does for each batch
    watch.schedule_scan()
    assert events == [("unsettled", {2})]  # at once
    await asyncio.sleep(0.1)
    assert events == [("unsettled", {2}), "settled"]  # nothing changed
    events.clear()
    moved = Interface(name="eth0", index=2, addresses=("10.0.0.3",))
    state[0] = (moved,)
    watch.unsettled(frozenset({2}))
    watch.schedule_scan()
    watch.unsettled(None)  # messages were lost
    watch.schedule_scan()
    await asyncio.sleep(0.1)
    assert events == [("unsettled", {2}), ("unsettled", None), ("change", (moved,)), "settled"]
    events.clear()
    state[0] = ()
    watch.schedule_scan()  # a rescan nobody was told about (polling): no `on_settled`
    await asyncio.sleep(0.1)
    await watch.close()
    assert events == [("change", ())]


async def test_failing_unsettled_handlers_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    def fail(*_: object) -> None:
        raise RuntimeError("handler")

    watch = InterfaceWatch(Selection(), fail, on_unsettled=fail, on_settled=fail,
                           enumerate=lambda _: (), netlink=False, poll_interval=3600,
                           debounce=0.01)
    watch.start()
    watch.unsettled(None)
    watch.schedule_scan()
    await asyncio.sleep(0.05)
    await watch.close()
    assert caplog.text.count("interface change handler failed") == 2


CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from sylkbox.discovery.netwatch import InterfaceWatch, Selection

    def show(interfaces):
        print(json.dumps([[i.name, list(i.addresses)] for i in interfaces]), flush=True)

    def unsettled(indices):
        print(json.dumps({"unsettled": None if indices is None else sorted(indices)}),
              flush=True)

    def settled():
        print(json.dumps({"settled": True}), flush=True)

    async def main():
        watch = InterfaceWatch(Selection(), show, on_unsettled=unsettled, on_settled=settled)
        show(watch.start())
        print(json.dumps({"polling": watch.polling}), flush=True)
        await asyncio.sleep(30)

    asyncio.run(main())
""")


@pytest.mark.timeout(60)
def test_netlink_follows_an_address_change_in_a_namespace(tmp_path: Path) -> None:
    with mdns_link(tmp_path) as link:
        argv = link.exec_argv(link.box_ns, [sys.executable, "-c", CHILD])
        child = LineReader(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                            cwd=Path(__file__).resolve().parents[2]), "netwatch")
        link.children.append(child)
        first = json.loads(child.wait_line(lambda line: line.startswith("[["), 10))
        assert first == [[BOX_INTERFACE, [link.box_address]]]
        assert json.loads(child.wait_line(lambda line: "polling" in line, 5)) == {"polling": False}
        new = link.address(3)
        started = time.monotonic()
        link.set_box_address(new)  # a delete then an add: one report, after the debounce
        line = child.wait_line(lambda line: line.startswith("["), 5)
        elapsed = time.monotonic() - started
        assert json.loads(line) == [[BOX_INTERFACE, [new]]]
        assert elapsed < 1.0
        # the DELADDR was told at once, naming the box interface, before the report
        index = json.loads(subprocess.run(
            ["ip", "-n", link.box_ns, "-j", "link", "show", "dev", BOX_INTERFACE],
            check=True, capture_output=True, text=True).stdout)[0]["ifindex"]
        told = [json.loads(ln) for ln in child.lines]
        first_unsettled = next(i for i, m in enumerate(told) if "unsettled" in m)
        assert told[first_unsettled] == {"unsettled": [index]}
        assert json.loads(child.wait_line(lambda line: '"settled"' in line, 5)) == {
            "settled": True}
        subprocess.run(["ip", "-n", link.box_ns, "link", "set", BOX_INTERFACE, "down"],
                       check=True)
        assert json.loads(child.wait_line(lambda line: line.startswith("["), 5)) == []
        child.stop()  # exactly one report per change
        reports = [json.loads(ln) for ln in child.lines if ln.startswith("[")]
        assert reports == [first, [[BOX_INTERFACE, [new]]], []]
