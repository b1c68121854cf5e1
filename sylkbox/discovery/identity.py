"""The box's DNS-SD ``instance_id``: a UUID4 made at first start, in ``<data_dir>/instance_id``.

Blink-Qt groups Bonjour records by ``instance_id`` (BLINK.md 1.2), so it must stay the same
across restarts (SylkServer makes a new one at every start). The file holds the UUID as text.
It is created once, atomically (written to a temporary file, then hard-linked into place, so two
first starts agree on one id); a file that cannot be read as a UUID is replaced, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path

__all__ = ["INSTANCE_ID_FILE", "load_instance_id"]

log = logging.getLogger(__name__)

INSTANCE_ID_FILE = "instance_id"


def _read(path: Path) -> uuid.UUID:
    text = path.read_text(encoding="ascii").strip()
    return uuid.UUID(text)


def _write_new(path: Path, *, replace: bool) -> uuid.UUID:
    new = uuid.uuid4()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="ascii") as fh:
            fh.write(f"{new}\n")
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return new
        try:
            os.link(tmp, path)  # fails if another process made it first
        except FileExistsError:
            return _read(path)
        except OSError:  # a file system without hard links
            os.replace(tmp, path)
        return new
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_instance_id(data_dir: Path) -> uuid.UUID:
    """The stored instance id, made (and stored) at the first call; raises OSError only if the
    data directory cannot be written."""
    path = data_dir / INSTANCE_ID_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        new = _write_new(path, replace=False)
        log.info("mdns: new instance id %s stored in %s", new, path)
        return new
    except (OSError, ValueError) as exc:  # unreadable, not ASCII, not a UUID
        new = _write_new(path, replace=True)
        log.warning("mdns: %s was corrupt (%s); replaced with a new instance id %s",
                    path, exc, new)
        return new
