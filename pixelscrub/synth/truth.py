"""Ground truth records for synthetic (or user-annotated) DICOM files.

One JSON file per DICOM, in a ``truth/`` folder beside ``dicom/``. It holds every
burned-in text item with its box, its exact ink mask, its text, whether it is PHI and
why, so a scorer can measure per pixel what any de-identification tool removed.

Ink masks are stored run-length encoded inside the item's box (row-major, runs that
alternate off/on starting with "off"), which keeps a typical item under 200 bytes of
JSON while staying exact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..records import Box

__all__ = [
    "TRUTH_VERSION",
    "TextItem",
    "FileTruth",
    "encode_mask",
    "decode_mask",
    "write_truth",
    "read_truth",
    "truth_files",
]

TRUTH_VERSION = 1


def encode_mask(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D boolean mask, row-major, alternating off/on, starting off."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return [int(r) for r in runs]


def decode_mask(runs: list[int], height: int, width: int) -> np.ndarray:
    """The boolean ``(height, width)`` mask that :func:`encode_mask` encoded."""
    flat = np.zeros(height * width, dtype=bool)
    pos = 0
    on = False
    for r in runs:
        if on:
            flat[pos:pos + r] = True
        pos += r
        on = not on
    if pos != height * width:
        raise ValueError(f"mask runs cover {pos} pixels, expected {height * width}")
    return flat.reshape(height, width)


@dataclass(frozen=True)
class TextItem:
    """One burned-in text item (a word group drawn in one go).

    ``box`` bounds every pixel the text touched (anti-aliased edges included);
    ``ink`` is the mask of pixels at least half covered by the glyphs, relative to
    ``box`` (``None`` for annotations that only have boxes). ``frames`` is ``None``
    when the item is on every frame. ``why`` is ``"header:<Keyword>"``,
    ``"pattern:<kind>"`` for PHI, ``"nonphi:<kind>"`` otherwise. ``rotation`` is the
    counter-clockwise angle of the text baseline in degrees.
    """

    text: str
    box: Box
    is_phi: bool
    why: str
    frames: Optional[tuple[int, ...]] = None
    ink: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    rotation: int = 0
    tags: tuple[str, ...] = ()
    font: str = ""
    cap_height: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "box": self.box.as_list(),
            "is_phi": self.is_phi,
            "why": self.why,
            "frames": list(self.frames) if self.frames is not None else None,
            "rotation": self.rotation,
            "tags": list(self.tags),
            "font": self.font,
            "cap_height": round(float(self.cap_height), 2),
        }
        if self.ink is not None:
            d["ink_rle"] = encode_mask(self.ink)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TextItem":
        box = Box(*d["box"])
        ink = None
        if d.get("ink_rle") is not None:
            ink = decode_mask(d["ink_rle"], box.height, box.width)
        frames = d.get("frames")
        return cls(
            text=d["text"], box=box, is_phi=bool(d["is_phi"]), why=d.get("why", ""),
            frames=tuple(frames) if frames is not None else None, ink=ink,
            rotation=int(d.get("rotation", 0)), tags=tuple(d.get("tags", ())),
            font=d.get("font", ""), cap_height=float(d.get("cap_height", 0.0)),
        )


@dataclass(frozen=True)
class FileTruth:
    """Ground truth of one DICOM file.

    ``file`` is the DICOM path relative to the set's ``dicom/`` folder (outputs are
    matched by it, then by ``sop_instance_uid``); ``header_phi`` maps header keywords
    to the PHI values the original header held, so a scorer can look for them in an
    output's bytes.
    """

    file: str
    category: str
    case: str
    sop_instance_uid: str
    rows: int
    columns: int
    frames: int
    samples: int
    photometric: str
    transfer_syntax: str
    items: tuple[TextItem, ...] = ()
    header_phi: dict[str, str] = field(default_factory=dict)
    seed: Optional[int] = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": TRUTH_VERSION,
            "file": self.file,
            "category": self.category,
            "case": self.case,
            "sop_instance_uid": self.sop_instance_uid,
            "rows": self.rows,
            "columns": self.columns,
            "frames": self.frames,
            "samples": self.samples,
            "photometric": self.photometric,
            "transfer_syntax": self.transfer_syntax,
            "seed": self.seed,
            "header_phi": dict(self.header_phi),
            "notes": list(self.notes),
            "items": [it.to_json() for it in self.items],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FileTruth":
        return cls(
            file=d["file"], category=d.get("category", "unknown"), case=d.get("case", ""),
            sop_instance_uid=d.get("sop_instance_uid", ""), rows=int(d["rows"]),
            columns=int(d["columns"]), frames=int(d.get("frames", 1)),
            samples=int(d.get("samples", 1)), photometric=d.get("photometric", ""),
            transfer_syntax=d.get("transfer_syntax", ""),
            items=tuple(TextItem.from_json(i) for i in d.get("items", ())),
            header_phi=dict(d.get("header_phi", {})), seed=d.get("seed"),
            notes=tuple(d.get("notes", ())),
        )


def write_truth(truth: FileTruth, path: Path) -> None:
    """Write ``truth`` as compact JSON (one item per line, so diffs stay readable)."""
    d = truth.to_json()
    items = d.pop("items")
    head = json.dumps(d, indent=1)
    body = ",\n".join("  " + json.dumps(i, separators=(",", ":")) for i in items)
    text = head[:-2] + ',\n "items": [\n' + body + "\n ]\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read_truth(path: Path) -> FileTruth:
    with open(path, encoding="utf-8") as f:
        return FileTruth.from_json(json.load(f))


def truth_files(folder: Path) -> list[Path]:
    """Every ``*.json`` truth file under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*.json") if p.is_file())
