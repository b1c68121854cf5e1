"""Tests for sylkbox.conference.screenshare: frames, files and the active/idle life of a share
(BLINK.md 6)."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sylkbox.conference.chat import ChatStatus
from sylkbox.conference.conference_info import build_conference_info, parse_conference_info
from sylkbox.conference.participant import Participant
from sylkbox.conference.room import Room
from sylkbox.conference.screenshare import (
    MAX_JPEG_SEGMENTS,
    InvalidFrame,
    ScreenSharing,
    decode_frame,
    is_image_name,
    sender_key,
    validate_jpeg,
)
from sylkbox.config import RoomPolicy
from sylkbox.msrp.cpim import CpimMessage, Identity
from tests.helpers.jpeg import solid_jpeg

T0 = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
FRAME_A = solid_jpeg(40, 24, 30)
FRAME_B = solid_jpeg(17, 9, 250, comment=b"second")


# -- JPEG validation ------------------------------------------------------------------------------


def test_valid_jpegs_report_their_size() -> None:
    info = validate_jpeg(FRAME_A)
    assert (info.width, info.height, info.components) == (40, 24, 1)
    assert validate_jpeg(FRAME_B).width == 17
    assert validate_jpeg(solid_jpeg(1680, 1050, 0)).height == 1050


def test_fill_bytes_and_restart_markers_before_the_scan_are_accepted() -> None:
    # T.81 B.1.1.2: any number of 0xFF fill bytes may precede a marker
    data = FRAME_A[:2] + b"\xff\xff\xff" + FRAME_A[2:]
    assert validate_jpeg(data).width == 40


def _replace_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    pos = 2
    while True:
        assert data[pos] == 0xFF
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if data[pos + 1] == marker:
            segment = bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload
            return data[:pos] + segment + data[pos + 2 + length :]
        pos += 2 + length


HOSTILE = {
    "empty": b"",
    "soi only": b"\xff\xd8",
    "soi eoi": b"\xff\xd8\xff\xd9",
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
    "no eoi": FRAME_A[:-2],
    "eoi only at end of garbage": b"\xff\xd8" + b"\x00" * 20 + b"\xff\xd9",
    "zero length": FRAME_A[:2] + b"\xff\xfe\x00\x00" + FRAME_A[2:],
    "one length": FRAME_A[:2] + b"\xff\xfe\x00\x01" + FRAME_A[2:],
    "length past the end": FRAME_A[:2] + b"\xff\xfe\xff\xff" + FRAME_A[2:],
    "marker 00": FRAME_A[:2] + b"\xff\x00" + FRAME_A[2:],
    "nested soi": FRAME_A[:2] + FRAME_A,
    "scan first": b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x00\xff\xd9",
    "zero width": _replace_segment(FRAME_A, 0xC0, b"\x08\x00\x18\x00\x00\x01\x01\x11\x00"),
    "zero height": _replace_segment(FRAME_A, 0xC0, b"\x08\x00\x00\x00\x28\x01\x01\x11\x00"),
    "short frame header": _replace_segment(FRAME_A, 0xC0, b"\x08\x00\x18"),
    "component count lies": _replace_segment(
        FRAME_A, 0xC0, b"\x08\x00\x18\x00\x28\x03\x01\x11\x00"
    ),
    "scan of 3 components": _replace_segment(
        FRAME_A, 0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"
    ),
    "empty scan header": _replace_segment(FRAME_A, 0xDA, b""),
    "two frame headers": FRAME_A[:2]
    + b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"
    + FRAME_A[2:],
    "too many segments": FRAME_A[:2] + b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 1) + FRAME_A[2:],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_are_refused_with_400(name: str) -> None:
    with pytest.raises(InvalidFrame) as info:
        validate_jpeg(HOSTILE[name])
    assert info.value.status is ChatStatus.BAD_REQUEST


def test_every_truncation_is_refused() -> None:
    for cut in range(len(FRAME_A) - 1):
        with pytest.raises(InvalidFrame):
            validate_jpeg(FRAME_A[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_invalid_frame(data: bytes) -> None:
    with contextlib.suppress(InvalidFrame):
        info = validate_jpeg(data)
        assert info.width > 0 and info.height > 0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(FRAME_A) - 1), st.integers(0, 255))
def test_mutated_jpegs_raise_only_invalid_frame(index: int, value: int) -> None:
    data = bytearray(FRAME_A)
    data[index] = value
    try:
        info = validate_jpeg(bytes(data))
    except InvalidFrame:
        return
    assert info.width > 0 and info.height > 0


def test_decode_frame_accepts_base64_with_line_breaks() -> None:
    text = base64.encodebytes(FRAME_A)  # 76-character lines
    assert b"\n" in text
    data, info = decode_frame(text)
    assert data == FRAME_A and info.width == 40


def test_decode_frame_refuses_non_base64_with_400() -> None:
    with pytest.raises(InvalidFrame) as info:
        decode_frame(b"not base64 at all!")
    assert info.value.status is ChatStatus.BAD_REQUEST
    with pytest.raises(InvalidFrame):
        decode_frame(base64.b64encode(b"hello world, no JPEG"))


def test_decode_frame_refuses_oversized_frames_with_413() -> None:
    big = solid_jpeg(2000, 2000, 10, comment=b"x" * 60000)
    with pytest.raises(InvalidFrame) as info:
        decode_frame(base64.b64encode(big), max_size=len(big) - 1)
    assert info.value.status is ChatStatus.UNWANTED
    # refused before decoding when the text alone is far too long
    with pytest.raises(InvalidFrame) as info:
        decode_frame(b"A" * 10_000_000, max_size=1024)
    assert info.value.status is ChatStatus.UNWANTED
    assert decode_frame(base64.b64encode(big), max_size=len(big))[0] == big


# -- names -----------------------------------------------------------------------------------------


def test_sender_key_is_sanitized_user_at_host() -> None:
    assert sender_key("sip:alice@192.168.1.20:5060;transport=tcp") == "alice@192.168.1.20"
    assert sender_key("sip:Al%2Fice@EXAMPLE.com") == "Al_2Fice@example.com"
    assert sender_key("sip:../../etc@host") == "_._.._etc@host"
    assert "/" not in sender_key("sip:a/b@c") and sender_key("sip:a/b@c").endswith("@c")


def test_is_image_name() -> None:
    assert is_image_name("alice@192.168.1.20_aB3dE5gH9k.jpg")
    for bad in (
        "",
        "x.jpg",
        "../alice_aB3dE5gH9k.jpg",
        "a/b_aB3dE5gH9k.jpg",
        ".hidden_aB3dE5gH9k.jpg",
        "alice_aB3dE5gH9k.png",
        "alice_aB3dE5gH9k.jpg.tmp",
        "alice_aB3dE5gH9k.jpg\x00",
    ):
        assert not is_image_name(bad), bad


# -- shares ----------------------------------------------------------------------------------------


class FakeTimer:
    def __init__(self, scheduler: FakeScheduler, when: float, callback: Callable[[], object]):
        self.scheduler, self.when, self.callback = scheduler, when, callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """``call_later`` on a clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t.when):
            if not timer.cancelled and timer.when <= self.now:
                self.timers.remove(timer)
                timer.callback()

    @property
    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]


