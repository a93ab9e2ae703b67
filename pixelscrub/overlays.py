"""Overlay layers: overlay planes (60xx,3000) and overlay bits kept in Pixel Data.

Both can carry burned-in text.  Each is a *layer* the pipeline reads and redacts
separately from the pixel layer, always in image coordinates: an overlay pixel
(r, c) shows at image pixel (r + origin_row, c + origin_col).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits, unpack_bits

from .decode import image_info, iter_frames
from .errors import ScrubError

__all__ = ["OverlayLayer", "overlay_layers", "iter_overlay_display", "overlay_group",
           "overlay_planes", "set_overlay_planes", "overlay_frame_index"]


@dataclass(frozen=True)
class OverlayLayer:
    """One overlay: ``name`` is ``overlay:60xx`` or ``highbit:<bit>``.

    ``origin`` is the 0-based image (row, col) of the overlay's first pixel;
    ``frames`` the number of views :func:`iter_overlay_display` yields (one per
    IMAGE frame, so frame indices match the pixel layer); ``overlay_frames`` the
    number of overlay frames stored (1 for most overlays, which then apply to
    every image frame); ``first_frame`` the 0-based image frame the first
    overlay frame belongs to.
    """

    name: str
    rows: int
    columns: int
    origin: tuple[int, int]
    frames: int = 1
    overlay_frames: int = 1
    first_frame: int = 0
    bit: int = 0

    @property
    def is_plane(self) -> bool:
        return self.name.startswith("overlay:")


def overlay_group(name: str) -> int:
    """The 60xx group of an ``overlay:60xx`` layer name."""
    return int(name.split(":", 1)[1], 16)


def _groups(ds: Dataset) -> list[int]:
    return sorted({t.group for t in ds.keys() if 0x6000 <= t.group <= 0x601E and t.group % 2 == 0})


def overlay_layers(ds: Dataset) -> list[OverlayLayer]:
    """Every overlay plane with data, and every overlay bit above BitsStored."""
    info = image_info(ds)
    out = []
    for g in _groups(ds):
        rows_e, cols_e = ds.get((g, 0x0010)), ds.get((g, 0x0011))
        if rows_e is None or cols_e is None:
            continue
        rows, cols = int(rows_e.value), int(cols_e.value)
        origin_e = ds.get((g, 0x0050))
        origin = (0, 0)
        if origin_e is not None and origin_e.value is not None:
            ov = list(origin_e.value) if not isinstance(origin_e.value, int) else [origin_e.value]
            if len(ov) >= 2:
                origin = (int(ov[0]) - 1, int(ov[1]) - 1)
        n_e = ds.get((g, 0x0015))
        n = int(n_e.value) if n_e is not None and n_e.value not in (None, "") else 1
        f0_e = ds.get((g, 0x0051))
        first = int(f0_e.value) - 1 if f0_e is not None and f0_e.value not in (None, "") else 0
        if (g, 0x3000) in ds:
            out.append(OverlayLayer(f"overlay:{g:04X}", rows, cols, origin, info.frames,
                                    max(n, 1), first))
            continue
        bit_e = ds.get((g, 0x0102))
        if (bit_e is not None and not info.is_encapsulated
                and info.bits_stored <= int(bit_e.value) < info.bits_allocated):
            bit = int(bit_e.value)
            out.append(OverlayLayer(f"highbit:{bit}", info.rows, info.columns, (0, 0),
                                    info.frames, info.frames, 0, bit))
    return out


def overlay_frame_index(layer: OverlayLayer, frame: int, image_frames: int) -> int | None:
    """The overlay frame shown on image ``frame``, or None."""
    if not layer.is_plane:
        return frame
    if layer.overlay_frames == 1 and layer.first_frame == 0:
        return 0
    k = frame - layer.first_frame
    return k if 0 <= k < layer.overlay_frames else None


def overlay_planes(ds: Dataset, layer: OverlayLayer) -> np.ndarray:
    """The overlay plane bits as uint8 (frames, rows, columns) 0/1."""
    g = overlay_group(layer.name)
    elem = ds[(g, 0x3000)]
    data = elem.value
    meta = getattr(ds, "file_meta", None)
    if (elem.VR == "OW" and meta is not None
            and meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.2"):
        data = np.frombuffer(data[: len(data) // 2 * 2], ">u2").astype("<u2").tobytes()
    count = layer.rows * layer.columns * layer.overlay_frames
    bits = unpack_bits(data)
    if bits.size < count:
        raise ScrubError("overlay data shorter than declared", reason="bad-overlay")
    return bits[:count].reshape(layer.overlay_frames, layer.rows,
                                layer.columns).astype(np.uint8)


def set_overlay_planes(ds: Dataset, layer: OverlayLayer, planes: np.ndarray) -> None:
    """Store ``planes`` (frames, rows, columns) back as the overlay's data."""
    g = overlay_group(layer.name)
    elem = ds[(g, 0x3000)]
    elem.value = pack_bits(planes.reshape(-1).astype(np.uint8), pad=True)


def _paste(plane: np.ndarray, layer: OverlayLayer, rows: int, cols: int) -> np.ndarray:
    """``plane`` (overlay coords) drawn into an image-sized uint8 canvas, ink 255."""
    out = np.zeros((rows, cols), np.uint8)
    r0, c0 = layer.origin
    y0, x0 = max(0, r0), max(0, c0)
    y1, x1 = min(rows, r0 + layer.rows), min(cols, c0 + layer.columns)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = plane[y0 - r0:y1 - r0, x0 - c0:x1 - c0] * 255
    return out


def iter_overlay_display(ds: Dataset, layer: OverlayLayer) -> Iterator[np.ndarray]:
    """One uint8 image per IMAGE frame: overlay ink 255 on 0, in image coordinates."""
    info = image_info(ds)
    if layer.is_plane:
        planes = overlay_planes(ds, layer)
        blank = np.zeros((info.rows, info.columns), np.uint8)
        for f in range(info.frames):
            k = overlay_frame_index(layer, f, info.frames)
            yield blank.copy() if k is None else _paste(planes[k], layer, info.rows, info.columns)
        return
    for frame in iter_frames(ds, keep_unused_bits=True):
        words = frame.view(np.dtype(frame.dtype.str.replace("i", "u")))
        yield (((words >> layer.bit) & 1) * 255).astype(np.uint8)
