"""Pattern rules that find PHI without the header.

Headers are often stripped before the pixels are cleaned, so dates, times, long
IDs, phone numbers and labelled values ("DOB: ...", "Name: ...", "MRN ...") must
be found from their shape alone.  Every rule is written so that overlay
measurements survive: "12.5 cm", "TIS 0.4", "60 dB", "128x128", "W:400 L:40",
"Im: 23/120" and "1:1" match none of them.

Labels and month names are data (``models/v1/match.json`` ``labels``,
``models/v1/month_names.json``).
"""
from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator, Optional

from rapidfuzz.distance import Levenshtein

from .assets import load_json, load_words

__all__ = ["pattern_spans", "date_spans", "time_spans", "id_spans", "phone_spans",
           "email_spans", "label_spans", "ocr_digits", "dangling_label", "label_value_spans",
           "institution_spans", "is_institution_word", "person_name_spans", "name_affixes",
           "is_month_name", "label_ends", "misread_date_spans", "is_misread_label",
           "is_date_piece", "is_clock_time"]

Span = tuple[int, int, str]


#: Typographic quotes as OCR prints them ("Children’s") -> ASCII.
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'",
                         "\u201c": '"', "\u201d": '"'})


def _fold(text: str) -> str:
    """Accents stripped and typographic quotes made ASCII, same length as
    ``text`` so offsets still apply."""
    if text.isascii():
        return text
    out = []
    for c in text.translate(_QUOTES):
        d = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
        out.append(d if len(d) == 1 else c)
    return "".join(out)


# ------------------------------------------------------------------------ dates

@lru_cache(maxsize=1)
def _month_alternation() -> str:
    names: set[str] = set()
    for lang, months in load_json("month_names.json").items():
        if lang.startswith("_"):
            continue
        for variants in months:
            for n in variants:
                names.add(_fold(n))
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


def is_month_name(word: str) -> bool:
    """``word`` (stray punctuation aside) is a month name or abbreviation ("Jul", "MÄRZ")."""
    core = _fold(word.strip(" .,;-/"))
    return bool(core) and re.fullmatch(f"(?:{_month_alternation()})", core, re.IGNORECASE) is not None


_D = r"(?:0?[1-9]|[12]\d|3[01])"
_M = r"(?:0?[1-9]|1[0-2])"
_Y4 = r"(?:1[89]\d\d|20\d\d)"
_Y = r"(?:1[89]\d\d|20\d\d|\d\d)"
_NB = r"(?<![\w.,/:\-])"   # no number or word glued on the left
# ... nor on the right; a lone mark after it that starts nothing ("1982/", OCR's
# reading of the ground's edge) is no number glued on
_NA = r"(?!\w|[/:][\w/:]|[.,\-]\d)"


@lru_cache(maxsize=1)
def _date_res() -> list[re.Pattern]:
    mon = rf"(?:{_month_alternation()})\.?"
    lb = r"(?<![^\W\d_])"   # month name not glued to letters
    la = r"(?![^\W\d_])"
    sep = r"[\s\-./,]{0,3}"
    de = r"(?:\s+de)?"   # "15 de enero de 1980"
    pats = [
        rf"{_NB}{_Y4}-?{_M}-?{_D}T\d\d(?::?\d\d(?::?\d\d(?:\.\d+)?)?)?(?![\w:])",  # ISO datetime
        rf"{_NB}{_Y4}([-/.]){_M}\1{_D}{_NA}",                           # 1980-01-15
        rf"{_NB}{_Y4}\s?([-/.])\s?{_M}\s?\1\s?{_D}{_NA}",                 # 1980-01 -15 (OCR)
        rf"{_NB}{_D}\s?([-/.])\s?{_M}\s?\1\s?{_Y4}{_NA}",                 # 15 /01/1980 (OCR)
        rf"{_NB}{_Y4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_NA}",   # 19800115
        rf"{_NB}{_D}([-/.]){_M}\1{_Y}{_NA}",                            # 15/01/1980, 1/15/80
        rf"{_NB}{_M}([-/.]){_D}\1{_Y}{_NA}",                            # 01/15/1980
        rf"{_NB}(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2]){_Y4}{_NA}",   # 15011980
        rf"{_NB}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_Y4}{_NA}",   # 01151980
        rf"(?<![\w.])({_D}\.?{de}{sep}){lb}{mon}{la}{de}{sep}{_Y}{_NA}",    # 15-Jan-1980
        rf"{lb}{mon}{la}{sep}{_D}(?:st|nd|rd|th)?,?{sep}{_Y4}{_NA}",      # Jan 15, 1980
        rf"{_NB}{_Y4}[-/.\s]{lb}{mon}{la}[-/.\s]{_D}{_NA}",               # 1980-Jan-15
        rf"(?<![\w.]){lb}{mon}{la}[\s\-./,]{{1,3}}{_Y4}{_NA}",            # Jan 1980
        rf"(?<![\w.]){_D}[-./ ]{lb}{mon}{la}",                            # 13-APR-! (year unread)
        rf"{_NB}{_D}([-/]){_M}\1(?=\s|$)",                                # 18/06/ (year unread)
        rf"{_NB}{_M}([-/]){_D}\1(?=\s|$)",                                # 06/18/ (year unread)
    ]
    return [re.compile(p, re.IGNORECASE) for p in pats]


