"""redact_dataset + write_atomic on every pydicom bundled image, and with regions."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid

from conftest import pydicom_file, pydicom_image_files
from pixelscrub.decode import image_info, iter_encoded_frames, iter_frames
from pixelscrub.dicomio import read_dataset, write_atomic
from pixelscrub.encode import redact_dataset, release
from pixelscrub.errors import ScrubError
from pixelscrub.records import Box, Hit
from pixelscrub.redact import RedactionPlan, fill_value, plan_redactions

jpeglib = pytest.importorskip("jpeglib")

IMAGE_FILES = pydicom_image_files()
LOSSLESS_OUT = {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian,
                uid.DeflatedExplicitVRLittleEndian, uid.RLELossless, uid.JPEGLSLossless,
                uid.JPEG2000Lossless}


def _pydicom_can_decode(path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmread(path).pixel_array
        return True
    except Exception:
        return False


def _dct(codestream: bytes, tmp_path, name: str):
    p = tmp_path / name
    p.write_bytes(codestream)
    j = jpeglib.read_dct(str(p))
    j.load()
    return [c for c in (j.Y, j.Cb, j.Cr) if c is not None]


def _write_read(ds, plan, tmp_path, name="out.dcm"):
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    out = tmp_path / name
    write_atomic(new, out)
    release(new)
    return read_dataset(out), result


@pytest.mark.parametrize("path", IMAGE_FILES, ids=lambda p: p.name)
def test_empty_plan_round_trip(path, tmp_path):
    before = path.read_bytes()
    try:
        ds = read_dataset(path)
        frames_in = list(iter_frames(ds))
    except ScrubError as exc:
        assert "\n" not in str(exc)
        assert not _pydicom_can_decode(path), f"refused a file pydicom decodes: {exc}"
        return
    out, result = _write_read(ds, RedactionPlan(), tmp_path)
    assert path.read_bytes() == before  # input untouched
    assert result.frames_written == len(frames_in)
    frames_out = list(iter_frames(out))
    assert len(frames_out) == len(frames_in)
    ts_in = ds.file_meta.TransferSyntaxUID
    ts_out = out.file_meta.TransferSyntaxUID
    assert ts_out == result.transfer_syntax_out
    if ts_in in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit) and ts_out == ts_in:
        for k, (a, b) in enumerate(zip(iter_encoded_frames(ds), iter_encoded_frames(out))):
            ca, cb = _dct(a, tmp_path, f"a{k}.jpg"), _dct(b, tmp_path, f"b{k}.jpg")
            assert all(np.array_equal(x, y) for x, y in zip(ca, cb))
    else:
        assert ts_out in LOSSLESS_OUT or ts_out == ts_in
        for a, b in zip(frames_in, frames_out):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert out.get(kw) == ds.get(kw)
    assert int(out.get("NumberOfFrames", 1)) == len(frames_in)
    assert not [f for f in os.listdir(tmp_path) if f.startswith((".out", "pixelscrub-"))]
