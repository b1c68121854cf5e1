"""Tests for sylkbox/conference/files.py: the file store (limits, quota, hash check, resume,
hostile names, persistence across a restart, retention expiry) and the status texts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sylkbox.conference.errors import FileTooLarge
from sylkbox.conference.files import (
    FileStore,
    UploadError,
    format_size,
    room_dir_name,
    sender_identity,
)
from sylkbox.msrp.file_selector import FileSelector
from sylkbox.msrp.file_selector import parse as parse_selector

ROOM = "room1@sylkbox.local"
SENDER = "Bob <sip:bob@192.168.1.21>"


def store(tmp_path: Path, **kwargs: int) -> FileStore:
    limits = {"max_size": 1000, "room_quota": 2500, "retention": 3600, **kwargs}
    return FileStore(tmp_path, **limits)


def selector_of(data: bytes, name: str = "report.pdf", **kwargs: object) -> FileSelector:
    values: dict[str, object] = {
        "name": name,
        "type": "application/pdf",
        "size": len(data),
        "hash": hashlib.sha1(data).digest(),
        **kwargs,
    }
    return FileSelector(**values)  # type: ignore[arg-type]


def put(fs: FileStore, data: bytes, name: str = "report.pdf", now: float = 100.0) -> None:
    upload = fs.begin_upload(ROOM, selector_of(data, name), SENDER)
    for offset in range(0, len(data), 300):
        upload.write(offset, data[offset : offset + 300])
    assert upload.complete
    upload.finish(now)


def test_upload_is_stored_by_hash_and_indexed(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(900)
    put(fs, data)
    digest = hashlib.sha1(data).digest()
    record = fs.lookup(ROOM, digest)
    assert record is not None
    assert (record.name, record.type, record.size, record.sender) == (
        "report.pdf", "application/pdf", 900, SENDER
    )
    path = tmp_path / "files" / room_dir_name(ROOM) / digest.hex()
    assert path.read_bytes() == data
    assert fs.path_for(ROOM, digest) == path
    [shared] = fs.shared_files(ROOM)
    assert shared.hash == "sha-1:" + ":".join(f"{b:02X}" for b in digest)
    assert shared.status == "OK"
    assert not list((tmp_path / "files" / room_dir_name(ROOM) / "partial").iterdir())


def test_out_of_order_chunks_are_hashed_once_contiguous(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(1000)
    upload = fs.begin_upload(ROOM, selector_of(data), SENDER)
    upload.write(500, data[500:])
    assert upload.offset == 0 and not upload.complete
    upload.write(0, data[:500])
    assert upload.complete
    assert upload.finish(1.0).digest == hashlib.sha1(data).digest()


def test_hash_mismatch_discards_the_file(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(100)
    upload = fs.begin_upload(ROOM, selector_of(data, hash=b"\x01" * 20), SENDER)
    upload.write(0, data)
    with pytest.raises(UploadError, match="SHA-1"):
        upload.finish(1.0)
    assert fs.files(ROOM) == []
    assert not [p for p in (tmp_path / "files").rglob("*") if p.is_file()]


def test_size_mismatch_and_overflow_are_refused(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(100)
    upload = fs.begin_upload(ROOM, selector_of(data), SENDER)
    with pytest.raises(UploadError) as info:
        upload.set_total(200)
    assert info.value.status == 400
    with pytest.raises(UploadError) as info:
        upload.write(50, os.urandom(100))
    assert info.value.status == 413
    upload.abort(keep=False)


def test_limits_and_quota(tmp_path: Path) -> None:
    fs = store(tmp_path)
    with pytest.raises(FileTooLarge):
        fs.check_upload(ROOM, 1001)
    put(fs, os.urandom(1000), "a")
    put(fs, os.urandom(1000), "b")
    with pytest.raises(FileTooLarge, match="quota"):
        fs.check_upload(ROOM, 600)
    fs.check_upload(ROOM, 500)
    fs.check_upload("other@sylkbox.local", 1000)  # per room
    first = fs.files(ROOM)[0]
    fs.check_upload(ROOM, 1000, first.digest)  # the same file again does not count twice


def test_unknown_size_is_bounded_while_receiving(tmp_path: Path) -> None:
    fs = store(tmp_path)
    upload = fs.begin_upload(ROOM, FileSelector(name="x"), SENDER)
    with pytest.raises(UploadError) as info:
        upload.write(0, os.urandom(1001))
    assert info.value.status == 413
    upload.abort(keep=False)


def test_interrupted_upload_resumes_from_its_prefix(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(1000)
    first = fs.begin_upload(ROOM, selector_of(data), SENDER)
    first.write(0, data[:400])
    first.write(700, data[700:800])  # a hole: only the prefix is kept
    first.abort(keep=True)
    second = fs.begin_upload(ROOM, selector_of(data), SENDER)
    assert second.offset == 400
    second.write(400, data[400:])
    assert second.finish(5.0).size == 1000
    assert fs.path_for(ROOM, hashlib.sha1(data).digest()).read_bytes() == data


def test_concurrent_uploads_of_one_file_do_not_share_the_partial(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(300)
    one = fs.begin_upload(ROOM, selector_of(data), SENDER)
    two = fs.begin_upload(ROOM, selector_of(data), SENDER)
    assert one.part != two.part and not two.resumable
    two.write(0, data)
    two.finish(1.0)
    one.abort(keep=False)
    assert fs.lookup(ROOM, hashlib.sha1(data).digest()) is not None


@pytest.mark.parametrize(
    ("offered", "shown"),
    [
        ('name:"../../etc/passwd"', "passwd"),
        ('name:"a%00b"', "a b"),
        ('name:"..\\\\..\\\\win.ini"', "win.ini"),
        ('name:"%FF%FEbad"', "\ufffd\ufffdbad"),
        ('name:".."', "file"),
        ('name:"\u202egpj.exe"', "gpj.exe"),
    ],
)
def test_hostile_names_are_only_displayed(tmp_path: Path, offered: str, shown: str) -> None:
    fs = store(tmp_path)
    data = os.urandom(10)
    selector = parse_selector(f"{offered} type:text/plain size:10")
    upload = fs.begin_upload(ROOM, selector, SENDER)
    upload.write(0, data)
    record = upload.finish(1.0)
    assert record.name == shown
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert files == [Path("files", room_dir_name(ROOM), hashlib.sha1(data).hexdigest())]
    assert not (tmp_path.parent / "etc").exists()


def test_very_long_names_are_cut(tmp_path: Path) -> None:
    fs = store(tmp_path)
    upload = fs.begin_upload(ROOM, FileSelector(name="x" * 5000 + ".txt", size=1), SENDER)
    upload.write(0, b"x")
    record = upload.finish(1.0)
    assert len(record.name) <= 128 and record.name.endswith(".txt")


def test_hostile_room_keys_are_hashed(tmp_path: Path) -> None:
    name = room_dir_name("../../x@sylkbox.local")
    assert "/" not in name and "." not in name and len(name) == 24


def test_files_survive_a_restart(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(500)
    put(fs, data)
    fs.close()
    again = store(tmp_path)
    [record] = again.files(ROOM)
    assert record.digest == hashlib.sha1(data).digest() and record.sender == SENDER
    assert again.open_source(record).read(0, 500) == data


def test_missing_files_are_dropped_at_start(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(10)
    put(fs, data)
    fs.path_for(ROOM, hashlib.sha1(data).digest()).unlink()
    fs.close()
    assert store(tmp_path).files(ROOM) == []


def test_retention_expiry_spares_persistent_rooms(tmp_path: Path) -> None:
    fs = store(tmp_path, retention=60)
    put(fs, os.urandom(10), now=100.0)
    other = "persistent@sylkbox.local"
    upload = fs.begin_upload(other, FileSelector(name="p", size=3), SENDER)
    upload.write(0, b"abc")
    upload.finish(100.0)
    assert fs.expire(150.0, lambda key: key == other) == []
    assert fs.expire(161.0, lambda key: key == other) == [ROOM]
    assert fs.files(ROOM) == [] and len(fs.files(other)) == 1
    assert not [p for p in (tmp_path / "files" / room_dir_name(ROOM)).iterdir() if p.is_file()]
    fs.close()
    assert store(tmp_path).files(ROOM) == []


def test_file_source_reads_ranges(tmp_path: Path) -> None:
    fs = store(tmp_path)
    data = os.urandom(1000)
    put(fs, data)
    [record] = fs.files(ROOM)
    source = fs.open_source(record)
    assert source.size == 1000
    assert source.read(990, 64) == data[990:]
    source.close()
    with pytest.raises(OSError):
        source.read(0, 1)


def test_status_texts() -> None:
    assert sender_identity("Bob", "sip:bob@h") == "Bob <sip:bob@h>"
    assert sender_identity(None, "sip:bob@h") == "<sip:bob@h>"
    assert format_size(512) == "512 bytes"
    assert format_size(1536) == "1.5 KB"
    assert format_size(3 * 1024 * 1024) == "3.0 MB"


def test_limits_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path, max_size=0, room_quota=1, retention=1)
