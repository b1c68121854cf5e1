"""A pjsua2 conference bridge hosting two calls: the reference room for the audio benchmarks.

    python bench/pjsua_bridge.py --port 5080 --codec G722 [--rtp-port 41000] [--clock-rate 16000]

One pjsua2 process (PyPI ``pjsua2-python``, pjsip 2.15.1, the engine Blink is built on)
listens on 127.0.0.1 over UDP, auto-answers incoming calls offering only ``--codec``, and
connects the audio of every answered call to every other one through pjsua2's conference
bridge (``AudioMedia.startTransmit``), as pjsua's own 3-way conference does: with two calls
A and B, B hears A and A hears B. The bridge runs at ``--clock-rate`` with pjsip's default
adaptive jitter buffer and packet loss concealment, no VAD and no echo canceller, and a null
sound device. pjsua2-python allows 4 calls per process (PJSUA_MAX_CALLS compiled in), which is
why it is a reference for two-party quality and cannot host a real room.

It prints ``ready`` on stdout when listening, ``bridged N`` each time a call's audio joins,
and runs until SIGTERM/SIGINT. Poll model as in tests/helpers/pjsua_agent.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import pjsua2 as pj

MAX_CALLS = 4
_out = sys.stdout


def _say(line: str) -> None:
    print(line, file=_out, flush=True)


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, account: _Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.owner = account
        self.audio: pj.AudioMedia | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API)
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.owner.finished.append(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.audio is None:
                    self.audio = self.getAudioMedia(index)
                    self.owner.bridge(self)
                return


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[int, _Call] = {}
        self.finished: list[_Call] = []

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 (pjsua2 API)
        call = _Call(self, prm.callId)
        self.calls[prm.callId] = call
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)

    def bridge(self, joined: _Call) -> None:
        """Connect the new call's audio to and from every other call with audio."""
        assert joined.audio is not None
        for other in self.calls.values():
            if other is joined or other.audio is None or other in self.finished:
                continue
            joined.audio.startTransmit(other.audio)
            other.audio.startTransmit(joined.audio)
        _say(f"bridged {sum(1 for c in self.calls.values() if c.audio is not None)}")

    def reap(self) -> None:
        for call in self.finished:
            self.calls = {k: v for k, v in self.calls.items() if v is not call}
        self.finished.clear()


def _configure_codecs(ep: pj.Endpoint, codec: str) -> None:
    wanted = codec.upper()
    found = False
    for info in ep.codecEnum2():
        name = str(info.codecId)
        keep = name.upper().startswith(wanted + "/")
        found = found or keep
        ep.codecSetPriority(name, 255 if keep else 0)
    if not found:
        raise SystemExit(f"pjsua_bridge: codec {codec} not available")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port (UDP)")
    parser.add_argument("--rtp-port", type=int, default=41000, help="first RTP port")
    parser.add_argument("--codec", default="PCMU", help="the only codec offered/accepted")
    parser.add_argument("--clock-rate", type=int, default=16000, help="conference bridge rate")
    parser.add_argument("--log-level", type=int, default=0)
    args = parser.parse_args(argv)
    global _out  # noqa: PLW0603 (process-wide: pjlib prints to fd 1 before logging is set up)
    sys.stdout.flush()
    _out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    stop = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    ep = pj.Endpoint()
    ep.libCreate()
    account: _Account | None = None
    try:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "pjsua2-bench-bridge"
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.clockRate = args.clock_rate
        cfg.medConfig.sndClockRate = args.clock_rate
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = args.log_level
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.boundAddress = "127.0.0.1"
        tcfg.port = args.port
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        ep.audDevManager().setNullDev()
        _configure_codecs(ep, args.codec)

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:bridge@127.0.0.1:{args.port}"
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 100
        account = _Account()
        account.create(acfg, True)
        _say("ready")
        while not stop:
            ep.libHandleEvents(5)
            account.reap()
        return 0
    finally:
        if account is not None:
            ep.hangupAllCalls()
            for _ in range(20):
                ep.libHandleEvents(10)
            account.calls.clear()
            account.finished.clear()
            account.shutdown()
        ep.libDestroy()


if __name__ == "__main__":
    sys.exit(main())
