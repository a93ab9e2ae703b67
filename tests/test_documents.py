"""Whole studies: objects without pixels get the header step, encapsulated PDFs are
scrubbed page by page, other documents and DICOMDIRs never pass through."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import pydicom_file
from pixelscrub import ScrubOptions, scrub_file
from pixelscrub.batch import default_report_path, run_batch
from pixelscrub.documents import ENCAPSULATED_PDF, render_pdf

KEY = b"documents-test-key-0123456789abcd"


def pdf_with_text(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer (Helvetica) and an Author in its Info."""
    content = "BT /F1 18 Tf 72 720 Td " + " ".join(f"({t}) Tj 0 -30 Td" for t in lines) + " ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info << /Author (Dr. Quill) >> >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return out


def encapsulated(path: Path, pdf: bytes, sop_class: str = ENCAPSULATED_PDF) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientBirthDate, ds.PatientID = "HANSEN^GRETA", "19570312", "P-4711"
    ds.Modality, ds.BurnedInAnnotation = "DOC", "YES"
    ds.DocumentTitle = "Report HANSEN"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.save_as(path, enforce_file_format=True)
    return path


REPORT = ["Radiology report", "Patient: HANSEN, GRETA", "DOB: 12.03.1957",
          "Findings: no acute abnormality"]


@pytest.mark.parametrize("name", ["reportsi.dcm", "test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm"])
def test_objects_without_pixels_get_the_header_step(tmp_path, name):
    src = pydicom_file(name)
    original = pydicom.dcmread(src)
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "clean", audit.error
    assert "header de-identified only" in " ".join(audit.notes)
    out = pydicom.dcmread(dst)
    assert out.PatientIdentityRemoved == "YES"
    assert out.SOPInstanceUID != original.SOPInstanceUID
    name_parts = [p for p in str(original.get("PatientName", "")).split("^") if len(p) > 2]
    raw = dst.read_bytes()
    assert not [p for p in name_parts if p.encode() in raw]
    # an independent reader agrees it is DICOM
    assert subprocess.run(["dcmdump", "-q", str(dst)], capture_output=True).returncode == 0


def test_encapsulated_pdf_is_scrubbed_page_by_page(tmp_path):
    src = encapsulated(tmp_path / "pdf.dcm", pdf_with_text(REPORT))
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "clean", audit.error
    assert {h.reason for h in audit.hits} == {"header:PatientName", "header:PatientBirthDate"}
    out = pydicom.dcmread(dst)
    raw = dst.read_bytes()
    # the whole birth date, not b"1957": four digits turn up by chance in the
    # output's random UIDs (this failed about once in 40 runs)
    for phi in (b"HANSEN", b"GRETA", b"Quill", b"19570312", b"12.03.1957"):
        assert phi not in raw, phi
    assert out.BurnedInAnnotation == "NO" and out.DocumentTitle == "Report ******"
    pdf = bytes(out.EncapsulatedDocument)[:out.EncapsulatedDocumentLength]
    (page,) = render_pdf(pdf)
    # the name line is black where the name was, the findings line is intact
    before = render_pdf(pdf_with_text(REPORT))[0]
    dark = (page.max(axis=2) < 40)
    for hit in audit.hits:
        b = hit.box
        assert dark[b.y0:b.y1, b.x0:b.x1].mean() > 0.95
    assert page.shape == before.shape
    ink_before = (before[300:360].max(axis=2) < 128).sum()    # the findings line
    ink_after = (page[300:360].max(axis=2) < 128).sum()       # (pages are stored as JPEG)
    assert ink_before > 500 and abs(ink_after - ink_before) < 0.2 * ink_before
    # no text layer: PDFium finds no characters
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(pdf)
    assert doc[0].get_textpage().count_chars() == 0


@pytest.mark.parametrize("opts, why", [
    (ScrubOptions(key=KEY, mode="regions-only"), "without OCR"),
    (ScrubOptions(key=KEY, pixels=False), "no-pixels"),
])
def test_pdf_is_never_passed_through_unscrubbed(tmp_path, opts, why):
    src = encapsulated(tmp_path / "pdf.dcm", pdf_with_text(REPORT))
    audit = scrub_file(src, tmp_path / "out.dcm", opts)
    assert audit.status == "failed" and "encapsulated PDF" in audit.error
    assert not (tmp_path / "out.dcm").exists()


def test_other_encapsulated_documents_are_refused(tmp_path):
    src = encapsulated(tmp_path / "cda.dcm", b"<ClinicalDocument>HANSEN</ClinicalDocument>",
                       sop_class="1.2.840.10008.5.1.4.1.1.104.2")
    audit = scrub_file(src, tmp_path / "out.dcm", ScrubOptions(key=KEY))
    assert audit.status == "failed" and "CDA" in audit.error
    assert not (tmp_path / "out.dcm").exists()


