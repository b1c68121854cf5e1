"""Tests for sylkbox/media/srtp.py (RFC 3711 via libsrtp), SrtpParams on the control channel,
and the real worker with SRTP and plain streams in one room (peers use pylibsrtp directly)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import cast

import numpy as np
import pylibsrtp
import pytest

from sylkbox.media import g711
from sylkbox.media.control import (
    AddStream,
    ControlError,
    Direction,
    SrtpParams,
    UpdateStream,
    from_json,
    to_json,
)
from sylkbox.media.rtp import RtpPacket
from sylkbox.media.srtp import SrtpContext, SrtpError
from sylkbox.media.supervisor import MediaSupervisor
from sylkbox.sdp.crypto import new_inline_key
from tests.media.audio import band_level, tone

HOST = "127.0.0.1"
S80, S32 = "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"
RTCP_RR = bytes.fromhex("81c90007") + bytes(28)  # RR with one report block (RFC 3550 6.4.2)


def rtp(seq: int, payload: bytes = b"\xff" * 160, ssrc: int = 0x1234) -> bytes:
    return RtpPacket(
        payload_type=0, sequence_number=seq, timestamp=160 * seq, ssrc=ssrc, payload=payload
    ).serialize()


def pair(suite: str = S80) -> tuple[SrtpContext, SrtpContext]:
    """Two ends keyed against each other (a's local key is b's remote key)."""
    k1, k2 = new_inline_key(), new_inline_key()
    return (
        SrtpContext(SrtpParams(suite=suite, local_key=k1, remote_key=k2)),
        SrtpContext(SrtpParams(suite=suite, local_key=k2, remote_key=k1)),
    )


# -- SrtpContext ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("suite", "tag"), [(S80, 10), (S32, 4)])
def test_round_trip_and_tag_length(suite: str, tag: int) -> None:
    a, b = pair(suite)
    for seq in range(5):
        plain = rtp(seq)
        protected = a.protect_rtp(plain)
        assert len(protected) == len(plain) + tag  # RFC 4568 6.2: 80- or 32-bit auth tag
        assert protected[:12] == plain[:12]  # the header stays clear (RFC 3711 3.1)
        assert protected[12:172] != plain[12:]  # the payload is encrypted
        assert b.unprotect_rtp(protected) == plain
    report = a.protect_rtcp(RTCP_RR)
    assert len(report) == len(RTCP_RR) + 4 + 10  # E+index, 80-bit tag for both suites
    assert b.unprotect_rtcp(report) == RTCP_RR
    assert b.rx_failures == 0


def test_tamper_and_wrong_key_and_replay_are_dropped() -> None:
    a, b = pair()
    protected = bytearray(a.protect_rtp(rtp(1)))
    protected[20] ^= 0x01  # one payload bit
    with pytest.raises(SrtpError, match="unprotect"):
        b.unprotect_rtp(bytes(protected))
    protected[20] ^= 0x01
    good = bytes(protected)
    assert b.unprotect_rtp(good) == rtp(1)
    with pytest.raises(SrtpError):
        b.unprotect_rtp(good)  # replayed (RFC 3711 3.3.2)
    stranger, _ = pair()
    with pytest.raises(SrtpError):
        b.unprotect_rtp(stranger.protect_rtp(rtp(2)))
    with pytest.raises(SrtpError):
        b.unprotect_rtp(rtp(3))  # plain RTP on an SRTP stream
    with pytest.raises(SrtpError):
        b.unprotect_rtcp(RTCP_RR + bytes(14))
    assert b.rx_failures == 5


def test_ssrc_change_is_followed() -> None:
    a, b = pair()
    assert b.unprotect_rtp(a.protect_rtp(rtp(1, ssrc=1))) == rtp(1, ssrc=1)
    assert b.unprotect_rtp(a.protect_rtp(rtp(9000, ssrc=2))) == rtp(9000, ssrc=2)


def test_rekey_keeps_unchanged_directions() -> None:
    a, b = pair()
    for seq in range(3):
        b.unprotect_rtp(a.protect_rtp(rtp(seq)))
    replay = a.protect_rtp(rtp(3))
    assert b.unprotect_rtp(replay) == rtp(3)
    b.rekey(b.params)  # same keys: the replay state survives
    with pytest.raises(SrtpError):
        b.unprotect_rtp(replay)
    new_key = new_inline_key()
    a.rekey(replace(a.params, local_key=new_key))
    b.rekey(replace(b.params, remote_key=new_key))
    assert b.unprotect_rtp(a.protect_rtp(rtp(4))) == rtp(4)
    # b's own sending key did not change: a still reads it
    assert a.unprotect_rtp(b.protect_rtp(rtp(1))) == rtp(1)


def test_params_validation_and_secrecy() -> None:
    key = new_inline_key()
    params = SrtpParams(suite=S32, local_key=key, remote_key=key)
    assert key not in repr(params) and "<hidden>" in repr(params)
    assert key not in repr(SrtpContext(params))
    with pytest.raises(ValueError, match="unsupported SRTP suite"):
        SrtpParams(suite="AEAD_AES_128_GCM", local_key=key, remote_key=key)
    with pytest.raises(ValueError, match="local_key must be 30 bytes") as info:
        SrtpParams(suite=S80, local_key=key[:-4], remote_key=key)
    assert key[:-4] not in str(info.value)


def test_control_json_round_trip_hides_keys_in_repr() -> None:
    k1, k2 = new_inline_key(), new_inline_key()
    srtp = SrtpParams(suite=S80, local_key=k1, remote_key=k2)
    add = AddStream(
        room_id="r", stream_id="s", local_host=HOST, local_port=None, remote_host=HOST,
        remote_port=4000, payload_type=0, codec="PCMU", clock_rate=8000,
        telephone_event_pt=None, direction=Direction.SENDRECV, srtp=srtp,
    )
    assert from_json(to_json(add)) == add
    assert k1 not in repr(add) and k2 not in repr(add)
    update = UpdateStream(
        stream_id="s", remote_host=HOST, remote_port=4000, payload_type=0, codec="PCMU",
        clock_rate=8000, telephone_event_pt=None, direction=Direction.SENDRECV, srtp=srtp,
    )
    assert from_json(to_json(update)) == update
    plain = replace(update, srtp=None)
    assert from_json(to_json(plain)) == plain
    with pytest.raises(ControlError) as info:
        from_json(to_json(add).replace(k1, k1[:-4]))
    assert k1[:-4] not in str(info.value)


# -- the real worker: two SRTP streams and one plain stream in one room --------------------------

TONES = {"alice": 400.0, "bob": 1100.0, "carol": 2300.0}
INTRUDER_TONE = 3100.0


def port_range() -> tuple[int, int]:
    base = 42000 + (os.getpid() % 300) * 40
    return base, base + 39


class Peer(asyncio.DatagramProtocol):
    """A test RTP endpoint, optionally SRTP: ``tx``/``rx`` are pylibsrtp sessions keyed with
    the peer's own key (the worker's remote_key) and the worker's local_key."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.tx: pylibsrtp.Session | None = None
        self.rx: pylibsrtp.Session | None = None
        self.params: SrtpParams | None = None

    def key(self, suite: str) -> None:
        self.params = SrtpParams(suite=suite, local_key=new_inline_key(),
                                 remote_key=new_inline_key())
        self._sessions()

    def _sessions(self) -> None:
        assert self.params is not None
        profile = {S80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
                   S32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}[self.params.suite]

        def session(key: str, kind: int) -> pylibsrtp.Session:
            return pylibsrtp.Session(pylibsrtp.Policy(
                key=base64.b64decode(key), ssrc_type=kind, srtp_profile=profile))

        self.tx = session(self.params.remote_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.rx = session(self.params.local_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.raw.append(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, packet: bytes, port: int, *, session: pylibsrtp.Session | None = None) -> None:
        assert self.transport is not None
        session = session or self.tx
        self.transport.sendto(session.protect(packet) if session else packet, (HOST, port))

    def packets(self) -> list[RtpPacket]:
        out = []
        for data in self.raw:
            out.append(RtpPacket.parse(self.rx.unprotect(data) if self.rx else data))
        return out


async def open_peer() -> Peer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        Peer, local_addr=(HOST, 0))
    return peer


def add_command(name: str, peer: Peer) -> AddStream:
    host, port = peer.address
    return AddStream(
        room_id="room", stream_id=name, local_host=HOST, local_port=None, remote_host=host,
        remote_port=port, payload_type=0, codec="PCMU", clock_rate=8000, telephone_event_pt=None,
        direction=Direction.SENDRECV, srtp=peer.params,
    )


async def exchange_tones(peers: dict[str, Peer], ports: dict[str, int], *, base: int,
                         intruder: pylibsrtp.Session | None = None) -> None:
    """Every peer sends its PCMU tone for 1.2 s from sequence number ``base`` (SRTP refuses to
    send or accept an index twice); ``intruder`` also injects a 3.1 kHz tone into alice's
    stream, protected with a key the worker does not know."""
    loop = asyncio.get_running_loop()
    for peer in peers.values():
        peer.raw.clear()
    start = loop.time()
    for i in range(60):
        for n, (name, peer) in enumerate(peers.items()):
            payload = g711.ulaw_encode(tone(TONES[name], 8000, 160, start=160 * i))
            peer.send(rtp(base + i, payload, ssrc=1000 + n), ports[name])
        if intruder is not None:
            payload = g711.ulaw_encode(tone(INTRUDER_TONE, 8000, 160, start=160 * i))
            peers["alice"].send(rtp(30000 + i, payload, ssrc=66), ports["alice"],
                                session=intruder)
        await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - loop.time()))
    await asyncio.sleep(0.1)