def date_spans(text: str) -> list[Span]:
    """Dates in numeric and month-name forms (several languages)."""
    folded = _fold(text)
    return [(m.start(), m.end(), "pattern:date") for r in _date_res()
            for m in r.finditer(folded)]


# Digits OCR takes for one another, in small or thin type.
_DIGIT_CONFUSIONS = {"0": "689", "6": "058", "8": "0369", "9": "08", "3": "8", "5": "68",
                     "1": "7", "7": "1"}
_DATE_SHAPES = [
    (re.compile(rf"{_NB}(?P<y>\d{{4}})([-/.])(?P<m>\d\d)\2(?P<d>\d\d){_NA}"), "ymd"),
    (re.compile(rf"{_NB}(?P<a>\d\d)([-/.])(?P<b>\d\d)\2(?P<y>\d{{4}}){_NA}"), "abY"),
]


def _may_be(digits: str, lo: int, hi: int) -> bool:
    """Whether ``digits``, each as read or as a digit it is taken for, can be a
    number from ``lo`` to ``hi``."""
    choices = (c + _DIGIT_CONFUSIONS.get(c, "") for c in digits)
    return any(lo <= int("".join(v)) <= hi for v in itertools.product(*choices))


def misread_date_spans(text: str) -> list[Span]:
    """Dates with digits misread: the shape of a date ("2619-67-63", read for
    2019-07-03 in a thin face) whose fields become a valid year, month and day
    when misread digits are put back (0/6/8/9, 3/8, 5/6, 1/7).  "32/01/1980"
    and "15/13/1980" are no dates: no confusion makes them one."""
    out = []
    for rx, order in _DATE_SHAPES:
        for m in rx.finditer(text):
            year = _may_be(m.group("y"), 1880, 2099)
            if order == "ymd":
                ok = year and _may_be(m.group("m"), 1, 12) and _may_be(m.group("d"), 1, 31)
            else:
                a, b = m.group("a"), m.group("b")
                ok = year and ((_may_be(a, 1, 31) and _may_be(b, 1, 12))
                               or (_may_be(a, 1, 12) and _may_be(b, 1, 31)))
            if ok:
                out.append((m.start(), m.end(), "pattern:date"))
    return out


# ------------------------------------------------------------------------ times

_TIME_RES = [
    # 14:30:05, 14:30:05.123, 2:30:05 PM
    re.compile(r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
               r"(?:\s?[AaPp]\.?[Mm]\b\.?)?(?![\d:])"),
    # 14:30 (two-digit hour: "1:10" may be a scale ratio)
    re.compile(r"(?<![\w:.])(?:[01]\d|2[0-3]):[0-5]\d(?:\s?[AaPp]\.?[Mm]\b\.?)?(?![\d:])"),
    # 2:30 PM, 2.30pm
    re.compile(r"(?<![\w:.])(?:0?[1-9]|1[0-2])[:.][0-5]\d\s?[AaPp]\.?[Mm]\b\.?"),
    # 14h30
    re.compile(r"(?<![\w:.])(?:[01]?\d|2[0-3])h[0-5]\d(?![\w:])"),
]


def time_spans(text: str) -> list[Span]:
    """Clock times: 14:30:05, 14:30, 2:30 PM, 14h30."""
    return [(m.start(), m.end(), "pattern:time") for r in _TIME_RES for m in r.finditer(text)]


# ------------------------------------------------------------------ IDs, phones

_LONG_DIGITS = re.compile(r"(?<![\w.,])\d{6,}(?![\w]|[.,]\d)")
_MIXED = re.compile(r"(?<![\w.,\-])[A-Za-z0-9][A-Za-z0-9\-_]{4,}[A-Za-z0-9](?![\w]|[.,]\d)")
# "128x128", also as OCR reads it ("l28xZ56"): confusable letters count as digits
_DIMENSIONS = re.compile(r"^[\dOoIlSBZG]+[xX][\dOoIlSBZG]+(?:[xX][\dOoIlSBZG]+)?$")
_NUMBER_UNIT = re.compile(r"^\d+(?:[.,]\d+)?([A-Za-z%/]+)$")
_SSN = re.compile(r"(?<![\w\-.])\d{3}-\d{2}-\d{4}(?![\w\-]|\.\d)")


