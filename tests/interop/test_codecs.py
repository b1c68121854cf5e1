"""Wideband and narrowband codecs through the room, against real peers on loopback.

* G.722 (RFC 3551 4.5.2: ``G722/8000`` in SDP, 16 kHz audio): three pjsua2 participants, one of
  them playing a 5.5 kHz tone, which only a wideband path carries end to end (G.722 in, the
  16 kHz room mix, G.722 out). Each recording holds the others' tones and not its own.
* Opus (RFC 7587: ``opus/48000/2``): baresip with only its opus module dials the room and plays
  a two-tone WAV (1.3 kHz and 6.2 kHz); a pjsua2 G.722 participant hears both tones, and
  baresip's own decoded audio (dumped by its ``sndfile`` module) holds the pjsua2 tone.
* PCMA (RFC 3551 4.5.14): sipp offers PCMA only and plays its A-law speech capture
  (``g711a.pcap``, 30 ms packets) into the room; a pjsua2 PCMU participant's recording has the
  same energy envelope as the capture's decoded speech.
"""

from __future__ import annotations

import contextlib
import re
import struct
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from sylkbox.media import g711
from tests.helpers.audio import level_db, read_wav, rms_dbfs, tone_power, write_sine
from tests.helpers.baresip import Baresip, start_baresip
from tests.helpers.pjsua_agent import AgentProcess, spawn_agent
from tests.helpers.server import RunningServer
from tests.helpers.tone_room import assert_mix_minus, run_tone_room
from tests.interop.sipp import start_sipp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- G.722
G722_TONES = {"alice": 440.0, "bob": 1700.0, "carol": 5500.0}  # carol's is above 4 kHz
STAGGER = 2.0
LAST_DURATION = 10.0


def test_g722_three_participants_wideband_mix_minus(
    server: RunningServer, tmp_path: Path
) -> None:
    room = f"sip:wideband@{server.host}:{server.sip_port}"
    result = run_tone_room(
        tmp_path,
        room,
        G722_TONES,
        stagger=STAGGER,
        last_duration=LAST_DURATION,
        options=lambda _name: {"codec": "G722"},
    )
    summaries = result.summaries
    for name, summary in summaries.items():
        assert summary["confirmed"], (name, summary)
        assert summary["codec"] == "G722", (name, summary)
        assert summary["rx_packets"] > 100, (name, summary, server.log_text()[-3000:])

    # the 5.5 kHz tone is among the others: wideband end to end
    print("\n".join(assert_mix_minus(result)))


# --------------------------------------------------------------------------- Opus (baresip)
BARESIP_TONES = (1300.0, 6200.0)
PJSUA_TONE = 440.0


