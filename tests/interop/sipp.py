"""Run sipp (Debian ``sip-tester`` 3.6.1) scenarios against sylkbox on loopback.

Every run is bounded twice: sipp's own ``-timeout Ns -timeout_error`` and a subprocess deadline
after which the process is killed by its PID. Traces go to files in a private work directory:
``-trace_msg`` (every message sent and received), ``-trace_err`` (unexpected messages and failed
checks), and optionally ``-trace_rtt`` / ``-trace_stat`` for the load bench.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.server import RunningServer, free_port

__all__ = ["SCENARIOS", "SIPP", "Sipp", "SippResult", "run_sipp", "start_caller", "start_sipp"]

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
#: sipp's sample RTP capture (G.711 A-law, about 8 s), played by ``call.xml``.
PCAP_G711A = Path("/usr/share/sip-tester/g711a.pcap")

_TRANSPORTS = {"udp": "u1", "tcp": "t1"}


@dataclass(frozen=True)
class SippResult:
    """What one sipp run left behind."""

    returncode: int
    command: tuple[str, ...]
    output: str
    errors: str
    messages: str
    workdir: Path

    def report(self, tail: int = 6000) -> str:
        """A readable failure description for assertion messages."""
        return (
            f"sipp exited {self.returncode}\ncommand: {' '.join(self.command)}\n"
            f"--- error log ---\n{self.errors[-tail:]}\n"
            f"--- message log (tail) ---\n{self.messages[-tail:]}\n"
            f"--- output (tail) ---\n{self.output[-1500:]}"
        )

    def received(self, start_line: str) -> list[str]:
        """Bodies of the messages received whose first line starts with ``start_line``."""
        return [m for m in _received_messages(self.messages) if m.startswith(start_line)]


@dataclass
class Sipp:
    """A running sipp process (stop it with :meth:`wait` or :meth:`kill`)."""

    process: subprocess.Popen[bytes]
    command: tuple[str, ...]
    workdir: Path
    port: int
    media_port: int
    deadline: float
    _done: SippResult | None = field(default=None, repr=False)

    @property
    def message_path(self) -> Path:
        return self.workdir / "messages.log"

    def messages(self) -> str:
        try:
            return self.message_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_received(self, start_line: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` received messages start with ``start_line`` (polls the trace)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = [m for m in _received_messages(self.messages()) if m.startswith(start_line)]
            if len(got) >= count:
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def wait(self, timeout: float | None = None) -> SippResult:
        if self._done is not None:
            return self._done
        limit = self.deadline - time.monotonic() if timeout is None else timeout
        try:
            code = self.process.wait(max(limit, 0.1))
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        self._done = SippResult(
            returncode=code,
            command=self.command,
            output=_read(self.workdir / "output.log"),
            errors=_read(self.workdir / "errors.log"),
            messages=self.messages(),
            workdir=self.workdir,
        )
        return self._done

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)


def start_sipp(
    scenario: str | Path,
    workdir: Path,
    *,
    remote: tuple[str, int] | None = None,
    transport: str = "udp",
    service: str | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
    duration_ms: int | None = None,
    timeout: float = 20.0,
    port: int | None = None,
    trace_messages: bool = True,
    extra: Sequence[str] = (),
) -> Sipp:
    """Start sipp in the background with ``-nostdin`` on 127.0.0.1.

    ``scenario`` is a file name in :data:`SCENARIOS` or a path. ``remote`` is omitted for a UAS.
    ``keys`` become ``-key NAME VALUE`` (the scenario's ``[NAME]`` keywords). ``timeout`` is the
    whole run's budget in seconds; sipp fails with ``-timeout_error`` when it is reached.
    ``trace_messages=False`` skips the full message log (for load runs).
    """
    path = Path(scenario) if Path(scenario).is_absolute() else SCENARIOS / scenario
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    media_port = free_port(both=False)
    cmd: list[str] = [
        SIPP, "-sf", str(path), "-nostdin",
        "-t", _TRANSPORTS[transport],
        "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(media_port),
        "-m", str(calls),
        "-timeout", f"{max(int(timeout), 1)}s", "-timeout_error",
        "-max_retrans", "3",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
    ]
    if trace_messages:
        cmd += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    if service is not None:
        cmd += ["-s", service]
    if rate is not None:
        cmd += ["-r", f"{rate:g}"]
    if limit is not None:
        cmd += ["-l", str(limit)]
    if duration_ms is not None:
        cmd += ["-d", str(duration_ms)]
    for name, value in (keys or {}).items():
        cmd += ["-key", name, value]
    cmd += list(extra)
    if remote is not None:
        cmd.append(f"{remote[0]}:{remote[1]}")
    out = (workdir / "output.log").open("wb")
    try:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            env={**os.environ, "TERM": "dumb"},
        )
    finally:
        out.close()
    return Sipp(process, tuple(cmd), workdir, port, media_port, time.monotonic() + timeout + 10)


def run_sipp(scenario: str | Path, workdir: Path, **kwargs: object) -> SippResult:
    """Start sipp (same arguments as :func:`start_sipp`) and wait for it to finish."""
    return start_sipp(scenario, workdir, **kwargs).wait()  # type: ignore[arg-type]


def start_caller(
    server: RunningServer,
    workdir: Path,
    transport: str,
    room: str,
    hold_ms: int,
    *,
    caller: str = "alice",
) -> Sipp:
    """Start ``call.xml`` into ``room`` (it stays ``hold_ms``) and wait until it is answered."""
    sipp = start_sipp(
        "call.xml", workdir, remote=(server.host, server.sip_port), transport=transport,
        service=room, keys={"caller": caller, "maxfwd": "70"}, duration_ms=hold_ms,
        timeout=hold_ms / 1000 + 10,
    )
    if not sipp.wait_received("SIP/2.0 200", timeout=10):
        raise AssertionError(sipp.wait(1).report())
    return sipp


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _received_messages(log: str) -> list[str]:
    """Messages from a ``-trace_msg`` log that sipp received (start line first)."""
    found: list[str] = []
    for block in log.split("----------------------------------------------- ")[1:]:
        _stamp, _, rest = block.partition("\n")
        direction, _, message = rest.partition("\n")
        if "message received" in direction:
            found.append(message.lstrip("\r\n"))
    return found