@lru_cache(maxsize=1)
def _units() -> frozenset[str]:
    return frozenset(w.casefold() for w in load_words("allowlist.txt"))


def id_spans(text: str) -> list[Span]:
    """Runs of 6+ digits and letter-digit IDs with a run of 4+ digits ("A1234567").

    Dimensions ("128x128"), numbers with a unit ("12345Hz"), probe names and
    scan ranges ("I176-S40") stay.
    """
    out = [(m.start(), m.end(), "pattern:id") for m in _LONG_DIGITS.finditer(text)]
    out += [(m.start(), m.end(), "pattern:id") for m in _SSN.finditer(text)]
    for m in _MIXED.finditer(text):
        tok = m.group()
        digits = sum(c.isdigit() for c in tok)
        letters = sum(c.isalpha() for c in tok)
        run = max((len(r) for r in re.findall(r"\d+", tok)), default=0)
        if digits < 4 or run < 4 or letters < 1 or _DIMENSIONS.match(tok):
            continue
        if "-" in tok and (digits < 6 or any(re.fullmatch(r"[A-Za-z]\d{1,3}", part)
                                            for part in tok.split("-"))):
            # ranges and probes: "I176-S40", "L12-5", also read as "1176-S40"
            continue
        unit = _NUMBER_UNIT.match(tok)
        if unit and unit.group(1).casefold() in _units():
            continue
        out.append((m.start(), m.end(), "pattern:id"))
    return out


_PHONE = re.compile(
    r"(?<![\w+.,/:\-])(\+\d{1,3}[\s.\-]?)?(\(\d{1,4}\)[\s.\-]?)?\d{1,8}(?:[\s.\-]\d{2,8}){0,5}"
    r"(?![\w]|[.,\-/:]\d)")


def phone_spans(text: str) -> list[Span]:
    """Phone numbers: +33 1 23 45 67 89, (555) 123-4567, 555-123-4567, 020 7946 0958."""
    out = []
    pos = 0
    while (m := _PHONE.search(text, pos)) is not None:
        if _phone_ok(m):
            out.append((m.start(), m.end(), "pattern:phone"))
            pos = m.end()
        else:  # retry one character on: "3 555-123-4567" holds a phone
            pos = m.start() + 1
    return out


def _phone_ok(m: re.Match) -> bool:
    s = m.group()
    digits = sum(c.isdigit() for c in s)
    if not 7 <= digits <= 15:
        return False
    groups = re.findall(r"\d+", s)
    if m.group(1) or m.group(2):
        return True
    if len(groups) < 2 or len(groups[0]) < 2 or max(len(g) for g in groups) > 4:
        return False
    if re.search(r"\s", s) and not re.search(r"[.\-]", s):
        # space-separated digits: only a trunk-prefixed number ("0...")
        return s.startswith("0") and 9 <= digits <= 12
    return len(groups[-1]) >= 4 and len(set(re.findall(r"[.\-\s]", s))) == 1


_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def email_spans(text: str) -> list[Span]:
    """E-mail addresses."""
    return [(m.start(), m.end(), "pattern:email") for m in _EMAIL.finditer(text)]


# ------------------------------------------------------------------ institutions

_WORD = re.compile(r"\S+")
_CONNECT = frozenset(["of", "the", "and", "&", "de", "du", "des", "la", "le", "di", "del",
                      "della", "für", "fur", "van", "voor", "y", "e"])


@lru_cache(maxsize=1)
def _institution_words() -> frozenset[str]:
    return frozenset(_fold(w).casefold() for w in load_json("match.json")["institution_words"])


def is_institution_word(text: str) -> bool:
    """A word like HOSPITAL, CLINIC, KLINIKUM (``institution_words`` in match.json)."""
    return _fold(_bare(text)).casefold() in _institution_words()


@lru_cache(maxsize=4096)
def _misread_key(word: str) -> bool:
    """An institution word of seven letters or more read with one letter wrong
    ("Honital" for HOPITAL)."""
    return len(word) >= 7 and word.isalpha() and any(
        len(k) >= 7 and Levenshtein.distance(word, k, score_cutoff=1) <= 1
        for k in _institution_words())


_L_MISREAD = str.maketrans("!|", "ll")


def _bare(tok: str) -> str:
    """``tok`` without the punctuation around it; '!' and '|' are how OCR reads
    an 'l' ("Hospita!")."""
    return tok.strip(".,;()[]\"'").translate(_L_MISREAD)


