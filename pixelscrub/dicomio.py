"""Read a DICOM file without loading its Pixel Data, and write one atomically.

A cine can be gigabytes: :func:`read_dataset` defers large values so the pixel
frames are read from the file one at a time later (see :mod:`pixelscrub.decode`).
:func:`write_atomic` never leaves a half-written file where the output belongs.
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Optional, Union

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from .errors import ScrubError

__all__ = ["read_dataset", "write_atomic", "inflate_bounded", "is_image", "zip_member",
           "member_ref", "open_member", "DEFER_SIZE",
           "INFLATE_ALLOWANCE", "pixel_element_is_deferred"]

#: Values larger than this many bytes stay in the file until used.
DEFER_SIZE = 64 * 1024

#: What a deflated data set may inflate to beyond the pixel bytes its header
#: declares (every other element, overlays and icons included).
INFLATE_ALLOWANCE = 64 * 2**20

PIXEL_DATA_TAG = 0x7FE00010
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


def pixel_element_is_deferred(ds: Dataset) -> bool:
    """True when Pixel Data is still in the file (read lazily by frame)."""
    elem = ds._dict.get(PIXEL_DATA_TAG)
    return isinstance(elem, RawDataElement) and elem.value is None


def read_dataset(src: Union[str, os.PathLike, BinaryIO], *,
                 max_bytes: Optional[int] = None, allow_no_pixels: bool = False) -> Dataset:
    """Read ``src`` (path or binary file object) with Pixel Data left in the file.

    A deflated data set is inflated here, never by pydicom: by a decompressor that
    stops at what its header declares (:func:`inflate_bounded`), at most
    ``max_bytes``, so a small file cannot inflate to gigabytes.

    With ``allow_no_pixels`` an object that is not an image (a structured report,
    an RT plan, an encapsulated document, a presentation state, ...) may come without
    Pixel Data; an image without it (cut short, or broken) is still refused.

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
            # large values stay in a file until used; a stream is read whole
            defer = DEFER_SIZE if isinstance(src, (str, os.PathLike)) else None
            ds = _read_deflated(src, max_bytes) or pydicom.dcmread(src, force=False,
                                                                  defer_size=defer)
    except InvalidDicomError:
        raise ScrubError("input is not a DICOM Part 10 file", reason="not-dicom") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError,
            IndexError, OverflowError) as exc:
        raise ScrubError(f"cannot parse DICOM file ({type(exc).__name__})",
                         reason="unreadable") from None
    tsyntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    if not tsyntax:
        raise ScrubError("file meta has no Transfer Syntax UID", reason="no-transfer-syntax")
    _check_elements(ds)
    if PIXEL_DATA_TAG not in ds._dict:
        other = [t for t in _PIXEL_TAGS[1:] if t in ds._dict]
        if other:
            raise ScrubError("float/double float pixel data is not supported",
                             reason="float-pixel-data")
        if allow_no_pixels and not is_image(ds):
            return ds
        raise ScrubError("file has no Pixel Data", reason="no-pixel-data")
    elem = ds._dict[PIXEL_DATA_TAG]
    if pixel_element_is_deferred(ds):
        if size is None and isinstance(getattr(ds, "filename", None), str):
            size = os.path.getsize(ds.filename)
        if (size is not None and elem.length != 0xFFFFFFFF
                and elem.value_tell + elem.length > size):
            raise ScrubError("Pixel Data is truncated (file ends early)", reason="truncated")
    return ds


#: Joins a zip file's path and a member's name into one input reference (a NUL can
#: be in no path, so the reference is never taken for a real file).
_MEMBER = "\0"


def member_ref(zip_path: str, member: str) -> str:
    """The input reference of ``member`` inside the zip file ``zip_path``."""
    return f"{zip_path}{_MEMBER}{member}"


def zip_member(src) -> Optional[tuple[str, str]]:
    """(zip path, member name) of a member reference, else None."""
    text = os.fspath(src) if isinstance(src, (str, os.PathLike)) else ""
    if _MEMBER not in text:
        return None
    zip_path, member = text.split(_MEMBER, 1)
    return zip_path, member


def open_member(src: str, max_bytes: Optional[int] = None) -> io.BytesIO:
    """A zip member read into memory (never unpacked to disk), at most ``max_bytes``."""
    import zipfile
    zip_path, member = zip_member(src)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            info = zf.getinfo(member)
            if max_bytes is not None and info.file_size > max_bytes:
                raise ScrubError(f"zip member declares {info.file_size} bytes, over the limit",
                                 reason="too-large")
            with zf.open(info) as fh:
                data = fh.read(max_bytes + 1 if max_bytes is not None else -1)
    except ScrubError:
        raise
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, NotImplementedError,
            EOFError, zlib.error) as exc:
        raise ScrubError(f"cannot read zip member ({type(exc).__name__})", reason="unreadable") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise ScrubError("zip member inflates past the limit (a zip bomb?)", reason="too-large")
    if not data:
        raise ScrubError("input file is empty", reason="empty")
    return io.BytesIO(data)


