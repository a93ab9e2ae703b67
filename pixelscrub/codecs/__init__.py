"""Codec registry: which syntax a redacted image is written in, and by whom.

One small module per backend (``native``, ``rle``, ``jpegls``, ``jpeg2000``,
``jpeg_dct``), each exposing ``SYNTAXES``, ``is_available(uid)`` and
``encode_frame(frame, target, info)`` (``jpeg_dct`` edits codestreams instead).
:func:`choose_target` keeps the input syntax wherever an encoder exists and
otherwise picks a lossless one, saying why in ``notes``; callers never name a
backend.  ``gdcm_fallback`` is a decoder only, used by :mod:`pixelscrub.decode`.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Optional

from pydicom import uid as _uid

from ..decode import ImageInfo
from . import jpeg2000, jpeg_dct, jpegls, native, rle

__all__ = ["EncodeTarget", "choose_target", "lossless_fallback", "get_backend", "BACKENDS"]

BACKENDS: dict[str, ModuleType] = {
    "native": native, "rle": rle, "jpegls": jpegls, "jpeg2000": jpeg2000, "jpeg_dct": jpeg_dct,
}

_LOSSLESS_JPEG = {_uid.JPEGLossless, _uid.JPEGLosslessSV1}
_LOSSY_JPEG = {_uid.JPEGBaseline8Bit, _uid.JPEGExtended12Bit}
_HTJ2K = {_uid.HTJ2KLossless, _uid.HTJ2KLosslessRPCL, _uid.HTJ2K}


@dataclass(frozen=True)
class EncodeTarget:
    """How redacted frames are written.

    ``photometric``/``planar_configuration`` describe the output; ``passthrough``
    says untouched frames may be copied as stored (same syntax and layout);
    ``near`` is the JPEG-LS NEAR; ``lossy`` means frames are re-encoded lossily;
    ``use_mct`` applies JPEG 2000's colour transform (output YBR_RCT/YBR_ICT).
    """

    transfer_syntax: str
    backend: str
    photometric: str
    planar_configuration: int
    passthrough: bool
    notes: tuple[str, ...] = ()
    near: int = 0
    lossy: bool = False
    use_mct: bool = False


def get_backend(name: str) -> ModuleType:
    return BACKENDS[name]


def lossless_fallback(info: ImageInfo, why: str) -> EncodeTarget:
    """JPEG-LS lossless when it fits the pixels, else RLE, else explicit VR LE."""
    pi = info.frame_photometric
    pc = 0
    for name, ts in (("jpegls", _uid.JPEGLSLossless), ("rle", _uid.RLELossless),
                     ("native", _uid.ExplicitVRLittleEndian)):
        mod = BACKENDS[name]
        if mod.is_available(ts) and mod.supports(info):
            pc = info.planar_configuration if name == "native" else 0
            return EncodeTarget(ts, name, pi, pc, False,
                                (f"{why}; written as {_uid.UID(ts).name}",))
    raise AssertionError("explicit VR little endian always supports the image")


def choose_target(info: ImageInfo, *, first_frame: Optional[bytes] = None) -> EncodeTarget:
    """The output syntax and backend for an image, given its first stored frame."""
    ts = info.transfer_syntax
    pi, fpi, pc = info.photometric, info.frame_photometric, info.planar_configuration
    # Untouched frames can be copied only if the header describing them stays the
    # same; encoders here write pixel-interleaved data (Planar Configuration 0).
    pc_kept = (info.samples_per_pixel == 1 or pc == 0 or ts in native.SYNTAXES
               or ts in _LOSSY_JPEG)
    same_layout = pi == fpi and pc_kept
    if ts in native.SYNTAXES:
        notes = []
        out_ts = ts  # pydicom 3 writes explicit VR big endian too, so it is kept
        if not same_layout:
            notes.append(f"{pi} written as {fpi} (chroma upsampled, lossless)")
        return EncodeTarget(out_ts, "native", fpi, pc, out_ts == ts and same_layout,
                            tuple(notes))
    if ts == _uid.RLELossless:
        if rle.is_available(ts) and rle.supports(info):
            return EncodeTarget(ts, "rle", fpi, 0, same_layout)
        return lossless_fallback(info, "no RLE encoder for this bit depth")
    if ts in jpegls.SYNTAXES:
        near = jpegls.near_of(first_frame) if (first_frame and ts == _uid.JPEGLSNearLossless) else 0
        if jpegls.is_available(ts) and jpegls.supports(info, near=near):
            notes = (f"JPEG-LS near-lossless frames with boxes re-encoded with NEAR={near}",)
            return EncodeTarget(ts, "jpegls", fpi, 0, same_layout, near=near, lossy=near > 0,
                                notes=notes if near else ())
        return lossless_fallback(info, "no JPEG-LS encoder for these pixels")
    if ts in (_uid.JPEG2000Lossless, _uid.JPEG2000) or ts in _HTJ2K:
        mct = pi in ("YBR_RCT", "YBR_ICT")
        if ts in _HTJ2K:
            if not (jpeg2000.is_available(_uid.JPEG2000Lossless) and jpeg2000.supports(info)):
                return lossless_fallback(info, "no HTJ2K encoder")
            out_pi = "YBR_RCT" if mct else fpi
            return EncodeTarget(_uid.JPEG2000Lossless, "jpeg2000", out_pi, 0, False,
                                ("no HTJ2K encoder (openjpeg decodes HTJ2K only); "
                                 "written as JPEG 2000 lossless",), use_mct=mct)
        if not (jpeg2000.is_available(ts) and jpeg2000.supports(info)):
            return lossless_fallback(info, "no JPEG 2000 encoder for these pixels")
        reversible = ts == _uid.JPEG2000Lossless or (
            first_frame is not None and jpeg2000.is_reversible(first_frame))
        if reversible:
            out_pi = "YBR_RCT" if mct else fpi
            return EncodeTarget(ts, "jpeg2000", out_pi, 0, pc_kept and pi == out_pi,
                                use_mct=mct)
        out_pi = "YBR_ICT" if mct else fpi
        return EncodeTarget(ts, "jpeg2000", out_pi, 0, pc_kept and pi == out_pi,
                            lossy=True, use_mct=mct,
                            notes=("lossy JPEG 2000 frames with boxes re-encoded lossily "
                                   "at their original compression ratio",))
    if ts in _LOSSY_JPEG:
        if jpeg_dct.supports(info, first_frame):
            return EncodeTarget(ts, "jpeg_dct", pi, pc, True)
        return lossless_fallback(info, "JPEG frames cannot be edited in the DCT domain "
                                        f"({info.bits_stored}-bit); decoded and re-encoded")
    if ts in _LOSSLESS_JPEG:
        return lossless_fallback(info, "no JPEG lossless encoder")
    return lossless_fallback(info, "no encoder for the input syntax")