def _capitalised(tok: str) -> bool:
    b = _bare(tok)
    return (bool(b) and b[0].isupper() and all(c.isalpha() or c in "'-&." for c in b)
            and not tok.endswith(":"))


def institution_spans(text: str) -> list[Span]:
    """Institution names without the header: a run of capitalised words holding a
    word like HOSPITAL, CLINIC, HEALTH, KLINIKUM ("RIVERBEND WOMENS HEALTH") and at
    least one word that is neither such a word nor overlay vocabulary.  A name cut
    at the image edge ends in the start of such a word ("Eastgate Diagnos"): the
    last word of the text counts from four letters on."""
    keys = _institution_words()
    allow = _units()
    toks = list(_WORD.finditer(_fold(text)))
    out = []
    i = 0

    def key(k: int) -> bool:
        word = _fold(_bare(toks[k].group())).casefold()
        # the line's last word may be a key cut short ("Eastgate Diagnos")
        return (word in keys or _misread_key(word)
                or (k == len(toks) - 1 and len(word) >= 4 and word.isalpha()
                    and any(x.startswith(word) for x in keys)))

    while i < len(toks):
        t = toks[i].group()
        if not (_capitalised(t) and key(i)):
            i += 1
            continue
        lo = hi = i

        def joins(k: int) -> bool:
            w = toks[k].group()
            return _capitalised(w) or _bare(w).casefold() in _CONNECT

        while lo > 0 and joins(lo - 1) and not toks[lo - 1].group().endswith(":"):
            lo -= 1
        while hi + 1 < len(toks) and joins(hi + 1) and not toks[hi].group().endswith((":", ",")):
            hi += 1
        while lo < i and _bare(toks[lo].group()).casefold() in _CONNECT:
            lo += 1
        while hi > i and _bare(toks[hi].group()).casefold() in _CONNECT:
            hi -= 1
        words = [_fold(_bare(toks[k].group())).casefold() for k in range(lo, hi + 1)]
        if any(not key(k) and w not in _CONNECT and w not in allow
               for k, w in zip(range(lo, hi + 1), words)):
            out.append((toks[lo].start(), toks[hi].end() - (len(toks[hi].group())
                                                            - len(toks[hi].group().rstrip(".,;"))),
                        "pattern:institution"))
        i = hi + 1
    return out


# ------------------------------------------------------------------------ names

@lru_cache(maxsize=1)
def name_affixes() -> tuple[frozenset[str], frozenset[str]]:
    """(titles, degrees) from ``match.json``, case-folded, trailing dots dropped."""
    data = load_json("match.json")
    fold = lambda words: frozenset(w.rstrip(".").casefold() for w in words)
    return fold(data["name_titles"]), fold(data["name_degrees"])


# A DICOM person name as it is printed: family^given^middle, two or more parts with
# letters.  OCR reads the caret as a degree sign, an asterisk, a quote or a tilde.
_CARETS = "°^*\u2018\u201c\u201d\"~`"
# (OCR may also read the caret as a space before a caret-like mark and a capital:
# "BRENNAN *CALLUM", "MURPHY \u201cVIKTOR*K"; see _caret_name for quotes)
_CARET_NAME = re.compile(rf"(?<![\w{_CARETS}])[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_]+)*"
                         rf"(?:(?:[{_CARETS}]| [{_CARETS}](?=[A-ZÀ-Þ]))[^\W\d_'\-]*(?:['\-][^\W\d_]+)*){{1,4}}"
                         rf"(?![\w{_CARETS}])")
# A capitalised name word or an initial ("K.").
_NAME_WORD = r"(?:[A-ZÀ-Þ][A-Za-zß-ÿ'\-]+|[A-ZÀ-Þ]\.)"
_TITLED = re.compile(rf"(?<![^\W_])(?P<title>[A-Za-z]{{1,4}})\.?\s+(?P<name>{_NAME_WORD}"
                     rf"(?:\s+{_NAME_WORD}){{0,3}})")
_DEGREED = re.compile(rf"(?<![^\W_])(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,3}}),?\s+"
                      r"(?P<degree>[A-Za-z.()\-]{2,8})(?![^\W_])")


def _caret_name(m: re.Match) -> bool:
    parts = [p.strip() for p in re.split(rf"[{_CARETS}]", m.group()) if p.strip()]
    if len(parts) < 2 or sum(len(p) for p in parts) < 4:
        return False
    if re.search(r" [\u2018\u201c\u201d\"~`]", m.group()) and not m.group().isupper():
        return False     # a space and a quote open quoted text, unless all in capitals
    # a caret misread as another mark: not when it joins overlay words ("TIS*MI")
    allow = _units()
    return any(c in m.group() for c in "^°") or not any(
        len(p) > 1 and p.casefold() in allow for p in parts)     # one letter: an initial