def _write_two_tone_48k(path: Path, freqs: tuple[float, ...], seconds: float) -> Path:
    """Stereo 48 kHz (baresip's aufile wants the codec's rate and channel count)."""
    rate = 48000
    t = np.arange(round(seconds * rate)) / rate
    signal = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs)
    mono = np.round(np.asarray(signal) * 32767).astype("<i2")
    pcm = np.repeat(mono, 2)  # interleaved L R
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def test_opus_from_baresip_is_heard_and_hears_the_room(
    server: RunningServer, tmp_path: Path
) -> None:
    room = f"sip:opusroom@{server.host}:{server.sip_port}"
    tone = _write_two_tone_48k(tmp_path / "baresip_tone.wav", BARESIP_TONES, 60.0)
    pjsua_tone = write_sine(tmp_path / "pjsua_tone.wav", PJSUA_TONE, 5.0, rate=16000)
    heard = tmp_path / "pjsua_heard.wav"
    dumps = tmp_path / "dumps"
    baresip: Baresip | None = None
    agent: AgentProcess | None = None
    try:
        agent = spawn_agent(tmp_path, "pjsua", room, play=pjsua_tone, record=heard,
                            duration=14.0, codec="G722")
        agent.wait_event("media", timeout=10)
        # opus only; `sndfile` dumps what it sends and receives, `sip_trace` the answer
        baresip = start_baresip(tmp_path, tone, codecs=("opus",), dump_dir=dumps,
                                quit_after=60, sip_trace=True)
        baresip.command("dial", room)
        established = baresip.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(8.0)  # audio flows both ways; the recording is analysed afterwards
        baresip.command("hangup")
        closed = baresip.wait_event("CALL_CLOSED", timeout=10)
        summary = agent.finish(timeout=30)
    finally:
        if agent is not None:
            agent.stop()
        if baresip is not None:
            baresip.stop()
    log = baresip.output.read_text(errors="replace")

    # The room answered with Opus (RFC 7587 7: opus/48000/2) and nothing else.
    answers = [m for m in log.split("\x1b[36;1m#") if "SIP/2.0 200 OK" in m and "m=audio" in m]
    assert answers, log[-4000:]
    answer = answers[0]
    payload_types = re.search(r"m=audio \d+ RTP/AVP ([\d ]+)", answer)
    assert payload_types is not None, answer
    opus_pt = re.search(r"a=rtpmap:(\d+) opus/48000/2", answer, re.IGNORECASE)
    assert opus_pt is not None, answer
    assert payload_types.group(1).split()[0] == opus_pt.group(1), answer

    # Room -> pjsua2: baresip's two tones, 6.2 kHz included (Opus wideband, then G.722).
    assert summary["confirmed"] and summary["codec"] == "G722", summary
    skip = established + 1.5 - summary["media_at"]
    window = closed - 0.5 - established - 1.5
    assert window > 4.0, (established, closed)
    levels = {f: level_db(tone_power(heard, f, skip=skip, duration=window))
              for f in (*BARESIP_TONES, PJSUA_TONE)}
    assert min(levels[f] for f in BARESIP_TONES) > -10.0, levels
    assert levels[PJSUA_TONE] < min(levels[f] for f in BARESIP_TONES) - 20.0, levels

    # Room -> baresip: its decoded (received) audio holds the pjsua2 tone, not its own.
    decoded = sorted(dumps.glob("*-dec.wav"))
    assert decoded, (list(dumps.iterdir()), log[-3000:])
    dec_levels = {f: level_db(tone_power(decoded[0], f, skip=1.5))
                  for f in (*BARESIP_TONES, PJSUA_TONE)}
    assert rms_dbfs(decoded[0], skip=1.5) > -40.0, dec_levels
    assert dec_levels[PJSUA_TONE] > -6.0, dec_levels
    assert max(dec_levels[f] for f in BARESIP_TONES) < dec_levels[PJSUA_TONE] - 20.0, dec_levels
    print(f"pjsua heard {levels}; baresip decoded {dec_levels}")


# --------------------------------------------------------------------------- PCMA (sipp pcap)
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
ALONE_PROMPT_SECONDS = 4.0


def _alaw_decode(data: bytes) -> FloatArray:
    """ITU-T G.711 A-law to linear, as floats in [-1, 1] (independent of sylkbox's tables)."""
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    linear = np.where(sign != 0, magnitude, -magnitude)
    return np.asarray(linear / 32768.0, dtype=np.float64)


def _pcap_audio(path: Path) -> FloatArray:
    """The A-law payloads of an Ethernet/IPv4/UDP/RTP capture, in order, decoded at 8 kHz."""
    data = path.read_bytes()
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4 or struct.unpack("<I", data[20:24])[0] != 1:
        raise ValueError(f"{path}: not a little-endian Ethernet pcap")
    offset = 24
    payload = bytearray()
    while offset + 16 <= len(data):
        incl = struct.unpack("<I", data[offset + 8 : offset + 12])[0]
        packet = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ihl = (packet[14] & 0x0F) * 4
        rtp = packet[14 + ihl + 8 :]
        csrc = rtp[0] & 0x0F
        payload += rtp[12 + 4 * csrc :]
    return _alaw_decode(bytes(payload))


