"""Text rendering for synthetic burned-in annotations, with exact ink masks.

Only OpenCV's built-in Hershey vector fonts are used, so a fresh machine renders
exactly the same pixels without any font package, given the same OpenCV release: glyph
widths change between releases, hence the pin in pyproject.toml. Glyphs are drawn into a coverage
map (0..1) first; the caller blends it into the image and keeps the pixels at least
half covered as the item's ink mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["FONTS", "Glyphs", "render", "blend", "text_size"]

#: Hershey faces scanners' overlays look like: sans, double-stroke sans, serif, mono-ish.
FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "plain": cv2.FONT_HERSHEY_PLAIN,
    "complex_small": cv2.FONT_HERSHEY_COMPLEX_SMALL,
}



def _measure_cap(face: int) -> float:
    """Rows of ink of an "H" drawn at font scale 4, divided by 4 (cap height at scale 1)."""
    canvas = np.zeros((200, 200), np.uint8)
    cv2.putText(canvas, "H", (20, 150), face, 4.0, 255, 1, cv2.LINE_8)
    rows = np.flatnonzero(canvas.any(axis=1))
    return (rows.max() - rows.min() + 1) / 4.0


# Cap height in pixels of each face at font scale 1.
_CAP = {name: _measure_cap(f) for name, f in FONTS.items()}


@dataclass(frozen=True)
class Glyphs:
    """Coverage of a rendered text: ``alpha`` (h, w) float32 in 0..1, tightly cropped.

    ``cap_height`` is the rendered cap height in pixels before any rotation.
    """

    alpha: np.ndarray
    cap_height: float


def _scale_for(font: str, cap_height: float) -> float:
    return cap_height / _CAP[font]


def text_size(text: str, font: str, cap_height: float, thickness: int = 1) -> tuple[int, int]:
    """Width and height (ascender to descender) in pixels of unrotated ``text``."""
    scale = _scale_for(font, cap_height)
    (w, h), base = cv2.getTextSize(text, FONTS[font], scale, thickness)
    return w, h + base


def render(text: str, font: str = "simplex", cap_height: float = 12.0, *,
           thickness: int = 1, antialias: bool = True, rotation: int = 0) -> Glyphs:
    """Render ``text`` to a tight coverage map.

    ``rotation`` (0, 90, 180, 270) turns the text counter-clockwise, as on the
    vertical side labels some scanners print.
    """
    scale = _scale_for(font, cap_height)
    face = FONTS[font]
    (w, h), base = cv2.getTextSize(text, face, scale, thickness)
    pad = thickness + 3
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), face, scale, 255, thickness,
                cv2.LINE_AA if antialias else cv2.LINE_8)
    if rotation % 360:
        canvas = np.rot90(canvas, k=(rotation // 90) % 4)
    ys, xs = np.nonzero(canvas)
    if ys.size == 0:
        return Glyphs(np.zeros((0, 0), np.float32), cap_height)
    crop = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return Glyphs(np.ascontiguousarray(crop, dtype=np.float32) / 255.0, cap_height)


def blend(image: np.ndarray, alpha: np.ndarray, x: int, y: int, color) -> None:
    """Blend ``color`` into ``image`` (H, W) or (H, W, C) at top-left ``(x, y)`` in place.

    The alpha map must fit inside the image. Values are rounded to the image dtype.
    """
    h, w = alpha.shape
    region = image[y:y + h, x:x + w]
    if region.shape[:2] != (h, w):
        raise ValueError("text does not fit inside the image")
    a = alpha if region.ndim == 2 else alpha[..., None]
    col = np.asarray(color, dtype=np.float64)
    out = region.astype(np.float64) * (1.0 - a) + col * a
    info = np.iinfo(image.dtype)
    region[...] = np.clip(np.rint(out), info.min, info.max).astype(image.dtype)