def _from_each_word(rx: re.Pattern, text: str, resume: str) -> Iterator[re.Match]:
    """Matches of ``rx``, each search starting again at the previous match's group
    ``resume``: "Perf Prof Declan" is tried as "Perf" + name, then "Prof" + name."""
    pos = 0
    while (m := rx.search(text, pos)) is not None:
        yield m
        pos = max(m.start(resume), m.start() + 1)


def person_name_spans(text: str) -> list[Span]:
    """Names written the way only names are written, with no header to match.

    A caret-separated person-name value ("SMITH^LUCAS^G"), a title and a
    capitalised name ("Dr Hans Okafor", "Prof. K. Weber"), and a name with a
    degree after it ("Anna Lee, MD") are names; the title and degree go with them.
    Overlay words (the allowlist) never start such a name: "DR 60", "Mr Gain".
    """
    titles, degrees = name_affixes()
    allow = _units()
    out = [(m.start(), m.end(), "pattern:name") for m in _CARET_NAME.finditer(text)
           if _caret_name(m)]
    for m in _from_each_word(_TITLED, text, "name"):
        first = m.group("name").split()[0]
        if (m.group("title").casefold() in titles and first.casefold() not in allow
                and any(c.islower() for c in m.group("name"))):
            out.append((m.start(), m.end(), "pattern:name"))
    for m in _DEGREED.finditer(text):
        words = m.group("name").split()
        if (m.group("degree").rstrip(".").casefold() in degrees
                and not any(w.casefold() in allow for w in words)):
            out.append((m.start(), m.end(), "pattern:name"))
    return out + lexicon_name_spans(text)


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, surnames) of ``models/v1/names`` (1990 US Census, public domain;
    Faker's lists of every locale, MIT: see its SOURCE.md), casefolded, less the
    overlay vocabulary ("Gain", "Long", "Page")."""
    allow = _units()

    def words(*files: str) -> frozenset[str]:
        return frozenset(w.casefold() for f in files for w in load_words(f"names/{f}")) - allow

    return (words("census1990_first_names.txt", "faker_first_names.txt"),
            words("census1990_surnames.txt", "faker_surnames.txt"))


# Two name words: "Chiara Baker", "BAKER, CHIARA", "Baker Chiara".
_PAIR = re.compile(r"(?<![^\W\d_])(?P<a>[A-ZÀ-Þ][A-Za-zß-ÿ'\-]+)(?P<comma>,?)\s+"
                   r"(?P<b>[A-ZÀ-Þ][A-Za-zß-ÿ'\-]+)(?![^\W\d_])")


def lexicon_name_spans(text: str) -> list[Span]:
    """Two words written as a name that the census lists know as one: a first name
    and a surname ("Chiara Baker"), or a surname, a comma and a first name ("BAKER,
    CHIARA").  Both must be in the lists (one common word alone is no name), in
    one case style (both capitalised or both upper case), and neither a label word;
    only the inverted form with its comma ("Achterberg, Hans") needs just the first
    name in the lists."""
    first, last = _lexicon()
    out = []
    labels = _label_words()
    for m in _pairs(text):
        a, b = m.group("a"), m.group("b")
        if a.isupper() != b.isupper() or a.casefold() in labels or b.casefold() in labels:
            continue
        ka, kb = a.casefold(), b.casefold()
        given_first = ka in first and kb in last
        family_first = ka in last and kb in first and (m.group("comma") or a.isupper())
        # "Achterberg, Hans": a surname the lists lack, but the inverted form (a comma)
        # before a known first name is how names are written, and little else is
        inverted = (m.group("comma") and kb in first and len(ka) >= 3
                    and ka not in _units() and ka not in first)
        if given_first or family_first or inverted:
            out.append((m.start(), m.end(), "pattern:name"))
    return out


@lru_cache(maxsize=1)
def _label_words() -> frozenset[str]:
    return frozenset(w.casefold().strip(".#:") for e in load_json("match.json")["labels"]
                     for phrase in e["words"] for w in phrase.split())


def _pairs(text: str) -> Iterator[re.Match]:
    """Every pair of neighbouring words :data:`_PAIR` matches, overlapping ones too."""
    pos = 0
    while True:
        m = _PAIR.search(text, pos)
        if m is None:
            return
        yield m
        pos = m.start("b")


# ----------------------------------------------------------------------- labels

def _label_regex(phrase: str) -> str:
    parts = []
    for ch in phrase:
        if ch == " ":
            parts.append(r"[\s._\-]*")
        elif ch == ".":
            parts.append(r"\.?")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


@lru_cache(maxsize=1)
def _label_table() -> list[tuple[re.Pattern, str, str, bool, bool, bool]]:
    table = []
    for entry in load_json("match.json")["labels"]:
        words = sorted(entry["words"], key=len, reverse=True)
        alt = "|".join(_label_regex(_fold(w)) for w in words)
        suffix = r"(?:[\s.]*(?:No|Nr|Num|Number|#)\b\.?)?"
        rx = re.compile(rf"(?<![^\W_])(?:{alt})(?![^\W_]){suffix}", re.IGNORECASE)
        table.append((rx, entry["reason"], entry["value"], bool(entry.get("colon")),
                      bool(entry.get("dot_counts")), entry.get("keep_label", True)))
    return table


_SEP = re.compile(r"\s*(?:\.?\s*[:#=]|\.(?!\d)|-(?!\d))?\s*")
# letters, joined by any punctuation but ':' (OCR reads DOE^JOHN as "DOE°JOHN")
_NAME_TOKEN = re.compile(r"^[^\W\d_]+(?:(?:[^\w\s:]|_)+[^\W\d_]*)*$")
# a caret name whose carets OCR read as single digits ("WHITFIELD4HANSAK"): only
# as the value a name label announces
_CARETS_MISREAD = re.compile(r"^[^\W\d_]{2,}(?:\d[^\W\d_]+){1,3}[.,;]?$")
_TOKEN = re.compile(r"\S+")


def _caret_name_misread(tok: str) -> bool:
    return bool(_CARETS_MISREAD.match(tok)) and sum(c.isalpha() for c in tok) >= 6


_PARTICLES = frozenset(["van", "von", "der", "den", "de", "da", "di", "del", "della", "du",
                        "le", "la", "dos", "das", "ten", "ter", "bin", "ibn", "al", "el"])


def _is_label_token(tok: str) -> bool:
    return tok.endswith(":") and len(tok) > 1


def _value_end(text: str, pos: int, kind: str, marked: bool = True) -> Optional[int]:
    """End offset of the value of kind ``kind`` starting at ``pos``, or None.

    ``marked``: the label ended with ':' or '#'; without it an overlay word right
    after the label ("Protocol Name Abdomen") is no name."""
    if kind == "date":
        folded = _fold(text)
        for r in _date_res():
            m = r.match(folded, pos)
            if m:
                return m.end()
    allow = _units()
    end = None
    count = 0
    for m in _TOKEN.finditer(text, pos):
        tok = m.group()
        if _is_label_token(tok):
            break
        if kind != "name":
            # an ID (or a date in a shape we do not parse): one token with a digit
            return m.end() if any(c.isdigit() for c in tok) else None
        bare = tok.rstrip(".,;")
        if (count >= 4 or not (_NAME_TOKEN.match(tok) or (count == 0 and _caret_name_misread(tok)))
                or ((count or not marked) and len(bare) > 1 and bare.casefold() in allow)):
            break
        # names are written capitalised; "Dr. Smith requested" ends at "requested"
        if not bare[:1].isupper() and not (count and bare.casefold() in _PARTICLES):
            break
        end = m.end()
        count += 1
        if tok.endswith(";"):
            break
    if end is not None and sum(c.isalpha() for c in text[pos:end]) < 2:
        return None
    return end


@dataclass(frozen=True)
class _Label:
    """One label found in a line: where it starts, where its value may start, what it
    announces, whether it is marked (':', '#', '=', or '.' where a dot counts) and
    whether the label stays when its value is redacted."""

    start: int
    value_start: int
    reason: str
    kind: str
    marked: bool
    keep: bool


# a word with a colon after it, as OCR leaves a label it read only in part
_CUT_LABEL = re.compile(r"(?<![^\W_])([^\W\d_]{4,})\s*:")


@lru_cache(maxsize=1)
def _long_label_words() -> list[tuple[str, str, str, bool]]:
    """(word, reason, kind, keep) of the one-word labels of six letters or more."""
    return [(_fold(w).casefold(), e["reason"], e["value"], e.get("keep_label", True))
            for e in load_json("match.json")["labels"] for w in e["words"]
            if " " not in w and len(w) >= 6 and w.isalpha()]


def _cut_labels(text: str, found: set[int]) -> Iterator[_Label]:
    """Labels OCR read only in part, the start of a long label word with its colon
    ("Pacie:" of "Paciente:", the rest faded into a gradient), or all of it but its
    first letter ("atient:", the P lost over anatomy), where no whole label stands."""
    return _labels_like(text, found, _CUT_LABEL, lambda word, label: len(word) < len(label) and (
        label.startswith(word) or (len(word) >= 5 and len(label) == len(word) + 1
                                   and label.endswith(word))))


def _labels_like(text: str, found: set[int], words: re.Pattern,
                 like: Callable[[str, str], bool]) -> Iterator[_Label]:
    """A label (with its colon) for each match of ``words`` not in ``found`` whose
    word is ``like`` one of the long label words."""
    for m in words.finditer(text):
        if m.start() in found:
            continue
        word = _fold(m.group(1)).casefold()
        for label, reason, kind, keep in _long_label_words():
            if like(word, label):
                yield _Label(m.start(), _SEP.match(text, m.end()).end(), reason, kind, True, keep)
                break


#: A word of seven letters or more ending in a colon, or a dot or semicolon (a small
#: colon as OCR reads it): where a label with one letter misread may stand.
_MISREAD_LABEL = re.compile(r"(?<![^\W_])([^\W\d_]{7,})\s*[:.;]")


def _misread_labels(text: str, found: set[int]) -> Iterator[_Label]:
    """Long label words with one letter misread and their colon ("Zuveiser." for
    "Zuweiser:"), where no label stands: the first letter must agree."""
    return _labels_like(text, found, _MISREAD_LABEL, lambda word, label: (
        len(label) >= 7 and word[0] == label[0] and word != label
        and Levenshtein.distance(word, label, score_cutoff=1) <= 1))


def is_misread_label(text: str) -> bool:
    """Whether ``text`` is one long label word with a letter misread and its colon
    ("Zuveiser."): a value grown along its row stops there."""
    return any(lab.start == 0 for lab in _misread_labels(text.strip(), set()))


def _labels(text: str) -> Iterator[_Label]:
    """Every label in ``text`` with the punctuation it needs (``colon`` labels need a
    mark), the labels cut short (:func:`_cut_labels`) and those with a letter
    misread (:func:`_misread_labels`)."""
    found = set()
    for lab in _whole_labels(text):
        found.add(lab.start)
        yield lab
    for lab in _cut_labels(text, found):
        found.add(lab.start)
        yield lab
    yield from _misread_labels(text, found)


def _whole_labels(text: str) -> Iterator[_Label]:
    folded = _fold(text)
    for rx, reason, kind, need_colon, dot_counts, keep in _label_table():
        for m in rx.finditer(folded):
            sep = _SEP.match(text, m.end())
            marked = any(c in sep.group() for c in ":#=")
            # a dot ("Pat.", "Dr.") is also an abbreviation's: it marks a value, but
            # an overlay word after it is no name ("Pt. Gain 50")
            dotted = dot_counts and "." in sep.group()
            if marked or dotted or not need_colon:
                yield _Label(m.start(), sep.end(), reason, kind, marked, keep)


def label_spans(text: str) -> list[Span]:
    """Labelled values ("DOB: 15.01.1980", "Name: SMITH, ANNA", "MRN 88123456").

    The span covers the value, and the label too where the label is part of it
    (``keep_label: false`` in ``match.json``: "Dr. Watson").  A label with no
    value of the right shape after it ("DR 60" is a dynamic range, not a doctor)
    gives nothing.
    """
    out = []
    labels = list(_labels(text))
    for lab in labels:
        # a value ends where the next label starts ("Pt: Sean Nguyen PatID 6327..."),
        # unless that label is part of the value ("Referring: Dr. Amara Nguyen")
        stop = min((o.start for o in labels if o.start >= lab.value_start and o.keep),
                   default=len(text))
        end = _value_end(text[:stop], lab.value_start, lab.kind, lab.marked)
        if end is not None and end > lab.value_start:
            out.append((lab.value_start if lab.keep else lab.start, end, f"label:{lab.reason}"))
    return out


@lru_cache(maxsize=1)
def label_kinds() -> dict[str, str]:
    """The value kind (name, id, date) each label reason announces."""
    return {entry["reason"]: entry["value"] for entry in load_json("match.json")["labels"]}


def label_ends(text: str) -> list[tuple[int, str]]:
    """(end offset, reason) of every label in ``text`` that announces a value."""
    return [(lab.value_start, lab.reason) for lab in _labels(text)]


def dangling_label(text: str) -> Optional[tuple[int, str, str]]:
    """A label that ends ``text`` with no value after it ("... Name:"), as
    (start, reason, value kind); its value is then at the start of the next line.
    ``start`` is ``len(text)`` for a label that stays (only its value goes)."""
    best = None
    for lab in _labels(text):
        if text[lab.value_start:].strip():
            continue
        start = len(text) if lab.keep else lab.start
        if best is None or start < best[0]:
            best = (start, lab.reason, lab.kind)
    return best


def label_value_spans(text: str, kind: str, reason: str) -> list[Span]:
    """The value of a label of ``kind`` that starts ``text`` (the line below a
    dangling label), as a span with ``reason``; empty if the shape is wrong.
    An overlay word never starts such a value ("Name:" then "Gain 50")."""
    start = len(text) - len(text.lstrip())
    end = _value_end(text, start, kind, marked=False)
    if end is None or end <= start:
        digits = ocr_digits(text)
        if digits != text and kind != "name":
            end = _value_end(digits, start, kind)
    return [(start, end, f"label:{reason}")] if end is not None and end > start else []


# ---------------------------------------------------------------------- combined

def _resolve(spans: list[Span]) -> list[Span]:
    """Overlapping spans merged; the longest span's reason names the merged one."""
    spans = sorted(spans, key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[list] = []
    for s, e, r in spans:
        if out and s < out[-1][1]:
            last = out[-1]
            if e - s > last[3]:
                last[2], last[3] = r, e - s
            last[1] = max(last[1], e)
        else:
            out.append([s, e, r, e - s])
    return [(s, e, r) for s, e, r, _ in out]


_DIGITISH = re.compile(r"[A-Za-z0-9|@.,/:\-]+")
_AS_DIGIT = str.maketrans("OoQDIl|SsBZzG@", "00001115582260")


def ocr_digits(text: str) -> str:
    """``text`` with confusable letters read as digits inside number-like runs.

    A run of letters, digits and ``./,:-`` with no more letters than digits
    ("l5.0l.198O", "8812345B") is read as digits ("15.01.1980", "88123458"); words stay as they
    are.  The length never changes, so spans found in the result apply to ``text``.
    """
    def fix(m: re.Match) -> str:
        run = m.group()
        digits = sum(c.isdigit() for c in run)
        letters = sum(c.isalpha() for c in run)
        if digits < 2 or letters > digits:
            return run
        unit = _NUMBER_UNIT.match(run)
        if unit and unit.group(1).casefold() in _units():
            return run   # "100MHz" stays a frequency
        return run.translate(_AS_DIGIT)
    return _DIGITISH.sub(fix, text)


def is_date_piece(text: str) -> bool:
    """Whether ``text`` is what OCR left of a date printed before a clock time: parts
    split by - / . :, each two to four digits (letters OCR takes for digits, and a
    small 0 read as a degree sign, count as digits) or a month name; three digits
    at least, or two beside a month ("03-06", "202:", "O1-NOV-23", "NOV-21",
    "04/22/2°"; not "0.9" or "12.5").  A whole date is no piece: the date rules
    have it."""
    text = text.strip()
    if _whole(date_spans(text), text):
        return False
    digits, month = 0, False
    for part in (p for p in re.split(r"[-/.:]", text) if p):
        if is_month_name(part):
            month = True
            continue
        number = part.translate(_AS_DIGIT).replace("°", "0")
        if not (number.isdigit() and 2 <= len(number) <= 4):
            return False
        digits += len(number)
    return digits >= 3 or (month and digits >= 2)


def is_clock_time(text: str) -> bool:
    """Whether ``text`` is one clock time and nothing else ("06:32", "2:30 PM")."""
    text = text.strip()
    return _whole(time_spans(text), text)


def _whole(spans: list[Span], text: str) -> bool:
    """Whether one of ``spans`` covers all of ``text``."""
    return any(s == 0 and e == len(text) for s, e, _ in spans)


def _rule_spans(text: str) -> list[Span]:
    return (label_spans(text) + date_spans(text) + misread_date_spans(text) + time_spans(text)
            + id_spans(text) + phone_spans(text) + email_spans(text) + institution_spans(text)
            + person_name_spans(text))


def pattern_spans(text: str) -> list[tuple[int, int, str]]:
    """Character spans of header-free PHI in ``text``: (start, end, reason).

    Reasons: ``pattern:date``, ``pattern:time``, ``pattern:id``,
    ``pattern:phone``, ``pattern:email``, ``pattern:name`` and ``label:<Label>`` (label and
    value).  The date and time rules also run on the text with OCR-confused
    digits read back (:func:`ocr_digits`).  Spans are sorted and do not overlap.
    """
    spans = _rule_spans(text)
    digits = ocr_digits(text)
    if digits != text:
        # only the strictly shaped rules: "I169-S247" read as digits is no phone
        spans += date_spans(digits) + time_spans(digits)
    return _resolve(spans)
