"""Uncompressed (and deflated) pixel data: frames as little endian bytes."""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid

from ..decode import ImageInfo

__all__ = ["SYNTAXES", "is_available", "supports", "encode_frame"]

SYNTAXES = (_uid.ImplicitVRLittleEndian, _uid.ExplicitVRLittleEndian,
            _uid.ExplicitVRBigEndian, _uid.DeflatedExplicitVRLittleEndian)


def is_available(uid: str) -> bool:
    return uid in SYNTAXES


def supports(info: ImageInfo) -> bool:
    return True


def encode_frame(frame: np.ndarray, target, info: ImageInfo) -> bytes:
    """Bytes of one frame in the target's byte order and planar configuration.

    1-bit frames are packed LSB first; callers concatenate frames only when each
    frame fills whole bytes.
    """
    if info.bits_allocated == 1:
        return np.packbits(frame.reshape(-1).astype(np.uint8) & 1, bitorder="little").tobytes()
    kind = "i" if info.signed else "u"
    order = ">" if target.transfer_syntax == _uid.ExplicitVRBigEndian else "<"
    arr = np.asarray(frame).astype(f"{order}{kind}{info.bits_allocated // 8}", copy=False)
    if arr.ndim == 3 and target.planar_configuration == 1:
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr).tobytes()
