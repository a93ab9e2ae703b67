"""Fail closed: pixels that were not read are never certified.

Images are drawn fresh here (OpenCV text, rotated or scribbled), read by the real
Tesseract, and checked end to end: what the read stage re-reads, what the audit
says, what the header claims and where the batch puts the output.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         SecondaryCaptureImageStorage, generate_uid)

from pixelscrub import ScrubOptions, UserRegion, inspect_file, scrub_file
from pixelscrub.batch import default_report_path, default_unverified_path, run_batch
from pixelscrub.dicomio import INFLATE_ALLOWANCE, inflate_bounded
from pixelscrub.ocr import get_engine
from pixelscrub.propose import propose_text_regions
from pixelscrub.read import (expected_characters, looks_like_text, prepare_crop,
                             read_batch, reread_doubtful)
from pixelscrub.records import Box

KEY = b"fail-closed-test-key-0123456789ab"
CLEAN_PIXELS = "113101"   # CID 7050 Clean Pixel Data Option


@pytest.fixture(scope="module")
def engine():
    return get_engine("auto")


def _scene(text: str = "", angle: float = 0.0, *, glyphs: int = 0, seed: int = 0) -> np.ndarray:
    """A dark 600x400 screen with a parameter line at the bottom and, in the middle,
    ``text`` turned ``angle`` degrees counter-clockwise, or ``glyphs`` random
    letter-sized scribbles in a row (text no OCR can read)."""
    img = np.full((400, 600), 20, np.uint8)
    cv2.putText(img, "Gain 50  Depth 12 cm", (20, 380), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 220, 1,
                cv2.LINE_AA)
    layer = np.zeros_like(img)
    if text:
        cv2.putText(layer, text, (150, 210), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 230, 2, cv2.LINE_AA)
    rng = np.random.default_rng(seed)
    for k in range(glyphs):
        pts = (rng.random((4, 2)) * [14, 22] + [150 + k * 19, 188]).astype(np.int32)
        cv2.polylines(layer, [pts], False, 230, 2, cv2.LINE_AA)
    turn = cv2.getRotationMatrix2D((300, 200), angle, 1.0)
    return np.maximum(img, cv2.warpAffine(layer, turn, (600, 400)))


def _write(path: Path, img: np.ndarray, *, name: str = "KOWALSKI^JAN",
           burned_in: str | None = None) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = name, "58213907", "OT"
    if burned_in:
        ds.BurnedInAnnotation = burned_in
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = img.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _codes(path: Path) -> set[str]:
    ds = pydicom.dcmread(path)
    return {item.CodeValue for item in ds.get("DeidentificationMethodCodeSequence", [])}


# -- the read stage ------------------------------------------------------------------------

@pytest.mark.parametrize("angle", [20, 35])
def test_slanted_name_is_re_read_until_it_reads(engine, angle):
    """'KOWALSKI, JAN' at 20 degrees read as 'yor pst om' once; the ladder deskews it
    (at 35 degrees it is proposed in fragments, which are joined first)."""
    img = _scene("KOWALSKI, JAN", angle)
    props = propose_text_regions(img)
    first, _ = read_batch(img, props, engine)
    assert "KOWALSKI" not in " ".join(w.text for ws in first for w in ws).upper()
    words, unread, calls = reread_doubtful(img, props, first, engine)
    text = " ".join(w.text for ws in words for w in ws).upper()
    assert "OWALSKI" in text and calls > 0


def test_scribbles_in_a_row_are_unread(engine):
    img = _scene(glyphs=14, seed=1)
    props = propose_text_regions(img)
    words, unread, _ = reread_doubtful(img, props, read_batch(img, props, engine)[0], engine)
    assert len(unread) == 1
    assert unread[0].box.intersects(Box(150, 185, 380, 215))
    # the parameter line read well and is not in doubt
    assert not any(q.box.y0 > 350 for q in unread)


def test_a_weak_lead_that_does_not_read_is_no_unread_text(engine):
    """A line found only by a weak cue (Proposal.score < 1: flat cores over speckle)
    is read like any other, but when OCR cannot confirm it, it is a false lead."""
    img = _scene(glyphs=14, seed=1)
    props = [replace(q, score=0.5) for q in propose_text_regions(img)]
    words, unread, _ = reread_doubtful(img, props, read_batch(img, props, engine)[0], engine)
    assert unread == []


def test_well_read_lines_cost_no_extra_calls(engine):
    img = _scene("KOWALSKI, JAN", 0)
    props = propose_text_regions(img)
    first, _ = read_batch(img, props, engine)
    words, unread, calls = reread_doubtful(img, props, first, engine)
    assert calls == 0 and not unread and words == first


def test_text_likeness_of_prepared_crops():
    row = _scene(glyphs=14, seed=1)
    props = propose_text_regions(row)
    prep = prepare_crop(row, max(props, key=lambda q: q.box.width if q.box.y0 < 300 else 0))
    assert looks_like_text(prep.pixels) and expected_characters(prep.pixels) >= 8
    blob = np.full((60, 200), 255, np.uint8)
    cv2.circle(blob, (40, 30), 20, 0, -1)          # one big blob and specks: not a line
    for x in (90, 120, 170):
        cv2.circle(blob, (x, 10 + x % 37), 3, 0, -1)
    assert not looks_like_text(blob)


# -- the pipeline: certification -----------------------------------------------------------

@pytest.mark.parametrize("angle", [20, 35])
def test_slanted_name_is_redacted_and_the_file_certified(tmp_path, angle):
    src = _write(tmp_path / "in.dcm", _scene("KOWALSKI, JAN", angle))
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "clean", audit.error
    assert any(h.reason == "header:PatientName" for h in audit.hits)
    before, after = pydicom.dcmread(src).pixel_array, pydicom.dcmread(dst).pixel_array
    ink = before > 120
    ink[350:] = False                                 # the name's strokes, not the parameters
    assert (after[ink] == 0).mean() > 0.97
    assert pydicom.dcmread(dst).BurnedInAnnotation == "NO" and CLEAN_PIXELS in _codes(dst)


def test_unreadable_text_is_not_certified(tmp_path):
    src = _write(tmp_path / "in.dcm", _scene(glyphs=14, seed=1), burned_in="NO")
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "unverified"
    assert [h.reason for h in audit.review] == ["unread"]
    out = pydicom.dcmread(dst)
    assert out.BurnedInAnnotation == "YES"          # the input's NO is not passed on
    assert CLEAN_PIXELS not in _codes(dst)
    assert "unread" in json.dumps(audit.to_json())
    assert inspect_file(src, ScrubOptions(key=KEY)).status == "unverified"


def test_redact_unread_blanks_the_line_and_certifies(tmp_path):
    src = _write(tmp_path / "in.dcm", _scene(glyphs=14, seed=1))
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY, redact_unread=True))
    assert audit.status == "clean" and not audit.review
    unread = [h for h in audit.hits if h.reason == "unread"]
    assert len(unread) == 1
    b = unread[0].box
    after = pydicom.dcmread(dst).pixel_array
    assert (after[b.y0:b.y1, b.x0:b.x1] == 0).all()
    assert (after[360:390, 20:185] == pydicom.dcmread(src).pixel_array[360:390, 20:185]).all()
    assert CLEAN_PIXELS in _codes(dst)


def test_regions_only_never_claims_clean_pixels(tmp_path):
    src = _write(tmp_path / "in.dcm", _scene("KOWALSKI, JAN"), burned_in="NO")
    for regions in ((), (UserRegion(Box(0, 0, 50, 50)),)):
        dst = tmp_path / "out.dcm"
        audit = scrub_file(src, dst, ScrubOptions(key=KEY, mode="regions-only", regions=regions))
        assert audit.status == "written"
        assert CLEAN_PIXELS not in _codes(dst)
        assert pydicom.dcmread(dst).BurnedInAnnotation == "YES"


# -- the batch: unverified outputs kept apart ----------------------------------------------

def test_unverified_outputs_go_apart_and_resume(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "clean.dcm", _scene("KOWALSKI, JAN"))
    _write(src / "scribble.dcm", _scene(glyphs=14, seed=1))
    out = tmp_path / "out"
    opts = ScrubOptions(key=KEY)
    summary = run_batch([src], out, opts, jobs=2, progress="none")
    apart = default_unverified_path(out)
    assert summary.clean == 1 and summary.unverified == 1 and summary.exit_status == 1
    assert sorted(p.name for p in out.glob("*.dcm")) == ["clean.dcm"]
    assert sorted(p.name for p in apart.glob("*.dcm")) == ["scribble.dcm"]
    recs = [json.loads(line) for line in default_report_path(out).read_text().splitlines()]
    assert recs[-1]["unverified"] == 1
    assert {r["status"] for r in recs[:-1]} == {"clean", "unverified"}
    # a re-run skips both, each found where it was put
    again = run_batch([src], out, opts, jobs=1, progress="none")
    assert again.skipped == 2
    # once redact-unread certifies it, it moves among the clean ones
    fixed = run_batch([src], out, replace(opts, redact_unread=True), jobs=1, progress="none")
    assert fixed.clean == 2 and fixed.exit_status == 0
    assert sorted(p.name for p in out.glob("*.dcm")) == ["clean.dcm", "scribble.dcm"]
    assert not list(apart.glob("*.dcm"))


def test_unverified_folder_must_not_overlap_the_output(tmp_path):
    from pixelscrub.errors import ScrubError
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "a.dcm", _scene())
    with pytest.raises(ScrubError, match="overlaps output folder"):
        run_batch([src], tmp_path / "out", ScrubOptions(key=KEY), unverified=tmp_path / "out" / "u",
                  progress="none")
    with pytest.raises(ScrubError, match="inside input folder"):
        run_batch([src], tmp_path / "out", ScrubOptions(key=KEY), unverified=src / "u",
                  progress="none")


# -- bounded inputs --------------------------------------------------------------------------

def _deflated(path: Path, junk: int) -> Path:
    """A deflated 10x10 image whose data set also holds ``junk`` zero bytes in a private
    element: a few kilobytes on disk per megabyte inflated."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName = "BOMB^TEST"
    ds.Rows = ds.Columns = 10
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + head.getvalue() + comp.compress(body.getvalue()))
        f.write(comp.compress(struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, junk)))
        zeros = bytes(1 << 20)
        for start in range(0, junk, len(zeros)):
            f.write(comp.compress(zeros[:min(len(zeros), junk - start)]))
        f.write(comp.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 100) + bytes(100)))
        f.write(comp.flush())
    return path


