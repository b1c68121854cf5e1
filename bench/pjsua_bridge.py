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
and runs until SIGTERM/SIGINT. Poll model as in tests/helpers/pjsua_endpoint.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.pjsua_endpoint import (
    AnsweredCall,
    AnsweringAccount,
    EndpointSettings,
    StopSignals,
    account_config,
    answering_account,
    keep_stdout,
    running_endpoint,
    start_endpoint,
    transport_config,
)

MAX_CALLS = 4
_out = sys.stdout


def _say(line: str) -> None:
    print(line, file=_out, flush=True)


class _BridgedCall(AnsweredCall):
    def __init__(self, account: AnsweringAccount, call_id: int) -> None:
        super().__init__(account, call_id)
        self.audio: pj.AudioMedia | None = None

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.audio is None:
                    self.audio = self.getAudioMedia(index)
                    _bridge(self.owner, self)
                return


def _bridge(account: AnsweringAccount, joined: _BridgedCall) -> None:
    """Connect the new call's audio to and from every other call with audio."""
    assert joined.audio is not None
    calls = [c for c in account.calls.values() if isinstance(c, _BridgedCall)]
    for other in calls:
        if other is joined or other.audio is None or other in account.finished:
            continue
        joined.audio.startTransmit(other.audio)
        other.audio.startTransmit(joined.audio)
    _say(f"bridged {sum(1 for c in calls if c.audio is not None)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port (UDP)")
    parser.add_argument("--rtp-port", type=int, default=41000, help="first RTP port")
    parser.add_argument("--codec", default="PCMU", help="the only codec offered/accepted")
    parser.add_argument("--clock-rate", type=int, default=16000, help="conference bridge rate")
    parser.add_argument("--log-level", type=int, default=0)
    args = parser.parse_args(argv)
    global _out  # noqa: PLW0603 (process-wide: pjlib prints to fd 1 before logging is set up)
    _out = keep_stdout()
    stop = StopSignals()
    settings = EndpointSettings(
        user_agent="pjsua2-bench-bridge",
        max_calls=MAX_CALLS,
        clock_rate=args.clock_rate,
        log_level=args.log_level,
    )
    with running_endpoint(settings) as ep:
        start_endpoint(
            ep, [(pj.PJSIP_TRANSPORT_UDP, transport_config("127.0.0.1", args.port))],
            "pjsua_bridge", codec=args.codec,
        )
        config = account_config(f"sip:bridge@127.0.0.1:{args.port}", "127.0.0.1", args.rtp_port,
                                port_range=100)
        with answering_account(ep, config, _BridgedCall) as account:
            _say("ready")
            account.serve(ep, stop, poll_ms=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
