"""Write a redacted copy of a dataset: frames streamed decode -> fill -> encode.

The input dataset is never changed.  The output keeps the input transfer
syntax wherever an encoder exists (see :mod:`pixelscrub.codecs`); untouched
frames are copied as stored when the syntax and layout are unchanged.

Temp files: the new Pixel Data lives in an anonymous temporary file created in
``workdir`` (``tempfile.TemporaryFile``: already unlinked on POSIX, deleted on
close elsewhere), held open as the element's buffered value.  It is released
when the returned dataset is garbage collected or :func:`release` is called, so
nothing is left behind after :func:`pixelscrub.dicomio.write_atomic`.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from pydicom import uid as _uid
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.valuerep import DSfloat

from .codecs import EncodeTarget, choose_target, get_backend, jpeg_dct, lossless_fallback
from .decode import ImageInfo, decode_frame, image_info, iter_encoded_frames
from .dicomio import PIXEL_DATA_TAG
from .errors import ScrubError
from .overlays import (overlay_frame_index, overlay_layers, overlay_planes,
                       set_overlay_planes)
from .records import PIXEL_LAYER, Box, covered_share
from .redact import RedactionPlan, fill_frame, fill_value

__all__ = ["EncodeResult", "PriorOutput", "redact_dataset", "release"]

_ITEM = b"\xfe\xff\x00\xe0"
#: Basic Offset Table offsets are 32-bit; past this an Extended Offset Table is used.
BOT_LIMIT = 2 ** 32
_LOSSY_SYNTAXES = {_uid.JPEGBaseline8Bit, _uid.JPEGExtended12Bit, _uid.HTJ2K}
_METHOD = {_uid.JPEG2000: "ISO_15444_1", _uid.JPEGLSNearLossless: "ISO_14495_1"}


@dataclass
class EncodeResult:
    """What :func:`redact_dataset` wrote, for the audit record."""

    transfer_syntax_in: str
    transfer_syntax_out: str
    frames_written: int = 0
    frames_changed: int = 0
    frames_copied: int = 0
    #: 0-based frames decoded and encoded again; the others were copied as stored or,
    #: for lossy JPEG, edited block by block in the DCT domain (``frames_dct_edited``).
    frames_reencoded: list[int] = field(default_factory=list)
    frames_dct_edited: list[int] = field(default_factory=list)
    #: frames taken as written from a prior output (:class:`PriorOutput`)
    frames_reused: int = 0
    pixels_filled: int = 0
    blocks_changed: int = 0
    overlay_bits_cleared: int = 0
    notes: list[str] = field(default_factory=list)
    lossy_recompressed: bool = False


def release(ds: Dataset) -> None:
    """Close the temp file behind a redacted dataset's Pixel Data (idempotent)."""
    elem = ds._dict.get(PIXEL_DATA_TAG)
    value = getattr(elem, "value", None) if elem is not None else None
    if hasattr(value, "close"):
        value.close()


def _convert_all(ds: Dataset) -> None:
    """Turn every raw element (nested too) into a parsed one."""
    for tag in list(ds.keys()):
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _convert_all(item)


def _copy_without_pixels(ds: Dataset) -> Dataset:
    """A deep copy of ``ds`` (file meta included) without its Pixel Data.

    O* values keep their stored byte order, which is right because the copy
    is written in the input's endianness (big endian stays big endian).
    """
    new = Dataset()
    for tag in ds.keys():
        if tag == PIXEL_DATA_TAG:
            continue
        new.add(copy.deepcopy(ds[tag]))
    _convert_all(new)
    new.file_meta = FileMetaDataset(copy.deepcopy(ds.file_meta))
    new.preamble = getattr(ds, "preamble", None)
    return new


class _NativeWriter:
    """Frames appended as one uncompressed Pixel Data value in a temp file."""

    def __init__(self, workdir, info: ImageInfo):
        self.f = tempfile.TemporaryFile(dir=workdir, prefix="pixelscrub-")
        self.info = info
        self.n = 0

    def add(self, data: bytes) -> None:
        self.f.write(data)
        self.n += 1

    def finish(self, new: Dataset) -> None:
        for kw in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if kw in new:  # offset tables belong to encapsulated data only
                del new[kw]
        if self.f.tell() % 2:
            self.f.write(b"\x00")
        self.f.flush()
        self.f.seek(0)
        vr = "OB" if self.info.bits_allocated <= 8 else "OW"
        new[PIXEL_DATA_TAG] = DataElement(PIXEL_DATA_TAG, vr, self.f)


