"""mDNS / DNS-SD between two network namespaces, with avahi and python-zeroconf as the peers.

Topology (private to the test; nothing here ever sends multicast in the root namespace)::

    ns "box"  mdbox0 10.234.N.1/24 --veth-- mdpeer0 10.234.N.2/24  ns "peer"

Both ends are created inside their namespaces (``ip -n NS link add ... netns PEER``), loopback is
up, multicast is on and 224.0.0.0/4 is routed to the veth. Namespace names carry the pid and a
counter (``sbm<pid>-<n>-box``), so parallel runs never clash; deleting them removes the veth.

The peer namespace runs avahi the way a Linux desktop does, but on a private system bus:

* ``dbus-daemon --nofork`` with a config of type ``system`` listening on a socket in the test's
  work directory, allow-all policy; ``DBUS_SYSTEM_BUS_ADDRESS`` points avahi and avahi-browse
  there.
* ``avahi-daemon --no-drop-root --no-chroot --no-rlimits`` with its own config (``host-name``
  unique per run, since namespaces share the machine's host name; ``allow-interfaces=mdpeer0``;
  IPv4 only; no wide-area). Its pid file is fixed at ``/run/avahi-daemon/pid``: it starts inside
  ``ip netns exec``'s private mount namespace after a tmpfs is mounted over ``/run`` there, so
  several daemons never meet (the root namespace's ``/run`` is not touched).

``avahi-browse -rp`` output is parsed by `parse_browse_line`. Its escaping (avahi 0.8): in names a
backslash or dot is escaped with ``\\``, any other byte that is not a letter, digit, ``-`` or
``_`` is ``\\DDD`` (decimal); TXT strings are quoted, ``"`` and ``\\`` are escaped with ``\\``
and non-printable bytes are ``\\DDD``; avahi lists TXT strings in reverse wire order (reversed
back here). TXT updates do not produce a new ``=`` line in a running ``avahi-browse`` (it resolves
each service once): poll avahi's cache instead (`AvahiPeer.wait_resolved`, ``avahi-browse -rptc``).
avahi follows RFC 6762 10.2 to the letter: a cache-flush record flushes only the records of the
same name received more than 1 s earlier, so a TXT that changes back to a value sent less than
1 s before (``One participant`` -> ``2 participants`` -> ``One participant``) leaves both values
cached and avahi keeps showing the newer-inserted one; a goodbye for the old TXT plus one more
announcement about 1 s after the last change fixes it (``update`` with ``"goodbye": true``).

python-zeroconf runs as a child process of this module (``python -m tests.helpers.mdns_ns``):
``publish`` (in the box namespace: registers services from a JSON spec, takes JSON commands on
stdin, sends goodbyes on SIGTERM) and ``browse`` (in the peer namespace: prints resolved
services as JSON lines). `blink_neighbour` applies Blink's TXT rules (BLINK.md 1.2, 1.3).

Requires root, iproute2, dbus-daemon, avahi-daemon and avahi-utils (scripts/system-deps.sh test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sylkbox.sip.errors import RemoteProtocolError
from sylkbox.sip.uri import SipUri

__all__ = [
    "BOX_INTERFACE",
    "PEER_INTERFACE",
    "AvahiPeer",
    "BlinkNeighbour",
    "BlinkParseError",
    "BrowseEvent",
    "LineReader",
    "MdnsError",
    "MdnsLink",
    "ZeroconfBrowser",
    "ZeroconfPublisher",
    "avahi_peer",
    "blink_neighbour",
    "mdns_link",
    "parse_browse_line",
    "parse_txt_field",
    "unescape_label",
]

BOX_INTERFACE = "mdbox0"
PEER_INTERFACE = "mdpeer0"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


class MdnsError(RuntimeError):
    """Namespaces, avahi or a zeroconf child could not be set up or did not answer in time."""


# ============================================================================ avahi-browse -p
@dataclass(frozen=True, slots=True, kw_only=True)
class BrowseEvent:
    """One line of ``avahi-browse -p``: ``+`` new, ``-`` removed, ``=`` resolved."""

    kind: str
    interface: str
    protocol: str
    name: str
    type: str
    domain: str
    host: str = ""
    address: str = ""
    port: int = 0
    txt: tuple[bytes, ...] = ()  # in wire order

    def txt_dict(self) -> dict[str, bytes | None]:
        """TXT as DNS-SD keys (RFC 6763 6.3/6.4: case-insensitive, the first occurrence wins)."""
        result: dict[str, bytes | None] = {}
        for item in self.txt:
            key, eq, value = item.partition(b"=")
            name = key.decode("ascii", "replace").lower()
            if name and name not in result:
                result[name] = value if eq else None
        return result


_LABEL_ESCAPE = re.compile(rb"\\(\d{3}|.)", re.DOTALL)


def _unescape_bytes(text: str) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        token = match.group(1)
        return bytes((int(token),)) if len(token) == 3 else token

    return _LABEL_ESCAPE.sub(one, text.encode("utf-8", "surrogateescape"))


def unescape_label(text: str) -> str:
    """A service name as avahi prints it (``Conference\\032Room``) back to its UTF-8 text."""
    return _unescape_bytes(text).decode("utf-8", "replace")


def parse_txt_field(text: str) -> tuple[bytes, ...]:
    """``"a=1" "b=x\\"y"`` (avahi's order, which is the reverse of the wire) to wire-order bytes."""
    items: list[bytes] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] != '"':
            raise ValueError(f"TXT field not quoted at {i}: {text!r}")
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise ValueError(f"unterminated TXT string: {text!r}")
        items.append(_unescape_bytes(text[i + 1 : j]))
        i = j + 1
    return tuple(reversed(items))


