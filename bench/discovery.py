"""Bonjour discovery timing (issue 5): how soon avahi on the LAN sees the box and its rooms.

    python bench/discovery.py [--starts 5] [--joins 5] [--adhoc 3]

Needs root: the box (the real ``sylkbox run``, mDNS on, bound to 0.0.0.0) runs in the "box"
network namespace of `tests.helpers.mdns_ns`; avahi-daemon (on a private D-Bus), line-buffered
``avahi-browse -rp`` watchers for every service type, a python-zeroconf browser and the SIP
participants (`tests.helpers.sip_participant`) run in the "peer" namespace. Every line the
watchers print is stamped with ``time.monotonic()`` as it is read (CLOCK_MONOTONIC is the same in
every namespace). Nothing is multicast in the root namespace.

* **start**: the box is started ``--starts`` times with the same data dir (after one untimed
  warm-up start that makes the TLS certificate and the instance_id) and the time to the first
  record resolved by avahi (the first ``=`` line) and to all of them is measured from the spawn of
  the server process, from its "listening on" log line (the server's ready point; it has no
  sd_notify), from its "mdns: probing" line (interpreter start-up and imports come before it,
  RFC 6762 8.1 probing after it) and from its "mdns: advertising" line. Then SIGTERM, and
  the time until avahi printed a ``-`` line for every record (goodbyes: avahi drops a record
  1 s after its TTL-0 goodbye, RFC 6762 10.1). Target: start -> first record <= 1 s.
* **join**: a participant joins the default room ``conference`` (``sip:conference@BOX``); the
  time from the INVITE's 200 (read by the participant) to the default room's ``note`` changing
  to ``One participant`` in avahi's cache (polled with ``avahi-browse -rptc``, ~20 ms a call)
  and in the zeroconf browser (its ``updated`` line); the same for the leave (BYE's 200 ->
  ``No participants``). Changes are 1.5 s apart (isolated changes; bursts are a correctness
  matter covered by tests/discovery). Target: join -> note <= 1 s.
* **ad-hoc room**: a participant joins a new room ``sip:benchN@BOX``: time from the 200 to the
  room's record resolved in avahi's cache (a new name: the box probes it first, RFC 6762 8.1).

Prints min / median / max per measure. Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.mdns_ns import (
    AvahiPeer,
    BrowseEvent,
    MdnsLink,
    avahi_peer,
    mdns_link,
    parse_browse_line,
)
from tests.helpers.server import RunningServer, start_server
from tests.helpers.sip_participant import start_participant

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("_sipfocus._udp", "_sipfocus._tcp", "_sipuri._udp", "_sipuri._tcp", "_http._tcp")
RECORDS = 10  # focus udp/tcp/tls, conference and one persistent room x 3, http
TARGET_S = 1.0
NAME = "sylkbox bench"
DEFAULT_ROOM = "Conference Room"


class TimedLines:
    """A child's stdout lines, each stamped with time.monotonic() when read."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(list(argv), stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                        text=True, bufsize=1, cwd=ROOT, env=env)
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            stamp = time.monotonic()
            with self._lock:
                self.lines.append((stamp, line.rstrip("\n")))

    def since(self, start: float) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, line in self.lines if t >= start]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._thread.join(5)


def _events(watches: Sequence[TimedLines], start: float) -> list[tuple[float, BrowseEvent]]:
    found = []
    for watch in watches:
        for stamp, line in watch.since(start):
            event = parse_browse_line(line)
            if event is not None:
                found.append((stamp, event))
    return sorted(found, key=lambda item: item[0])


