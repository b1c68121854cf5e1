"""Network namespaces joined through an impairing router, for loss/jitter/reordering tests.

Topology (all of it private to the test; the machine's own interfaces are never touched)::

    ns "srv" 10.231.1.1/24 --veth-- 10.231.1.2 ns "rtr" 10.231.2.2 --veth-- 10.231.2.1/24 ns "cli"

Every interface is created directly inside its namespace (``ip -n NS link add ... netns PEER``),
so nothing ever appears in the root namespace, and deleting the namespaces removes everything.
Namespace names carry the pid and a counter (``sb<pid>-<n>-srv``), so parallel runs never clash.

Impairment of the client -> server direction (and optionally the reverse one):

* if the kernel has ``sch_netem``, a ``netem`` qdisc on the router's veth towards the server
  (``tc qdisc add dev ... root netem loss 5% delay 40ms 20ms distribution normal reorder 25% 50%``);
* otherwise (kernels built without ``CONFIG_NET_SCH_NETEM``, as on the machines these tests were
  written on) a userspace netem: a TUN device in the router namespace that policy routing sends
  the client's packets through; a small process (``python -m tests.helpers.netns impair``) reads
  each packet, drops, delays and reorders it with netem's semantics and writes it back, after
  which the kernel forwards it on. It prints its packet counts as JSON when it stops.

Requires root (namespaces, veth, sysctl in the router namespace).
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import itertools
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT_ADDRESS",
    "SERVER_ADDRESS",
    "Impairment",
    "NetnsError",
    "Topology",
    "impaired_topology",
    "netns_available",
]

SERVER_ADDRESS = "10.231.1.1"
ROUTER_SERVER_SIDE = "10.231.1.2"
CLIENT_ADDRESS = "10.231.2.1"
ROUTER_CLIENT_SIDE = "10.231.2.2"
_TUN_NAME = "imp0"
_IMPAIR_TABLE = "100"
_counter = itertools.count()


class NetnsError(RuntimeError):
    """Namespaces, veth pairs or the impairment could not be set up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Impairment:
    """netem-like parameters (tc-netem(8)): loss, delay with normal jitter, reordering."""

    loss: float = 0.0  # probability 0..1
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0  # probability that a packet skips the delay (needs delay_ms > 0)
    reorder_correlation: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "reorder_correlation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay and jitter must not be negative")
        if self.reorder and not self.delay_ms:
            raise ValueError("reordering needs a delay (as in netem)")

    def netem_args(self) -> list[str]:
        """Arguments after ``netem`` for tc."""
        args: list[str] = []
        if self.loss:
            args += ["loss", f"{self.loss * 100:g}%"]
        if self.delay_ms:
            args += ["delay", f"{self.delay_ms:g}ms"]
            if self.jitter_ms:
                args += [f"{self.jitter_ms:g}ms", "distribution", "normal"]
        if self.reorder:
            args += ["reorder", f"{self.reorder * 100:g}%", f"{self.reorder_correlation * 100:g}%"]
        return args

    def cli_args(self) -> list[str]:
        """Arguments for ``python -m tests.helpers.netns impair``."""
        return [
            "--loss", str(self.loss), "--delay-ms", str(self.delay_ms),
            "--jitter-ms", str(self.jitter_ms), "--reorder", str(self.reorder),
            "--reorder-correlation", str(self.reorder_correlation), "--seed", str(self.seed),
        ]


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def netns_available() -> str | None:
    """None when namespaces can be created here, else the reason they cannot."""
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"sb{os.getpid()}-probe{next(_counter)}"
    result = _run(["ip", "netns", "add", name], check=False)
    if result.returncode != 0:
        return f"`ip netns add` failed: {result.stderr.strip()}"
    _run(["ip", "netns", "del", name], check=False)
    return None


