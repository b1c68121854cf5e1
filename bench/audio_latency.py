"""Audio latency: the one-way delay the room adds between a talker and a listener.

    python bench/audio_latency.py [--codec PCMU|G722|OPUS] [--bursts 50] [--period 0.5]

The real media worker runs a room with two streams, driven over its control channel (no
SIP). A sender process (bench/rtp_generator.py) sends silence and then a 1 kHz tone on one
stream, repeatedly (one onset every ``--period`` seconds), and logs the ``time.monotonic()``
at which each packet left. A recorder process receives what the room sends to the other
stream, with arrival times on the same clock (CLOCK_MONOTONIC is system wide, and all of it
runs on loopback). For each burst the onset is found in the decoded audio: the first
sample above ``--threshold`` after silence; its time is the arrival time of its packet plus
its offset in that packet. The added delay is that time minus the send time of the packet
that started the tone (both are the time of the first sample of a 20 ms packet, so the
packetisation time common to any path is not counted).

It includes the worker's receive path, jitter buffer (its playout delay), resampling,
mixing, encoding and the wait for the next mixer tick (0 to 20 ms, 10 ms on average, as the
sender's phase is not aligned with the mixer's). Prints p50/p95/max over the bursts; the
target is <= 40 ms p50. Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.audio_capacity import Worker
from bench.rtp_generator import CODECS, FrameSet, load_recording, make_codec
from sylkbox.media.control import AddStream, Direction, StreamAdded
from tests.helpers.server import free_port

ROOT = Path(__file__).resolve().parent.parent
TARGET_P50_MS = 40.0


def _burst_signal(codec: str, period_frames: int, tone_frames: int) -> np.ndarray:
    rate = CODECS[codec].sample_rate
    n = round(rate * 0.02)
    t = np.arange(tone_frames * n) / rate
    tone = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    one = np.concatenate((np.zeros((period_frames - tone_frames) * n, np.int16), tone))
    return one


def _onsets(packets: list[tuple[float, bytes]], codec: str, threshold: float,
            min_gap: float) -> list[float]:
    """Times (arrival of the packet + offset inside it) of every tone onset."""
    coder = make_codec(codec)
    rate = coder.info.sample_rate
    packets = sorted(packets, key=lambda p: p[0])
    out: list[float] = []
    quiet_since: float | None = 0.0
    for arrival, data in packets:
        if len(data) < 12 or ((data[1] & 0x7F) >= 72 and (data[1] & 0x7F) <= 76):
            continue
        cc = data[0] & 0x0F
        pcm = coder.decode(data[12 + 4 * cc :]).astype(np.float64)
        loud = np.flatnonzero(np.abs(pcm) > threshold)
        if len(loud) == 0:
            if quiet_since is None:
                quiet_since = arrival
            continue
        if quiet_since is not None and arrival - quiet_since >= min_gap:
            out.append(arrival + loud[0] / rate)
        quiet_since = None
    return out


def run(args: argparse.Namespace, workdir: Path) -> list[float]:
    info = CODECS[args.codec]
    period_frames = round(args.period / 0.02)
    tone_frames = period_frames // 2
    signal = _burst_signal(args.codec, period_frames, tone_frames)
    frames = workdir / f"bursts.{args.codec}"
    FrameSet.encode(args.codec, signal).save(frames)
    sender_port, recorder_port = free_port(), free_port()
    worker = Worker(None, f"{args.port_base}-{args.port_base + 20}")
    try:
        ports = {}
        for sid, remote in (("talker", sender_port), ("listener", recorder_port)):
            worker.send(AddStream(
                room_id="latency", stream_id=sid, local_host="127.0.0.1", local_port=None,
                remote_host="127.0.0.1", remote_port=remote, payload_type=info.payload_type,
                codec=info.name, clock_rate=info.clock_rate, telephone_event_pt=None,
                direction=Direction.SENDRECV,
            ))
            event = worker.wait_for(lambda e, sid=sid: getattr(e, "stream_id", None) == sid)
            if not isinstance(event, StreamAdded):
                raise RuntimeError(f"worker refused {info.name}: {event}")
            ports[sid] = event.local_port
        duration = args.bursts * args.period + 0.2
        rec_spec = workdir / "rec.json"
        rec_out = workdir / "rec.npz"
        rec_spec.write_text(json.dumps({"local": [["127.0.0.1", recorder_port]],
                                        "duration": duration + 1.5, "out": str(rec_out)}))
        send_log = workdir / "send_log.npy"
        start = time.monotonic() + 0.7
        snd_spec = workdir / "send.json"
        snd_spec.write_text(json.dumps({
            "streams": [{"dest": ["127.0.0.1", ports["talker"]], "local": ["127.0.0.1",
                         sender_port], "pt": info.payload_type, "ts_step": info.ts_step,
                         "frames": str(frames)}],
            "start": start, "duration": duration, "send_log": str(send_log),
        }))
        gen = [sys.executable, str(ROOT / "bench" / "rtp_generator.py")]
        recorder = subprocess.Popen([*gen, "record", "--spec", str(rec_spec)],
                                    stdout=subprocess.PIPE, cwd=ROOT)
        assert recorder.stdout is not None
        recorder.stdout.readline()  # ready
        sender = subprocess.Popen([*gen, "send", "--spec", str(snd_spec)],
                                  stdout=subprocess.DEVNULL, cwd=ROOT)
        sender.wait(duration + 15)
        recorder.wait(duration + 15)
    finally:
        worker.close()
    sent = np.load(send_log)
    onset_ticks = range(period_frames - tone_frames, len(sent), period_frames)
    sends = [float(sent[k]) for k in onset_ticks if not np.isnan(sent[k])]
    heard = _onsets(load_recording(rec_out).of(0), args.codec, args.threshold,
                    min_gap=0.5 * (period_frames - tone_frames) * 0.02)
    delays = []
    for t_send in sends:
        match = [t for t in heard if 0 <= t - t_send < args.period * 0.9]
        if match:
            delays.append((match[0] - t_send) * 1000)
    return delays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--codec", default="PCMU", type=str.upper, choices=sorted(CODECS))
    parser.add_argument("--bursts", type=int, default=50, help="tone onsets measured")
    parser.add_argument("--period", type=float, default=0.5, help="seconds between onsets")
    parser.add_argument("--threshold", type=float, default=2000.0,
                        help="sample magnitude that counts as the tone (tone peak 8000)")
    parser.add_argument("--port-base", type=int, default=43900, help="worker RTP ports")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sylkbox-latency-"))
    print(f"audio latency: codec {args.codec}, {args.bursts} bursts every {args.period:g} s, "
          "real media worker on loopback", flush=True)
    delays = run(args, workdir)
    print(f"{'codec':<6} {'bursts':>6} {'found':>6} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8} "
          f"{'max ms':>8}")
    if not delays:
        print(f"{args.codec:<6} {args.bursts:>6} {0:>6}  no onset detected at the listener")
        return 0
    q = np.percentile(delays, [50, 95])
    print(f"{args.codec:<6} {args.bursts:>6} {len(delays):>6} {q[0]:>8.1f} {q[1]:>8.1f} "
          f"{min(delays):>8.1f} {max(delays):>8.1f}")
    verdict = "meets" if statistics.median(delays) <= TARGET_P50_MS else "misses"
    print(f"target p50 <= {TARGET_P50_MS:g} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