def _participant(pid: str, uri: str, display: str | None = None) -> Participant:
    return Participant(id=pid, uri=uri, display_name=display, contact=uri, joined_at=T0)


def _frame(data: bytes, sender: str = "sip:alice@192.168.1.20") -> CpimMessage:
    return CpimMessage(
        from_=Identity("Alice", sender),
        to=(Identity(None, "sip:room@box.local"),),
        datetime=T0,
        content_headers=(("Content-Type", "application/blink-screensharing"),),
        body=base64.b64encode(data),
    )


class World:
    def __init__(self, tmp: Path) -> None:
        self.scheduler = FakeScheduler()
        self.changes: list[str] = []
        self.statuses: list[str] = []
        self.screens = ScreenSharing(
            tmp,
            base_url="http://192.168.1.2:8080",
            on_change=lambda room: self.changes.append(room.key),
            status=lambda room, text: self.statuses.append(text),
            scheduler=self.scheduler,
            max_frame_size=4096,
        )
        self.room = Room(key="room@box.local", id="r1", policy=RoomPolicy(), server_name="x")
        self.alice = _participant("p1", "sip:alice@192.168.1.20", "Alice")
        self.alice2 = _participant("p2", "sip:alice@192.168.1.20;transport=tcp", "Alice")
        self.bob = _participant("p3", "sip:bob@192.168.1.21")
        for p in (self.alice, self.alice2, self.bob):
            self.room.add(p)

    def files(self) -> list[Path]:
        return sorted((self.screens.root / self.room.id).iterdir())


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_first_frame_activates_the_share(world: World) -> None:
    status = world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    assert status is ChatStatus.OK
    [path] = world.files()
    assert path.read_bytes() == FRAME_A
    assert path.parent == world.screens.root / "r1"
    assert is_image_name(path.name) and path.name.startswith("alice@192.168.1.20_")
    url = (
        "http://192.168.1.2:8080/conference/room@box.local/screensharing?image="
        + path.name.replace("@", "%40")
    )
    assert world.room.screen_urls == {"alice@192.168.1.20": url}
    assert world.changes == ["room@box.local"]
    assert world.statuses == [
        f"Room room@box.local - Alice <alice@192.168.1.20> is sharing the screen at {url}"
    ]
    shares = world.screens.get("ROOM@box.local")
    assert shares is not None and shares.image_path(path.name) == path


