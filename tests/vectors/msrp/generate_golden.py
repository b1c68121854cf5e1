"""Writes the golden_*.msrp vectors. Run once: `python tests/vectors/msrp/generate_golden.py`.

Every vector is spelled out literally below (no MSRP library is used), following what msrplib and
sipsimple put on the wire (BLINK.md 4 to 7) and RFC 4975. See GOLDEN.md next to this file.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
CRLF = "\r\n"

BLINK = "msrps://192.168.1.20:2855/8f3a1c9e5b7d2f0a4c6e;tcp"
FOCUS = "msrps://192.168.1.10:2855/1d2c3b4a5968778695a4;tcp"
RELAY = "msrps://relay.example.net:2855/7e6d5c4b3a2910f8e7d6;tcp"

ALICE = "Alice <sip:alice@192.168.1.20>"
ROOM = "<sip:room@192.168.1.10>"
ROOM_NAMED = "Conference Room <sip:room@192.168.1.10>"
WHEN = "2026-01-15T10:20:30.123456+00:00"


def lines(*items: str) -> bytes:
    return CRLF.join(items).encode()


def request(tid: str, method: str, headers: list[str], body: bytes | None = None,
            flag: str = "$") -> bytes:
    head = lines(f"MSRP {tid} {method}", *headers)
    if body is None:
        return head + f"{CRLF}-------{tid}{flag}{CRLF}".encode()
    return head + b"\r\n\r\n" + body + f"{CRLF}-------{tid}{flag}{CRLF}".encode()


def response(tid: str, status: str, headers: list[str]) -> bytes:
    return lines(f"MSRP {tid} {status}", *headers) + f"{CRLF}-------{tid}${CRLF}".encode()


def cpim(headers: list[str], mime_type: str, body: bytes) -> bytes:
    return lines(*headers) + b"\r\n\r\n" + (
        f"MIME-Version: 1.0\nContent-Type: {mime_type}\n\n".encode() + body
    )


def write(name: str, data: bytes) -> None:
    (HERE / f"golden_{name}.msrp").write_bytes(data)


def main() -> None:
    text_plain = 'text/plain; charset="utf8"'
    chat_body = cpim([f"From: {ALICE}", f"To: {ROOM}", f"DateTime: {WHEN}"], text_plain,
                     "Hello, room! Grüße".encode())
    long_body = cpim([f"From: {ALICE}", f"To: {ROOM}", f"DateTime: {WHEN}"], text_plain,
                     ("0123456789abcdef" * 160).encode())  # 2560 bytes of text: > 2048
    composing = (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
        b"<state>active</state><contenttype>text</contenttype><refresh>120</refresh>"
        b"</isComposing>"
    )
    composing_body = cpim([f"From: {ALICE}", f"To: {ROOM}", f"DateTime: {WHEN}"],
                          "application/im-iscomposing+xml", composing)
    status_body = cpim(
        [f"From: {ROOM_NAMED}", f"To: {ROOM_NAMED}", f"DateTime: {WHEN}",
         "NS: agp <urn:ag-projects:xml:ns:cpim>", "agp.Message-Type: status"],
        text_plain, b"Alice <alice@192.168.1.20> has joined the room with audio and chat",
    )
    file_data = bytes((i * 7 + 3) % 256 for i in range(100000))

    # 4.3/7: session binding, active side: empty SEND, no report headers, then 200.
    write("bind_send", request("5e2b9a7c31d04f86", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-0/0",
        "Message-ID: 3c9d8e1f2a4b6c70"]))
    write("bind_200", response("5e2b9a7c31d04f86", "200 OK",
                               [f"To-Path: {BLINK}", f"From-Path: {FOCUS}"]))
    # 4.2/4.3: chat message, one SEND, reports yes; Failure-Report before Success-Report.
    write("chat_send", request("a1b2c3d4e5f60718", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}",
        f"Byte-Range: 1-{len(chat_body)}/{len(chat_body)}", "Message-ID: 9f8e7d6c5b4a3921",
        "Failure-Report: yes", "Success-Report: yes",
        "Content-Type: message/cpim"], chat_body))
    write("chat_send_200", response("a1b2c3d4e5f60718", "200 OK",
                                    [f"To-Path: {BLINK}", f"From-Path: {FOCUS}"]))
    write("chat_send_long", request("b2c3d4e5f6071829", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", f"Byte-Range: 1-*/{len(long_body)}",
        "Message-ID: 8e7d6c5b4a392817", "Failure-Report: yes", "Success-Report: yes",
        "Content-Type: message/cpim"], long_body))
    write("report_200", request("c3d4e5f60718293a", "REPORT", [
        f"To-Path: {BLINK}", f"From-Path: {FOCUS}", "Status: 000 200 OK",
        "Message-ID: 9f8e7d6c5b4a3921", f"Byte-Range: 1-{len(chat_body)}/{len(chat_body)}"]))
    write("report_413", request("d4e5f60718293a4b", "REPORT", [
        f"To-Path: {BLINK}", f"From-Path: {FOCUS}", "Status: 000 413 Unwanted Message",
        "Message-ID: 9f8e7d6c5b4a3921", f"Byte-Range: 1-{len(chat_body)}/{len(chat_body)}"]))
    write("iscomposing_send", request("e5f60718293a4b5c", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}",
        f"Byte-Range: 1-{len(composing_body)}/{len(composing_body)}",
        "Message-ID: 7d6c5b4a39281706", "Failure-Report: no", "Success-Report: no",
        "Content-Type: message/cpim"], composing_body))
    write("status_send", request("f60718293a4b5c6d", "SEND", [
        f"To-Path: {BLINK}", f"From-Path: {FOCUS}",
        f"Byte-Range: 1-{len(status_body)}/{len(status_body)}",
        "Message-ID: 6c5b4a3928170605", "Failure-Report: yes", "Success-Report: yes",
        "Content-Type: message/cpim"], status_body))
    # 4.3: NICKNAME, value unquoted, no report headers; 200 or 425 (To-Path = whole From-Path).
    write("nickname", request("1718293a4b5c6d7e", "NICKNAME", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Use-Nickname: Ali Baba"]))
    write("nickname_200", response("1718293a4b5c6d7e", "200 OK",
                                   [f"To-Path: {BLINK}", f"From-Path: {FOCUS}"]))
    write("nickname_425", response("1718293a4b5c6d7e", "425 Nickname reserved or already in use",
                                   [f"To-Path: {BLINK}", f"From-Path: {FOCUS}"]))
    # 5: file transfer: FILE_OFFSET and its 200 with Offset, 64 KiB chunks with end `*`.
    write("file_offset", request("28293a4b5c6d7e8f", "FILE_OFFSET",
                                 [f"To-Path: {FOCUS}", f"From-Path: {BLINK}"]))
    write("file_offset_200", response("28293a4b5c6d7e8f", "200 OK",
                                      [f"To-Path: {BLINK}", f"From-Path: {FOCUS}", "Offset: 0"]))
    file_headers = ["Message-ID: 5b4a392817060504", "Success-Report: yes", "Failure-Report: yes",
                    "Content-Type: application/pdf"]
    write("file_chunk_first", request("393a4b5c6d7e8f90", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-*/100000", *file_headers],
        file_data[:65536], "+"))
    write("file_chunk_last", request("4a4b5c6d7e8f90a1", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 65537-*/100000", *file_headers],
        file_data[65536:], "$"))
    write("file_chunk_aborted", request("5b5c6d7e8f90a1b2", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 65537-*/100000", *file_headers],
        file_data[65536:66536], "#"))
    write("file_report_final", request("6c6d7e8f90a1b2c3", "REPORT", [
        f"To-Path: {BLINK}", f"From-Path: {FOCUS}", "Status: 000 200 OK",
        "Message-ID: 5b4a392817060504", "Byte-Range: 65537-100000/100000"]))
    # 7: keep-alive.
    write("keepalive", request("7d7e8f90a1b2c3d4", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-0/0",
        "Message-ID: 4a39281706050403", "Keep-Alive: yes"]))
    # RFC 4975 5.1/7.1: To-Path through a relay (two URIs).
    write("relay_send", request("8e8f90a1b2c3d4e5", "SEND", [
        f"To-Path: {RELAY} {FOCUS}", f"From-Path: {BLINK}",
        f"Byte-Range: 1-{len(chat_body)}/{len(chat_body)}",
        "Message-ID: 3928170605040302", "Failure-Report: yes", "Success-Report: yes",
        "Content-Type: message/cpim"], chat_body))

    # Hostile and truncated variants.
    good = (HERE / "golden_chat_send.msrp").read_bytes()
    write("bad_missing_end_line", good[: good.rindex(b"-------")])
    write("bad_header_too_long", request("9f90a1b2c3d4e5f6", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-0/0",
        "Message-ID: 2817060504030201", "X-Long: " + "a" * 16400]))
    write("bad_65_headers", request("a0a1b2c3d4e5f607", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-0/0",
        "Message-ID: 1706050403020100", *(f"X-Filler-{n:02d}: x" for n in range(61))]))
    write("bad_byte_range", request("b1b2c3d4e5f60718", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 0-4/4",
        "Message-ID: 0605040302010009", "Content-Type: text/plain"], b"oops"))
    write("bad_status_code", response("c2c3d4e5f6071829", "2x0 OK",
                                      [f"To-Path: {BLINK}", f"From-Path: {FOCUS}"]))
    write("bad_body_longer", request("d3d4e5f60718293a", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-5/5",
        "Message-ID: 0504030201000908", "Content-Type: text/plain"], b"Hello, world"))
    write("bad_end_line_other_tid", request("e4e5f60718293a4b", "SEND", [
        f"To-Path: {FOCUS}", f"From-Path: {BLINK}", "Byte-Range: 1-5/5",
        "Message-ID: 0403020100090807", "Content-Type: text/plain"], b"Hello").replace(
            b"-------e4e5f60718293a4b$", b"-------ffffffffffffffff$"))
    write("bad_no_to_path", request("f5f60718293a4b5c", "SEND", [
        f"From-Path: {BLINK}", "Byte-Range: 1-0/0", "Message-ID: 0302010009080706"]))


if __name__ == "__main__":
    main()
