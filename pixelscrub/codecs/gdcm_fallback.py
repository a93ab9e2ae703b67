"""Last-resort JPEG frame decoder that calls python-gdcm directly.

pydicom's GDCM plugin refuses 12-bit JPEG Extended outright, and libjpeg
(pylibjpeg) rejects some real-world 12-bit streams (e.g. non-standard SOS
parameters) that GDCM's own codec decodes, agreeing with DCMTK bit for bit.
:func:`pixelscrub.decode.decode_frame` tries this only after every pydicom
plugin has failed.
"""
from __future__ import annotations

import numpy as np
from pydicom import uid as _uid

try:
    import gdcm
except ImportError:  # pragma: no cover - python-gdcm is a declared dependency
    gdcm = None

__all__ = ["SYNTAXES", "is_available", "decode_frame"]

SYNTAXES = (_uid.JPEGBaseline8Bit, _uid.JPEGExtended12Bit, _uid.JPEGLossless,
            _uid.JPEGLosslessSV1)


def is_available(uid: str) -> bool:
    return gdcm is not None and uid in SYNTAXES


def decode_frame(data: bytes, info) -> np.ndarray:
    """One JPEG codestream decoded by GDCM, shaped (rows, columns[, samples]).

    Raises ``RuntimeError`` when GDCM cannot decode it either.
    """
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(data)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    elem = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    elem.SetValue(fragments.__ref__())
    img = gdcm.Image()
    img.SetNumberOfDimensions(2)
    img.SetDimensions((info.columns, info.rows, 1))
    img.SetDataElement(elem)
    pi = gdcm.PhotometricInterpretation.GetPIType(info.photometric)
    img.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    if info.samples_per_pixel > 1:
        img.SetPlanarConfiguration(0)
    img.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(info.transfer_syntax)))
    img.SetPixelFormat(gdcm.PixelFormat(info.samples_per_pixel, info.bits_allocated,
                                        info.bits_stored, info.bits_stored - 1,
                                        info.pixel_representation))
    buf = img.GetBuffer()
    raw = buf.encode("utf-8", "surrogateescape") if isinstance(buf, str) else bytes(buf or b"")
    kind = "i" if info.signed else "u"
    dtype = np.dtype(f"<{kind}{info.bits_allocated // 8}")
    shape = (info.rows, info.columns) + ((3,) if info.samples_per_pixel == 3 else ())
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise RuntimeError("GDCM could not decode the frame")
    return np.frombuffer(raw, dtype).reshape(shape).copy()
