"""Match OCR words against PHI: header terms, pattern rules and labels.

How a header term is found, and why:

* Both sides go through one normalisation: accents stripped, upper case, OCR
  confusions mapped (O->0, I/L->1, S->5, B->8, Z->2, G->6, RN->M, ``match.json``),
  then split into runs of letters and digits ("tokens").  "1O2345B7" and
  "102345B7" become the same token, and lost or extra punctuation no longer matters.
* Windows of consecutive tokens on one line are joined without spaces (so split
  and merged words match too) and compared with each term's joined key; a term
  may differ by a few edits that grow with its length (``max_edits``), short keys
  must match exactly, and inexact matches must take whole words.  A whole value
  with a few characters glued on ("DrLea Nguyen") and the start of a long value
  whose rest OCR could not read ("RIVERBEND WOME!") match too; the box of such a
  partial read grows over the unread characters.
* A value wrapped onto the line below, or split from its line by a wide gap, is
  found by reading the end of one line and the start of the next as one line;
  a hit never spans lines, so such a value gives one hit per line.
* Overlapping candidates are resolved greedily: most agreeing characters, then
  best score, then longest span.  Terms that are not identifying on their own
  (initials, two-letter names, 3-digit IDs) are hits only within a few tokens of
  another hit, or on a line joined to one; a short number equal to a header ID
  but standing next to overlay vocabulary ("kVp 120") is a measurement.

The allowlist rule: a word on the allowlist (``models/v1/allowlist.txt``) is
never a hit by itself.  A window made only of allowlisted words is a header hit
only when it equals a *full* header value form exactly (after normalisation),
e.g. the patient name GAIN^MARK written "GAIN MARK", never a single name
component, initials, a partial date or a fuzzy match.  Pattern and label rules
never fire on allowlisted words alone.
"""
from __future__ import annotations

import bisect
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from rapidfuzz import fuzz
from rapidfuzz.distance import Hamming, Levenshtein

from .assets import load_json, load_words
from .patterns import (dangling_label, institution_spans, is_clock_time, is_date_piece,
                       is_institution_word, is_misread_label, is_month_name, label_ends,
                       label_kinds, label_value_spans, name_affixes, ocr_digits, pattern_spans)
from .phi_terms import PhiTerm
from .records import Box, Hit, Word

__all__ = ["match_words", "complete_values", "find_phi_in_text", "is_allowlisted", "is_harmless",
           "normalize", "match_params"]

MODES = ("phi", "all-text")


