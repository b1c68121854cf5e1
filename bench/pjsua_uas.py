"""A pjsua2 auto-answer UAS: the reference peer for bench/sip_load.py.

    python bench/pjsua_uas.py --port 5070 [--rtp-port 40000]

pjsua2 (PyPI ``pjsua2-python``, pjsip 2.15.1) listens on 127.0.0.1 over UDP and TCP, answers
every INVITE with 200 (PCMU/PCMA, null audio device) and lets the caller hang up. It prints
``ready`` on stdout once listening and runs until SIGTERM/SIGINT. pjsip is compiled with
PJSUA_MAX_CALLS = 4, so it can hold at most 4 calls at once: load it with ``sipp -l 4``.
Poll model as in tests/helpers/pjsua_agent.py: no worker threads, ``libHandleEvents``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import pjsua2 as pj

MAX_CALLS = 4
MAX_MEDIA_PORTS = 4096


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, call_id: int, owner: _Account) -> None:
        super().__init__(account, call_id)
        self.owner = owner

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API)
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.owner.finished.append(self)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[int, _Call] = {}
        self.finished: list[_Call] = []
        self.answered = 0

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 (pjsua2 API)
        call = _Call(self, prm.callId, self)
        self.calls[prm.callId] = call
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)
        self.answered += 1

    def reap(self) -> None:
        """Drop finished calls outside the callback (pjsua2 must not delete a call in one)."""
        for call in self.finished:
            self.calls = {k: v for k, v in self.calls.items() if v is not call}
        self.finished.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port (UDP and TCP)")
    parser.add_argument("--rtp-port", type=int, default=40000, help="first RTP port")
    args = parser.parse_args(argv)

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
        cfg.uaConfig.userAgent = "pjsua2-bench-uas"
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        # Conference-bridge slots are freed asynchronously; the default 254 runs out after
        # ~290 short calls. A larger table keeps long runs going.
        cfg.medConfig.maxMediaPorts = MAX_MEDIA_PORTS
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = int(os.environ.get("PJSUA_UAS_LOG_LEVEL", "0"))
        cfg.logConfig.filename = os.environ.get("PJSUA_UAS_LOG_FILE", "")
        ep.libInit(cfg)
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            tcfg = pj.TransportConfig()
            tcfg.boundAddress = "127.0.0.1"
            tcfg.port = args.port
            ep.transportCreate(kind, tcfg)
        ep.libStart()
        ep.audDevManager().setNullDev()

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:uas@127.0.0.1:{args.port}"
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 1000
        account = _Account()
        account.create(acfg, True)
        print("ready", flush=True)
        while not stop:
            ep.libHandleEvents(10)
            account.reap()
        print(f"answered {account.answered}", flush=True)
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