def _poll(check: Callable[[], float | None], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _log_time(server: RunningServer, marker: str) -> float | None:
    """time.monotonic() of the first log line holding `marker` (from its asctime, ms)."""
    for line in server.log_text().splitlines():
        if marker in line:
            wall = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            return wall - (time.time() - time.monotonic())
    return None


def _config(host_label: str) -> str:
    return (
        "[media]\nrtp_timeout = 3600\nprompts = false\n[web]\nport = 8080\n"
        f'[mdns]\nname = "{NAME}"\nhost_name = "{host_label}"\n'
        '[rooms."weekly@example.com"]\npersistent = true\n'
    )


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "no data"
    return (f"min {min(values) * 1000:7.1f}  median {statistics.median(values) * 1000:7.1f}  "
            f"max {max(values) * 1000:7.1f} ms  (n={len(values)})")


def _start(link: MdnsLink, watches: Sequence[TimedLines],
           tmp: Path) -> tuple[RunningServer, float, dict[tuple[str, str], float]]:
    """Start the box; wait until avahi resolved every record. Returns the server, the spawn
    time and when each record was first resolved (an ``=`` line)."""
    spawned = time.monotonic()
    server = start_server(tmp, config=_config(f"box-{link.prefix}"), bind="0.0.0.0",
                          netns=link.box_ns, mdns=True)
    resolved: dict[tuple[str, str], float] = {}

    def everything() -> float | None:
        for stamp, event in _events(watches, spawned):
            if event.kind == "=":
                resolved.setdefault((event.type, event.name), stamp)
        return 0.0 if len(resolved) >= RECORDS else None

    try:
        _poll(everything, 15.0, "every record")
    except BaseException:
        server.stop()
        raise
    return server, spawned, resolved


def _stop(server: RunningServer, watches: Sequence[TimedLines]) -> float:
    """SIGTERM; seconds until avahi printed a '-' line for every record."""
    stopped = time.monotonic()
    server.stop()

    def all_removed() -> float | None:
        gone = {(e.type, e.name) for _, e in _events(watches, stopped) if e.kind == "-"}
        return time.monotonic() - stopped if len(gone) >= RECORDS else None

    return _poll(all_removed, 10.0, "the goodbyes")


def bench_starts(link: MdnsLink, watches: Sequence[TimedLines], tmp: Path,
                 runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "spawn -> first record": [], "ready -> first record": [],
        "spawn -> probing line": [], "probing line -> first record": [],
        "advertising line -> first record": [], "spawn -> all records": [],
        "SIGTERM -> all withdrawn": []}
    server, _, _ = _start(link, watches, tmp)  # warm-up: TLS certificate, instance_id
    _stop(server, watches)
    for run in range(runs):
        server, spawned, resolved = _start(link, watches, tmp)
        first = min(resolved.values())
        ready = _log_time(server, "listening on")
        advertising = _log_time(server, "mdns: advertising")
        probing = _log_time(server, "mdns: probing")
        results["spawn -> first record"].append(first - spawned)
        if ready is not None:
            results["ready -> first record"].append(first - ready)
        if probing is not None:
            results["spawn -> probing line"].append(probing - spawned)
            results["probing line -> first record"].append(first - probing)
        if advertising is not None:
            results["advertising line -> first record"].append(first - advertising)
        results["spawn -> all records"].append(max(resolved.values()) - spawned)
        results["SIGTERM -> all withdrawn"].append(_stop(server, watches))
        print(f"  start run {run + 1}: first record {(first - spawned) * 1000:.0f} ms after "
              f"spawn", flush=True)
    return results


def _note_in_cache(avahi: AvahiPeer, name: str, note: str) -> float | None:
    for event in avahi.browse("_sipuri._udp", cache=True):
        if event.name == name and f"note={note}".encode() in event.txt:
            return time.monotonic()
    return None


def _note_in_zeroconf(browser: TimedLines, start: float, name: str, note: str) -> float | None:
    for stamp, line in browser.since(start):
        if f'"{name}._sipuri._udp.local."' in line and f"note={note}" in line:
            return stamp
    return None


def _note_seen(avahi: AvahiPeer, browser: TimedLines, note: str,
               since: float) -> tuple[float, float]:
    """Seconds from `since` until the default room's note is `note` in avahi's cache and in
    the zeroconf browser."""
    seen = _poll(lambda: _note_in_cache(avahi, DEFAULT_ROOM, note), 10.0, f"{note!r} in avahi")
    zc = _poll(lambda: _note_in_zeroconf(browser, since, DEFAULT_ROOM, note), 10.0,
               f"{note!r} in zeroconf")
    return seen - since, zc - since


def bench_joins(link: MdnsLink, avahi: AvahiPeer, browser: TimedLines,
                runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "join -> note (avahi)": [], "join -> note (zeroconf)": [],
        "leave -> note (avahi)": [], "leave -> note (zeroconf)": []}
    room = f"sip:conference@{link.box_address}:5060"
    for run in range(runs):
        participant = start_participant(room, local=link.peer_address, user=f"p{run}",
                                        netns=link.peer_ns)
        in_avahi, in_zeroconf = _note_seen(avahi, browser, "One participant",
                                           float(participant.joined["at"]))
        results["join -> note (avahi)"].append(in_avahi)
        results["join -> note (zeroconf)"].append(in_zeroconf)
        time.sleep(1.5)
        left = float(participant.leave()["at"])
        in_avahi, in_zeroconf = _note_seen(avahi, browser, "No participants", left)
        results["leave -> note (avahi)"].append(in_avahi)
        results["leave -> note (zeroconf)"].append(in_zeroconf)
        print(f"  join run {run + 1}: note in avahi "
              f"{results['join -> note (avahi)'][-1] * 1000:.0f} ms after the 200", flush=True)
        time.sleep(1.5)
    return results


def _room_withdrawn(avahi: AvahiPeer, name: str) -> float | None:
    held = any(e.name == name for e in avahi.browse("_sipuri._udp", cache=True))
    return None if held else time.monotonic()


def bench_adhoc(link: MdnsLink, avahi: AvahiPeer, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"join -> new room's record (avahi)": []}
    for run in range(runs):
        room = f"bench{run}"
        name = f"{DEFAULT_ROOM} {room}"
        participant = start_participant(f"sip:{room}@{link.box_address}:5060",
                                        local=link.peer_address, netns=link.peer_ns)
        joined = float(participant.joined["at"])
        seen = _poll(partial(_note_in_cache, avahi, name, "One participant"), 10.0, name)
        results["join -> new room's record (avahi)"].append(seen - joined)
        participant.leave()
        _poll(partial(_room_withdrawn, avahi, name), 10.0, f"{name} withdrawn")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bonjour discovery timing (needs root)")
    parser.add_argument("--starts", type=int, default=5, help="timed box starts")
    parser.add_argument("--joins", type=int, default=5, help="join/leave cycles")
    parser.add_argument("--adhoc", type=int, default=3, help="ad-hoc room creations")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/discovery.py needs root (network namespaces)", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sylkbox-discovery-") as tmpdir:
        tmp = Path(tmpdir)
        with mdns_link(tmp) as link:
            avahi = avahi_peer(link)
            watches = [TimedLines(link.exec_argv(link.peer_ns, [
                "stdbuf", "-oL", "avahi-browse", "-rp", t]), env=avahi.env) for t in TYPES]
            browser = TimedLines(link.exec_argv(link.peer_ns, [
                sys.executable, "-m", "tests.helpers.mdns_ns", "browse", "--interface",
                link.peer_address, "_sipuri._udp.local."]))
            try:
                time.sleep(0.5)  # the watchers' first queries are out
                results |= bench_starts(link, watches, tmp / "box", args.starts)
                server, _, _ = _start(link, watches, tmp / "box")
                try:
                    _poll(lambda: _note_in_cache(avahi, DEFAULT_ROOM, "No participants"),
                          10.0, "the default room")
                    results |= bench_joins(link, avahi, browser, args.joins)
                    results |= bench_adhoc(link, avahi, args.adhoc)
                finally:
                    server.stop()
                    log = server.log_text()
                    if "Traceback" in log:
                        print(log[-4000:], file=sys.stderr)
            finally:
                for child in (*watches, browser):
                    child.stop()
    print(f"\nBonjour discovery ({len(TYPES)} types, {RECORDS} records; target {TARGET_S} s)")
    width = max(len(k) for k in results)
    for label, values in results.items():
        flag = ""
        if label in ("spawn -> first record", "join -> note (avahi)") and values:
            flag = "  target met" if statistics.median(values) <= TARGET_S else "  TARGET MISSED"
        print(f"{label:<{width}}  {_stats(values)}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
