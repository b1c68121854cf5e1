"""Audio quality: PESQ of speech through a sylkbox room, next to a pjsua2 conference bridge.

    python bench/audio_quality.py [--codecs G722,PCMU] [--targets sylkbox,pjsua]
                                  [--loss 0.03] [--jitter-ms 20] [--seed 1]

Speech (espeak-ng, about 9 s, resampled to 16 kHz) is sent by participant A and recorded by
participant B. Both are SIP user agents written for this bench (tests/helpers/sipclient.py
for signalling, bench/rtp_generator.py processes for RTP), offering one codec, so the only
thing that differs between the two targets is the room:

* ``sylkbox``: a real sylkbox server (tests/helpers/server.py), both calling one room URI;
* ``pjsua``: bench/pjsua_bridge.py, one pjsua2 process that answers both calls and connects
  their audio through pjsua2's conference bridge (pjsip's jitter buffer and PLC).

Each codec runs clean and impaired: A's sender drops ``--loss`` of its packets and delays each
by a uniform 0..2x``--jitter-ms`` (mean ``--jitter-ms``), which reorders them; the RNG is
seeded, so both targets get exactly the same losses and delays. (netem in a network namespace
would be nicer, but the sch_netem qdisc is not available on every kernel this runs on.) The
room-to-B leg is clean loopback.

B's packets are decoded onto their RTP timestamp axis, aligned to the reference speech by
cross-correlation, and scored with PESQ (ITU-T P.862, ``pesq`` package): wideband (P.862.2,
16 kHz) for G.722 and Opus, narrowband at 8 kHz for G.711. Prints MOS-LQO per target side by
side; the target is sylkbox >= the pjsua2 reference. Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]
from pesq import pesq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rtp_generator import (
    CODECS,
    FrameSet,
    decode_timeline,
    load_recording,
    make_codec,
)
from sylkbox.sip.message import Response
from tests.helpers.server import free_port, start_server
from tests.helpers.sipclient import UdpSipClient

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "The conference room mixes every voice at sixteen kilohertz. "
    "Please speak clearly: the meeting starts at nine o'clock sharp, "
    "and we will review the quarterly figures together."
)
LEAD_S = 1.5
TAIL_S = 1.0
FloatArray = npt.NDArray[np.float64]


def make_speech(workdir: Path) -> FloatArray:
    """espeak-ng speech at 16 kHz, float in [-1, 1], peak at -6 dBFS."""
    wav = workdir / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(wav), TEXT], check=True)
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    speech = soxr.resample(pcm / 32768.0, rate, 16000)
    return np.asarray(0.5 * speech / np.max(np.abs(speech)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    loss: float
    jitter_ms: float


@dataclass(frozen=True, slots=True)
class Score:
    target: str
    codec: str
    condition: str
    mos: float | None
    note: str = ""


def _offer(codec: str, port: int) -> str:
    info = CODECS[codec]
    channels = "/2" if codec == "OPUS" else ""
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {info.payload_type} 101\r\n"
        f"a=rtpmap:{info.payload_type} {info.name}/{info.clock_rate}{channels}\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )


@dataclass
class _Leg:
    client: UdpSipClient
    uri: str
    ok: Response
    remote: tuple[str, int]

    def bye(self) -> None:
        self.client.request("BYE", self.uri, call_id=self.ok.call_id,
                            to=self.ok.headers.get("To") or "", cseq=2,
                            from_tag=self.ok.from_.tag or "ft")
        with contextlib.suppress(TimeoutError, OSError):
            self.client.wait_for(lambda m: isinstance(m, Response) and m.cseq.method == "BYE",
                                 timeout=2.0)
        self.client.close()


def _call(server: tuple[str, int], uri: str, codec: str, rtp_port: int, user: str) -> _Leg:
    client = UdpSipClient(server, user=user)
    client.request("INVITE", uri, body=_offer(codec, rtp_port), content_type="application/sdp",
                   from_tag=f"{user}-tag")
    ok = client.wait_for(lambda m: isinstance(m, Response) and m.status >= 200, timeout=10.0)
    assert isinstance(ok, Response)
    if ok.status != 200:
        client.close()
        raise RuntimeError(f"{uri} answered {ok.status} {ok.reason}")
    client.ack(uri, ok)
    sdp = ok.body.decode()
    port = re.search(r"^m=audio (\d+) ", sdp, re.M)
    host = re.search(r"^c=IN IP[46] (\S+)", sdp, re.M)
    rtpmap = re.search(r"^a=rtpmap:\d+ ([^/\s]+)/", sdp, re.M)
    if not port or not host or int(port.group(1)) == 0:
        raise RuntimeError(f"no audio in the answer:\n{sdp}")
    if rtpmap and rtpmap.group(1).upper() != CODECS[codec].name.upper():
        raise RuntimeError(f"answer chose {rtpmap.group(1)} instead of {codec}")
    return _Leg(client, uri, ok, (host.group(1), int(port.group(1))))


def _through(target: str, codec: str, cond: Condition, frames: Path, duration: float,
             workdir: Path, args: argparse.Namespace) -> Path:
    """Run one call pair through ``target``; returns B's recording (.npz)."""
    run = workdir / f"{target}-{codec}-{cond.name}"
    run.mkdir()
    proc: subprocess.Popen[bytes] | None = None
    server = None
    if target == "sylkbox":
        # [media] keys: join tone and the lone-joiner prompt would overlap the speech
        config = "" if args.prompts else 'prompts = false\nalone = "silence"\n'
        server = start_server(run, log_level="info", config=config)
        sip = (server.host, server.sip_port)
        uri = f"sip:quality@127.0.0.1:{server.sip_port}"
    else:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "pjsua_bridge.py"), "--port", str(port),
             "--codec", codec, "--rtp-port", str(args.pjsua_rtp_port)],
            stdout=subprocess.PIPE, stderr=(run / "pjsua.log").open("wb"), cwd=ROOT,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            proc.kill()
            proc.wait(5)
            raise RuntimeError("pjsua_bridge did not start")
        sip = ("127.0.0.1", port)
        uri = f"sip:bridge@127.0.0.1:{port}"
    gen = [sys.executable, str(ROOT / "bench" / "rtp_generator.py")]
    a_port, b_port = free_port(), free_port()
    rec = run / "b.npz"
    (run / "rec.json").write_text(json.dumps(
        {"local": [["127.0.0.1", b_port]], "duration": duration + 2.5, "out": str(rec)}))
    recorder = subprocess.Popen([*gen, "record", "--spec", str(run / "rec.json")],
                                stdout=subprocess.PIPE, cwd=ROOT)
    legs: list[_Leg] = []
    try:
        assert recorder.stdout is not None
        recorder.stdout.readline()
        legs.append(_call(sip, uri, codec, a_port, "alice"))
        legs.append(_call(sip, uri, codec, b_port, "bob"))
        info = CODECS[codec]
        (run / "send.json").write_text(json.dumps({
            "streams": [{"dest": list(legs[0].remote), "local": ["127.0.0.1", a_port],
                         "pt": info.payload_type, "ts_step": info.ts_step,
                         "frames": str(frames), "loop": False}],
            "start": time.monotonic() + 0.3, "duration": duration,
            "impair": {"loss": cond.loss, "jitter_ms": cond.jitter_ms, "seed": args.seed},
        }))
        subprocess.run([*gen, "send", "--spec", str(run / "send.json")], check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT, timeout=duration + 20)
        recorder.wait(duration + 20)
    finally:
        for leg in legs:
            leg.bye()
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait(5)
        if server is not None:
            server.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    return rec


