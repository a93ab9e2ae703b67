"""Pseudonyms from the key or a trial's CSV, and the re-identification map."""
from __future__ import annotations

import csv
import multiprocessing
import warnings

import pydicom
import pytest

from pixelscrub.errors import ScrubError
from pixelscrub.header import DeidOptions, check_reid_map_location, deidentify
from pixelscrub.header.plant import PLANTED, plant_phi
from pixelscrub.header.pseudonyms import (Pseudonym, append_reid_map, keyed_pseudonym,
                                          load_pseudonym_csv)
from tests.conftest import pydicom_file

KEY = b"test-key-0123456789abcdef"


def _planted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    plant_phi(ds)
    return ds


def test_keyed_pseudonym_is_stable_and_keyed():
    a = keyed_pseudonym("PID-1", KEY)
    assert a == keyed_pseudonym("PID-1", KEY) and a.startswith("PS-") and len(a) <= 64
    assert a != keyed_pseudonym("PID-2", KEY)
    assert a != keyed_pseudonym("PID-1", b"other-key-0123456789")


def test_csv_pseudonym(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text(f"original_id,research_id,research_name\n{PLANTED['PatientID']},SUBJ-007,Subject^Seven\n")
    ds = _planted()
    deidentify(ds, DeidOptions(pseudonym_csv=str(path)), key=KEY)
    assert ds.PatientID == "SUBJ-007" and str(ds.PatientName) == "Subject^Seven"


def test_csv_without_the_patient_fails_closed(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("OTHER,SUBJ-001\n")
    ds = _planted()
    with pytest.raises(ScrubError) as err:
        deidentify(ds, DeidOptions(pseudonym_csv=str(path)), key=KEY)
    assert err.value.reason == "pseudonym-missing"
    assert PLANTED["PatientID"] not in str(err.value)


def test_csv_rejects_conflicting_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("A,S1\nA,S2\n")
    with pytest.raises(ValueError, match="twice"):
        load_pseudonym_csv(str(path))


def test_reid_map_written_only_when_asked(tmp_path):
    path = tmp_path / "reid.csv"
    ds = _planted()
    deidentify(ds, DeidOptions(), key=KEY)
    assert not path.exists()
    for _ in range(2):
        ds = _planted()
        deidentify(ds, DeidOptions(reid_map=str(path)), key=KEY)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["pseudonym", "original_id", "original_name"]
    assert rows[1:] == [[ds.PatientID, PLANTED["PatientID"], PLANTED["PatientName"]]]


def _append_many(args):
    path, start = args
    for i in range(start, start + 25):
        append_reid_map(path, Pseudonym(f"PS-{i}", f"PS-{i}", "keyed"), f"ID-{i}", f"Name^{i}")


def test_reid_map_is_safe_across_processes(tmp_path):
    path = str(tmp_path / "reid.csv")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_append_many, [(path, 0), (path, 25), (path, 0), (path, 25)])
    rows = list(csv.reader(open(path)))
    assert rows[0][0] == "pseudonym"
    assert sorted(r[1] for r in rows[1:]) == sorted(f"ID-{i}" for i in range(50))


def test_reid_map_must_not_sit_in_the_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    check_reid_map_location(str(tmp_path / "reid.csv"), str(out))
    for bad in (out / "reid.csv", out / "sub" / "reid.csv", out):
        with pytest.raises(ScrubError):
            check_reid_map_location(str(bad), str(out))


def test_unreadable_csv_is_a_scrub_error(tmp_path):
    ds = _planted()
    with pytest.raises(ScrubError) as err:
        deidentify(ds, DeidOptions(pseudonym_csv=str(tmp_path / "missing.csv")), key=KEY)
    assert err.value.reason == "pseudonym-csv"
