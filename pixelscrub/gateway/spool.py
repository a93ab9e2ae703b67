"""The gateway's durable spool: every instance lives in exactly one folder of it.

::

    SPOOL/incoming/     being received; never acknowledged, cleared at start
    SPOOL/received/     synced to disk before the sender hears "stored"
    SPOOL/work/         scrub outputs being written (cleared at start)
    SPOOL/clean/        scrubbed, waiting to be forwarded
    SPOOL/unverified/   scrubbed but not certified: held, never forwarded
    SPOOL/quarantine/   could not be scrubbed or was refused by the destination
    SPOOL/audit.jsonl   one line per association and per instance, no PHI

An instance moves between folders by ``os.replace`` followed by a directory
fsync, so after a crash it is in its old folder or its new one, never lost and
never half-written.  A restart resumes by looking at the folders: ``received``
is scrubbed again, ``clean`` forwarded again (the destination may then see an
instance twice; it has the same UIDs both times, so a PACS keeps one).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from ..errors import ScrubError

__all__ = ["Spool", "FOLDERS"]

FOLDERS = ("incoming", "received", "work", "clean", "unverified", "quarantine")


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Folders of spooled instances named by arrival order (``<ns>-<random>.dcm``)."""

    def __init__(self, root):
        self.root = Path(root)
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / ".lock", "a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise ScrubError(f"{self.root}: another gateway is using this spool", reason="usage")
        for leftover in list(self.folder("incoming").iterdir()) + list(self.folder("work").iterdir()):
            _remove(leftover)  # a receipt never acknowledged, or a scrub cut short
        self._audit_lock = threading.Lock()

    def close(self) -> None:
        """Release the spool for another gateway process."""
        self._lock_file.close()

    def folder(self, name: str) -> Path:
        return self.root / name

    def path(self, folder: str, spool_id: str) -> Path:
        return self.folder(folder) / f"{spool_id}.dcm"

    def new_id(self) -> str:
        return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"

    def receive(self, data: bytes) -> str:
        """Write one received instance and sync it; returns its spool id.

        Only after this returns may the sender be told the instance is stored.
        """
        spool_id = self.new_id()
        part = self.path("incoming", spool_id)
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.move(part, "received", spool_id)
        return spool_id

    def move(self, src: Path, folder: str, spool_id: str, *, why: Optional[dict] = None) -> Path:
        """Rename ``src`` into ``folder`` (durably); ``why`` goes beside it as JSON."""
        dst = self.path(folder, spool_id)
        if why is not None:
            note = dst.with_suffix(".json")
            tmp = note.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(why, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, note)
        os.replace(src, dst)
        _sync_dir(dst.parent)
        if Path(src).parent != dst.parent:
            _sync_dir(Path(src).parent)
        return dst

    def ids(self, folder: str) -> list[str]:
        """Spool ids in ``folder``, oldest first."""
        return sorted(p.stem for p in self.folder(folder).glob("*.dcm"))

    def depth(self) -> dict[str, int]:
        return {name: len(self.ids(name)) for name in FOLDERS if name not in ("incoming", "work")}

    def remove(self, folder: str, spool_id: str) -> None:
        _remove(self.path(folder, spool_id))
        _remove(self.path(folder, spool_id).with_suffix(".json"))
        _sync_dir(self.folder(folder))

    def audit(self, record: dict[str, Any]) -> None:
        """Append one line to ``audit.jsonl`` (callers pass no PHI)."""
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}, sort_keys=True)
        with self._audit_lock, open(self.root / "audit.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
