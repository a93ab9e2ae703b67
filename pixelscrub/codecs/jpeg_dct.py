"""Redact lossy JPEG (baseline/extended, 8-bit) in the DCT domain with jpeglib.

Only the 8x8 blocks that touch a box change.  A block wholly inside a box gets
the DC that shows black and no AC.  A block the box's edge crosses is decoded,
filled inside the box and quantised again with its own table, so the label
printed a few pixels from a value keeps its ink; its pixels outside the box carry
one generation of quantisation noise.  Every other block keeps its quantised
coefficients bit for bit.  Along a subsampled chroma axis a box is grown by one
pixel before it is turned into samples (the decoder's upsampling mixes
neighbouring samples).  jpeglib (libjpeg 6b here) rewrites the entropy coding; this
module then restores the original APPn/COM markers and component ids, which
decoders use to choose the colour transform, and re-reads the result to check
that every coefficient is exactly what was intended.
"""
from __future__ import annotations

import math
import os
import struct
import tempfile
from typing import Optional, Sequence

import numpy as np
from scipy.fft import dctn, idctn

from ..decode import ImageInfo
from ..errors import ScrubError
from ..records import Box
from ..redact import fill_value

try:
    import jpeglib
except ImportError:  # pragma: no cover - jpeglib is a declared dependency
    jpeglib = None

__all__ = ["is_available", "supports", "redact_frame", "color_model", "mcu_box", "dct_region"]

_STANDALONE = {0x01} | set(range(0xD0, 0xD8))


def is_available(uid: str = "") -> bool:
    return jpeglib is not None


