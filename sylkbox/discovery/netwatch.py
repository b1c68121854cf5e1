"""Which interfaces and addresses the box advertises on, and when they change.

`current_interfaces` enumerates them with ifaddr (addresses) and ``SIOCGIFFLAGS`` (up, loopback,
multicast): by default every interface that is up, not loopback, multicast-capable and holds an
address of the SIP listeners' family; ``[mdns] interfaces`` narrows that to names; a specific
``[sip] bind`` address keeps only the interface holding it. IPv6 addresses (global or ULA, never
link-local: Blink could not use the zone) count only with ``[mdns] ipv6`` and an IPv6 bind.

`InterfaceWatch` follows changes: an ``AF_NETLINK``/``NETLINK_ROUTE`` socket subscribed to
``RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`` (rtnetlink(7)) is read on the event
loop; any message re-enumerates after a short debounce (an address change is a delete then an
add) and the callback runs only when the result differs. Without netlink it polls.

The debounce leaves a window in which an address is already gone but not yet reported: the
optional ``on_unsettled(indices)`` runs at once for every batch of messages (the indices of the
interfaces they name; None when that is not known), and ``on_settled()`` after the debounced
re-enumeration (after ``on_change``, if something changed), so that a user of the addresses can
hold its sends in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import ifaddr

__all__ = [
    "Interface",
    "InterfaceWatch",
    "Selection",
    "current_interfaces",
    "interface_flags",
    "netlink_interface_indices",
    "netlink_message_types",
    "select_interfaces",
]

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_MULTICAST = 0x1000
SIOCGIFFLAGS = 0x8913  # netdevice(7)
NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
NLMSG_HEADER = struct.Struct("=IHHII")  # len, type, flags, seq, pid (netlink(7))
RTM_NAMES = {16: "NEWLINK", 17: "DELLINK", 20: "NEWADDR", 21: "DELADDR"}
# ifinfomsg (RTM_*LINK) and ifaddrmsg (RTM_*ADDR) both hold the interface index 4 bytes in
IFINDEX = struct.Struct("=i")
IFINDEX_OFFSET = NLMSG_HEADER.size + 4
DEBOUNCE = 0.1
POLL_INTERVAL = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Interface:
    """One link to advertise on: its name, index and addresses (the first goes in contacts)."""

    name: str
    index: int
    addresses: tuple[str, ...]

    @property
    def address(self) -> str:
        return self.addresses[0]

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.addresses[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What to advertise on (``[mdns] interfaces``, ``[mdns] ipv6``, ``[sip] bind``)."""

    names: tuple[str, ...] = ()
    ipv6: bool = False
    bind: str = "0.0.0.0"