class _EncapsulatedWriter:
    """Frames appended as items after a reserved Basic Offset Table."""

    def __init__(self, workdir, frames: int):
        self.workdir = workdir
        self.f = tempfile.TemporaryFile(dir=workdir, prefix="pixelscrub-")
        self.frames = frames
        self.f.write(_ITEM + struct.pack("<I", 4 * frames) + b"\x00" * (4 * frames))
        self.start = self.f.tell()
        self.offsets: list[int] = []
        self.lengths: list[int] = []

    def add(self, data: bytes) -> None:
        self.offsets.append(self.f.tell() - self.start)
        if len(data) % 2:
            data = data + b"\x00"
        self.f.write(_ITEM + struct.pack("<I", len(data)))
        self.f.write(data)
        self.lengths.append(len(data))

    def finish(self, new: Dataset) -> None:
        for kw in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if kw in new:
                del new[kw]
        end = self.f.tell() - self.start
        if end < BOT_LIMIT:
            self.f.seek(8)
            self.f.write(struct.pack(f"<{len(self.offsets)}I", *self.offsets))
            self.f.seek(0, 2)
            out = self.f
        else:
            # Offsets overflow 32 bits: empty BOT + Extended Offset Table.
            out = tempfile.TemporaryFile(dir=self.workdir, prefix="pixelscrub-")
            out.write(_ITEM + b"\x00\x00\x00\x00")
            self.f.seek(self.start)
            shutil.copyfileobj(self.f, out, 1 << 22)
            self.f.close()
            new.ExtendedOffsetTable = struct.pack(f"<{len(self.offsets)}Q", *self.offsets)
            new.ExtendedOffsetTableLengths = struct.pack(
                f"<{len(self.lengths)}Q", *self.lengths)
        out.flush()
        out.seek(0)
        elem = DataElement(PIXEL_DATA_TAG, "OB", out, is_undefined_length=True)
        new[PIXEL_DATA_TAG] = elem


def _clear_bit(frame: np.ndarray, boxes: list[Box], bit: int) -> tuple[np.ndarray, int]:
    words = frame.view(np.dtype(frame.dtype.str.replace("i", "u")))
    h, w = words.shape[:2]
    mask = words.dtype.type(~(1 << bit) & ((1 << (8 * words.itemsize)) - 1))
    cleared = 0
    for box in boxes:
        b = box.clip(w, h)
        region = words[b.y0:b.y1, b.x0:b.x1]
        cleared += int(np.count_nonzero((region >> bit) & 1))
        region &= mask
    return frame, cleared


def _native_fill(info: ImageInfo, fill, keep_unused: bool):
    """The fill as the raw word when unused bits are kept (no sign extension)."""
    if not keep_unused or isinstance(fill, tuple):
        return fill
    return int(fill) & ((1 << info.bits_stored) - 1)


def _redact_overlays(new: Dataset, plan: RedactionPlan, info: ImageInfo) -> int:
    cleared = 0
    for layer in overlay_layers(new):
        if not layer.is_plane or layer.name not in plan.layers():
            continue
        planes = overlay_planes(new, layer)
        r0, c0 = layer.origin
        for f in range(info.frames):
            k = overlay_frame_index(layer, f, info.frames)
            if k is None:
                continue
            for box in plan.boxes_for(layer.name, f):
                b = Box(box.x0 - c0, box.y0 - r0, box.x1 - c0, box.y1 - r0).clip(
                    layer.columns, layer.rows)
                region = planes[k, b.y0:b.y1, b.x0:b.x1]
                cleared += int(region.sum())
                region[...] = 0
        set_overlay_planes(new, layer, planes)
    return cleared


def _check_layers(ds: Dataset, plan: RedactionPlan) -> list[int]:
    """Fail closed on layers the image lacks; return the high bits planned."""
    known = {PIXEL_LAYER} | {layer.name for layer in overlay_layers(ds)}
    unknown = plan.layers() - known
    if unknown:
        raise ScrubError("redaction plan names a layer the image does not have",
                         reason="unknown-layer")
    return sorted(int(n.split(":", 1)[1]) for n in plan.layers() if n.startswith("highbit:"))


