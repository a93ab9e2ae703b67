"""PHI terms from headers: every written form of names, IDs, dates and times."""
from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import pydicom_file
from pixelscrub.phi_terms import (PhiTerm, date_terms, name_terms, phi_terms_from_header,
                                  time_terms)


def _texts(terms, attribute=None):
    return {t.text for t in terms if attribute is None or t.attribute == attribute}


def test_name_forms_cover_common_orders_and_initials():
    terms = name_terms("DOE^JOHN^A^DR^JR", "PatientName")
    texts = _texts(terms)
    for form in ("DOE, JOHN", "JOHN DOE", "J. DOE", "DOE J", "JOHN A DOE", "DOE, JOHN A",
                 "DR JOHN DOE", "J.D.", "DOE", "JOHN"):
        assert form in texts, form
    by_text = {t.text: t for t in terms}
    assert by_text["DOE, JOHN"].full and by_text["DOE, JOHN"].standalone
    assert not by_text["J.D."].standalone          # "JD" alone is not redacted
    assert by_text["J.A.D."].standalone             # three initials are specific enough
    assert by_text["DOE"].standalone and not by_text["DOE"].full
    assert all(t.kind == "name" and t.attribute == "PatientName" for t in terms)


def test_short_name_components_need_context():
    by_text = {t.text: t for t in name_terms("LI^WEI", "PatientName")}
    assert not by_text["LI"].standalone
    assert by_text["WEI"].standalone
    assert by_text["LI, WEI"].standalone


def test_single_component_name_is_a_full_term():
    by_text = {t.text: t for t in name_terms("GAIN", "PatientName")}
    assert by_text["GAIN"].full


def test_date_forms_include_numeric_and_month_names():
    texts = _texts(date_terms("19800115", "PatientBirthDate"))
    for form in ("19800115", "1980-01-15", "01/15/1980", "15/01/1980", "15.01.1980",
                 "15-Jan-1980", "15-JAN-80", "Jan 15 1980", "15 January 1980", "1/15/80",
                 "15 janvier 1980", "15. Januar 1980", "15 de enero de 1980",
                 "15 gennaio 1980", "15 januari 1980", "15 de janeiro de 1980"):
        assert form in texts, form
    assert date_terms("", "StudyDate") == []
    assert date_terms("19801345", "StudyDate") == []


def test_time_forms():
    texts = _texts(time_terms("143005.123", "StudyTime"))
    assert {"14:30:05", "14:30", "2:30 PM", "143005"} <= texts
    assert time_terms("14", "StudyTime") == []


def _header():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN^A^DR^JR"
    ds.PatientID = "1O2345B7"
    ds.PatientBirthDate = "19800115"
    ds.StudyDate = "20240302"
    ds.StudyTime = "143005"
    ds.AccessionNumber = "ACC998877"
    ds.StudyID = "12"
    ds.IssuerOfPatientID = "SAINT MARY"
    ds.InstitutionName = "Saint Mary Hospital"
    ds.InstitutionAddress = "12 Oak Street, Springfield"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.OperatorsName = ["SMITH^ANNA", "BROWN^TOM"]
    ds.PatientTelephoneNumbers = "555-123-4567"
    ds.StationName = "US-ROOM3"
    item = Dataset()
    item.PatientID = "OTHER777"
    ds.OtherPatientIDsSequence = Sequence([item])
    ds.SeriesDescription = "AX T1"   # not identifying: no term
    return ds


def test_header_terms_cover_identifying_attributes():
    terms = phi_terms_from_header(_header())
    attrs = {t.attribute for t in terms}
    assert {"PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime",
            "AccessionNumber", "IssuerOfPatientID", "InstitutionName", "InstitutionAddress",
            "ReferringPhysicianName", "OperatorsName", "PatientTelephoneNumbers",
            "StationName"} <= attrs
    assert "SeriesDescription" not in attrs
    texts = _texts(terms)
    assert {"DOE, JOHN", "1O2345B7", "15.01.1980", "14:30", "ACC998877", "OTHER777",
            "HOUSE, GREGORY", "BROWN, TOM", "12 Oak Street", "Springfield", "5551234567"} <= texts
    # patient attributes come first, so ties are reported against the patient
    assert terms[0].attribute == "PatientName"
    # a two-digit StudyID is too unspecific to redact alone
    study_id = [t for t in terms if t.attribute == "StudyID"]
    assert study_id and not any(t.standalone for t in study_id)


def test_header_terms_from_pydicom_files():
    ct = phi_terms_from_header(pydicom.dcmread(pydicom_file("CT_small.dcm")))
    texts = _texts(ct)
    assert {"CompressedSamples, CT1", "CT1 CompressedSamples", "CompressedSamples"} <= texts
    assert "1CT1" in _texts(ct, "PatientID")
    assert {"2004-01-19", "19.01.2004", "01/19/2004", "19-Jan-2004"} <= _texts(ct, "StudyDate")
    assert {"07:27:30", "07:27"} <= _texts(ct, "StudyTime")
    assert "JFK IMAGING CENTER" in _texts(ct, "InstitutionName")
    mr = phi_terms_from_header(pydicom.dcmread(pydicom_file("MR_small.dcm")))
    assert {"CompressedSamples, MR1", "MR1 CompressedSamples"} <= _texts(mr, "PatientName")
    assert "4MR1" in _texts(mr, "PatientID")
    assert "26.08.2004" in _texts(mr, "StudyDate")
    assert all(isinstance(t, PhiTerm) for t in ct + mr)


def test_multiword_and_caretless_names_give_their_words():
    by_text = {t.text: t for t in name_terms("VAN DER BERG^ANNA", "PatientName")}
    assert by_text["BERG"].standalone and "DER" not in by_text and "VAN" not in by_text
    texts = {t.text for t in name_terms("DOE, JOHN", "PatientName")}
    assert {"DOE, JOHN", "DOE", "JOHN"} <= texts


def test_terms_never_load_deferred_pixel_data():
    """A cine's deferred Pixel Data must stay on disk while terms are collected."""
    from pixelscrub.dicomio import read_dataset

    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None  # deferred
    terms = phi_terms_from_header(ds)
    assert terms
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None
