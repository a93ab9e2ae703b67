"""PHI terms taken from a DICOM header, in the forms they are written on images.

Burned-in text rarely copies the header verbatim: ``DOE^JOHN`` is shown as
"DOE, JOHN", "John Doe" or "J. DOE", ``19800115`` as "15-Jan-1980" or
"01/15/1980".  This module expands every identifying header value into those
written forms, so the matcher only has to compare OCR text with strings.

Which attributes count is data (``models/v1/match.json``, ``header``): every PN
element (at any depth, also in sequences and private elements) is a name, every
DA/DT/TM element a date or time, and the listed keywords are IDs, free text,
addresses and phone numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .assets import load_json

__all__ = ["PhiTerm", "phi_terms_from_header", "name_terms", "date_terms", "time_terms",
           "month_names"]


@dataclass(frozen=True)
class PhiTerm:
    """One written form of one identifying header value.

    ``full``: the form stands for the whole header value (a full name, the whole
    ID or date); only full forms may redact words that are all on the allowlist.
    ``standalone``: the form is identifying on its own; if False (initials, a
    two-letter given name, a 3-digit study ID) it is a hit only next to other PHI.
    ``min_score``: an extra similarity floor (0..100) on top of ``match.json``.
    """

    text: str
    attribute: str
    kind: str
    full: bool = True
    standalone: bool = True
    min_score: float = 0.0


# Patient-describing attributes first: on a tie the matcher reports the first term.
_PRIORITY = ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientNames",
             "OtherPatientIDs", "PatientBirthName", "PatientMotherBirthName",
             "AccessionNumber", "PatientAddress", "PatientTelephoneNumbers",
             "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate",
             "AcquisitionTime", "ContentDate", "ContentTime", "AcquisitionDateTime")

_ALNUM = re.compile(r"[^\W_]")

#: Name particles: part of a name, never identifying alone.
_PARTICLES = frozenset(["van", "von", "der", "den", "de", "da", "di", "del", "della", "du",
                        "le", "la", "dos", "das", "ten", "ter", "bin", "ibn", "al", "el",
                        "mc", "mac", "st", "ste", "y"])


def _alnum_len(text: str) -> int:
    return len(_ALNUM.findall(text))


def month_names() -> dict[str, list[list[str]]]:
    """Month names by language code: 12 lists, full name first then abbreviations."""
    return {k: v for k, v in load_json("month_names.json").items() if not k.startswith("_")}


def _params() -> dict[str, Any]:
    return load_json("match.json")


# --------------------------------------------------------------------------- names

def _name_groups(value: Any) -> list[list[str]]:
    """[family, given, middle, prefix, suffix] for each group (alphabetic, ideographic, phonetic)."""
    groups = []
    for group in str(value).split("="):
        parts = [" ".join(p.split()) for p in group.split("^")][:5]
        parts += [""] * (5 - len(parts))
        if any(parts):
            groups.append(parts)
    return groups


def name_terms(value: Any, attribute: str) -> list[PhiTerm]:
    """Every written form of a person name (PN value or ``^``-separated string)."""
    p = _params()
    min_comp = p["min_component_length"]
    out: list[PhiTerm] = []

    def add(text: str, *, full: bool, standalone: bool = True) -> None:
        text = " ".join(text.replace(" ,", ",").split()).strip(" ,")
        if _alnum_len(text) >= p["min_key_length"]:
            out.append(PhiTerm(text, attribute, "name", full, standalone))

    for fam, giv, mid, pre, suf in _name_groups(value):
        if not fam and not giv:
            continue
        if fam and giv:
            g0, f0, m0 = giv[0], fam[0], mid[:1]
            for form in (f"{fam}, {giv}", f"{giv} {fam}", f"{fam}, {giv} {mid}",
                         f"{giv} {mid} {fam}", f"{giv} {m0}. {fam}" if m0 else "",
                         f"{fam} {giv} {mid}", f"{pre} {giv} {fam}", f"{pre} {fam}" if pre else "",
                         f"{giv} {fam} {suf}", f"{fam}, {giv} {suf}",
                         f"{pre} {giv} {mid} {fam} {suf}",
                         "^".join((fam, giv, mid, pre, suf)).rstrip("^")):
                if form.strip():
                    add(form, full=True)
            # A surname with the given initial still names the person.
            for form in (f"{g0}. {fam}", f"{fam}, {g0}.", f"{fam} {g0}",
                         f"{g0}. {m0}. {fam}" if m0 else "",
                         f"{fam}, {g0}. {m0}." if m0 else "", f"{pre} {g0}. {fam}"):
                if form.strip():
                    add(form, full=False, standalone=_alnum_len(fam) >= min_comp)
            initials = [f"{g0}.{f0}.", f"{f0}.{g0}."]
            if m0:
                initials.append(f"{g0}.{m0}.{f0}.")
            for form in initials:
                add(form, full=False,
                    standalone=_alnum_len(form) >= p["min_initials_standalone"])
        # Each component alone: a surname alone on a line is PHI; a short one is
        # PHI only next to other PHI.
        single = [c for c in (fam, giv) if c]
        for comp in (fam, giv, mid):
            if not comp:
                continue
            whole = len(single) == 1 and comp == single[0]
            add(comp, full=whole, standalone=_alnum_len(comp) >= min_comp)
            # "VAN DER BERG", or a PN written "DOE, JOHN" without carets
            words = [w.strip(".,;") for w in comp.replace(",", " ").split()]
            if len(words) > 1:
                for w in words:
                    if _alnum_len(w) >= min_comp and w.casefold() not in _PARTICLES:
                        add(w, full=False)
    return out


# --------------------------------------------------------------------------- dates

def _date_parts(value: str) -> tuple[int, int, int] | None:
    digits = re.sub(r"\D", "", value)[:8]
    if len(digits) != 8:
        return None
    y, m, d = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if not (1 <= m <= 12 and 1 <= d <= 31 and y > 0):
        return None
    return y, m, d


def date_terms(value: str, attribute: str) -> list[PhiTerm]:
    """A DA value (``YYYYMMDD``) in every common written form, local month names too."""
    parts = _date_parts(str(value))
    if parts is None:
        return []
    y, m, d = parts
    yy = f"{y % 100:02d}"
    Y, M, D = f"{y:04d}", f"{m:02d}", f"{d:02d}"
    forms = [f"{Y}{M}{D}", f"{Y}-{M}-{D}", f"{Y}/{M}/{D}", f"{Y}.{M}.{D}",
             f"{M}/{D}/{Y}", f"{D}/{M}/{Y}", f"{D}.{M}.{Y}", f"{D}-{M}-{Y}", f"{M}-{D}-{Y}",
             f"{m}/{d}/{Y}", f"{d}/{m}/{Y}", f"{d}.{m}.{Y}",
             f"{M}/{D}/{yy}", f"{D}/{M}/{yy}", f"{m}/{d}/{yy}", f"{d}/{m}/{yy}",
             f"{D}.{M}.{yy}", f"{d}.{m}.{yy}", f"{D}-{M}-{yy}", f"{D}{M}{Y}", f"{M}{D}{Y}"]
    partial: list[str] = []  # month and year only: not the whole value
    seen_names: set[str] = set()
    for lang, months in month_names().items():
        for name in months[m - 1]:
            if name in seen_names:
                continue
            seen_names.add(name)
            # written as that language writes it: "Januar", "janvier"
            cap = name.capitalize() if lang in ("en", "de") else name
            forms += [f"{D}-{cap}-{Y}", f"{D}-{name.upper()}-{yy}", f"{d} {cap} {Y}",
                      f"{cap} {d} {Y}", f"{cap} {d}, {Y}", f"{D}{name.upper()}{Y}",
                      f"{d}. {cap} {Y}", f"{Y}-{cap}-{D}"]
            partial.append(f"{cap} {Y}")
            if lang in ("es", "pt"):
                forms.append(f"{d} de {name} de {Y}")
    seen: set[str] = set()
    out = []
    for f in forms + partial:
        if f not in seen:
            seen.add(f)
            out.append(PhiTerm(f, attribute, "date", full=f not in partial))
    return out


def time_terms(value: str, attribute: str) -> list[PhiTerm]:
    """A TM value (``HHMMSS.frac``) as 14:30:05, 14:30, 143005 and 2:30 PM."""
    digits = re.sub(r"\D", "", str(value).split(".")[0])
    if len(digits) < 4:
        return []
    hh, mm, ss = int(digits[:2]), int(digits[2:4]), digits[4:6]
    if hh > 23 or mm > 59:
        return []
    h12 = hh % 12 or 12
    ampm = "AM" if hh < 12 else "PM"
    H, Mi = f"{hh:02d}", f"{mm:02d}"
    forms = [f"{H}:{Mi}", f"{hh}:{Mi}", f"{h12}:{Mi} {ampm}", f"{H}{Mi}"]
    if ss:
        forms = [f"{H}:{Mi}:{ss}", f"{hh}:{Mi}:{ss}", f"{h12}:{Mi}:{ss} {ampm}",
                 f"{H}{Mi}{ss}"] + forms
    out, seen = [], set()
    for f in forms:
        if f not in seen:
            seen.add(f)
            out.append(PhiTerm(f, attribute, "time", full=True))
    return out


# ------------------------------------------------------------------ ids and text

def _id_terms(value: str, attribute: str, kind: str) -> list[PhiTerm]:
    p = _params()
    value = " ".join(value.split())
    n = _alnum_len(value)
    if n < p["min_key_length"]:
        return []
    numeric = value.isdigit()
    standalone = n >= 3 and not (numeric and n < p["min_standalone_numeric_id"])
    out = [PhiTerm(value, attribute, kind, True, standalone)]
    if numeric and value.startswith("0"):
        short = value.lstrip("0")
        if len(short) >= p["min_standalone_numeric_id"]:
            out.append(PhiTerm(short, attribute, kind, True, True))
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        if digits != value and len(digits) >= 7:
            out.append(PhiTerm(digits, attribute, kind, True, True))
    return out


def _text_terms(value: str, attribute: str, kind: str) -> list[PhiTerm]:
    p = _params()
    value = " ".join(value.replace("^", " ").split())
    if _alnum_len(value) < p["min_key_length"]:
        return []
    out = [PhiTerm(value, attribute, kind, True, _alnum_len(value) >= 3)]
    if kind == "address":
        for part in re.split(r"[\^,;\n\r]+", value):
            part = part.strip()
            if part != value and _alnum_len(part) >= 4:
                out.append(PhiTerm(part, attribute, kind, False, True))
    return out


# ------------------------------------------------------------------------ header

def _values(elem) -> Iterator[str]:
    value = elem.value
    if value is None or value == "":
        return
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        for v in value:
            if v not in (None, ""):
                yield v
    else:
        yield value


_BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def _walk(ds) -> Iterator[Any]:
    """Every non-bulk element, sequences entered.  Bulk values (Pixel Data, overlay
    and waveform data) are skipped by their raw VR, before pydicom reads them: a
    deferred 1,000-frame Pixel Data must not be loaded just to look for names."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if tag.group in (0x0002, 0x7FE0) or getattr(raw, "VR", None) in _BULK_VRS:
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from _walk(item)
        else:
            yield elem