def parse_browse_line(line: str) -> BrowseEvent | None:
    """Parse one ``avahi-browse -p`` line; None for anything else (errors, blank lines)."""
    line = line.rstrip("\n")
    kind = line[:1]
    if kind in ("+", "-"):
        fields = line.split(";")
        if len(fields) != 6:
            return None
        return BrowseEvent(kind=kind, interface=fields[1], protocol=fields[2],
                           name=unescape_label(fields[3]), type=fields[4], domain=fields[5])
    if kind == "=":
        fields = line.split(";", 9)  # the TXT field is last and may hold raw ';'
        if len(fields) != 10:
            return None
        return BrowseEvent(
            kind=kind, interface=fields[1], protocol=fields[2], name=unescape_label(fields[3]),
            type=fields[4], domain=fields[5], host=fields[6], address=fields[7],
            port=int(fields[8]), txt=parse_txt_field(fields[9]),
        )
    return None


# ============================================================================ Blink's TXT rules
class BlinkParseError(ValueError):
    """A record that Blink's Bonjour code could not take (it would break its neighbour list)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlinkNeighbour:
    """What Blink makes of one resolved record (BLINK.md 1.2 and 1.3)."""

    name: str
    hostname: str
    uri: SipUri
    instance_id: str
    state: str | None
    note: str | None

    @property
    def is_focus(self) -> bool:
        """Blink for macOS's multi-user avatar: an ``isfocus`` URI parameter."""
        return self.uri.has_param("isfocus")


def _decode(txt: dict[str, bytes | None], key: str, *, required: bool) -> str | None:
    if key not in txt:
        if required:
            raise BlinkParseError(f"TXT key {key!r} missing")
        return None
    value = txt[key]
    if value is None:  # a key without '=': Blink's .decode() on None raises
        raise BlinkParseError(f"TXT key {key!r} has no value")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlinkParseError(f"TXT key {key!r} is not UTF-8") from exc


