"""baresip as a test peer: a headless configuration on loopback (PEERS.md), scripted and observed
through its ``ctrl_tcp`` module (netstring-framed JSON commands and events).

    baresip = start_baresip(workdir, tone_wav)              # auto-answers, plays `tone_wav`
    baresip.command("dial", "sip:room@127.0.0.1:5060")
    established = baresip.wait_event("CALL_ESTABLISHED", timeout=10)
    baresip.stop()
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.process import stop_process
from tests.helpers.server import free_port

__all__ = ["Baresip", "start_baresip"]


@dataclass
class Baresip:
    """A running baresip, its ctrl_tcp connection and the events read from it."""

    process: subprocess.Popen[bytes]
    sip_port: int
    output: Path
    ctrl: socket.socket
    events: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def start_reader(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.ctrl.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:  # netstrings: LEN ":" JSON ","
                length_text, _, rest = buffer.partition(b":")
                length = int(length_text)
                if len(rest) < length + 1:
                    break
                event = json.loads(rest[:length])
                event["_t"] = time.time()  # when we saw it
                self.events.append(event)
                buffer = rest[length + 1:]

    def command(self, command: str, params: str = "") -> None:
        """Send a ctrl_tcp command (e.g. ``dial`` with a URI, ``hangup``)."""
        body = f'{{"command":"{command}","params":"{params}","token":"{command}"}}'.encode()
        self.ctrl.sendall(str(len(body)).encode() + b":" + body + b",")

    def wait_event(self, kind: str, timeout: float) -> float:
        """Epoch when baresip reported event `kind` (e.g. CALL_ESTABLISHED)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if event.get("type") == kind:
                    return float(event["_t"])
            time.sleep(0.02)
        raise AssertionError(f"baresip: no {kind}; events {self.events}; output:\n{self.log()}")

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.ctrl.close()
        stop_process(self.process)


def start_baresip(
    workdir: Path,
    tone: Path,
    *,
    codecs: Sequence[str] = ("g711",),
    dump_dir: Path | None = None,
    quit_after: int = 80,
    sip_trace: bool = False,
) -> Baresip:
    """Start baresip listening on 127.0.0.1 (UDP), auto-answering as
    ``sip:baresip@127.0.0.1:<sip_port>`` and playing `tone` (a WAV at the codec's rate and
    channel count) into every call; only the `codecs` modules are loaded. With `dump_dir`, its
    ``sndfile`` module writes what it sends and receives there (``*-enc.wav``, ``*-dec.wav``).
    baresip quits by itself after `quit_after` seconds; `sip_trace` puts its SIP trace in the
    output file. Its configuration lives in ``workdir/baresip``."""
    sip_port = free_port()
    ctrl_port = free_port(socket.SOCK_STREAM, both=False)
    rtp_base = free_port(both=False) // 2 * 2
    conf = workdir / "baresip"
    conf.mkdir()
    modules = "".join(f"module {codec}.so\n" for codec in codecs) + "module aufile.so\n"
    if dump_dir is not None:
        dump_dir.mkdir()
        modules += f"module sndfile.so\nsnd_path {dump_dir}\n"
    (conf / "config").write_text(
        "poll_method epoll\n"
        f"sip_listen 127.0.0.1:{sip_port}\n"
        "sip_transports udp\n"
        "audio_player null\n"
        "audio_alert null\n"
        f"audio_source aufile,{tone}\n"
        f"rtp_ports {rtp_base}-{rtp_base + 9}\n"
        "net_interface 127.0.0.1\n"
        "module_path /usr/lib/baresip/modules\n"
        f"{modules}"
        "module_app account.so\n"
        "module_app menu.so\n"
        "module_app ctrl_tcp.so\n"
        "module_app contact.so\n"
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
    )
    (conf / "accounts").write_text(
        f"<sip:baresip@127.0.0.1:{sip_port};transport=udp>;regint=0;answermode=auto\n"
    )
    (conf / "contacts").write_text("")
    output = workdir / "baresip.out"
    argv = ["baresip", "-f", str(conf), "-t", str(quit_after)]
    if sip_trace:
        argv.append("-s")
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 10
    while True:
        try:
            ctrl = socket.create_connection(("127.0.0.1", ctrl_port), timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
                raise AssertionError(
                    "baresip did not start:\n" + output.read_text(errors="replace")
                ) from None
            time.sleep(0.1)
    ctrl.settimeout(None)
    baresip = Baresip(process, sip_port, output, ctrl)
    baresip.start_reader()
    return baresip
