"""The verify stage: a scrubbed image is re-read as an attacker would before it is trusted.

Real files (the sample set), real Tesseract.  A detection miss is simulated by
making detection find nothing; the verify stage must then find the PHI itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pixelscrub import ScrubOptions, scrub_dataset
from pixelscrub import pipeline
from pixelscrub.records import Box, Hit, Word
from pixelscrub.verify import _label_on_its_row, frames_to_verify

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
KEY = b"verify-test-key-0123456789abcdef"
NAME = "0000_us_gray"


def _phi_items():
    truth = json.loads((SAMPLES / "truth" / f"{NAME}.json").read_text())
    return [it for it in truth["items"] if it["is_phi"]]


@pytest.fixture
def blind_detection(monkeypatch):
    """Detection that finds nothing but claims it checked everything (the worst miss)."""
    monkeypatch.setattr(pipeline, "find_hits", lambda ds, info, options, audit, **kw: ([], True))


def _covered(out, items) -> int:
    """How many of ``items`` are blacked out (their box is uniform) in ``out``."""
    arr = out.pixel_array
    return sum(int(np.ptp(arr[it["box"][1]:it["box"][3], it["box"][0]:it["box"][2]]) == 0)
               for it in items)


def test_verify_finds_and_redacts_what_detection_missed(blind_detection):
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    items = _phi_items()
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY, verify=False))
    assert _covered(out, items) == 0  # nothing found, nothing redacted: the miss is real
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    assert any(h.reason.startswith("verify:header:PatientName") for h in audit.hits)
    assert _covered(out, items) >= len(items) - 1
    assert audit.stage("verify").counts["found"] > 0 and audit.stage("verify").seconds > 0
    assert any(n.startswith("verify:") for n in audit.notes)


def test_what_a_second_reread_still_finds_is_not_certified(blind_detection, monkeypatch):
    """If the re-redaction did not take (here: verify hits are dropped from the plan),
    the second re-read sees the PHI again and the file is unverified, not clean."""
    from pixelscrub import redact
    real_plan = redact.plan_redactions
    monkeypatch.setattr(redact, "plan_redactions", lambda hits, info, margin: real_plan(
        [h for h in hits if not h.reason.startswith("verify:")], info, margin=margin))
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    assert audit.status == "unverified" and audit.review
    assert out.BurnedInAnnotation == "YES"
    assert audit.stage("verify").counts["left_after_second_pass"] > 0


def test_a_clean_scrub_passes_verify_unchanged():
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    assert audit.status == "clean"
    assert audit.stage("verify").counts == {"frames_reread": 1, "found": 0}
    assert not [h for h in audit.hits if h.reason.startswith("verify:")]


def test_frames_to_verify():
    assert frames_to_verify(1) == [0]
    assert frames_to_verify(3) == [0, 1, 2]
    assert frames_to_verify(300) == [0, 150, 299]


def test_a_label_hit_needs_its_label_on_its_row():
    """In a scrubbed image "Patient: [black]" over "MR# [black]" is no name "MR#"."""
    label_above = Word("Patient:", Box(10, 10, 60, 22), 95.0, 0, 0)
    value = Hit(Box(10, 30, 40, 42), "label:Patient", text="MR#")
    assert not _label_on_its_row(value, [label_above])
    label_left = Word("Name:", Box(10, 30, 45, 42), 95.0, 0, 0)
    named = Hit(Box(52, 30, 120, 42), "label:Name", text="Hans Okafor")
    assert _label_on_its_row(named, [label_left])
    assert _label_on_its_row(Hit(Box(10, 30, 40, 42), "header:PatientName"), [])


class _Counting:
    """A real engine that counts its calls."""

    def __init__(self):
        from pixelscrub.ocr import get_engine
        self.engine, self.calls = get_engine("auto"), 0

    def read_lines(self, image, *, psm=7):
        self.calls += 1
        return self.engine.read_lines(image, psm=psm)


def test_the_2x_view_is_read_only_when_a_1x_view_found_something():
    from pixelscrub.decode import iter_display
    from pixelscrub.phi_terms import phi_terms_from_header
    from pixelscrub.verify import recheck
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    terms = phi_terms_from_header(ds)
    engine = _Counting()
    found, read = recheck(iter_display(ds), 1, terms, engine)   # PHI in plain sight
    assert read == 1 and engine.calls == 3 and found
    clean = np.zeros((200, 300), np.uint8)      # nothing to read: two views, no hits
    engine.calls = 0
    found, read = recheck(iter([clean]), 1, terms, engine)
    assert read == 1 and engine.calls == 2 and found == []


class _Blind:
    """An engine that reads nothing: the Tesseract views miss everything."""

    def read_lines(self, image, *, psm=7):
        return []


def test_a_second_engine_finds_what_tesseract_views_missed():
    from pixelscrub.decode import iter_display
    from pixelscrub.ocr import get_engine
    from pixelscrub.phi_terms import phi_terms_from_header
    from pixelscrub.verify import recheck
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    terms = phi_terms_from_header(ds)
    assert recheck(iter_display(ds), 1, terms, _Blind()) == ([], 1)
    found, read = recheck(iter_display(ds), 1, terms, _Blind(), second=get_engine("rapidocr"))
    reasons = {h.reason for h in found}
    assert read == 1 and "verify:header:PatientName" in reasons
    name = next(it for it in _phi_items() if it["why"] == "header:PatientName")
    x0, y0, x1, y1 = name["box"]
    assert any(h.box.intersects(Box(x0, y0, x1, y1)) for h in found
               if h.reason == "verify:header:PatientName")


def test_rapidocr_engine_reads_words_with_boxes():
    import cv2
    from pixelscrub.ocr import get_engine
    img = np.full((70, 460), 235, np.uint8)
    cv2.putText(img, "KOWALSKI ANNA 40917735", (10, 45), cv2.FONT_HERSHEY_DUPLEX, 0.9, 20, 2,
                cv2.LINE_AA)
    words = get_engine("rapidocr").read_lines(img)
    # (it reads the O of KOWALSKI as a zero: the match stage folds such confusions)
    assert [w.text.replace("0", "O") for w in words[:2]] == ["KOWALSKI", "ANNA"]
    assert len(words) == 3 and words[2].text == "40917735"
    assert all(w.confidence > 80 and w.line == 0 for w in words)
    assert words[0].box.x1 <= words[1].box.x0 + 2 and words[1].box.x1 <= words[2].box.x0 + 2
    ink = np.flatnonzero((img < 128).any(axis=0))
    assert abs(words[0].box.x0 - ink[0]) <= 6 and abs(words[2].box.x1 - ink[-1]) <= 6


def _unsure_detection(monkeypatch, region: Box):
    """Detection that finds nothing and could not read ``region`` (its only doubt)."""
    def find(ds, info, options, audit, **kw):
        audit.stage("read").counts["pixels"] = {"frames_checked": 1, "frames": 1}
        audit.review = [Hit(region, "unread", confidence=0.0)]
        return [], False
    monkeypatch.setattr(pipeline, "find_hits", find)


def test_an_unread_line_the_verify_stage_redacts_needs_no_review(monkeypatch):
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    monkeypatch.setattr(pipeline, "find_hits", lambda ds, info, options, audit, **kw: ([], True))
    _, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    found = [h.box for h in audit.hits if h.reason.startswith("verify:")]
    assert found
    inside = Box(found[0].x0 + 1, found[0].y0 + 1, found[0].x1 - 1, found[0].y1 - 1)
    _unsure_detection(monkeypatch, inside)
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    assert audit.review == [] and audit.status == "clean" and out.BurnedInAnnotation == "NO"


def test_an_unread_line_left_as_it_was_still_needs_review(monkeypatch):
    ds = pydicom.dcmread(SAMPLES / "dicom" / f"{NAME}.dcm")
    elsewhere = Box(ds.Columns - 40, ds.Rows - 20, ds.Columns - 2, ds.Rows - 2)
    _unsure_detection(monkeypatch, elsewhere)
    out, audit = scrub_dataset(ds, ScrubOptions(key=KEY))
    assert audit.hits and len(audit.review) == 1 and audit.status == "unverified"
    assert out.BurnedInAnnotation == "YES"
