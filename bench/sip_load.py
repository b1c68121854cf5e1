"""SIP join/leave load: sipp as UAC against sylkbox, then against a pjsua2 auto-answer UAS.

    python bench/sip_load.py [--rate 250] [--calls 2000] [--limit 50] [--transport udp|tcp]
                             [--hold-ms 10] [--rtp] [--pjsua-rate 40]
                             [--targets sylkbox,pjsua] [--keep DIR]

Each cycle is INVITE, 200, ACK, (G.711 RTP from sipp's sample pcap with --rtp), a pause of
--hold-ms, BYE, 200 (tests/interop/scenarios/load_call.xml), all to one room. The figures:

* cycles/s: the steady completion rate, (completed cycles - 1) divided by the time between the
  first and the last BYE answered (sipp paces INVITEs at --rate, so offer more than the target);
* failed: sipp's FailedCall counter (-trace_stat), plus calls that never completed;
* INVITE-to-200 p50/p99: from sipp's -trace_shortmsg log, which stamps every message with
  microseconds when sipp sends or reads it (so it includes sipp's own scheduling, ~0.1 ms).

The pjsua2 reference (bench/pjsua_uas.py) holds at most 4 calls (PJSUA_MAX_CALLS, compiled in), so
it runs with -l 4. Its select() I/O queue has 64 handles and recycles a closed socket only after
500 ms; each call takes an RTP and an RTCP socket, so it cannot sustain much more than ~60 cycles/s
and runs at --pjsua-rate (default 40). Exit status 1 when sylkbox misses the target
(>= 200 cycles/s with zero failed calls).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.server import free_port, start_server
from tests.interop.sipp import start_sipp

TARGET_CYCLES_PER_S = 200.0
PJSUA_MAX_CALLS = 4


@dataclass(frozen=True)
class LoadResult:
    label: str
    transport: str
    rate: float
    limit: int
    attempted: int
    completed: int
    failed: int
    cycles_per_s: float
    p50_ms: float
    p99_ms: float
    sipp_exit: int
    workdir: Path


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def _parse_shortmsg(path: Path) -> tuple[list[float], int, float]:
    """INVITE-to-200 latencies (ms), completed cycles, and cycles/s from a shortmsg log."""
    invite_sent: dict[str, float] = {}
    latencies: list[float] = []
    first = last = 0.0
    done: list[float] = []
    with path.open(errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                continue
            stamp, direction, call_id, cseq, start = (
                float(fields[2]), fields[3], fields[4], fields[5], fields[6],
            )
            if direction == "S" and cseq == "CSeq:1 INVITE" and start.startswith("INVITE"):
                invite_sent.setdefault(call_id, stamp)
            elif direction == "R" and start.startswith("SIP/2.0 200"):
                if cseq == "CSeq:1 INVITE" and call_id in invite_sent:
                    latencies.append((stamp - invite_sent.pop(call_id)) * 1000)
                    invite_sent[call_id + "#answered"] = stamp
                elif cseq.endswith(" BYE") and (call_id + "#answered") in invite_sent:
                    del invite_sent[call_id + "#answered"]
                    done.append(stamp)
    if len(done) > 1:
        first, last = min(done), max(done)
    rate = (len(done) - 1) / (last - first) if last > first else 0.0
    return latencies, len(done), rate


def _failed_calls(stat_path: Path) -> int:
    try:
        rows = list(csv.DictReader(stat_path.open(errors="replace"), delimiter=";"))
    except FileNotFoundError:
        return -1
    return int(rows[-1]["FailedCall(C)"]) if rows else -1


def run_load(
    label: str,
    target: tuple[str, int],
    workdir: Path,
    *,
    rate: float,
    calls: int,
    limit: int,
    transport: str,
    hold_ms: int,
    rtp: bool,
) -> LoadResult:
    budget = calls / rate * 3 + 30
    sipp = start_sipp(
        "load_call.xml", workdir, remote=target, transport=transport, service="bench",
        keys={"caller": "load"}, calls=calls, rate=rate, limit=limit, duration_ms=hold_ms,
        timeout=budget, trace_messages=False,
        extra=[
            "-trace_shortmsg", "-shortmessage_file", str(workdir / "short.tsv"),
            "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
            "-deadcall_wait", "1000",
            *(["-set", "rtp", "1"] if rtp else []),
        ],
    )
    result = sipp.wait()
    latencies, completed, cycles_per_s = _parse_shortmsg(workdir / "short.tsv")
    failed = max(_failed_calls(workdir / "stat.csv"), 0)
    failed = max(failed, calls - completed)
    return LoadResult(
        label, transport, rate, limit, calls, completed, failed, cycles_per_s,
        _percentile(latencies, 50), _percentile(latencies, 99), result.returncode, workdir,
    )


def _with_sylkbox(tmp: Path, job: Callable[[tuple[str, int]], LoadResult]) -> LoadResult:
    base = 20000 + (os.getpid() * 13) % 16000 // 2 * 2
    # "info": start_server waits for the INFO "listening on" line.
    server = start_server(tmp / "sylkbox", media_ports=f"{base}-{base + 1999}", log_level="info")
    try:
        return job((server.host, server.sip_port))
    finally:
        server.stop()


def _with_pjsua(tmp: Path, job: Callable[[tuple[str, int]], LoadResult]) -> LoadResult:
    port = free_port()
    rtp_port = 40000 + (os.getpid() * 7) % 10000 // 2 * 2
    log = (tmp / "pjsua_uas.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("pjsua_uas.py")),
         "--port", str(port), "--rtp-port", str(rtp_port)],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.stdout.readline().strip() == b"ready":
                break
            if process.poll() is not None:
                raise RuntimeError(f"pjsua_uas exited {process.returncode}")
        return job(("127.0.0.1", port))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def _print_table(results: list[LoadResult]) -> None:
    rows = [
        ("target", [r.label for r in results]),
        ("transport", [r.transport for r in results]),
        ("offered rate (cps)", [f"{r.rate:g}" for r in results]),
        ("concurrency (-l)", [str(r.limit) for r in results]),
        ("cycles attempted", [str(r.attempted) for r in results]),
        ("cycles completed", [str(r.completed) for r in results]),
        ("failed calls", [str(r.failed) for r in results]),
        ("cycles/s", [f"{r.cycles_per_s:.1f}" for r in results]),
        ("INVITE->200 p50 (ms)", [f"{r.p50_ms:.2f}" for r in results]),
        ("INVITE->200 p99 (ms)", [f"{r.p99_ms:.2f}" for r in results]),
        ("sipp exit code", [str(r.sipp_exit) for r in results]),
    ]
    width = max(len(name) for name, _ in rows)
    cols = [max(len(v[i]) for _, v in rows) for i in range(len(results))]
    for name, values in rows:
        cells = "  ".join(v.rjust(w) for v, w in zip(values, cols, strict=True))
        print(f"{name.ljust(width)}  {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIP join/leave load: sylkbox vs pjsua2")
    parser.add_argument("--rate", type=float, default=250.0, help="calls per second offered")
    parser.add_argument("--calls", type=int, default=2000, help="total join/leave cycles")
    parser.add_argument("--limit", type=int, default=50, help="max simultaneous calls (sylkbox)")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--hold-ms", type=int, default=10, help="time in the room per cycle")
    parser.add_argument("--rtp", action="store_true", help="play G.711 RTP while in the room")
    parser.add_argument("--pjsua-rate", type=float, default=40.0,
                        help="rate for the pjsua2 reference (see the module docstring)")
    parser.add_argument("--targets", default="sylkbox,pjsua", help="comma-separated subset")
    parser.add_argument("--keep", type=Path, help="keep sipp and server logs in this directory")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sip-load-") as tmp_name:
        tmp = Path(tmp_name) if args.keep is None else args.keep
        tmp.mkdir(parents=True, exist_ok=True)
        common = {"calls": args.calls, "transport": args.transport,
                  "hold_ms": args.hold_ms, "rtp": args.rtp}
        targets = {t.strip() for t in args.targets.split(",")}
        results: list[LoadResult] = []
        if "sylkbox" in targets:
            results.append(_with_sylkbox(tmp, lambda t: run_load(
                "sylkbox", t, tmp / "sipp-sylkbox", rate=args.rate, limit=args.limit, **common)))
        if "pjsua" in targets:
            results.append(_with_pjsua(tmp, lambda t: run_load(
                "pjsua2 UAS", t, tmp / "sipp-pjsua", rate=min(args.rate, args.pjsua_rate),
                limit=PJSUA_MAX_CALLS, **common)))
        _print_table(results)
        if "sylkbox" not in targets:
            return 0
        ours = results[0]
        ok = ours.failed == 0 and ours.cycles_per_s >= TARGET_CYCLES_PER_S
        print(f"\nsylkbox target: >= {TARGET_CYCLES_PER_S:g} cycles/s with 0 failed calls: "
              f"{'met' if ok else 'NOT met'}")
        if not ok:
            errors = (ours.workdir / "errors.log")
            if errors.exists():
                print("--- sipp error log (sylkbox run, head) ---")
                print(errors.read_text(errors="replace")[:3000])
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
