"""File transfer throughput through the real server (RFC 5547, BLINK.md 5).

    python bench/msrp_files.py [--size 50000000] [--count 3]

A room is opened by a chat participant; an uploader pushes a `--size` byte file in its own
INVITE (64 KiB SEND chunks as sipsimple sends them, waiting for the final 200 REPORT, which
the box sends after the SHA-1 check), then a late joiner pulls it by hash.  Upload and
download MB/s (MSRP over TLS on loopback, the default) are printed beside the raw throughput
of one plain asyncio TLS stream on loopback (`bench/msrp.py`'s `raw_tls_throughput`).
Target: each at least half of the raw stream.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.msrp import raw_tls_throughput
from tests.helpers.chat_peer import join_room
from tests.helpers.file_transfer import file_session, pull_selector, selector_for
from tests.helpers.msrp_server import BASE_CONFIG
from tests.helpers.server import RunningServer, start_server

CONFIG = (
    BASE_CONFIG + "[web]\nport = 0\n"
    "[files]\nmax_size = 2000000000\nroom_quota = 20000000000\n"
)


async def bench(server: RunningServer, size: int) -> tuple[float, float]:
    room = "files"
    alice = await join_room(server.host, server.sip_port, room, "alice", audio=False)
    data = os.urandom(size)
    try:
        up = await file_session(server, room, "bob", direction="sendonly",
                                selector=selector_for(data), file_offset=False)
        assert up.final.status == 200 and up.msrp is not None
        t0 = time.monotonic()
        await up.msrp.send_file(data, timeout=600)
        upload = size / (time.monotonic() - t0)
        await up.close()
        down = await file_session(server, room, "carol", direction="recvonly",
                                  selector=pull_selector(data), file_offset=False)
        assert down.final.status == 200 and down.msrp is not None
        t0 = time.monotonic()
        message = await down.msrp.wait_for(timeout=600)
        download = size / (time.monotonic() - t0)
        assert hashlib.sha1(message.body).digest() == hashlib.sha1(data).digest()
        await down.close()
    finally:
        await alice.hang_up()
    return upload, download


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=50_000_000)
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    raw_total = max(args.size // 65536, 16) * 65536  # whole blocks: the raw reader counts them
    raw = asyncio.run(raw_tls_throughput(raw_total))
    ups: list[float] = []
    downs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.count):
            server = start_server(Path(tmp) / f"run{run}", config=CONFIG, log_level="info")
            try:
                up, down = asyncio.run(bench(server, args.size))
            finally:
                server.stop()
            ups.append(up)
            downs.append(down)
    mb = 1e6
    print(f"raw asyncio TLS stream on loopback: {raw / mb:8.1f} MB/s")
    for label, values in (("upload (MSRP/TLS, to disk)", ups), ("download (from disk)", downs)):
        best = max(values)
        verdict = "OK" if best >= raw / 2 else "below target"
        print(f"{label:28s}: best {best / mb:8.1f} MB/s, runs "
              f"{', '.join(f'{v / mb:.1f}' for v in values)} ({best / raw:.0%} of raw, {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