def test_url_is_in_the_snapshot_and_the_document(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    snapshot = world.room.snapshot()
    by_entity = {u.entity: u for u in snapshot.users}
    url = by_entity["sip:alice@192.168.1.20"].screen_image_url
    assert url is not None and url.startswith("http://192.168.1.2:8080/conference/")
    assert by_entity["sip:bob@192.168.1.21"].screen_image_url is None
    parsed = parse_conference_info(build_conference_info(snapshot, version=1))
    [alice] = [u for u in parsed.room.users if "alice" in u.entity]
    assert alice.screen_image_url == url


def test_only_the_newest_frame_is_kept_under_one_name(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    [first] = world.files()
    # another session of the same identity shares the same file
    assert world.screens.on_frame(world.room, world.alice2, _frame(FRAME_B)) is ChatStatus.OK
    assert world.files() == [first]
    assert first.read_bytes() == FRAME_B
    assert world.changes == ["room@box.local"]  # still active: no new NOTIFY, no new status
    assert len(world.statuses) == 1
    shares = world.screens.get("room@box.local")
    assert shares is not None
    share = shares.share(first.name)
    assert share is not None and share.frames == 2
    # a second sender gets a file of its own
    world.screens.on_frame(world.room, world.bob, _frame(FRAME_A, "sip:bob@192.168.1.21"))
    assert len(world.files()) == 2
    assert set(world.room.screen_urls) == {"alice@192.168.1.20", "bob@192.168.1.21"}


def test_write_is_atomic(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    [path] = world.files()
    with path.open("rb") as reader:  # a viewer that opened the old frame keeps it whole
        inode = os.fstat(reader.fileno()).st_ino
        world.screens.on_frame(world.room, world.alice, _frame(FRAME_B))
        assert reader.read() == FRAME_A
    assert path.read_bytes() == FRAME_B
    assert os.stat(path).st_ino != inode  # replaced by rename, not rewritten in place
    assert world.files() == [path]  # no .tmp left behind


def test_invalid_frames_are_refused_and_change_nothing(world: World) -> None:
    assert world.screens.on_frame(world.room, world.alice, _frame(b"GIF89a...")) == 400
    big = solid_jpeg(64, 64, 1, comment=b"y" * 5000)
    assert world.screens.on_frame(world.room, world.alice, _frame(big)) == 413
    assert not (world.screens.root / "r1").exists()
    assert world.room.screen_urls == {} and world.changes == [] and world.statuses == []
    stranger = _participant("p9", "sip:eve@10.0.0.1")
    assert world.screens.on_frame(world.room, stranger, _frame(FRAME_A)) == 403


def test_idle_timer_ends_the_share_and_frames_restart_it(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    world.scheduler.advance(9)
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_B))
    assert len(world.scheduler.pending) == 1  # the previous timer was cancelled
    world.scheduler.advance(9.5)  # 18.5 s after the first frame, 9.5 s after the last
    assert world.room.screen_urls
    world.scheduler.advance(0.5)
    assert world.room.screen_urls == {}
    assert world.changes == ["room@box.local", "room@box.local"]
    assert world.statuses[-1] == "Alice <alice@192.168.1.20> stopped sharing the screen"
    assert world.room.snapshot().users[0].screen_image_url is None
    [path] = world.files()  # the file stays until the room ends
    # a new frame makes it active again, under the same name
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    assert world.files() == [path]
    assert len(world.changes) == 3 and "is sharing the screen" in world.statuses[-1]


def test_room_end_removes_files_and_timers(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    world.screens.room_ended(world.room)
    assert not (world.screens.root / "r1").exists()
    assert world.scheduler.pending == []
    assert world.screens.get(world.room.key) is None
    assert world.room.screen_urls == {}


def test_a_new_room_with_the_same_key_starts_afresh(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    old = world.screens.get(world.room.key)
    room = Room(key=world.room.key, id="r2", policy=RoomPolicy(), server_name="x")
    room.add(world.alice)
    world.screens.on_frame(room, world.alice, _frame(FRAME_B))
    assert old is not None and old.closed
    assert not (world.screens.root / "r1").exists()
    assert [p.read_bytes() for p in (world.screens.root / "r2").iterdir()] == [FRAME_B]


def test_close_removes_everything(world: World) -> None:
    world.screens.on_frame(world.room, world.alice, _frame(FRAME_A))
    world.screens.close()
    assert not (world.screens.root / "r1").exists()
    assert world.scheduler.pending == []