def _as_list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _update_header(new: Dataset, info: ImageInfo, target: EncodeTarget,
                   result: EncodeResult, ratios: list[float]) -> None:
    new.file_meta.TransferSyntaxUID = _uid.UID(target.transfer_syntax)
    if target.photometric != info.photometric:
        new.PhotometricInterpretation = target.photometric
    if info.samples_per_pixel > 1:
        new.PlanarConfiguration = target.planar_configuration
    elif "PlanarConfiguration" in new:
        del new.PlanarConfiguration
    was_lossy = info.transfer_syntax in _LOSSY_SYNTAXES or (
        info.transfer_syntax in (_uid.JPEG2000, _uid.JPEGLSNearLossless) and
        str(new.get("LossyImageCompression", "")) == "01")
    if was_lossy and str(new.get("LossyImageCompression", "")) != "01":
        new.LossyImageCompression = "01"
    if result.lossy_recompressed and ratios:
        new.LossyImageCompression = "01"
        ratio = DSfloat(f"{sum(ratios) / len(ratios):.4g}"[:16])
        method = _METHOD.get(target.transfer_syntax, "")
        old_r = _as_list(new.get("LossyImageCompressionRatio"))
        old_m = _as_list(new.get("LossyImageCompressionMethod"))
        new.LossyImageCompressionRatio = old_r + [ratio]
        new.LossyImageCompressionMethod = old_m + [method]


@dataclass(frozen=True)
class PriorOutput:
    """An output of :func:`redact_dataset` for the same input, with the plan and the
    result it was written with: frames whose boxes it already filled are taken
    from it as written, not edited again."""

    dataset: Dataset
    plan: RedactionPlan
    result: EncodeResult


def redact_dataset(ds: Dataset, plan: RedactionPlan, *, workdir: Optional[str] = None,
                   prior: Optional[PriorOutput] = None) -> tuple[Dataset, EncodeResult]:
    """A new dataset with ``plan`` painted in, frames streamed one at a time.

    Pixel layer boxes get :func:`fill_value`; ``highbit:<b>`` boxes clear bit b
    of native words; ``overlay:60xx`` boxes clear overlay plane bits.  An empty
    plan round-trips the pixels (losslessly, or as stored for lossy JPEG).

    ``prior``: an earlier output of ``ds`` (the verify stage redacts again with a
    few more boxes).  A frame whose boxes ``prior.plan`` already covers comes out
    the same, so its stored bytes are copied from ``prior.dataset``.
    """
    info = image_info(ds)
    highbits = _check_layers(ds, plan)
    frames = iter_encoded_frames(ds, info)
    try:
        first = next(frames)
    except StopIteration:
        raise ScrubError("image has no frames", reason="no-frames") from None
    frames = itertools.chain([first], frames)
    target = choose_target(info, first_frame=first)
    if prior is not None and prior.result.transfer_syntax_out != str(target.transfer_syntax):
        prior = None        # written another way (a lossless fallback): nothing to share
    if target.backend != "jpeg_dct":
        return _redact(ds, plan, info, target, frames, highbits, workdir, prior)
    try:
        return _redact(ds, plan, info, target, frames, highbits, workdir, prior)
    except ScrubError as exc:
        if not exc.reason.startswith("dct-"):
            raise
    # A frame could not be edited in the DCT domain: redo the whole image
    # decoded, filled and written in a lossless syntax (one syntax per file).
    target = lossless_fallback(info, "a JPEG frame could not be edited in the DCT domain; "
                                     "decoded and re-encoded")
    return _redact(ds, plan, info, target, iter_encoded_frames(ds, info), highbits, workdir)


def _already_filled(plan: RedactionPlan, prior: RedactionPlan, frame: int,
                    layers: Sequence[str]) -> bool:
    """Whether every box of ``plan`` on ``frame`` lies inside ``prior``'s boxes there
    (the plans only grow, so the frame is then filled the same in both)."""
    for layer in layers:
        before = prior.boxes_for(layer, frame)
        if any(covered_share(box, before) < 1.0 for box in plan.boxes_for(layer, frame)):
            return False
    return True


