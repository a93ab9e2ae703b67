"""Display values of a DICOM file's frames, on one scale for the original and any output.

The scorer compares what a person would see. Both files go through the same mapping,
taken from the original: modality LUT, the original's first window (or its stored
range), MONOCHROME1 inversion, palette lookup, YBR to RGB; the result is float
display units 0..255 with shape (frames, rows, columns, channels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut

__all__ = ["DisplayMap", "display_map", "display_frames"]


@dataclass(frozen=True)
class DisplayMap:
    """Linear window ``center``/``width`` for grayscale data (``None`` for colour)."""

    center: Optional[float]
    width: Optional[float]


def _first(v) -> Optional[float]:
    if v is None:
        return None
    try:
        return float(v[0]) if hasattr(v, "__len__") and not isinstance(v, str) else float(v)
    except (TypeError, ValueError, IndexError):
        return None


def _frames(ds: Dataset) -> np.ndarray:
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames == 1:
        arr = arr[None]
    if spp == 1 and arr.ndim == 3:
        arr = arr[..., None]
    return arr


def display_map(ds: Dataset, modality_values: Optional[np.ndarray] = None) -> DisplayMap:
    """The window to display grayscale ``ds`` with: its own first window, else its range."""
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if spp != 1 or ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        return DisplayMap(None, None)
    c, w = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if c is not None and w is not None and w > 1:
        return DisplayMap(c, w)
    if int(ds.get("BitsStored", 8)) <= 8 and ds.get("RescaleSlope") in (None, 1, 1.0):
        return DisplayMap(127.5, 256.0)
    vals = modality_values if modality_values is not None else _frames(ds).astype(np.float64)
    lo, hi = float(np.min(vals)), float(np.max(vals))
    return DisplayMap((lo + hi) / 2, max(hi - lo, 1.0))


def display_frames(ds: Dataset, dmap: Optional[DisplayMap] = None) -> np.ndarray:
    """(frames, rows, columns, channels) float32 display values of ``ds`` (0..255).

    ``dmap`` is the original's :func:`display_map`, so an output is shown the way its
    original was; without it the file's own map is used.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    arr = _frames(ds)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr[..., 0], ds)
        if rgb.ndim == 3:
            rgb = rgb[None]
        maxv = float(2 ** int(ds.get("BitsAllocated", 8)) - 1) if rgb.dtype != np.uint8 else 255.0
        if rgb.dtype == np.uint16:
            maxv = 65535.0
        return (rgb.astype(np.float32) * (255.0 / maxv))
    if arr.shape[-1] == 3:
        return arr.astype(np.float32)
    vals = apply_modality_lut(arr[..., 0], ds).astype(np.float64)
    dmap = dmap or display_map(ds, vals)
    if dmap.center is None:
        dmap = display_map(ds, vals)
    lo = dmap.center - dmap.width / 2
    out = np.clip((vals - lo) / dmap.width, 0.0, 1.0) * 255.0
    if photometric == "MONOCHROME1":
        out = 255.0 - out
    return out[..., None].astype(np.float32)
