"""The whole pipeline on real files: pydicom's bundled images and the synthetic
sample set with ground truth, with the real decoders, Tesseract and encoders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pixelscrub import ScrubOptions, UserRegion, inspect_file, scrub_dataset, scrub_file
from pixelscrub.redact import fill_value
from pixelscrub.records import Box

from conftest import pydicom_file

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
KEY = b"pipeline-test-key-0123456789abcdef"


def _truth(name: str) -> dict:
    return json.loads((SAMPLES / "truth" / f"{name}.json").read_text())


def _pixels(path) -> np.ndarray:
    """Native pixels of a single-frame file (display views re-window after a fill)."""
    return pydicom.dcmread(path).pixel_array


def _ink_changed(before: np.ndarray, after: np.ndarray, box) -> float:
    """Fraction of the box's pixels that changed."""
    x0, y0, x1, y1 = box
    a, b = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
    diff = np.any(a != b, axis=-1) if a.ndim == 3 else a != b
    return float(diff.mean())


def test_phi_mode_removes_phi_and_keeps_measurements(tmp_path):
    name = "0000_us_gray"
    src = SAMPLES / "dicom" / f"{name}.dcm"
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "clean", audit.error
    before, after = _pixels(src), _pixels(dst)
    fill = fill_value(pydicom.dcmread(src))
    truth = _truth(name)
    phi = [it for it in truth["items"] if it["is_phi"]]
    # measurements and device parameters must survive; a field label ("Name:") may
    # go with the value after it
    kept = [it for it in truth["items"] if it["why"] == "nonphi:parameter"]
    assert phi and kept
    for item in phi:
        x0, y0, x1, y1 = item["box"]
        assert (after[y0:y1, x0:x1] == fill).all(), f"PHI item {item['why']} not blacked out"
    changed = [it["text"] for it in kept if _ink_changed(before, after, it["box"]) > 0]
    assert not changed
    out = pydicom.dcmread(dst)
    assert out.BurnedInAnnotation == "NO"
    assert out.PatientIdentityRemoved == "YES"
    assert "PETERSEN" not in dst.read_bytes().decode("latin-1").upper()
    reasons = {h.reason for h in audit.hits}
    assert any(r.startswith("header:PatientName") for r in reasons)
    # the audit record carries no OCR text unless asked
    assert "PETERSEN" not in json.dumps(audit.to_json()).upper()


def test_stripped_header_still_caught_by_patterns(tmp_path):
    name = "0018_stripped_us"
    src = SAMPLES / "dicom" / f"{name}.dcm"
    audit = scrub_file(src, tmp_path / "out.dcm", ScrubOptions(key=KEY))
    assert audit.status == "clean", audit.error
    after = _pixels(tmp_path / "out.dcm")
    before = _pixels(src)
    fill = fill_value(pydicom.dcmread(src))
    phi = [it for it in _truth(name)["items"] if it["is_phi"]]
    missed = [it["why"] for it in phi
              if not (after[it["box"][1]:it["box"][3], it["box"][0]:it["box"][2]] == fill).all()]
    assert not missed
    assert before.shape == after.shape


def test_scrub_dataset_leaves_input_untouched_and_fills_user_region():
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    original = ds.PixelData
    name = str(ds.PatientName)
    out, audit = scrub_dataset(ds, ScrubOptions(mode="regions-only", key=KEY,
                                                regions=(UserRegion(Box(0, 0, 20, 10)),)))
    assert ds.PixelData == original and str(ds.PatientName) == name
    arr = out.pixel_array
    assert (arr[0:10, 0:20] == arr[0:10, 0:20].flat[0]).all()
    assert np.array_equal(arr[10:], ds.pixel_array[10:])
    assert audit.status == "written"  # regions only: the pixels were not checked
    assert out.get("BurnedInAnnotation") != "NO"
    assert str(out.PatientName) != name


