"""Tests for sylkbox.msrp.session (RFC 4975 7.1.1, 7.1.2, 7.2; RFC 7701; BLINK.md 4.3, 5, 7)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.msrp.errors import LocalProtocolError
from sylkbox.msrp.message import ByteRange, MsrpRequest, MsrpResponse, Status
from sylkbox.msrp.parser import MsrpParser
from sylkbox.msrp.session import (
    ChunkReceived,
    FileOffsetRequested,
    MessageAborted,
    MessageReceived,
    MsrpEvent,
    MsrpSession,
    NicknameRequested,
    ReportReceived,
    ResponseReceived,
    SessionConfig,
    SessionState,
    TransactionTimedOut,
)
from sylkbox.msrp.uri import MsrpUri

VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"
BLINK = MsrpUri.parse("msrps://192.168.1.20:2855/8f3a1c9e5b7d2f0a4c6e;tcp")
FOCUS = MsrpUri.parse("msrps://192.168.1.10:2855/1d2c3b4a5968778695a4;tcp")


def parse(data: bytes) -> list[MsrpRequest | MsrpResponse]:
    parser = MsrpParser()
    parser.feed(data)
    out = []
    while (m := parser.next_message()) is not None:
        out.append(m)
    return out


def events(session: MsrpSession) -> list[MsrpEvent]:
    out = []
    while (e := session.next_event()) is not None:
        out.append(e)
    return out


class Pair:
    """Two sessions wired back to back through real parsers (no sockets)."""

    def __init__(
        self, a_config: SessionConfig | None = None, b_config: SessionConfig | None = None
    ) -> None:
        self.a = MsrpSession(BLINK, (FOCUS,), config=a_config, rng=random.Random(1))
        self.b = MsrpSession(FOCUS, (BLINK,), config=b_config, rng=random.Random(2))
        self.pa, self.pb = MsrpParser(), MsrpParser()
        self.now = 0.0

    def a_to_b(self, max_chunks: int | None = None) -> list[MsrpRequest | MsrpResponse]:
        data = self.a.data_to_send(max_chunks, now=self.now)
        return self._deliver(data, self.pb, self.b)

    def b_to_a(self) -> list[MsrpRequest | MsrpResponse]:
        return self._deliver(self.b.data_to_send(now=self.now), self.pa, self.a)

    def _deliver(
        self, data: bytes, parser: MsrpParser, session: MsrpSession
    ) -> list[MsrpRequest | MsrpResponse]:
        parser.feed(data)
        out = []
        while (m := parser.next_message()) is not None:
            out.append(m)
            session.receive_message(m, self.now)
        return out

    def run(self) -> None:
        for _ in range(10_000):
            if not (self.a.has_data_to_send or self.b.has_data_to_send):
                return
            self.a_to_b(1)
            self.b_to_a()
        raise AssertionError("no quiescence")


def test_small_chat_message_one_send() -> None:
    pair = Pair()
    body = b"Hello, room!"
    mid = pair.a.send_message("message/cpim", body)
    (send,) = pair.a_to_b()
    assert isinstance(send, MsrpRequest)
    assert send.byte_range == ByteRange(1, len(body), len(body))  # BLINK.md 4.3: 1-N/N
    assert send.success_report and send.failure_report == "yes"
    assert list(send.headers)[:4] == [
        "Message-ID",
        "Byte-Range",
        "Success-Report",
        "Failure-Report",
    ]
    assert list(send.headers)[-1] == "Content-Type"
    assert len(send.transaction_id) == 16 and len(mid) == 16
    (received,) = events(pair.b)
    assert isinstance(received, MessageReceived)
    assert received.body == body and received.message_id == mid
    assert received.content_type == "message/cpim" and received.reply_path == (BLINK,)
    assert pair.b.report(received, 200)
    response, report = pair.b_to_a()
    assert isinstance(response, MsrpResponse) and response.status == 200
    assert response.to_path == (BLINK,) and response.from_path == (FOCUS,)
    assert isinstance(report, MsrpRequest) and report.method == "REPORT"
    assert report.headers["Status"] == "000 200 OK"
    assert report.byte_range == ByteRange(1, len(body), len(body))
    got = events(pair.a)
    assert isinstance(got[0], ResponseReceived) and got[0].status == 200
    assert got[0].message_id == mid and got[0].method == "SEND"
    assert isinstance(got[1], ReportReceived)
    assert got[1].status == Status(200, "OK") and got[1].message_id == mid


def test_report_rules() -> None:
    pair = Pair()
    pair.a.send_message("message/cpim", b"x", success_report=False)
    pair.a_to_b()
    (msg,) = events(pair.b)
    assert isinstance(msg, MessageReceived)
    assert not pair.b.report(msg, 200)  # no Success-Report
    assert pair.b.report(msg, 413, "Unwanted message")  # failure report (BLINK.md 4.3)
    _resp, report = pair.b_to_a()
    assert (
        isinstance(report, MsrpRequest) and report.headers["Status"] == "000 413 Unwanted message"
    )
    pair.a.send_message(
        "application/im-iscomposing+xml", b"y", success_report=False, failure_report="no"
    )
    assert pair.a_to_b()
    (msg,) = events(pair.b)
    assert isinstance(msg, MessageReceived)
    assert not pair.b.report(msg, 413)
    assert pair.b.data_to_send() == b""  # Failure-Report no: no response at all


def test_failure_report_partial_only_errors_answered() -> None:
    pair = Pair(b_config=SessionConfig(max_message_size=10))
    pair.a.send_message("text/plain", b"ok", failure_report="partial")
    pair.a_to_b()
    assert pair.b.data_to_send() == b""
    pair.a.send_message("text/plain", b"far too large", failure_report="partial")
    pair.a_to_b()
    msgs = pair.b_to_a()
    assert [type(m).__name__ for m in msgs] == ["MsrpResponse", "MsrpRequest"]
    assert isinstance(msgs[0], MsrpResponse) and msgs[0].status == 413
    aborted = [e for e in events(pair.b) if isinstance(e, MessageAborted)]
    assert aborted and aborted[0].status == 413


def test_large_message_chunked_and_reassembled() -> None:
    pair = Pair(b_config=SessionConfig(auto_success_report=True))
    body = bytes(range(256)) * 1000  # 256000 bytes: 4 chunks of 64 KiB
    mid = pair.a.send_message("application/octet-stream", body)
    sends = pair.a_to_b()
    assert [m.continuation for m in sends if isinstance(m, MsrpRequest)] == ["+", "+", "+", "$"]
    ranges = [m.byte_range for m in sends if isinstance(m, MsrpRequest)]
    assert ranges[0] == ByteRange(1, None, len(body))  # msrplib: start-*/total above 2048
    assert ranges[1] == ByteRange(65537, None, len(body))
    assert all(len(m.body) <= 65536 for m in sends if isinstance(m, MsrpRequest))
    got = events(pair.b)
    assert len(got) == 1 and isinstance(got[0], MessageReceived) and got[0].body == body
    replies = pair.b_to_a()
    assert [r.status for r in replies if isinstance(r, MsrpResponse)] == [200] * 4
    reports = [r for r in replies if isinstance(r, MsrpRequest)]
    # partial chunks each get a 200 REPORT (BLINK.md 4.3), the whole message one more
    assert [r.headers["Byte-Range"] for r in reports] == [
        "1-65536/256000",
        "65537-131072/256000",
        "131073-196608/256000",
        "1-256000/256000",
    ]
    final = [e for e in events(pair.a) if isinstance(e, ReportReceived)][-1]
    assert final.message_id == mid and final.byte_range == ByteRange(1, 256000, 256000)


def test_interleaving_round_robin() -> None:
    pair = Pair()
    pair.a.send_message("application/pdf", b"F" * (5 * 65536))
    pair.a_to_b(1)  # first file chunk out
    chat = pair.a.send_message("message/cpim", b"quick chat")
    sends = pair.a_to_b(2)
    assert len(sends) == 2
    assert isinstance(sends[1], MsrpRequest) and sends[1].message_id == chat
    assert pair.a.queued_messages == 1
    received = [e for e in events(pair.b) if isinstance(e, MessageReceived)]
    assert [e.message_id for e in received] == [chat]
    pair.run()
    assert pair.a.queued_messages == 0
    assert next(e for e in events(pair.b) if isinstance(e, MessageReceived)).size == 5 * 65536


def test_chunk_limit_applies_back_pressure() -> None:
    pair = Pair()
    pair.a.send_message("application/pdf", b"F" * (3 * 65536))
    assert len(pair.a_to_b(1)) == 1
    assert pair.a.has_data_to_send
    assert len(pair.a_to_b(0)) == 0


def feed_vector(session: MsrpSession, name: str) -> None:
    for m in parse((VECTORS / name).read_bytes()):
        session.receive_message(m, 0.0)


def receiver(**kw: object) -> MsrpSession:
    return MsrpSession(
        MsrpUri.parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp"),
        (MsrpUri.parse("msrp://alice.example.com:7777/iau39soe2843z;tcp"),),
        config=SessionConfig(**kw),  # type: ignore[arg-type]
        rng=random.Random(3),
    )


def test_in_order_chunks_with_partial_reports() -> None:
    session = receiver()
    feed_vector(session, "core_chunked_in_order.msrp")
    (msg,) = events(session)
    assert isinstance(msg, MessageReceived) and msg.body == b"abcdefghijklmnopqrstuvwxyz0123"
    out = parse(session.data_to_send())
    responses = [m for m in out if isinstance(m, MsrpResponse)]
    reports = [m for m in out if isinstance(m, MsrpRequest)]
    assert [r.transaction_id for r in responses] == ["d93kswow", "dkei38sd", "x2k3l4m5"]
    assert [r.headers["Byte-Range"] for r in reports] == ["1-10/30", "11-20/30"]
    assert session.report(msg)
    (final,) = parse(session.data_to_send())
    assert isinstance(final, MsrpRequest) and final.headers["Byte-Range"] == "1-30/30"


def test_out_of_order_and_duplicates() -> None:
    session = receiver()
    feed_vector(session, "core_out_of_order.msrp")
    (msg,) = events(session)
    assert isinstance(msg, MessageReceived)
    assert msg.body == b"abcdefghijklmnopqrstuvwxyz0123" and msg.size == 30
    assert len([m for m in parse(session.data_to_send()) if isinstance(m, MsrpResponse)]) == 4
    feed_vector(session, "core_out_of_order.msrp")  # late duplicates: answered, ignored
    assert events(session) == []


def test_abort_discards() -> None:
    session = receiver()
    feed_vector(session, "core_aborted.msrp")
    (aborted,) = events(session)
    assert isinstance(aborted, MessageAborted) and aborted.status is None
    assert [m.status for m in parse(session.data_to_send()) if isinstance(m, MsrpResponse)] == [
        200,
        200,
    ]


def test_total_too_large_gets_413_and_abort() -> None:
    session = receiver(max_message_size=20)
    feed_vector(session, "core_chunked_in_order.msrp")  # total 30
    got = events(session)
    assert isinstance(got[0], MessageAborted) and got[0].status == 413
    out = parse(session.data_to_send())
    assert [m.status for m in out if isinstance(m, MsrpResponse)] == [413, 413, 413]
    reports = [m for m in out if isinstance(m, MsrpRequest)]
    assert reports and reports[0].headers["Status"].startswith("000 413")


def test_reassembled_size_too_large_without_total() -> None:
    session = receiver(max_message_size=15)
    feed_vector(session, "core_out_of_order.msrp")  # 11-*/* ... 21-30/30
    assert any(isinstance(e, MessageAborted) and e.status == 413 for e in events(session))


def test_deliver_chunks_mode() -> None:
    session = receiver(deliver_chunks=True)
    feed_vector(session, "core_out_of_order.msrp")
    got = events(session)
    chunks = [e for e in got if isinstance(e, ChunkReceived)]
    assert sorted((c.offset, c.data) for c in chunks)[0] == (0, b"abcdefghij")
    done = got[-1]
    assert isinstance(done, MessageReceived) and done.chunked and done.body == b""
    assert done.size == 30


def test_golden_vectors_into_session() -> None:
    session = MsrpSession(FOCUS, (BLINK,), rng=random.Random(4))
    feed_vector(session, "golden_chat_send.msrp")
    (msg,) = events(session)
    assert isinstance(msg, MessageReceived) and msg.content_type == "message/cpim"
    (resp,) = parse(session.data_to_send())
    expected = (VECTORS / "golden_chat_send_200.msrp").read_bytes()
    assert resp.to_bytes() == expected
    feed_vector(session, "golden_bind_send.msrp")
    assert events(session) == []
    assert (
        parse(session.data_to_send())[0].to_bytes()
        == (VECTORS / "golden_bind_200.msrp").read_bytes()
    )
    feed_vector(session, "golden_keepalive.msrp")
    assert events(session) == []
    (ka,) = parse(session.data_to_send())
    assert isinstance(ka, MsrpResponse) and ka.status == 200
    feed_vector(session, "golden_relay_send.msrp")
    assert isinstance(events(session)[0], MessageReceived)


def test_golden_bad_vectors_get_400() -> None:
    session = MsrpSession(FOCUS, (BLINK,), rng=random.Random(5))
    for name in ("golden_bad_byte_range.msrp", "golden_bad_body_longer.msrp"):
        feed_vector(session, name)
        assert events(session) == []
        (resp,) = parse(session.data_to_send())
        assert isinstance(resp, MsrpResponse) and resp.status == 400


def test_nickname() -> None:
    session = MsrpSession(FOCUS, (BLINK,), rng=random.Random(6))
    feed_vector(session, "golden_nickname.msrp")
    (ev,) = events(session)
    assert isinstance(ev, NicknameRequested) and ev.nickname
    session.respond(ev.request, 425)
    (resp,) = parse(session.data_to_send())
    assert resp.to_bytes() == (VECTORS / "golden_nickname_425.msrp").read_bytes()
    session.respond(ev.request, 200)
    assert (
        parse(session.data_to_send())[0].to_bytes()
        == (VECTORS / "golden_nickname_200.msrp").read_bytes()
    )
    # RFC 7701: report headers are not allowed (400); quotes stripped leniently
    bad = parse((VECTORS / "golden_nickname.msrp").read_bytes())[0]
    assert isinstance(bad, MsrpRequest)
    bad.headers["Success-Report"] = "yes"
    session.receive_message(bad, 0.0)
    assert events(session) == []
    assert parse(session.data_to_send())[0].status == 400
    pair = Pair()
    pair.a.send_nickname('Bob "the" Builder')
    pair.a_to_b()
    (ev,) = events(pair.b)
    assert isinstance(ev, NicknameRequested) and ev.nickname == 'Bob "the" Builder'
    pair.a.send_nickname("raw", quote=False)
    pair.a_to_b()
    (ev,) = events(pair.b)
    assert isinstance(ev, NicknameRequested) and ev.nickname == "raw"


def test_file_offset() -> None:
    session = MsrpSession(FOCUS, (BLINK,), rng=random.Random(7))
    feed_vector(session, "golden_file_offset.msrp")
    (ev,) = events(session)
    assert isinstance(ev, FileOffsetRequested)
    session.respond_file_offset(ev.request, 0)
    assert session.data_to_send() == (VECTORS / "golden_file_offset_200.msrp").read_bytes()
    pair = Pair()
    tid = pair.a.send_file_offset()
    pair.a_to_b()
    (ev,) = events(pair.b)
    assert isinstance(ev, FileOffsetRequested)
    pair.b.respond_file_offset(ev.request, 65536)
    pair.b_to_a()
    (resp,) = events(pair.a)
    assert isinstance(resp, ResponseReceived) and resp.transaction_id == tid
    assert resp.method == "FILE_OFFSET" and resp.offset == 65536
    # the sender resumes from the offset
    body = b"x" * 100_000
    pair.a.send_message("application/pdf", body, offset=65536)
    first = pair.a_to_b()[0]
    assert isinstance(first, MsrpRequest)
    assert first.byte_range == ByteRange(65537, None, 100_000) and first.continuation == "$"


def test_unknown_method_and_wrong_session() -> None:
    session = MsrpSession(FOCUS, (BLINK,), rng=random.Random(8))
    session.receive_message(MsrpRequest("AUTH", "t0001", (FOCUS,), (BLINK,)), 0.0)
    other = MsrpUri.parse("msrps://192.168.1.10:2855/ffff;tcp")
    session.receive_message(
        MsrpRequest("SEND", "t0002", (other,), (BLINK,), {"Message-ID": "m"}), 0.0
    )
    session.receive_message(MsrpRequest("SEND", "t0003", (FOCUS,), (BLINK,)), 0.0)
    out = parse(session.data_to_send())
    assert [m.status for m in out] == [501, 481, 400]
    session.receive_message(MsrpRequest("REPORT", "t0004", (FOCUS,), (BLINK,)), 0.0)
    assert session.data_to_send() == b""  # REPORTs are never answered


def test_matches_binding_rules() -> None:
    session = MsrpSession(FOCUS, (BLINK,))
    assert session.matches((FOCUS,), (BLINK,), exact=True)
    upper = MsrpUri.parse("msrps://192.168.1.20:2855/8f3a1c9e5b7d2f0a4c6e;TCP")
    assert session.matches((FOCUS,), (upper,), exact=True)
    moved = MsrpUri.parse("msrps://192.168.1.99:5000/8f3a1c9e5b7d2f0a4c6e;tcp")
    assert not session.matches((FOCUS,), (moved,), exact=True)
    assert session.matches((FOCUS,), (moved,), exact=False)  # sessmatch: session-ids only
    stranger = MsrpUri.parse("msrps://192.168.1.20:2855/0000;tcp")
    assert not session.matches((FOCUS,), (stranger,), exact=False)
    assert not session.matches((), (BLINK,), exact=False)


def test_bind_and_keepalive_timer() -> None:
    pair = Pair(a_config=SessionConfig(keepalive_interval=60.0, transaction_timeout=30.0))
    tid = pair.a.send_bind()
    (bind,) = pair.a_to_b()
    assert isinstance(bind, MsrpRequest)
    assert bind.headers == {"Message-ID": bind.message_id, "Byte-Range": "1-0/0"}
    pair.b_to_a()
    (resp,) = events(pair.a)
    assert isinstance(resp, ResponseReceived) and resp.transaction_id == tid
    assert pair.a.get_timer() == 60.0
    pair.now = 60.0
    pair.a.handle_timer(60.0)
    (ka,) = pair.a_to_b()
    assert isinstance(ka, MsrpRequest) and ka.headers.get("Keep-Alive") == "yes"
    pair.b_to_a()
    assert events(pair.a) == []  # keep-alive answered silently
    assert pair.a.get_timer() == 120.0
    pair.now = 120.0
    pair.a.handle_timer(120.0)
    pair.a.data_to_send(now=120.0)  # sent, never answered
    assert pair.a.get_timer() == 150.0
    pair.a.handle_timer(150.0)
    (timeout,) = events(pair.a)
    assert isinstance(timeout, TransactionTimedOut) and timeout.keep_alive


def test_send_timeout_stops_message() -> None:
    session = MsrpSession(BLINK, (FOCUS,), config=SessionConfig(keepalive_interval=None))
    mid = session.send_message("application/pdf", b"z" * 200_000)
    session.data_to_send(1, now=0.0)
    assert session.get_timer() == 30.0
    session.handle_timer(30.0)
    (ev,) = events(session)
    assert isinstance(ev, TransactionTimedOut) and ev.message_id == mid and not ev.keep_alive
    assert session.queued_messages == 0


def test_error_response_stops_message_and_abort() -> None:
    pair = Pair(b_config=SessionConfig(max_message_size=100_000))
    mid = pair.a.send_message("application/pdf", b"z" * 300_000)
    pair.a_to_b(2)
    pair.b_to_a()
    statuses = [e.status for e in events(pair.a) if isinstance(e, ResponseReceived)]
    assert 413 in statuses
    assert pair.a.queued_messages == 0 and not pair.a.abort_message(mid)
    mid2 = pair.a.send_message("application/pdf", b"q" * 300_000)
    pair.a_to_b(1)
    assert pair.a.abort_message(mid2)
    (abort,) = pair.a_to_b()
    assert isinstance(abort, MsrpRequest) and abort.continuation == "#"
    assert any(isinstance(e, MessageAborted) for e in events(pair.b))


def test_close_and_local_errors() -> None:
    session = MsrpSession(BLINK, (FOCUS,))
    with pytest.raises(LocalProtocolError):
        session.send_message("text/plain", b"x", failure_report="maybe")
    with pytest.raises(LocalProtocolError):
        session.send_message("", b"x")
    with pytest.raises(LocalProtocolError):
        session.send_message("text/plain", b"x", offset=5)
    session.close()
    assert session.state is SessionState.CLOSED and session.get_timer() is None
    with pytest.raises(LocalProtocolError):
        session.send_message("text/plain", b"x")
    session.receive_message(MsrpRequest("SEND", "t0001", (BLINK,), (FOCUS,)), 0.0)
    assert events(session) == [] and session.data_to_send() == b""
    with pytest.raises(ValueError):
        SessionConfig(chunk_size=0)


def test_chunk_source_body() -> None:
    class Source:
        def __init__(self, data: bytes) -> None:
            self.data = data

        @property
        def size(self) -> int:
            return len(self.data)

        def read(self, offset: int, length: int) -> bytes:
            return self.data[offset : offset + length]

    pair = Pair()
    data = bytes(random.Random(9).getrandbits(8) for _ in range(150_000))
    pair.a.send_message("application/octet-stream", Source(data))
    pair.run()
    (msg,) = [e for e in events(pair.b) if isinstance(e, MessageReceived)]
    assert msg.body == data


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=3000), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=4096),
    st.randoms(use_true_random=False),
)
def test_any_chunking_reassembles(bodies: list[bytes], chunk_size: int, rnd: random.Random) -> None:
    """Whatever the chunk size and the order of arrival, every message comes out whole."""
    sender = MsrpSession(BLINK, (FOCUS,), config=SessionConfig(chunk_size=chunk_size))
    receiver_ = MsrpSession(FOCUS, (BLINK,))
    for body in bodies:
        sender.send_message("application/octet-stream", body)
    chunks = parse(sender.data_to_send())
    rnd.shuffle(chunks)
    for chunk in chunks + chunks[: len(chunks) // 2]:  # with duplicates
        receiver_.receive_message(chunk, 0.0)
    got = sorted(e.body for e in events(receiver_) if isinstance(e, MessageReceived))
    assert got == sorted(bodies)
