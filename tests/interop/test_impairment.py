"""Conference audio over an impaired network: loss 5 %, delay 40 ms +- 20 ms, reordering.

The server runs in one network namespace, two pjsua2 participants in another; the router
namespace between them impairs the participants' packets towards the server (netem, or the
userspace netem of tests/helpers/netns.py where the kernel has no ``sch_netem``). So the server's
jitter buffer and loss concealment face ``loss 5% delay 40ms 20ms distribution normal
reorder 25% 50%`` (in netem, a reordered packet is one that skips the delay).

The talker plays a 2-second pattern: a chirp burst (400 -> 3000 Hz, 250 ms) then 1.4 s of
espeak-ng speech. The listener records. Each chirp is located in the recording by normalised
cross-correlation, which gives the one-way delay of that period (up to a constant: the two
agents' media start times are known from their JSON events). Then:

* speech still arrives: the 20 ms energy envelope of each received speech window correlates
  with the source's;
* delay does not grow: the median delay of the last five periods differs from that of the first
  five (after the jitter buffers settle) by less than 60 ms.

Default call: 30 s. ``SYLKBOX_LONG=1`` makes it the issue's 2-minute call (``make test-long``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr  # type: ignore[import-untyped]  # no py.typed; not in the mypy overrides

from tests.helpers.audio import read_wav
from tests.helpers.netns import (
    CLIENT_ADDRESS,
    SERVER_ADDRESS,
    Impairment,
    Topology,
    impaired_topology,
)
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent
from tests.helpers.server import RunningServer, start_server

FloatArray = npt.NDArray[np.float64]

LONG = os.environ.get("SYLKBOX_LONG", "") not in ("", "0")
CALL_SECONDS = 120.0 if LONG else 30.0
CODEC = os.environ.get("SYLKBOX_IMPAIRMENT_CODEC", "G722")  # G722 unless overridden
RATE = 16000
PERIOD = 2.0
CHIRP_SECONDS = 0.25
SPEECH_START = 0.45
SPEECH_SECONDS = 1.4
#: netem: loss 5% delay 40ms 20ms distribution normal reorder 25% 50%
IMPAIRMENT = Impairment(
    loss=0.05, delay_ms=40.0, jitter_ms=20.0, reorder=0.25, reorder_correlation=0.5, seed=7
)
MAX_DELAY_GROWTH = 0.060
SETTLE_PERIODS = 2  # periods skipped at the start (join tones, jitter buffers filling)
EDGE = 5  # periods averaged at each end

pytestmark = [pytest.mark.peer, pytest.mark.timeout(CALL_SECONDS + 90)]

TEXT = (
    "The quick brown fox jumps over the lazy dog. A conference server mixes the voices of "
    "every participant, and each one hears all the others but not himself. Packets are lost, "
    "delayed and reordered on the way, yet the speech must still be understood. Seven hundred "
    "and twenty five people joined the meeting on Tuesday morning at half past nine. "
)


# --------------------------------------------------------------------------- source material
def _chirp() -> FloatArray:
    n = round(CHIRP_SECONDS * RATE)
    t = np.arange(n) / RATE
    f0, f1 = 400.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * CHIRP_SECONDS))
    fade = np.minimum(1.0, np.minimum(t, CHIRP_SECONDS - t) / 0.01)
    return 0.4 * np.sin(phase) * fade


def _speech(workdir: Path, seconds: float) -> FloatArray:
    """espeak-ng speech at RATE, repeated until it lasts `seconds`, peak-normalised to 0.5."""
    raw = workdir / "espeak.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(raw), TEXT], check=True, timeout=60)
    samples, rate = read_wav(raw)
    speech = np.asarray(soxr.resample(samples, rate, RATE, quality="HQ"), dtype=np.float64)
    speech = 0.5 * speech / max(1e-9, float(np.max(np.abs(speech))))
    reps = int(np.ceil(seconds * RATE / len(speech)))
    return np.tile(speech, reps)[: round(seconds * RATE)]


@dataclass(frozen=True)
class Source:
    path: Path
    chirp: FloatArray
    chunks: list[FloatArray]  # the speech chunk of each period


def _write_wav(path: Path, samples: FloatArray) -> None:
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def make_source(workdir: Path, periods: int) -> Source:
    chirp = _chirp()
    speech = _speech(workdir, periods * SPEECH_SECONDS)
    out = np.zeros(round(periods * PERIOD * RATE))
    chunks: list[FloatArray] = []
    chunk_len = round(SPEECH_SECONDS * RATE)
    for k in range(periods):
        base = round(k * PERIOD * RATE)
        out[base : base + len(chirp)] = chirp
        chunk = speech[k * chunk_len : (k + 1) * chunk_len]
        s = base + round(SPEECH_START * RATE)
        out[s : s + len(chunk)] = chunk
        chunks.append(chunk)
    path = workdir / "talker.wav"
    _write_wav(path, out)
    return Source(path, chirp, chunks)


# --------------------------------------------------------------------------- analysis
def _xcorr_normalised(window: FloatArray, template: FloatArray) -> FloatArray:
    """Normalised cross-correlation of `template` at every offset inside `window` (FFT)."""
    n = len(window) + len(template)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(window, size) * np.conj(np.fft.rfft(template, size)), size)
    corr = corr[: len(window) - len(template) + 1]
    energy = np.concatenate(([0.0], np.cumsum(window**2)))
    local = energy[len(template) :] - energy[: len(window) - len(template) + 1]
    denom = np.sqrt(np.maximum(local, 1e-12) * float(np.sum(template**2)))
    return np.asarray(corr / denom, dtype=np.float64)


def _envelope_db(samples: FloatArray, frame: int) -> FloatArray:
    frames = len(samples) // frame
    blocks = samples[: frames * frame].reshape(frames, frame)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3)), dtype=np.float64)  # floor -60 dB


@dataclass(frozen=True)
class PeriodResult:
    index: int
    delay: float | None  # seconds (relative to the media start offset), None if not found
    peak: float
    envelope_corr: float | None  # None when the source chunk is (nearly) silent
    speech_dbfs: float


def analyse(recording: Path, source: Source, offset: float, periods: int) -> list[PeriodResult]:
    """`offset`: where period 0 of the source starts in the recording's timeline (seconds)."""
    rec, rate = read_wav(recording)
    if rate != RATE:
        rec = np.asarray(soxr.resample(rec, rate, RATE, quality="HQ"), dtype=np.float64)
    frame = RATE // 50
    results: list[PeriodResult] = []
    for k in range(periods):
        expected = offset + k * PERIOD
        lo = round((expected - 0.1) * RATE)
        hi = round((expected + 0.9 + CHIRP_SECONDS) * RATE)
        if lo < 0 or hi > len(rec):
            continue
        corr = _xcorr_normalised(rec[lo:hi], source.chirp)
        best = int(np.argmax(corr))
        peak = float(corr[best])
        found = peak > 0.5
        delay = (lo + best) / RATE - expected if found else None
        start = (lo + best if found else round(expected * RATE)) + round(SPEECH_START * RATE)
        chunk = source.chunks[k]
        got = rec[start : start + len(chunk)]
        if len(got) < len(chunk):
            continue
        src_env = _envelope_db(chunk, frame)
        rec_env = _envelope_db(got, frame)
        active = float(np.std(src_env)) > 6.0 and float(np.max(src_env)) > -30.0
        env_corr = float(np.corrcoef(src_env, rec_env)[0, 1]) if active else None
        rms = float(np.sqrt(np.mean(got**2)))
        results.append(PeriodResult(k, delay, peak, env_corr, 20 * np.log10(max(rms, 1e-10))))
    return results


