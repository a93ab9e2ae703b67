"""What a de-identified instance says about itself (PS3.15 E.1.1, PS3.3 C.7.1.1).

PatientIdentityRemoved, DeidentificationMethod (text) and
DeidentificationMethodCodeSequence with the CID 7050 codes of the profile and
every option applied, LongitudinalTemporalInformationModified and, when the
pipeline vouches for every frame, BurnedInAnnotation.
"""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .options import DeidOptions

__all__ = ["CID_7050", "method_codes", "write_marks"]

#: CID 7050 "De-identification Method" (PS3.16), scheme DCM.
CID_7050 = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "pixels_cleaned": ("113101", "Clean Pixel Data Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_long_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_long_modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_chars": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_id": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_id": ("113112", "Retain Institution Identity Option"),
}


def method_codes(options: DeidOptions, pixels_cleaned: bool) -> list[tuple[str, str]]:
    """(code value, meaning) of the profile and each option applied, in CID order."""
    used = {"basic"} | {name for name in CID_7050 if getattr(options, name, False)}
    if pixels_cleaned:
        used.add("pixels_cleaned")
    return [code for name, code in CID_7050.items() if name in used]


def write_marks(ds: Dataset, options: DeidOptions, *, version: str, pixels_cleaned: bool,
                burned_in_annotation: Optional[str]) -> list[tuple[str, str]]:
    """Set the de-identification attributes on the top-level dataset; returns the codes."""
    codes = method_codes(options, pixels_cleaned)
    ds.PatientIdentityRemoved = "YES"
    # LO values are at most 64 characters: one value per profile/option, then the tool.
    ds.DeidentificationMethod = [meaning[:64] for _, meaning in codes] + [f"pixelscrub {version}"]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    if options.retain_long_modified_dates:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    elif options.retain_long_full_dates:
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    if burned_in_annotation is not None:
        if burned_in_annotation not in ("YES", "NO"):
            raise ValueError("burned_in_annotation must be 'YES', 'NO' or None")
        ds.BurnedInAnnotation = burned_in_annotation
    return codes
