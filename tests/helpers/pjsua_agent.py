"""One pjsua2 participant in its own process: call a URI, play a WAV into the call, record it.

    python -m tests.helpers.pjsua_agent --call sip:room@127.0.0.1:5060 --play tone.wav \
        --record out.wav --duration 8 [--transport udp|tcp|tls] [--codec PCMU] \
        [--srtp disabled|optional|mandatory]

pjsua2 (pjsip 2.15.1, the engine Blink is built on) runs with a null audio device, no worker
threads (`threadCnt = 0`, `mainThreadOnly = True`) and is polled with `libHandleEvents`. Every
socket is bound to 127.0.0.1. stdout carries JSON lines only:

* `{"event": "media", "t": EPOCH, ...}` when audio is connected (the recording starts then);
* `{"event": "summary", "confirmed": bool, "remote_contact": ..., "codec": ..., ...}` last.

The process hangs up `--duration` seconds after the call is confirmed and exits 0 only if the call
was confirmed. pjsua2 allows 4 calls per process; this agent makes exactly one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pjsua2 as pj

from tests.helpers.pjsua_endpoint import (
    EndpointSettings,
    account_config,
    keep_stdout,
    running_endpoint,
    start_endpoint,
    transport_config,
)
from tests.helpers.process import stop_process

__all__ = ["AgentProcess", "main", "spawn_agent"]

_TRANSPORTS = {
    "udp": pj.PJSIP_TRANSPORT_UDP,
    "tcp": pj.PJSIP_TRANSPORT_TCP,
    "tls": pj.PJSIP_TRANSPORT_TLS,
}


_SRTP = {
    "disabled": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,  # RTP/AVP with a=crypto (opportunistic)
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,  # RTP/SAVP
}
_PROTOS = {
    pj.PJMEDIA_TP_PROTO_RTP_AVP: "RTP/AVP",
    pj.PJMEDIA_TP_PROTO_RTP_SAVP: "RTP/SAVP",
}

_out = sys.stdout


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), file=_out, flush=True)


class _Call(pj.Call):  # type: ignore[misc]
    """Connects the player and recorder when media becomes active; remembers what happened."""

    def __init__(self, account: pj.Account, play: Path | None, record: Path | None) -> None:
        super().__init__(account)
        self.play = play
        self.record = record
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.confirmed_at: float | None = None
        self.disconnected = False
        self.last_status = 0
        self.last_reason = ""
        self.remote_contact = ""
        self.codec = ""
        self.proto = ""
        self.media_at: float | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.last_status = int(info.lastStatusCode)
        self.last_reason = str(info.lastReason)
        if info.remoteContact:
            self.remote_contact = str(info.remoteContact)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.time()
            _emit("confirmed", remote_contact=self.remote_contact)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            _emit("disconnected", status=self.last_status, reason=self.last_reason)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(index)
            stream_info = self.getStreamInfo(index)
            self.codec = str(stream_info.codecName)
            self.proto = _PROTOS.get(int(stream_info.proto), str(stream_info.proto))
            if self.play is not None and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(str(self.play), 0)  # 0: loop the file
                self.player.startTransmit(audio)
            if self.record is not None and self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(str(self.record))
                audio.startTransmit(self.recorder)
            if self.media_at is None:
                self.media_at = time.time()
                _emit("media", codec=self.codec, proto=self.proto)

    def rtp_stats(self) -> dict[str, int]:
        """RTP packets received/sent on the audio stream (0 when there is none)."""
        info = self.getInfo()  # keep the owner alive while iterating its SWIG vector
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                rtcp = self.getStreamStat(index).rtcp
                return {"rx_packets": int(rtcp.rxStat.pkt), "tx_packets": int(rtcp.txStat.pkt)}
        return {"rx_packets": 0, "tx_packets": 0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = EndpointSettings(
        user_agent="pjsua2-sylkbox-test",
        max_calls=1,
        clock_rate=args.clock_rate,
        log_level=args.log_level,
        log_file=str(args.log_file) if args.log_file else "",
    )
    summary: dict[str, Any] = {"confirmed": False}
    call: _Call | None = None
    account: pj.Account | None = None
    with running_endpoint(settings) as ep:
        try:
            tcfg = transport_config(args.bind, args.local_port)
            if args.transport == "tls":
                tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
                tcfg.tlsConfig.verifyServer = False
                tcfg.tlsConfig.msecTimeout = 5000
            start_endpoint(ep, [(_TRANSPORTS[args.transport], tcfg)], "pjsua_agent",
                           codec=args.codec)

            acfg = account_config(
                f"\"{args.display_name}\" <sip:{args.user}@{args.bind}>", args.bind, args.rtp_port
            )
            acfg.sipConfig.contactUriParams = f";transport={args.transport}"
            acfg.mediaConfig.srtpUse = _SRTP[args.srtp]
            acfg.mediaConfig.srtpSecureSignaling = 0  # SDES over plain SIP (loopback test)
            if args.srtp != "disabled":
                keyings = pj.IntVector()
                keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
                acfg.mediaConfig.srtpOpt.keyings = keyings
            account = pj.Account()
            account.create(acfg)

            call = _Call(account, args.play, args.record)
            call.makeCall(args.call, pj.CallOpParam(True))

            start = time.monotonic()
            hung_up = False
            while not call.disconnected:
                ep.libHandleEvents(20)
                now = time.monotonic()
                if call.confirmed_at is None:
                    due = now - start > args.answer_timeout
                else:
                    due = time.time() - call.confirmed_at >= args.duration
                if due and not hung_up:
                    if call.confirmed_at is not None:
                        summary.update(call.rtp_stats())
                    call.hangup(pj.CallOpParam(True))
                    hung_up = True
                if now - start > args.answer_timeout + args.duration + 10:
                    break  # the far end never answered our BYE/CANCEL: give up
            for _ in range(10):  # let the BYE/200 exchange finish
                ep.libHandleEvents(20)

            summary.update(
                confirmed=call.confirmed_at is not None,
                confirmed_at=call.confirmed_at,
                media_at=call.media_at,
                remote_contact=call.remote_contact,
                codec=call.codec,
                proto=call.proto,
                last_status=call.last_status,
                last_reason=call.last_reason,
                transport=args.transport,
                record=str(args.record) if args.record else None,
            )
            return summary
        finally:
            if call is not None:
                # Destroying the recorder finalises the WAV header; the call and account must
                # go before libDestroy (their destructors call into pjsua).
                call.player = None
                call.recorder = None
            call = None
            account = None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.helpers.pjsua_agent", description=__doc__)
    p.add_argument("--call", required=True, help="SIP URI to call")
    p.add_argument("--play", type=Path, help="WAV to play into the call (looped)")
    p.add_argument("--record", type=Path, help="WAV to record what the call receives into")
    p.add_argument("--duration", type=float, default=8.0, help="seconds from confirmation to BYE")
    p.add_argument("--answer-timeout", type=float, default=10.0)
    p.add_argument("--transport", choices=sorted(_TRANSPORTS), default="udp")
    p.add_argument("--codec", default="PCMU")
    p.add_argument("--srtp", choices=sorted(_SRTP), default="disabled", help="SDES SRTP use")
    p.add_argument("--local-port", type=int, default=0, help="SIP port (0: any)")
    p.add_argument("--rtp-port", type=int, default=0, help="first RTP port (0: any)")
    p.add_argument("--clock-rate", type=int, default=16000, help="conference bridge rate")
    p.add_argument("--bind", default="127.0.0.1", help="address of every socket (SIP, RTP)")
    p.add_argument("--user", default="pjsua")
    p.add_argument("--display-name", default="pjsua2 agent")
    p.add_argument("--log-file", type=Path)
    p.add_argument("--log-level", type=int, default=4)
    return p


def main(argv: list[str] | None = None) -> int:
    global _out  # noqa: PLW0603 (process-wide: pjlib prints to fd 1 before logging is set up)
    args = _parser().parse_args(argv)
    _out = keep_stdout()  # anything pjsip writes to stdout goes to stderr; JSON to the real one
    summary = run(args)
    _emit("summary", **summary)
    return 0 if summary["confirmed"] else 1


@dataclass
class AgentProcess:
    """A running agent process (started by `spawn_agent`); its stdout goes to a file."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        """The JSON events printed so far."""
        out: list[dict[str, Any]] = []
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """Block until the agent prints event `name`; AssertionError on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["event"] == name:
                    return event
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"pjsua agent: no {name!r} event; {self.diagnostics()}")

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the process to exit (kill it after `timeout`) and return its summary."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"pjsua agent did not exit; {self.diagnostics()}") from None
        for event in self.events():
            if event["event"] == "summary":
                return event
        raise AssertionError(f"pjsua agent printed no summary; {self.diagnostics()}")

    def stop(self) -> None:
        """Terminate the process (by its PID) if it still runs."""
        stop_process(self.process)

    def diagnostics(self) -> str:
        """Exit code, stdout and the tail of the pjsip log, for assertion messages."""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return (
            f"exit={self.process.poll()} stdout={self.stdout_path.read_text(errors='replace')!r}"
            f"\n--- pjsip log tail ---\n{log[-3000:]}"
        )


