"""SDP offer/answer for the conference focus (RFC 3264).

Answering (the focus is the UAS, and for every re-INVITE):

* :func:`negotiate` walks the offer's m-lines in order and decides each one: the first usable
  audio stream becomes :class:`AcceptedAudio`, every other line a :class:`Rejected` (answered
  with port 0, RFC 3264 6).  No usable stream at all raises :class:`NoAcceptableMedia` (488).
* :func:`build_answer` turns the plan into the answer: same m-lines in the same order.

MSRP chat (RFC 4975, BLINK.md 4.1 and 7): when :func:`negotiate` is given an
:class:`~sylkbox.sdp.msrp.MsrpPolicy`, the first usable ``m=message`` chat line becomes
:class:`AcceptedChat`; a chat stream alone is an acceptable session.
``build_answer(local_paths=...)`` writes our ``a=path`` for it.  Without a policy chat is
rejected as before.

File transfer (RFC 5547, BLINK.md 5): an ``m=message`` line with ``a=file-selector`` that is
``sendonly`` (an upload to the room) or ``recvonly`` (a download) becomes :class:`AcceptedFile`
when it is the only stream of the offer (Blink sends each transfer in its own INVITE); we answer
the reverse direction, ``a=accept-types:*``, the selector (``build_answer(local_file_selectors=
...)``: the offer's for an upload, the complete one for a download), ``a=x-file-offset`` and the
offer's ``a=file-transfer-id``.  The selector is kept as text here; the focus parses it
(:mod:`sylkbox.msrp.file_selector`).

Offering (dial-out, the focus is the UAC): :func:`build_offer` (audio and/or an MSRP chat line
with ``a=setup:active``), then :func:`negotiate_answer` reads the callee's audio answer and
:func:`negotiate_chat_answer` its chat answer.

Codec choice (RFC 3264 6.1): among the codecs we support, the one the offerer lists first; the
answer keeps the offerer's payload type numbers.  telephone-event (RFC 4733) is taken at the
chosen codec's clock rate.

Hold (RFC 3264 8.4) is detected on every offer, including re-INVITEs (call :func:`negotiate`
again on the new offer and compare): the remote side is *on hold* when it does not want to
receive media, i.e. its direction is ``sendonly`` or ``inactive``, or its connection address is
the RFC 2543 null address ``0.0.0.0`` (``::`` for IPv6), which is read as "drop the receive half"
of the written direction.  A held stream keeps its :class:`AcceptedAudio`; ``remote_address`` is
``None`` when the null address was used.

Profiles and SRTP (SDES, RFC 4568, RFC 3711), after ``Capabilities.srtp`` (:class:`SrtpPolicy`):
``RTP/SAVP`` needs an ``a=crypto`` line we can honour (:mod:`sylkbox.sdp.crypto`); an ``RTP/AVP``
line with ``a=crypto`` (Blink's opportunistic mode) is answered with SRTP too, keeping
``RTP/AVP``; ``required`` rejects plain lines, ``disabled`` rejects ``RTP/SAVP`` and ignores
``a=crypto``.  The chosen remote line is :attr:`AcceptedAudio.crypto`: the first offered line
with a supported suite (the offerer's preference, RFC 4568 7.1.1); our answer line keeps its
tag and suite with our own key (``build_answer(local_keys=...)``, RFC 4568 7.1.2).  See
:func:`_profile_rejection` and :func:`_offered_crypto`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sylkbox.sdp.crypto import CryptoAttribute, SrtpPolicy, choose_crypto
from sylkbox.sdp.errors import InvalidAnswerError, NoAcceptableMedia
from sylkbox.sdp.model import (
    STATIC_AUDIO_PAYLOAD_TYPES,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
)
from sylkbox.sdp.msrp import (
    MsrpMedia,
    MsrpPolicy,
    Setup,
    build_msrp_media,
    connection_role,
    parse_msrp_media,
)

__all__ = [
    "AcceptedAudio",
    "AcceptedChat",
    "AcceptedFile",
    "Address",
    "Capabilities",
    "Codec",
    "CodecSpec",
    "Decision",
    "OfferPlan",
    "Rejected",
    "answer_offer",
    "build_answer",
    "build_offer",
    "negotiate",
    "negotiate_answer",
    "negotiate_chat_answer",
    "new_session",
    "read_msrp_answer",
]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

TELEPHONE_EVENT = "telephone-event"
DEFAULT_PTIME = 20
#: RTP profiles whose audio lines we accept (RTP/SAVP only with SRTP enabled and a usable key)
ACCEPTED_AUDIO_PROFILES = frozenset({"RTP/AVP", "RTP/SAVP"})
_FIRST_DYNAMIC_PT = 96
_TELEPHONE_EVENT_PT = 101
#: Our ``a=fmtp`` for codecs named in configuration.  Opus: we decode in-band FEC (RFC 7587
#: 6.1 ``useinbandfec``); we send mono, which ``stereo`` defaults to (RFC 7587 6.1).
DEFAULT_FMTP = {"opus": "useinbandfec=1"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecSpec:
    """A codec we support: encoding name (case-insensitive, RFC 4855 3), clock rate, channels.

    ``fmtp`` is what we put in our own ``a=fmtp`` for it (e.g. ``useinbandfec=1`` for Opus).
    """

    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    def __post_init__(self) -> None:
        if not self.name or " " in self.name or "/" in self.name:
            raise ValueError(f"bad codec name {self.name!r}")
        if self.clock_rate <= 0 or self.channels <= 0:
            raise ValueError("codec clock rate and channels must be positive")

    @classmethod
    def parse(cls, text: str) -> CodecSpec:
        """``"PCMU/8000"``, ``"opus/48000/2"``: the form used in configuration files."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(_is_uint(p) for p in parts[1:]):
            raise ValueError(f"bad codec {text!r}: expected name/rate[/channels]")
        channels = int(parts[2]) if len(parts) == 3 else 1
        fmtp = DEFAULT_FMTP.get(parts[0].lower())
        return cls(name=parts[0], clock_rate=int(parts[1]), channels=channels, fmtp=fmtp)

    def matches(self, rtpmap: RtpMap) -> bool:
        return (
            rtpmap.encoding_name.lower() == self.name.lower()
            and rtpmap.clock_rate == self.clock_rate
            and rtpmap.channels == self.channels
        )

    def __str__(self) -> str:
        text = f"{self.name}/{self.clock_rate}"
        return f"{text}/{self.channels}" if self.channels != 1 else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the focus's media side can do, codecs in our preference order.

    The default is G.711 only; Opus and G.722 are added by configuration, e.g.
    ``Capabilities.from_names(["opus/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000"])``
    (RFC 7587 7: Opus is always ``opus/48000/2`` in SDP, whatever we send).  Comfort noise
    (``CN``, RFC 3389) is never a capability: offered CN payload types are skipped by the codec
    choice and left out of the answer.
    """

    codecs: tuple[CodecSpec, ...] = (
        CodecSpec(name="PCMU", clock_rate=8000),
        CodecSpec(name="PCMA", clock_rate=8000),
    )
    telephone_event: bool = True  # RFC 4733 DTMF, at each codec's clock rate
    ptime: int = DEFAULT_PTIME
    srtp: SrtpPolicy = SrtpPolicy.DISABLED  # the focus sets it from `media.srtp`

    def __post_init__(self) -> None:
        if not self.codecs:
            raise ValueError("at least one codec is needed")
        if not 10 <= self.ptime <= 120:
            raise ValueError("ptime must be between 10 and 120 ms")

    @classmethod
    def from_names(cls, names: Iterable[str], *, telephone_event: bool = True) -> Capabilities:
        return cls(codecs=tuple(CodecSpec.parse(n) for n in names), telephone_event=telephone_event)

    def find(self, rtpmap: RtpMap) -> CodecSpec | None:
        return next((spec for spec in self.codecs if spec.matches(rtpmap)), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """The negotiated codec: the payload type the remote side uses for it, and the remote's
    format parameters (``a=fmtp``) for it."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"bad RTP payload type {self.payload_type}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedAudio:
    """An accepted audio stream (m-line ``index`` of the offer).

    ``remote_direction`` is the offer's (or answer's) effective direction as written;
    ``local_direction`` is ours; ``on_hold`` is true when the remote side does not receive
    (sendonly/inactive or the null connection address).  ``remote_address`` is where we send
    RTP (``None`` on null-address hold) and ``remote_rtcp`` where we send RTCP (RFC 3605
    ``a=rtcp``, else port + 1, RFC 3550 11).
    """

    index: int
    codec: Codec
    telephone_event_pt: int | None
    remote_address: Address | None
    remote_rtcp: Address | None
    remote_direction: Direction
    local_direction: Direction
    on_hold: bool
    profile: str = "RTP/AVP"
    local_fmtp: str | None = None  # our a=fmtp for the codec (from Capabilities)
    telephone_event_fmtp: str = "0-16"  # the events we announce (RFC 4733 7.1.1)
    ptime: int = DEFAULT_PTIME
    # SRTP (RFC 4568): the remote's chosen a=crypto line (its key protects what it sends),
    # and, when reading an answer to our offer, our own line with the same tag.
    crypto: CryptoAttribute | None = None
    local_crypto: CryptoAttribute | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A rejected m-line: answered with port 0 (RFC 3264 6)."""

    index: int
    media: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedChat:
    """An accepted MSRP chat stream (m-line ``index`` of the offer, RFC 4975 8).

    ``remote_path`` is the offer's ``a=path`` (last URI: the remote endpoint); ``local_setup``
    is our role (BLINK.md 7): ``passive`` means we wait for the remote's connection and match
    its first SEND against the exact paths, ``active`` that we connect to ``remote_path[0]``
    and bind with an empty SEND.
    """

    index: int
    remote_path: tuple[str, ...]
    remote_setup: Setup
    local_setup: Setup
    accept_types: tuple[str, ...]
    accept_wrapped_types: tuple[str, ...]
    tls: bool
    chatroom: tuple[str, ...] = ()

    @property
    def we_connect(self) -> bool:
        return self.local_setup is Setup.ACTIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedFile:
    """An accepted RFC 5547 file transfer stream (BLINK.md 5).

    ``remote_direction`` is ``sendonly`` (the peer pushes a file to us) or ``recvonly`` (it
    pulls one); ``local_direction`` is the reverse.  ``file_selector`` is the offered
    ``a=file-selector`` value, ``transfer_id`` its ``a=file-transfer-id`` and ``file_offset``
    whether it announced ``a=x-file-offset`` (sipsimple's FILE_OFFSET resume).  The
    connection role is as for chat (BLINK.md 7).
    """

    index: int
    remote_path: tuple[str, ...]
    remote_setup: Setup
    local_setup: Setup
    tls: bool
    file_selector: str
    remote_direction: Direction
    local_direction: Direction
    transfer_id: str | None = None
    file_offset: bool = False

    @property
    def we_connect(self) -> bool:
        return self.local_setup is Setup.ACTIVE

    @property
    def upload(self) -> bool:
        """True when the peer sends the file (it offered ``sendonly``)."""
        return self.remote_direction is Direction.SENDONLY


Decision = AcceptedAudio | AcceptedChat | AcceptedFile | Rejected


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferPlan:
    """The decision for every m-line of an offer, in offer order."""

    decisions: tuple[Decision, ...] = field(default_factory=tuple)

    @property
    def audio(self) -> AcceptedAudio | None:
        return next((d for d in self.decisions if isinstance(d, AcceptedAudio)), None)

    @property
    def chat(self) -> AcceptedChat | None:
        return next((d for d in self.decisions if isinstance(d, AcceptedChat)), None)

    @property
    def file(self) -> AcceptedFile | None:
        return next((d for d in self.decisions if isinstance(d, AcceptedFile)), None)

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Rejected))


# -- answering ---------------------------------------------------------------------------------


def negotiate(
    offer: SessionDescription, capabilities: Capabilities, *, msrp: MsrpPolicy | None = None
) -> OfferPlan:
    """Decide every m-line of ``offer`` (RFC 3264 6).  Raises :class:`NoAcceptableMedia` when
    nothing can be accepted.  Use it for initial offers and re-INVITE offers alike.  With
    ``msrp`` the first usable chat stream is accepted too (see :func:`_decide_chat`)."""
    decisions: list[Decision] = []
    audio_taken = chat_taken = False
    for index, media in enumerate(offer.media):
        decision: Decision
        if media.media == "message" and msrp is not None and media.port != 0:
            if media.attribute("file-selector") is not None:
                decision = _decide_file(offer, index, media, msrp)
            else:
                decision = _decide_chat(offer, index, media, msrp, chat_taken=chat_taken)
        else:
            decision = _decide(offer, index, media, capabilities, audio_taken=audio_taken)
        if isinstance(decision, AcceptedAudio):
            audio_taken = True
        elif isinstance(decision, AcceptedChat):
            chat_taken = True
        elif isinstance(decision, Rejected):
            logger.debug("x m-line %d (%s) rejected: %s", index, media.media, decision.reason)
        decisions.append(decision)
    plan = OfferPlan(decisions=tuple(decisions))
    if plan.file is not None and (
        plan.audio is not None or plan.chat is not None or len(offer.media) != 1
    ):
        # a transfer comes in an INVITE of its own (BLINK.md 5): keep the other streams
        decisions = [
            Rejected(index=d.index, media="message", reason="file transfer must be alone")
            if isinstance(d, AcceptedFile)
            else d
            for d in decisions
        ]
        plan = OfferPlan(decisions=tuple(decisions))
    if plan.audio is None and plan.chat is None and plan.file is None:
        reasons = tuple(f"m-line {r.index} {r.media}: {r.reason}" for r in plan.rejected)
        raise NoAcceptableMedia("no acceptable media stream in offer", reasons)
    return plan


def _profile_rejection(proto: str, policy: SrtpPolicy = SrtpPolicy.DISABLED) -> str | None:
    """Why an audio line with this transport protocol cannot be accepted, or ``None``."""
    if proto == "RTP/SAVP" and policy is SrtpPolicy.DISABLED:
        return "SRTP (RTP/SAVP) disabled"
    if proto in ACCEPTED_AUDIO_PROFILES:
        return None
    return f"unsupported transport protocol {proto}"


def _offered_crypto(media: MediaDescription, policy: SrtpPolicy) -> CryptoAttribute | str | None:
    """The offer's ``a=crypto`` line we answer (RFC 4568 7.1.2), ``None`` for plain RTP, or
    a rejection reason."""
    if policy is SrtpPolicy.DISABLED:
        return None  # RTP/SAVP was rejected already; a=crypto on RTP/AVP is ignored
    values = media.attribute_values("crypto")
    crypto = choose_crypto(values)
    if crypto is not None:
        return crypto
    if media.proto == "RTP/SAVP":
        return "no usable a=crypto line" if values else "RTP/SAVP without a=crypto"
    if policy is SrtpPolicy.REQUIRED:
        return "SRTP required" if not values else "SRTP required: no usable a=crypto line"
    return None


def _decide(
    offer: SessionDescription,
    index: int,
    media: MediaDescription,
    capabilities: Capabilities,
    *,
    audio_taken: bool,
) -> Decision:
    def reject(reason: str) -> Rejected:
        return Rejected(index=index, media=media.media, reason=reason)

    if media.port == 0:
        return reject("stream disabled in offer")
    if media.media != "audio":
        return reject(f"media type {media.media} not supported")
    if audio_taken:
        return reject("only one audio stream is accepted")
    if (why := _profile_rejection(media.proto, capabilities.srtp)) is not None:
        return reject(why)
    crypto = _offered_crypto(media, capabilities.srtp)
    if isinstance(crypto, str):
        return reject(crypto)
    endpoint = _remote_endpoint(offer, media)
    if isinstance(endpoint, str):
        return reject(endpoint)
    remote_address, remote_rtcp, null_address = endpoint

    chosen = _first_common_codec(media, capabilities)
    if chosen is None:
        return reject("no common codec")
    codec, spec = chosen
    te_pt = _telephone_event(media, codec.clock_rate) if capabilities.telephone_event else None
    te_fmtp = "0-16"
    if te_pt is not None and (media.fmtp(te_pt) or "").replace(" ", "") == "0-15":
        te_fmtp = "0-15"

    written = offer.direction_for(media)
    effective = written
    if null_address:  # RFC 2543 hold: the remote receives nothing whatever it wrote
        effective = Direction.from_flags(sends=written.sends, receives=False)
    return AcceptedAudio(
        index=index,
        codec=codec,
        telephone_event_pt=te_pt,
        remote_address=remote_address,
        remote_rtcp=remote_rtcp,
        remote_direction=written,
        local_direction=effective.reversed(),
        on_hold=not effective.receives,
        profile=media.proto,
        local_fmtp=spec.fmtp,
        telephone_event_fmtp=te_fmtp,
        ptime=capabilities.ptime,
        crypto=crypto,
    )


def _decide_chat(
    offer: SessionDescription,
    index: int,
    media: MediaDescription,
    policy: MsrpPolicy,
    *,
    chat_taken: bool,
) -> AcceptedChat | Rejected:
    """An ``m=message`` line (BLINK.md 4.1): sendrecv, format ``*``, the same MSRP transport
    as ours (a TLS/TCP mismatch is rejected, as Blink and SylkServer do), ``a=setup`` not
    ``holdconn``; file transfer lines (``a=file-selector``, RFC 5547) are not chat."""

    def reject(reason: str) -> Rejected:
        return Rejected(index=index, media=media.media, reason=reason)

    parsed: MsrpMedia | str = parse_msrp_media(offer, media)
    if isinstance(parsed, str):
        return reject(parsed)
    if parsed.file_selector is not None:
        return reject("file transfer streams are not supported")
    if chat_taken:
        return reject("only one chat stream is accepted")
    if parsed.tls != policy.tls:
        return reject(f"MSRP transport mismatch: we use {policy.proto}")
    if parsed.direction is not Direction.SENDRECV:
        return reject(f"chat stream must be sendrecv, not {parsed.direction.value}")
    local_setup = connection_role(parsed.setup)
    if local_setup is None:
        return reject(f"a=setup:{parsed.setup.value} is not supported")
    return AcceptedChat(
        index=index,
        remote_path=parsed.path,
        remote_setup=parsed.setup,
        local_setup=local_setup,
        accept_types=parsed.accept_types,
        accept_wrapped_types=parsed.accept_wrapped_types,
        tls=parsed.tls,
        chatroom=parsed.chatroom,
    )


def _decide_file(
    offer: SessionDescription, index: int, media: MediaDescription, policy: MsrpPolicy
) -> AcceptedFile | Rejected:
    """An RFC 5547 file transfer line: ``sendonly`` or ``recvonly``, our MSRP transport,
    ``a=setup`` not ``holdconn`` (BLINK.md 5 and 7)."""

    def reject(reason: str) -> Rejected:
        return Rejected(index=index, media=media.media, reason=reason)

    parsed: MsrpMedia | str = parse_msrp_media(offer, media)
    if isinstance(parsed, str):
        return reject(parsed)
    selector = (parsed.file_selector or "").strip()
    if not selector:
        return reject("empty a=file-selector")
    if parsed.tls != policy.tls:
        return reject(f"MSRP transport mismatch: we use {policy.proto}")
    if parsed.direction not in (Direction.SENDONLY, Direction.RECVONLY):
        return reject(f"file transfer must be sendonly or recvonly, not {parsed.direction.value}")
    local_setup = connection_role(parsed.setup)
    if local_setup is None:
        return reject(f"a=setup:{parsed.setup.value} is not supported")
    transfer_id = media.attribute("file-transfer-id")
    return AcceptedFile(
        index=index,
        remote_path=parsed.path,
        remote_setup=parsed.setup,
        local_setup=local_setup,
        tls=parsed.tls,
        file_selector=selector,
        remote_direction=parsed.direction,
        local_direction=parsed.direction.reversed(),
        transfer_id=transfer_id.strip() if transfer_id else None,
        file_offset=any(name == "x-file-offset" for name, _ in media.attributes),
    )


def _remote_endpoint(
    sdp: SessionDescription, media: MediaDescription
) -> tuple[Address | None, Address | None, bool] | str:
    """(RTP address, RTCP address, null address?) of a media line, or a rejection reason."""
    connection = sdp.connection_for(media)
    if connection is None:
        return "no connection address"
    if connection.nettype != "IN" or connection.addrtype not in ("IP4", "IP6"):
        return f"unsupported connection {connection}"
    try:
        ip = ipaddress.ip_address(connection.host)
    except ValueError:
        return f"connection address {connection.host!r} is not an IP literal"
    if (ip.version == 4) != (connection.addrtype == "IP4"):
        return f"connection address does not match {connection.addrtype}"
    if ip.is_multicast:
        return "multicast connection address"
    if ip.is_unspecified:
        return None, None, True
    host = str(ip)
    rtcp: Address = (host, media.port + 1)
    rtcp_value = media.attribute("rtcp")
    if rtcp_value:  # RFC 3605: a=rtcp:<port> [IN IP4 <address>]
        parts = rtcp_value.split()
        if parts and _is_port(parts[0]):
            rtcp_host = host
            if len(parts) == 4:
                try:
                    rtcp_host = str(ipaddress.ip_address(parts[3]))
                except ValueError:
                    rtcp_host = host
            rtcp = (rtcp_host, int(parts[0]))
    elif media.port == 65535:
        return (host, media.port), None, False
    return (host, media.port), rtcp, False


def _is_uint(text: str) -> bool:
    """A decimal number short enough for ``int()`` (which refuses huge digit strings)."""
    return 0 < len(text) <= 30 and text.isascii() and text.isdigit()


def _is_port(text: str) -> bool:
    return _is_uint(text) and 0 < int(text) <= 65535


def _first_common_codec(
    media: MediaDescription, capabilities: Capabilities
) -> tuple[Codec, CodecSpec] | None:
    for pt in media.payload_types():
        rtpmap = media.rtpmap(pt)
        if rtpmap is None:
            continue
        spec = capabilities.find(rtpmap)
        if spec is not None:
            codec = Codec(
                payload_type=pt,
                name=rtpmap.encoding_name,
                clock_rate=rtpmap.clock_rate,
                channels=rtpmap.channels,
                fmtp=media.fmtp(pt),
            )
            return codec, spec
    return None


def _telephone_event(media: MediaDescription, clock_rate: int) -> int | None:
    for pt in media.payload_types():
        rtpmap = media.rtpmap(pt)
        if (
            rtpmap is not None
            and rtpmap.encoding_name.lower() == TELEPHONE_EVENT
            and rtpmap.clock_rate == clock_rate
        ):
            return pt
    return None


def new_session(
    address: str,
    *,
    username: str,
    session_id: int,
    session_version: int,
    media: list[MediaDescription] | None = None,
) -> SessionDescription:
    """Our session-level lines (o=, s=-, c=, t=0 0) for `address`, an IP literal, with
    `media` (RFC 4566 5; none yet when omitted)."""
    connection = _connection_for(address)
    return SessionDescription(
        origin=Origin(
            username,
            str(session_id),
            str(session_version),
            "IN",
            connection.addrtype,
            connection.address,
        ),
        session_name="-",
        connection=connection,
        times=[Timing(0, 0)],
        media=media if media is not None else [],
    )


def _connection_for(address: str) -> Connection:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"local address {address!r} is not an IP literal") from None
    return Connection("IN", "IP4" if ip.version == 4 else "IP6", str(ip))


def _audio_lines(
    media: MediaDescription,
    *,
    codec_rtpmap: RtpMap,
    codec_fmtp: str | None,
    te_pt: int | None,
    te_rate: int,
    te_fmtp: str,
    ptime: int,
    direction: Direction,
) -> None:
    media.attributes.append(("rtpmap", str(codec_rtpmap)))
    if codec_fmtp:
        media.attributes.append(("fmtp", f"{codec_rtpmap.payload_type} {codec_fmtp}"))
    if te_pt is not None:
        media.attributes.append(("rtpmap", f"{te_pt} {TELEPHONE_EVENT}/{te_rate}"))
        media.attributes.append(("fmtp", f"{te_pt} {te_fmtp}"))
    media.attributes.append(("ptime", str(ptime)))
    media.attributes.append((direction.value, None))


def build_answer(
    offer: SessionDescription,
    plan: OfferPlan,
    *,
    address: str,
    local_ports: Mapping[int, int],
    session_id: int,
    session_version: int,
    username: str = "sylkbox",
    local_keys: Mapping[int, str] | None = None,
    local_paths: Mapping[int, str] | None = None,
    local_file_selectors: Mapping[int, str] | None = None,
) -> SessionDescription:
    """The answer to ``offer`` (RFC 3264 6): one m-line per offered line, same order.

    For an accepted file transfer line, ``local_paths`` gives our ``a=path`` too and
    ``local_file_selectors`` our ``a=file-selector`` value (default: the offer's).

    ``local_paths`` maps the index of an accepted chat line to our MSRP URI (``a=path``,
    RFC 4975 8.2); the line's port is that URI's port.

    ``local_ports`` maps the index of each accepted m-line to our RTP port.  Rejected lines get
    port 0 and keep the offer's media, proto and first format.  ``local_keys`` maps the index
    of each accepted SRTP line (``decision.crypto`` set) to our base64 master key || salt: the
    answer carries one ``a=crypto`` with the offer's tag and suite and that key, and keeps the
    offer's profile (RFC 4568 7.1.2).  Raises ``ValueError`` when the plan does not belong to
    the offer or a port or key is missing (local programming errors).
    """
    if len(plan.decisions) != len(offer.media):
        raise ValueError("plan does not match the offer's m-lines")
    answer = new_session(
        address, username=username, session_id=session_id, session_version=session_version
    )
    for decision, offered in zip(plan.decisions, offer.media, strict=True):
        if isinstance(decision, Rejected):
            answer.media.append(
                MediaDescription(
                    media=offered.media, port=0, proto=offered.proto, formats=offered.formats[:1]
                )
            )
            continue
        if isinstance(decision, AcceptedChat):
            path = (local_paths or {}).get(decision.index)
            if not path:
                raise ValueError(f"no local MSRP path for m-line {decision.index}")
            answer.media.append(
                build_msrp_media(path=path, tls=decision.tls, setup=decision.local_setup)
            )
            continue
        if isinstance(decision, AcceptedFile):
            path = (local_paths or {}).get(decision.index)
            if not path:
                raise ValueError(f"no local MSRP path for m-line {decision.index}")
            selector = (local_file_selectors or {}).get(decision.index, decision.file_selector)
            media = build_msrp_media(
                path=path,
                tls=decision.tls,
                setup=decision.local_setup,
                accept_types=("*",),
                accept_wrapped_types=(),
                chatroom=(),
                direction=decision.local_direction,
            )
            # RFC 5547 8: the answer repeats the selector; sipsimple's resume flag and the id
            media.attributes.insert(len(media.attributes) - 1, ("file-selector", selector))
            media.attributes.insert(len(media.attributes) - 1, ("x-file-offset", None))
            if decision.transfer_id:
                media.attributes.insert(
                    len(media.attributes) - 1, ("file-transfer-id", decision.transfer_id)
                )
            answer.media.append(media)
            continue
        port = local_ports.get(decision.index)
        if port is None or not 0 < port <= 65535:
            raise ValueError(f"no valid local port for m-line {decision.index}")
        codec = decision.codec
        formats = [str(codec.payload_type)]
        if decision.telephone_event_pt is not None:
            formats.append(str(decision.telephone_event_pt))
        media = MediaDescription(media="audio", port=port, proto=decision.profile, formats=formats)
        rtpmap = RtpMap(codec.payload_type, codec.name, codec.clock_rate, codec.channels)
        _audio_lines(
            media,
            codec_rtpmap=rtpmap,
            codec_fmtp=decision.local_fmtp,
            te_pt=decision.telephone_event_pt,
            te_rate=codec.clock_rate,
            te_fmtp=decision.telephone_event_fmtp,
            ptime=decision.ptime,
            direction=decision.local_direction,
        )
        if decision.crypto is not None:
            key = (local_keys or {}).get(decision.index)
            if not key:
                raise ValueError(f"no local SRTP key for m-line {decision.index}")
            ours = CryptoAttribute.inline(decision.crypto.tag, decision.crypto.suite, key)
            # before the direction attribute, which _audio_lines writes last
            media.attributes.insert(len(media.attributes) - 1, ("crypto", ours.serialize()))
        answer.media.append(media)
    return answer


def answer_offer(
    offer: SessionDescription,
    capabilities: Capabilities,
    *,
    address: str,
    session_id: int,
    session_version: int,
    ports: Mapping[int, int],
    username: str = "sylkbox",
    local_keys: Mapping[int, str] | None = None,
) -> tuple[SessionDescription, OfferPlan]:
    """:func:`negotiate` then :func:`build_answer` (the ``docs/internals.md`` entry point)."""
    plan = negotiate(offer, capabilities)
    answer = build_answer(
        offer,
        plan,
        address=address,
        local_ports=ports,
        session_id=session_id,
        session_version=session_version,
        username=username,
        local_keys=local_keys,
    )
    return answer, plan


# -- offering ----------------------------------------------------------------------------------


def _assign_payload_types(capabilities: Capabilities) -> list[tuple[RtpMap, str | None]]:
    """Static payload types where RFC 3551 has one, dynamic ones from 96 otherwise, then one
    telephone-event per clock rate from 101 (RFC 4733 7.1.1)."""
    statics: list[RtpMap | None] = []
    used: set[int] = set()
    for spec in capabilities.codecs:
        static = next((m for m in STATIC_AUDIO_PAYLOAD_TYPES.values() if spec.matches(m)), None)
        if static is not None and static.payload_type in used:
            static = None
        if static is not None:
            used.add(static.payload_type)
        statics.append(static)

    def next_free(start: int) -> int:
        pt = start
        while pt in used:
            pt += 1
        if pt > 127:
            raise ValueError("too many codecs for the dynamic payload type range")
        used.add(pt)
        return pt

    result: list[tuple[RtpMap, str | None]] = []
    for spec, static in zip(capabilities.codecs, statics, strict=True):
        rtpmap = static or RtpMap(
            next_free(_FIRST_DYNAMIC_PT), spec.name, spec.clock_rate, spec.channels
        )
        result.append((rtpmap, spec.fmtp))
    if capabilities.telephone_event:
        for rate in dict.fromkeys(spec.clock_rate for spec in capabilities.codecs):
            result.append((RtpMap(next_free(_TELEPHONE_EVENT_PT), TELEPHONE_EVENT, rate), "0-16"))
    return result


def build_offer(
    capabilities: Capabilities,
    *,
    address: str,
    audio_port: int | None,
    session_id: int,
    session_version: int,
    direction: Direction | str = Direction.SENDRECV,
    username: str = "sylkbox",
    crypto: Sequence[CryptoAttribute] = (),
    chat_path: str | None = None,
    chat_tls: bool = True,
) -> SessionDescription:
    """An offer for dial-out (RFC 3264 5): audio with our codecs in preference order, then one
    telephone-event per clock rate; and/or, with ``chat_path``, an MSRP chat line after it
    (BLINK.md 2.2: the room's active media).

    The chat line is the focus's (BLINK.md 4.1) with ``a=setup:active``: we connect, as
    SylkServer with Bonjour does, because a Blink Bonjour account always answers ``passive``
    and listens (BLINK.md 7).  ``audio_port`` ``None`` leaves audio out (a chat-only room);
    at least one stream is needed.

    ``crypto`` are our ``a=crypto`` lines (RFC 4568 5.1), in preference order: with
    ``capabilities.srtp`` ``required`` the profile is ``RTP/SAVP``, with ``optional`` it stays
    ``RTP/AVP`` (opportunistic, as Blink does); ``disabled`` ignores them.  ``required``
    without ``crypto`` is a ``ValueError``.
    """
    if audio_port is None and chat_path is None:
        raise ValueError("an offer needs audio or chat")
    streams: list[MediaDescription] = []
    if audio_port is not None:
        streams.append(_offer_audio(capabilities, audio_port, direction, crypto))
    if chat_path is not None:
        streams.append(build_msrp_media(path=chat_path, tls=chat_tls, setup=Setup.ACTIVE))
    return new_session(
        address,
        username=username,
        session_id=session_id,
        session_version=session_version,
        media=streams,
    )


def _offer_audio(
    capabilities: Capabilities,
    audio_port: int,
    direction: Direction | str,
    crypto: Sequence[CryptoAttribute],
) -> MediaDescription:
    if not 0 < audio_port <= 65535:
        raise ValueError(f"bad audio port {audio_port}")
    policy = capabilities.srtp
    if policy is SrtpPolicy.REQUIRED and not crypto:
        raise ValueError("SRTP is required: the offer needs a=crypto lines")
    lines = () if policy is SrtpPolicy.DISABLED else tuple(crypto)
    proto = "RTP/SAVP" if policy is SrtpPolicy.REQUIRED else "RTP/AVP"
    media = MediaDescription(media="audio", port=audio_port, proto=proto, formats=[])
    for rtpmap, fmtp in _assign_payload_types(capabilities):
        media.formats.append(str(rtpmap.payload_type))
        media.attributes.append(("rtpmap", str(rtpmap)))
        if fmtp:
            media.attributes.append(("fmtp", f"{rtpmap.payload_type} {fmtp}"))
    media.attributes.append(("ptime", str(capabilities.ptime)))
    for line in lines:
        media.attributes.append(("crypto", line.serialize()))
    media.attributes.append((Direction(direction).value, None))
    return media


def negotiate_answer(
    offer_we_sent: SessionDescription,
    answer: SessionDescription,
    capabilities: Capabilities | None = None,
) -> AcceptedAudio | None:
    """Read the callee's answer to our :func:`build_offer` offer (RFC 3264 7).

    Returns ``None`` when the callee rejected our audio stream (port 0).  Raises
    :class:`InvalidAnswerError` when the answer breaks RFC 3264 6 (m-line count or media type
    differs, a codec we did not offer, no usable connection address).  ``codec.payload_type``
    is the callee's number for the codec (what we send with).
    """
    if len(answer.media) != len(offer_we_sent.media):
        raise InvalidAnswerError(
            f"answer has {len(answer.media)} m-lines, offer had {len(offer_we_sent.media)}"
        )
    for index, (ours, theirs) in enumerate(zip(offer_we_sent.media, answer.media, strict=True)):
        if ours.media != "audio" or ours.port == 0:
            continue
        if not _answered(index, ours, theirs):
            return None
        endpoint = _remote_endpoint(answer, theirs)
        if isinstance(endpoint, str):
            raise InvalidAnswerError(f"m-line {index}: {endpoint}")
        remote_address, remote_rtcp, null_address = endpoint
        offered_caps = capabilities or _capabilities_of(ours)
        chosen = _first_common_codec(theirs, offered_caps)
        if chosen is None:
            raise InvalidAnswerError(f"m-line {index}: no codec from our offer in the answer")
        codec, spec = chosen
        te_pt = _telephone_event(theirs, codec.clock_rate)
        written = answer.direction_for(theirs)
        effective = written
        if null_address:
            effective = Direction.from_flags(sends=written.sends, receives=False)
        offered = offer_we_sent.direction_for(ours)
        local = Direction.from_flags(
            sends=offered.sends and effective.receives,
            receives=offered.receives and effective.sends,
        )
        ptime_text = theirs.attribute("ptime")
        ptime = int(ptime_text) if ptime_text and _is_uint(ptime_text) else DEFAULT_PTIME
        crypto, local_crypto = _answered_crypto(index, ours, theirs)
        return AcceptedAudio(
            index=index,
            codec=codec,
            telephone_event_pt=te_pt,
            remote_address=remote_address,
            remote_rtcp=remote_rtcp,
            remote_direction=written,
            local_direction=local,
            on_hold=not effective.receives,
            profile=theirs.proto,
            local_fmtp=spec.fmtp,
            ptime=ptime if 10 <= ptime <= 120 else DEFAULT_PTIME,
            crypto=crypto,
            local_crypto=local_crypto,
        )
    return None


def negotiate_chat_answer(
    offer_we_sent: SessionDescription, answer: SessionDescription
) -> AcceptedChat | None:
    """Read the callee's answer to the chat line of our :func:`build_offer` offer.

    ``None`` when we offered no chat or the callee rejected it (port 0, RFC 3264 6).  Our
    role follows the answer's ``a=setup`` (RFC 4145 4, RFC 6135 4.1): ``passive`` (what
    RFC 4145 wants for our ``active``, and what Blink's Bonjour account always answers) or
    no ``a=setup`` means we connect to the callee's ``a=path`` and bind with an empty SEND;
    ``active`` (a callee that insists on connecting) means we wait for its connection and
    match its first SEND against the exact paths (BLINK.md 7).  Raises
    :class:`InvalidAnswerError` for a line we cannot use (other transport than offered, not
    ``sendrecv``, ``holdconn``, bad ``a=path``).
    """
    if len(answer.media) != len(offer_we_sent.media):
        raise InvalidAnswerError(
            f"answer has {len(answer.media)} m-lines, offer had {len(offer_we_sent.media)}"
        )
    for index, (ours, theirs) in enumerate(zip(offer_we_sent.media, answer.media, strict=True)):
        if ours.media != "message" or ours.port == 0:
            continue
        line = read_msrp_answer(
            answer, ours, theirs, index=index, kind="chat", direction=Direction.SENDRECV
        )
        if line is None:
            return None
        parsed, remote_setup, local_setup = line
        return AcceptedChat(
            index=index,
            remote_path=parsed.path,
            remote_setup=remote_setup,
            local_setup=local_setup,
            accept_types=parsed.accept_types,
            accept_wrapped_types=parsed.accept_wrapped_types,
            tls=parsed.tls,
            chatroom=parsed.chatroom,
        )
    return None


def _answered(index: int, ours: MediaDescription, theirs: MediaDescription) -> bool:
    """The answer's m-line `index` to our line `ours`: False when it is rejected (port 0,
    RFC 3264 6); raises :class:`InvalidAnswerError` when it changed the media or the
    transport (RFC 3264 6: an answer keeps both)."""
    if theirs.media != ours.media:
        raise InvalidAnswerError(f"m-line {index} is {theirs.media}, we offered {ours.media}")
    if theirs.port == 0:
        return False
    if theirs.proto != ours.proto:
        raise InvalidAnswerError(f"m-line {index} answered with {theirs.proto}")
    return True


def read_msrp_answer(
    answer: SessionDescription,
    ours: MediaDescription,
    theirs: MediaDescription,
    *,
    index: int,
    kind: str,
    direction: Direction,
) -> tuple[MsrpMedia, Setup, Setup] | None:
    """Read the answer `theirs` (m-line `index`) to our offered MSRP line `ours`: ``None``
    when it is rejected (port 0, RFC 3264 6), else (the line, its ``a=setup``, our role).

    The answer must be on the offered transport and in `direction` (RFC 5547 8 for a file,
    ``sendrecv`` for chat).  Our role follows the answer's ``a=setup`` (RFC 4145 4, RFC 6135
    4.1, BLINK.md 7): ``passive`` or none means we connect, ``active`` that we wait; anything
    else, like a bad ``a=path``, raises :class:`InvalidAnswerError` (`kind` names the stream).
    """
    if not _answered(index, ours, theirs):
        return None
    parsed = parse_msrp_media(answer, theirs)
    if isinstance(parsed, str):
        raise InvalidAnswerError(f"m-line {index}: {parsed}")
    if parsed.direction is not direction:
        raise InvalidAnswerError(f"m-line {index}: {kind} answered {parsed.direction.value}")
    remote_setup = parsed.setup if theirs.attribute("setup") is not None else Setup.PASSIVE
    match remote_setup:
        case Setup.PASSIVE | Setup.ACTPASS:  # actpass is no answer (RFC 4145 4): we connect
            local_setup = Setup.ACTIVE
        case Setup.ACTIVE:
            local_setup = Setup.PASSIVE
        case _:
            raise InvalidAnswerError(f"m-line {index}: a=setup:{remote_setup.value}")
    return parsed, remote_setup, local_setup


def _answered_crypto(
    index: int, ours: MediaDescription, theirs: MediaDescription
) -> tuple[CryptoAttribute | None, CryptoAttribute | None]:
    """(their line, our line with the same tag) from an answer (RFC 4568 7.1.2, 7.5): exactly
    one ``a=crypto``, tag and suite of one of our lines.  Plain RTP is fine only when we
    offered ``RTP/AVP`` (opportunistic SRTP)."""
    offered = {
        c.tag: c for c in (CryptoAttribute.parse(v) for v in ours.attribute_values("crypto"))
    }
    values = theirs.attribute_values("crypto")
    if not offered or not values:
        if offered and ours.proto == "RTP/SAVP":
            raise InvalidAnswerError(f"m-line {index}: RTP/SAVP answered without a=crypto")
        return None, None
    if len(values) != 1:
        raise InvalidAnswerError(f"m-line {index}: the answer must have one a=crypto line")
    crypto = choose_crypto(values)
    if crypto is None:
        raise InvalidAnswerError(f"m-line {index}: unusable a=crypto line in the answer")
    mine = offered.get(crypto.tag)
    if mine is None or mine.suite != crypto.suite:
        raise InvalidAnswerError(f"m-line {index}: a=crypto tag {crypto.tag} was not offered")
    return crypto, mine


def _capabilities_of(offer_media: MediaDescription) -> Capabilities:
    """The codecs listed in one of our own offers (without telephone-event)."""
    specs: list[CodecSpec] = []
    for pt in offer_media.payload_types():
        rtpmap = offer_media.rtpmap(pt)
        if rtpmap is not None and rtpmap.encoding_name.lower() != TELEPHONE_EVENT:
            specs.append(
                CodecSpec(
                    name=rtpmap.encoding_name,
                    clock_rate=rtpmap.clock_rate,
                    channels=rtpmap.channels,
                    fmtp=offer_media.fmtp(pt),
                )
            )
    if not specs:
        raise InvalidAnswerError("our offer lists no codec")
    return Capabilities(codecs=tuple(specs))
