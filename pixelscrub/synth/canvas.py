"""A frame stack that records every text item drawn on it, with its exact ink mask."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..records import Box
from .text import Glyphs, blend, render, text_size
from .truth import TextItem

__all__ = ["Canvas"]

#: A pixel belongs to an item's ink when the glyphs cover at least this fraction of it.
INK_COVERAGE = 0.5


class Canvas:
    """Pixels ``(frames, rows, columns, samples)`` plus the text items drawn so far.

    Items must not overlap on a shared frame: each one's ink is then unambiguous and a
    scorer can tell a redacted name from its unredacted neighbour.
    """

    def __init__(self, pixels: np.ndarray):
        if pixels.ndim != 4:
            raise ValueError("pixels must be (frames, rows, columns, samples)")
        self.pixels = pixels
        self.items: list[TextItem] = []

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def rows(self) -> int:
        return self.pixels.shape[1]

    @property
    def columns(self) -> int:
        return self.pixels.shape[2]

    def size(self, text: str, font: str, cap: float) -> tuple[int, int]:
        return text_size(text, font, cap)

    def fill(self, box: Box, color, frames: Optional[Sequence[int]] = None) -> None:
        """Paint a solid rectangle (panels, banners) on some frames (``None``: all)."""
        fr = slice(None) if frames is None else list(frames)
        self.pixels[fr, box.y0:box.y1, box.x0:box.x1, :] = np.asarray(color, self.pixels.dtype)

    def draw(self, text: str, x: int, y: int, *, is_phi: bool, why: str, color,
             font: str = "simplex", cap: float = 12.0, thickness: int = 1,
             antialias: bool = True, rotation: int = 0,
             frames: Optional[Sequence[int]] = None, tags: Sequence[str] = ()) -> TextItem:
        """Draw ``text`` with its top-left at ``(x, y)`` and record it as a truth item."""
        glyphs = render(text, font, cap, thickness=thickness, antialias=antialias,
                        rotation=rotation)
        return self.place(text, glyphs, x, y, is_phi=is_phi, why=why, color=color, font=font,
                          rotation=rotation, frames=frames, tags=tags)

    def place(self, text: str, glyphs: Glyphs, x: int, y: int, *, is_phi: bool, why: str,
              color, font: str, rotation: int = 0, frames: Optional[Sequence[int]] = None,
              tags: Sequence[str] = ()) -> TextItem:
        """Blend already rendered ``glyphs`` (any renderer) and record the truth item."""
        cap = glyphs.cap_height
        h, w = glyphs.alpha.shape
        box = Box(x, y, x + w, y + h)
        if x < 0 or y < 0 or box.x1 > self.columns or box.y1 > self.rows:
            raise ValueError(f"text {text!r} at {box} falls outside the image")
        fset = None if frames is None else tuple(sorted(set(int(f) for f in frames)))
        for other in self.items:
            shared = (fset is None or other.frames is None
                      or set(fset) & set(other.frames))
            if shared and other.box.intersects(box):
                raise ValueError(f"text {text!r} at {box} overlaps {other.box}")
        targets = range(self.pixels.shape[0]) if fset is None else fset
        col = np.atleast_1d(np.asarray(color, dtype=np.float64))
        for f in targets:
            blend(self.pixels[f], glyphs.alpha, x, y, col)
        item = TextItem(text=text, box=box, is_phi=is_phi, why=why, frames=fset,
                        ink=glyphs.alpha >= INK_COVERAGE, rotation=rotation,
                        tags=tuple(tags), font=font, cap_height=float(cap))
        self.items.append(item)
        return item
