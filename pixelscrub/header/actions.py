"""Apply the profile to every element of a dataset, nested sequences included.

Each public attribute gets the single action :func:`profile.resolve` picks:

* ``X`` remove, ``Z`` empty (an empty sequence for SQ), ``K`` keep,
* ``D`` a dummy value valid for the VR; for a sequence, its items are kept and
  every free-text value in them (names, LO/SH/ST/LT/UT/UC, ...) becomes a dummy,
  codes, numbers and geometry stay,
* ``C`` clean: dates shifted (Modified Dates option), free text through the PHI
  matcher, person names replaced; for a sequence, its items are cleaned that way,
* ``U`` keyed UID replacement (:mod:`uids`).

Attributes not in Table E.1-1 are kept, except: UIDs that are not well-known are
replaced (an instance UID can embed a date or a device serial), dates and
date-times are treated like the table's dates, person names get a dummy, group
lengths are dropped, and
private attributes go unless Retain Safe Private keeps them.  Overlay (60xx) and
curve (50xx) groups are removed whole, or kept and cleaned with Clean Graphics.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from .clean import clean_text
from .dates import shift_da, shift_dt
from .options import DeidOptions
from .profile import resolve, rule_for
from .pseudonyms import Pseudonym, keyed_pseudonym
from .uids import is_well_known, map_uid

__all__ = ["Run", "walk", "dummy_value", "TEXT_VRS"]

#: Free-text VRs: what a dummied sequence replaces and Clean passes to the matcher.
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "AE", "UR"})
_MAX_LEN = {"SH": 16, "AE": 16, "CS": 16, "LO": 64, "PN": 64, "UC": None, "ST": 1024,
            "LT": 10240, "UT": None, "UR": None}
#: Attributes of code sequences: vocabulary, not free text; kept in dummied sequences.
_CODE_KEYWORDS = frozenset({
    "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
    "LongCodeValue", "URNCodeValue", "ContextIdentifier", "MappingResource",
    "MappingResourceName", "ContextGroupExtensionFlag",
})
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_TIMEZONE_OFFSET = 0x00080201
_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {
    "PN": "ANONYMOUS", "AE": "ANONYMOUS", "CS": _DUMMY_TEXT, "LO": _DUMMY_TEXT, "SH": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT, "LT": _DUMMY_TEXT, "UT": _DUMMY_TEXT, "UC": _DUMMY_TEXT,
    "UR": "urn:pixelscrub:anonymized", "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "AS": "000Y", "IS": "0", "DS": "0",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0, "AT": 0,
}


@dataclass
class Run:
    """Everything one de-identification needs while it walks the dataset."""

    key: bytes
    options: DeidOptions
    pseudonym: Pseudonym
    original_patient_id: str
    original_patient_name: str
    shift: Optional[int] = None          # days, with the Modified Dates option
    terms: Optional[list[Any]] = None    # PHI terms for Clean; None: matcher unavailable
    pixels_cleaned: bool = False
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    columns: frozenset[str] = field(init=False)  # the option columns, computed once

    def __post_init__(self):
        self.columns = self.options.columns

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def dummy_value(vr: str, elem: DataElement, run: Run) -> Any:
    """A non-empty value valid for ``vr`` that carries nothing of the original."""
    if vr == "UI":
        values = elem.value if isinstance(elem.value, (list, MultiValue)) else [elem.value]
        return [map_uid(str(v), run.key) for v in values if v] or map_uid("dummy", run.key)
    if vr in _BINARY_VRS or vr in ("OB or OW", "OW or OB"):
        return b"\0\0"
    if " or " in vr:  # "US or SS" and the like: numbers either way
        return 0
    return _DUMMY.get(vr, _DUMMY_TEXT)


def walk(ds: Dataset, run: Run, mode: str = "normal", top: bool = False) -> None:
    """De-identify ``ds`` in place; ``mode`` is ``normal``, ``dummy`` or ``clean``."""
    _graphics_groups(ds, run)
    for elem in list(ds):
        tag = elem.tag
        if tag.group == 0x0002 or tag.is_private or _is_graphics_group(tag.group):
            continue
        if tag.element == 0x0000:
            del ds[tag]
            continue
        if tag in (_PATIENT_ID, _PATIENT_NAME):
            _patient(ds, elem, run, top)
            continue
        rule = rule_for(tag)
        if rule is None:
            _unlisted(ds, elem, run, mode)
        else:
            _act(ds, elem, resolve(rule, run.columns, tag), run, mode)
    _privates(ds, run)


def _items(elem: DataElement, run: Run, mode: str) -> None:
    for item in elem.value or ():
        walk(item, run, mode)


def _act(ds: Dataset, elem: DataElement, action: str, run: Run, mode: str) -> None:
    vr = elem.VR
    if action == "X":
        del ds[elem.tag]
        run.counts["removed"] += 1
    elif action == "Z":
        elem.value = Sequence() if vr == "SQ" else None
        run.counts["emptied"] += 1
    elif action == "K":
        run.counts["kept"] += 1
        if vr == "SQ":
            _items(elem, run, mode)
    elif action == "D":
        run.counts["dummied"] += 1
        if vr == "SQ":
            _items(elem, run, "clean" if mode == "clean" else "dummy")
        else:
            elem.value = dummy_value(vr, elem, run)
    elif action == "C":
        run.counts["cleaned"] += 1
        if vr == "SQ":
            _items(elem, run, "clean")
        else:
            _clean_value(ds, elem, run)
    elif action == "U":
        if vr == "SQ":
            _items(elem, run, mode)
        elif vr == "UI":
            _replace_uids(elem, run)
        else:
            elem.value = dummy_value(vr, elem, run)
            run.counts["dummied"] += 1
    else:
        raise ValueError(f"unknown profile action {action!r}")


def _replace_uids(elem: DataElement, run: Run) -> None:
    if elem.VM == 0:
        return
    if elem.VM > 1:
        elem.value = [map_uid(str(v), run.key) for v in elem.value]
    else:
        elem.value = map_uid(str(elem.value), run.key)
    run.counts["uids_replaced"] += elem.VM


def _date_value(ds: Dataset, elem: DataElement, run: Run) -> None:
    """A date/time attribute under the date options (C: shift by the patient's days)."""
    if run.options.retain_long_full_dates:
        return
    if run.shift is None:
        del ds[elem.tag]
        run.counts["removed"] += 1
        return
    if elem.VR == "TM" or elem.VM == 0:
        return  # whole-day shifts leave times of day as they are
    values = list(elem.value) if elem.VM > 1 else [elem.value]
    shift = shift_da if elem.VR == "DA" else shift_dt
    shifted = [shift(str(v), run.shift) for v in values]
    if any(s is None for s in shifted):
        elem.value = None  # not a full date: cannot be shifted faithfully
        run.note("a date without a full year-month-day was emptied")
    else:
        elem.value = shifted if len(shifted) > 1 else shifted[0]


def _clean_value(ds: Dataset, elem: DataElement, run: Run) -> None:
    vr = elem.VR
    if vr in ("DA", "DT", "TM"):
        _date_value(ds, elem, run)
    elif elem.tag == _TIMEZONE_OFFSET:
        pass  # a whole-day shift leaves the UTC offset as it is
    elif vr in _BINARY_VRS:
        del ds[elem.tag]  # binary timestamps cannot be shifted faithfully
        run.counts["removed"] += 1
    elif vr == "PN":
        elem.value = _DUMMY["PN"]
    elif vr in TEXT_VRS or vr == "CS":
        _clean_text_elem(elem, run)
    # numbers, codes and binary values carry no free text: kept


def _clean_if_text(ds: Dataset, elem: DataElement, run: Run) -> None:
    """Clean a free-text or name value that the profile keeps (graphics, safe privates)."""
    if elem.VR in TEXT_VRS or elem.VR == "PN":
        _clean_value(ds, elem, run)
        run.counts["cleaned"] += 1


def _clean_text_elem(elem: DataElement, run: Run) -> None:
    if elem.VM == 0:
        return
    values = list(elem.value) if elem.VM > 1 else [elem.value]
    cleaned = [clean_text(str(v), run.terms, _MAX_LEN.get(elem.VR)) for v in values]
    if any(c is None for c in cleaned):
        run.note("PHI matcher unavailable: text to clean was replaced by a dummy")
        elem.value = dummy_value(elem.VR, elem, run)
        return
    elem.value = cleaned if len(cleaned) > 1 else cleaned[0]


def _unlisted(ds: Dataset, elem: DataElement, run: Run, mode: str) -> None:
    """An attribute Table E.1-1 does not name (module doc)."""
    vr = elem.VR
    if vr == "SQ":
        _items(elem, run, mode)
    elif vr == "UI":
        if not run.options.retain_uids and not _is_class_like(elem) and any(
                not is_well_known(str(v)) for v in (elem.value if elem.VM > 1 else [elem.value]) if v):
            _replace_uids(elem, run)
    elif vr in ("DA", "DT", "TM"):
        _date_value(ds, elem, run)
    elif vr == "PN":  # a person's name the table does not list (e.g. Evaluator Name)
        if elem.VM:
            elem.value = _DUMMY["PN"]
            run.counts["dummied"] += 1
    elif mode != "normal" and vr in TEXT_VRS and elem.VM and elem.keyword not in _CODE_KEYWORDS:
        if mode == "dummy":
            elem.value = dummy_value(vr, elem, run)
            run.counts["dummied"] += 1
        else:
            _clean_value(ds, elem, run)
            run.counts["cleaned"] += 1


def _is_class_like(elem: DataElement) -> bool:
    """UIDs naming a class, syntax or coding scheme rather than an instance."""
    kw = elem.keyword or ""
    return any(part in kw for part in ("ClassUID", "SyntaxUID", "CodingScheme", "ContextUID",
                                       "MappingResourceUID", "ApplicationContext"))


def _patient(ds: Dataset, elem: DataElement, run: Run, top: bool) -> None:
    """PatientID / PatientName become the pseudonym (nested copies too)."""
    value = "" if elem.VM == 0 else str(elem.value)
    is_id = elem.tag == _PATIENT_ID
    if top or value == (run.original_patient_id if is_id else run.original_patient_name):
        elem.value = run.pseudonym.patient_id if is_id else run.pseudonym.patient_name
    elif not value:
        return
    else:  # another patient's identity inside a sequence
        elem.value = keyed_pseudonym(value, run.key, run.options.pseudonym_prefix) if is_id else _DUMMY["PN"]
        run.note("a nested PatientID/PatientName of another patient was replaced")
    run.counts["pseudonymized"] += 1


def _is_graphics_group(group: int) -> bool:
    """Overlay (6000-601E) and curve (5000-501E) repeating groups (even groups only)."""
    return (group >> 8) in (0x50, 0x60) and group % 2 == 0 and group & 0xFF <= 0x1E


def _graphics_groups(ds: Dataset, run: Run) -> None:
    """Overlay (60xx) and curve (50xx) repeating groups, each handled as a whole."""
    groups: dict[int, list[int]] = {}
    for tag in ds.keys():
        if _is_graphics_group(tag.group):
            groups.setdefault(tag.group, []).append(tag)
    for group, tags in groups.items():
        probe = (group << 16) | 0x3000   # Overlay Data (60xx,3000) / Curve Data (50xx,xxxx)
        action = resolve(rule_for(probe), run.columns, probe)
        if action == "C" and group >> 8 == 0x60 and not run.pixels_cleaned:
            action = "X"
            run.note("overlays removed: Clean Graphics keeps them only after the pixel stage cleaned them")
        if action != "C":
            for tag in tags:
                del ds[tag]
            run.counts["removed"] += len(tags)
            continue
        for tag in tags:
            _clean_if_text(ds, ds[tag], run)


def _privates(ds: Dataset, run: Run) -> None:
    """Private attributes go, except the safe list under Retain Safe Private."""
    private = [t for t in ds.keys() if t.is_private]
    if not private:
        return
    safe = {(s.creator, s.group, s.element) for s in run.options.safe_private} \
        if run.options.retain_safe_private else set()
    keep_blocks = set()
    for tag in private:
        if tag.element <= 0x00FF:  # private creators (and invalid 0001-000F): below
            continue
        block = Tag(tag.group, tag.element >> 8)
        creator = ds.get(block)
        name = str(creator.value).strip() if creator is not None and creator.VM else None
        if name is not None and (name, tag.group, tag.element & 0xFF) in safe:
            keep_blocks.add(block)
            _clean_if_text(ds, ds[tag], run)
            run.counts["kept"] += 1
            continue
        del ds[tag]
        run.counts["private_removed"] += 1
    for tag in private:
        if tag.element <= 0x00FF and tag not in keep_blocks and tag in ds:
            del ds[tag]
            run.counts["private_removed"] += 1
