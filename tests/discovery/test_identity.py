"""Tests for sylkbox.discovery.identity: the stored instance id."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from sylkbox.discovery.identity import INSTANCE_ID_FILE, load_instance_id


def test_created_once_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"  # created if missing
    first = load_instance_id(data_dir)
    assert first.version == 4
    stored = (data_dir / INSTANCE_ID_FILE).read_text()
    assert stored == f"{first}\n"
    assert load_instance_id(data_dir) == first
    assert [p.name for p in data_dir.iterdir()] == [INSTANCE_ID_FILE]  # no temporary left


def test_accepts_any_uuid_spelling(tmp_path: Path) -> None:
    value = uuid.UUID("7c0e5e0a-52f4-4d0c-9a4c-3f1e2b8d9a10")
    (tmp_path / INSTANCE_ID_FILE).write_text("  7C0E5E0A52F44D0C9A4C3F1E2B8D9A10 \n")
    assert load_instance_id(tmp_path) == value


@pytest.mark.parametrize("content", [b"", b"not a uuid\n", b"\xff\xfe\x00garbage"])
def test_corrupt_file_is_replaced_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / INSTANCE_ID_FILE
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="sylkbox.discovery.identity"):
        new = load_instance_id(tmp_path)
    assert path.read_text() == f"{new}\n"
    assert load_instance_id(tmp_path) == new
    assert any("corrupt" in r.getMessage() and str(new) in r.getMessage() for r in caplog.records)


def test_unwritable_data_dir_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        load_instance_id(blocker / "var")