def _pcap_as_pcmu(source: Path, target: Path) -> None:
    """Rewrite the A-law capture as a PCMU one (RTP payload type 0, RFC 3551 4.5.14): the same
    speech, transcoded sample by sample through linear PCM; UDP checksums zeroed (IPv4 allows
    it), so sipp can play it into a PCMU call."""
    data = bytearray(source.read_bytes())
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack("<I", data[offset + 8 : offset + 12])[0]
        start = offset + 16
        ihl = (data[start + 14] & 0x0F) * 4
        udp = start + 14 + ihl
        rtp = udp + 8
        csrc = data[rtp] & 0x0F
        payload = rtp + 12 + 4 * csrc
        end = start + incl
        linear = np.round(_alaw_decode(bytes(data[payload:end])) * 32768.0)
        data[payload:end] = g711.ulaw_encode(np.clip(linear, -32768, 32767).astype(np.int16))
        data[rtp + 1] = (data[rtp + 1] & 0x80) | 0  # payload type 0, marker kept
        data[udp + 6 : udp + 8] = b"\x00\x00"
        offset = end
    target.write_bytes(bytes(data))


def _envelope(samples: FloatArray, rate: int, frame_s: float = 0.02) -> FloatArray:
    frame = round(rate * frame_s)
    n = len(samples) // frame
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3)), dtype=np.float64)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_speech_from_sipp_pcap_reaches_a_participant(
    server: RunningServer, tmp_path: Path, codec: str
) -> None:
    """sipp offers only `codec` and plays speech from a capture into the room; a pjsua2
    participant's recording follows the capture's speech envelope."""
    room = f"sip:pcmaroom@{server.host}:{server.sip_port}"
    pcap, pt = PCAP, 8
    scenario = Path(__file__).parent / "scenarios" / "pcma_pcap.xml"
    if codec == "PCMU":
        pcap, pt = tmp_path / "g711u.pcap", 0
        _pcap_as_pcmu(PCAP, pcap)
        text = scenario.read_text().replace(str(PCAP), str(pcap))
        text = text.replace("RTP/AVP 8", "RTP/AVP 0").replace("a=rtpmap:8 PCMA/8000",
                                                             "a=rtpmap:0 PCMU/8000")
        scenario = tmp_path / "pcmu_pcap.xml"
        scenario.write_text(text)
    heard = tmp_path / "pjsua_heard.wav"
    agent: AgentProcess | None = None
    sipp = None
    try:
        agent = spawn_agent(tmp_path, "listener", room, record=heard, duration=18.0,
                            codec="PCMU")
        agent.wait_event("media", timeout=10)
        time.sleep(ALONE_PROMPT_SECONDS)  # the lone joiner's prompt is over before sipp speaks
        sipp = start_sipp(scenario, tmp_path / "sipp",
                          remote=(server.host, server.sip_port), service="pcmaroom",
                          keys={"caller": "sipp"}, duration_ms=9000, timeout=25)
        result = sipp.wait()
        summary = agent.finish(timeout=30)
    finally:
        if sipp is not None:
            with contextlib.suppress(Exception):
                sipp.kill()
        if agent is not None:
            agent.stop()
    assert result.returncode == 0, result.report()
    answer = result.received("SIP/2.0 200")[0]
    assert re.search(rf"a=rtpmap:{pt} {codec}/8000", answer), answer
    assert summary["confirmed"] and summary["codec"] == "PCMU", summary

    reference = _pcap_audio(PCAP)  # the speech as captured (A-law), for both codecs
    rec, rate = read_wav(heard)
    ref_env = _envelope(reference, 8000)
    voiced = np.flatnonzero(ref_env > -45.0)
    ref_env = ref_env[voiced[0] : voiced[-1] + 1]  # the capture without its leading silence
    rec_env = _envelope(rec, rate)
    assert len(rec_env) > len(ref_env), (len(rec_env), len(ref_env))
    # Slide the reference envelope over the recording; the best lag must match closely.
    n = len(ref_env)
    ref_z = (ref_env - ref_env.mean()) / ref_env.std()
    best_corr, best_lag = -1.0, 0
    for lag in range(len(rec_env) - n + 1):
        seg = rec_env[lag : lag + n]
        if seg.std() < 1e-6:
            continue
        corr = float(np.mean(ref_z * (seg - seg.mean()) / seg.std()))
        if corr > best_corr:
            best_corr, best_lag = corr, lag
    start_s = best_lag * 0.02
    loud = rms_dbfs(heard, skip=start_s, duration=n * 0.02)
    print(f"pcap envelope correlation {best_corr:.2f} at {start_s:.2f}s; speech {loud:.1f} dBFS")
    assert best_corr > 0.8, (best_corr, start_s)
    assert loud > -35.0, loud
