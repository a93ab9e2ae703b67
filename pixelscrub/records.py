"""Small frozen data classes that pass between the pipeline stages.

Every stage takes and returns these, so each stage can be tested with hand-made
inputs, and the per-file audit record is just these records serialised.

Coordinates are native pixel coordinates of the frame, half-open boxes:
a pixel (x, y) is inside ``Box(x0, y0, x1, y1)`` when ``x0 <= x < x1`` and
``y0 <= y < y1``.  ``frames`` is a sorted tuple of 0-based frame indices, or
``None`` meaning "every frame of the image".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

__all__ = [
    "Box",
    "covered_share",
    "Proposal",
    "Word",
    "Hit",
    "StageReport",
    "FileAudit",
    "PIXEL_LAYER",
    "OUTPUT_STATUSES",
]

#: Name of the main pixel-data layer. Overlay planes are ``"overlay:6000"`` ..
#: ``"overlay:601E"``; overlay bits above BitsStored are ``"highbit:<bit>"``.
PIXEL_LAYER = "pixels"

#: Audit statuses of a file that was written (see :class:`FileAudit`).
OUTPUT_STATUSES = ("clean", "unverified", "written")


@dataclass(frozen=True, order=True)
class Box:
    """An axis-aligned half-open rectangle in native pixel coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def expand(self, margin: int, width: int, height: int) -> "Box":
        """The box grown by ``margin`` pixels on each side, clipped to the image."""
        return Box(
            max(0, self.x0 - margin),
            max(0, self.y0 - margin),
            min(width, self.x1 + margin),
            min(height, self.y1 + margin),
        ).clip(width, height)

    def clip(self, width: int, height: int) -> "Box":
        x0 = min(max(0, self.x0), width)
        y0 = min(max(0, self.y0), height)
        return Box(x0, y0, max(x0, min(self.x1, width)), max(y0, min(self.y1, height)))

    def intersects(self, other: "Box") -> bool:
        return (
            self.x0 < other.x1 and other.x0 < self.x1
            and self.y0 < other.y1 and other.y0 < self.y1
        )

    def intersection(self, other: "Box") -> "Box":
        b = Box(max(self.x0, other.x0), max(self.y0, other.y0),
                min(self.x1, other.x1), min(self.y1, other.y1))
        return b if b.x1 > b.x0 and b.y1 > b.y0 else Box(b.x0, b.y0, b.x0, b.y0)

    def union(self, other: "Box") -> "Box":
        return Box(min(self.x0, other.x0), min(self.y0, other.y0),
                   max(self.x1, other.x1), max(self.y1, other.y1))

    def rows_shared(self, other: "Box") -> int:
        """How many pixel rows the two boxes share (negative: the gap between
        them): whether two pieces of text sit on one printed row."""
        return min(self.y1, other.y1) - max(self.y0, other.y0)

    def contains(self, other: "Box") -> bool:
        return (self.x0 <= other.x0 and self.y0 <= other.y0
                and other.x1 <= self.x1 and other.y1 <= self.y1)

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def covered_share(box: Box, others: Iterable[Box]) -> float:
    """The share of ``box``'s pixels inside the union of ``others`` (0 for an empty
    box): boxes overlap, so their areas cannot simply be added."""
    if box.is_empty():
        return 0.0
    mask = np.zeros((box.height, box.width), bool)
    for b in others:
        if b.intersects(box):
            c = b.intersection(box)
            mask[c.y0 - box.y0:c.y1 - box.y0, c.x0 - box.x0:c.x1 - box.x0] = True
    return float(mask.mean())


@dataclass(frozen=True)
class Proposal:
    """A candidate text region found by the propose stage.

    ``rotation`` is the clockwise angle (0, 90, 180 or 270) by which the crop must
    be rotated so that its text reads left to right.  ``source`` says how it was
    found: ``"static"`` (found once from the frame stack of a cine), ``"dynamic"``
    (changes between frames), ``"single"`` (single-frame image), ``"overlay"``.
    ``score`` is how sure the propose stage is that the region holds text: 1 for
    strokes that stand out from their ground, less for weaker cues (flat stroke
    cores over texture); a weak region that OCR cannot read is not text left
    unread, only a false lead.
    """

    box: Box
    frames: Optional[tuple[int, ...]] = None
    layer: str = PIXEL_LAYER
    rotation: int = 0
    source: str = "single"
    score: float = 1.0


@dataclass(frozen=True)
class Word:
    """One word read by OCR, with its box in native image coordinates.

    Words that Tesseract put on the same text line of the same proposal share a
    ``line_id`` and are ordered left to right by ``index``.
    """

    text: str
    box: Box
    confidence: float  # 0..100, Tesseract's scale
    line_id: int = 0
    index: int = 0
    frames: Optional[tuple[int, ...]] = None
    layer: str = PIXEL_LAYER
    rotation: int = 0


@dataclass(frozen=True)
class Hit:
    """A region to redact and why.

    ``reason`` is machine-readable: ``"header:PatientName"``, ``"pattern:date"``,
    ``"label:Name"``, ``"mode:all-text"``, ``"user-region"``.  ``text`` is the
    OCR'd text behind the hit; it is PHI and is only ever written out when the
    user asks for it (``--log-phi``).
    """

    box: Box
    reason: str
    frames: Optional[tuple[int, ...]] = None
    layer: str = PIXEL_LAYER
    confidence: float = 100.0
    text: str = ""
    score: float = 100.0  # match similarity 0..100


@dataclass
class StageReport:
    """What one stage did to one file: its name, seconds spent and counters."""

    stage: str
    seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class FileAudit:
    """The per-file audit record, one JSON line in the run report.

    ``status`` is ``"clean"`` (written and certified: every frame checked, every
    text line read or redacted), ``"unverified"`` (written, but some frame or
    text line could not be checked: not certified, kept apart from clean outputs;
    ``review`` lists the unread lines), ``"written"`` (written without checking,
    as ``regions-only`` asks), ``"failed"`` (nothing written), ``"skipped"``
    (already done).
    """

    input: str
    output: Optional[str] = None
    status: str = "failed"
    error: Optional[str] = None
    transfer_syntax_in: Optional[str] = None
    transfer_syntax_out: Optional[str] = None
    frames: int = 0
    frames_checked: int = 0
    hits: list[Hit] = field(default_factory=list)
    review: list[Hit] = field(default_factory=list)
    stages: list[StageReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stage(self, name: str) -> StageReport:
        """The report of stage ``name``, created on first use."""
        for s in self.stages:
            if s.stage == name:
                return s
        s = StageReport(name)
        self.stages.append(s)
        return s

    def to_json(self, *, log_phi: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; OCR text is dropped unless ``log_phi``."""
        d = asdict(self)
        for h in d["hits"] + d["review"]:
            h["box"] = [h["box"]["x0"], h["box"]["y0"], h["box"]["x1"], h["box"]["y1"]]
            h["frames"] = list(h["frames"]) if h["frames"] is not None else "all"
            if not log_phi:
                h.pop("text", None)
        return d