def _count_reused(result: EncodeResult, prior: EncodeResult, frame: int, touched: bool) -> None:
    """Account a frame copied from a prior output as what the prior did to it."""
    result.frames_reused += 1
    if frame in prior.frames_reencoded:
        result.frames_reencoded.append(frame)
    if frame in prior.frames_dct_edited:
        result.frames_dct_edited.append(frame)
    if touched:
        result.frames_changed += 1
    else:
        result.frames_copied += 1
    result.lossy_recompressed |= touched and frame in prior.frames_reencoded and prior.lossy_recompressed


def _redact(ds: Dataset, plan: RedactionPlan, info: ImageInfo, target: EncodeTarget,
            frames, highbits: list[int], workdir, prior: Optional[PriorOutput] = None
            ) -> tuple[Dataset, EncodeResult]:
    backend = get_backend(target.backend)
    if (target.backend == "native" and info.bits_allocated == 1 and info.frames > 1
            and (info.rows * info.columns * info.samples_per_pixel) % 8):
        raise ScrubError("multi-frame 1-bit images with frames not on byte boundaries "
                         "are not supported", reason="unsupported-bit-packing")
    result = EncodeResult(str(info.transfer_syntax), str(target.transfer_syntax),
                          notes=[n for n in target.notes if not target.lossy])
    keep_unused = not info.is_encapsulated and 1 < info.bits_stored < info.bits_allocated
    fill = _native_fill(info, fill_value(info), keep_unused)
    new = _copy_without_pixels(ds)
    writer = (_NativeWriter(workdir, info) if target.backend == "native"
              else _EncapsulatedWriter(workdir, info.frames))
    ratios: list[float] = []
    lossless_target = dataclasses.replace(target, lossy=False, near=0)
    layers = [PIXEL_LAYER] + [f"highbit:{b}" for b in highbits]
    before = iter_encoded_frames(prior.dataset) if prior is not None else None
    try:
        for i, data in enumerate(frames):
            boxes = plan.boxes_for(PIXEL_LAYER, i)
            bit_boxes = {b: plan.boxes_for(f"highbit:{b}", i) for b in highbits}
            touched = bool(boxes) or any(bit_boxes.values())
            written = next(before) if before is not None else None
            # openjpeg's rates count BitsStored bits per sample, as here
            ratio = (info.rows * info.columns * info.samples_per_pixel
                     * info.bits_stored / 8) / max(1, len(data))
            if written is not None and _already_filled(plan, prior.plan, i, layers):
                writer.add(written)
                _count_reused(result, prior.result, i, touched)
                if target.lossy and touched and i in prior.result.frames_reencoded:
                    ratios.append(ratio)
                continue
            if not touched and target.passthrough:
                writer.add(data)
                result.frames_copied += 1
                continue
            if target.backend == "jpeg_dct":
                out, blocks = jpeg_dct.redact_frame(data, boxes, info, workdir=workdir)
                writer.add(out)
                result.blocks_changed += blocks
                result.frames_changed += 1
                result.frames_dct_edited.append(i)
                continue
            arr = decode_frame(data, ds, info, keep_unused_bits=keep_unused)
            result.frames_reencoded.append(i)
            if boxes:
                arr = fill_frame(arr, boxes, fill)
                result.pixels_filled += sum(b.clip(info.columns, info.rows).area for b in boxes)
            for bit, bb in bit_boxes.items():
                if bb:
                    arr, n = _clear_bit(arr, bb, bit)
                    result.overlay_bits_cleared += n
            if target.lossy and touched:
                ratios.append(ratio)
                result.lossy_recompressed = True
                if target.backend == "jpeg2000":
                    writer.add(backend.encode_frame(arr, target, info, ratio=ratio))
                else:
                    writer.add(backend.encode_frame(arr, target, info))
            elif target.lossy:
                # an untouched frame that cannot be copied: no new loss for it
                writer.add(backend.encode_frame(arr, lossless_target, info))
            else:
                writer.add(backend.encode_frame(arr, target, info))
            if touched:
                result.frames_changed += 1
        result.frames_written = info.frames
        writer.finish(new)
    except BaseException:
        writer.f.close()
        raise
    finally:
        if before is not None:
            before.close()
    if result.lossy_recompressed:
        result.notes.extend(target.notes)
    result.overlay_bits_cleared += _redact_overlays(new, plan, info)
    _update_header(new, info, target, result, ratios)
    return new, result
