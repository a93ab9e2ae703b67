"""Zip exports as input: read member by member in memory, never unpacked to disk."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pydicom

from conftest import pydicom_file
from pixelscrub import ScrubOptions
from pixelscrub.batch import default_report_path, run_batch
from pixelscrub.options import parse_region

KEY = b"zip-test-key-0123456789abcdefghij"
OPTS = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),), key=KEY)


def export_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(pydicom_file("CT_small.dcm"), "SMITH_JOHN/series1/ct.dcm")
        zf.write(pydicom_file("MR_small.dcm"), "SMITH_JOHN/series2/mr.dcm")
        zf.write(pydicom_file("reportsi.dcm"), "SMITH_JOHN/sr.dcm")
        zf.write(pydicom_file("dicomdirtests/DICOMDIR"), "DICOMDIR")
        zf.writestr("SMITH_JOHN/notes.txt", "not dicom")
        zf.writestr("../evil.dcm", b"x")
        zf.writestr("SMITH_JOHN/empty/", b"")
    return path


def test_zip_members_are_scrubbed_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    src = export_zip(tmp_path / "export.zip")
    out = tmp_path / "out"
    summary = run_batch([src], out, OPTS, jobs=2, progress="none")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert written == ["SMITH_JOHN/series1/ct.dcm", "SMITH_JOHN/series2/mr.dcm", "SMITH_JOHN/sr.dcm"]
    assert summary.failed == 2                      # the text file, the member that climbs out
    assert any("DICOMDIR left out" in w for w in summary.warnings)
    for rel in written:
        assert "PatientIdentityRemoved" in pydicom.dcmread(out / rel)
    recs = [json.loads(line) for line in default_report_path(out).read_text().splitlines()[:-1]]
    errors = sorted(r["error"] for r in recs if r["status"] == "failed")
    assert errors == ["SMITH_JOHN/notes.txt: input is not a DICOM Part 10 file",
                      "export.zip-member: zip member name leaves its folder"]
    # nothing was unpacked: no temp file of ours, and the zip is untouched
    assert not list((tmp_path / "tmp").rglob("*"))
    assert not (tmp_path / "evil.dcm").exists()
    # a re-run resumes from the journal, member by member
    assert run_batch([src], out, OPTS, jobs=2, progress="none").skipped == 3
