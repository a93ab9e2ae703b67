"""RLE Lossless via pylibjpeg-rle (pydicom's own encoder as the fallback)."""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid
from pydicom.pixels.encoders import RLELosslessEncoder

from ..decode import ImageInfo
from ._frames import run_encoder

__all__ = ["SYNTAXES", "is_available", "supports", "encode_frame"]

SYNTAXES = (_uid.RLELossless,)


def _plugin() -> str:
    return "pylibjpeg" if "pylibjpeg" in RLELosslessEncoder.available_plugins else "pydicom"


def is_available(uid: str) -> bool:
    return uid in SYNTAXES and RLELosslessEncoder.is_available


def supports(info: ImageInfo) -> bool:
    """pydicom 3.0's RLE encoders take 8- and 16-bit samples only."""
    return info.bits_allocated in (8, 16)


def encode_frame(frame: np.ndarray, target, info: ImageInfo) -> bytes:
    return run_encoder(RLELosslessEncoder, frame, info, target.photometric, _plugin())
