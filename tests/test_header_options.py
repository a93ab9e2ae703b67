"""The PS3.15 options keep, shift and clean what they say, and nothing more."""
from __future__ import annotations

import datetime as dt
import importlib
import re
import sys
import types
import warnings

import pydicom
import pytest
from hypothesis import given, settings, strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pixelscrub.header import DeidOptions, SafePrivate, deidentify
from pixelscrub.header.dates import MAX_SHIFT_DAYS, shift_da, shift_days, shift_dt
from pixelscrub.header.plant import PLANTED, plant_phi
from tests.conftest import pydicom_file

KEY = b"test-key-0123456789abcdef"


def _planted(name="CT_small.dcm", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(pydicom_file(name))
    plant_phi(ds, **kw)
    return ds


def _days(a: str, b: str) -> int:
    return (dt.datetime.strptime(b, "%Y%m%d") - dt.datetime.strptime(a, "%Y%m%d")).days


def _real_matcher_available() -> bool:
    try:
        importlib.import_module("pixelscrub.match")
        importlib.import_module("pixelscrub.phi_terms")
        return True
    except ImportError:
        return False


@pytest.fixture
def matcher(monkeypatch):
    """The real PHI matcher when it is on main; until then a stand-in with its interface."""
    if _real_matcher_available():
        return "real"
    terms_mod = types.ModuleType("pixelscrub.phi_terms")
    match_mod = types.ModuleType("pixelscrub.match")

    def phi_terms_from_header(ds):
        words = []
        for kw in ("PatientName", "PatientID", "ReferringPhysicianName", "PerformingPhysicianName"):
            words += re.split(r"[\^ ]+", str(ds.get(kw, "") or ""))
        return [w for w in words if len(w) > 2]

    def find_phi_in_text(text, terms, *, patterns=True):
        return [(m.start(), m.end(), "header") for t in terms
                for m in re.finditer(re.escape(t), text, re.IGNORECASE)]

    terms_mod.phi_terms_from_header = phi_terms_from_header
    match_mod.find_phi_in_text = find_phi_in_text
    monkeypatch.setitem(sys.modules, "pixelscrub.phi_terms", terms_mod)
    monkeypatch.setitem(sys.modules, "pixelscrub.match", match_mod)
    return "stand-in"


# --- dates -------------------------------------------------------------------------

def test_modified_dates_keep_intervals_across_files_of_one_patient():
    a = _planted()
    b = _planted("MR_small.dcm", series=2)
    b.StudyDate, b.ContentDate = "20200229", "20200302"
    opts = DeidOptions(retain_long_modified_dates=True)
    deidentify(a, opts, key=KEY)
    deidentify(b, opts, key=KEY)
    assert a.StudyDate != "20190314"
    assert _days(a.StudyDate, b.StudyDate) == _days("20190314", "20200229")
    assert _days(b.StudyDate, b.ContentDate) == 2
    assert a.StudyTime == "101500"                     # whole-day shift keeps times of day
    assert a.ContentSequence[2].Date == a.StudyDate    # SR dates move with the rest
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"
    assert a.PatientBirthDate in ("", None)            # birth date is never kept


def test_shift_is_keyed_and_stable():
    assert shift_days("PID-1", KEY) == shift_days("PID-1", KEY)
    shifts = {shift_days(f"PID-{i}", KEY) for i in range(50)}
    assert len(shifts) > 40 and all(-MAX_SHIFT_DAYS <= s <= -1 for s in shifts)
    assert shift_days("PID-1", KEY) != shift_days("PID-1", b"other-key-0123456789") or \
        shift_days("PID-2", KEY) != shift_days("PID-2", b"other-key-0123456789")


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1910, 1, 1)), st.dates(min_value=dt.date(1910, 1, 1)),
       st.integers(-MAX_SHIFT_DAYS, -1))
def test_shift_preserves_every_interval(d1, d2, days):
    s1, s2 = shift_da(d1.strftime("%Y%m%d"), days), shift_da(d2.strftime("%Y%m%d"), days)
    assert _days(s1, s2) == (d2 - d1).days
    assert _days(d1.strftime("%Y%m%d"), s1) == days


def test_datetime_shift_keeps_time_and_offset():
    assert shift_dt("20200301123456.789+0100", -1) == "20200229123456.789+0100"
    assert shift_dt("2020", -1) is None          # no day: cannot be shifted faithfully
    assert shift_da("20200301-20200305", -1) == "20200229-20200304"


def test_full_dates_keep_dates():
    ds = _planted()
    deidentify(ds, DeidOptions(retain_long_full_dates=True), key=KEY)
    assert ds.StudyDate == ds.ContentDate == ds.SeriesDate == "20190314"
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert not ds.PatientBirthDate


def test_without_date_options_dates_go():
    ds = _planted()
    deidentify(ds, DeidOptions(), key=KEY)
    assert not ds.StudyDate and "SeriesDate" not in ds and ds.ContentDate == "19000101"


# --- retain options ----------------------------------------------------------------

def test_retain_patient_characteristics():
    ds = _planted()
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "047Y", "61.5"
    deidentify(ds, DeidOptions(retain_patient_chars=True), key=KEY)
    assert (ds.PatientSex, ds.PatientAge, str(ds.PatientWeight)) == ("F", "047Y", "61.5")
    other = _planted()
    other.PatientSex, other.PatientAge = "F", "047Y"
    deidentify(other, DeidOptions(), key=KEY)
    assert not other.PatientSex and "PatientAge" not in other