def _align(reference: FloatArray, recorded: FloatArray) -> FloatArray | None:
    """The part of ``recorded`` that best matches ``reference`` (FFT cross-correlation)."""
    if len(recorded) < len(reference) // 2:
        return None
    n = 1 << int(np.ceil(np.log2(len(recorded) + len(reference))))
    corr = np.fft.irfft(np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(corr[: len(recorded)]))
    out = np.zeros(len(reference))
    seg = recorded[lag : lag + len(reference)]
    out[: len(seg)] = seg
    return out


def score(target: str, codec: str, cond: Condition, speech16: FloatArray, workdir: Path,
          args: argparse.Namespace) -> Score:
    info = CODECS[codec]
    rate = info.sample_rate
    reference = speech16 if rate == 16000 else soxr.resample(speech16, 16000, rate)
    signal = np.concatenate((np.zeros(int(LEAD_S * rate)), reference, np.zeros(int(TAIL_S * rate))))
    frames = workdir / f"speech.{codec}"
    if not frames.exists():
        FrameSet.encode(codec, np.round(signal * 32767).astype(np.int16)).save(frames)
    duration = len(signal) / rate
    try:
        rec = _through(target, codec, cond, frames, duration, workdir, args)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return Score(target, codec, cond.name, None, str(exc).splitlines()[0][:60])
    pcm, _ = decode_timeline(load_recording(rec).of(0), codec)
    if len(pcm) == 0:
        return Score(target, codec, cond.name, None, "nothing received")
    degraded = _align(reference, pcm.astype(np.float64) / 32768.0)
    if degraded is None:
        return Score(target, codec, cond.name, None, "recording too short")
    mode = "wb" if rate == 16000 else "nb"
    mos = float(pesq(rate, reference.astype(np.float32), degraded.astype(np.float32), mode))
    return Score(target, codec, cond.name, mos, f"PESQ-{mode.upper()}")


