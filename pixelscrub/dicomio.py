"""Read a DICOM file without loading its Pixel Data, and write one atomically.

A cine can be gigabytes: :func:`read_dataset` defers large values so the pixel
frames are read from the file one at a time later (see :mod:`pixelscrub.decode`).
:func:`write_atomic` never leaves a half-written file where the output belongs.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from .errors import ScrubError

__all__ = ["read_dataset", "write_atomic", "DEFER_SIZE", "pixel_element_is_deferred"]

#: Values larger than this many bytes stay in the file until used.
DEFER_SIZE = 64 * 1024

PIXEL_DATA_TAG = 0x7FE00010
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


def pixel_element_is_deferred(ds: Dataset) -> bool:
    """True when Pixel Data is still in the file (read lazily by frame)."""
    elem = ds._dict.get(PIXEL_DATA_TAG)
    return isinstance(elem, RawDataElement) and elem.value is None


def read_dataset(src: Union[str, os.PathLike, BinaryIO]) -> Dataset:
    """Read ``src`` (path or binary file object) with Pixel Data left in the file.

    Raises :class:`ScrubError` when the input is empty, not DICOM, truncated, or
    carries no Pixel Data; its message never contains header values.
    """
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ScrubError("input is not a file", reason="not-a-file")
        size = path.stat().st_size
        if size == 0:
            raise ScrubError("input file is empty", reason="empty")
    else:
        size = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(src, force=False, defer_size=DEFER_SIZE)
    except InvalidDicomError:
        raise ScrubError("input is not a DICOM Part 10 file", reason="not-dicom") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError,
            IndexError, OverflowError) as exc:
        raise ScrubError(f"cannot parse DICOM file ({type(exc).__name__})",
                         reason="unreadable") from None
    tsyntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    if not tsyntax:
        raise ScrubError("file meta has no Transfer Syntax UID", reason="no-transfer-syntax")
    if tsyntax == DeflatedExplicitVRLittleEndian and pixel_element_is_deferred(ds):
        # Deferred offsets point into the inflated stream, not the file: the
        # whole (inflated) dataset has to be read.
        if hasattr(src, "seek"):
            src.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(src, force=False)
        except Exception as exc:
            raise ScrubError(f"cannot parse deflated DICOM file ({type(exc).__name__})",
                             reason="unreadable") from None
    if PIXEL_DATA_TAG not in ds._dict:
        other = [t for t in _PIXEL_TAGS[1:] if t in ds._dict]
        if other:
            raise ScrubError("float/double float pixel data is not supported",
                             reason="float-pixel-data")
        raise ScrubError("file has no Pixel Data", reason="no-pixel-data")
    elem = ds._dict[PIXEL_DATA_TAG]
    if pixel_element_is_deferred(ds):
        if size is None and isinstance(getattr(ds, "filename", None), str):
            size = os.path.getsize(ds.filename)
        if (size is not None and elem.length != 0xFFFFFFFF
                and elem.value_tell + elem.length > size):
            raise ScrubError("Pixel Data is truncated (file ends early)", reason="truncated")
    return ds


def write_atomic(ds: Dataset, dst: Union[str, os.PathLike]) -> None:
    """Write ``ds`` to ``dst`` via a temp file in the same folder and ``os.replace``.

    The temp file is flushed and fsynced before the rename, so ``dst`` is either
    the old file (or absent) or the complete new one; on any error the temp file
    is removed and the error re-raised.
    """
    dst = Path(dst)
    folder = dst.parent if str(dst.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            ds.save_as(f, enforce_file_format=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
