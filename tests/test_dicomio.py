"""read_dataset refusals and deferred Pixel Data; write_atomic leaves nothing behind."""
from __future__ import annotations

import os

import pydicom
import pytest

from conftest import pydicom_file
from pixelscrub.dicomio import pixel_element_is_deferred, read_dataset, write_atomic
from pixelscrub.errors import ScrubError


def _reason(src) -> str:
    with pytest.raises(ScrubError) as info:
        read_dataset(src)
    assert "\n" not in str(info.value)
    return info.value.reason


def test_pixel_data_stays_in_the_file():
    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    assert pixel_element_is_deferred(ds)


def test_refusals(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    assert _reason(empty) == "empty"
    text = tmp_path / "text.dcm"
    text.write_bytes(b"hello, not dicom at all" * 20)
    assert _reason(text) == "not-dicom"
    assert _reason(tmp_path / "missing.dcm") == "not-a-file"
    header_only = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del header_only.PixelData
    header_only.save_as(tmp_path / "header.dcm")
    assert _reason(tmp_path / "header.dcm") == "no-pixel-data"
    with open(pydicom_file("CT_small.dcm"), "rb") as f:  # file objects work too
        assert read_dataset(f).Rows == 128
    assert _reason(pydicom_file("meta_missing_tsyntax.dcm")) == "no-transfer-syntax"


def test_truncated_file_is_refused(tmp_path):
    data = pydicom_file("CT_small.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 4000])
    with pytest.raises(ScrubError):
        ds = read_dataset(cut)
        from pixelscrub.decode import iter_frames
        list(iter_frames(ds))


def test_write_atomic_writes_a_readable_file(tmp_path):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    dst = tmp_path / "out.dcm"
    write_atomic(ds, dst)
    assert pydicom.dcmread(dst).SOPInstanceUID == ds.SOPInstanceUID
    assert os.listdir(tmp_path) == ["out.dcm"]


def test_write_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    dst = tmp_path / "out.dcm"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    # fail after the temp file exists and part of the data is written
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        write_atomic(ds, dst)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == []


def test_write_atomic_failure_mid_dataset_keeps_old_file(tmp_path):
    dst = tmp_path / "out.dcm"
    dst.write_bytes(b"old")
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.add_new(0x00091001, "XX", b"bad")  # unknown VR: pydicom fails while writing
    with pytest.raises(Exception):
        write_atomic(ds, dst)
    assert dst.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.dcm"]
