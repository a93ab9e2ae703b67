"""Patient pseudonyms, the user's pseudonym table, and the re-identification map.

A pseudonym either comes from a CSV the user supplies (original PatientID ->
research ID [, research name]), as clinical trials assign subject IDs, or is
keyed: ``PS-`` plus base32 of HMAC-SHA256(key, PatientID), the same on every
run and machine with the same key.

When a CSV is given, a PatientID missing from it is an error (fail closed): a
trial that assigns its own subject IDs must not silently get an invented one.

The re-identification map (pseudonym -> original) is written only when asked,
appended under an exclusive file lock so parallel processes can share it, and
must never sit inside the output folder (:func:`check_reid_map_location`).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ..errors import ScrubError

__all__ = [
    "Pseudonym",
    "keyed_pseudonym",
    "load_pseudonym_csv",
    "pseudonym_for",
    "append_reid_map",
    "check_reid_map_location",
]

_DOMAIN = b"pixelscrub/pseudonym\0"
_HEADER_WORDS = {"original_id", "original", "patientid", "patient_id", "id"}
_MAX_LO = 64


@dataclass(frozen=True)
class Pseudonym:
    """The replacement PatientID and PatientName, and where they came from."""

    patient_id: str
    patient_name: str
    source: str  # "csv" or "keyed"


def keyed_pseudonym(value: str, key: bytes, prefix: str = "PS-") -> str:
    """``prefix`` + 16 base32 characters of HMAC-SHA256(key, value)."""
    if not key:
        raise ValueError("a non-empty key is required for pseudonyms")
    digest = hmac.new(key, _DOMAIN + value.encode("utf-8"), hashlib.sha256).digest()
    return prefix + base64.b32encode(digest[:10]).decode("ascii")


@lru_cache(maxsize=8)
def load_pseudonym_csv(path: str) -> dict[str, tuple[str, Optional[str]]]:
    """Read ``original_id,research_id[,research_name]`` rows (an optional header row).

    Raises ``ValueError`` for an empty research ID, one longer than 64
    characters, or one original ID mapped twice to different pseudonyms.
    """
    table: dict[str, tuple[str, Optional[str]]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if n == 1 and row[0].strip().lower() in _HEADER_WORDS:
                continue
            if len(row) < 2 or not row[1].strip():
                raise ValueError(f"pseudonym CSV line {n}: expected original_id,research_id[,research_name]")
            original, research = row[0].strip(), row[1].strip()
            name = row[2].strip() if len(row) > 2 and row[2].strip() else None
            if len(research) > _MAX_LO or (name and len(name) > _MAX_LO):
                raise ValueError(f"pseudonym CSV line {n}: research ID or name longer than 64 characters")
            if original in table and table[original] != (research, name):
                raise ValueError(f"pseudonym CSV line {n}: an original ID is mapped twice")
            table[original] = (research, name)
    return table


def pseudonym_for(patient_id: str, patient_name: str, birth_date: str, key: bytes, *,
                  csv_path: Optional[str] = None, prefix: str = "PS-") -> Pseudonym:
    """The pseudonym of one patient; raises ScrubError if a given CSV lacks the ID."""
    if csv_path:
        try:
            table = load_pseudonym_csv(str(csv_path))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ScrubError(f"cannot use the pseudonym CSV: {e}", reason="pseudonym-csv") from None
        if patient_id not in table:
            raise ScrubError("PatientID not found in the pseudonym CSV", reason="pseudonym-missing")
        research, name = table[patient_id]
        return Pseudonym(research, name or research, "csv")
    basis = patient_id if patient_id else f"name:{patient_name}|birth:{birth_date}"
    value = keyed_pseudonym(basis, key, prefix)
    return Pseudonym(value, value, "keyed")


def _lock(f) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def append_reid_map(path: str, pseudonym: Pseudonym, original_id: str, original_name: str) -> bool:
    """Add ``pseudonym,original_id,original_name`` to the map unless already there.

    The file is locked while it is read and appended, so many processes may
    share one map.  Returns True when a row was written.
    """
    row = [pseudonym.patient_id, original_id, original_name]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    line = buf.getvalue()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8", newline="") as f:
        _lock(f)  # released when the file is closed
        f.seek(0)
        existing = f.read()
        if not existing:
            f.write("pseudonym,original_id,original_name\n")
        elif line in existing.splitlines(keepends=True):
            return False
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return True


def check_reid_map_location(path: str, outdir: str) -> None:
    """Raise ScrubError when the re-identification map would land in ``outdir``.

    The map undoes the de-identification, so it must never travel with the
    de-identified output.
    """
    map_path = Path(path).expanduser().resolve()
    out = Path(outdir).expanduser().resolve()
    if map_path == out or out in map_path.parents:
        raise ScrubError("the re-identification map must not be written inside the output folder",
                         reason="reid-map-in-output")