@dataclass
class Topology:
    """Three namespaces (server, router, clients); see the module docstring."""

    prefix: str
    impairment: Impairment
    both_directions: bool = False
    workdir: Path | None = None
    mode: str = ""  # "netem" or "tun", once set up
    impairer: subprocess.Popen[bytes] | None = None
    created: list[str] = field(default_factory=list)

    @property
    def server_ns(self) -> str:
        return f"{self.prefix}-srv"

    @property
    def router_ns(self) -> str:
        return f"{self.prefix}-rtr"

    @property
    def client_ns(self) -> str:
        return f"{self.prefix}-cli"

    def exec_argv(self, namespace: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside `namespace` (``ip netns exec`` execs, so the PID is argv's)."""
        return ["ip", "netns", "exec", namespace, *argv]

    # ------------------------------------------------------------------ set-up / tear-down
    def setup(self) -> None:
        reason = netns_available()
        if reason is not None:
            raise NetnsError(reason)
        for ns in (self.server_ns, self.router_ns, self.client_ns):
            _run(["ip", "netns", "add", ns])
            self.created.append(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        r, s, c = self.router_ns, self.server_ns, self.client_ns
        _run(["ip", "-n", r, "link", "add", "to-srv", "type", "veth", "peer", "name", "eth0",
              "netns", s])
        _run(["ip", "-n", r, "link", "add", "to-cli", "type", "veth", "peer", "name", "eth0",
              "netns", c])
        _run(["ip", "-n", s, "addr", "add", f"{SERVER_ADDRESS}/24", "dev", "eth0"])
        _run(["ip", "-n", c, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "eth0"])
        _run(["ip", "-n", r, "addr", "add", f"{ROUTER_SERVER_SIDE}/24", "dev", "to-srv"])
        _run(["ip", "-n", r, "addr", "add", f"{ROUTER_CLIENT_SIDE}/24", "dev", "to-cli"])
        for ns, dev in ((s, "eth0"), (c, "eth0"), (r, "to-srv"), (r, "to-cli")):
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        _run(["ip", "-n", s, "route", "add", "default", "via", ROUTER_SERVER_SIDE])
        _run(["ip", "-n", c, "route", "add", "default", "via", ROUTER_CLIENT_SIDE])
        self._sysctl(r, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                     "net.ipv4.conf.default.rp_filter=0")
        if self._try_netem():
            self.mode = "netem"
        else:
            self._start_tun_impairer()
            self.mode = "tun"

    def _sysctl(self, ns: str, *settings: str) -> None:
        _run(self.exec_argv(ns, ["sysctl", "-q", "-w", *settings]))

    def _try_netem(self) -> bool:
        args = self.impairment.netem_args()
        devices = ["to-srv"] + (["to-cli"] if self.both_directions else [])
        for dev in devices:
            result = _run(["ip", "netns", "exec", self.router_ns, "tc", "qdisc", "add", "dev",
                           dev, "root", "netem", *args], check=False)
            if result.returncode != 0:
                if dev != devices[0]:
                    raise NetnsError(f"netem on {dev}: {result.stderr.strip()}")
                return False
        return True

    def _start_tun_impairer(self) -> None:
        workdir = self.workdir or Path("/tmp")
        out = workdir / f"{self.prefix}-impair.out"
        err = workdir / f"{self.prefix}-impair.err"
        argv = self.exec_argv(self.router_ns, [
            sys.executable, "-m", "tests.helpers.netns", "impair", "--tun", _TUN_NAME,
            *self.impairment.cli_args(),
        ])
        repo_root = Path(__file__).resolve().parents[2]
        with out.open("wb") as o, err.open("wb") as e:
            self.impairer = subprocess.Popen(argv, stdout=o, stderr=e, cwd=repo_root)
        self._impair_out = out
        self._impair_err = err
        deadline = time.monotonic() + 10
        while '"ready"' not in out.read_text(errors="replace"):
            if self.impairer.poll() is not None or time.monotonic() > deadline:
                raise NetnsError("impairer did not start: " + err.read_text(errors="replace"))
            time.sleep(0.02)
        r = self.router_ns
        self._sysctl(r, f"net.ipv4.conf.{_TUN_NAME}.rp_filter=0")
        _run(["ip", "-n", r, "route", "add", "default", "dev", _TUN_NAME, "table", _IMPAIR_TABLE])
        _run(["ip", "-n", r, "rule", "add", "iif", "to-cli", "lookup", _IMPAIR_TABLE])
        if self.both_directions:
            _run(["ip", "-n", r, "rule", "add", "iif", "to-srv", "lookup", _IMPAIR_TABLE])

    def impairer_stats(self) -> dict[str, Any]:
        """Packet counts of the userspace impairer (after `teardown`); {} in netem mode."""
        if self.mode != "tun":
            return {}
        for line in self._impair_out.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"stats"' in line:
                stats: dict[str, Any] = json.loads(line)
                return stats
        return {}

    def stop_impairer(self) -> None:
        if self.impairer is not None and self.impairer.poll() is None:
            self.impairer.send_signal(signal.SIGTERM)
            try:
                self.impairer.wait(5)
            except subprocess.TimeoutExpired:
                self.impairer.kill()
                self.impairer.wait(5)

    def teardown(self) -> list[str]:
        """Stop the impairer and delete every namespace created; returns the errors, if any."""
        errors: list[str] = []
        try:
            self.stop_impairer()
        except Exception as exc:
            errors.append(f"impairer: {exc}")
        for ns in reversed(self.created):
            result = _run(["ip", "netns", "del", ns], check=False)
            if result.returncode != 0:
                errors.append(f"ip netns del {ns}: {result.stderr.strip()}")
        self.created.clear()
        return errors


@contextmanager
def impaired_topology(
    impairment: Impairment, *, workdir: Path | None = None, both_directions: bool = False
) -> Iterator[Topology]:
    """Create the topology, yield it, and always remove it (even when set-up fails half-way)."""
    topo = Topology(f"sb{os.getpid()}-{next(_counter)}", impairment,
                    both_directions=both_directions, workdir=workdir)
    try:
        topo.setup()
        yield topo
    except BaseException:
        topo.teardown()  # best effort: the error in flight is the one to report
        raise
    errors = topo.teardown()
    if errors:
        raise NetnsError("; ".join(errors))


# ---------------------------------------------------------------------- userspace netem
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def _open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    return fd


@dataclass
class _Netem:
    """netem's decisions for each packet: drop, or the delay before it leaves."""

    impairment: Impairment
    rng: random.Random
    last_reorder: float = 0.0

    def _correlated(self, last: float, correlation: float) -> float:
        return correlation * last + (1.0 - correlation) * self.rng.random()

    def delay(self) -> float | None:
        """Seconds to hold the packet, or None to drop it."""
        imp = self.impairment
        if imp.loss and self.rng.random() < imp.loss:
            return None
        if imp.reorder:
            self.last_reorder = self._correlated(self.last_reorder, imp.reorder_correlation)
            if self.last_reorder < imp.reorder:
                return 0.0  # netem: this one goes at once, overtaking the delayed ones
        jitter = self.rng.gauss(0.0, imp.jitter_ms) if imp.jitter_ms else 0.0
        return max(0.0, imp.delay_ms + jitter) / 1000.0


def _impair_main(args: argparse.Namespace) -> int:
    impairment = Impairment(
        loss=args.loss, delay_ms=args.delay_ms, jitter_ms=args.jitter_ms, reorder=args.reorder,
        reorder_correlation=args.reorder_correlation, seed=args.seed,
    )
    netem = _Netem(impairment, random.Random(args.seed))
    fd = _open_tun(args.tun)
    subprocess.run(["ip", "link", "set", args.tun, "up"], check=True, timeout=10)
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(json.dumps({"event": "ready", "tun": args.tun}), flush=True)
    queue: list[tuple[float, int, bytes]] = []
    seq = itertools.count()
    stats = {"received": 0, "dropped": 0, "sent": 0, "reordered": 0}
    last_sent_seq = -1
    while not stopping:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, n, packet = heapq.heappop(queue)
            if n < last_sent_seq:
                stats["reordered"] += 1
            last_sent_seq = max(last_sent_seq, n)
            try:
                os.write(fd, packet)
                stats["sent"] += 1
            except OSError:
                stats["dropped"] += 1
        timeout = max(0.0, queue[0][0] - now) if queue else 0.2
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        while True:
            try:
                packet = os.read(fd, 65535)
            except BlockingIOError:
                break
            stats["received"] += 1
            hold = netem.delay()
            if hold is None:
                stats["dropped"] += 1
                continue
            heapq.heappush(queue, (time.monotonic() + hold, next(seq), packet))
    os.close(fd)
    print(json.dumps({"event": "stats", **stats}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.netns")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("impair", help="userspace netem on a TUN device (run inside a netns)")
    imp.add_argument("--tun", default=_TUN_NAME)
    imp.add_argument("--loss", type=float, default=0.0)
    imp.add_argument("--delay-ms", type=float, default=0.0)
    imp.add_argument("--jitter-ms", type=float, default=0.0)
    imp.add_argument("--reorder", type=float, default=0.0)
    imp.add_argument("--reorder-correlation", type=float, default=0.0)
    imp.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return _impair_main(args)


if __name__ == "__main__":
    sys.exit(main())