def blink_neighbour(txt: Sequence[bytes], *, service_type: str, host: str) -> BlinkNeighbour:
    """Apply Blink's rules to a resolved record; raise `BlinkParseError` where Blink would fail.

    * ``instance_id``, ``name`` and ``contact`` must be present, with UTF-8 values
      (sipsimple calls ``.decode()`` on them; ``state``/``status`` and ``note`` likewise when
      present). Each TXT string is at most 255 bytes (RFC 6763 6.1).
    * ``contact`` is ``<`` SIP URI ``>`` and parses as a SIP URI; its transport is udp for a
      ``_udp`` type and tcp or tls for a ``_tcp`` one (Blink keeps only transports it has).
    * the host shown is the SRV target without ``.local``.
    """
    for item in txt:
        if len(item) > 255:
            raise BlinkParseError("TXT string longer than 255 bytes")
    keys = BrowseEvent(kind="=", interface="", protocol="", name="", type="", domain="",
                       txt=tuple(txt)).txt_dict()
    instance_id = _decode(keys, "instance_id", required=True)
    name = _decode(keys, "name", required=True)
    contact = _decode(keys, "contact", required=True)
    assert instance_id is not None and name is not None and contact is not None
    state = _decode(keys, "state", required=False)
    if state is None:
        state = _decode(keys, "status", required=False)
    note = _decode(keys, "note", required=False)
    if not (contact.startswith("<") and contact.endswith(">")):
        raise BlinkParseError(f"contact not in angle brackets: {contact!r}")
    try:
        uri = SipUri.parse(contact[1:-1])
    except RemoteProtocolError as exc:
        raise BlinkParseError(f"contact is not a SIP URI: {contact!r}") from exc
    if not uri.is_sip:
        raise BlinkParseError(f"contact is not a SIP URI: {contact!r}")
    proto = service_type.split(".")[1] if service_type.count(".") >= 1 else ""
    allowed = {"_udp": {"udp"}, "_tcp": {"tcp", "tls"}}.get(proto, set())
    if uri.transport not in allowed:
        raise BlinkParseError(f"transport {uri.transport} does not fit {service_type}")
    hostname = re.sub(r"(\.local)?\.?$", "", host, count=1)
    return BlinkNeighbour(name=name, hostname=hostname, uri=uri, instance_id=instance_id,
                          state=state, note=note)