def test_deflate_bomb_stops_at_what_the_header_declares(tmp_path):
    bomb = _deflated(tmp_path / "bomb.dcm", 1_300_000_000)   # 1.3 GB inflated
    assert bomb.stat().st_size < 2_000_000
    audit = scrub_file(bomb, tmp_path / "out.dcm", ScrubOptions(key=KEY, mode="regions-only"))
    assert audit.status == "failed" and "deflate bomb" in audit.error
    assert not (tmp_path / "out.dcm").exists()
    with open(bomb, "rb") as f:
        f.seek(132)
        pydicom.filereader._read_file_meta_info(f)
        with pytest.raises(Exception, match=f"past {INFLATE_ALLOWANCE // 2**20} MiB"):
            inflate_bounded(f)


def test_deflated_input_within_bounds_is_read(tmp_path):
    ok = _deflated(tmp_path / "ok.dcm", 1_000_000)
    audit = scrub_file(ok, tmp_path / "out.dcm", ScrubOptions(key=KEY, mode="regions-only"))
    assert audit.status == "written", audit.error
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert out.Rows == 10


def test_inflate_bounded_honours_an_explicit_cap():
    data = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = data.compress(bytes(5 << 20)) + data.flush()
    with pytest.raises(Exception, match="inflates past 1 MiB"):
        inflate_bounded(io.BytesIO(raw), max_bytes=1 << 20)
    assert len(inflate_bounded(io.BytesIO(raw))) == 5 << 20


