"""JPEG 2000 (lossless and lossy) via pylibjpeg-openjpeg."""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid
from pydicom.pixels.encoders import JPEG2000Encoder, JPEG2000LosslessEncoder

from ..decode import ImageInfo
from ._frames import run_encoder

__all__ = ["SYNTAXES", "is_available", "supports", "encode_frame", "is_reversible"]

SYNTAXES = (_uid.JPEG2000Lossless, _uid.JPEG2000)


def is_available(uid: str) -> bool:
    enc = JPEG2000LosslessEncoder if uid == _uid.JPEG2000Lossless else JPEG2000Encoder
    return uid in SYNTAXES and "pylibjpeg" in enc.available_plugins


def supports(info: ImageInfo) -> bool:
    """openjpeg encodes up to 24-bit samples."""
    return info.bits_allocated in (8, 16, 32) and info.bits_stored <= 24


def is_reversible(codestream: bytes) -> bool:
    """True when the COD segment selects the reversible 5-3 wavelet."""
    i = codestream.find(b"\xff\x52")
    return i >= 0 and len(codestream) > i + 13 and codestream[i + 13] == 1


def encode_frame(frame: np.ndarray, target, info: ImageInfo, *, ratio: float = 0.0) -> bytes:
    """Reversible unless the target is lossy, then at ``ratio`` (native/compressed)."""
    pi = "RGB" if target.use_mct else target.photometric
    if target.lossy and ratio > 1.0:
        return run_encoder(JPEG2000Encoder, frame, info, pi, "pylibjpeg",
                           j2k_cr=[float(ratio)], use_mct=target.use_mct)
    return run_encoder(JPEG2000LosslessEncoder, frame, info, pi, "pylibjpeg",
                       use_mct=target.use_mct)
