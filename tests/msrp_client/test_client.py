"""The MSRP test client against itself over loopback (TCP and TLS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.msrp_client import MsrpTestClient, local_uri
from tests.msrp_client.client import StatusPolicy, _Partial
from tests.msrp_client.wire import Chunk, build_request

ALICE = "Alice <sip:alice@127.0.0.1>"
ROOM = "<sip:room@127.0.0.1>"
VECTORS = Path(__file__).parent.parent / "vectors" / "msrp"


async def make_pair(
    tls: bool, status_policy: StatusPolicy | None = None
) -> tuple[MsrpTestClient, MsrpTestClient]:
    passive = await MsrpTestClient.listen(tls=tls, identity=ROOM, status_policy=status_policy)
    uri = local_uri(tls=tls)
    accepted = asyncio.ensure_future(passive.accept([uri]))
    active = await MsrpTestClient.connect(
        [passive.local_uri], local_uri=uri, identity=ALICE, peer_identity=ROOM
    )
    await accepted
    return passive, active


@pytest.fixture(params=[False, True], ids=["tcp", "tls"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[MsrpTestClient,
                                                                       MsrpTestClient]]:
    passive, active = await make_pair(request.param)
    yield passive, active
    await active.close()
    await passive.close()


async def test_binding(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    binding = passive.chunks("SEND")[0]
    assert binding.header("Byte-Range") == "1-0/0" and binding.body == b""
    assert binding.header("Success-Report") is None and binding.header("Failure-Report") is None
    assert binding.to_path == [passive.local_uri] and binding.from_path == [active.local_uri]
    response = active.chunks()[0]
    assert (response.code, response.comment) == (200, "OK")
    assert passive.messages() == [] and passive.reports() == []


async def test_binding_path_mismatch_gets_481() -> None:
    passive = await MsrpTestClient.listen(tls=False)
    accepted = asyncio.ensure_future(passive.accept([local_uri(tls=False)]))
    with pytest.raises(ConnectionError, match="481"):
        await MsrpTestClient.connect([passive.local_uri], local_uri=local_uri(tls=False))
    accepted.cancel()
    await passive.close()


async def test_chat_with_reports(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    sent = await active.send_chat("hello room")
    assert sent.codes == [200]
    message = await passive.wait_for(lambda m: m.text == "hello room")
    assert message.cpim is not None
    assert message.cpim.sender == ALICE and message.cpim.recipients == [ROOM]
    assert message.cpim.datetime is not None
    chunk = message.chunks[0]
    assert chunk.header_names()[2:] == [
        "Byte-Range", "Message-ID", "Failure-Report", "Success-Report", "Content-Type"
    ]
    report = await active.wait_for_chunk(lambda c: c.method == "REPORT")
    assert report.status == (200, "OK") and report.message_id == sent.message_id
    assert report.header("Byte-Range") == f"1-{len(chunk.body)}/{len(chunk.body)}"


async def test_private_chat_and_status_namespace(
    pair: tuple[MsrpTestClient, MsrpTestClient],
) -> None:
    passive, active = pair
    await passive.send_chat(
        "Bob joined", to=ALICE, ns_headers=[("agp", "urn:ag-projects:xml:ns:cpim",
                                             "Message-Type", "status")]
    )
    message = await active.wait_for()
    assert message.cpim is not None and message.cpim.is_status
    assert message.cpim.recipients == [ALICE]


async def test_chunked_chat_reassembles(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    text = "x" * 3000
    sent = await active.send_chat(text, chunk_size=1000)
    assert len(sent.chunks) == 4 and [c.flag for c in sent.chunks] == ["+", "+", "+", "$"]
    total = sum(len(c.body) for c in sent.chunks)
    assert sent.chunks[0].header("Byte-Range") == f"1-*/{total}"
    assert sent.chunks[3].header("Byte-Range") == f"3001-*/{total}"
    message = await passive.wait_for(lambda m: m.text == text)
    assert len(message.chunks) == 4
    await active.wait_for_chunk(
        lambda c: c.method == "REPORT" and len(active.reports(sent.message_id)) == 4
    )


async def test_out_of_order_chunks(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    body = b"0123456789" * 10
    chunks = [
        active.make_request("SEND", [("Byte-Range", f"{start + 1}-{start + 50}/100"),
                                     ("Message-ID", "ooo1")],
                            body[start:start + 50], content_type="text/plain",
                            flag="$" if start else "+")
        for start in (0, 50)
    ]
    for chunk in reversed(chunks):
        await active.send_chunk(chunk)
    message = await passive.wait_for(lambda m: m.message_id == "ooo1")
    assert message.body == body


async def test_iscomposing_has_no_response_or_report(
    pair: tuple[MsrpTestClient, MsrpTestClient],
) -> None:
    passive, active = pair
    sent = await active.send_composing("active")
    assert sent.responses == []
    message = await passive.wait_for()
    assert message.cpim is not None
    assert message.cpim.content_type == "application/im-iscomposing+xml"
    await active.send_keepalive()  # a later round trip: nothing was answered in between
    assert [c.code for c in active.chunks() if c.method is None] == [200, 200]
    assert active.reports() == []


async def test_nickname(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    passive.taken_nicknames.add("bob")
    assert await active.send_nickname("Ali Baba") == 200
    assert await active.send_nickname("bob") == 425
    refusal = active.chunks()[-1]
    assert refusal.comment == "Nickname reserved or already in use"
    assert passive.nicknames == ["Ali Baba"]
    sent = passive.chunks("NICKNAME")[0]
    assert sent.header("Use-Nickname") == "Ali Baba"
    assert sent.header_names() == ["To-Path", "From-Path", "Use-Nickname"]
    bad = active.make_request("NICKNAME", [("Use-Nickname", "x"), ("Success-Report", "no")])
    response = await active.request(bad)
    assert response is not None and response.code == 400


async def test_file_transfer_with_offset(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    data = bytes(range(256)) * 800  # 204800 bytes: four 64 KiB chunks
    sent = await active.send_file(data, content_type="application/pdf", use_file_offset=True)
    assert active.chunks()[1].header("Offset") == "0"
    assert [c.header("Byte-Range") for c in sent.chunks] == [
        "1-*/204800", "65537-*/204800", "131073-*/204800", "196609-*/204800"
    ]
    assert [len(c.body) for c in sent.chunks] == [65536, 65536, 65536, 8192]
    assert [c.flag for c in sent.chunks] == ["+", "+", "+", "$"]
    assert sent.codes == [200] * 4
    assert sent.chunks[0].header_names()[2:] == [
        "Byte-Range", "Message-ID", "Success-Report", "Failure-Report", "Content-Type"
    ]
    message = await passive.wait_for(lambda m: m.message_id == sent.message_id)
    assert message.body == data and message.content_type == "application/pdf"
    final = active.reports(sent.message_id)[-1]
    assert final.header("Byte-Range") == "196609-204800/204800"


async def test_file_offset_value() -> None:
    passive, active = await make_pair(False)
    passive.file_offset = 65536
    assert await active.send_file_offset() == (200, 65536)
    await active.close()
    await passive.close()


async def test_aborted_file(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    sent = await active.send_file(b"a" * 100000, abort_at=70000)
    assert [c.flag for c in sent.chunks] == ["+", "#"]
    assert len(sent.chunks[1].body) == 70000 - 65536
    await passive.wait_for_chunk(lambda c: c.flag == "#")
    assert passive.messages() == [] and len(passive.aborted()) == 1


async def test_chat_interleaves_with_file(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    file_task = asyncio.ensure_future(active.send_file(b"f" * (8 * 65536)))
    await asyncio.sleep(0)
    await active.send_chat("during the file")
    sent = await file_task
    order = [c.message_id for c in passive.chunks("SEND")]
    chat_at = next(i for i, c in enumerate(passive.chunks("SEND")) if c.content_type
                   == "message/cpim")
    assert chat_at < order.index(sent.message_id) + len(sent.chunks) - 1


async def test_failure_status_policy() -> None:
    passive, active = await make_pair(False, status_policy=lambda c: (413, "Unwanted Message"))
    sent = await active.send_chat("unwanted")
    assert sent.codes == [413]
    report = await active.wait_for_chunk(lambda c: c.method == "REPORT")
    assert report.status == (413, "Unwanted Message")
    assert passive.messages() == []
    await active.close()
    await passive.close()


async def test_unknown_method_and_timestamps(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    response = await active.request(active.make_request("FROBNICATE"))
    assert response is not None and (response.code, response.comment) == (501, "Method unknown")
    stamps = [r.at for r in passive.received]
    assert stamps == sorted(stamps) and len(stamps) >= 2


async def test_hostile_input_closes(pair: tuple[MsrpTestClient, MsrpTestClient]) -> None:
    passive, active = pair
    await active.send_raw((VECTORS / "golden_bad_status_code.msrp").read_bytes())
    await passive.wait_closed()
    assert passive.parse_error is not None
    await active.wait_closed()


async def test_raw_chunk_helpers() -> None:
    chunk = build_request("SEND", ["msrp://127.0.0.1:1/ab12;tcp"], ["msrp://127.0.0.1:2/cd34;tcp"],
                          [("Message-ID", "m")], transaction_id="abcd1234")
    assert isinstance(chunk, Chunk) and chunk.to_bytes().endswith(b"-------abcd1234$\r\n")


def test_partial_reassembly_any_order() -> None:
    """Pieces in reverse order, overlapping, before and after the total is known."""
    data = bytes(range(256)) * 40
    partial = _Partial()
    partial.add(9001, data[9000:])  # total still unknown: kept as a piece
    assert partial.covered() == 0
    partial.total = len(data)
    partial.add(4001, data[4000:9500])  # overlaps the first piece
    assert partial.covered() == 0
    partial.add(1, data[:4500])
    assert partial.covered() == len(data)
    assert partial.assemble(len(data)) == data


def test_partial_without_total() -> None:
    partial = _Partial()
    partial.add(6, b"world")
    partial.add(1, b"hello")
    assert partial.covered() == 10
    assert partial.assemble(10) == b"helloworld"