def spawn_agent(
    workdir: Path,
    name: str,
    call: str,
    *,
    play: Path | None = None,
    record: Path | None = None,
    duration: float = 8.0,
    transport: str = "udp",
    codec: str = "PCMU",
    answer_timeout: float = 10.0,
    bind: str = "127.0.0.1",
    netns: str | None = None,
    srtp: str = "disabled",
) -> AgentProcess:
    """Start one agent process; files go to `workdir/<name>.{out,log}`.

    With `netns` the agent runs inside that network namespace (``ip netns exec`` execs, so the
    PID is the agent's) and binds `bind`, an address of that namespace.
    """
    stdout_path = workdir / f"{name}.out"
    log_path = workdir / f"{name}.log"
    argv = [
        *(["ip", "netns", "exec", netns] if netns is not None else []),
        sys.executable, "-m", "tests.helpers.pjsua_agent",
        "--call", call,
        "--duration", str(duration),
        "--transport", transport,
        "--codec", codec,
        "--answer-timeout", str(answer_timeout),
        "--user", name,
        "--display-name", name,
        "--log-file", str(log_path),
        "--bind", bind,
    ]
    if play is not None:
        argv += ["--play", str(play)]
    if srtp != "disabled":
        argv += ["--srtp", srtp]
    if record is not None:
        argv += ["--record", str(record)]
    repo_root = Path(__file__).resolve().parents[2]
    with stdout_path.open("wb") as out, (workdir / f"{name}.err").open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=repo_root)
    return AgentProcess(process, stdout_path, log_path)


if __name__ == "__main__":
    sys.exit(main())