def is_image(ds: Dataset) -> bool:
    """Whether ``ds`` is meant to carry pixels: an image SOP class, or image
    geometry (Rows, Columns) in its header.  An object that should and does not is
    broken, never a header-only object."""
    from pydicom.uid import UID
    sop = str(ds.get("SOPClassUID", "") or getattr(ds.get("file_meta", None) or Dataset(),
                                                    "MediaStorageSOPClassUID", "") or "")
    name = UID(sop).name if sop else ""
    return ("Image Storage" in name or "Rows" in ds or "Columns" in ds
            or not sop or name == sop)


def _check_elements(ds: Dataset, depth: int = 0) -> None:
    """Convert every header element now (pydicom does it lazily, on first use), so
    a malformed one fails the file here with its tag, not deep inside a later stage
    with a library's message.  Sequence items are checked too; deferred (large)
    values only for their VR, they are read when used."""
    from pydicom.errors import BytesLengthException
    from pydicom.tag import Tag
    from pydicom.valuerep import VR

    sources = [ds] + ([ds.file_meta] if depth == 0 and hasattr(ds, "file_meta") else [])
    for source in sources:
        for tag in list(source._dict):
            raw = source._dict[tag]
            deferred = isinstance(raw, RawDataElement) and raw.value is None
            if deferred and raw.VR is not None and raw.VR not in VR.__members__:
                raise ScrubError(f"header element {Tag(tag)} is malformed (unknown VR)",
                                 reason="malformed")
            if tag in _PIXEL_TAGS or deferred:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    elem = source[tag]
                    items = list(elem.value) if elem.VR == "SQ" and depth < 16 else []
            except (NotImplementedError, ValueError, KeyError, TypeError, OverflowError,
                    EOFError, IndexError, UnicodeError, AttributeError,
                    BytesLengthException) as exc:
                raise ScrubError(f"header element {Tag(tag)} is malformed ({type(exc).__name__})",
                                 reason="malformed") from None
            for item in items:
                _check_elements(item, depth + 1)


def _read_deflated(src, max_bytes: Optional[int]) -> Optional[Dataset]:
    """The data set of a Deflated Explicit VR Little Endian file, inflated within
    bounds; ``None`` for any other transfer syntax (pydicom reads those)."""
    fh = open(src, "rb") if isinstance(src, (str, os.PathLike)) else src
    start = fh.tell()
    try:
        preamble = pydicom.filereader.read_preamble(fh, False)
        meta = pydicom.filereader._read_file_meta_info(fh)
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return None
        body = inflate_bounded(fh, max_bytes)
        ds = pydicom.filereader.read_dataset(io.BytesIO(body), is_implicit_VR=False,
                                             is_little_endian=True)
    except ScrubError:
        raise
    except InvalidDicomError:
        return None  # pydicom names it
    except (EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError,
            IndexError, OverflowError, zlib.error) as exc:
        raise ScrubError(f"cannot parse deflated DICOM file ({type(exc).__name__})",
                         reason="unreadable") from None
    finally:
        if fh is not src:
            fh.close()
        else:
            fh.seek(start)
    name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "<stream>"
    return FileDataset(name, ds, preamble=preamble, file_meta=meta,
                       is_implicit_VR=False, is_little_endian=True)


def inflate_bounded(fh: BinaryIO, max_bytes: Optional[int] = None) -> bytes:
    """Inflate the raw deflate stream in ``fh`` (PS3.5 A.5) without trusting it.

    The first megabyte tells how many pixel bytes the header declares; the stream
    may inflate to that plus :data:`INFLATE_ALLOWANCE`, and never beyond
    ``max_bytes``.  Past the bound it stops at once with a :class:`ScrubError`
    (reason ``too-large``): a deflate bomb costs a bounded buffer, not the machine.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    limit = INFLATE_ALLOWANCE if max_bytes is None else min(INFLATE_ALLOWANCE, max_bytes)
    probed = False
    chunk = 1 << 20
    pending = b""
    while True:
        if not pending:
            pending = fh.read(chunk)
            if not pending:
                break
        room = limit + 1 - len(out)
        out += inflater.decompress(pending, max(1, room))
        pending = inflater.unconsumed_tail
        if not probed and (len(out) >= chunk or not pending):
            probed = True
            limit = INFLATE_ALLOWANCE + _declared_pixel_bytes(bytes(out[:chunk]))
            if max_bytes is not None:
                limit = min(limit, max_bytes)
        if len(out) > limit:
            raise ScrubError(f"deflated data set inflates past {limit // 2**20} MiB, more than "
                             "its header declares (a deflate bomb?)", reason="too-large")
        if inflater.eof:
            break
    out += inflater.flush()
    if len(out) > limit:
        raise ScrubError(f"deflated data set inflates past {limit // 2**20} MiB, more than "
                         "its header declares (a deflate bomb?)", reason="too-large")
    return bytes(out)


def _declared_pixel_bytes(head: bytes) -> int:
    """Rows x Columns x Frames x Samples x BitsAllocated / 8 as declared by the start
    of an inflated data set; 0 when it does not say (yet)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.filereader.read_dataset(
                io.BytesIO(head), is_implicit_VR=False, is_little_endian=True,
                stop_when=lambda tag, vr, length: tag >= 0x7FE00000)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return (int(ds.Rows) * int(ds.Columns) * max(1, frames)
                * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.get("BitsAllocated", 8) or 8) // 8)
    except Exception:  # a header cut short by the probe, or no pixel module
        return 0


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