def interface_flags(name: str) -> int:
    """``ifr_flags`` of an interface in this network namespace (0 if it is gone)."""
    request = struct.pack("16sH14x", name.encode()[:15], 0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
    except OSError:
        return 0
    return int(struct.unpack_from("16sH", reply)[1])


def _usable_ipv6(text: str) -> bool:
    address = ipaddress.IPv6Address(text.split("%", 1)[0])
    if address.is_link_local or address.is_loopback or address.is_multicast:
        return False
    if address.is_unspecified or address.ipv4_mapped is not None:
        return False
    return address.is_global or address in ipaddress.IPv6Network("fc00::/7")


def select_interfaces(
    adapters: Iterable[ifaddr.Adapter], flags: Callable[[str], int], selection: Selection
) -> tuple[Interface, ...]:
    """The interfaces to advertise on, from an ifaddr enumeration (pure but for `flags`)."""
    bind = ipaddress.ip_address(selection.bind)
    want_v4 = bind.version == 4
    want_v6 = bind.version == 6 and (selection.ipv6 or not bind.is_unspecified)
    chosen: list[Interface] = []
    for adapter in adapters:
        if selection.names and adapter.name not in selection.names:
            continue
        addresses: list[str] = []
        for ip in adapter.ips:
            if isinstance(ip.ip, tuple):
                if want_v6 and _usable_ipv6(ip.ip[0]):
                    addresses.append(ip.ip[0])
            elif want_v4 and not ipaddress.IPv4Address(ip.ip).is_loopback:
                addresses.append(ip.ip)
        if not bind.is_unspecified:  # a specific bind: only that address, on its interface
            addresses = [a for a in addresses if ipaddress.ip_address(a) == bind]
        if not addresses:
            continue
        value = flags(adapter.name)
        if not value & IFF_UP or value & IFF_LOOPBACK or not value & IFF_MULTICAST:
            continue
        chosen.append(Interface(name=adapter.name, index=int(adapter.index or 0),
                                addresses=tuple(dict.fromkeys(addresses))))
    return tuple(sorted(chosen, key=lambda i: i.name))


def current_interfaces(selection: Selection) -> tuple[Interface, ...]:
    """`select_interfaces` over this namespace's interfaces now."""
    return select_interfaces(ifaddr.get_adapters(), interface_flags, selection)


def _netlink_messages(data: bytes) -> list[tuple[int, int | None]]:
    """(``nlmsg_type``, interface index or None) of every message in one netlink datagram."""
    messages: list[tuple[int, int | None]] = []
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length, kind, _, _, _ = NLMSG_HEADER.unpack_from(data, offset)
        if length < NLMSG_HEADER.size:
            break
        index: int | None = None
        end = IFINDEX_OFFSET + IFINDEX.size
        if kind in RTM_NAMES and length >= end and offset + end <= len(data):
            index = IFINDEX.unpack_from(data, offset + IFINDEX_OFFSET)[0]
        messages.append((kind, index))
        offset += (length + 3) & ~3  # NLMSG_ALIGN
    return messages


def netlink_message_types(data: bytes) -> list[int]:
    """The ``nlmsg_type`` of every message in one netlink datagram (netlink(7))."""
    return [kind for kind, _ in _netlink_messages(data)]


def netlink_interface_indices(data: bytes) -> frozenset[int] | None:
    """The interfaces one netlink datagram is about (``ifi_index``/``ifa_index``,
    rtnetlink(7)); None if a message's interface cannot be told."""
    indices: set[int] = set()
    for _, index in _netlink_messages(data):
        if index is None:
            return None
        indices.add(index)
    return frozenset(indices)


class InterfaceWatch:
    """Calls `on_change(interfaces)` when the selected interfaces or their addresses change.

    With netlink, also `on_unsettled(indices)` as soon as messages about the interfaces with
    these indices (None: any) arrive, and `on_settled()` once they have been enumerated again
    (after `on_change` if the result differs); not when polling.
    """

    def __init__(
        self,
        selection: Selection,
        on_change: Callable[[tuple[Interface, ...]], None],
        *,
        on_unsettled: Callable[[frozenset[int] | None], None] | None = None,
        on_settled: Callable[[], None] | None = None,
        enumerate: Callable[[Selection], tuple[Interface, ...]] = current_interfaces,
        debounce: float = DEBOUNCE,
        poll_interval: float = POLL_INTERVAL,
        netlink: bool = True,
    ) -> None:
        self._selection = selection
        self._on_change = on_change
        self._on_unsettled = on_unsettled
        self._on_settled = on_settled
        self._unsettled = False  # on_unsettled was called; on_settled is owed
        self._enumerate = enumerate
        self._debounce = debounce
        self._poll_interval = poll_interval
        self._use_netlink = netlink
        self._sock: socket.socket | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.current: tuple[Interface, ...] = ()

    @property
    def polling(self) -> bool:
        return self._poller is not None

    def start(self) -> tuple[Interface, ...]:
        """Enumerate now and start watching (netlink, else polling); returns the interfaces."""
        self._loop = asyncio.get_running_loop()
        self.current = self._scan() or ()
        if self._use_netlink:
            try:
                self._sock = self._open_netlink()
            except OSError as exc:
                log.info("mdns: netlink unavailable (%s); polling interfaces every %g s",
                         exc, self._poll_interval)
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._readable)
        else:
            self._poller = self._loop.create_task(self._poll(), name="mdns-poll-interfaces")
        return self.current

    @staticmethod
    def _open_netlink() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_ROUTE)
        try:
            sock.setblocking(False)
            sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        except OSError:
            sock.close()
            raise
        return sock

    def _readable(self) -> None:
        assert self._sock is not None
        kinds: list[int] = []
        indices: set[int] | None = set()
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:  # ENOBUFS: messages were lost; rescan anyway
                log.debug("mdns: netlink %s", exc)
                indices = None
                break
            if not data:
                break
            kinds += netlink_message_types(data)
            named = netlink_interface_indices(data)
            indices = None if named is None or indices is None else indices | named
        if log.isEnabledFor(logging.DEBUG):
            log.debug("mdns: < netlink %s", ", ".join(RTM_NAMES.get(k, str(k)) for k in kinds))
        if kinds or indices is None:
            self.unsettled(None if indices is None else frozenset(indices))
        self.schedule_scan()

    def unsettled(self, indices: frozenset[int] | None) -> None:
        """Interfaces (these indices; None: any) are changing: `on_unsettled` at once, and
        `on_settled` after the next re-enumeration (the netlink reader calls this)."""
        if self._on_unsettled is None:
            return
        self._unsettled = True
        try:
            self._on_unsettled(indices)
        except Exception:
            log.exception("mdns: interface change handler failed")

    def schedule_scan(self) -> None:
        """Re-enumerate after the debounce delay (each call restarts the delay)."""
        if self._loop is None:
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._loop.call_later(self._debounce, self._rescan)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            self._rescan()

    def _scan(self) -> tuple[Interface, ...] | None:
        try:
            return self._enumerate(self._selection)
        except Exception:
            log.exception("mdns: cannot enumerate interfaces")
            return None

    def _rescan(self) -> None:
        self._pending = None
        found = self._scan()
        if found is not None and found != self.current:
            self.current = found
            try:
                self._on_change(found)
            except Exception:
                log.exception("mdns: interface change handler failed")
        if self._unsettled and self._on_settled is not None:  # even if enumeration failed:
            self._unsettled = False  # holding on would stop the user for good
            try:
                self._on_settled()
            except Exception:
                log.exception("mdns: interface change handler failed")

    async def close(self) -> None:
        """Stop watching (the netlink socket closed, the poller cancelled and awaited)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._poller is not None:
            poller, self._poller = self._poller, None
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


def describe(interfaces: Sequence[Interface]) -> str:
    """``eth0 (10.0.0.2), wlan0 (192.168.1.5)`` for log lines."""
    return ", ".join(f"{i.name} ({', '.join(i.addresses)})" for i in interfaces) or "none"
