"""Turn hits into per-layer, per-frame boxes, and paint them with display black.

The fill is black as a viewer shows it, expressed in the native space of
:func:`pixelscrub.decode.iter_frames` (see that module for the colour space).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
from pydicom.dataset import Dataset

from .decode import ImageInfo, image_info
from .records import Box, Hit

__all__ = ["PlannedBox", "RedactionPlan", "plan_redactions", "fill_value", "fill_frame"]


@dataclass(frozen=True)
class PlannedBox:
    """One box to fill on ``layer``; ``frames`` None means every frame."""

    layer: str
    box: Box
    frames: Optional[tuple[int, ...]] = None

    def applies_to(self, frame: int) -> bool:
        return self.frames is None or frame in self.frames


@dataclass(frozen=True)
class RedactionPlan:
    """Every box to fill, already grown by the margin and clipped to the image."""

    boxes: tuple[PlannedBox, ...] = ()

    def boxes_for(self, layer: str, frame: int) -> list[Box]:
        """Boxes to fill on ``layer`` in 0-based ``frame``."""
        return [p.box for p in self.boxes if p.layer == layer and p.applies_to(frame)]

    def layers(self) -> set[str]:
        return {p.layer for p in self.boxes}

    def touches_frame(self, frame: int) -> bool:
        """True when any layer has a box on ``frame``."""
        return any(p.applies_to(frame) for p in self.boxes)

    def is_empty(self) -> bool:
        return not self.boxes


def plan_redactions(hits: Sequence[Hit], info: ImageInfo, *, margin: int) -> RedactionPlan:
    """Grow each hit's box by ``margin``, clip it to the image, drop empty ones.

    User regions (reason ``"user-region"``) and device rule regions (``"rule:NAME"``)
    are exact rectangles chosen for a known device layout: they get no margin (a
    margin would also eat into the areas a rule keeps).

    Frame indices beyond the image are dropped; a hit left with no frames is
    dropped too.  Identical boxes are kept once.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    out: list[PlannedBox] = []
    seen = set()
    for hit in hits:
        grow = 0 if hit.reason == "user-region" or hit.reason.startswith("rule:") else margin
        box = hit.box.expand(grow, info.columns, info.rows)
        if box.is_empty():
            continue
        frames = hit.frames
        if frames is not None:
            frames = tuple(sorted({int(f) for f in frames if 0 <= int(f) < info.frames}))
            if not frames:
                continue
            if len(frames) == info.frames:
                frames = None
        planned = PlannedBox(hit.layer, box, frames)
        if planned not in seen:
            seen.add(planned)
            out.append(planned)
    return RedactionPlan(tuple(out))


def fill_value(ds_or_info: Union[Dataset, ImageInfo]) -> Union[int, tuple[int, int, int]]:
    """The native value that displays as black, in the space of ``iter_frames``.

    MONOCHROME2: lowest stored value (highest when RescaleSlope is negative);
    MONOCHROME1: the opposite; RGB: zeros; YBR_FULL: (0, mid, mid); PALETTE
    COLOR: the index of the darkest palette entry.
    """
    info = ds_or_info if isinstance(ds_or_info, ImageInfo) else image_info(ds_or_info)
    pi = info.frame_photometric
    if pi == "PALETTE COLOR":
        return int(info.palette_black or 0)
    if pi == "RGB":
        return (0, 0, 0)
    if pi == "YBR_FULL":
        mid = 1 << (info.bits_stored - 1)
        return (0, mid, mid)
    low_is_black = (pi == "MONOCHROME2") == (info.rescale_slope >= 0)
    return info.stored_min if low_is_black else info.stored_max


def fill_frame(frame: np.ndarray, boxes: Sequence[Box], value) -> np.ndarray:
    """A copy of ``frame`` with every box set to ``value`` (clipped to the frame)."""
    out = np.array(frame, copy=True)
    h, w = out.shape[:2]
    fill = np.asarray(value, dtype=out.dtype)
    for box in boxes:
        b = box.clip(w, h)
        if not b.is_empty():
            out[b.y0:b.y1, b.x0:b.x1] = fill
    return out