# ============================================================================ child processes
class LineReader:
    """A child process whose stdout lines are collected by a thread; wait for matching ones."""

    def __init__(self, process: subprocess.Popen[str], label: str) -> None:
        self.process = process
        self.label = label
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, name=f"read-{label}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, accept: Callable[[str], bool], timeout: float) -> str:
        """The next line (after those already consumed) for which `accept` is true."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MdnsError(f"{self.label}: no matching line in {timeout} s; got {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)
                raise MdnsError(f"{self.label} exited ({self.process.poll()}); got {self.lines}")
            self.lines.append(line)
            if accept(line):
                return line

    def drain(self) -> list[str]:
        """Move the lines received so far but not yet waited for into `lines`; returns them."""
        drained: list[str] = []
        with contextlib.suppress(queue.Empty):
            while True:
                line = self._queue.get_nowait()
                if line is None:  # end of output: leave the marker for later waits
                    self._queue.put(None)
                    break
                drained.append(line)
        self.lines += drained
        return drained

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status. Every line printed
        is then in `lines`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._thread.join(5)
        self.drain()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        return self.process.returncode


class AvahiWatch(LineReader):
    """A running ``avahi-browse -rp TYPE``: new, resolved and removed services as they come."""

    def wait_event(self, accept: Callable[[BrowseEvent], bool], timeout: float) -> BrowseEvent:
        def matches(line: str) -> bool:
            event = parse_browse_line(line)
            return event is not None and accept(event)

        event = parse_browse_line(self.wait_line(matches, timeout))
        assert event is not None
        return event


class _JsonChild(LineReader):
    def wait_json(self, accept: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        def matches(line: str) -> bool:
            if not line.startswith("{"):
                return False
            try:
                message = json.loads(line)
            except ValueError:
                return False
            return isinstance(message, dict) and accept(message)

        message: dict[str, Any] = json.loads(self.wait_line(matches, timeout))
        return message


class ZeroconfPublisher(_JsonChild):
    """``python -m tests.helpers.mdns_ns publish`` in the box namespace (see `_publish`)."""

    def __init__(self, process: subprocess.Popen[str], label: str) -> None:
        super().__init__(process, label)
        self.ready: dict[str, Any] = {}

    def command(self, **command: Any) -> dict[str, Any]:
        """Send one JSON command and wait for its ``done`` (or ``error``) reply."""
        stdin = self.process.stdin
        assert stdin is not None
        seq = next(_counter)
        stdin.write(json.dumps({**command, "seq": seq}) + "\n")
        stdin.flush()
        reply = self.wait_json(lambda m: m.get("seq") == seq, 15.0)
        if reply.get("event") != "done":
            raise MdnsError(f"publisher: {reply}")
        return reply


class ZeroconfBrowser(_JsonChild):
    """``python -m tests.helpers.mdns_ns browse`` in the peer namespace."""


def _popen(argv: Sequence[str], *, env: dict[str, str] | None = None, stdin: bool = False,
           stderr: TextIO | int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if stderr is None else stderr,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True, bufsize=1,
        cwd=_REPO_ROOT, env=env,
    )


CACHE_DUMP_TIMEOUT = 2.0  # seconds for one `avahi-browse -c` (normally ~20 ms)


def _run(argv: Sequence[str], *, check: bool = True, env: dict[str, str] | None = None,
         timeout: float = 20) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            check=False, env=env)
    if check and result.returncode != 0:
        raise MdnsError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


# ============================================================================ the namespaces
@dataclass
class MdnsLink:
    """Two namespaces and the veth between them (see the module docstring)."""

    prefix: str
    subnet: int
    workdir: Path
    box_address: str = ""
    peer_address: str = ""
    created: list[str] = field(default_factory=list)
    children: list[LineReader] = field(default_factory=list)

    @property
    def box_ns(self) -> str:
        return f"{self.prefix}-box"

    @property
    def peer_ns(self) -> str:
        return f"{self.prefix}-peer"

    def address(self, host: int) -> str:
        """An address of the link's /24 (host 1 is the box's first, 2 the peer's)."""
        return f"10.234.{self.subnet}.{host}"

    @staticmethod
    def exec_argv(namespace: str, argv: Sequence[str]) -> list[str]:
        """``argv`` inside `namespace` (``ip netns exec`` execs: the PID is argv's)."""
        return ["ip", "netns", "exec", namespace, *argv]

    def setup(self) -> None:
        for tool in ("ip", "dbus-daemon", "avahi-daemon", "avahi-browse", "stdbuf"):
            if shutil.which(tool) is None:
                raise MdnsError(f"{tool} is not installed (scripts/system-deps.sh test)")
        if os.geteuid() != 0:
            raise MdnsError("network namespaces need root")
        box, peer = self.box_ns, self.peer_ns
        for ns in (box, peer):
            _run(["ip", "netns", "add", ns])
            self.created.append(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", box, "link", "add", BOX_INTERFACE, "type", "veth", "peer", "name",
              PEER_INTERFACE, "netns", peer])
        self.box_address, self.peer_address = self.address(1), self.address(2)
        for ns, dev, addr in ((box, BOX_INTERFACE, self.box_address),
                              (peer, PEER_INTERFACE, self.peer_address)):
            _run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", dev, "up", "multicast", "on"])
            _run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])

    def set_box_address(self, address: str) -> None:
        """Replace the box's address on its veth (the "address changed" case)."""
        ipaddress.IPv4Address(address)
        # old one first: deleting a primary address also deletes the secondaries of its subnet
        _run(["ip", "-n", self.box_ns, "addr", "del", f"{self.box_address}/24", "dev",
              BOX_INTERFACE])
        _run(["ip", "-n", self.box_ns, "addr", "add", f"{address}/24", "dev", BOX_INTERFACE])
        self.box_address = address

    def box_addresses(self) -> list[str]:
        """IPv4 addresses now on the box's veth."""
        out = _run(["ip", "-n", self.box_ns, "-j", "addr", "show", "dev", BOX_INTERFACE]).stdout
        return [a["local"] for link in json.loads(out) for a in link.get("addr_info", [])
                if a.get("family") == "inet"]

    # ------------------------------------------------------------------ python-zeroconf
    def start_publisher(self, spec: dict[str, Any]) -> ZeroconfPublisher:
        """Register `spec`'s services from the box namespace; returns once they are announced.

        ``spec``: ``{"host": "name.local.", "interfaces": [addr...] (default: the box address),
        "services": [{"type", "name", "port", "txt": [str...], "addresses": [...]}]}``.
        The ``ready`` message is kept in ``publisher.ready`` (``probe_ms``: time to the end of
        probing, i.e. to the first announcement).
        """
        spec = {"interfaces": [self.box_address], **spec}
        err = (self.workdir / f"publisher-{next(_counter)}.err").open("w")
        argv = self.exec_argv(self.box_ns, [sys.executable, "-m", "tests.helpers.mdns_ns",
                                            "publish", "--spec", json.dumps(spec)])
        child = ZeroconfPublisher(_popen(argv, stdin=True, stderr=err), "zeroconf-publish")
        err.close()
        self.children.append(child)
        child.ready = child.wait_json(lambda m: m.get("event") in ("ready", "error"), 20.0)
        if child.ready["event"] != "ready":
            raise MdnsError(f"publisher: {child.ready}")
        return child

    def start_browser(self, *service_types: str) -> ZeroconfBrowser:
        """A python-zeroconf browser in the peer namespace; returns once it is listening."""
        err = (self.workdir / f"browser-{next(_counter)}.err").open("w")
        argv = self.exec_argv(self.peer_ns, [sys.executable, "-m", "tests.helpers.mdns_ns",
                                             "browse", "--interface", self.peer_address,
                                             *service_types])
        child = ZeroconfBrowser(_popen(argv, stderr=err), "zeroconf-browse")
        err.close()
        self.children.append(child)
        child.wait_json(lambda m: m.get("event") == "listening", 20.0)
        return child

    def teardown(self) -> list[str]:
        """Stop every child and delete the namespaces; returns the errors, if any."""
        errors: list[str] = []
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as exc:
                errors.append(f"{child.label}: {exc}")
        self.children.clear()
        for ns in reversed(self.created):
            # anything still running in a namespace of ours was started by this test
            pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            result = _run(["ip", "netns", "del", ns], check=False)
            if result.returncode != 0:
                errors.append(f"ip netns del {ns}: {result.stderr.strip()}")
        self.created.clear()
        return errors


