"""Tests for sylkbox.msrp.parser (RFC 4975 7.1 framing, section 9 ABNF, BLINK.md 7 limits).

Golden vectors (golden_*.msrp) come from an independent client; core_*.msrp are ours.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.msrp.errors import ParseError
from sylkbox.msrp.message import MsrpRequest, MsrpResponse
from sylkbox.msrp.parser import MsrpParser, ParserLimits

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
GOOD_GOLDEN = sorted(p for p in VECTORS.glob("golden_*.msrp") if "_bad_" not in p.name)
GOOD_CORE = [
    VECTORS / f"core_{n}.msrp"
    for n in (
        "chunked_in_order",
        "out_of_order",
        "aborted",
        "body_with_endline_lookalike",
        "empty_body",
        "response_ipv6",
    )
]


def parse_all(data: bytes, parser: MsrpParser | None = None) -> list[MsrpRequest | MsrpResponse]:
    parser = parser or MsrpParser()
    parser.feed(data)
    out = []
    while (message := parser.next_message()) is not None:
        out.append(message)
    return out


@pytest.mark.parametrize("path", GOOD_GOLDEN + GOOD_CORE, ids=lambda p: p.name)
def test_vectors_round_trip_exactly(path: Path) -> None:
    data = path.read_bytes()
    parser = MsrpParser()
    messages = parse_all(data, parser)
    assert messages
    assert parser.buffered == 0
    assert b"".join(m.to_bytes() for m in messages) == data


@pytest.mark.parametrize("path", GOOD_GOLDEN + GOOD_CORE, ids=lambda p: p.name)
def test_vectors_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    parser = MsrpParser()
    messages = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        while (message := parser.next_message()) is not None:
            messages.append(message)
    assert messages == parse_all(data)


def test_golden_chat_send_fields() -> None:
    (msg,) = parse_all((VECTORS / "golden_chat_send.msrp").read_bytes())
    assert isinstance(msg, MsrpRequest)
    assert msg.method == "SEND" and msg.continuation == "$"
    assert msg.content_type == "message/cpim"
    assert msg.success_report and msg.failure_report == "yes"
    br = msg.byte_range
    assert br is not None and br.start == 1 and br.total == len(msg.body)
    assert msg.to_path[0].session_id == "1d2c3b4a5968778695a4"


def test_golden_relay_path_has_two_uris() -> None:
    (msg,) = parse_all((VECTORS / "golden_relay_send.msrp").read_bytes())
    assert isinstance(msg, MsrpRequest)
    assert [u.host for u in msg.to_path] == ["relay.example.net", "192.168.1.10"]


def test_golden_nickname_and_offset() -> None:
    (nick,) = parse_all((VECTORS / "golden_nickname.msrp").read_bytes())
    assert isinstance(nick, MsrpRequest) and nick.method == "NICKNAME"
    assert nick.header("Use-Nickname")
    (resp,) = parse_all((VECTORS / "golden_file_offset_200.msrp").read_bytes())
    assert isinstance(resp, MsrpResponse) and resp.status == 200
    assert resp.header("Offset") == "0"


def test_core_chunks_and_flags() -> None:
    msgs = parse_all((VECTORS / "core_chunked_in_order.msrp").read_bytes())
    assert [m.continuation for m in msgs if isinstance(m, MsrpRequest)] == ["+", "+", "$"]
    assert b"".join(m.body for m in msgs if isinstance(m, MsrpRequest)) == (
        b"abcdefghijklmnopqrstuvwxyz0123"
    )
    aborted = parse_all((VECTORS / "core_aborted.msrp").read_bytes())
    assert [m.continuation for m in aborted if isinstance(m, MsrpRequest)] == ["+", "#"]
    (tricky,) = parse_all((VECTORS / "core_body_with_endline_lookalike.msrp").read_bytes())
    assert isinstance(tricky, MsrpRequest)
    assert tricky.body == b"x\r\n-------tr1ckyidX\r\n-------other$"
    (empty,) = parse_all((VECTORS / "core_empty_body.msrp").read_bytes())
    assert isinstance(empty, MsrpRequest) and empty.body == b"" and empty.content_type
    (v6,) = parse_all((VECTORS / "core_response_ipv6.msrp").read_bytes())
    assert isinstance(v6, MsrpResponse) and v6.comment is None
    assert v6.to_path[0].address == ("2001:db8::1", 2855)


@pytest.mark.parametrize(
    "name", ["core_truncated", "golden_bad_missing_end_line", "golden_bad_end_line_other_tid"]
)
def test_truncated_waits(name: str) -> None:
    data = (VECTORS / f"{name}.msrp").read_bytes()
    parser = MsrpParser()
    assert parse_all(data, parser) == []
    assert parser.buffered == len(data)


def test_empty_body_without_data_crlf_is_tolerated() -> None:
    data = (
        b"MSRP t0001 SEND\r\nTo-Path: msrp://b/s;tcp\r\nFrom-Path: msrp://a/s;tcp\r\n"
        b"Message-ID: m\r\nContent-Type: text/plain\r\n\r\n-------t0001$\r\n"
    )
    (msg,) = parse_all(data)
    assert isinstance(msg, MsrpRequest) and msg.body == b""


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("golden_bad_65_headers", 400),
        ("golden_bad_header_too_long", 400),
        ("golden_bad_no_to_path", 400),
        ("golden_bad_status_code", 400),
        ("core_invalid_to_path", 400),
    ],
)
def test_recoverable_errors(name: str, status: int) -> None:
    data = (VECTORS / f"{name}.msrp").read_bytes()
    next_msg = (VECTORS / "golden_chat_send.msrp").read_bytes()
    parser = MsrpParser()
    parser.feed(data + next_msg)
    with pytest.raises(ParseError) as info:
        parser.next_message()
    assert info.value.recoverable and info.value.status == status
    assert info.value.transaction_id
    # the stream stays in sync: the next message parses
    msg = parser.next_message()
    assert isinstance(msg, MsrpRequest) and msg.to_bytes() == next_msg


def test_recoverable_error_carries_400_response() -> None:
    data = (
        b"MSRP t0002 SEND\r\nTo-Path: msrp://b:1/s;tcp\r\nFrom-Path: msrp://a:2/r;tcp\r\n"
        b"Bad Header Line\r\n-------t0002$\r\n"
    )
    parser = MsrpParser()
    parser.feed(data)
    with pytest.raises(ParseError) as info:
        parser.next_message()
    response = info.value.response
    assert isinstance(response, MsrpResponse)
    assert response.to_bytes() == (
        b"MSRP t0002 400 Bad Request\r\nTo-Path: msrp://a:2/r;tcp\r\n"
        b"From-Path: msrp://b:1/s;tcp\r\n-------t0002$\r\n"
    )


def test_garbage_is_fatal_and_sticky() -> None:
    parser = MsrpParser()
    parser.feed((VECTORS / "core_invalid_garbage.msrp").read_bytes())
    with pytest.raises(ParseError) as info:
        parser.next_message()
    assert not info.value.recoverable
    with pytest.raises(ParseError):
        parser.next_message()
    with pytest.raises(ParseError):
        parser.feed(b"MSRP ")


def test_limits() -> None:
    limits = ParserLimits(max_header_line=100, max_header_count=4, max_chunk_size=1000)
    parser = MsrpParser(limits)
    parser.feed(b"MSRP " + b"x" * 200)
    with pytest.raises(ParseError):
        parser.next_message()
    parser = MsrpParser(limits)
    parser.feed(b"MSRP t0003 SEND\r\n" + b"X-A: b\r\n" * 100)
    with pytest.raises(ParseError) as info:
        parser.next_message()
    assert not info.value.recoverable
    parser = MsrpParser(limits)
    parser.feed(
        b"MSRP t0004 SEND\r\nTo-Path: msrp://b/s;tcp\r\nFrom-Path: msrp://a/s;tcp\r\n"
        b"Content-Type: text/plain\r\n\r\n" + b"z" * 2000
    )
    with pytest.raises(ParseError) as info:
        parser.next_message()
    assert info.value.status == 413 and not info.value.recoverable
    with pytest.raises(ValueError):
        ParserLimits(max_header_count=0)


def test_stray_crlf_between_messages() -> None:
    data = (VECTORS / "golden_bind_send.msrp").read_bytes()
    assert len(parse_all(b"\r\n" + data + b"\r\n\r\n" + data)) == 2


def test_large_stream_compacts_buffer() -> None:
    chunk = (VECTORS / "golden_file_chunk_first.msrp").read_bytes()
    parser = MsrpParser()
    count = 0
    for _ in range(10):
        parser.feed(chunk)
        while parser.next_message() is not None:
            count += 1
    assert count == 10 and parser.buffered == 0


ALL_GOOD = b"".join(p.read_bytes() for p in GOOD_GOLDEN[:6] + GOOD_CORE[:3])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ALL_GOOD)), max_size=12))
def test_any_split_gives_same_messages(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(ALL_GOOD)]
    parser = MsrpParser()
    out = []
    for a, b in itertools.pairwise(bounds):
        parser.feed(ALL_GOOD[a:b])
        while (m := parser.next_message()) is not None:
            out.append(m)
    assert b"".join(m.to_bytes() for m in out) == ALL_GOOD


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=len(ALL_GOOD)))
def test_fuzz_only_parse_error(noise: bytes, where: int) -> None:
    data = ALL_GOOD[:where] + noise + ALL_GOOD[where:]
    parser = MsrpParser()
    parser.feed(data)
    for _ in range(50):
        try:
            if parser.next_message() is None:
                break
        except ParseError as exc:
            if not exc.recoverable:
                break