def match_params(params: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """``models/v1/match.json`` with the top-level keys of ``params`` overriding it."""
    merged = dict(load_json("match.json"))
    if params:
        merged.update(params)
    return merged


# -------------------------------------------------------------------- normalise

@lru_cache(maxsize=4096)
def _fold_char(c: str, confusions: tuple[tuple[str, str], ...]) -> str:
    conf = dict(confusions)
    if c in conf:
        return conf[c]
    d = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
    return "".join(conf.get(x, x) for x in d.upper())


_ASCII_RUN = re.compile(r"[A-Z0-9]+")


@lru_cache(maxsize=16)
def _ascii_table(confusions: tuple[tuple[str, str], ...]) -> dict[int, str]:
    return str.maketrans({k: v for k, v in confusions if len(k) == 1 and k.isascii()})


@lru_cache(maxsize=1 << 16)
def _tokens(text: str, confusions: tuple[tuple[str, str], ...]) -> tuple[tuple[str, int, int], ...]:
    """(key, start, end) for each run of letters/digits of ``text`` after folding.

    Single-character confusions are mapped first; letter pairs OCR reads as one
    letter ("RN" -> "M") are then mapped inside each key, so offsets stay exact.
    """
    pairs = [(k, v) for k, v in confusions if len(k) > 1]
    toks = _single_tokens(text, confusions)
    if not pairs:
        return toks
    out = []
    for key, s, e in toks:
        for k, v in pairs:
            key = key.replace(k, v)
        out.append((key, s, e))
    return tuple(out)


def _single_tokens(text: str, confusions: tuple[tuple[str, str], ...]
                   ) -> tuple[tuple[str, int, int], ...]:
    if text.isascii():  # fast path: upper() keeps the length, one translate
        folded = text.upper().translate(_ascii_table(confusions))
        return tuple((m.group(), m.start(), m.end()) for m in _ASCII_RUN.finditer(folded))
    out = []
    cur: list[str] = []
    start = -1
    for i, c in enumerate(text):
        f = _fold_char(c, confusions)
        if f and all(x.isalnum() for x in f):
            if start < 0:
                start = i
            cur.append(f)
        elif start >= 0:
            out.append(("".join(cur), start, i))
            cur, start = [], -1
    if start >= 0:
        out.append(("".join(cur), start, len(text)))
    return tuple(out)


def _conf(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(params["confusions"].items()))


def normalize(text: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """The compact comparison key of ``text``: "Doe, J0hn" -> "D0EJ0HN"."""
    p = match_params(params)
    return "".join(k for k, _, _ in _tokens(text, _conf(p)))


# -------------------------------------------------------------------- allowlist

_STRIP = " \t.,:;()[]{}\"'`"
_NUM_UNIT = re.compile(r"^[-+]?\d+(?:[.,]\d+)?\s?([^\d\s.,:;]+)$")
_LABEL_NUM = re.compile(r"^([^\W\d_]+)\s?([:=]?)\s?[-+]?\d{1,4}(?:[.,]\d+)?(?:/\d{1,4})?"
                        r"\s?([^\W\d_%]*%?)$")


@lru_cache(maxsize=1)
def _allow() -> frozenset[str]:
    return frozenset(w.casefold() for w in load_words("allowlist.txt"))


@lru_cache(maxsize=1 << 14)
def is_allowlisted(text: str) -> bool:
    """True for overlay vocabulary never redacted on its own.

    An allowlist entry ("Gain", "TIS", "C5-1"), an entry glued to a number
    ("3.5MHz", "60dB", "W:400", "Im:23/120"), or a word with no letter or digit
    at all.  A one-letter entry glued to a number needs a colon ("L:40", not
    "A1234567").
    """
    allow = _allow()
    s = text.strip().strip(_STRIP)
    if not any(c.isalnum() for c in s):
        return True
    if s.casefold() in allow:
        return True
    m = _NUM_UNIT.match(s)
    if m and m.group(1).casefold() in allow:
        return True
    m = _LABEL_NUM.match(s)
    if m and m.group(1).casefold() in allow and (not m.group(3) or m.group(3).casefold() in allow):
        return len(m.group(1)) > 1 or bool(m.group(2)) or bool(m.group(3))
    return False


_SHORT_NUMBER = re.compile(r"^[-+]?\d{1,3}(?:[.,]\d{1,2})?$")
#: A cine's elapsed time, minutes and seconds with their fraction (``00:03.90``):
#: no time of day is written with hundredths after minutes.
_ELAPSED = re.compile(r"^\d{1,2}:[0-5]\d[.,]\d{1,3}$")


def is_harmless(text: str) -> bool:
    """Overlay vocabulary, a short measurement value (``74``, ``0.4``) or a cine's
    elapsed time: a word that cannot identify anyone, even when OCR read it with
    little confidence."""
    s = text.strip().strip(_STRIP)
    return is_allowlisted(s) or bool(_SHORT_NUMBER.match(s) or _ELAPSED.match(s))


# ------------------------------------------------------------------------ index

#: Term kinds whose whole value may be found with a few characters glued on by
#: OCR ("DrLea Nguyen" holds "LEA NGUYEN"); IDs only with letters glued on
#: ("MRN96011D15"): "123456789" must not hold the ID "12345678".
_GLUE_KINDS = ("name", "text", "address")
_GLUE_ID_KINDS = ("id", "phone")
#: Kinds whose value may be found from its first characters only: faint or
#: clipped text is often read only in part ("RIVERBEND WOME!", "27-JAN-1").
_PREFIX_KINDS = ("name", "text", "address", "date")

@dataclass(frozen=True)
class _Entry:
    key: str
    toks: tuple[str, ...]
    term: PhiTerm
    max_edits: int
    exact_split: bool   # short numeric key: token split must be identical


@dataclass(frozen=True)
class _Index:
    exact: dict[str, tuple[_Entry, ...]]
    by_len: dict[int, tuple[_Entry, ...]]  # window length -> entries within edit reach
    glued: dict[int, tuple[_Entry, ...]]   # may carry a few glued-on characters
    prefixes: dict[str, tuple[_Entry, ...]]  # OCR read only the start of the value
    # window length -> (entry, its start of that length): the start of a long value
    # with one misread letter ("Eastgate Diagnosi")
    fuzzy_prefixes: dict[int, tuple[tuple[_Entry, str], ...]]
    max_len: int
    max_edits: int
    max_glue: int


def _edits_for(kind: str, length: int, table: Mapping[str, Any]) -> int:
    steps = table.get(kind, table.get("text", []))
    edits = 0
    for min_len, n in steps:
        if length >= min_len:
            edits = n
    return edits


def _index_for(terms: Sequence[PhiTerm], p: Mapping[str, Any]) -> _Index:
    """The index of ``terms``, cached: the pipeline matches many frames per header."""
    keys = ("confusions", "max_edits", "min_key_length", "short_numeric_key",
            "min_glued_key", "max_glued_chars", "min_prefix", "min_prefix_fraction",
            "min_number_prefix", "min_number_prefix_fraction", "min_part_prefix",
            "min_part_prefix_fraction")
    return _cached_index(tuple(terms), json.dumps({k: p[k] for k in keys}, sort_keys=True))


@lru_cache(maxsize=16)
def _cached_index(terms: tuple[PhiTerm, ...], params_json: str) -> _Index:
    return _build_index(terms, json.loads(params_json))


def _build_index(terms: Sequence[PhiTerm], p: Mapping[str, Any]) -> _Index:
    conf = _conf(p)
    exact: dict[str, list[_Entry]] = {}
    by_len: dict[int, list[_Entry]] = {}
    glued: dict[int, list[_Entry]] = {}
    prefixes: dict[str, list[_Entry]] = {}
    fuzzy_prefixes: dict[int, list[tuple[_Entry, str]]] = {}
    seen: set[tuple[str, bool, bool]] = set()
    for t in terms:
        toks = tuple(k for k, _, _ in _tokens(t.text, conf))
        key = "".join(toks)
        if len(key) < p["min_key_length"]:
            continue
        # the first term (patient-first order) with a key and flags represents it
        sig = (key, t.full, t.standalone)
        if sig in seen:
            continue
        seen.add(sig)
        e = _Entry(key, toks, t, _edits_for(t.kind, len(key), p["max_edits"]),
                   key.isdigit() and len(key) < p["short_numeric_key"])
        exact.setdefault(key, []).append(e)
        for n in range(len(key) - e.max_edits, len(key) + e.max_edits + 1) if e.max_edits else ():
            by_len.setdefault(n, []).append(e)
        if (t.standalone and t.full and len(key) >= p["min_glued_key"]
                and ((t.kind in _GLUE_KINDS and not key.isdigit()) or t.kind in _GLUE_ID_KINDS)):
            glued.setdefault(len(key), []).append(e)
        # whole values only: a name component's start is often another name
        if t.full and t.standalone and (t.kind in _PREFIX_KINDS and not key.isdigit()
                                        or t.kind in _GLUE_ID_KINDS or key.isdigit()):
            if t.kind in _GLUE_ID_KINDS or key.isdigit():
                # numbers: most of it ("5815702" of 581570266, last digit unread)
                shortest = max(p["min_number_prefix"],
                               int(len(key) * p["min_number_prefix_fraction"] + 0.999))
            else:
                shortest = max(p["min_prefix"], int(len(key) * p["min_prefix_fraction"] + 0.999))
                # one misread letter at most: with more, the start of a value
                # wrapped onto the next line also "matches" the label there
                if _edits_for(t.kind, shortest, p["max_edits"]):
                    for n in range(shortest, len(key)):
                        fuzzy_prefixes.setdefault(n, []).append((e, key[:n]))
            for n in range(shortest, len(key)):
                prefixes.setdefault(key[:n], []).append(e)
        elif t.kind == "name" and t.standalone and not key.isdigit():
            # a name part read in part ("Kimber" of KIMBERLY, its end faded into
            # anatomy): most of a long part only
            shortest = max(p["min_part_prefix"], int(len(key) * p["min_part_prefix_fraction"] + 0.999))
            for n in range(shortest, len(key)):
                prefixes.setdefault(key[:n], []).append(e)
    return _Index({k: tuple(v) for k, v in exact.items()},
                  {k: tuple(v) for k, v in by_len.items()},
                  {k: tuple(v) for k, v in glued.items()},
                  {k: tuple(v) for k, v in prefixes.items()},
                  {k: tuple(v) for k, v in fuzzy_prefixes.items()},
                  max((len(k) for k in exact), default=0),
                  max((e.max_edits for v in by_len.values() for e in v), default=0),
                  p["max_glued_chars"])


# ------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class _Tok:
    key: str
    ref: Any        # (line, word position) for words; (start, end) for text
    allow: bool
    word: Any = None  # the OCR word (or whitespace-separated word) it came from


@dataclass(frozen=True)
class _Cand:
    refs: tuple[Any, ...]
    score: float
    term: PhiTerm
    order: int
    matched: int = 0   # characters that agree: ranks a fuzzy full name above an exact part


def _candidates(toks: Sequence[_Tok], index: _Index, window: int, order: dict[PhiTerm, int],
                must_cross: Optional[int] = None) -> Iterable[_Cand]:
    """Windows of ``toks`` that match a term; with ``must_cross``, only windows
    that start before and end at or after that token position."""
    n = len(toks)
    limit = index.max_len + max(index.max_edits, index.max_glue)
    for i in range(n):
        if must_cross is not None and i >= must_cross:
            break
        key = ""
        only_allowed = True
        for j in range(i, min(n, i + window)):
            key += toks[j].key
            only_allowed = only_allowed and toks[j].allow
            if len(key) > limit:
                break
            if must_cross is not None and j < must_cross:
                continue
            refs = tuple(t.ref for t in toks[i:j + 1])
            length = len(key)
            # inexact matches must take whole words: "4690543:" + "27" of "27-JAN-1"
            # is no ID
            whole = ((i == 0 or toks[i - 1].word != toks[i].word)
                     and (j == n - 1 or toks[j + 1].word != toks[j].word))
            for e in index.exact.get(key, ()):
                if only_allowed and not e.term.full:
                    continue
                if e.exact_split and tuple(t.key for t in toks[i:j + 1]) != e.toks:
                    continue
                yield _Cand(refs, 100.0, e.term, order[e.term], length)
            if only_allowed or not whole:
                continue
            for e in index.by_len.get(length, ()):
                if e.key == key:
                    continue
                d = Levenshtein.distance(key, e.key, score_cutoff=e.max_edits)
                if d > e.max_edits:
                    continue
                longest = max(length, len(e.key))
                score = 100.0 * (1.0 - d / longest)
                if score >= e.term.min_score:
                    yield _Cand(refs, score, e.term, order[e.term], longest - d)
            # the start of a long value, the rest unread
            for e in index.prefixes.get(key, ()):
                score = 100.0 * length / len(e.key)
                if score >= e.term.min_score:
                    yield _Cand(refs, score, e.term, order[e.term], length)
            # (not across two lines: "MURPHY" + "MR#" below is no "MURPHYPR")
            for e, start in (index.fuzzy_prefixes.get(length, ())
                             if must_cross is None else ()):
                if start != key and Levenshtein.distance(key, start, score_cutoff=1) <= 1:
                    score = 100.0 * (length - 1) / len(e.key)
                    if score >= e.term.min_score:
                        yield _Cand(refs, score, e.term, order[e.term], length - 1)
            # a whole value glued to a short word at either end of the window
            for n2 in range(length - index.max_glue, length):
                for e in index.glued.get(n2, ()):
                    if key.startswith(e.key):
                        extra = key[n2:]
                    elif key.endswith(e.key):
                        extra = key[:length - n2]
                    else:
                        continue
                    if e.term.kind in _GLUE_ID_KINDS and extra.isdigit():
                        continue
                    score = 100.0 * n2 / length
                    if score >= e.term.min_score:
                        yield _Cand(refs, score, e.term, order[e.term], n2)


def _select(cands: list[_Cand], taken: set, near, veto=None) -> list[_Cand]:
    """Greedy non-overlapping choice: standalone terms by agreeing characters,
    score and length, then the others that sit next to something already chosen
    (``near(refs)``)."""
    cands.sort(key=lambda c: (-c.matched, -c.score, -len(c.refs), c.order))
    chosen: list[_Cand] = []
    for standalone in (True, False):
        for c in cands:
            if c.term.standalone != standalone or any(r in taken for r in c.refs):
                continue
            if veto is not None and veto(c):
                continue
            if not standalone and not near(c.refs):
                continue
            chosen.append(c)
            taken.update(c.refs)
    return chosen


# ------------------------------------------------------------------------ words

@dataclass
class _Line:
    words: list[Word]
    box: Box
    layer: str
    frames: Optional[tuple[int, ...]]
    toks: list[_Tok]
    text: str
    offsets: list[tuple[int, int]]   # char range of each word in ``text``


def _group_lines(words: Sequence[Word], conf, max_gap: float = 0.0) -> list[_Line]:
    groups: dict[tuple, list[Word]] = {}
    for w in words:
        groups.setdefault((w.layer, w.frames, w.line_id), []).append(w)
    lines = []
    for li, ((layer, frames, _), ws) in enumerate(_same_row(groups, max_gap).items()):
        if len({w.line_id for w in ws}) == 1:
            ws = sorted(ws, key=lambda w: (w.index, w.box.x0))
        box = ws[0].box
        for w in ws[1:]:
            box = box.union(w.box)
        toks, offsets, parts, pos = [], [], [], 0
        for wi, w in enumerate(ws):
            allow = is_allowlisted(w.text)
            for key, _, _ in _tokens(w.text, conf):
                toks.append(_Tok(key, (li, wi), allow, (li, wi)))
            offsets.append((pos, pos + len(w.text)))
            parts.append(w.text)
            pos += len(w.text) + 1
        lines.append(_Line(ws, box, layer, frames, toks, " ".join(parts), offsets))
    return lines


def _same_row(groups: dict[tuple, list[Word]], max_gap: float) -> dict[tuple, list[Word]]:
    """OCR lines that are pieces of one printed line joined, left to right.

    A line changes colour, or its letters are spaced wide, and it is proposed and
    read in pieces ("Sonographer:", "Chiara", "Baker"); the label and pattern
    rules see a line at a time, so the pieces are one line again when they sit on
    one row (overlapping by more than half the lower one's height, heights within
    1.5x), side by side, at most ``max_gap`` line heights apart.  A word that only
    reads again part of a word already in the row (the "s" of "Children's") is
    left out of the join; readings of the same ink that disagree stay apart: they
    are alternatives, not neighbours.
    """
    if max_gap <= 0 or len(groups) < 2:
        return groups
    words = {k: sorted(ws, key=lambda w: w.box.x0) for k, ws in groups.items()}
    rows: list[tuple[tuple, list[Word]]] = []
    for key in sorted(words, key=lambda k: words[k][0].box.x0):
        for row_key, row in rows:
            if row_key[:2] != key[:2]:
                continue
            rest = [w for w in words[key] if not _repeats(w, row)]
            if (rest and _follows(row, rest, max_gap)
                    and not (row[-1].text.rstrip().endswith(":") and _read_twice(key, rest[0], words))):
                row.extend(rest)
                break
        else:
            rows.append((key, list(words[key])))
    return dict(rows)


def _read_twice(key: tuple, first: Word, words: Mapping[tuple, list[Word]]) -> bool:
    """Whether another OCR line starts on the same ink as ``first`` (another reading
    of it: "Kimber1)" and "Kimberl iterberg").  Which one to join to a row that
    ends in a label's colon is then unknown, so none is; the label pairs with each
    (:func:`_row_pairs`) and takes its value from whichever reads as one."""
    return any(k != key and k[:2] == key[:2] and ws
               and 2 * ws[0].box.intersection(first.box).area
               > min(ws[0].box.area, first.box.area)
               for k, ws in words.items())


def _repeats(word: Word, row: Sequence[Word]) -> bool:
    """Whether ``word`` lies inside a word of ``row`` and reads as part of it."""
    text = word.text.casefold()
    return any(word.box.intersection(r.box).area >= 0.8 * word.box.area
               and text in r.text.casefold() for r in row)


def _follows(row: Sequence[Word], rest: Sequence[Word], max_gap: float) -> bool:
    """Whether the words ``rest`` continue ``row`` on the same printed line."""
    last, first = row[-1].box, rest[0].box
    h, hmax = min(first.height, last.height), max(first.height, last.height)
    overlap = first.rows_shared(last)
    gap = first.x0 - max(w.box.x1 for w in row)
    return hmax <= 1.5 * h and overlap > 0.5 * h and 0 <= gap <= max_gap * hmax


def _below(a: _Line, b: _Line, max_gap: float) -> bool:
    """True when ``b`` is the line just under ``a`` with an overlapping x-range."""
    if a.layer != b.layer or a.frames != b.frames:
        return False
    h = max(1, a.box.height)
    return (b.box.y0 >= a.box.y0 + h / 2 and b.box.y0 - a.box.y1 <= max_gap * h
            and min(a.box.x1, b.box.x1) > max(a.box.x0, b.box.x0))


def _stacked_pairs(lines: list[_Line], max_gap: float) -> list[tuple[int, int]]:
    """(upper, lower) line pairs read as one; lines sorted by top edge so each
    line is compared only with the lines starting within reach below it."""
    order = sorted(range(len(lines)), key=lambda i: lines[i].box.y0)
    tops = [lines[i].box.y0 for i in order]
    pairs = []
    for a in range(len(lines)):
        box = lines[a].box
        reach = box.y1 + max_gap * max(1, box.height)
        for k in range(bisect.bisect_left(tops, box.y0), bisect.bisect_right(tops, reach)):
            b = order[k]
            if b != a and _below(lines[a], lines[b], max_gap):
                pairs.append((a, b))
    return pairs


def _row_pairs(lines: list[_Line], max_gap: float) -> list[tuple[int, int]]:
    """(left, right) pairs of lines on one row that OCR split at a wide gap
    ("Name:" and "DOE JOHN" read as two lines): read as one line too.  The
    nearest line on the right pairs, and so do other readings of the same ink
    (starting within half a line height of it): one of them may be the one
    that reads ("Kimber1)", then "Kimberl iterberg")."""
    pairs = []
    order = sorted(range(len(lines)), key=lambda i: lines[i].box.y0)
    tops = [lines[i].box.y0 for i in order]
    for a in range(len(lines)):
        la = lines[a]
        near: list[tuple[int, int, int]] = []   # (gap, line, height) of candidates
        # only lines whose top lies within this line's height band can share its row
        lo = bisect.bisect_left(tops, la.box.y0 - la.box.height)
        hi = bisect.bisect_right(tops, la.box.y1)
        for b in (order[k] for k in range(lo, hi)):
            lb = lines[b]
            if b == a or lb.layer != la.layer or lb.frames != la.frames:
                continue
            h = max(1, min(la.box.height, lb.box.height))
            gap = lb.box.x0 - la.box.x1
            overlap = la.box.rows_shared(lb.box)
            if 0 <= gap <= max_gap * h and overlap > h / 2:
                near.append((gap, b, h))
        if near:
            gap, b, h = min(near)
            pairs += [(a, c) for g, c, _ in sorted(near) if g <= gap + h / 2]
    return pairs


def _hit(words: list[Word], reason: str, score: float) -> Hit:
    box = words[0].box
    for w in words[1:]:
        box = box.union(w.box)
    frames: Optional[tuple[int, ...]] = ()
    for w in words:
        if w.frames is None or frames is None:
            frames = None
        else:
            frames = tuple(sorted(set(frames) | set(w.frames)))
    return Hit(box=box, reason=reason, frames=frames, layer=words[0].layer,
               confidence=min(w.confidence for w in words),
               text=" ".join(w.text for w in words), score=round(score, 1))


def _join_rotated(hits: list[tuple[Hit, int]]) -> list[Hit]:
    """Header hits on vertical text that follow each other along the text ("JOHN"
    above "OBRIEN" of one turned name), joined so the gap between them (comma,
    space) goes too.  OCR of turned text often gives each word its own line."""
    out: list[Hit] = []
    for hit, _ in sorted(hits, key=lambda hr: (hr[0].reason, hr[0].box.x0, hr[0].box.y0)):
        prev = out[-1] if out else None
        if (prev is not None and prev.reason == hit.reason and prev.layer == hit.layer
                and prev.frames == hit.frames):
            a, b = prev.box, hit.box
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
            thick = min(a.width, b.width)
            gap = max(a.y0, b.y0) - min(a.y1, b.y1)
            if overlap > thick / 2 and gap <= thick:
                out[-1] = replace(prev, box=a.union(b), text=f"{prev.text} {hit.text}",
                                  score=min(prev.score, hit.score),
                                  confidence=min(prev.confidence, hit.confidence))
                continue
        out.append(hit)
    return out


def _printed_keys(terms: Sequence[PhiTerm], params: Mapping[str, Any],
                  group: Callable[[PhiTerm], Optional[str]]) -> dict[str, list[tuple[str, int]]]:
    """(normalized key, printed length) of the ``terms``, by ``group(term)`` (None:
    left out): what a value read in part is measured against."""
    out: dict[str, list[tuple[str, int]]] = {}
    for t in terms:
        g = group(t)
        if g is not None:
            out.setdefault(g, []).append((normalize(t.text, params), len(t.text)))
    return out


def _unread_chars(term: PhiTerm, matched: Sequence[Word], score: float, complete: bool,
                  forms: Mapping[str, Sequence[tuple[str, int]]],
                  params: Mapping[str, Any]) -> tuple[int, int]:
    """How many characters of the printed value OCR did not read (before, after)
    ``matched``.

    A read shorter than the term: "RIVERBEND WOME!" for RIVERBEND WOMENS HEALTH,
    "Nakar" for Nakamura, the rest after it; "1ildren's Hospita:" for Meadowbrook
    Children's Hospital, its start before it (wrapped from the line above, or lost
    over a dark ground).  And for a name not ``complete`` (no degree read after
    it), the rest of its shortest longer written form: "Priya" read alone, the
    surname over speckle never proposed, is most likely "Priya Castellanos";
    "RAHIMI ROSA" is most likely RAHIMI^ROSA^G."""
    read = " ".join(w.text for w in matched)
    key = normalize(term.text, params)
    before = after = 0
    if score < 100.0:
        # by length, or by letters/digits when junk stands in for them
        # ("31-MAY-~:" for 31-MAY-21)
        got = normalize(read, params)
        missing = max(len(term.text) - len(read), len(key) - len(got))
        # (a name's parts are printed in any order, and a short read aligns anywhere)
        where = (fuzz.partial_ratio_alignment(got, key)
                 if missing > 0 and len(got) >= 6 and term.kind != "name" else None)
        if where is not None and where.dest_start >= 2 and where.score >= 80.0:
            scale = len(term.text) / max(1, len(key))     # printed characters per key one
            before = int(round(where.dest_start * scale))
            after = int(round((len(key) - where.dest_end) * scale))
        else:
            after = missing
    if term.kind == "name" and not complete:
        longer = [n for k, n in forms.get(term.attribute, ()) if k.startswith(key) and k != key]
        if longer:
            after = max(0, after) + min(longer) - len(term.text)
    return max(0, before), max(0, after)


#: A label glued before a value in one OCR word: "3irth:" of "3irth:01-0CT-79".
_GLUED_LABEL = re.compile(r"\S*?[^\W\d_]{3,}[:;](?=\S)")


def _without_glued_label(hit: Hit, ws: Sequence[Word]) -> Hit:
    """A hit of one word that holds a label before its value ("DOB:12.03.1980",
    "D.O.B.1944-11-30": OCR read no space between them) starts where the value
    does, by the share of characters: the label stays."""
    if len(ws) != 1 or ws[0].rotation:
        return hit
    text = ws[0].text
    m = _GLUED_LABEL.match(text)
    cut = max([e for e, _ in label_ends(text) if 0 < e < len(text)] + ([m.end()] if m else []),
              default=0)
    while 0 < cut < len(text) and text[cut] in ".:;#":
        cut += 1         # the label's own mark ("D.O.B" ends at its last dot)
    if not cut or cut >= len(text):
        return hit
    b = hit.box
    x0 = ws[0].box.x0 + int(ws[0].box.width * cut / len(text))
    return replace(hit, box=Box(max(b.x0, x0), b.y0, b.x1, b.y1)) if x0 < b.x1 else hit


def _known_rest(read: Sequence[Word], kind: Optional[str],
                keys: Mapping[str, Sequence[tuple[str, int]]], params: Mapping[str, Any]
                ) -> tuple[int, int]:
    """Characters of a header ID or date printed (before, after) ``read``, a part
    of it that a label or pattern rule found.  Its start ("Accession: RX15", the
    rest of RX1540448 lost over speckle): the fewest any such value leaves after
    it; else its end, four characters at least ("Acc: 399674", the RX1 of
    RX1399674 lost): the fewest any such value has before it."""
    text = " ".join(w.text for w in read)
    key = normalize(text, params)
    if len(key) < 2:
        return 0, 0
    values = [(k, n) for k, n in keys.get(kind or "", ()) if len(k) > len(key)]
    after = [n - len(text) for k, n in values if k.startswith(key) or (
        len(key) >= 4 and Levenshtein.distance(k[:len(key)], key, score_cutoff=1) <= 1)]
    if after:
        return 0, max(0, min(after))
    before = [n - len(text) for k, n in values if len(key) >= 4 and k.endswith(key)]
    return max(0, min(before, default=0)), 0


def _extend_truncated(hit: Hit, matched: Sequence[Word], missing: int, kind: str,
                      words: Sequence[Word], unsure: float, *, before: int = 0) -> Hit:
    """``hit`` grown to the right by ``missing`` characters of the width of the
    ``matched`` words, and to the left by ``before``: the unread rest of the value
    is most likely just after it (its lost start just before it; left-to-right
    words only; the redact stage clips to the image).  It stops at a word of its
    row that is something else: a label (a word ending in a colon read with
    confidence ``unsure`` at least), overlay vocabulary, or (by a name) digits;
    not at marks read on their own ("!!" inside "CITY HEART INSTITUTE")."""
    if (missing <= 0 and before <= 0) or any(w.rotation for w in matched):
        return hit
    chars = sum(len(w.text) for w in matched)
    if not chars:
        return hit
    # (the letters' width, not the gaps': wide spacing would overstate it)
    char_w = sum(w.box.width for w in matched) / chars
    box = hit.box
    x0 = box.x0 - int(round(max(0, before) * char_w))
    x1 = box.x1 + int(round(max(0, missing) * char_w))
    for w in words:
        if (w.layer == hit.layer
                and w.box.rows_shared(box) >= 0.5 * min(w.box.height, box.height)
                and (_sure_label(w, unsure) or _overlay_word(w.text)
                     or (kind == "name" and any(c.isdigit() for c in w.text)))):
            if box.x1 - 2 <= w.box.x0 < x1:
                x1 = w.box.x0 - 1
            if x0 < w.box.x1 <= box.x0 + 2:
                x0 = w.box.x1 + 1
    x0, x1 = max(0, min(x0, box.x0)), max(x1, box.x1)
    if (x0, x1) == (box.x0, box.x1):
        return hit
    return replace(hit, box=Box(x0, box.y0, x1, box.y1))


def _overlay_word(text: str) -> bool:
    """An overlay word with a letter or a digit (a lone mark is allowlisted too)."""
    return any(c.isalnum() for c in text) and is_allowlisted(text)


def _short_number(c: _Cand, lines: list[_Line], short: int) -> bool:
    text = "".join(lines[li].words[wi].text for li, wi in dict.fromkeys(c.refs))
    digits = sum(ch.isdigit() for ch in text)
    return digits < short and not any(ch.isalpha() for ch in text)


@lru_cache(maxsize=1)
def label_words() -> frozenset[str]:
    """Words of the PHI labels ("ID", "MRN", "DOB"...): a number after them is a value."""
    return frozenset(w.casefold().strip(".#:") for e in load_json("match.json")["labels"]
                     for phrase in e["words"] for w in phrase.split())


def _measure_word(text: str) -> bool:
    """Overlay vocabulary that makes a number next to it a measurement."""
    return (is_allowlisted(text) and any(c.isalpha() for c in text)
            and not _label_word(text))


def _looks_measured(refs: tuple, lines: list[_Line]) -> bool:
    """A bare number right after or before overlay vocabulary ("kVp 120", "120 cm")
    is a measurement, whatever short header value it happens to equal."""
    li = refs[0][0]
    wis = sorted({wi for l2, wi in refs if l2 == li})
    words = lines[li].words
    if not all(any(c.isdigit() for c in words[wi].text) for wi in wis):
        return False
    side = [wi for wi in (wis[0] - 1, wis[-1] + 1) if 0 <= wi < len(words)]
    return any(_measure_word(words[wi].text) for wi in side)


def _is_title(text: str, titles: frozenset[str]) -> bool:
    """"Dr.", "Prof", "Dr:" (a title as OCR reads it before a name)."""
    return text.strip(" ,:;").rstrip(".").casefold() in titles


def _title_like(text: str, titles: frozenset[str]) -> bool:
    """A title, or what OCR leaves of one of three letters or more: "Pro" or "Pro!"
    (its last letter lost in the ground), "Proj" (one letter misread).  Two-letter
    titles must read exactly: "Or" is a word."""
    if _is_title(text, titles):
        return True
    bare = _EDGE_MARKS.sub("", text).casefold()
    if _label_word(text) or normalize(text) in _label_keys():
        return False     # "MRN" is a label, not a misread "Mrs"
    return len(bare) >= 3 and bare.isalpha() and any(
        len(t) >= 3 and (t.startswith(bare) or (len(t) == len(bare) and Hamming.distance(t, bare) <= 1))
        for t in titles)


def _name_tail(word: Word, degrees: frozenset[str] = frozenset()) -> bool:
    """The end of a name word whose start OCR lost ("eau," of Moreau): letters only,
    the first one lower case, perhaps glued to a degree ("kamura,.MD")."""
    first, *rest = re.split(r"[,.;]+", _EDGE_MARKS.sub("", word.text))
    return (first.isalpha() and first[0].islower() and not _is_label(word)
            and not is_allowlisted(word.text) and all(_degree_like(r, degrees) for r in rest))


def _with_affixes(line: _Line, wis: list[int]) -> list[int]:
    """A name's words plus the title just before it and the degree just after it:
    "Dr." and ", MD" belong to the name and go with it."""
    titles, degrees = name_affixes()
    lo, hi = min(wis), max(wis)
    out = list(wis)
    if lo > 0 and _is_title(line.words[lo - 1].text, titles):
        out.append(lo - 1)
    if (hi + 1 < len(line.words)
            and line.words[hi + 1].text.strip(" ,;").rstrip(".").casefold() in degrees):
        out.append(hi + 1)
    return out


#: Words between two fragments of one value that are joined with them.
_MAX_GAP_WORDS = 2


def _fragments_joined(chosen: list[_Cand], lines: list[_Line]):
    """(candidate, {line: word indexes}) with the fragments of one value joined.

    Wide letter spacing or a noisy ground makes OCR split one printed value into
    pieces ("2025", "-", "05", "-09", "16:40"); the matcher finds some pieces, and
    the words between them (and a month name just before, "Jul") are
    part of the same value, so they are redacted with it.
    """
    groups: dict[tuple[int, str], list] = {}
    for c in chosen:
        # a date and the time of the same event are printed together ("2025-05-09 16:40")
        family = re.sub(r"(Date|Time)$", "", c.term.attribute)
        by_line: dict[int, list[int]] = {}
        for li, wi in c.refs:
            if wi not in by_line.setdefault(li, []):
                by_line[li].append(wi)
        for li, wis in by_line.items():
            groups.setdefault((li, family), []).append((c, wis))
    out = []
    for (li, family), parts in groups.items():
        words = lines[li].words
        got = sorted({wi for _, wis in parts for wi in wis})
        lo, hi = got[0], got[-1]
        joined = list(range(lo, hi + 1)) if (hi - lo + 1) - len(got) <= _MAX_GAP_WORDS else got
        dated = any(c.term.kind in ("date", "time") for c, _ in parts)
        if dated and lo > 0 and is_month_name(words[lo - 1].text):
            joined.insert(0, lo - 1)
        if sorted(joined) == got:  # nothing between or before them: each keeps its reason
            out.extend((c, {li: wis}) for c, wis in parts)
        else:
            best = max(parts, key=lambda p: (p[0].score, len(p[1])))[0]
            out.append((best, {li: joined}))
    return out


def match_words(words: Sequence[Word], terms: Sequence[PhiTerm], *, mode: str = "phi",
                params: Optional[Mapping[str, Any]] = None) -> list[Hit]:
    """Hits for the OCR ``words`` of one image.

    ``mode="phi"``: header terms (``reason="header:<Keyword>"``), pattern rules
    (``"pattern:date"``...) and label rules (``"label:DOB"``...).
    ``mode="all-text"``: the same, plus every other word that is not on the
    allowlist (``"mode:all-text"``).  A hit covers words of one line; a term that
    wraps onto the next line gives one hit per line.  ``params`` overrides
    top-level keys of ``models/v1/match.json``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown match mode {mode!r}; choose one of {', '.join(MODES)}")
    p = match_params(params)
    words = [_label_colon(w) for w in words]
    conf = _conf(p)
    lines = _group_lines(words, conf, p["line_join"]["max_join_gap"])
    index = _index_for(terms, p)
    order = {t: i for i, t in enumerate(terms)}
    window = p["max_window_tokens"]

    pairs = (_stacked_pairs(lines, p["line_join"]["max_gap"])
             + _row_pairs(lines, p["line_join"]["max_row_gap"]))
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(lines))}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)

    # pattern and label rules, per line
    hits: list[Hit] = []
    covered: set[tuple[int, int]] = set()
    rule_hits: list[tuple[list[int], int, str]] = []
    for li, line in enumerate(lines):
        for s, e, reason in pattern_spans(line.text):
            idx = [wi for wi, (ws, we) in enumerate(line.offsets) if ws < e and s < we]
            if idx and not all(is_allowlisted(line.words[wi].text) for wi in idx):
                rule_hits.append((idx, li, reason))
                covered.update((li, wi) for wi in idx)

    # an institution name wrapped onto the next line ("Klinikum" / "Am Rosenhang")
    for a, b in _stacked_pairs(lines, p["line_join"]["max_gap"]):
        if institution_spans(lines[a].text):
            continue     # the line above is a whole name already ("... HOSPITAL" / "ULTRASOUND REPORT")
        head = lines[a].text + " "
        for s, e, _ in institution_spans(head + lines[b].text):
            if not s < len(head) - 1 < e:
                continue     # within one line: the per-line rules had it
            above = [wi for wi, (ws, we) in enumerate(lines[a].offsets) if ws < e and s < we]
            below = []
            for wi, (ws, we) in enumerate(lines[b].offsets):
                text = lines[b].words[wi].text
                if (len(head) + ws >= e or text.rstrip().endswith(":")
                        or (text.casefold().strip(".#:") in label_words()
                            and not is_institution_word(text))
                        or is_allowlisted(text)):
                    break    # the line below goes on with a label or overlay, not the name
                below.append(wi)
            if not below or below[0] != 0 or above[-1:] != [len(lines[a].words) - 1]:
                continue
            for li, idx in ((a, above), (b, below)):
                if idx:
                    rule_hits.append((idx, li, "pattern:institution"))
                    covered.update((li, wi) for wi in idx)

    # fail closed: a label's value that OCR could not read with confidence, or (after
    # the label's colon) read as nothing the label could announce, is redacted as it
    # stands ("DOB: BOB 22 shoe" is a birth date read badly, "Accession: RX?" the
    # start of a number); so is the start of a date after a date label ("DOB: Jul",
    # the rest lost)
    unsure = float(p["label_value_min_confidence"])
    unread_after: dict[tuple, Word] = {}     # such a value -> the label word before it
    for li, line in enumerate(lines):
        for end, reason in label_ends(line.text):
            value = []
            for wi, (ws, we) in enumerate(line.offsets):
                if ws < end:
                    continue
                word = line.words[wi]
                if word.text.rstrip().endswith(":") and _sure_label(word, unsure):
                    break  # the next label (not "7:" read at 57 inside "Oct 5 1989")
                value.append(wi)
            texts = [line.words[wi].text for wi in value]
            kind = label_kinds().get(reason)
            if (value and not any((li, wi) in covered for wi in value)
                    and (any(line.words[wi].confidence < unsure for wi in value)
                         or (value[0] > 0
                             and line.words[value[0] - 1].text.rstrip().endswith((":", "#"))
                             and not _plausible_value(kind, texts))
                         or (kind == "date" and _date_start(texts)))
                    and not all(is_allowlisted(t) for t in texts)):
                rule_hits.append((value, li, f"label:{reason}"))
                covered.update((li, wi) for wi in value)
                if value[0] > 0:
                    unread_after[(li, tuple(value))] = line.words[value[0] - 1]

    # a label that ends a line takes its value from the start of the line below
    # (or of the line just right of it on the same row)
    for a, b in pairs:
        dangling = dangling_label(lines[a].text)
        if dangling is None:
            continue
        start, reason, kind = dangling
        for s, e, why in label_value_spans(lines[b].text, kind, reason):
            below = [wi for wi, (ws, we) in enumerate(lines[b].offsets) if ws < e and s < we]
            above = [wi for wi, (ws, we) in enumerate(lines[a].offsets) if we > start]
            if below and not all(is_allowlisted(lines[b].words[wi].text) for wi in below):
                rule_hits.append((below, b, why))
                if above:   # a title that is part of the name ("Dr.") goes too
                    rule_hits.append((above, a, why))
                covered.update((a, wi) for wi in above)
                covered.update((b, wi) for wi in below)

    # header terms, on each line and across each pair of stacked lines
    cands: list[_Cand] = []
    if index.exact:
        for line in lines:
            cands.extend(_candidates(line.toks, index, window, order))
        for a, b in pairs:
            tail, head = lines[a].toks[-window:], lines[b].toks[:window]
            cands.extend(_candidates(tail + head, index, window, order, must_cross=len(tail)))

    ctx = p["context_tokens"]
    # token position of each word ref, for the "next to another hit" test
    tok_pos: dict[tuple[int, int], list[int]] = {}
    for li, line in enumerate(lines):
        for ti, t in enumerate(line.toks):
            tok_pos.setdefault(t.ref, []).append(ti)

    short = p["short_numeric_key"]

    def veto(c: _Cand) -> bool:
        # a short number equal to a header ID, but standing as a measurement
        if (c.term.kind in ("id", "phone") and _short_number(c, lines, short)
                and _looks_measured(c.refs, lines)):
            return True
        # initials that are a label: "At:" is no A.T., "ID:" no I.D.
        return not c.term.standalone and all(
            lines[li].words[wi].text.rstrip().endswith(":") for li, wi in c.refs)

    def near(refs: tuple) -> bool:
        hit_refs = covered | taken
        for ref in refs:
            li = ref[0]
            for other in hit_refs:
                if other[0] in neighbours[li]:
                    return True
                if other[0] == li and other not in refs:
                    d = min(abs(x - y) for x in tok_pos[ref] for y in tok_pos[other])
                    if d <= ctx:
                        return True
        return False

    taken: set = set()
    chosen = _select(cands, taken, near, veto)

    header_words: set[tuple[int, int]] = set()
    rotated: list[tuple[Hit, int]] = []
    # every full name form by attribute, every ID and date by kind
    forms = _printed_keys(terms, p, lambda t: t.attribute if t.kind == "name" and t.full else None)
    known = _printed_keys(terms, p, lambda t: t.kind if t.kind in ("id", "date") else None)
    for c, by_line in _fragments_joined(chosen, lines):
        for li, wis in by_line.items():
            matched = [lines[li].words[wi] for wi in sorted(wis)]
            if c.term.kind == "name":
                wis = _with_affixes(lines[li], wis)
            ws = [lines[li].words[wi] for wi in sorted(wis)]
            hit = _without_glued_label(_hit(ws, f"header:{c.term.attribute}", c.score), ws)
            if len(by_line) == 1:
                complete = ws[-1] is not matched[-1]      # a degree read after it
                before, after = _unread_chars(c.term, matched, c.score, complete, forms, p)
                hit = _extend_truncated(hit, matched, after, c.term.kind, words, unsure,
                                        before=before)
            if ws[0].rotation in (90, 270):
                rotated.append((hit, ws[0].rotation))
            else:
                hits.append(hit)
            header_words.update((li, wi) for wi in wis)
    hits.extend(_join_rotated(rotated))
    # one hit per set of words; a label names it better than a bare pattern
    rule_hits.sort(key=lambda r: not r[2].startswith("label:"))
    seen: set[tuple] = set()
    for idx, li, reason in rule_hits:
        if all((li, wi) in header_words for wi in idx) or (li, tuple(idx)) in seen:
            continue
        seen.add((li, tuple(idx)))
        ws = [lines[li].words[wi] for wi in idx]
        hit = _without_glued_label(_hit(ws, reason, 100.0), ws)
        label = unread_after.get((li, tuple(idx)))
        hit = _unread_value(hit, label) if label is not None else _year_unread(hit)
        kind = _reason_kind(reason, {})
        if kind in ("id", "date"):
            before, after = _known_rest(ws, kind, known, p)
            hit = _extend_truncated(hit, ws, after, kind, words, unsure, before=before)
        hits.append(hit)

    kinds = {t.attribute: t.kind for t in terms}
    hits = [_with_row_tail(h, words, _value_kind(h.reason, kinds), p) for h in hits]

    if mode == "all-text":
        done = header_words | covered
        for li, line in enumerate(lines):
            for wi, w in enumerate(line.words):
                if (li, wi) not in done and not is_allowlisted(w.text):
                    hits.append(_hit([w], "mode:all-text", 100.0))
    return hits


_VALUE_MARK = re.compile(r"[^\w\s.,:;/()'^-]")


def _date_start(texts: Sequence[str]) -> bool:
    """Whether the words after a date label (a birth date, a study date) start a
    date: a month name or a digit first.  A date is PHI however little of it was
    read."""
    first = texts[0].strip(_STRIP) if texts else ""
    return is_month_name(first) or first[:1].isdigit()


def _plausible_value(kind: Optional[str], texts: Sequence[str]) -> bool:
    """Whether the words after a label could be the value it announces: an ID has
    four letters or digits or more, a date four digits or a month, a name a word of
    two letters; none holds a mark no such value is printed with ('?', '*').  A
    value read with confidence but not so is the legible start of one whose rest
    was lost (over texture, cut at the proposal's end)."""
    text = " ".join(texts)
    if _VALUE_MARK.search(text):
        return False
    if kind == "id":
        return sum(c.isalnum() for c in text) >= 4
    if kind == "date":
        return sum(c.isdigit() for c in text) >= 4 or any(is_month_name(t) for t in text.split())
    if kind == "name":
        return any(sum(c.isalpha() for c in t) >= 2 for t in text.split())
    return True


# ------------------------------------------------------------- rest of a value

def _unread_value(hit: Hit, label: Word) -> Hit:
    """A label's value that OCR could not read, redacted from the label's end to
    half a row height past the last word read in it, and over the label's rows at
    least: the boxes of words read as garbage ('moe' for 578999210) cover only part
    of the ink they came from, and the value is printed in the label's font."""
    if label.rotation % 360 or hit.box.height == 0 or label.box.x1 > hit.box.x0:
        return hit
    b, lb = hit.box, label.box
    return replace(hit, box=Box(lb.x1 + 1, min(b.y0, lb.y0), b.x1 + b.height // 2,
                                max(b.y1, lb.y1)))


_YEARLESS = re.compile(r"[-/.]\s*$")


def _year_unread(hit: Hit) -> Hit:
    """A date read up to its year ("06/18/", "13-APR-"; the year lost in the ground)
    grows to the right by four characters, where the year is printed."""
    last = hit.text.split()[-1] if hit.text.split() else ""
    if (hit.reason != "pattern:date" or hit.box.height == 0
            or not (_YEARLESS.search(hit.text) or is_month_name(last))):
        return hit
    b = hit.box
    grow = int(round(4 * b.width / max(1, len(hit.text.replace(" ", "")))))
    return replace(hit, box=Box(b.x0, b.y0, b.x1 + grow, b.y1))


def _reason_kind(reason: str, kinds: Mapping[str, str]) -> Optional[str]:
    """The kind of value a hit's reason names: its header term's (``kinds``, by
    attribute), its label's, or its pattern's."""
    source, _, what = reason.partition(":")
    return {"header": kinds.get(what), "label": label_kinds().get(what),
            "pattern": what}.get(source)


def _value_kind(reason: str, kinds: Mapping[str, str]) -> Optional[str]:
    """"name", "date" or "institution" when a hit's reason says its value is one."""
    return {"name": "name", "date": "date", "time": "date",
            "institution": "institution"}.get(_reason_kind(reason, kinds) or "")


_EDGE_MARKS = re.compile(r"^[^\w]+|[^\w]+$")
# a clock time as OCR leaves it: "16:39", "1639", "06:", "1", "16:C" (the rest unread)
_TIME_LEFT = re.compile(r"\d{1,2}(?:[:.;,h']?\d{1,2}){0,2}|\d{1,2}[:;]\S{1,2}")


def _time_left(text: str) -> bool:
    """Whether ``text`` is what OCR left of a clock time ("16:39", "1639", "06:")."""
    return bool(_TIME_LEFT.fullmatch(ocr_digits(_EDGE_MARKS.sub("", text))))


def _degree_like(bare: str, degrees: frozenset[str]) -> bool:
    """A degree, or one misread character away from one: "RDM5" for RDMS, "ML" for
    MD (never one missing: "DOE" is no "DO")."""
    folded = bare.casefold()
    return len(folded) <= 5 and any(
        len(d) == len(folded) and Hamming.distance(folded, d) <= 1
        for d in (x.replace(".", "") for x in degrees) if len(d) >= 2)


_NAME_WORD = re.compile(r"[^\W\d_][^\W\d_'.-]+,?")


def _name_like(word: Word) -> bool:
    """A word that can be part of a name: letters, no label, no overlay word."""
    return bool(_NAME_WORD.fullmatch(word.text)) and not (
        _label_word(word.text) or is_allowlisted(word.text))


def _name_after_title(kind: Optional[str], texts: Sequence[str], word: Word,
                      titles: frozenset[str]) -> bool:
    """A title is never a whole name: after a value read as titles only ("Performed
    by: Prof", the name further along the row), the next two name-like words (letters,
    no label, no overlay word) are the name; after a title and one name word
    ("Prof Declan", the surname read on another line), the next one is."""
    if kind != "name" or not _NAME_WORD.fullmatch(word.text):
        return False
    parts = " ".join(texts).split()      # a hit's text may hold several words
    lead = 0
    while lead < len(parts) and _is_title(parts[lead], titles):
        lead += 1
    if lead == 0 or len(parts) - lead >= 2:
        return False
    return _name_like(word)


def _label_colon(word: Word) -> Word:
    """A label word OCR ended with a semicolon or a question mark ("Nom;",
    "Datum;", "Nom?") ends with the colon it has on the screen: the rules that look
    for a label's colon see it."""
    text = word.text.rstrip()
    if text.endswith((";", "?")) and _label_word(text[:-1]):
        return replace(word, text=text[:-1] + ":")
    return word


def _label_word(text: str) -> bool:
    return text.strip(_STRIP).casefold() in label_words()


def _is_label(word: Word) -> bool:
    """A label word, or a word ending in a colon: the next field starts there."""
    return _label_word(word.text) or word.text.endswith(":")


def _sure_label(word: Word, unsure: float) -> bool:
    """A label word, or a word ending in a colon read with confidence ``unsure`` at
    least: a colon word read unsure is more often a value's end read badly ("7:" of
    "Oct 5 1989", "Rereiia:" of Ferreira) than the next field."""
    return _label_word(word.text) or (word.text.rstrip().endswith(":")
                                      and word.confidence >= unsure)


def _unsure_piece(word: Word, unsure: float) -> bool:
    """A piece of ink OCR could not make sense of: no label, and a lone character
    or a low-confidence reading."""
    bare = _EDGE_MARKS.sub("", word.text)
    if _is_label(word):
        return False
    return len(bare) <= 1 or word.confidence < unsure


def _belongs_to_value(kind: str, word: Word, gap: int, row_height: int, unsure: float,
                      degrees: frozenset[str]) -> bool:
    """A word printed after a name or a date that is part of the same value: a
    degree after a name (also as OCR mangles it: "RDM5" for "RDMS"), the clock time
    of a date, or something OCR could not read with confidence (fail closed)."""
    bare = _EDGE_MARKS.sub("", word.text)
    if not bare:
        return gap <= 0.8 * row_height   # a comma or a dot read on its own, close by
    if kind == "date" and _time_left(word.text):
        return True
    if kind == "institution" and is_institution_word(word.text):
        return True      # "Children", then "Hospital" read apart (its "'s" lost)
    if kind == "name" and bare.casefold() in degrees:
        return True      # "MD:" with a colon read after it is still the degree
    if _sure_label(word, unsure) or (word.text.endswith(":") and _degree_like(bare, degrees)):
        return False     # "ID:", "1D:" start the next field: no "MD" misread (but
        #                  "Rereiia:" is a value's end read badly, not a label)
    if kind == "name" and (gap <= row_height or bare.casefold() in degrees) and _degree_like(
            bare, degrees):
        return True
    if (kind == "name" and len(bare) <= 3 and word.confidence < unsure
            and gap <= 0.5 * row_height):
        return True     # a misread short piece right at a name's end ("kv" for "MD")
    if is_allowlisted(word.text):
        return False
    if gap < 0:
        return True     # another reading of the value's end ("Halvorsen", then "en,")
    return word.confidence < unsure and len(bare) <= 8


def _with_row_tail(hit: Hit, words: Sequence[Word], kind: Optional[str],
                   p: Mapping[str, Any]) -> Hit:
    """``hit`` grown over what follows it on its row and belongs to its value.

    OCR often stops inside a printed value: the time after a date is read as
    "1!", the degree after a name as a separate line or not at all, the end of a
    name over speckle as a few low-confidence letters.  Words on the hit's row,
    at most ``row_tail.max_gap`` row heights after it (and titles just before a
    name, or what is left of the date before a clock time: "202: 03-06" of
    2022-03-06) join it, one after another, while they look like part of the value.
    What is left of a clock time may be further (``time_max_gap``): its first
    digits unread in between ("2022-01-01", then "16" of 08:16).
    Another reading of the value's end (overlapping the hit) is judged the same way.
    """
    if kind is None or hit.box.height == 0:
        return hit
    cfg = p["row_tail"]
    titles, degrees = name_affixes()
    unsure = float(p["label_value_min_confidence"])
    h = hit.box.height
    # the letter height of the value itself: one reading's box can be much taller
    # than its ink (speckle read with it), and the words after it are no smaller
    # than the value's own letters
    inside = sorted(w.box.height for w in words if w.layer == hit.layer and w.frames == hit.frames
                    and 2 * hit.box.intersection(w.box).area >= w.box.area > 0)
    letters = min(h, inside[len(inside) // 2]) if inside else h
    row = [w for w in words
           if w.layer == hit.layer and w.frames == hit.frames
           and 0.4 * letters <= w.box.height <= 2.0 * h
           and w.box.rows_shared(hit.box) >= cfg["min_row_overlap"] * min(w.box.height, h)]
    box, texts = hit.box, [hit.text]
    # a name a label announces has two words at least: a surname read alone
    # ("Patient: LINDGREN", then "YUSUI") takes the next name-like word
    labelled_name = kind == "name" and hit.reason.startswith("label:")
    # what is left of the date before a clock time: "202: 03-06" of 2022-03-06
    clock = kind == "date" and is_clock_time(hit.text)
    printed = len(hit.text.split())

    def joins(w: Word) -> bool:
        """``w`` (after ``box``, as grown so far) is part of the value."""
        return (_belongs_to_value(kind, w, w.box.x0 - box.x1, h, unsure, degrees)
                or _name_after_title(kind, texts, w, titles)
                or (labelled_name and printed < 2 and _name_like(w)))

    for _ in range(cfg["max_words"]):
        # (a word that ends within 2 px of the box, or lies in it but for a few
        # pixels, is another reading of its end: "Declan:" of "Prof Declan")
        right = [w for w in row if w.box.x1 > box.x1 + 2 and w.box.x0 >= box.x0
                 and min(w.box.x1, box.x1) - w.box.x0 < 0.9 * w.box.width
                 and (w.box.x0 - box.x1 <= cfg["max_gap"] * h
                      or (kind == "date" and w.box.x0 - box.x1 <= cfg["time_max_gap"] * h
                          and _time_left(w.text))
                      or (kind == "institution" and is_institution_word(w.text)
                          and w.box.x0 - box.x1 <= cfg["institution_max_gap"] * h))]
        left = [w for w in row if w.box.x1 <= box.x0 + 2
                and ((kind == "name" and box.x0 - w.box.x1 <= cfg["max_gap"] * h
                      and _title_like(w.text, titles))
                     or (clock and box.x0 - w.box.x1 <= cfg["time_max_gap"] * h
                         and is_date_piece(w.text))
                     or (clock and box.x0 - w.box.x1 <= 0.8 * h
                         and not _EDGE_MARKS.sub("", w.text)))]   # a mark read on its own
        nxt = min(right, key=lambda w: w.box.x0, default=None)
        if nxt is not None and not joins(nxt):
            # a surer reading of the same ink may say what it is ("MAD", then "MD")
            nxt = next((w for w in right if w.confidence > nxt.confidence and joins(w)
                        and 2 * (min(w.box.x1, nxt.box.x1) - max(w.box.x0, nxt.box.x0))
                        >= min(w.box.width, nxt.box.width)), nxt)
        grown = False
        if nxt is not None and joins(nxt):
            printed += nxt.box.x0 >= box.x1     # (not another reading of the last word)
            box, grown = box.union(nxt.box), True
            texts.append(nxt.text)
        elif nxt is not None and kind == "name":
            # whatever stands between a name and its degree is the name's end
            # ("Caste! Taine Lain S 'MD": the "S" alone looks like an overlay letter;
            # "Dr Rafa Mc eau, MD": the tail of Moreau read on its own)
            after = [w for w in row if nxt.box.x1 - 2 <= w.box.x0 <= nxt.box.x1 + h]
            deg = min(after, key=lambda w: w.box.x0, default=None)
            if (deg is not None and nxt.box.x0 - box.x1 <= h
                    and (_unsure_piece(nxt, unsure) or _name_tail(nxt, degrees))
                    and _degree_like(_EDGE_MARKS.sub("", deg.text), degrees)):
                box, grown = box.union(nxt.box).union(deg.box), True
                texts += [nxt.text, deg.text]
        if left:
            prev = max(left, key=lambda w: w.box.x1)
            box, grown = box.union(prev.box), True
            texts.insert(0, prev.text)
        if not grown:
            break
    if box == hit.box:
        return hit
    return replace(hit, box=box, text=" ".join(texts))


# ------------------------------------------------------------------------- text

def find_phi_in_text(text: str, terms: Sequence[PhiTerm], *, patterns: bool = True,
                     params: Optional[Mapping[str, Any]] = None) -> list[tuple[int, int, str]]:
    """Character spans of PHI in free text, e.g. a StudyDescription.

    Same matching as :func:`match_words` (header terms with OCR-tolerant
    comparison, then pattern and label rules if ``patterns``), returned as
    sorted, non-overlapping ``(start, end, reason)``.
    """
    p = match_params(params)
    conf = _conf(p)
    toks: list[_Tok] = []
    spaced = list(re.finditer(r"\S+", text))
    for m in spaced:
        allow = is_allowlisted(m.group())
        for key, s, e in _tokens(m.group(), conf):
            toks.append(_Tok(key, (m.start() + s, m.start() + e), allow, m.start()))
    spans: list[tuple[int, int, str]] = []
    rule = pattern_spans(text) if patterns else []
    rule = [s for s in rule
            if not all(t.allow for t in toks if t.ref[0] < s[1] and s[0] < t.ref[1])]
    index = _index_for(terms, p)
    if index.exact and toks:
        order = {t: i for i, t in enumerate(terms)}
        pos = {t.ref: i for i, t in enumerate(toks)}
        rule_pos = [i for i, t in enumerate(toks)
                    if any(s < t.ref[1] and t.ref[0] < e for s, e, _ in rule)]
        taken: set = set()
        ctx = p["context_tokens"]

        def near(refs: tuple) -> bool:
            mine = {pos[r] for r in refs}
            others = [pos[r] for r in taken] + rule_pos
            return any(abs(x - y) <= ctx for x in mine for y in others if y not in mine)

        word_at = {m.start(): k for k, m in enumerate(spaced)}
        short = p["short_numeric_key"]

        def veto(c: _Cand) -> bool:
            # a short number next to overlay vocabulary is a measurement ("120 kVp")
            ks = sorted({word_at[toks[pos[r]].word] for r in c.refs})
            mine = "".join(spaced[k].group() for k in ks)
            if (c.term.kind not in ("id", "phone") or any(ch.isalpha() for ch in mine)
                    or sum(ch.isdigit() for ch in mine) >= short):
                return False
            side = [spaced[k].group() for k in (ks[0] - 1, ks[-1] + 1) if 0 <= k < len(spaced)]
            return any(_measure_word(w) for w in side)

        cands = list(_candidates(toks, index, p["max_window_tokens"], order))
        for c in _select(cands, taken, near, veto):
            spans.append((c.refs[0][0], c.refs[-1][1], f"header:{c.term.attribute}"))
    spans += rule
    return _merge(spans)


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[list] = []
    for s, e, r in sorted(spans, key=lambda x: (x[0], -x[1])):
        if out and s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, r])
    return [tuple(x) for x in out]


# ------------------------------------------------------------------ whole values

#: Hits whose value may run on past the words OCR matched (not user regions,
#: fixed regions, unread lines or verify's own hits).
_VALUE_SOURCES = ("header:", "pattern:", "label:")


def complete_values(hits: Sequence[Hit], words: Sequence[Word], lines: Sequence[Hit],
                    params: Optional[Mapping[str, Any]] = None, *,
                    terms: Sequence[PhiTerm] = ()) -> list[Hit]:
    """Each value hit grown along its text line over what OCR could not read.

    OCR often reads a value only in part: the last digits of an ID outside every
    word box, the end of a name as a confident-looking fragment's neighbour, the
    first digits of a date as "C:".  ``lines`` are the text lines the propose stage
    found (their boxes end where the ink ends).  Along the hit's line, on each
    side, the hit grows to the line's end when no word read with confidence
    (``value_completion.stop_confidence``, or overlay vocabulary) stands between;
    otherwise over the doubtful words up to the nearest such word, which is the
    next field or the label (fail closed: what could not be read goes with the
    value it follows).  A name (its kind from ``terms`` for header hits) also takes
    the title before it and the degree after it, however they were read."""
    cfg = match_params(params)["value_completion"]
    kinds = {t.attribute: t.kind for t in terms}
    titles, degrees = name_affixes()
    out = []
    for hit in hits:
        if not hit.reason.startswith(_VALUE_SOURCES) or hit.box.height == 0:
            out.append(hit)
            continue
        is_name = _value_kind(hit.reason, kinds) == "name"
        left_open = True      # False once a name has taken its title
        box = hit.box
        h = box.height
        for line in lines:
            if (line.layer != hit.layer or line.frames != hit.frames
                    or line.box.rows_shared(box) < cfg["min_row_overlap"] * min(line.box.height, h)
                    or line.box.height > cfg["max_height_ratio"] * h
                    or min(line.box.x1, box.x1) <= max(line.box.x0, box.x0)):
                continue
            row = [w for w in words if w.layer == hit.layer and w.frames == hit.frames
                   and w.box.rows_shared(line.box) >= cfg["min_row_overlap"] * min(w.box.height, h)
                   and 2 * w.box.intersection(box).area < w.box.area]
            stops = [_stops_value(w, cfg) and not (
                         is_name and _inside_name(w, box, row, degrees, cfg["stop_confidence"]))
                     for w in row]
            # a few letters of the same ink read apart ("St" inside "hterberg") stop
            # nothing that the larger reading around them does not stop; labels do
            stops = [stop and not (_scrap(w) and any(
                         not other and v.box.area > w.box.area
                         and 2 * v.box.intersection(w.box).area >= w.box.area
                         for v, other in zip(row, stops)))
                     for w, stop in zip(row, stops)]
            sure = [w for w, stop in zip(row, stops) if stop]
            doubtful = [w for w, stop in zip(row, stops) if not stop]
            reach = cfg["max_extent"] * h
            # to the right
            stop = min((w.box.x0 for w in sure if w.box.x0 >= box.x1 - 2), default=None)
            if stop is None:
                x1 = line.box.x1
            else:
                x1 = max([w.box.x1 for w in doubtful if box.x1 <= w.box.x0 and w.box.x1 <= stop],
                         default=box.x1)
            # to the left only over doubtful words: unread ink before a value is
            # more often its label than its start; a name's title goes with it
            before = [w for w in sure if w.box.x1 <= box.x0 + 2]
            stop = max((w.box.x1 for w in before), default=line.box.x0)
            x0 = min([w.box.x0 for w in doubtful if w.box.x1 <= box.x0 and w.box.x0 >= stop],
                     default=box.x0)
            if is_name and before and left_open:
                last = max(before, key=lambda w: w.box.x1)
                if _title_like(last.text, titles):   # the name's start: nothing before it
                    x0 = min([x0] + [w.box.x0 for w in row if w.box.x1 <= box.x0
                                     and w.box.rows_shared(last.box) > 0
                                     and w.box.x0 <= last.box.x1 and w.box.x1 >= last.box.x0])
                    left_open = False
            elif not left_open:
                x0 = box.x0
            x0, x1 = max(x0, int(box.x0 - reach)), min(x1, int(box.x1 + reach))
            box = Box(min(box.x0, x0), box.y0, max(box.x1, x1), box.y1)
        out.append(hit if box == hit.box else replace(hit, box=box))
    return out


def _stops_value(word: Word, cfg: Mapping[str, Any]) -> bool:
    """A word read well enough to be something of its own: a value grown along its
    line stops before it."""
    bare = _EDGE_MARKS.sub("", word.text)
    return ((word.confidence >= cfg["stop_confidence"]
             and (len(bare) >= 2 or word.text.rstrip().endswith(":")))
            or _label_word(word.text) or normalize(word.text) in _label_keys()
            or is_misread_label(word.text)
            or (len(bare) >= 2 and is_harmless(word.text)
                and word.confidence >= cfg["harmless_confidence"]))


def _label_as_read(word: Word) -> bool:
    """A label (or a word ending in a colon), also as OCR misreads it ("D.0.B.")."""
    return _is_label(word) or normalize(word.text) in _label_keys()


def _scrap(word: Word) -> bool:
    """Three characters or fewer, no label and no title: a scrap of ink read on its
    own ("Pro" is the title a name grows to, even inside a reading "Pro!")."""
    return (len(_EDGE_MARKS.sub("", word.text)) <= 3 and not _label_as_read(word)
            and not _title_like(word.text, name_affixes()[0]))


def _inside_name(word: Word, name: Box, row: Sequence[Word], degrees: frozenset[str],
                 sure: float) -> bool:
    """A word that does not end a name grown along its line: a degree after it, the
    end of a name word whose start OCR lost ("ntero" of Quintero; only when nothing
    but degrees follows it: "presents with ..." is a sentence), or two or three
    characters mixing digits and letters ("2i" read over a washed-out letter of
    the name: garbage, however confident)."""
    bare = _EDGE_MARKS.sub("", word.text)
    if _label_as_read(word):
        return False     # "ID:" is the next field, not a misread "MD"
    if word.box.x0 >= name.x1 - 2:
        if _degree_like(bare, degrees):
            return True
        if _name_tail(word, degrees):
            after = [w for w in row if w.box.x0 >= word.box.x1 - 2 and w.confidence >= sure
                     and len(_EDGE_MARKS.sub("", w.text)) >= 2]
            return all(_degree_like(_EDGE_MARKS.sub("", w.text), degrees) for w in after)
    return len(bare) <= 3 and any(c.isdigit() for c in bare) and any(c.isalpha() for c in bare)


@lru_cache(maxsize=1)
def _label_keys() -> frozenset[str]:
    """Label words as OCR may misread them ("D.0.B." for D.O.B.), by :func:`normalize`."""
    return frozenset(k for k in (normalize(w) for w in label_words()) if len(k) >= 2)