def test_retain_device_identity():
    ds = _planted()
    deidentify(ds, DeidOptions(retain_device_id=True), key=KEY)
    assert ds.StationName == PLANTED["StationName"]
    assert ds.DeviceSerialNumber == PLANTED["DeviceSerialNumber"]
    plain = _planted()
    deidentify(plain, DeidOptions(), key=KEY)
    assert not plain.StationName and plain.DeviceSerialNumber == "ANONYMIZED"


def test_retain_institution_identity():
    ds = _planted()
    deidentify(ds, DeidOptions(retain_institution_id=True), key=KEY)
    assert ds.InstitutionName == PLANTED["InstitutionName"]
    assert ds.InstitutionAddress == PLANTED["InstitutionAddress"]


def test_retain_uids():
    ds = _planted()
    before = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
              ds.file_meta.MediaStorageSOPInstanceUID, ds.FrameOfReferenceUID)
    deidentify(ds, DeidOptions(retain_uids=True), key=KEY)
    after = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
             ds.file_meta.MediaStorageSOPInstanceUID, ds.FrameOfReferenceUID)
    assert after == before
    assert "113110" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]


def test_retain_safe_private_keeps_only_the_safe_list():
    ds = _planted()
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")        # B value: on the default safe list
    siemens.add_new(0x99, "LO", "whatever")    # not on it
    deidentify(ds, DeidOptions(retain_safe_private=True), key=KEY)
    assert ds.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == 1000
    assert 0x0019 in {t.group for t in ds.keys()}
    private = [t for t in ds.keys() if t.is_private]
    assert len(private) == 2  # the creator and the b-value
    assert not any(t.group == 0x0009 for t in ds.keys())
    with_custom = _planted()
    deidentify(with_custom, DeidOptions(retain_safe_private=True,
                                        safe_private=(SafePrivate("ACME PHI 1.0", 0x0009, 0x02),)),
               key=KEY)
    assert with_custom.private_block(0x0009, "ACME PHI 1.0")[0x02].value == 42
    assert 0x00091001 not in with_custom


def test_private_tags_removed_by_default():
    ds = _planted()
    deidentify(ds, DeidOptions(), key=KEY)
    assert not [t for t in ds.keys() if t.is_private]


# --- clean options -------------------------------------------------------------------

def test_clean_descriptors_replaces_phi_words_only(matcher):
    ds = _planted()
    ds.SeriesDescription = "Axial Drabovich"
    deidentify(ds, DeidOptions(clean_descriptors=True), key=KEY)
    assert "Zyxwort" not in ds.StudyDescription and ds.StudyDescription.startswith("CT chest")
    assert "follow-up" in ds.StudyDescription
    assert "Drabovich" not in ds.SeriesDescription and "Axial" in ds.SeriesDescription
    assert "Drabovich" not in str(ds.ImageComments) and "ward" in str(ds.ImageComments)


def test_without_clean_descriptors_descriptions_go():
    ds = _planted()
    deidentify(ds, DeidOptions(), key=KEY)
    assert "StudyDescription" not in ds and "ImageComments" not in ds


def test_clean_structured_content(matcher):
    ds = _planted()
    deidentify(ds, DeidOptions(clean_structured_content=True), key=KEY)
    text, person, date = ds.ContentSequence
    assert "Zyxwort" not in text.TextValue and "Drabovich" not in text.TextValue
    assert text.TextValue.startswith("Patient") and "seen by" in text.TextValue
    assert person.PersonName == "ANONYMOUS"
    assert date.Date == "19000101"  # no date option: dummy date
    codes = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
    assert "113104" in codes


def _with_graphics(ds):
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000022, "LO", "marker for Zyxwort")
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\xff" * 8)
    text = Dataset()
    text.UnformattedTextValue = "Zyxwort left knee"
    text.BoundingBoxAnnotationUnits = "PIXEL"
    layer = Dataset()
    layer.GraphicLayer = "LAYER1"
    layer.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([layer])
    return ds


def test_overlays_removed_whole_by_default():
    ds = _with_graphics(_planted())
    deidentify(ds, DeidOptions(), key=KEY, pixels_cleaned=True)
    assert not [t for t in ds.keys() if t.group == 0x6000]
    assert ds.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED"
    assert ds.GraphicAnnotationSequence[0].GraphicLayer == "LAYER1"


def test_clean_graphics_keeps_cleaned_overlays(matcher):
    ds = _with_graphics(_planted())
    report = deidentify(ds, DeidOptions(clean_graphics=True), key=KEY, pixels_cleaned=True)
    assert ds[0x60003000].value == b"\xff" * 8
    assert "Zyxwort" not in ds[0x60000022].value and "marker" in ds[0x60000022].value
    text = ds.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    assert "Zyxwort" not in text and "knee" in text
    assert "113103" in report.method_codes


def test_clean_graphics_without_clean_pixels_removes_overlays(matcher):
    ds = _with_graphics(_planted())
    report = deidentify(ds, DeidOptions(clean_graphics=True), key=KEY, pixels_cleaned=False)
    assert not [t for t in ds.keys() if t.group == 0x6000]
    assert any("overlays removed" in n for n in report.notes)


def test_clean_without_matcher_fails_closed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pixelscrub.match", None)  # import raises ImportError
    ds = _planted()
    report = deidentify(ds, DeidOptions(clean_descriptors=True), key=KEY)
    assert ds.StudyDescription == "ANONYMIZED"
    assert any("matcher unavailable" in n for n in report.notes)


@pytest.mark.skipif(not _real_matcher_available(), reason="pixelscrub.match not on main yet")
def test_clean_descriptors_with_the_real_matcher():
    ds = _planted()
    deidentify(ds, DeidOptions(clean_descriptors=True), key=KEY)
    assert "Zyxwort" not in ds.StudyDescription and "chest" in ds.StudyDescription