def codec_only(codec: str, speech16: FloatArray) -> float:
    """PESQ of the speech through the codec alone (encode, decode): the ceiling of any room."""
    rate = CODECS[codec].sample_rate
    reference = speech16 if rate == 16000 else soxr.resample(speech16, 16000, rate)
    frames = FrameSet.encode(codec, np.round(reference * 32767).astype(np.int16))
    coder = make_codec(codec)
    decoded = np.concatenate([coder.decode(p) for p in frames.payloads]) / 32768.0
    degraded = _align(reference, decoded)
    assert degraded is not None
    mode = "wb" if rate == 16000 else "nb"
    return float(pesq(rate, reference.astype(np.float32), degraded.astype(np.float32), mode))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--codecs", default="G722,PCMU",
                        help="comma-separated: G722, PCMU, PCMA (OPUS: sylkbox only)")
    parser.add_argument("--targets", default="sylkbox,pjsua")
    parser.add_argument("--loss", type=float, default=0.03, help="impaired: packet loss ratio")
    parser.add_argument("--jitter-ms", type=float, default=20.0, help="impaired: mean jitter")
    parser.add_argument("--seed", type=int, default=1, help="impairment RNG seed")
    parser.add_argument("--pjsua-rtp-port", type=int, default=41000)
    parser.add_argument("--keep", type=Path, help="keep recordings and logs here")
    parser.add_argument("--prompts", action="store_true",
                        help="leave sylkbox's join tone and lone-joiner prompt on")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="sylkbox-quality-"))
    workdir.mkdir(parents=True, exist_ok=True)
    speech = make_speech(workdir)
    conditions = (
        Condition("clean", 0.0, 0.0),
        Condition(f"{args.loss:.0%} loss+{args.jitter_ms:g}ms jitter", args.loss, args.jitter_ms),
    )
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    codecs = [c.strip().upper() for c in args.codecs.split(",") if c.strip()]
    print(f"audio quality: {len(speech) / 16000:.1f} s of espeak-ng speech, A -> room -> B, "
          f"PESQ MOS-LQO (higher is better); work dir {workdir}", flush=True)
    header = (f"{'codec':<6} {'condition':<26} {'codec only':>10}"
              + "".join(f" {t:>10}" for t in targets))
    print(header + "  verdict")
    for codec in codecs:
        ceiling = codec_only(codec, speech)
        for cond in conditions:
            scores = [score(t, codec, cond, speech, workdir, args)
                      if not (t == "pjsua" and codec == "OPUS")
                      else Score(t, codec, cond.name, None, "no Opus in pjsua2")
                      for t in targets]
            cells = "".join(f" {s.mos:>10.2f}" if s.mos is not None else f" {'n/a':>10}"
                            for s in scores)
            by = {s.target: s for s in scores}
            verdict = ""
            ours, ref = by.get("sylkbox"), by.get("pjsua")
            if ours and ref and ours.mos is not None and ref.mos is not None:
                verdict = "ours >= ref" if ours.mos >= ref.mos - 0.005 else "ours < ref"
            notes = "; ".join(f"{s.target}: {s.note}" for s in scores
                              if s.mos is None and s.note)
            tail = f"  {notes}" if notes else ""
            print(f"{codec:<6} {cond.name:<26} {ceiling:>10.2f}{cells}  {verdict}{tail}",
                  flush=True)
    print("PESQ: wideband (P.862.2) at 16 kHz for G.722/Opus, narrowband (P.862) at 8 kHz for "
          "G.711; 'codec only' is encode+decode without any network or room: the ceiling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
