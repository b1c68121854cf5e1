"""MSRP chat and throughput through the real server (BLINK.md 4 and 7).

    python bench/msrp.py [--participants 50] [--procs 2] [--messages 50] [--rate 10]
                         [--tls|--tcp] [--size 6000000] [--count 5] [--skip-chat|--skip-bulk]
                         [--profile DIR]

**Chat fan-out**: `--participants` chat-only participants (SIP over UDP with
`tests.helpers.sipclient`, MSRP with the independent `tests.msrp_client`, as Blink: every
received SEND answered 200 and REPORTed) join one room, spread over `--procs` client processes.
Each participant sends `--messages` public messages at `--rate` messages/s; each message is
delivered to every other participant.  The send time (``time.monotonic()``, shared by the
processes) is in the text; the delivery latency is the receiver's read time minus it.
deliveries/s = deliveries / (last delivery - first send).  Target: 20,000 deliveries/s.
The offered load is participants x (participants - 1) x rate deliveries/s (24,500 with the
defaults; the former default of 4 msg/s offered only 9,800, below the target).  The CPU time
of the server process and of the client processes over the run is printed per delivery (the
clients share the machine's CPUs with the server); streams the box failed (too slow a
reader) are counted from its log.  ``--profile DIR`` runs the server (DIR/server.prof) and
the chat clients (DIR/client<k>.prof) under cProfile.

**Bulk**: a sender posts `--count` chat messages of `--size` bytes (64 KiB chunks, as
sipsimple sends files) into a room with one receiver, one after the other; throughput = bytes
delivered to the receiver / time.  Beside it, the raw throughput of a plain asyncio TLS stream
on loopback (one writer, one reader, same process).  Target: at least half of the raw stream.
The room relays a chat message once it is complete (store and forward: the CPIM From is
checked and the CPIM rebuilt first), so with one message in flight the time per message is
at least two TLS hops plus the relay's work, i.e. below half of the raw stream by
construction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.chat_peer import ChatPeer, join_room
from tests.helpers.server import RunningServer, start_server
from tests.msrp_client import Message

TARGET_DELIVERIES = 20_000.0
CONFIG = "[media]\nrtp_timeout = 3600\nprompts = false\n[web]\nport = 0\n"


def _cpim(sender: str, room_uri: str, text: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: <{room_uri}>\r\nDateTime: 2024-01-01T00:00:00+00:00\r\n\r\n"
        f"Content-Type: text/plain\r\n\r\n{text}"
    ).encode()


# -------------------------------------------------------------------------------- chat fan-out


@dataclass(frozen=True)
class ChatJob:
    """What one client process does: its participants join `room` and send `messages` each."""

    host: str
    port: int
    room: str
    users: list[str]
    tls: bool
    messages: int
    rate: float
    expected: int  # bench messages each participant must receive
    profile: str | None  # where to dump the cProfile stats of the process


# per process: latencies (s), first send (None: nothing sent), last receive, received, CPU s
ChatResult = tuple[list[float], float | None, float, int, float]


async def _worker_main(
    job: ChatJob, ready: Queue[int], start: Event, results: Queue[ChatResult]
) -> None:
    messages, rate, expected, profile = job.messages, job.rate, job.expected, job.profile
    peers: list[ChatPeer] = []
    for user in job.users:
        peers.append(
            await join_room(job.host, job.port, job.room, user, tls=job.tls, audio=False,
                            timeout=20)
        )
    ready.put(len(peers))
    # The clients keep every chunk they receive: with the default thresholds the collector
    # would traverse them again and again (half the clients' CPU); collect less often.
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    await asyncio.to_thread(start.wait)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0 = time.process_time()
    t_start = time.monotonic()

    async def sender(peer: ChatPeer, offset: float) -> None:
        await asyncio.sleep(offset)
        for seq in range(messages):
            due = t_start + offset + seq / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"bench {peer.sip.user} {seq} {time.monotonic():.6f}"
            if peer.msrp.closed.is_set():
                return  # failed by the box as too slow: counted as undelivered
            try:
                await peer.msrp.send_message(
                    _cpim(peer.identity, peer.room_uri, text), "message/cpim", wait=False
                )
            except ConnectionError:
                return  # failed by the box as too slow: counted as undelivered

    tasks = [
        asyncio.create_task(sender(p, i / (len(peers) * rate))) for i, p in enumerate(peers)
    ]
    await asyncio.gather(*tasks)

    seen: dict[int, tuple[int, int]] = {}  # id(peer) -> (messages looked at, bench ones)

    def received(peer: ChatPeer) -> int:
        done, count = seen.get(id(peer), (0, 0))
        messages = peer.msrp.messages()
        count += sum(1 for m in messages[done:] if m.body.find(b"\r\n\r\nbench ") >= 0)
        seen[id(peer)] = (len(messages), count)
        return count

    deadline = time.monotonic() + 60
    waiting = list(peers)
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if received(p) < expected]
        if waiting:
            await asyncio.sleep(0.1)
    cpu = time.process_time() - cpu0
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    latencies: list[float] = []
    first_send = None
    last_recv = 0.0
    for peer in peers:
        for m in peer.msrp.messages():
            if not m.text.startswith("bench "):
                continue
            sent_at = float(m.text.rsplit(" ", 1)[1])
            latencies.append(m.at - sent_at)
            first_send = sent_at if first_send is None else min(first_send, sent_at)
            last_recv = max(last_recv, m.at)
    results.put((latencies, first_send, last_recv, sum(received(p) for p in peers), cpu))
    for peer in peers:
        with contextlib.suppress(ConnectionError, OSError):
            await peer.hang_up()


def _worker(
    job: ChatJob, ready: Queue[int], start: Event, results: Queue[ChatResult]
) -> None:
    asyncio.run(_worker_main(job, ready, start, results))


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_chat(
    server: RunningServer, participants: int, procs: int, messages: int, rate: float, tls: bool,
    profile_dir: str | None = None,
) -> dict[str, float]:
    room = "bench"
    ctx = mp.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    results: Queue[ChatResult] = ctx.Queue()
    start = ctx.Event()
    expected = messages * (participants - 1)
    groups = [
        [f"user{i:03d}" for i in range(participants) if i % procs == k] for k in range(procs)
    ]
    workers = [
        ctx.Process(
            target=_worker,
            args=(
                ChatJob(server.host, server.sip_port, room, g, tls, messages, rate, expected,
                        f"{profile_dir}/client{k}.prof" if profile_dir else None),
                ready, start, results,
            ),
        )
        for k, g in enumerate(groups)
    ]
    for w in workers:
        w.start()
    joined = sum(ready.get(timeout=120) for _ in workers)
    assert joined == participants
    time.sleep(0.5)
    server_cpu0 = _cpu_seconds(server.process.pid)
    start.set()
    latencies: list[float] = []
    first_send, last_recv, delivered = float("inf"), 0.0, 0
    client_cpu = 0.0
    server_cpu = 0.0
    for i in range(len(workers)):
        lat, first, last, count, cpu = results.get(timeout=300)
        if i == 0:  # the first worker is done: its peers have all they will get
            server_cpu = _cpu_seconds(server.process.pid) - server_cpu0
        client_cpu += cpu
        latencies += lat
        if first is not None:
            first_send = min(first_send, first)
        last_recv = max(last_recv, last)
        delivered += count
    for w in workers:
        w.join(30)
    latencies.sort()
    elapsed = max(last_recv - first_send, 1e-9)
    return {
        "offered_per_s": participants * rate * (participants - 1),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "offered": participants * messages * (participants - 1),
        "delivered": delivered,
        "deliveries_per_s": delivered / elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "elapsed_s": elapsed,
    }


# ------------------------------------------------------------------------------------- bulk


async def bench_bulk(server: RunningServer, size: int, count: int, tls: bool) -> float:
    sender = await join_room(server.host, server.sip_port, "bulk", "sender", tls=tls, audio=False)
    receiver = await join_room(
        server.host, server.sip_port, "bulk", "receiver", tls=tls, audio=False
    )
    payload = b"y" * size
    try:
        t0 = time.monotonic()
        for i in range(count):
            text = f"bulk{i} ".encode() + payload
            await sender.msrp.send_message(
                _cpim(sender.identity, sender.room_uri, "") + text,
                "message/cpim", chunk_size=64 * 1024, timeout=60,
            )
            await receiver.msrp.wait_for(_starts_with(f"bulk{i} ".encode()), timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        await sender.hang_up()
        await receiver.hang_up()
    return size * count / elapsed


def _starts_with(marker: bytes) -> Callable[[Message], bool]:
    """Whether a message carries `marker` in its first bytes (never scan whole bodies)."""

    def match(message: Message) -> bool:
        return message.body.find(marker, 0, 512) >= 0

    return match


async def raw_tls_throughput(total: int) -> float:
    """One asyncio TLS stream on loopback: bytes/s from the first write to the last read."""
    from tests.msrp_client.client import _client_ssl, _server_certificate

    cert, key = _server_certificate()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while got < total:
            data = await reader.read(256 * 1024)
            if not data:
                break
            got += len(data)
        done.set_result(time.monotonic())
        writer.close()

    srv = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_ssl())
    block = b"z" * (64 * 1024)
    t0 = time.monotonic()
    for _ in range(total // len(block)):
        writer.write(block)
        await writer.drain()
    t1 = await done
    writer.close()
    srv.close()
    return total / (t1 - t0)


# ------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s per participant")
    parser.add_argument("--tcp", action="store_true", help="MSRP over TCP instead of TLS")
    parser.add_argument("--size", type=int, default=6_000_000)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile the server (DIR/server.prof) and the chat clients "
                             "(DIR/client<k>.prof); read them with pstats")
    args = parser.parse_args()
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
        os.environ["SYLKBOX_TEST_PROFILE"] = os.path.abspath(f"{args.profile}/server.prof")
    tls = not args.tcp
    config = CONFIG + ("" if tls else "[msrp]\nport = 0\ntls = false\n")
    rows: list[tuple[str, str, str]] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-msrp-") as tmp:
        server = start_server(Path(tmp), config=config, log_level="info")
        try:
            if not args.skip_chat:
                r = bench_chat(
                    server, args.participants, args.procs, args.messages, args.rate, tls,
                    os.path.abspath(args.profile) if args.profile else None,
                )
                per = max(r["delivered"], 1)
                rows += [
                    ("chat offered deliveries/s", f"{r['offered_per_s']:,.0f}", ""),
                    ("chat deliveries/s", f"{r['deliveries_per_s']:,.0f}",
                     f">= {TARGET_DELIVERIES:,.0f}"),
                    ("chat delivered/offered", f"{r['delivered']:,}/{r['offered']:,}", "all"),
                    ("chat delivery p50 (ms)", f"{r['p50_ms']:.1f}", ""),
                    ("chat delivery p99 (ms)", f"{r['p99_ms']:.1f}", ""),
                    ("chat server CPU (s, us/delivery)",
                     f"{r['server_cpu_s']:.2f}, {1e6 * r['server_cpu_s'] / per:.0f}", ""),
                    ("chat clients CPU (s, us/delivery)",
                     f"{r['client_cpu_s']:.2f}, {1e6 * r['client_cpu_s'] / per:.0f}", ""),
                ]
                failed = [line.rsplit(": ", 1)[-1] for line in server.log_text().splitlines()
                          if "failing the chat stream" in line]
                if failed:
                    reasons = {reason: failed.count(reason) for reason in failed}
                    rows.append(("chat streams failed by the box", str(len(failed)),
                                 f"0 ({reasons})"))
                ok &= r["deliveries_per_s"] >= TARGET_DELIVERIES
                ok &= r["delivered"] == r["offered"]
            if not args.skip_bulk:
                msrp_bps = asyncio.run(bench_bulk(server, args.size, args.count, tls))
                raw_bps = asyncio.run(raw_tls_throughput(256 * 1024 * 1024))
                rows += [
                    ("MSRP relay throughput (MB/s)", f"{msrp_bps / 1e6:.1f}",
                     f">= {raw_bps / 2e6:.1f}"),
                    ("raw asyncio TLS stream (MB/s)", f"{raw_bps / 1e6:.1f}", ""),
                ]
                ok &= msrp_bps >= raw_bps / 2
        finally:
            server.stop()
    mode = "msrps" if tls else "msrp"
    print(f"\nMSRP bench {date.today()} on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}), {mode}, {args.participants} "
          f"participants x {args.messages} msgs at {args.rate}/s, {args.procs} client procs")
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'metric':<{width}}  {'value':>16}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>16}  {target}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