def heard(peer: Peer) -> np.ndarray:
    packets = peer.packets()[20:]
    assert len(packets) >= 30, len(packets)
    return g711.ulaw_decode(b"".join(p.payload for p in packets))


def assert_mix_minus(peers: dict[str, Peer]) -> dict[str, dict[str, float]]:
    report = {}
    for name, peer in peers.items():
        audio = heard(peer)
        levels = {o: band_level(audio, 8000, f) for o, f in {**TONES, "x": INTRUDER_TONE}.items()}
        others = [levels[o] for o in TONES if o != name]
        assert min(others) > 500, (name, levels)
        assert levels[name] < 0.02 * min(others), (name, levels)
        report[name] = levels
    return report


@pytest.fixture
async def supervisor() -> AsyncIterator[MediaSupervisor]:
    sup = MediaSupervisor(port_range(), rtp_timeout=30.0, log_level="WARNING")
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


async def test_srtp_and_plain_streams_share_a_room(supervisor: MediaSupervisor) -> None:
    peers = {name: await open_peer() for name in TONES}
    peers["alice"].key(S80)
    peers["bob"].key(S32)  # carol stays plain RTP
    try:
        ports = {n: await supervisor.add_stream(add_command(n, p)) for n, p in peers.items()}
        stranger = Peer()
        stranger.key(S80)
        assert stranger.tx is not None
        await exchange_tones(peers, ports, base=0, intruder=stranger.tx)
        report = assert_mix_minus(peers)
        # the packets with the wrong key were dropped: nobody hears the intruder's tone
        for name in ("bob", "carol"):
            assert report[name]["x"] < 0.02 * report[name]["alice"], report
        # what the worker sent to SRTP peers really is SRTP (auth tag; not plain PCMU)
        for name, tag in (("alice", 10), ("bob", 4)):
            assert all(len(d) == 12 + 160 + tag for d in peers[name].raw)
            with pytest.raises(pylibsrtp.Error):
                for data in peers[name].raw[:3]:  # a session with another key rejects them
                    stranger.rx.unprotect(data)  # type: ignore[union-attr]
        assert all(len(d) == 12 + 160 for d in peers["carol"].raw)

        # re-INVITE with a new key from bob: the worker follows, alice's keys unchanged
        bob = peers["bob"]
        assert bob.params is not None
        bob.params = replace(bob.params, remote_key=new_inline_key())
        bob._sessions()
        host, port = bob.address
        await supervisor.update_stream(UpdateStream(
            stream_id="bob", remote_host=host, remote_port=port, payload_type=0, codec="PCMU",
            clock_rate=8000, telephone_event_pt=None, direction=Direction.SENDRECV,
            srtp=bob.params))
        assert supervisor.streams["bob"].srtp == bob.params  # kept for worker restarts
        await exchange_tones(peers, ports, base=100)
        assert_mix_minus(peers)

        # a re-negotiation to plain RTP turns SRTP off for that stream
        await supervisor.update_stream(UpdateStream(
            stream_id="bob", remote_host=host, remote_port=port, payload_type=0, codec="PCMU",
            clock_rate=8000, telephone_event_pt=None, direction=Direction.SENDRECV, srtp=None))
        bob.params = bob.tx = bob.rx = None
        await exchange_tones(peers, ports, base=200)
        assert_mix_minus(peers)
        assert all(len(d) == 12 + 160 for d in bob.raw)
    finally:
        for peer in peers.values():
            assert peer.transport is not None
            peer.transport.close()