def test_an_image_without_pixels_is_still_refused(tmp_path):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "ct.dcm")
    audit = scrub_file(tmp_path / "ct.dcm", tmp_path / "out.dcm", ScrubOptions(key=KEY))
    assert audit.status == "failed" and "no Pixel Data" in audit.error


def test_study_export_comes_out_complete_without_its_dicomdir(tmp_path):
    export = tmp_path / "HANSEN_GRETA_CD"
    (export / "DICOM").mkdir(parents=True)
    shutil.copyfile(pydicom_file("dicomdirtests/DICOMDIR"), export / "DICOMDIR")
    shutil.copyfile(pydicom_file("dicomdirtests/DICOMDIR"), export / "DICOM" / "INDEX")  # renamed
    for i, name in enumerate(("CT_small.dcm", "MR_small.dcm", "reportsi.dcm", "rtplan.dcm")):
        shutil.copyfile(pydicom_file(name), export / "DICOM" / f"IM{i}")
    encapsulated(export / "DICOM" / "DOC0", pdf_with_text(REPORT))
    out = tmp_path / "out"
    summary = run_batch([export], out, ScrubOptions(key=KEY), jobs=2, progress="none",
                        rename="uid")
    written = sorted(p for p in out.rglob("*.dcm"))
    assert len(written) == 5 and summary.failed == 1       # the renamed DICOMDIR
    assert any("DICOMDIR left out" in w for w in summary.warnings)
    recs = [json.loads(line) for line in default_report_path(out).read_text().splitlines()]
    assert [r["error"].split(": ", 1)[1] for r in recs[:-1] if r["status"] == "failed"] == [
        "a DICOMDIR lists patient names and IDs: left out (build a new one from the outputs)"]
    names = {"HANSEN", "GRETA"}
    for p in export.rglob("*"):
        if p.is_file() and p.name != "DICOMDIR" and p.name != "INDEX" and p.name != "DOC0":
            names |= {part for part in str(pydicom.dcmread(p).get("PatientName", "")).split("^")
                      if len(part) > 2}
    for p in written:
        raw = p.read_bytes()
        assert not [n for n in names if n.encode() in raw], p
        assert "HANSEN" not in p.as_posix()


def test_documents_refuse_sends_pdfs_to_the_quarantine(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    encapsulated(src / "report.dcm", pdf_with_text(REPORT))
    shutil.copyfile(pydicom_file("CT_small.dcm"), src / "ct.dcm")
    summary = run_batch([src], tmp_path / "out", ScrubOptions(key=KEY, documents="refuse"),
                        jobs=1, progress="none", quarantine=tmp_path / "q")
    assert summary.failed == 1 and summary.files_out == 1
    assert (tmp_path / "q" / "report.dcm").read_bytes() == (src / "report.dcm").read_bytes()
    rec = [json.loads(line) for line in default_report_path(tmp_path / "out").read_text()
           .splitlines()[:-1] if "refused as asked" in line]
    assert len(rec) == 1 and rec[0]["notes"] == ["copied to quarantine"]


def test_pdf_pages_are_reread_by_the_verify_stage(tmp_path, monkeypatch):
    """Detection that finds nothing on the pages: the verify stage renders the written
    PDF, reads it, finds the name and the birth date, and blacks them out."""
    from pixelscrub import detect
    real = detect.detect_words

    def blind(*a, **kw):
        det = real(*a, **kw)
        det.words = []
        return det

    monkeypatch.setattr(detect, "detect_words", blind)
    src = encapsulated(tmp_path / "pdf.dcm", pdf_with_text(REPORT))
    audit = scrub_file(src, tmp_path / "out.dcm", ScrubOptions(key=KEY))
    reasons = {h.reason for h in audit.hits}
    assert {"verify:header:PatientName", "verify:header:PatientBirthDate"} <= reasons
    assert audit.stage("verify").counts["found"] >= 2
    assert audit.stage("verify").counts["left_after_second_pass"] == 0
    out = pydicom.dcmread(tmp_path / "out.dcm")
    (page,) = render_pdf(bytes(out.EncapsulatedDocument)[:out.EncapsulatedDocumentLength])
    dark = page.max(axis=2) < 40
    for hit in audit.hits:
        b = hit.box
        assert dark[b.y0:b.y1, b.x0:b.x1].mean() > 0.95
    # without verify the miss stays: nothing redacted
    audit = scrub_file(src, tmp_path / "raw.dcm", ScrubOptions(key=KEY, verify=False))
    assert audit.hits == []
