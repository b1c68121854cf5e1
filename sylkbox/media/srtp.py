"""SRTP and SRTCP protection of one stream (RFC 3711), keyed by SDES (RFC 4568), via libsrtp.

:class:`SrtpContext` holds two libsrtp sessions (pylibsrtp): the outbound one keyed with our
master key (the key in our ``a=crypto``), the inbound one with the remote's.  Both use
wildcard SSRC policies (``ssrc_any_outbound``/``ssrc_any_inbound``), so a sender that changes
its SSRC (a restart) is followed; libsrtp keeps the rollover counter (RFC 3711 3.3.1) and the
replay list (3.3.2) per SSRC.

Suites (RFC 4568 6.2): ``AES_CM_128_HMAC_SHA1_80`` and ``AES_CM_128_HMAC_SHA1_32``; the latter
uses a 32-bit tag for SRTP and the 80-bit one for SRTCP, as libsrtp's profile does.

Keys are never logged nor shown in ``repr``; failures (:class:`SrtpError`) carry only libsrtp's
status text.
"""

from __future__ import annotations

import base64
import binascii

import pylibsrtp

from sylkbox.media.control import SrtpParams

__all__ = ["SUITES", "SrtpContext", "SrtpError"]

SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
_KEY_SALT_LENGTH = 30  # 128-bit master key + 112-bit master salt


class SrtpError(Exception):
    """A packet that could not be protected or unprotected (authentication failure, replay,
    malformed); the packet is dropped."""


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("SRTP key is not base64") from exc
    if len(key) != _KEY_SALT_LENGTH:
        raise ValueError(f"SRTP key||salt must be {_KEY_SALT_LENGTH} bytes")
    return key


def _session(profile: int, key: bytes, ssrc_type: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    policy.window_size = 1024  # generous replay window: reordering is the jitter buffer's job
    return pylibsrtp.Session(policy=policy)


class SrtpContext:
    """The SRTP state of one RTP stream (both directions, RTP and RTCP)."""

    def __init__(self, params: SrtpParams) -> None:
        profile = SUITES.get(params.suite)
        if profile is None:
            raise ValueError(f"unsupported SRTP suite {params.suite!r}")
        self._params = params
        self._tx = _session(
            profile, _decode_key(params.local_key), pylibsrtp.Policy.SSRC_ANY_OUTBOUND
        )
        self._rx = _session(
            profile, _decode_key(params.remote_key), pylibsrtp.Policy.SSRC_ANY_INBOUND
        )
        self.rx_failures = 0
        """Packets dropped because they did not unprotect (authentication, replay)."""

    @property
    def params(self) -> SrtpParams:
        return self._params

    def rekey(self, params: SrtpParams) -> None:
        """Apply new keying (re-INVITE): a direction whose suite and key did not change keeps
        its session (rollover counter and replay state, RFC 3711 3.3.1)."""
        profile = SUITES.get(params.suite)
        if profile is None:
            raise ValueError(f"unsupported SRTP suite {params.suite!r}")
        same_suite = params.suite == self._params.suite
        tx, rx = self._tx, self._rx
        if not same_suite or params.local_key != self._params.local_key:
            tx = _session(
                profile, _decode_key(params.local_key), pylibsrtp.Policy.SSRC_ANY_OUTBOUND
            )
        if not same_suite or params.remote_key != self._params.remote_key:
            rx = _session(
                profile, _decode_key(params.remote_key), pylibsrtp.Policy.SSRC_ANY_INBOUND
            )
        self._tx, self._rx, self._params = tx, rx, params

    def protect_rtp(self, packet: bytes) -> bytes:
        try:
            return self._tx.protect(packet)
        except (pylibsrtp.Error, ValueError, TypeError) as exc:
            raise SrtpError(f"SRTP protect: {exc}") from None

    def protect_rtcp(self, packet: bytes) -> bytes:
        try:
            return self._tx.protect_rtcp(packet)
        except (pylibsrtp.Error, ValueError, TypeError) as exc:
            raise SrtpError(f"SRTCP protect: {exc}") from None

    def unprotect_rtp(self, packet: bytes) -> bytes:
        """The plain RTP packet; :class:`SrtpError` (and ``rx_failures`` counted) otherwise."""
        try:
            return self._rx.unprotect(packet)
        except (pylibsrtp.Error, ValueError, TypeError) as exc:
            self.rx_failures += 1
            raise SrtpError(f"SRTP unprotect: {exc}") from None

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        try:
            return self._rx.unprotect_rtcp(packet)
        except (pylibsrtp.Error, ValueError, TypeError) as exc:
            self.rx_failures += 1
            raise SrtpError(f"SRTCP unprotect: {exc}") from None

    def __repr__(self) -> str:
        return f"SrtpContext(suite={self._params.suite!r}, rx_failures={self.rx_failures})"
