"""A pjsua2 auto-answer UAS: the reference peer for bench/sip_load.py.

    python bench/pjsua_uas.py --port 5070 [--rtp-port 40000]

pjsua2 (PyPI ``pjsua2-python``, pjsip 2.15.1) listens on 127.0.0.1 over UDP and TCP, answers
every INVITE with 200 (PCMU/PCMA, null audio device) and lets the caller hang up. It prints
``ready`` on stdout once listening and runs until SIGTERM/SIGINT. pjsip is compiled with
PJSUA_MAX_CALLS = 4, so it can hold at most 4 calls at once: load it with ``sipp -l 4``.
Poll model as in tests/helpers/pjsua_endpoint.py: no worker threads, ``libHandleEvents``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.pjsua_endpoint import (
    EndpointSettings,
    StopSignals,
    account_config,
    answering_account,
    running_endpoint,
    start_endpoint,
    transport_config,
)

MAX_CALLS = 4
MAX_MEDIA_PORTS = 4096


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port (UDP and TCP)")
    parser.add_argument("--rtp-port", type=int, default=40000, help="first RTP port")
    args = parser.parse_args(argv)
    stop = StopSignals()
    settings = EndpointSettings(
        user_agent="pjsua2-bench-uas",
        max_calls=MAX_CALLS,
        # Conference-bridge slots are freed asynchronously; the default 254 runs out after
        # ~290 short calls. A larger table keeps long runs going.
        max_media_ports=MAX_MEDIA_PORTS,
        log_level=int(os.environ.get("PJSUA_UAS_LOG_LEVEL", "0")),
        log_file=os.environ.get("PJSUA_UAS_LOG_FILE", ""),
    )
    with running_endpoint(settings) as ep:
        start_endpoint(
            ep,
            [(kind, transport_config("127.0.0.1", args.port))
             for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP)],
            "pjsua_uas",
        )
        config = account_config(f"sip:uas@127.0.0.1:{args.port}", "127.0.0.1", args.rtp_port,
                                port_range=1000)
        with answering_account(ep, config) as account:
            print("ready", flush=True)
            account.serve(ep, stop, poll_ms=10)
            print(f"answered {account.answered}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
