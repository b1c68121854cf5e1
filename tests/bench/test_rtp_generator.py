"""bench/rtp_generator.py: RTP header, frame files, timeline decoding, seeded impairment."""

import json
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.rtp_generator import (
    FrameSet,
    decode_timeline,
    make_codec,
    rtp_header,
    run_sender,
)


def test_rtp_header_is_rfc3550_fixed_header() -> None:
    header = rtp_header(9, 0x1_0001, 0x1_0000_0002, 0xDEADBEEF, marker=True)
    assert header == bytes.fromhex("80890001" "00000002" "deadbeef")
    assert rtp_header(0, 5, 160, 1)[:2] == b"\x80\x00"


def test_frame_set_round_trip(tmp_path: Path) -> None:
    pcm = (3000 * np.sin(np.arange(16000) / 5)).astype(np.int16)
    frames = FrameSet.encode("G722", pcm)
    assert len(frames.payloads) == 50 and {len(p) for p in frames.payloads} == {160}
    frames.save(tmp_path / "f.bin")
    assert FrameSet.load(tmp_path / "f.bin") == frames


def _packet(seq: int, ts: int, payload: bytes, pt: int = 0) -> bytes:
    return rtp_header(pt, seq, ts, 7) + payload


def test_decode_timeline_places_packets_by_timestamp() -> None:
    coder = make_codec("PCMU")
    one = coder.encode(np.full(160, 1000, np.int16))
    two = coder.encode(np.full(160, -2000, np.int16))
    # packet 2 (ts +160) lost, packet 3 arrives before packet 1 (reordered)
    packets = [(0.1, _packet(11, 500 + 320, two)), (0.2, _packet(10, 500, one))]
    pcm, marks = decode_timeline(packets, "PCMU")
    assert len(pcm) == 480
    assert abs(int(pcm[0]) - 1000) < 40
    assert not pcm[160:320].any()  # the lost packet is silence
    assert abs(int(pcm[400]) + 2000) < 80
    assert sorted(pos for _, pos in marks) == [0, 320]


@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_sender_impairment_is_deterministic(tmp_path: Path, loss: float) -> None:
    frames = tmp_path / "f.bin"
    FrameSet((b"\xff" * 160,) * 5).save(frames)
    results = []
    for _ in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(1.0)
            spec = {"streams": [{"dest": list(rx.getsockname()), "pt": 0, "ts_step": 160,
                                 "frames": str(frames)}],
                    "duration": 0.4, "seed": 3,
                    "impair": {"loss": loss, "jitter_ms": 10 if loss else 0, "seed": 9}}
            summary = run_sender(json.loads(json.dumps(spec)))
            seqs = []
            for _ in range(summary["sent"]):
                seqs.append(struct.unpack_from("!H", rx.recv(2048), 2)[0])
        results.append((summary["dropped"], sorted(seqs)))
    assert results[0] == results[1]
    dropped, seqs = results[0]
    assert dropped + len(seqs) == 20
    if loss == 0.0:
        assert dropped == 0 and seqs == list(range(seqs[0], seqs[0] + 20))
    else:
        assert dropped > 0
