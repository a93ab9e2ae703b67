"""RLE Lossless via pylibjpeg-rle (8, 16 and 32-bit), pydicom's encoder as fallback."""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid
from pydicom.pixels.encoders import RLELosslessEncoder

from ..decode import ImageInfo
from ._frames import run_encoder

try:
    from rle import encode_pixel_data as _rle_encode
except ImportError:  # pragma: no cover - pylibjpeg-rle is a declared dependency
    _rle_encode = None

__all__ = ["SYNTAXES", "is_available", "supports", "encode_frame"]

SYNTAXES = (_uid.RLELossless,)


def is_available(uid: str) -> bool:
    return uid in SYNTAXES and (_rle_encode is not None or RLELosslessEncoder.is_available)


def supports(info: ImageInfo) -> bool:
    """pylibjpeg-rle takes 8/16/32-bit samples; pydicom's own encoder 8/16 only."""
    if _rle_encode is not None:
        return info.bits_allocated in (8, 16, 32)
    return info.bits_allocated in (8, 16)


def encode_frame(frame: np.ndarray, target, info: ImageInfo) -> bytes:
    if _rle_encode is None:
        return run_encoder(RLELosslessEncoder, frame, info, target.photometric, "pydicom")
    kind = "i" if info.signed else "u"
    arr = np.ascontiguousarray(frame.astype(f"<{kind}{info.bits_allocated // 8}", copy=False))
    return _rle_encode(arr.tobytes(), rows=info.rows, columns=info.columns,
                       samples_per_pixel=info.samples_per_pixel,
                       bits_allocated=info.bits_allocated, byteorder="<")