@contextmanager
def mdns_link(workdir: Path) -> Iterator[MdnsLink]:
    """Create the two namespaces, yield them, and always remove them."""
    n = next(_counter)
    link = MdnsLink(f"sbm{os.getpid()}-{n}", 1 + (os.getpid() + n) % 250, workdir)
    try:
        link.setup()
        yield link
    except BaseException:
        link.teardown()  # best effort: the error in flight is the one to report
        raise
    errors = link.teardown()
    if errors:
        raise MdnsError("; ".join(errors))


# ============================================================================ avahi
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

_AVAHI_CONFIG = """[server]
host-name={host_name}
use-ipv4=yes
use-ipv6=no
allow-interfaces={interface}
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no

[reflector]
enable-reflector=no

[rlimits]
"""


@dataclass
class AvahiPeer:
    """dbus-daemon + avahi-daemon in the peer namespace, and the avahi tools talking to them."""

    link: MdnsLink
    host_name: str
    env: dict[str, str]
    dbus: LineReader
    daemon: LineReader
    log_path: Path

    def browse(self, service_type: str, *, cache: bool = False,
               timeout: float = 10.0) -> list[BrowseEvent]:
        """``avahi-browse -rpt TYPE``: the resolved (``=``) records avahi finds. That waits for
        avahi's "all for now", about 1 s; ``cache=True`` (``-c``) only dumps avahi's cache,
        in about 20 ms, which is what polling for a change wants."""
        flags = "-rptc" if cache else "-rpt"
        argv = self.link.exec_argv(self.link.peer_ns, ["avahi-browse", flags, service_type])
        if not cache:
            result = _run(argv, env=self.env, timeout=timeout)
        else:
            # a cache dump takes ~20 ms, but avahi-browse sometimes never exits when records
            # are withdrawn meanwhile (avahi/avahi#264): a short timeout and another try
            deadline = time.monotonic() + timeout
            while True:
                attempt = min(CACHE_DUMP_TIMEOUT, max(0.1, deadline - time.monotonic()))
                try:
                    result = _run(argv, env=self.env, timeout=attempt)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise
        events = (parse_browse_line(line) for line in result.stdout.splitlines())
        return [e for e in events if e is not None and e.kind == "="]

    def wait_resolved(self, service_type: str, accept: Callable[[BrowseEvent], bool],
                      timeout: float) -> BrowseEvent:
        """Poll avahi's cache until a resolved record satisfies `accept` (e.g. a TXT change)."""
        deadline = time.monotonic() + timeout
        seen: list[BrowseEvent] = []
        while time.monotonic() < deadline:
            seen = self.browse(service_type, cache=True)
            for event in seen:
                if accept(event):
                    return event
            time.sleep(0.05)
        raise MdnsError(f"no matching {service_type} record in {timeout} s; last: {seen}")

    def watch(self, service_type: str) -> AvahiWatch:
        """A running ``avahi-browse -rp TYPE`` (line-buffered through stdbuf)."""
        argv = self.link.exec_argv(self.link.peer_ns,
                                   ["stdbuf", "-oL", "avahi-browse", "-rp", service_type])
        child = AvahiWatch(_popen(argv, env=self.env), f"avahi-browse {service_type}")
        self.link.children.append(child)
        return child

    def publish(self, name: str, service_type: str, port: int, *txt: str) -> LineReader:
        """``avahi-publish -s`` from the peer side (for name-conflict tests)."""
        argv = self.link.exec_argv(self.link.peer_ns, [
            "stdbuf", "-oL", "avahi-publish", "-s", name, service_type, str(port), *txt])
        child = LineReader(_popen(argv, env=self.env, stderr=subprocess.STDOUT), "avahi-publish")
        self.link.children.append(child)
        child.wait_line(lambda line: "Established" in line, 10.0)
        return child

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def avahi_peer(link: MdnsLink) -> AvahiPeer:
    """Start the private bus and avahi-daemon in `link`'s peer namespace (stopped by teardown)."""
    tag = f"{link.prefix}-avahi"
    socket_path = link.workdir / f"{tag}-bus.sock"
    bus_conf = link.workdir / f"{tag}-bus.conf"
    avahi_conf = link.workdir / f"{tag}.conf"
    log_path = link.workdir / f"{tag}.log"
    host_name = f"peer-{link.prefix}"
    bus_conf.write_text(_BUS_CONFIG.format(socket=socket_path))
    avahi_conf.write_text(_AVAHI_CONFIG.format(host_name=host_name, interface=PEER_INTERFACE))
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={socket_path}"}
    dbus = LineReader(_popen(link.exec_argv(link.peer_ns, [
        "dbus-daemon", f"--config-file={bus_conf}", "--nofork", "--nopidfile",
        "--print-address=1"])), "dbus-daemon")
    link.children.append(dbus)
    dbus.wait_line(lambda line: line.startswith("unix:"), 10.0)
    script = ('mount -t tmpfs sylkbox-avahi /run && mkdir -p /run/avahi-daemon && '
              'exec avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title -f "$1"')
    with log_path.open("w") as log:
        daemon = LineReader(_popen(link.exec_argv(link.peer_ns, [
            "sh", "-c", script, "sh", str(avahi_conf)]), env=env, stderr=log), "avahi-daemon")
    link.children.append(daemon)
    deadline = time.monotonic() + 10
    while "Server startup complete" not in log_path.read_text(errors="replace"):
        if daemon.process.poll() is not None or time.monotonic() > deadline:
            raise MdnsError("avahi-daemon did not start: " + log_path.read_text(errors="replace"))
        time.sleep(0.02)
    return AvahiPeer(link, host_name, env, dbus, daemon, log_path)