def test_per_frame_pixel_cap(tmp_path):
    src = _write(tmp_path / "in.dcm", _scene())
    audit = scrub_file(src, tmp_path / "out.dcm", ScrubOptions(key=KEY, max_frame_pixels=1000))
    assert audit.status == "failed" and "frame too large" in audit.error
    assert not (tmp_path / "out.dcm").exists()


def test_low_confidence_vocabulary_needs_no_review():
    """``DR 74 dB`` read at confidence 35 is still no one's name: such words count as
    read when deciding whether an unread region needs review; a garbled token does not."""
    from pixelscrub.pipeline import _covered, _handled
    from pixelscrub.records import Hit, Word
    region = Hit(Box(428, 190, 482, 203), "unread")
    words = [Word("DR", Box(429, 191, 445, 202), 96), Word("74", Box(448, 191, 463, 202), 35),
             Word("dB", Box(465, 191, 480, 202), 35)]
    assert _covered(region, _handled([], words, ScrubOptions()))
    garbled = words[:2] + [Word("K0W", Box(465, 191, 480, 202), 35)]
    assert not _covered(region, _handled([], garbled, ScrubOptions()))
    # a redaction with its margin covers what it blanks
    assert _covered(region, _handled([Hit(Box(430, 192, 480, 201), "header:PatientID")],
                                     garbled, ScrubOptions()))
