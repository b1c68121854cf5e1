"""Run a real sylkbox server process on loopback for peer tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningServer", "free_port", "serve", "start_server", "stop_cleanly"]


def free_port(
    kind: int = socket.SOCK_DGRAM,
    *,
    both: bool = True,
    host: str = "127.0.0.1",
    family: int = socket.AF_INET,
) -> int:
    """A port free for UDP and TCP on `host` (the OS picks; we check the other protocol)."""
    for _ in range(50):
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not both:
            return port
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(family, other) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    sip_port: int
    tls_port: int
    data_dir: Path
    log_path: Path
    host: str = "127.0.0.1"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 5.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_server(
    tmp: Path,
    *,
    config: str = "",
    media_ports: str | None = None,
    log_level: str = "debug",
    bind: str = "127.0.0.1",
    netns: str | None = None,
    mdns: bool = False,
) -> RunningServer:
    """Start sylkbox; with `netns` it runs inside that network namespace (``ip netns exec``,
    which execs, so the process is sylkbox itself) and, the namespace being empty, uses the
    standard ports 5060/5061. mDNS is off (``--no-mdns``) unless `mdns` is set, which is only
    allowed inside a namespace: the box must never multicast on this machine's own links."""
    if mdns and netns is None:  # not an assert: it must hold under python -O too
        raise ValueError("mDNS must never run in the root namespace: pass netns=")
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    if netns is None:
        sip_port = free_port(host=bind, family=family)
        tls_port = free_port(socket.SOCK_STREAM, both=False, host=bind, family=family)
    else:
        sip_port, tls_port = 5060, 5061
    data_dir = tmp / "var"
    data_dir.mkdir(parents=True, exist_ok=True)
    if media_ports is None:
        base = 20000 + (os.getpid() * 7 + sip_port) % 20000 // 2 * 2
        media_ports = f"{base}-{base + 199}"
    cfg = tmp / "sylkbox.toml"
    media_line = f'port_range = "{media_ports}"\n'
    if "[msrp]" not in config:  # an ephemeral MSRP port: tests run several servers at once
        config += "\n[msrp]\nport = 0\n"
    if "[web]" not in config:  # and an ephemeral web port (the default 8080 would collide)
        config += "\n[web]\nport = 0\n"
    if "[media]" in config:  # one [media] table: put the port range into the caller's
        cfg.write_text(config.replace("[media]\n", "[media]\n" + media_line, 1))
    else:
        cfg.write_text("[media]\n" + media_line + config)
    log_path = tmp / "sylkbox.log"
    log_file = log_path.open("wb")
    # benches: SYLKBOX_TEST_PROFILE=<file> runs the server under cProfile (written at exit)
    profile = os.environ.get("SYLKBOX_TEST_PROFILE")
    process = subprocess.Popen(
        [
            *(["ip", "netns", "exec", netns] if netns is not None else []),
            sys.executable,
            *(["-m", "cProfile", "-o", profile] if profile else []),
            "-m",
            "sylkbox",
            "run",
            "--config",
            str(cfg),
            "--data-dir",
            str(data_dir),
            "--bind",
            bind,
            "--sip-port",
            str(sip_port),
            "--sip-tls-port",
            str(tls_port),
            *([] if mdns else ["--no-mdns"]),
            "--log-level",
            log_level,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = RunningServer(process, sip_port, tls_port, data_dir, log_path, bind)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "sylkbox.app: sylkbox " in server.log_text() and "listening on" in server.log_text():
            return server
        if process.poll() is not None:
            raise RuntimeError("sylkbox exited at start:\n" + server.log_text())
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("sylkbox did not start:\n" + server.log_text())


def stop_cleanly(server: RunningServer, timeout: float = 5.0) -> str:
    """SIGTERM: the server must exit 0 without a traceback; returns its log."""
    code = server.stop(timeout)
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert code == 0, log[-4000:]
    return log


def serve(tmp: Path, *, config: str = "", log_level: str = "debug") -> Iterator[RunningServer]:
    """The body of a server fixture: yield a server on loopback, then stop it cleanly."""
    server = start_server(tmp, config=config, log_level=log_level)
    try:
        yield server
    finally:
        stop_cleanly(server)
