"""Fake patients and the many ways scanners print their details.

Every value is drawn from a seeded ``numpy.random.Generator`` so a set is
reproducible. The header holds the DICOM form (``DOE^JOHN``, ``19800115``) and the
pixels one of the printed forms (``DOE, JOHN``, ``15-JAN-80``), as on real devices.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

__all__ = ["Identity", "make_identity", "format_name", "format_date", "format_time",
           "NAME_STYLES", "DATE_STYLES", "confusable"]

_FAMILY = ["DOE", "SMITH", "GARCIA", "NGUYEN", "OKAFOR", "MUELLER", "ROSSI", "KOWALSKI",
           "JOHANSSON", "TANAKA", "OBRIEN", "FERNANDES", "MARTIN", "DUBOIS", "WALKER",
           "HENDRIKS", "SILVA", "PETERSEN", "LINDQVIST", "ABERNATHY"]
_GIVEN = ["JOHN", "MARIA", "WEI", "AMARA", "KLAUS", "GIULIA", "PIOTR", "INGRID", "HIRO",
          "SEAN", "ANA", "PIERRE", "GRACE", "LUCAS", "FATIMA", "ELENA", "OMAR", "SOFIA",
          "MATEO", "NADIA"]
_INSTITUTIONS = ["ST MARY GENERAL HOSPITAL", "NORTHSIDE MEDICAL CENTER",
                 "LAKEVIEW CLINIC", "RIVERBEND WOMENS HEALTH", "CITY HEART INSTITUTE",
                 "HILLCREST IMAGING"]
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
           "DEC"]

#: Printed name forms: "DOE, JOHN", "DOE^JOHN", "John Doe", "DOE JOHN".
NAME_STYLES = ("comma", "caret", "given_first", "space")
#: Printed date forms.
DATE_STYLES = ("iso", "us", "eu_dot", "dd_mon_yy", "mon_dd_yyyy", "dicom")


@dataclass(frozen=True)
class Identity:
    """One fake patient and study."""

    family: str
    given: str
    patient_id: str
    birth_date: dt.date
    sex: str
    study_date: dt.date
    study_time: dt.time
    accession: str
    institution: str
    referring: str
    operator: str

    @property
    def dicom_name(self) -> str:
        return f"{self.family}^{self.given}"


def make_identity(rng: np.random.Generator) -> Identity:
    """A random identity; IDs use digits only so confusable forms can be made from them."""
    family = _FAMILY[rng.integers(len(_FAMILY))]
    given = _GIVEN[rng.integers(len(_GIVEN))]
    pid = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(7, 10))))
    if pid[0] == "0":
        pid = "1" + pid[1:]
    birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 75)))
    study = dt.date(2018, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 8)))
    t = dt.time(int(rng.integers(7, 19)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
    acc = f"A{study:%y%m%d}{int(rng.integers(1000, 9999))}"
    ref_family = _FAMILY[rng.integers(len(_FAMILY))]
    ref_given = _GIVEN[rng.integers(len(_GIVEN))]
    op_family = _FAMILY[rng.integers(len(_FAMILY))]
    return Identity(
        family=family, given=given, patient_id=pid, birth_date=birth,
        sex="MF"[int(rng.integers(2))], study_date=study, study_time=t, accession=acc,
        institution=_INSTITUTIONS[rng.integers(len(_INSTITUTIONS))],
        referring=f"{ref_family}^{ref_given}", operator=f"{op_family}^{ref_given[0]}",
    )


def format_name(family: str, given: str, style: str) -> str:
    if style == "comma":
        return f"{family}, {given}"
    if style == "caret":
        return f"{family}^{given}"
    if style == "given_first":
        return f"{given.title()} {family.title()}"
    if style == "space":
        return f"{family} {given}"
    raise ValueError(style)


def format_date(d: dt.date, style: str) -> str:
    if style == "iso":
        return f"{d:%Y-%m-%d}"
    if style == "us":
        return f"{d:%m/%d/%Y}"
    if style == "eu_dot":
        return f"{d:%d.%m.%Y}"
    if style == "dd_mon_yy":
        return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d:%y}"
    if style == "mon_dd_yyyy":
        return f"{_MONTHS[d.month - 1].title()} {d.day} {d.year}"
    if style == "dicom":
        return f"{d:%Y%m%d}"
    raise ValueError(style)


def format_time(t: dt.time, seconds: bool = True) -> str:
    return f"{t:%H:%M:%S}" if seconds else f"{t:%H:%M}"


_LOOKALIKE = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z"}


def confusable(patient_id: str, rng: np.random.Generator) -> str:
    """``patient_id`` with one or two digits swapped for look-alike letters (0->O, 8->B).

    This is how OCR often reads an ID, so a matcher must tolerate it.
    """
    idx = [i for i, c in enumerate(patient_id) if c in _LOOKALIKE and i > 0]
    if not idx:
        return patient_id
    chosen = rng.choice(idx, size=min(2, len(idx)), replace=False)
    chars = list(patient_id)
    for i in chosen:
        chars[int(i)] = _LOOKALIKE[chars[int(i)]]
    return "".join(chars)
