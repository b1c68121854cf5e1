"""Tests for sylkbox.msrp.iscomposing (RFC 3994 is-composing documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.msrp import iscomposing
from sylkbox.msrp.errors import RemoteProtocolError
from sylkbox.msrp.iscomposing import ComposingState, IsComposing, IsComposingError

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_active_with_refresh_round_trips_exactly() -> None:
    data = vector("payload_iscomposing_active.xml")
    document = iscomposing.parse(data)
    assert document == IsComposing(state=ComposingState.ACTIVE, content_type="text", refresh=120)
    assert document.to_bytes() == data
    assert iscomposing.build(document) == data


def test_idle_without_refresh_defaults_to_120() -> None:
    data = vector("payload_iscomposing_idle.xml")
    document = iscomposing.parse(data)
    assert document.state is ComposingState.IDLE
    assert document.refresh is None
    assert document.effective_refresh == iscomposing.DEFAULT_REFRESH == 120
    assert document.to_bytes() == data


def test_rfc3994_example_with_lastactive_and_schema_attributes() -> None:
    document = iscomposing.parse(vector("payload_iscomposing_rfc3994.xml"))
    assert document.state is ComposingState.IDLE
    assert document.last_active == datetime(2003, 1, 27, 10, 43, tzinfo=UTC)
    assert document.content_type == "audio"
    again = iscomposing.parse(document.to_bytes())
    assert again == document
    # Schema order: state, lastactive, contenttype, refresh.
    data = document.to_bytes()
    assert data.index(b"<state>") < data.index(b"<lastactive>") < data.index(b"<contenttype>")


def test_element_order_matches_sylkserver() -> None:
    data = IsComposing(state=ComposingState.ACTIVE, refresh=60).to_bytes()
    assert data == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
        b"<state>active</state><contenttype>text</contenttype><refresh>60</refresh>"
        b"</isComposing>"
    )


def test_unknown_elements_from_other_namespaces_are_ignored() -> None:
    data = (
        b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing" xmlns:x="urn:x">'
        b"<state> Active </state><x:mood>happy</x:mood><!-- c --><?pi x?></isComposing>"
    )
    assert iscomposing.parse(data).state is ComposingState.ACTIVE


@pytest.mark.parametrize(
    "name",
    [
        "payload_iscomposing_invalid_doctype.xml",
        "payload_iscomposing_invalid_external.xml",
        "payload_iscomposing_invalid_state.xml",
        "payload_iscomposing_invalid_namespace.xml",
        "payload_iscomposing_truncated.xml",
    ],
)
def test_invalid_vectors(name: str) -> None:
    with pytest.raises(IsComposingError) as info:
        iscomposing.parse(vector(name))
    assert info.value.status == 400
    assert isinstance(info.value, RemoteProtocolError)


NS = b'xmlns="urn:ietf:params:xml:ns:im-iscomposing"'


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<isComposing " + NS + b"/>", "missing <state>"),
        (
            b"<isComposing " + NS + b"><state>active</state><state>idle</state></isComposing>",
            "more",
        ),
        (
            b"<isComposing " + NS + b"><state>active</state><refresh>0</refresh></isComposing>",
            "positive",
        ),
        (
            b"<isComposing " + NS + b"><state>active</state><refresh>-1</refresh></isComposing>",
            "refresh",
        ),
        (
            b"<isComposing "
            + NS
            + b"><state>active</state><refresh>\xd9\xa3</refresh></isComposing>",
            "refresh",
        ),
        (
            b"<isComposing "
            + NS
            + b"><state>active</state><lastactive>x</lastactive></isComposing>",
            "lastactive",
        ),
        (b"<isComposing " + NS + b"><state><b/>active</state></isComposing>", "text only"),
        (b"<isComposing " + NS + b">" + b"<a>" * 20 + b"</a>" * 20 + b"</isComposing>", "deep"),
        (
            b"<isComposing " + NS + b"><state>active</state>" + b" " * 9000 + b"</isComposing>",
            "larger",
        ),
        (b"\xff\xfe<", "malformed"),
    ],
)
def test_refused_documents(body: bytes, match: str) -> None:
    with pytest.raises(IsComposingError, match=match):
        iscomposing.parse(body)


def test_invalid_construction() -> None:
    with pytest.raises(IsComposingError):
        IsComposing(state="active")  # type: ignore[arg-type]
    with pytest.raises(IsComposingError):
        IsComposing(state=ComposingState.IDLE, refresh=0)
    naive = IsComposing(state=ComposingState.IDLE, last_active=datetime(2024, 1, 1))
    assert naive.last_active == datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    state=st.sampled_from(ComposingState),
    content_type=st.none()
    | st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20
    ).map(str.strip),
    refresh=st.none() | st.integers(min_value=1, max_value=10**6),
    last_active=st.none() | st.datetimes(timezones=st.just(UTC)),
)
def test_round_trip(
    state: ComposingState,
    content_type: str | None,
    refresh: int | None,
    last_active: datetime | None,
) -> None:
    document = IsComposing(
        state=state, content_type=content_type, refresh=refresh, last_active=last_active
    )
    assert iscomposing.parse(document.to_bytes()) == document


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        iscomposing.parse(data)
    except IsComposingError as exc:
        assert exc.status == 400


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(sorted(p.name for p in VECTORS.glob("payload_iscomposing_*.xml"))),
    st.integers(min_value=0, max_value=400),
    st.binary(max_size=6),
    st.integers(min_value=0, max_value=6),
)
def test_fuzz_mutated_vectors(name: str, position: int, insert: bytes, delete: int) -> None:
    data = vector(name)
    position %= len(data) + 1
    try:
        document = iscomposing.parse(data[:position] + insert + data[position + delete :])
    except IsComposingError:
        return
    assert iscomposing.parse(document.to_bytes()) == document


def test_control_characters_in_contenttype_are_refused() -> None:
    with pytest.raises(IsComposingError):
        IsComposing(state=ComposingState.ACTIVE, content_type="te\x01xt")
    with pytest.raises(IsComposingError):
        iscomposing.parse(
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>idle</state>'
            b"<contenttype>a&#x9;b</contenttype></isComposing>"
        )