# ============================================================================ zeroconf children
def _emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def _txt_bytes(items: Sequence[str]) -> bytes:
    """TXT RDATA, exactly in the given order (RFC 6763 6.1: length-prefixed strings)."""
    out = bytearray()
    for item in items:
        raw = item.encode("utf-8")
        if len(raw) > 255:
            raise ValueError(f"TXT string longer than 255 bytes: {item[:40]!r}...")
        out += bytes((len(raw),)) + raw
    return bytes(out)


async def _publish(spec: dict[str, Any]) -> int:
    """Register ``spec["services"]``, print ``ready``, then run stdin commands (JSON lines with a
    ``seq``; each answered by ``done`` or ``error`` with that seq): ``update`` (``index``,
    ``service`` fields to replace, optional ``goodbye``), ``set_addresses`` (``addresses``,
    optional ``services``: see `_follow_addresses`), ``unregister`` (``index``). SIGTERM closes
    (goodbyes for everything) and prints ``closed``."""
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    def info_for(service: dict[str, Any]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            service["type"], f"{service['name']}.{service['type']}", port=int(service["port"]),
            properties=_txt_bytes(service["txt"]), server=spec["host"],
            parsed_addresses=list(service.get("addresses", spec["interfaces"])),
        )

    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    azc = AsyncZeroconf(interfaces=list(spec["interfaces"]), ip_version=IPVersion.V4Only)
    infos = [info_for(s) for s in spec["services"]]
    allow_rename = bool(spec.get("allow_name_change", False))
    # every service probes at once: ~1.2 s in all, not 1.2 s per service
    broadcasts = await asyncio.gather(
        *(azc.async_register_service(i, allow_name_change=allow_rename) for i in infos))
    probe_ms = (time.monotonic() - started) * 1000
    await asyncio.gather(*broadcasts)
    _emit({"event": "ready", "probe_ms": round(probe_ms, 1),
           "announced_ms": round((time.monotonic() - started) * 1000, 1),
           "names": [i.name for i in infos]})

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands() -> None:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            command = json.loads(line)
            seq = command.get("seq")
            op = command.get("op")
            try:
                if op == "update":  # new TXT (and/or addresses) for one service
                    index = int(command["index"])
                    service = {**spec["services"][index], **command.get("service", {})}
                    spec["services"][index] = service
                    new = info_for(service)
                    new.name = infos[index].name  # keep a name chosen by renaming
                    if command.get("goodbye"):  # TTL 0 for the old TXT first (see _goodbye)
                        _goodbye(azc, [infos[index]], addresses=False)
                    infos[index] = new
                    await (await azc.async_update_service(new))
                elif op == "set_addresses":  # the box's address changed
                    await _follow_addresses(azc, spec, infos, command, info_for)
                elif op == "unregister":
                    await (await azc.async_unregister_service(infos[int(command["index"])]))
                else:
                    raise ValueError(f"unknown op {op!r}")
            except Exception as exc:
                _emit({"event": "error", "seq": seq, "error": repr(exc)})
            else:
                _emit({"event": "done", "seq": seq, "op": op})

    task = asyncio.create_task(commands())
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await azc.async_close()  # goodbyes (TTL 0) for every registered service
    _emit({"event": "closed"})
    return 0


