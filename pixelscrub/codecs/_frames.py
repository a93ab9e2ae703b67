"""Helpers shared by backends that go through pydicom's encoders."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..decode import ImageInfo

__all__ = ["pixel_options", "run_encoder"]


def pixel_options(frame: np.ndarray, info: ImageInfo, photometric: str) -> dict[str, Any]:
    return {
        "rows": info.rows, "columns": info.columns,
        "samples_per_pixel": info.samples_per_pixel,
        "bits_allocated": info.bits_allocated, "bits_stored": info.bits_stored,
        "pixel_representation": info.pixel_representation,
        "photometric_interpretation": photometric,
        "planar_configuration": 0, "number_of_frames": 1,
    }


def run_encoder(encoder, frame: np.ndarray, info: ImageInfo, photometric: str,
                plugin: str, **kwargs: Any) -> bytes:
    """Encode one frame with a named pydicom encoder plugin (never 'any plugin':
    GDCM's RLE encoder aborts the process on some inputs)."""
    opts = pixel_options(frame, info, photometric)
    opts.update(kwargs)
    # Decoders may hand back narrower samples than Bits Allocated (e.g. 8-bit
    # precision JPEG 2000 in a 16-bit image); encode in the header's width.
    dtype = np.dtype(f"{'i' if info.signed else 'u'}{info.bits_allocated // 8}")
    arr = np.ascontiguousarray(frame.astype(dtype, copy=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return encoder.encode(arr, encoding_plugin=plugin, **opts)