def test_no_header_and_no_pixels_switches():
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    out, _ = scrub_dataset(ds, ScrubOptions(mode="regions-only", header=False,
                                            regions=(UserRegion(Box(0, 0, 8, 8)),)))
    assert str(out.PatientName) == str(ds.PatientName)
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    out, audit = scrub_dataset(ds, ScrubOptions(pixels=False, key=KEY))
    assert np.array_equal(out.pixel_array, ds.pixel_array)
    assert str(out.PatientName) != str(ds.PatientName)
    assert audit.status == "written"


def test_too_large_image_refused_before_decoding(tmp_path):
    audit = scrub_file(pydicom_file("CT_small.dcm"), tmp_path / "o.dcm",
                       ScrubOptions(max_pixels=1000, key=KEY))
    assert audit.status == "failed" and "too large" in audit.error
    assert not (tmp_path / "o.dcm").exists()


def test_bad_input_is_a_one_line_error(tmp_path):
    bad = tmp_path / "notdicom.dcm"
    bad.write_bytes(b"hello, this is not DICOM" * 10)
    audit = scrub_file(bad, tmp_path / "out" / "x.dcm", ScrubOptions(key=KEY))
    assert audit.status == "failed"
    assert str(bad) in audit.error and "\n" not in audit.error
    assert not (tmp_path / "out" / "x.dcm").exists()


def test_refuses_to_overwrite_input(tmp_path):
    src = tmp_path / "in.dcm"
    src.write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    before = src.read_bytes()
    audit = scrub_file(src, src, ScrubOptions(mode="regions-only", key=KEY))
    assert audit.status == "failed"
    assert src.read_bytes() == before


def test_inspect_writes_nothing(tmp_path):
    src = tmp_path / "in.dcm"
    src.write_bytes((SAMPLES / "dicom" / "0006_sc_viewer.dcm").read_bytes())
    audit = inspect_file(src, ScrubOptions())
    assert audit.status == "clean", audit.error
    assert any(h.reason.startswith("header:PatientName") for h in audit.hits)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.dcm"]


def test_os_errors_keep_their_reason_without_values(tmp_path, monkeypatch):
    import errno
    from pixelscrub import dicomio

    def full_disk(ds, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(dicomio, "write_atomic", full_disk)
    audit = scrub_file(pydicom_file("CT_small.dcm"), tmp_path / "o.dcm",
                       ScrubOptions(mode="regions-only", key=KEY))
    assert audit.status == "failed"
    assert audit.error.endswith("internal error (OSError: No space left on device)")


def test_cine_frames_are_decoded_once_for_detection(monkeypatch):
    """Detection reads a cine in two passes; the second replays the first's frames."""
    from pixelscrub import decode, pipeline
    calls = []
    real = decode.iter_display

    def counting(ds, *a, **kw):
        calls.append(1)
        return real(ds, *a, **kw)

    monkeypatch.setattr(decode, "iter_display", counting)
    ds = pydicom.dcmread(SAMPLES / "dicom" / "0004_us_cine.dcm")
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY, verify=False))
    assert audit.status == "clean" and len(calls) == 1
    # past the budget, frames stream again instead of being held
    calls.clear()
    monkeypatch.setattr(pipeline._decoded_once, "__defaults__", (1,))
    out2, audit2 = scrub_dataset(ds, ScrubOptions(key=KEY, verify=False))
    assert len(calls) == 2
    assert [h.box for h in audit2.hits] == [h.box for h in audit.hits]


def test_audit_names_the_frames_written_again():
    ds = pydicom.dcmread(SAMPLES / "dicom" / "0004_us_cine.dcm")
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY, regions=(
        UserRegion(Box(0, 0, 8, 8), frames=(2, 3, 4, 9)),), mode="regions-only"))
    counts = audit.stage("encode").counts
    assert counts["frames_written"] == int(ds.NumberOfFrames)
    # baseline JPEG: the four frames with a box are edited block by block, the other
    # sixteen keep their bytes
    assert counts["frames_dct_edited"] == "2-4,9" and counts["frames_reencoded"] == ""
    assert counts["frames_copied"] == int(ds.NumberOfFrames) - 4
