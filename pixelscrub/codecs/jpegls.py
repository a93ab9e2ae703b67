"""JPEG-LS lossless and near-lossless via pyjpegls (CharLS)."""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid
from pydicom.pixels.encoders import JPEGLSLosslessEncoder, JPEGLSNearLosslessEncoder

from ..decode import ImageInfo
from ._frames import run_encoder

__all__ = ["SYNTAXES", "is_available", "supports", "encode_frame", "near_of"]

SYNTAXES = (_uid.JPEGLSLossless, _uid.JPEGLSNearLossless)


def is_available(uid: str) -> bool:
    enc = JPEGLSLosslessEncoder if uid == _uid.JPEGLSLossless else JPEGLSNearLosslessEncoder
    return uid in SYNTAXES and "pyjpegls" in enc.available_plugins


def supports(info: ImageInfo, *, near: int = 0) -> bool:
    """CharLS takes 2-16 bit samples; lossy signed data has range limits."""
    if not (info.bits_allocated in (8, 16) and 2 <= info.bits_stored <= 16):
        return False
    return not (near and info.signed)


def near_of(codestream: bytes) -> int:
    """The NEAR parameter of the first scan (SOS) of a JPEG-LS codestream."""
    i = codestream.find(b"\xff\xda")
    if i < 0 or len(codestream) < i + 5:
        return 0
    ns = codestream[i + 4]
    pos = i + 5 + 2 * ns
    return codestream[pos] if pos < len(codestream) else 0


def encode_frame(frame: np.ndarray, target, info: ImageInfo) -> bytes:
    if target.near:
        return run_encoder(JPEGLSNearLosslessEncoder, frame, info, target.photometric,
                           "pyjpegls", jls_error=int(target.near))
    return run_encoder(JPEGLSLosslessEncoder, frame, info, target.photometric, "pyjpegls")