def _goodbye(azc: Any, infos: Sequence[Any], *, addresses: bool) -> None:
    """One packet of goodbyes (TTL 0, RFC 6762 10.1) for the TXT (and A) records of `infos`."""
    from zeroconf._protocol.outgoing import DNSOutgoing

    goodbye = DNSOutgoing(0x8400)  # QR response, AA
    for info in infos:
        goodbye.add_answer_at_time(info.dns_text(override_ttl=0), 0)
        if addresses:
            for record in info.dns_addresses(override_ttl=0):
                goodbye.add_answer_at_time(record, 0)
    azc.zeroconf.async_send(goodbye)


async def _follow_addresses(azc: Any, spec: dict[str, Any], infos: list[Any],
                            command: dict[str, Any], info_for: Callable[[Any], Any]) -> None:
    """Re-register with new addresses (``command["addresses"]``, and new ``services`` if given,
    e.g. a new contact in the TXT).

    The order matters (measured against avahi 0.8): the old records leave zeroconf's registry
    first, so that `async_update_interfaces` (new sockets) does not re-announce them; then a
    goodbye (TTL 0, RFC 6762 10.1) for the old A and TXT records, sent from the new address
    (the old one is gone); PTR and SRV are unchanged, so browsers keep the service; then the
    new records are announced without probing again (the names are already ours). Plain
    ``async_update_interfaces`` + ``async_update_service`` works for a new address but avahi
    then ignored a move back to an address it had seen before.
    """
    zc = azc.zeroconf
    addresses = list(command["addresses"])
    old = list(infos)
    for info in old:
        zc.registry.async_remove(info)
    spec["interfaces"] = addresses
    await azc.async_update_interfaces(interfaces=addresses)
    _goodbye(azc, old, addresses=True)
    if "services" in command:
        spec["services"] = list(command["services"])
    for index, service in enumerate(spec["services"]):
        service["addresses"] = addresses
        new = info_for(service)
        new.name = old[index].name
        infos[index] = new
    broadcasts = [await azc.async_register_service(i, cooperating_responders=True) for i in infos]
    await asyncio.gather(*broadcasts)


