"""Tests for sylkbox.msrp.file_selector (RFC 5547 file-selector, transfer id, x-file-offset)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.msrp import file_selector
from sylkbox.msrp.errors import RemoteProtocolError
from sylkbox.msrp.file_selector import FileSelector, FileSelectorError, safe_display_name

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
DIGEST = bytes.fromhex("ABCDEF0123456789ABCDEF0123456789ABCDEF01")


def vector(name: str) -> str:
    # As sylkbox.sdp hands attribute values over: UTF-8 with raw bytes as surrogate escapes.
    return (VECTORS / name).read_bytes().decode("utf-8", "surrogateescape")


def test_upload_selector_round_trips_exactly() -> None:
    text = vector("payload_file_selector_upload.txt")
    selector = file_selector.parse(text)
    assert selector == FileSelector(
        name="report.pdf", type="application/pdf", size=12345, hash=DIGEST
    )
    assert selector.hash_text == "sha-1:" + ":".join(f"{b:02X}" for b in DIGEST)
    assert str(selector) == text
    assert file_selector.parse("file-selector:" + text) == selector
    assert file_selector.parse("a=file-selector:" + text + "  ") == selector


def test_pull_selector_has_only_name_and_hash() -> None:
    text = vector("payload_file_selector_pull.txt")
    selector = file_selector.parse(text)
    assert selector == FileSelector(name="report.pdf", hash=DIGEST)
    assert selector.type is None
    assert selector.size is None
    assert str(selector) == text
    full = file_selector.parse(vector("payload_file_selector_upload.txt"))
    assert selector.matches(full)
    assert not full.matches(selector)


def test_escaped_name_round_trips_exactly() -> None:
    text = vector("payload_file_selector_escaped.txt")
    selector = file_selector.parse(text)
    assert selector.name == 'My "best" 100% résumé.txt'
    assert str(selector) == text


def test_lenient_sha1_prefix_and_lower_case_hex() -> None:
    selector = file_selector.parse(vector("payload_file_selector_sha1_lower.txt"))
    assert selector.name == "a b.jpg"
    assert selector.hash == DIGEST
    assert "hash:sha-1:AB:CD:EF:01" in str(selector)


def test_hostile_name_is_decoded_safely_and_displayed_harmlessly() -> None:
    selector = file_selector.parse(vector("payload_file_selector_hostile_name.txt"))
    assert selector.name is not None
    assert "\x00" in selector.name
    assert "\ufffd" in selector.name  # the bytes that are not UTF-8
    selector.name.encode("utf-8")  # no surrogates left
    shown = selector.display_name
    assert shown == safe_display_name(selector.name)
    assert "/" not in shown
    assert "\x00" not in shown
    assert "\u202e" not in shown
    assert shown.startswith("passwd")
    # The encoded form is valid per RFC 5547 (NUL percent-encoded) and parses back.
    assert "%00" in str(selector)
    assert file_selector.parse(str(selector)) == selector


@pytest.mark.parametrize(
    "name",
    [
        "payload_file_selector_invalid_hash.txt",
        "payload_file_selector_invalid_unterminated.txt",
        "payload_file_selector_invalid_size.txt",
    ],
)
def test_invalid_vectors(name: str) -> None:
    with pytest.raises(FileSelectorError) as info:
        file_selector.parse(vector(name))
    assert info.value.status == 400
    assert isinstance(info.value, RemoteProtocolError)


@pytest.mark.parametrize(
    "text",
    [
        "name:report.pdf",
        'name:"a"junk',
        "size:12 size:13",
        "size:99999999999999999999",
        "type:nonsense",
        "hash:md5:AB:CD",
        "hash:sha-1:GG:00",
        "hash:sha-1:" + ":".join(["AB"] * 21),
        "bogus",
        "x" * 9000,
    ],
)
def test_refused_selectors(text: str) -> None:
    with pytest.raises(FileSelectorError):
        file_selector.parse(text)


def test_unknown_selectors_are_ignored_and_empty_is_allowed() -> None:
    assert file_selector.parse('name:"a" future:thing') == FileSelector(name="a")
    assert file_selector.parse("") == FileSelector()
    assert str(FileSelector()) == ""


def test_hash_helpers() -> None:
    digest = hashlib.sha1(b"hello").digest()
    text = file_selector.format_hash(digest)
    assert text == "sha-1:AA:F4:C6:1D:DC:C5:E8:A2:DA:BE:DE:0F:3B:48:2C:D9:AE:A9:43:4D"
    assert file_selector.parse_hash(text) == digest
    assert file_selector.parse_hash(text.lower().replace("sha-1", "SHA1")) == digest
    with pytest.raises(FileSelectorError):
        file_selector.format_hash(b"short")
    with pytest.raises(FileSelectorError):
        file_selector.parse_hash("AA:BB")


def test_transfer_id_and_attributes() -> None:
    transfer_id = file_selector.new_file_transfer_id()
    assert uuid.UUID(transfer_id).version == 4
    assert file_selector.parse_file_transfer_id(f" {transfer_id} ") == transfer_id
    for bad in ("", "a b", "x" * 300, "a\x00"):
        with pytest.raises(FileSelectorError):
            file_selector.parse_file_transfer_id(bad)
    selector = FileSelector(name="f.txt", type="text/plain", size=3, hash=DIGEST)
    assert file_selector.file_attributes(selector, transfer_id="abc", file_offset=True) == [
        ("file-selector", str(selector)),
        ("x-file-offset", None),
        ("file-transfer-id", "abc"),
    ]
    assert file_selector.file_attributes(selector) == [("file-selector", str(selector))]


def test_invalid_construction() -> None:
    with pytest.raises(FileSelectorError):
        FileSelector(size=-1)
    with pytest.raises(FileSelectorError):
        FileSelector(hash=b"x")
    with pytest.raises(FileSelectorError):
        FileSelector(type="text plain")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32", "system32"),
        ("..", "file"),
        ("", "file"),
        ("dir/", "file"),
        ("a\x00b\r\nc", "a b c"),
        ("  many   spaces  ", "many spaces"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        (b"caf\xe9.txt", "caf\ufffd.txt"),
        ("bad\udcffname", "bad\ufffdname"),
        ("e\u0301", "\u00e9"),
    ],
)
def test_safe_display_name(name: str | bytes, shown: str) -> None:
    assert safe_display_name(name) == shown


def test_safe_display_name_truncates_keeping_extension() -> None:
    shown = safe_display_name("a" * 1000 + ".pdf")
    assert len(shown) == 128
    assert shown.endswith("\u2026.pdf")
    shown = safe_display_name("b" * 1000, max_length=40)
    assert len(shown) == 40
    assert shown.endswith("\u2026")


_names = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_types = st.none() | st.sampled_from(["application/pdf", "text/plain;charset=utf-8", "image/jpeg"])


@settings(max_examples=300, deadline=None)
@given(
    name=st.none() | _names,
    type_=_types,
    size=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    digest=st.none() | st.binary(min_size=20, max_size=20),
)
def test_round_trip(
    name: str | None, type_: str | None, size: int | None, digest: bytes | None
) -> None:
    selector = FileSelector(name=name, type=type_, size=size, hash=digest)
    text = str(selector)
    parsed = file_selector.parse(text)
    assert parsed == selector
    assert str(parsed) == text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_parse(text: str) -> None:
    try:
        selector = file_selector.parse(text)
    except FileSelectorError as exc:
        assert exc.status == 400
        return
    assert file_selector.parse(str(selector)) == selector
    safe_display_name(selector.name or "").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_safe_display_name(data: bytes) -> None:
    for value in (data, data.decode("utf-8", "surrogateescape")):
        shown = safe_display_name(value)
        shown.encode("utf-8")
        assert shown
        assert "/" not in shown
        assert "\\" not in shown
        assert shown not in (".", "..")
        assert not any(ord(c) < 32 or ord(c) == 127 for c in shown)
        assert len(shown) <= 128