def _elem_terms(elem, kinds: dict[str, str]) -> Iterable[PhiTerm]:
    attribute = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
    for v in _values(elem):
        if elem.VR == "PN":
            yield from name_terms(v, attribute)
        elif elem.VR == "DA":
            yield from date_terms(str(v), attribute)
        elif elem.VR == "TM":
            yield from time_terms(str(v), attribute)
        elif elem.VR == "DT":
            s = str(v)
            yield from date_terms(s[:8], attribute)
            yield from time_terms(s[8:14], attribute)
        elif attribute in kinds:
            kind = kinds[attribute]
            if isinstance(v, bytes):
                v = v.decode("latin-1", "replace")
            if kind in ("id", "phone"):
                yield from _id_terms(str(v), attribute, kind)
            else:
                yield from _text_terms(str(v), attribute, kind)


def phi_terms_from_header(ds) -> list[PhiTerm]:
    """Every written form of every identifying value in ``ds`` (a pydicom Dataset).

    Values nested in sequences count too (e.g. OtherPatientIDsSequence).  Terms
    come patient-first so that a tie in matching reports the patient attribute.
    """
    kinds = {kw: kind for kind, kws in _params()["header"].items() if kind != "_doc"
             for kw in kws}
    terms: list[PhiTerm] = []
    seen: set[tuple[str, str, str]] = set()
    for elem in _walk(ds):
        if elem.tag.group in (0x0002, 0x7FE0) or elem.VR in ("OB", "OW", "OF", "OD", "UN"):
            continue
        for t in _elem_terms(elem, kinds):
            key = (t.text, t.attribute, t.kind)
            if key not in seen:
                seen.add(key)
                terms.append(t)
    rank = {a: i for i, a in enumerate(_PRIORITY)}
    terms.sort(key=lambda t: rank.get(t.attribute, len(rank)))
    return terms
