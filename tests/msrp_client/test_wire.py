"""Golden MSRP vectors (tests/vectors/msrp/golden_*.msrp) against the independent wire module."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.msrp_client.cpim import AGP_NAMESPACE, build_cpim, parse_cpim
from tests.msrp_client.sdp import file_selector, sdp_body, sdp_media
from tests.msrp_client.wire import (
    MAX_HEADERS,
    MAX_LINE,
    ByteRange,
    Chunk,
    WireError,
    WireParser,
    build_report,
    build_request,
    build_response,
    byte_range_for,
    parse_uri,
    validate,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
GOOD = sorted(p for p in VECTORS.glob("golden_*.msrp") if not p.name.startswith("golden_bad_"))
BAD = sorted(VECTORS.glob("golden_bad_*.msrp"))

BLINK = "msrps://192.168.1.20:2855/8f3a1c9e5b7d2f0a4c6e;tcp"
FOCUS = "msrps://192.168.1.10:2855/1d2c3b4a5968778695a4;tcp"
RELAY = "msrps://relay.example.net:2855/7e6d5c4b3a2910f8e7d6;tcp"


def load(name: str) -> bytes:
    return (VECTORS / f"golden_{name}.msrp").read_bytes()


def parse_one(data: bytes) -> Chunk:
    parser = WireParser()
    parser.feed(data)
    chunk = parser.next_chunk()
    assert chunk is not None
    assert parser.next_chunk() is None
    assert parser.pending == 0
    return chunk


def test_vector_set_is_complete() -> None:
    assert len(GOOD) == 20
    assert len(BAD) == 8


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_golden_round_trip(path: Path) -> None:
    data = path.read_bytes()
    chunk = parse_one(data)
    validate(chunk)
    assert chunk.raw == data
    assert chunk.to_bytes() == data
    assert chunk.header_names()[:2] == ["To-Path", "From-Path"]
    if chunk.content_type is not None:
        assert chunk.header_names()[-1] == "Content-Type"


def test_all_golden_streamed_in_odd_pieces() -> None:
    stream = b"".join(p.read_bytes() for p in GOOD)
    parser = WireParser()
    got: list[Chunk] = []
    for start in range(0, len(stream), 977):
        parser.feed(stream[start:start + 977])
        while (chunk := parser.next_chunk()) is not None:
            got.append(chunk)
    parser.eof()
    assert [c.raw for c in got] == [p.read_bytes() for p in GOOD]


def test_bind_send() -> None:
    chunk = parse_one(load("bind_send"))
    assert (chunk.method, chunk.transaction_id, chunk.flag) == ("SEND", "5e2b9a7c31d04f86", "$")
    assert chunk.to_path == [FOCUS] and chunk.from_path == [BLINK]
    assert chunk.header_names() == ["To-Path", "From-Path", "Byte-Range", "Message-ID"]
    assert chunk.byte_range == ByteRange(1, 0, 0)
    assert chunk.body == b""
    # No report headers: the defaults apply (RFC 4975 7.1.2), so the binding SEND is answered.
    assert (chunk.success_report, chunk.failure_report) == ("no", "yes")


def test_bind_200_is_built_from_the_send() -> None:
    response = build_response(parse_one(load("bind_send")), 200, "OK")
    assert response.to_bytes() == load("bind_200")


def test_chat_send_headers_and_cpim() -> None:
    chunk = parse_one(load("chat_send"))
    assert chunk.header_names() == [
        "To-Path", "From-Path", "Byte-Range", "Message-ID",
        "Failure-Report", "Success-Report", "Content-Type",
    ]
    assert chunk.byte_range == ByteRange(1, len(chunk.body), len(chunk.body))
    assert chunk.content_type == "message/cpim"
    cpim = parse_cpim(chunk.body)
    assert cpim.sender == "Alice <sip:alice@192.168.1.20>"
    assert cpim.sender_display == "Alice" and cpim.sender_uri == "sip:alice@192.168.1.20"
    assert cpim.recipients == ["<sip:room@192.168.1.10>"]
    assert cpim.datetime == "2026-01-15T10:20:30.123456+00:00"
    assert (cpim.content_type, cpim.charset) == ("text/plain", "utf8")
    assert cpim.text == "Hello, room! Grüße"
    assert cpim.mime_headers == [
        ("MIME-Version", "1.0"), ("Content-Type", 'text/plain; charset="utf8"')
    ]
    rebuilt = build_cpim(
        "Hello, room! Grüße",
        sender="Alice <sip:alice@192.168.1.20>",
        recipients=["<sip:room@192.168.1.10>"],
        datetime="2026-01-15T10:20:30.123456+00:00",
    )
    assert rebuilt == chunk.body
    send = build_request(
        "SEND", [FOCUS], [BLINK],
        [("Byte-Range", str(byte_range_for(1, len(rebuilt), len(rebuilt)))),
         ("Message-ID", "9f8e7d6c5b4a3921"), ("Failure-Report", "yes"),
         ("Success-Report", "yes")],
        rebuilt, content_type="message/cpim", transaction_id="a1b2c3d4e5f60718",
    )
    assert send.to_bytes() == load("chat_send")


def test_chat_send_response_and_reports() -> None:
    send = parse_one(load("chat_send"))
    assert build_response(send, 200, "OK").to_bytes() == load("chat_send_200")
    for name, code, comment in (("report_200", 200, "OK"),
                                ("report_413", 413, "Unwanted Message")):
        golden = parse_one(load(name))
        assert golden.header_names() == [
            "To-Path", "From-Path", "Status", "Message-ID", "Byte-Range"
        ]
        assert golden.status == (code, comment)
        report = build_report(send, code, comment)
        report.transaction_id = golden.transaction_id
        assert report.to_bytes() == load(name)


def test_long_chat_uses_star_end() -> None:
    chunk = parse_one(load("chat_send_long"))
    assert len(chunk.body) > 2048
    assert chunk.header("Byte-Range") == f"1-*/{len(chunk.body)}"
    assert chunk.byte_range == ByteRange(1, None, len(chunk.body))
    assert byte_range_for(1, 2049, 2049) == ByteRange(1, None, 2049)
    assert str(byte_range_for(1, 2048, 2048)) == "1-2048/2048"


def test_iscomposing_has_reports_no() -> None:
    chunk = parse_one(load("iscomposing_send"))
    assert (chunk.success_report, chunk.failure_report) == ("no", "no")
    cpim = parse_cpim(chunk.body)
    assert cpim.content_type == "application/im-iscomposing+xml"
    assert cpim.charset is None
    assert b"<state>active</state>" in cpim.body


def test_status_message_namespace() -> None:
    cpim = parse_cpim(parse_one(load("status_send")).body)
    assert cpim.is_status
    assert cpim.ns(AGP_NAMESPACE, "Message-Type") == "status"
    assert cpim.sender == "Conference Room <sip:room@192.168.1.10>"
    assert cpim.text.endswith("has joined the room with audio and chat")
    rebuilt = build_cpim(
        cpim.text, sender=cpim.sender, recipients=cpim.recipients, datetime=cpim.datetime,
        ns_headers=[("agp", AGP_NAMESPACE, "Message-Type", "status")],
    )
    assert rebuilt == cpim_body_of("status_send")


def cpim_body_of(name: str) -> bytes:
    return parse_one(load(name)).body


def test_nickname_and_answers() -> None:
    chunk = parse_one(load("nickname"))
    assert chunk.method == "NICKNAME"
    assert chunk.header_names() == ["To-Path", "From-Path", "Use-Nickname"]
    assert chunk.header("Use-Nickname") == "Ali Baba"
    assert chunk.message_id is None and chunk.byte_range is None
    assert build_response(chunk, 200, "OK").to_bytes() == load("nickname_200")
    taken = build_response(chunk, 425, "Nickname reserved or already in use")
    assert taken.to_bytes() == load("nickname_425")
    assert parse_one(load("nickname_425")).code == 425


def test_file_offset_and_answer() -> None:
    chunk = parse_one(load("file_offset"))
    assert chunk.method == "FILE_OFFSET"
    assert chunk.header_names() == ["To-Path", "From-Path"]
    answer = build_response(chunk, 200, "OK", headers=[("Offset", "0")])
    assert answer.to_bytes() == load("file_offset_200")


def test_file_chunks() -> None:
    first, last, aborted = (parse_one(load(n)) for n in
                            ("file_chunk_first", "file_chunk_last", "file_chunk_aborted"))
    assert first.header_names() == [
        "To-Path", "From-Path", "Byte-Range", "Message-ID",
        "Success-Report", "Failure-Report", "Content-Type",
    ]
    assert (first.byte_range, first.flag, len(first.body)) == (ByteRange(1, None, 100000), "+",
                                                               65536)
    assert (last.byte_range, last.flag, len(last.body)) == (ByteRange(65537, None, 100000), "$",
                                                            34464)
    assert (aborted.byte_range, aborted.flag, len(aborted.body)) == (
        ByteRange(65537, None, 100000), "#", 1000)
    assert first.message_id == last.message_id == aborted.message_id
    data = first.body + last.body
    assert data == bytes((i * 7 + 3) % 256 for i in range(100000))
    report = build_report(last, 200, "OK")
    report.transaction_id = "6c6d7e8f90a1b2c3"
    assert report.to_bytes() == load("file_report_final")
    assert parse_one(load("file_report_final")).byte_range == ByteRange(65537, 100000, 100000)


def test_keepalive() -> None:
    chunk = parse_one(load("keepalive"))
    assert chunk.header("Keep-Alive") == "yes"
    assert chunk.byte_range == ByteRange(1, 0, 0) and chunk.body == b""


def test_relay_to_path() -> None:
    chunk = parse_one(load("relay_send"))
    assert chunk.to_path == [RELAY, FOCUS]
    relay = parse_uri(RELAY)
    assert (relay.host, relay.port, relay.tls) == ("relay.example.net", 2855, True)
    # The 200 to a SEND goes to the first From-Path hop only (RFC 4975 7.2).
    response = build_response(chunk, 200, "OK")
    assert response.to_path == [BLINK] and response.from_path == [FOCUS]


def test_uri_comparison() -> None:
    a = parse_uri("msrps://Host.Example:2855/abc;tcp")
    assert a.same_as(parse_uri("msrps://host.example:2855/abc;TCP"))
    assert not a.same_as(parse_uri("msrp://host.example:2855/abc;tcp"))
    assert not a.same_as(parse_uri("msrps://host.example:2856/abc;tcp"))
    assert not a.same_as(parse_uri("msrps://host.example:2855/abd;tcp"))
    assert parse_uri("msrp://[::1]:2855/x1;tcp").host == "::1"
    with pytest.raises(WireError):
        parse_uri("sip:alice@example.com")


def test_sdp_media_as_sipsimple_writes_it() -> None:
    media = sdp_media([FOCUS.replace("1d2c", "aaaa")], setup="passive")
    assert media == (
        "m=message 2855 TCP/TLS/MSRP *\r\n"
        "c=IN IP4 192.168.1.10\r\n"
        "a=path:msrps://192.168.1.10:2855/aaaa3b4a5968778695a4;tcp\r\n"
        "a=accept-types:message/cpim text/* image/* application/im-iscomposing+xml\r\n"
        "a=accept-wrapped-types:text/* image/* application/im-iscomposing+xml\r\n"
        "a=setup:passive\r\n"
    )
    plain = sdp_media(["msrp://127.0.0.1:40000/abcd;tcp"], direction="sendonly",
                      accept_types=["*"], accept_wrapped_types=None,
                      extra=[("file-selector", file_selector("a.txt", "text/plain", 3,
                                                             "a9993e364706816aba3e25717850c26c9cd0d89d")),
                             ("x-file-offset", None)])
    assert plain.splitlines()[0] == "m=message 40000 TCP/MSRP *"
    assert "a=sendonly" in plain.splitlines()
    assert ("a=file-selector:name:\"a.txt\" type:text/plain size:3 hash:sha-1:"
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D") in plain
    assert plain.endswith("a=x-file-offset\r\n")
    assert sdp_body(media).startswith("v=0\r\n")


# ----------------------------------------------------------------------- hostile input


def feed_all(data: bytes) -> WireParser:
    parser = WireParser()
    parser.feed(data)
    return parser


@pytest.mark.parametrize("name", ["bad_missing_end_line", "bad_end_line_other_tid"])
def test_truncated_is_never_delimited(name: str) -> None:
    parser = feed_all(load(name))
    assert parser.next_chunk() is None
    with pytest.raises(WireError, match="closed inside a chunk"):
        parser.eof()


@pytest.mark.parametrize(
    ("name", "match"),
    [("bad_header_too_long", "line too long"), ("bad_65_headers", "too many header"),
     ("bad_status_code", "bad first line")],
)
def test_unframeable(name: str, match: str) -> None:
    parser = feed_all(load(name))
    with pytest.raises(WireError, match=match):
        parser.next_chunk()
    with pytest.raises(WireError):  # the parser stays broken, as the connection would close
        parser.feed(b"MSRP abcd 200 OK\r\n")


@pytest.mark.parametrize(
    ("name", "match"),
    [("bad_byte_range", "Byte-Range"), ("bad_body_longer", "does not match Byte-Range"),
     ("bad_no_to_path", "To-Path")],
)
def test_framed_but_invalid(name: str, match: str) -> None:
    chunk = parse_one(load(name))
    with pytest.raises(WireError, match=match) as info:
        validate(chunk)
    assert info.value.status == 400


def test_limits_are_inclusive() -> None:
    headers = [("Byte-Range", "1-0/0"), ("Message-ID", "abcd")]
    headers += [(f"X-F{n}", "x") for n in range(MAX_HEADERS - 4)]
    ok = build_request("SEND", [FOCUS], [BLINK], headers, transaction_id="abcd1234")
    assert len(ok.headers) == MAX_HEADERS
    assert parse_one(ok.to_bytes()).headers == ok.headers
    name = "X-Long: "
    long_ok = build_request("SEND", [FOCUS], [BLINK],
                            [("Message-ID", "abcd"), ("X-Long", "a" * (MAX_LINE - len(name)))])
    assert parse_one(long_ok.to_bytes()).header("X-Long") == "a" * (MAX_LINE - len(name))


def test_body_may_contain_lookalike_end_lines() -> None:
    body = b"x\r\n-------abcd1234\r\n-------abcd1234X\r\n-------other$\r\ny"
    chunk = build_request("SEND", [FOCUS], [BLINK], [("Message-ID", "m1")], body,
                          content_type="text/plain", transaction_id="abcd1234")
    assert parse_one(chunk.to_bytes()).body == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=50))
def test_fuzz_only_wire_error_escapes(data: bytes, step: int) -> None:
    parser = WireParser(max_line=128, max_headers=8, max_body=256)
    try:
        for start in range(0, len(data), step):
            parser.feed(data[start:start + step])
            while (chunk := parser.next_chunk()) is not None:
                with contextlib.suppress(WireError):
                    validate(chunk)
    except WireError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=4), st.integers(1, 5000))
def test_fuzz_split_points(paths: list[Path], step: int) -> None:
    stream = b"".join(p.read_bytes() for p in paths)
    parser = WireParser()
    got = []
    for start in range(0, len(stream), step):
        parser.feed(stream[start:start + step])
        while (chunk := parser.next_chunk()) is not None:
            got.append(chunk.raw)
    assert got == [p.read_bytes() for p in paths]
