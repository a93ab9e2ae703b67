"""Synthetic PHI planted into real files, for the tests and the benchmark.

Every planted value is an invented, distinctive string, so a scan of the
written bytes for it cannot hit by chance.  :func:`plant_phi` puts them into
the attributes where identities hide in practice (patient and physician names,
IDs, institution, dates, free text, nested sequences, a private block, an
SR-like content tree) and returns the strings that must not survive.
"""
from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

__all__ = ["PLANTED", "PLANTED_UID_ROOT", "plant_phi"]

#: attribute (or place) -> planted value
PLANTED = {
    "PatientName": "Zyxwort^Quillaby",
    "PatientID": "PID-88341207",
    "OtherPatientID": "OTHER-5512093",
    "PatientBirthDate": "19610723",
    "PatientAddress": "12 Ropewalk Street Bexley",
    "PatientTelephoneNumbers": "555-0199-7721",
    "ReferringPhysicianName": "Drabovich^Helmut",
    "PerformingPhysicianName": "Osterhaut^Renske",
    "OperatorsName": "Klemperova^Ilse",
    "InstitutionName": "Saint Quillaby Infirmary",
    "InstitutionAddress": "77 Fennimore Lane Bexley",
    "StationName": "CTSCAN-QX7",
    "DeviceSerialNumber": "SN-4471-QX",
    "AccessionNumber": "ACC99812734",
    "StudyID": "SID77123",
    "StudyDescription": "CT chest Zyxwort follow-up",
    "ImageComments": "seen by Drabovich on ward 9",
    "RequestedProcedureID": "RPID7781230",
    "ScheduledProcedureStepID": "SPS55120981",
    "PrivateText": "Zyxwort private note",
    "SRText": "Patient Zyxwort seen by Dr Drabovich",
    "SRPerson": "Osterhaut^Renske",
}
#: Planted UIDs share this root, so any that survive are easy to find.
PLANTED_UID_ROOT = "1.2.826.0.1.3680043.9.7777."
_STUDY_DATE = "20190314"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def plant_phi(ds: Dataset, *, series: int = 1, instance: int = 1) -> list[str]:
    """Plant synthetic PHI into ``ds`` (in place); returns the values that must go.

    Files planted with the same ``series`` share Study and Series Instance UIDs,
    so grouping across files can be checked.
    """
    p = PLANTED
    ds.PatientName = p["PatientName"]
    ds.PatientID = p["PatientID"]
    ds.PatientBirthDate = p["PatientBirthDate"]
    ds.PatientAddress = p["PatientAddress"]
    ds.PatientTelephoneNumbers = p["PatientTelephoneNumbers"]
    other = Dataset()
    other.PatientID = p["OtherPatientID"]
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.ReferringPhysicianName = p["ReferringPhysicianName"]
    ds.PerformingPhysicianName = p["PerformingPhysicianName"]
    ds.OperatorsName = p["OperatorsName"]
    ds.InstitutionName = p["InstitutionName"]
    ds.InstitutionAddress = p["InstitutionAddress"]
    ds.StationName = p["StationName"]
    ds.DeviceSerialNumber = p["DeviceSerialNumber"]
    ds.AccessionNumber = p["AccessionNumber"]
    ds.StudyID = p["StudyID"]
    ds.StudyDescription = p["StudyDescription"]
    ds.ImageComments = p["ImageComments"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime, ds.SeriesTime, ds.ContentTime = "101500", "102000", "102512"

    root = PLANTED_UID_ROOT
    ds.StudyInstanceUID = f"{root}{series}"
    ds.SeriesInstanceUID = f"{root}{series}.1"
    ds.SOPInstanceUID = f"{root}{series}.1.{instance}"
    ds.FrameOfReferenceUID = f"{root}{series}.9"
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    req = Dataset()
    req.RequestedProcedureID = p["RequestedProcedureID"]
    req.ScheduledProcedureStepID = p["ScheduledProcedureStepID"]
    req.StudyInstanceUID = ds.StudyInstanceUID
    ds.RequestAttributesSequence = Sequence([req])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management SOP Class
    ref.ReferencedSOPInstanceUID = f"{root}{series}.5"
    ds.ReferencedStudySequence = Sequence([ref])

    block = ds.private_block(0x0009, "ACME PHI 1.0", create=True)
    block.add_new(0x01, "LO", p["PrivateText"])
    block.add_new(0x02, "DS", "42")

    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    text.ConceptNameCodeSequence = Sequence([_code("121106", "DCM", "Comment")])
    text.TextValue = p["SRText"]
    person = Dataset()
    person.RelationshipType, person.ValueType = "HAS OBS CONTEXT", "PNAME"
    person.ConceptNameCodeSequence = Sequence([_code("121008", "DCM", "Person Observer Name")])
    person.PersonName = p["SRPerson"]
    date = Dataset()
    date.RelationshipType, date.ValueType = "CONTAINS", "DATE"
    date.ConceptNameCodeSequence = Sequence([_code("111060", "DCM", "Study Date")])
    date.Date = _STUDY_DATE
    ds.ContentSequence = Sequence([text, person, date])

    secret = list(p.values())
    secret += [part for v in p.values() if "^" in v for part in v.split("^")]
    secret += [p["PatientBirthDate"], root]
    return secret