def _info_message(event: str, info: Any) -> dict[str, Any]:
    return {
        "event": event, "type": info.type, "name": info.name, "host": info.server,
        "port": info.port, "addresses": info.parsed_addresses(),
        "txt": [s.decode("utf-8", "replace") for s in _split_txt(info.text or b"")],
    }


def _split_txt(data: bytes) -> list[bytes]:
    items: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        items.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    return items


async def _browse(interface: str, types: list[str]) -> int:
    from zeroconf import IPVersion, ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    azc = AsyncZeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    pending: set[asyncio.Task[None]] = set()

    async def resolve(event: str, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(azc.zeroconf, 3000):
            _emit(_info_message(event, info))
        else:
            _emit({"event": "unresolved", "type": service_type, "name": name})

    def on_change(zeroconf: Zeroconf, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            _emit({"event": "removed", "type": service_type, "name": name})
            return
        event = "added" if state_change is ServiceStateChange.Added else "updated"
        task = asyncio.create_task(resolve(event, service_type, name))
        pending.add(task)
        task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(azc.zeroconf, types, handlers=[on_change])
    _emit({"event": "listening"})
    await stop.wait()
    await browser.async_cancel()
    for task in list(pending):
        task.cancel()
    await azc.async_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.mdns_ns")
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="register services with python-zeroconf (box side)")
    pub.add_argument("--spec", required=True, help="JSON: host, interfaces, services")
    brw = sub.add_parser("browse", help="browse and resolve with python-zeroconf (peer side)")
    brw.add_argument("--interface", required=True)
    brw.add_argument("types", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            return asyncio.run(_publish(json.loads(args.spec)))
        return asyncio.run(_browse(args.interface, list(args.types)))
    except Exception as exc:
        _emit({"event": "error", "error": repr(exc)})
        raise


if __name__ == "__main__":
    sys.exit(main())
