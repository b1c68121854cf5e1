"""SDP security descriptions for SRTP: the ``a=crypto`` attribute (SDES, RFC 4568).

Grammar (RFC 4568 section 9.1)::

    a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
    key-params = key-param *(";" key-param)
    key-param  = "inline:" <base64(key || salt)> ["|" lifetime] ["|" MKI ":" length]
    lifetime   = ["2^"] 1*DIGIT

:class:`CryptoAttribute` parses and serializes one line exactly as written.  What the media
worker can honour (:meth:`CryptoAttribute.usable`): the suites ``AES_CM_128_HMAC_SHA1_80`` and
``AES_CM_128_HMAC_SHA1_32`` (RFC 4568 6.2), one master key, no MKI (libsrtp through pylibsrtp is
keyed with a single master key), a key lifetime no shorter than 2^31 packets (we never re-key
within a call; RFC 3711 9.2 caps SRTCP at 2^31), and no session parameter other than the
window-size hint ``WSH`` (RFC 4568 6.3.7; the others change the transform, 6.3).

Keys are secrets: :class:`KeyParam` and :class:`CryptoAttribute` never show them in ``repr``;
only :meth:`CryptoAttribute.serialize` writes them (into the SDP body, which is not logged).

:class:`SrtpPolicy` is the ``media.srtp`` configuration: ``optional`` answers SRTP when offered
(``RTP/SAVP``, or ``RTP/AVP`` with ``a=crypto``: Blink's opportunistic mode), ``required``
refuses plain RTP, ``disabled`` rejects ``RTP/SAVP`` and ignores ``a=crypto``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "SUITE_KEY_SALT_LENGTHS",
    "SUPPORTED_SUITES",
    "CryptoAttribute",
    "CryptoParseError",
    "KeyParam",
    "SrtpPolicy",
    "choose_crypto",
    "new_inline_key",
    "offer_lines",
    "parse_crypto_lines",
]


class SrtpPolicy(enum.StrEnum):
    """The ``media.srtp`` setting."""

    OPTIONAL = "optional"
    REQUIRED = "required"
    DISABLED = "disabled"


#: master key + master salt lengths in bytes (RFC 4568 6.2.1/6.2.2: 128-bit key, 112-bit salt)
SUITE_KEY_SALT_LENGTHS: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
}
#: the suites we support, in our preference order (used for our own offers)
SUPPORTED_SUITES: tuple[str, ...] = tuple(SUITE_KEY_SALT_LENGTHS)

_MIN_LIFETIME = 2**31
_MAX_TAG = 999_999_999  # 1*9DIGIT
_TAG_RE = re.compile(r"[0-9]{1,9}")
_SUITE_RE = re.compile(r"[A-Za-z0-9_]+")  # RFC 4568 9.1: 1*(ALPHA / DIGIT / "_")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_LIFETIME_RE = re.compile(r"(2\^)?([0-9]{1,20})")
_MKI_RE = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")
_HONOURED_SESSION_PARAMS = ("WSH=",)


class CryptoParseError(ValueError):
    """An ``a=crypto`` value that does not follow RFC 4568 9.1; the line is skipped."""


def new_inline_key(length: int = 30) -> str:
    """A fresh random master key || salt, base64 (RFC 4568 6.1: from a cryptographically
    secure source); 30 bytes for the AES_CM_128 suites."""
    return base64.b64encode(secrets.token_bytes(length)).decode("ascii")


def offer_lines() -> tuple[CryptoAttribute, ...]:
    """Our ``a=crypto`` lines for an offer (RFC 4568 5.1): every supported suite in our
    preference order, tags 1.., each with its own fresh key."""
    return tuple(
        CryptoAttribute.inline(tag, suite, new_inline_key(SUITE_KEY_SALT_LENGTHS[suite]))
        for tag, suite in enumerate(SUPPORTED_SUITES, start=1)
    )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class KeyParam:
    """One ``inline:`` key parameter.  ``key_salt`` is the base64 text as written;
    ``lifetime`` the lifetime in packets (``None``: the suite default); ``mki`` is
    ``(value, length in bytes)`` or ``None``.  ``lifetime_text`` keeps the written form."""

    key_salt: str
    lifetime: int | None = None
    lifetime_text: str | None = None
    mki: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not _B64_RE.fullmatch(self.key_salt):
            raise CryptoParseError("inline key is not base64")
        if self.mki is not None and not 1 <= self.mki[1] <= 128:
            raise CryptoParseError("MKI length must be 1..128")

    @property
    def key_bytes(self) -> bytes:
        """The decoded master key || salt."""
        try:
            return base64.b64decode(_padded(self.key_salt), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoParseError("inline key is not base64") from exc

    @classmethod
    def parse(cls, text: str) -> KeyParam:
        method, colon, info = text.partition(":")
        if not colon or method.lower() != "inline":
            raise CryptoParseError(f"unsupported key method {method!r}")
        parts = info.split("|")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise CryptoParseError("bad inline key-info")
        key_salt = parts[0]
        lifetime: int | None = None
        lifetime_text: str | None = None
        mki: tuple[int, int] | None = None
        for extra in parts[1:]:
            if (m := _MKI_RE.fullmatch(extra)) is not None and mki is None:
                mki = (int(m.group(1)), int(m.group(2)))
            elif (m := _LIFETIME_RE.fullmatch(extra)) is not None and lifetime is None:
                if mki is not None:
                    raise CryptoParseError("lifetime must precede the MKI")
                exponent = int(m.group(2))
                if m.group(1) and exponent > 64:
                    raise CryptoParseError("lifetime exponent too large")
                lifetime = 2**exponent if m.group(1) else exponent
                lifetime_text = extra
            else:
                raise CryptoParseError("bad lifetime or MKI")
        param = cls(key_salt=key_salt, lifetime=lifetime, lifetime_text=lifetime_text, mki=mki)
        param.key_bytes  # noqa: B018 (validates the padding)
        return param

    def serialize(self) -> str:
        text = f"inline:{self.key_salt}"
        if self.lifetime is not None:
            text += "|" + (self.lifetime_text or str(self.lifetime))
        if self.mki is not None:
            text += f"|{self.mki[0]}:{self.mki[1]}"
        return text

    def __repr__(self) -> str:
        return f"KeyParam(key_salt=<hidden>, lifetime={self.lifetime}, mki={self.mki})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class CryptoAttribute:
    """One ``a=crypto`` line (RFC 4568 9.1): tag, suite, key parameters, session parameters."""

    tag: int
    suite: str
    key_params: tuple[KeyParam, ...]
    session_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= _MAX_TAG:
            raise CryptoParseError(f"bad tag {self.tag}")
        if not _SUITE_RE.fullmatch(self.suite):
            raise CryptoParseError("bad crypto-suite")
        if not self.key_params:
            raise CryptoParseError("no key parameter")

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the value of ``a=crypto:`` (without the attribute name)."""
        fields = value.split()
        if len(fields) < 3:
            raise CryptoParseError("a=crypto needs a tag, a suite and key parameters")
        tag_text, suite, keys = fields[0], fields[1], fields[2]
        if not _TAG_RE.fullmatch(tag_text):
            raise CryptoParseError("bad tag")
        key_params = tuple(KeyParam.parse(k) for k in keys.split(";"))
        return cls(
            tag=int(tag_text), suite=suite, key_params=key_params, session_params=tuple(fields[3:])
        )

    @classmethod
    def inline(cls, tag: int, suite: str, key_salt: str) -> CryptoAttribute:
        """Our own line: one inline key, no lifetime, MKI or session parameters."""
        return cls(tag=tag, suite=suite, key_params=(KeyParam(key_salt=key_salt),))

    def serialize(self) -> str:
        keys = ";".join(k.serialize() for k in self.key_params)
        return " ".join((str(self.tag), self.suite, keys, *self.session_params))

    @property
    def key(self) -> str:
        """The (first) inline master key || salt, base64, as written."""
        return self.key_params[0].key_salt

    def usable(self) -> str | None:
        """``None`` when we can honour this line, else why not (RFC 4568 6.3, 7.1.2)."""
        expected = SUITE_KEY_SALT_LENGTHS.get(self.suite)
        if expected is None:
            return f"unsupported crypto-suite {self.suite}"
        if len(self.key_params) != 1:
            return "more than one master key"
        key = self.key_params[0]
        if key.mki is not None:
            return "MKI is not supported"
        if key.lifetime is not None and key.lifetime < _MIN_LIFETIME:
            return "key lifetime too short (re-keying is not supported)"
        if len(key.key_bytes) != expected:
            return f"key||salt must be {expected} bytes"
        for param in self.session_params:
            if not param.upper().startswith(_HONOURED_SESSION_PARAMS):
                return f"unsupported session parameter {param.split('=')[0]}"
        return None

    def __repr__(self) -> str:
        return (
            f"CryptoAttribute(tag={self.tag}, suite={self.suite}, key=<hidden>, "
            f"session_params={self.session_params})"
        )


def parse_crypto_lines(values: Iterable[str | None]) -> list[CryptoAttribute | CryptoParseError]:
    """Each ``a=crypto`` value of an m-line, parsed, or the error (malformed lines are skipped
    by the negotiation, not fatal to the whole SDP)."""
    out: list[CryptoAttribute | CryptoParseError] = []
    for value in values:
        try:
            out.append(CryptoAttribute.parse(value or ""))
        except CryptoParseError as exc:
            out.append(exc)
    return out


def choose_crypto(values: Iterable[str | None]) -> CryptoAttribute | None:
    """The first line we can honour, in the offerer's order (RFC 4568 7.1.1: the offerer lists
    its preferences first); ``None`` when there is none."""
    for item in parse_crypto_lines(values):
        if isinstance(item, CryptoAttribute) and item.usable() is None:
            return item
    return None


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)