# --------------------------------------------------------------------------- the test
def _start_in_namespaces(topo: Topology, tmp_path: Path) -> RunningServer:
    return start_server(tmp_path, bind=SERVER_ADDRESS, netns=topo.server_ns,
                        media_ports="40000-40199")


def test_speech_survives_loss_jitter_reordering_and_delay_does_not_grow(tmp_path: Path) -> None:
    periods = int((CALL_SECONDS + 6) / PERIOD) + 1
    source = make_source(tmp_path, periods)
    heard = tmp_path / "listener_heard.wav"
    agents: dict[str, AgentProcess] = {}
    server: RunningServer | None = None
    with impaired_topology(IMPAIRMENT, workdir=tmp_path) as topo:
        try:
            server = _start_in_namespaces(topo, tmp_path)
            room = f"sip:impaired@{SERVER_ADDRESS}:{server.sip_port}"
            common = {"codec": CODEC, "bind": CLIENT_ADDRESS, "netns": topo.client_ns}
            agents["listener"] = spawn_agent(
                tmp_path, "listener", room, record=heard, duration=CALL_SECONDS + 2.0,
                answer_timeout=15.0, **common,  # type: ignore[arg-type]
            )
            agents["listener"].wait_event("media", timeout=15)
            agents["talker"] = spawn_agent(
                tmp_path, "talker", room, play=source.path, duration=CALL_SECONDS,
                answer_timeout=15.0, **common,  # type: ignore[arg-type]
            )
            summaries = {
                name: agent.finish(timeout=CALL_SECONDS + 40) for name, agent in agents.items()
            }
        finally:
            for agent in agents.values():
                agent.stop()
            if server is not None:
                code = server.stop()
        topo.stop_impairer()
        stats = topo.impairer_stats()
        mode = topo.mode

    assert server is not None
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert code == 0, log[-4000:]
    for name, summary in summaries.items():
        assert summary["confirmed"], (name, summary)
        assert summary["codec"] == CODEC, (name, summary)
    assert summaries["talker"]["tx_packets"] > CALL_SECONDS * 40, summaries
    if mode == "tun":  # the impairment really happened
        assert stats["received"] > CALL_SECONDS * 40, stats
        assert stats["dropped"] >= 0.5 * IMPAIRMENT.loss * stats["received"], stats
        assert stats["reordered"] >= 0.2 * IMPAIRMENT.reorder * stats["received"], stats

    talker, listener = summaries["talker"], summaries["listener"]
    offset = talker["media_at"] - listener["media_at"]
    played = int((talker["confirmed_at"] + CALL_SECONDS - 1.0 - talker["media_at"]) / PERIOD)
    results = analyse(heard, source, offset, min(periods, played))
    measured = [r for r in results if r.index >= SETTLE_PERIODS]
    delays = [(r.index, r.delay) for r in measured if r.delay is not None]
    table = "\n".join(
        f"  period {r.index:3d}: delay {'-' if r.delay is None else f'{r.delay * 1000:6.1f} ms'}"
        f" peak {r.peak:.2f} env_corr "
        f"{'-' if r.envelope_corr is None else f'{r.envelope_corr:.2f}'}"
        f" speech {r.speech_dbfs:.1f} dBFS"
        for r in results
    )
    report = f"mode={mode} impairer={stats} call={CALL_SECONDS}s\n{table}"
    print(report)

    assert len(measured) >= int(CALL_SECONDS / PERIOD) - SETTLE_PERIODS - 3, report
    # The chirps are found in (nearly) every period: audio keeps flowing.
    assert len(delays) >= 0.9 * len(measured), report
    # Speech still arrives: loud enough and shaped like the source.
    speech = [r for r in measured if r.envelope_corr is not None]
    assert len(speech) >= 0.5 * len(measured), report
    assert statistics.median(r.envelope_corr or 0.0 for r in speech) > 0.75, report
    assert sum(r.envelope_corr or 0.0 for r in speech) / len(speech) > 0.6, report
    assert sum(r.speech_dbfs > -40.0 for r in speech) >= 0.9 * len(speech), report
    # Delay does not grow: the last periods are as late as the first ones.
    first = statistics.median(d for _, d in delays[:EDGE])
    last = statistics.median(d for _, d in delays[-EDGE:])
    assert abs(last - first) < MAX_DELAY_GROWTH, (
        f"delay went from {first * 1000:.1f} ms to {last * 1000:.1f} ms\n{report}"
    )
