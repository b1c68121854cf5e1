"""Tests for sylkbox.msrp.cpim: message/cpim as Blink and SylkServer write it (RFC 3862)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.msrp import cpim, iscomposing
from sylkbox.msrp.cpim import CpimError, CpimMessage, Identity
from sylkbox.msrp.errors import RemoteProtocolError

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
ROOM = "sip:room@sylkbox.local"
NOW = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


# -- valid vectors: fields and exact-bytes round trips -----------------------------------------


def test_blink_chat_with_lf_inner_part() -> None:
    data = vector("payload_blink_chat.cpim")
    message = cpim.parse(data)
    assert message.from_ == Identity("Alice Smith", "sip:alice@192.168.1.20")
    assert message.to == (Identity(None, "sip:room@sylkbox.local"),)
    assert message.datetime == datetime(
        2024, 5, 2, 10, 15, 30, 123456, tzinfo=timezone(timedelta(hours=2))
    )
    assert message.content_eol == "\n"
    assert message.content_headers == (
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf8"'),
        ("Content-Transfer-Encoding", ""),
    )
    assert message.content_type == "text/plain"
    assert message.charset == "utf8"
    # The body is kept byte for byte, mixed line ends included.
    assert message.body == "Hello room é€\nsecond line\r\nthird\n".encode()
    assert message.text() == "Hello room é€\nsecond line\r\nthird\n"
    assert not message.is_private(ROOM)
    assert not message.is_status
    assert message.to_bytes() == data


def test_sylkserver_status_message_is_what_build_status_writes() -> None:
    data = vector("payload_sylkserver_status.cpim")
    message = cpim.parse(data)
    assert message.is_status
    assert message.from_ == Identity.room(ROOM) == Identity("Conference Room", ROOM)
    assert message.to == (Identity.room("room@sylkbox.local"),)
    assert message.namespaces == {"agp": cpim.AGP_NAMESPACE}
    assert message.extension(cpim.AGP_NAMESPACE, "Message-Type") == "status"
    assert message.to_bytes() == data
    built = cpim.build_status(
        ROOM,
        "Alice Smith <alice@192.168.1.20> has joined the room with audio and chat",
        now=NOW,
    )
    assert built.to_bytes() == data
    assert built == message


def test_private_message_keeps_z_datetime_text() -> None:
    data = vector("payload_blink_private.cpim")
    message = cpim.parse(data)
    assert message.is_private(ROOM)
    assert message.is_private("room@sylkbox.local")
    assert message.datetime == datetime(2024, 5, 2, 10, 16, tzinfo=UTC)
    assert message.to_bytes() == data


def test_iscomposing_wrapped_in_cpim_keeps_unknown_namespace_headers() -> None:
    data = vector("payload_blink_iscomposing.cpim")
    message = cpim.parse(data)
    assert message.content_type == iscomposing.CONTENT_TYPE
    assert message.charset is None
    assert message.ns_headers == (
        ("", "NS", "imdn <urn:ietf:params:imdn>"),
        ("imdn", "Message-ID", "7a1b2c3d"),
    )
    assert message.extension("urn:ietf:params:imdn", "Message-ID") == "7a1b2c3d"
    assert iscomposing.parse(message.body).refresh == 60
    assert message.to_bytes() == data


def test_quoted_display_name_with_escapes_cc_subject_required() -> None:
    data = vector("payload_quoted_name.cpim")
    message = cpim.parse(data)
    assert message.from_ is not None
    assert message.from_.display_name == 'Dr. "Who" \\ <TARDIS>'
    assert message.cc == (Identity(None, "sip:carol@192.168.1.31"),)
    assert message.subject == ("hi",)
    assert message.required == ("Foo", "Bar")
    assert message.datetime is None
    assert message.to_bytes() == data


def test_screensharing_frame() -> None:
    data = vector("payload_blink_screensharing.cpim")
    message = cpim.parse(data)
    assert message.content_type == "application/blink-screensharing"
    assert message.body.startswith(b"/9j/")
    assert message.to_bytes() == data


def test_bad_datetime_is_treated_as_absent_like_sipsimple() -> None:
    message = cpim.parse(vector("payload_bad_datetime.cpim"))
    assert message.datetime is None
    relayed = cpim.build_relayed(message, room_uri=ROOM, now=NOW)
    assert relayed.datetime == NOW
    assert b"DateTime: 2024-05-02T08:00:00+00:00\r\n" in relayed.to_bytes()


# -- invalid, hostile and truncated vectors ---------------------------------------------------

INVALID = [
    "payload_invalid_no_blank_line.cpim",
    "payload_invalid_lf_only_headers.cpim",
    "payload_invalid_header_without_colon.cpim",
    "payload_invalid_huge_header.cpim",
    "payload_invalid_non_utf8.cpim",
    "payload_invalid_two_from.cpim",
    "payload_invalid_bad_identity.cpim",
    "payload_invalid_aliased_from.cpim",
    "payload_truncated.cpim",
]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vectors_are_refused_with_400(name: str) -> None:
    with pytest.raises(CpimError) as info:
        cpim.parse(vector(name))
    assert info.value.status == 400
    assert info.value.reason
    assert isinstance(info.value, RemoteProtocolError)
    assert isinstance(info.value, ValueError)


def test_header_count_and_size_limits() -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(65))
    with pytest.raises(CpimError, match="more than 64"):
        cpim.parse(b"From: <sip:a@b>\r\n" + many + b"\r\nContent-Type: text/plain\r\n\r\n")
    ok = cpim.parse(b"From: <sip:a@b>\r\n" + many + b"\r\n\r\n", max_headers=100)
    assert len(ok.ns_headers) == 65
    with pytest.raises(CpimError, match="larger"):
        cpim.parse(b"X: " + b"a" * 100 + b"\r\n\r\nbody", max_header_bytes=50)


def test_aliased_standard_prefix_counts_as_standard_header() -> None:
    data = b"NS: s <urn:ietf:params:cpim-headers:>\r\ns.From: <sip:a@b>\r\n\r\n\r\nx"
    message = cpim.parse(data)
    assert message.from_ == Identity(None, "sip:a@b")
    assert message.body == b"x"


def test_lenient_inner_part() -> None:
    # No inner headers at all, CRLF style.
    message = cpim.parse(b"From: <sip:a@b>\r\n\r\n\r\nbody")
    assert message.content_headers == ()
    assert message.content_type == "text/plain"
    assert message.body == b"body"
    assert message.to_bytes() == b"From: <sip:a@b>\r\n\r\n\r\nbody"
    # A body without any MIME header line is taken as the body (email-module behaviour).
    message = cpim.parse(b"From: <sip:a@b>\r\n\r\nhello there")
    assert message.body == b"hello there"
    assert cpim.parse(message.to_bytes()) == message
    # Headers with no blank line and no body; folded header.
    message = cpim.parse(b"\r\n\r\nContent-Type: text/plain;\n charset=utf-8\n")
    assert message.charset == "utf-8"
    assert message.body == b""
    assert message.from_ is None
    # Unknown charset: decoding falls back to UTF-8 and never raises.
    message = cpim.parse(b"\r\n\r\nContent-Type: text/plain; charset=zlib_codec\n\n\xff")
    assert message.text() == "\ufffd"
    message = cpim.parse(b"\r\n\r\nContent-Type: text/plain; charset=nonexistent\n\nok")
    assert message.text() == "ok"


def test_non_utf8_inner_header_is_refused() -> None:
    with pytest.raises(CpimError):
        cpim.parse(b"From: <sip:a@b>\r\n\r\nContent-Type: text/\xff\n\nx")


# -- identities --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sip:alice@example.com", "sip:alice@EXAMPLE.com", True),
        ("sip:alice@example.com:5061;transport=tls", "sips:alice@example.com", True),
        ("Alice <sip:alice@example.com>", "Bob <sip:alice@example.com>", True),
        ("alice@example.com", "sip:alice@example.com", True),
        ("sip:al%69ce@example.com", "sip:alice@example.com", True),
        ("sip:alice@[::1]:5060", "sip:alice@[::1]", True),
        ("sip:alice@example.com", "sip:Alice@example.com", False),
        ("sip:alice@example.com", "sip:alice@example.org", False),
        ("sip:alice:secret@example.com", "sip:alice@example.com", True),
    ],
)
def test_same_identity(a: str, b: str, same: bool) -> None:
    assert cpim.same_identity(a, b) is same
    assert cpim.same_identity(b, a) is same


@pytest.mark.parametrize(
    ("text", "display", "uri"),
    [
        ("<sip:a@b>", None, "sip:a@b"),
        ("Alice <sip:a@b>", "Alice", "sip:a@b"),
        ('"Alice" <sip:a@b>', "Alice", "sip:a@b"),
        ('"" <sip:a@b>', None, "sip:a@b"),
        ('Bob "B" Smith <sip:a@b>', 'Bob "B" Smith', "sip:a@b"),
        ('"a<b" <sip:a@b>', "a<b", "sip:a@b"),
        ("  Alice   <sip:a@b>  ", "Alice", "sip:a@b"),
        ("<im:pooh@100akerwood.com>", None, "im:pooh@100akerwood.com"),
    ],
)
def test_identity_parse(text: str, display: str | None, uri: str) -> None:
    assert Identity.parse(text) == Identity(display, uri)


@pytest.mark.parametrize(
    "text",
    ["sip:a@b", "Alice <sip:a@b", "<>", "<not a uri>", "Alice <sip:a b@c>", "A <x> <sip:a@b>"],
)
def test_identity_parse_refuses(text: str) -> None:
    with pytest.raises(CpimError):
        Identity.parse(text)


def test_identity_str_is_unquoted_when_blink_would_write_it_so() -> None:
    assert str(Identity("Alice Smith", "sip:a@b")) == "Alice Smith <sip:a@b>"
    assert str(Identity(None, "sip:a@b")) == "<sip:a@b>"
    assert str(Identity(" padded", "sip:a@b")) == '" padded" <sip:a@b>'
    assert str(Identity("new\nline", "sip:a@b")) == '"new\\u000aline" <sip:a@b>'


# -- builders ----------------------------------------------------------------------------------


def test_build_relayed_public_message() -> None:
    original = cpim.parse(vector("payload_blink_iscomposing.cpim"))
    relayed = cpim.build_relayed(original, room_uri=ROOM, nickname="ali", now=NOW)
    assert relayed.from_ == Identity("ali", "sip:alice@192.168.1.20")
    assert relayed.to == (Identity("Conference Room", ROOM),)
    assert relayed.datetime == original.datetime
    assert relayed.ns_headers == original.ns_headers
    assert relayed.body == original.body
    data = relayed.to_bytes()
    assert data.startswith(
        b"From: ali <sip:alice@192.168.1.20>\r\n"
        b"To: Conference Room <sip:room@sylkbox.local>\r\n"
        b"DateTime: 2024-05-02T10:15:29.5+02:00\r\n"
        b"NS: imdn <urn:ietf:params:imdn>\r\n"
        b"imdn.Message-ID: 7a1b2c3d\r\n\r\n"
    )
    # Without a nickname the original display name stays.
    plain = cpim.build_relayed(original, room_uri=ROOM, now=NOW)
    assert plain.from_ == original.from_


def test_build_relayed_private_keeps_to() -> None:
    original = cpim.parse(vector("payload_blink_private.cpim"))
    relayed = cpim.build_relayed(original, room_uri=ROOM, now=NOW)
    assert relayed.to == original.to
    assert relayed.to_bytes() == vector("payload_blink_private.cpim")


def test_build_relayed_strips_participant_status_marker() -> None:
    forged = dataclasses.replace(
        cpim.parse(vector("payload_sylkserver_status.cpim")),
        from_=Identity("Mallory", "sip:mallory@192.168.1.66"),
    )
    assert forged.is_status
    relayed = cpim.build_relayed(forged, room_uri=ROOM, now=NOW)
    assert not relayed.is_status
    assert relayed.ns_headers == (("", "NS", "agp <urn:ag-projects:xml:ns:cpim>"),)
    kept = cpim.build_relayed(forged, room_uri=ROOM, now=NOW, strip_status=False)
    assert kept.is_status


def test_build_relayed_without_from_uses_sender() -> None:
    message = cpim.parse(b"To: <sip:room@sylkbox.local>\r\n\r\n\r\nhi")
    with pytest.raises(CpimError):
        cpim.build_relayed(message, room_uri=ROOM, now=NOW)
    sender = Identity("Alice", "sip:alice@192.168.1.20")
    assert cpim.build_relayed(message, room_uri=ROOM, sender=sender, now=NOW).from_ == sender


def test_build_status_variants() -> None:
    welcome = cpim.build_status(ROOM, "Welcome!", now=NOW, status=False)
    assert not welcome.is_status
    assert welcome.ns_headers == ()
    sas = cpim.build_status(ROOM, "SAS", now=NOW, to=())
    assert sas.to == ()
    assert cpim.parse(sas.to_bytes()) == sas
    image = cpim.build_message(
        from_=Identity(None, ROOM), to=(), body=b"\xff\xd8", now=NOW, content_type="image/jpeg"
    )
    assert image.content_headers == (("Content-Type", "image/jpeg"),)


def test_naive_datetime_is_utc_and_datetime_text_only_used_when_consistent() -> None:
    message = CpimMessage(from_=None, datetime=datetime(2024, 1, 1, 12, 0))
    assert message.datetime == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    stale = CpimMessage(
        from_=None, datetime=datetime(2024, 1, 1, tzinfo=UTC), datetime_text="2020-01-01T00:00:00Z"
    )
    assert b"DateTime: 2024-01-01T00:00:00+00:00\r\n" in stale.to_bytes()


def test_invalid_construction() -> None:
    with pytest.raises(CpimError):
        CpimMessage(from_=None, content_eol="\r")
    with pytest.raises(CpimError):
        CpimMessage(from_=None, ns_headers=(("", "Bad Name", "v"),))
    with pytest.raises(CpimError):
        CpimMessage(from_=None, content_headers=(("Bad:Name", "v"),))
    with pytest.raises(CpimError):
        Identity("x", "no-scheme")


# -- property tests and fuzzing ------------------------------------------------------------------

_names = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
_uris = st.from_regex(r"sips?:[a-z0-9.]{1,10}@[a-z0-9.]{1,10}", fullmatch=True)
_identities = st.builds(Identity, st.none() | _names, _uris)
_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(str.lstrip)


@settings(max_examples=300, deadline=None)
@given(
    from_=_identities,
    to=st.lists(_identities, max_size=3),
    subject=st.lists(_values, max_size=2),
    stamp=st.none()
    | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["", "agp", "x1"]), st.sampled_from(["A", "Message-Type"]), _values
        ),
        max_size=3,
    ),
    body=st.binary(max_size=100),
    eol=st.sampled_from(["\r\n", "\n"]),
)
def test_round_trip(
    from_: Identity,
    to: list[Identity],
    subject: list[str],
    stamp: datetime | None,
    extra: list[tuple[str, str, str]],
    body: bytes,
    eol: str,
) -> None:
    message = CpimMessage(
        from_=from_,
        to=tuple(to),
        subject=tuple(subject),
        datetime=stamp,
        ns_headers=tuple(extra),
        content_headers=(("Content-Type", "text/plain"),),
        body=body,
        content_eol=eol,
    )
    data = message.to_bytes()
    parsed = cpim.parse(data)
    expected_from = from_
    if from_.display_name is not None and not from_.display_name.strip('"'):
        # An all-quote (or empty) display name is indistinguishable from a quoted empty one.
        expected_from = parsed.from_ or from_
    assert parsed.from_ == expected_from
    assert parsed.to == message.to
    assert parsed.subject == message.subject
    assert parsed.datetime == message.datetime
    assert parsed.ns_headers == message.ns_headers
    assert parsed.body == body
    assert parsed.to_bytes() == data


def _check_parse(data: bytes) -> None:
    try:
        message = cpim.parse(data)
    except CpimError as exc:
        assert exc.status == 400
        return
    # Whatever parses serializes, and the serialization parses to the same message.
    again = cpim.parse(message.to_bytes())
    assert again.body == message.body
    assert again.from_ == message.from_


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_parse(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(sorted(p.name for p in VECTORS.glob("payload_*.cpim"))),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=0, max_size=8),
    st.integers(min_value=0, max_value=8),
)
def test_fuzz_mutated_vectors(name: str, position: int, insert: bytes, delete: int) -> None:
    data = vector(name)
    position %= len(data) + 1
    _check_parse(data[:position] + insert + data[position + delete :])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"From: ",
                b"To: ",
                b"NS: ",
                b"agp.",
                b"<sip:a@b>",
                b'"',
                b"\\",
                b"\\u12",
                b"\\ud800",
                b"\r\n",
                b"\n",
                b":",
                b" ",
                b"x",
                b"\xff",
                b"DateTime: ",
                b"2024-01-01T00:00:00Z",
            ]
        ),
        max_size=30,
    )
)
def test_fuzz_header_alphabet(parts: list[bytes]) -> None:
    _check_parse(b"".join(parts) + b"\r\n\r\nContent-Type: text/plain\r\n\r\nx")


def test_same_identity_with_unreadable_input_is_false() -> None:
    assert not cpim.same_identity("not a uri at all", "sip:a@b")
    assert not cpim.same_identity("Alice <sip:a@b", "sip:a@b")
