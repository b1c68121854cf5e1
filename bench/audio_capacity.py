"""Audio capacity: how many participants one core of the media worker mixes in one room.

    python bench/audio_capacity.py [--codec G722|OPUS|PCMU] [--talkers 3] [--measure 8]
                                   [--start 50] [--max 800] [--resolution 10]
                                   [--generators 3] [--worker-cpu 1] [--generator-cpu 0]

The real media worker (``python -m sylkbox.media.worker``) runs pinned to one core
(``--worker-cpu``) and is driven directly over its JSON-lines control channel: no SIP. For a
step with N participants it holds N streams in one room; ``--generators`` sender processes
(bench/rtp_generator.py, pinned to the other core) send pre-encoded 20 ms frames on all of
them: ``--talkers`` streams carry a speech-like signal, the others low background noise
(``--noise-dbfs``), as silent listeners with their microphones open do. After a warm-up the
worker's tick statistics (``GetStats`` -> ``TickStats``) are taken over ``--measure`` seconds.
A step passes when at most ``--max-late`` (1 %) of the mixer ticks are late (a tick is late
when it starts more than 5 ms after its deadline or its processing exceeds 20 ms).

N grows by doubling from ``--start`` until a step fails (or ``--max``), then is bisected down
to ``--resolution``. The result is the largest passing N and the worker's CPU per participant:
worker CPU time (utime + stime from /proc/PID/stat) / wall time / N, in % of one core.
Exit status is 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rtp_generator import CODECS, FrameSet, pin_to
from sylkbox.media.control import (
    AddStream,
    Direction,
    GetStats,
    MediaEvent,
    RemoveStream,
    Shutdown,
    StreamAdded,
    StreamFailed,
    StreamRemoved,
    TickStats,
    from_json,
    to_json,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_G722 = 150
CONTEXT = (
    "context: target 150+ G.722 participants at 16 kHz on one core (issue 3).",
    "context: the pjsua2-python reference cannot host a room at all: 4 calls per process"
    " (PJSUA_MAX_CALLS compiled in), so no same-machine pjsip figure exists;",
    "context (figures quoted by issue 3 for this kind of machine, not measured here): pjsip's C"
    " conference bridge about 320 G.711 participants per core at an 8 kHz clock and about 130"
    " at 16 kHz; Janus AudioBridge about 450 (G.711, linear cost).",
)


class Worker:
    """The media worker process with a synchronous request/reply wrapper."""

    def __init__(self, cpu: int | None, port_range: str) -> None:
        cmd = [sys.executable, "-m", "sylkbox.media.worker", "--port-range", port_range,
               "--rtp-timeout", "3600", "--log-level", "WARNING"]
        if cpu is not None and cpu in os.sched_getaffinity(0):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
        )
        self._events: queue.Queue[MediaEvent | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda e: type(e).__name__ == "WorkerReady", 15)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = from_json(line)
            assert isinstance(event, MediaEvent)
            self._events.put(event)
        self._events.put(None)

    def send(self, command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(to_json(command).encode() + b"\n")
        self.process.stdin.flush()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> MediaEvent:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                raise RuntimeError(f"media worker exited ({self.process.poll()})")
            if predicate(event):
                return event
        raise RuntimeError("media worker did not answer")

    def stats(self, *, reset: bool) -> TickStats:
        self.send(GetStats(reset=reset))
        event = self.wait_for(lambda e: isinstance(e, TickStats))
        assert isinstance(event, TickStats)
        return event

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.poll() is None:
            self.send(Shutdown())
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass(frozen=True, slots=True)
class Step:
    n: int
    stats: TickStats
    cpu_pct: float  # of one core, whole worker

    @property
    def late_ratio(self) -> float:
        return self.stats.late_ticks / max(1, self.stats.ticks)


def _signals(codec: str, workdir: Path, noise_dbfs: float) -> tuple[Path, Path]:
    """Pre-encode a 4 s speech-like talker signal and a 4 s background-noise signal."""
    rate = CODECS[codec].sample_rate
    t = np.arange(4 * rate) / rate
    rng = np.random.default_rng(5)
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t)) * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1440), 1))
    talk = (3000 * envelope * voice + 100 * rng.standard_normal(len(t))).astype(np.int16)
    noise = (32768 * 10 ** (noise_dbfs / 20) * rng.standard_normal(len(t))).astype(np.int16)
    talk_path, noise_path = workdir / f"talk.{codec}", workdir / f"noise.{codec}"
    FrameSet.encode(codec, talk).save(talk_path)
    FrameSet.encode(codec, noise).save(noise_path)
    return talk_path, noise_path


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.info = CODECS[args.codec]
        self.talk, self.noise = _signals(args.codec, workdir, args.noise_dbfs)
        first = args.port_base
        self.worker = Worker(args.worker_cpu, f"{first}-{first + 2 * args.max + 10}")
        self.ports: dict[str, int] = {}

    def resize(self, n: int) -> None:
        """Add or remove streams until the room holds ``n``."""
        while len(self.ports) < n:
            sid = f"p{len(self.ports)}"
            self.worker.send(AddStream(
                room_id="bench", stream_id=sid, local_host="127.0.0.1", local_port=None,
                remote_host="127.0.0.1", remote_port=0, payload_type=self.info.payload_type,
                codec=self.info.name, clock_rate=self.info.clock_rate,
                telephone_event_pt=None, direction=Direction.SENDRECV,
            ))
            event = self.worker.wait_for(
                lambda e, sid=sid: getattr(e, "stream_id", None) == sid
            )
            if isinstance(event, StreamFailed):
                raise RuntimeError(f"worker refused {self.info.name}: {event.reason}")
            assert isinstance(event, StreamAdded)
            self.ports[sid] = event.local_port
        while len(self.ports) > n:
            sid = f"p{len(self.ports) - 1}"
            self.worker.send(RemoveStream(stream_id=sid))
            self.worker.wait_for(
                lambda e, sid=sid: isinstance(e, StreamRemoved) and e.stream_id == sid
            )
            del self.ports[sid]

    def run_step(self, n: int) -> Step:
        self.resize(n)
        args = self.args
        start = time.monotonic() + 0.5
        duration = args.warmup + args.measure + 0.5
        streams = [
            {"dest": ["127.0.0.1", port], "pt": self.info.payload_type,
             "ts_step": self.info.ts_step,
             "frames": str(self.talk if i < args.talkers else self.noise)}
            for i, port in enumerate(self.ports.values())
        ]
        procs = []
        for g in range(args.generators):
            part = streams[g :: args.generators]
            if not part:
                continue
            spec = self.workdir / f"gen{g}.json"
            spec.write_text(json.dumps({"streams": part, "start": start, "duration": duration,
                                        "seed": g + 1, "slots": args.slots}))
            cmd = [sys.executable, str(ROOT / "bench" / "rtp_generator.py"), "send",
                   "--spec", str(spec)]
            if args.generator_cpu is not None:
                cmd += ["--cpu", str(args.generator_cpu)]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT))
        try:
            time.sleep(max(0.0, start - time.monotonic()) + args.warmup)
            self.worker.stats(reset=True)
            cpu0, wall0 = self.worker.cpu_seconds(), time.monotonic()
            time.sleep(args.measure)
            stats = self.worker.stats(reset=True)
            cpu1, wall1 = self.worker.cpu_seconds(), time.monotonic()
            expected = round((wall1 - wall0) / 0.02)
            if stats.ticks == 0:
                raise RuntimeError("the worker's mixer clock stopped (see its stderr)")
            if stats.ticks < expected:  # ticks that never happened are late too
                missing = expected - stats.ticks
                stats = replace(stats, ticks=expected, late_ticks=stats.late_ticks + missing)
        finally:
            for proc in procs:
                try:
                    proc.wait(duration + 10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        return Step(n, stats, 100.0 * (cpu1 - cpu0) / (wall1 - wall0))

    def close(self) -> None:
        self.worker.close()


def _row(step: Step, ok: bool) -> str:
    s = step.stats
    return (f"{step.n:>6} {s.ticks:>6} {s.late_ticks:>5} {100 * step.late_ratio:>7.2f}% "
            f"{s.max_late_ms:>9.1f} {s.mean_tick_ms:>8.2f} {s.p99_tick_ms:>8.2f} "
            f"{step.cpu_pct:>7.1f}% {step.cpu_pct / step.n:>9.3f}%  {'ok' if ok else 'FAIL'}")


def search(bench: Bench, args: argparse.Namespace) -> tuple[Step | None, list[Step]]:
    print(f"{'N':>6} {'ticks':>6} {'late':>5} {'late%':>8} {'max late':>9} {'mean ms':>8} "
          f"{'p99 ms':>8} {'worker':>8} {'per part.':>10}", flush=True)
    steps: list[Step] = []
    best: Step | None = None
    lo, hi = 0, None
    n = args.start
    while hi is None:
        step = bench.run_step(n)
        steps.append(step)
        ok = step.late_ratio <= args.max_late
        print(_row(step, ok), flush=True)
        if ok:
            best, lo = step, n
            if n >= args.max:
                return best, steps
            n = min(args.max, n * 2)
        else:
            hi = n
    while hi - lo > args.resolution:
        n = (lo + hi) // 2
        if lo == 0:
            n = max(1, n)
        step = bench.run_step(n)
        steps.append(step)
        ok = step.late_ratio <= args.max_late
        print(_row(step, ok), flush=True)
        if ok:
            best, lo = step, n
        else:
            hi = n
    return best, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--codec", default="G722", type=str.upper, choices=sorted(CODECS))
    parser.add_argument("--talkers", type=int, default=3, help="streams carrying speech")
    parser.add_argument("--noise-dbfs", type=float, default=-65.0,
                        help="level of the listeners' background noise")
    parser.add_argument("--measure", type=float, default=8.0, help="seconds measured per step")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    parser.add_argument("--start", type=int, default=50, help="first N")
    parser.add_argument("--max", type=int, default=800, help="largest N tried")
    parser.add_argument("--resolution", type=int, default=10, help="bisection stops here")
    parser.add_argument("--max-late", type=float, default=0.01, help="late tick ratio allowed")
    parser.add_argument("--generators", type=int, default=3, help="sender processes")
    parser.add_argument("--slots", type=int, default=10,
                        help="send instants per 20 ms and generator (random client phases)")
    parser.add_argument("--worker-cpu", type=int, default=1, help="core for the media worker")
    parser.add_argument("--generator-cpu", type=int, default=0,
                        help="core for the generators and this script")
    parser.add_argument("--port-base", type=int, default=42000, help="worker RTP port range")
    parser.add_argument("--keep", type=Path, help="keep generator specs here")
    args = parser.parse_args(argv)
    if args.generator_cpu is not None:
        pin_to({args.generator_cpu})
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="sylkbox-capacity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"audio capacity: codec {args.codec}, {args.talkers} talkers, {args.measure:g} s "
          f"per step, worker on core {args.worker_cpu}, {args.generators} generators on core "
          f"{args.generator_cpu}, {os.cpu_count()} cores", flush=True)
    bench = Bench(args, workdir)
    try:
        best, _ = search(bench, args)
    finally:
        bench.close()
    print()
    if best is None:
        print(f"RESULT {args.codec}: no N passed (even {args.start} had > "
              f"{100 * args.max_late:g}% late ticks)")
    else:
        per = best.cpu_pct / best.n
        print(f"RESULT {args.codec}: largest N with <= {100 * args.max_late:g}% late ticks: "
              f"{best.n}{'+' if best.n >= args.max else ''} "
              f"(worker {best.cpu_pct:.1f}% of one core, {per:.3f}% = "
              f"{per * 10:.2f} ms CPU per participant per second)")
        if args.codec == "G722":
            verdict = "meets" if best.n >= TARGET_G722 else "misses"
            print(f"target {TARGET_G722}+ G.722 participants: {verdict}")
    for line in CONTEXT:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
