"""The pjsua2 endpoint as our pjsua2 peers run it: the test agent (tests/helpers/pjsua_agent.py)
and the bench peers (bench/pjsua_uas.py, bench/pjsua_bridge.py).

pjsua2 (PyPI ``pjsua2-python``, pjsip 2.15.1, the engine Blink is built on) runs with no worker
threads (``threadCnt = 0``, ``mainThreadOnly = True``) and is polled with ``libHandleEvents``;
no VAD, no echo canceller, a null sound device, every socket bound to the address given.
`AnsweringAccount` is the auto-answering side of the bench peers.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import pjsua2 as pj

__all__ = [
    "AnsweredCall",
    "AnsweringAccount",
    "EndpointSettings",
    "StopSignals",
    "account_config",
    "answering_account",
    "keep_stdout",
    "only_codec",
    "running_endpoint",
    "start_endpoint",
    "transport_config",
]


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """What differs between our pjsua2 processes; the rest is the poll model above."""

    user_agent: str
    max_calls: int
    log_level: int = 0
    log_file: str = ""  # "": no log file
    clock_rate: int | None = None  # conference bridge and sound device rate (None: pjsua's)
    max_media_ports: int | None = None  # conference bridge slots (None: pjsua's 254)

    def ep_config(self) -> pj.EpConfig:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = self.user_agent
        cfg.uaConfig.maxCalls = self.max_calls
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        if self.clock_rate is not None:
            cfg.medConfig.clockRate = self.clock_rate
            cfg.medConfig.sndClockRate = self.clock_rate
        if self.max_media_ports is not None:
            cfg.medConfig.maxMediaPorts = self.max_media_ports
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = self.log_level
        if self.log_file:
            cfg.logConfig.filename = self.log_file
        return cfg


@contextmanager
def running_endpoint(settings: EndpointSettings) -> Iterator[pj.Endpoint]:
    """A created and initialised endpoint, destroyed on exit (after the caller's own clean-up:
    calls and accounts must go before ``libDestroy``)."""
    ep = pj.Endpoint()
    ep.libCreate()
    try:
        ep.libInit(settings.ep_config())
        yield ep
    finally:
        ep.libDestroy()


def transport_config(bind: str, port: int) -> pj.TransportConfig:
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = bind
    tcfg.port = port
    return tcfg


def start_endpoint(
    ep: pj.Endpoint, transports: Iterable[tuple[int, pj.TransportConfig]], program: str,
    codec: str | None = None,
) -> None:
    """Create the SIP transports (``PJSIP_TRANSPORT_*``, config), start the library on the null
    sound device and, with `codec`, offer and accept only that codec."""
    for kind, tcfg in transports:
        ep.transportCreate(kind, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    if codec is not None:
        only_codec(ep, codec, program)


def only_codec(ep: pj.Endpoint, codec: str, program: str) -> None:
    """Offer only `codec` (e.g. PCMU or G722): priority 0 disables a codec in pjmedia."""
    wanted = codec.upper()
    found = False
    for info in ep.codecEnum2():
        name = str(info.codecId)
        keep = name.upper().startswith(wanted + "/")
        found = found or keep
        ep.codecSetPriority(name, 255 if keep else 0)
    if not found:
        raise SystemExit(f"{program}: codec {codec} not available")


def account_config(
    id_uri: str, bind: str, rtp_port: int, port_range: int | None = None
) -> pj.AccountConfig:
    """An account whose RTP sockets are bound to `bind` from `rtp_port` (0: any) on."""
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    acfg.mediaConfig.transportConfig.boundAddress = bind
    acfg.mediaConfig.transportConfig.port = rtp_port
    if port_range is not None:
        acfg.mediaConfig.transportConfig.portRange = port_range
    return acfg


def keep_stdout() -> TextIO:
    """pjlib prints to fd 1 before its logging is set up: send fd 1 to stderr and return a
    file on the original stdout for the process's own output."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return out


class StopSignals:
    """Set by SIGTERM or SIGINT once installed (the bench peers run until then)."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, _sig: int, _frame: object) -> None:
        self.stopped = True


class AnsweredCall(pj.Call):  # type: ignore[misc]  # pjsua2 (SWIG) has no type information
    """An incoming call; tells its account when it is disconnected."""

    def __init__(self, account: AnsweringAccount, call_id: int) -> None:
        super().__init__(account, call_id)
        self.owner = account

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.owner.finished.append(self)


class AnsweringAccount(pj.Account):  # type: ignore[misc]  # pjsua2 (SWIG) has no type information
    """Answers every incoming call with 200, as a `call_type` (an `AnsweredCall`)."""

    def __init__(
        self, call_type: Callable[[AnsweringAccount, int], AnsweredCall] = AnsweredCall
    ) -> None:
        super().__init__()
        self.call_type = call_type
        self.calls: dict[int, AnsweredCall] = {}
        self.finished: list[AnsweredCall] = []
        self.answered = 0

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = self.call_type(self, prm.callId)
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

    def serve(self, ep: pj.Endpoint, stop: StopSignals, poll_ms: int) -> None:
        """Poll the endpoint until `stop`, reaping finished calls."""
        while not stop.stopped:
            ep.libHandleEvents(poll_ms)
            self.reap()


@contextmanager
def answering_account(
    ep: pj.Endpoint,
    config: pj.AccountConfig,
    call_type: Callable[[AnsweringAccount, int], AnsweredCall] = AnsweredCall,
) -> Iterator[AnsweringAccount]:
    """The default account of `ep`, answering every call; on exit every call is hung up (the
    BYEs given time to go out), then the calls and the account are deleted."""
    account = AnsweringAccount(call_type)
    try:
        account.create(config, True)
        yield account
    finally:
        ep.hangupAllCalls()
        for _ in range(20):
            ep.libHandleEvents(10)
        account.calls.clear()
        account.finished.clear()
        account.shutdown()