def _segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Marker segments before the first SOS and the offset of that SOS."""
    if data[:2] != b"\xff\xd8":
        raise ScrubError("JPEG frame does not start with SOI", reason="bad-jpeg")
    out: list[tuple[int, bytes]] = []
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ScrubError("JPEG frame has a malformed marker", reason="bad-jpeg")
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xDA:
            return out, i
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((marker, data[i:i + 2 + length]))
        i += 2 + length
    raise ScrubError("JPEG frame has no scan", reason="bad-jpeg")


def _sof(segments: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    for marker, seg in segments:
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker, seg
    raise ScrubError("JPEG frame has no SOF", reason="bad-jpeg")


def supports(info: ImageInfo, first_frame: Optional[bytes]) -> bool:
    """Sequential Huffman 8-bit JPEG with 1 or 3 components, and jpeglib present."""
    if jpeglib is None or first_frame is None or info.bits_stored > 8:
        return False
    try:
        marker, seg = _sof(_segments(first_frame)[0])
    except ScrubError:
        return False
    return marker in (0xC0, 0xC1) and seg[4] == 8 and seg[9] in (1, 3)


def color_model(data: bytes, photometric: str = "") -> str:
    """'YCbCr', 'RGB' or 'GRAY': how decoders read the components of ``data``.

    Same order as pydicom's decoder: component ids 'R','G','B' mean RGB; an
    Adobe marker's transform flag, or a JFIF marker (YCbCr), come next; else the
    DICOM PhotometricInterpretation decides.
    """
    segments, _ = _segments(data)
    _, sof = _sof(segments)
    if sof[9] == 1:
        return "GRAY"
    ids = bytes(sof[10 + 3 * k] for k in range(3))
    if ids in (b"RGB", b"rgb"):
        return "RGB"
    for marker, seg in segments:
        if marker == 0xEE and seg[4:9] == b"Adobe" and len(seg) >= 16:
            return "YCbCr" if seg[15] in (1, 2) else "RGB"
    if any(m == 0xE0 and seg[4:9] == b"JFIF\x00" for m, seg in segments):
        return "YCbCr"
    return "RGB" if photometric == "RGB" else "YCbCr"


def _component_ids(sof: bytes) -> list[int]:
    return [sof[10 + 3 * k] for k in range(sof[9])]


def _splice(original: bytes, written: bytes) -> bytes:
    """``written`` with the original APPn/COM markers and component ids."""
    o_segs, _ = _segments(original)
    w_segs, w_sos = _segments(written)
    ids_o = _component_ids(_sof(o_segs)[1])
    ids_w = _component_ids(_sof(w_segs)[1])
    remap = dict(zip(ids_w, ids_o))
    keep_o = [seg for m, seg in o_segs if 0xE0 <= m <= 0xEF or m == 0xFE]
    body = []
    for m, seg in w_segs:
        if 0xE0 <= m <= 0xEF or m == 0xFE:
            continue
        if m == _sof(w_segs)[0]:
            seg = bytearray(seg)
            for k in range(seg[9]):
                seg[10 + 3 * k] = remap[seg[10 + 3 * k]]
            seg = bytes(seg)
        body.append(seg)
    sos = bytearray(written[w_sos:])
    ns = sos[4]
    for k in range(ns):
        sos[5 + 2 * k] = remap[sos[5 + 2 * k]]
    return b"\xff\xd8" + b"".join(keep_o) + b"".join(body) + bytes(sos)


def mcu_box(box: Box, mcu_w: int, mcu_h: int) -> Box:
    """``box`` rounded outwards to whole MCUs."""
    return Box((box.x0 // mcu_w) * mcu_w, (box.y0 // mcu_h) * mcu_h,
               -(-box.x1 // mcu_w) * mcu_w, -(-box.y1 // mcu_h) * mcu_h)


def dct_region(box: Box, hmax: int, vmax: int) -> Box:
    """The image area whose blocks may be rewritten for ``box`` (those wholly
    inside it are set to black, those its edge crosses re-quantised).

    With subsampled chroma, a decoder's upsampling mixes each chroma sample with
    its neighbour, so a box edge on an MCU edge would still show colour from the
    next MCU; the box is therefore grown by one pixel along each subsampled axis
    before it is rounded out to whole MCUs (``8*hmax`` x ``8*vmax`` pixels).
    """
    gx, gy = int(hmax > 1), int(vmax > 1)
    grown = Box(max(0, box.x0 - gx), max(0, box.y0 - gy), box.x1 + gx, box.y1 + gy)
    return mcu_box(grown, 8 * hmax, 8 * vmax)


def _sample_box(box: Box, h: int, hmax: int, v: int, vmax: int) -> Box:
    """The samples of a component sampled ``h``/``hmax`` across and ``v``/``vmax``
    down that any pixel of ``box`` is made from: along a subsampled axis the
    decoder's upsampling mixes each sample with its neighbour, so the box is
    grown by one pixel there before it is rounded outwards (as :func:`dct_region`)."""
    gx, gy = int(h < hmax), int(v < vmax)
    return Box(max(0, box.x0 - gx) * h // hmax, max(0, box.y0 - gy) * v // vmax,
               -(-(box.x1 + gx) * h // hmax), -(-(box.y1 + gy) * v // vmax))


def _black_dc(q: int, value: int) -> int:
    """Quantised DC that decodes to ``value`` (0 or 255 clamp-safe, 128 exact)."""
    shifted = (value - 128) * 8
    if value <= 0:
        return math.floor(shifted / q)
    if value >= 255:
        return math.ceil(shifted / q)
    return int(round(shifted / q))


def redact_frame(codestream: bytes, boxes: Sequence[Box], info: ImageInfo, *,
                 workdir: Optional[str] = None) -> tuple[bytes, int]:
    """The frame with every block touching ``boxes`` set to black; blocks changed."""
    if not boxes:
        return codestream, 0
    model = color_model(codestream, info.photometric)
    gray_black = int(fill_value(info)) if model == "GRAY" else 0  # MONOCHROME1: 255
    with tempfile.TemporaryDirectory(dir=workdir, prefix="pixelscrub-dct-") as tmp:
        src, dst = os.path.join(tmp, "in.jpg"), os.path.join(tmp, "out.jpg")
        with open(src, "wb") as f:
            f.write(codestream)
        try:
            jpg = jpeglib.read_dct(src)
            jpg.load()
        except Exception:
            raise ScrubError("JPEG frame could not be read in the DCT domain",
                             reason="dct-read") from None
        comps = [c for c in (jpg.Y, jpg.Cb, jpg.Cr) if c is not None]
        samp = [tuple(int(v) for v in row) for row in jpg.c_samp_factor()][:len(comps)]
        vmax = max(v for v, _ in samp)
        hmax = max(h for _, h in samp)
        qt = np.asarray(jpg.qt)
        tbl = list(jpg.quant_tbl_no)
        if model == "GRAY":
            targets = [gray_black]
        elif model == "YCbCr":
            targets = [0, 128, 128]
        else:
            targets = [0, 0, 0]
        edited = []
        changed = 0
        for k, coef in enumerate(comps):
            coef = np.array(coef, copy=True)
            v, h = samp[k]
            q = qt[tbl[k]].astype(np.float64)
            dc = _black_dc(int(q[0, 0]), targets[k])
            # the fill of each block, in the component's samples (8 x 8 per block)
            fill = np.zeros((coef.shape[0] * 8, coef.shape[1] * 8), bool)
            for box in boxes:
                m = _sample_box(box, h, hmax, v, vmax)
                fill[m.y0:m.y1, m.x0:m.x1] = True
            blocks = fill.reshape(coef.shape[0], 8, coef.shape[1], 8).transpose(0, 2, 1, 3)
            whole = blocks.all(axis=(2, 3))
            coef[whole] = 0
            coef[whole, 0, 0] = dc
            edge = blocks.any(axis=(2, 3)) & ~whole
            if edge.any():   # all edge blocks of the component in one transform each way
                inside = blocks[edge]
                pixels = idctn(coef[edge] * q, axes=(1, 2), norm="ortho") + 128.0
                pixels[inside] = targets[k]
                coef[edge] = np.clip(np.rint(dctn(pixels - 128.0, axes=(1, 2), norm="ortho") / q),
                                     -2047, 2047)
            changed += int((whole | edge).sum())
            edited.append(coef)
        jpg.Y = edited[0]
        if len(edited) == 3:
            jpg.Cb, jpg.Cr = edited[1], edited[2]
        try:
            jpg.write_dct(dst)
            with open(dst, "rb") as f:
                written = f.read()
            out = _splice(codestream, written)
            with open(dst, "wb") as f:
                f.write(out)
            check = jpeglib.read_dct(dst)
            check.load()
        except ScrubError:
            raise
        except Exception:
            raise ScrubError("JPEG frame could not be rewritten in the DCT domain",
                             reason="dct-write") from None
        got = [c for c in (check.Y, check.Cb, check.Cr) if c is not None]
        same = (len(got) == len(edited)
                and all(np.array_equal(a, b) for a, b in zip(got, edited))
                and np.array_equal(np.asarray(check.qt), qt)
                and list(check.quant_tbl_no) == tbl
                and [tuple(int(v) for v in r) for r in check.c_samp_factor()][:len(got)] == samp)
        if not same:
            raise ScrubError("DCT rewrite did not keep coefficients, tables and sampling exact",
                             reason="dct-verify")
    return out, changed
