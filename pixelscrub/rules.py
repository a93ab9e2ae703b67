"""Device region rules: blank fixed regions of images whose header matches a condition.

Sites that de-identify ultrasound today keep per-device templates: RSNA CTP's
``DicomPixelAnonymizer.script`` and pydicom/deid recipes (``%filter`` sections).
:func:`load_rules` reads those files as they are, and pixelscrub's own TOML or YAML
rules, into one model: a :class:`Rule` is a condition on header attributes (an OR of
ANDs of :class:`Condition`) and what to do when it holds: blank its regions
(``blank``), or refuse the image (``reject``, deid's blacklist).  What a file holds
that cannot be mapped is listed in :attr:`RuleSet.unmapped`, one line each, never
silently dropped.

pixelscrub's own format (TOML shown; YAML takes the same structure)::

    [[rule]]
    name = "GE LOGIQ E9 header band"
    regions = ["0,0,1024,60", "0,700,200,768@0-9"]    # x0,y0,x1,y1[@frames]
    [rule.when]                                        # all must hold
    Manufacturer = { contains = "GE" }
    ManufacturerModelName = "LOGIQE9"                  # equals, ignoring case
    Rows = { min = 700 }
    ImageType = { matches = "SCREEN ?SAVE" }
    BurnedInAnnotation = { present = true }

``regions`` may also hold ``"all"`` (the whole frame), ``"ultrasound-regions"`` (the
SequenceOfUltrasoundRegions imaging areas) or ``"outside-ultrasound-regions"``;
``action = "keep"`` takes a rule's regions out of what the other matching rules blank,
``action = "reject"`` refuses the image.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from pydicom.dataset import Dataset

from .errors import ScrubError
from .options import UserRegion, parse_region
from .records import Box

__all__ = ["Condition", "Rule", "RuleSet", "load_rules", "parse_native", "parse_deid",
           "parse_ctp", "rule_regions", "matching_rules", "blank_regions"]

#: Region names beside boxes: resolved per image.
ALL = "all"
US_REGIONS = "ultrasound-regions"
OUTSIDE_US = "outside-ultrasound-regions"

_OPS = ("equals", "notequals", "contains", "notcontains", "matches", "startswith",
        "endswith", "present", "missing", "empty", "min", "max")


@dataclass(frozen=True)
class Condition:
    """One test of one header attribute (keyword or ``(gggg,eeee)``); ``op`` is one of
    equals, notequals, contains, notcontains (case-insensitive), matches (regular
    expression, case-insensitive), startswith, endswith, present, missing, empty,
    min, max (numbers)."""

    attribute: str
    op: str
    value: str = ""

    def holds(self, ds: Dataset) -> bool:
        present, text = _attribute_text(ds, self.attribute)
        op, value = self.op, self.value
        if op == "present":
            return present
        if op == "missing":
            return not present
        if op == "empty":
            return present and not text.strip()
        if not present:
            return op in ("notequals", "notcontains")
        low, val = text.casefold(), value.casefold()
        if op in ("min", "max"):
            try:
                number = float(text.split("\\")[0])
            except ValueError:
                return False
            return number >= float(value) if op == "min" else number <= float(value)
        return {"equals": low == val or val in low.split("\\"),
                "notequals": not (low == val or val in low.split("\\")),
                "contains": val in low,
                "notcontains": val not in low,
                "matches": re.search(value, text, re.IGNORECASE) is not None,
                "startswith": low.startswith(val),
                "endswith": low.endswith(val)}[op]


@dataclass(frozen=True)
class Rule:
    """A condition (OR of ANDs) and its action: ``blank`` its regions, ``keep`` them
    (taken out of what the other matching rules blank: deid's keepcoordinates) or
    ``reject`` the image."""

    name: str
    any_of: tuple[tuple[Condition, ...], ...]
    regions: tuple[Any, ...] = ()        # UserRegion, or ALL / OUTSIDE_US
    action: str = "blank"
    source: str = ""

    def holds(self, ds: Dataset) -> bool:
        return any(all(c.holds(ds) for c in group) for group in self.any_of)


@dataclass
class RuleSet:
    """Rules read from one or more files, and the constructs that could not be mapped."""

    rules: list[Rule] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def __add__(self, other: "RuleSet") -> "RuleSet":
        return RuleSet(self.rules + other.rules, self.unmapped + other.unmapped)


def matching_rules(rules: Sequence[Rule], ds: Dataset) -> list[Rule]:
    """The rules whose condition holds for ``ds``."""
    return [r for r in rules if r.holds(ds)]


def blank_regions(rules: Sequence[Rule], ds: Dataset) -> list[tuple[UserRegion, str]]:
    """(region, rule name) to blank on this image: the regions of the matching
    ``blank`` rules, less those of the matching ``keep`` rules."""
    matched = matching_rules(rules, ds)
    keep = [r.box for rule in matched if rule.action == "keep" for r in rule_regions(rule, ds)]
    out = []
    for rule in matched:
        if rule.action != "blank":
            continue
        for region in rule_regions(rule, ds):
            out += [(UserRegion(b, region.frames), rule.name) for b in _complement(region.box, keep)]
    return out


def rule_regions(rule: Rule, ds: Dataset) -> list[UserRegion]:
    """``rule``'s regions on this image, named regions resolved from its header."""
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    out = []
    for region in rule.regions:
        if region == ALL:
            out.append(UserRegion(Box(0, 0, cols, rows)))
        elif region == US_REGIONS:
            from .propose import ultrasound_regions
            out += [UserRegion(b) for b in ultrasound_regions(ds)]
        elif region == OUTSIDE_US:
            from .propose import ultrasound_regions
            keep = ultrasound_regions(ds)
            out += [UserRegion(b) for b in _complement(Box(0, 0, cols, rows), keep)]
        else:
            out.append(region)
    return [UserRegion(r.box.clip(cols, rows), r.frames) for r in out
            if not r.box.clip(cols, rows).is_empty()]


def _complement(whole: Box, holes: Sequence[Box]) -> list[Box]:
    """Rectangles covering ``whole`` minus ``holes`` (no hole: all of it)."""
    pieces = [whole]
    for hole in holes:
        nxt = []
        for p in pieces:
            if not p.intersects(hole):
                nxt.append(p)
                continue
            h = p.intersection(hole)
            nxt += [b for b in (Box(p.x0, p.y0, p.x1, h.y0), Box(p.x0, h.y1, p.x1, p.y1),
                                Box(p.x0, h.y0, h.x0, h.y1), Box(h.x1, h.y0, p.x1, h.y1))
                    if not b.is_empty()]
        pieces = nxt
    return pieces


def _attribute_text(ds: Dataset, attribute: str) -> tuple[bool, str]:
    """Whether ``attribute`` is present, and its value as text (multiple values
    joined by a backslash, as DICOM writes them)."""
    m = re.fullmatch(r"\(?\[?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\]?\)?", attribute.strip())
    key: Any = int(m.group(1) + m.group(2), 16) if m else attribute.strip()
    try:
        elem = ds[key] if not isinstance(key, str) else ds.data_element(key)
    except (KeyError, ValueError):
        elem = None
    if elem is None:
        return False, ""
    value = elem.value
    if value is None:
        return True, ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return True, "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return True, ""
    return True, str(value)


# -- readers ---------------------------------------------------------------------------------

def load_rules(paths: Iterable) -> RuleSet:
    """Rules from each file, its format told by its content: a deid recipe
    (``FORMAT dicom`` / ``%filter``), a CTP DicomPixelAnonymizer script (``{ ... }``
    signatures followed by ``(x,y,w,h)`` regions), or pixelscrub's TOML or YAML."""
    out = RuleSet()
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ScrubError(f"{path}: cannot read rules ({exc.strerror})", reason="usage") from None
        if re.search(r"^\s*%filter\b", text, re.M) or re.match(r"\s*FORMAT\s+dicom", text):
            out += parse_deid(text, source=path.name)
        elif path.suffix.lower() in (".toml", ".yaml", ".yml", ".json"):
            out += parse_native(text, path.suffix.lower(), source=path.name)
        elif re.search(r"\{[^{}]*\}\s*\(", text, re.S):
            out += parse_ctp(text, source=path.name)
        else:
            raise ScrubError(f"{path}: not a rules file pixelscrub knows (TOML/YAML rules, a "
                             "deid recipe or a CTP DicomPixelAnonymizer script)", reason="usage")
    return out


def parse_native(text: str, suffix: str = ".toml", *, source: str = "") -> RuleSet:
    """pixelscrub's own rules (see the module docstring), from TOML, YAML or JSON."""
    try:
        if suffix == ".toml":
            from .header.config import _toml
            data = _toml().loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text) or {}
    except ScrubError:
        raise
    except Exception as exc:
        raise ScrubError(f"{source}: cannot parse rules ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]})", reason="usage") from None
    items = data.get("rule", data.get("rules", [])) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ScrubError(f"{source}: expected a list of rules under 'rule'", reason="usage")
    out = RuleSet()
    for i, item in enumerate(items):
        where = f"{source} rule {i + 1}"
        if not isinstance(item, dict):
            raise ScrubError(f"{where}: a rule is a table with name, when and regions",
                             reason="usage")
        unknown = set(item) - {"name", "when", "regions", "action"}
        if unknown:
            raise ScrubError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                             reason="usage")
        name = str(item.get("name") or f"rule{i + 1}")
        conditions = tuple(_native_conditions(item.get("when") or {}, where))
        action = item.get("action", "blank")
        if action not in ("blank", "keep", "reject"):
            raise ScrubError(f"{where}: action must be blank, keep or reject", reason="usage")
        regions = tuple(_native_region(r, where) for r in item.get("regions") or [])
        if action != "reject" and not regions:
            raise ScrubError(f"{where}: a {action} rule needs regions", reason="usage")
        out.rules.append(Rule(name, (conditions,), regions, action, source))
    return out


def _native_conditions(when: Any, where: str) -> Iterable[Condition]:
    if not isinstance(when, dict):
        raise ScrubError(f"{where}: 'when' must be a table of attribute conditions",
                         reason="usage")
    for attribute, test in when.items():
        if isinstance(test, dict):
            for op, value in test.items():
                if op not in _OPS:
                    raise ScrubError(f"{where}: unknown test {op!r} on {attribute} "
                                     f"(one of {', '.join(_OPS)})", reason="usage")
                if op in ("present", "missing", "empty"):
                    if value is True:
                        yield Condition(attribute, op)
                    elif value is False and op in ("present", "missing"):
                        yield Condition(attribute, "missing" if op == "present" else "present")
                    continue
                if op == "matches":
                    _check_regex(str(value), where)
                yield Condition(attribute, op, str(value))
        else:
            yield Condition(attribute, "equals", str(test))


def _native_region(text: Any, where: str) -> Any:
    text = str(text).strip()
    if text in (ALL, US_REGIONS, OUTSIDE_US):
        return text
    try:
        return parse_region(text)
    except ValueError as exc:
        raise ScrubError(f"{where}: {exc}", reason="usage") from None


def _check_regex(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ScrubError(f"{where}: bad regular expression {pattern!r} ({exc})",
                         reason="usage") from None


# deid recipes: %filter whitelist|graylist|blacklist, LABEL blocks, + (and), || (or).
_DEID_TESTS = {"contains": "matches", "notcontains": None, "equals": "equals",
               "notequals": "notequals", "missing": "missing", "present": "present",
               "empty": "empty", "startswith": "startswith", "endswith": "endswith"}


def parse_deid(text: str, *, source: str = "") -> RuleSet:
    """The ``%filter`` sections of a pydicom/deid recipe.

    graylist labels blank their ``coordinates`` (x0,y0,x1,y1), ``ctpcoordinates``
    (x,y,w,h) and ``coordinates all``; ``keepcoordinates from:SequenceOfUltrasoundRegions``
    keeps the imaging areas out of what is blanked; blacklist labels reject the image;
    whitelist labels are named as not used (deid passes such images as clean,
    pixelscrub still reads their text).  ``%header`` and other sections belong to deid's header step and are
    named as unmapped.
    """
    out = RuleSet()
    section, kind = None, None
    label: Optional[dict] = None

    def close() -> None:
        nonlocal label
        if label is None:
            return
        groups = tuple(tuple(g) for g in label["groups"]) or ((),)
        where = f"{source} {kind} {label['name']!r}"
        if label["bad"]:
            out.unmapped.append(f"{where}: not used ({label['bad']})")
        elif kind == "blacklist":
            out.rules.append(Rule(label["name"], groups, (), "reject", source))
        elif kind == "graylist" and label["regions"]:
            keep = tuple(r for r in label["regions"] if r == US_REGIONS)
            blank = tuple(r for r in label["regions"] if r != US_REGIONS)
            if blank:
                out.rules.append(Rule(label["name"], groups, blank, "blank", source))
            if keep:
                out.rules.append(Rule(label["name"], groups, keep, "keep", source))
        elif kind == "graylist":
            out.unmapped.append(f"{where}: flags images without coordinates (nothing to blank)")
        else:
            out.unmapped.append(f"{where}: not used (deid passes such images as clean; "
                                "pixelscrub still reads their text)")
        label = None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("LABEL") else raw.strip()
        if not line or line.startswith("FORMAT"):
            continue
        if line.startswith("%"):
            close()
            parts = line[1:].split()
            section = parts[0].lower() if parts else ""
            kind = parts[1].lower() if section == "filter" and len(parts) > 1 else None
            if section != "filter":
                out.unmapped.append(f"{source} line {number}: %{section} section not used "
                                    "(pixelscrub's header step follows PS3.15; see --deid-config)")
            elif kind not in ("whitelist", "graylist", "blacklist"):
                out.unmapped.append(f"{source} line {number}: unknown filter {kind!r}")
                section = None
            continue
        if section != "filter":
            continue
        if line.startswith("LABEL"):
            close()
            name = line[5:].split("#", 1)[0].strip()
            label = {"name": name, "groups": [], "regions": [], "bad": ""}
            continue
        if label is None:
            out.unmapped.append(f"{source} line {number}: condition outside a LABEL")
            continue
        _deid_line(line, label, number)
    close()
    return out


def _deid_line(line: str, label: dict, number: int) -> None:
    """One line of a LABEL: a region, or a test line.  A line starting with ``+``
    is ANDed with what came before, one starting with ``||`` (or a bare test line
    after the first) is another alternative; ``||`` inside a line joins
    alternatives of that line."""
    words = line.split(None, 1)
    head = words[0].lower()
    rest = words[1].strip() if len(words) > 1 else ""
    if head in ("coordinates", "ctpcoordinates", "keepcoordinates"):
        region = _deid_region(head, rest)
        if region is None:
            label["bad"] = label["bad"] or f"line {number}: {head} {rest}"
        else:
            label["regions"].append(region)
        return
    if head in ("+", "||"):
        how, body = ("and" if head == "+" else "or"), rest
    elif head in _DEID_TESTS:
        how, body = ("or" if label["groups"] else "and"), line
    else:
        label["bad"] = label["bad"] or f"line {number}: unknown test {head!r}"
        return
    alternatives = [_deid_condition(part.strip()) for part in body.split("||")]
    if any(c is None for c in alternatives):
        label["bad"] = label["bad"] or f"line {number}: cannot read {body!r}"
        return
    groups = label["groups"]
    if how == "and" and groups:
        label["groups"] = [g + [c] for g in groups for c in alternatives]
    else:
        label["groups"] = groups + [[c] for c in alternatives]


def _deid_condition(text: str) -> Optional[Condition]:
    parts = text.split(None, 2)
    if not parts or parts[0].lower() not in _DEID_TESTS:
        return None
    test = parts[0].lower()
    if len(parts) < 2:
        return None
    attribute, value = parts[1], parts[2].strip() if len(parts) > 2 else ""
    if test == "contains":             # deid: a regular expression search
        try:
            re.compile(value)
        except re.error:
            return Condition(attribute, "contains", value)
        return Condition(attribute, "matches", value)
    if test == "notcontains":
        return Condition(attribute, "notcontains", value)
    return Condition(attribute, _DEID_TESTS[test], value)


def _deid_region(head: str, rest: str) -> Any:
    rest = rest.strip()
    if head == "keepcoordinates":
        return US_REGIONS if rest == "from:SequenceOfUltrasoundRegions" else None
    if rest == "all":
        return ALL
    nums = [n.strip() for n in rest.split(",")]
    if len(nums) != 4 or not all(re.fullmatch(r"-?\d+", n) for n in nums):
        return None
    a, b, c, d = (max(0, int(n)) for n in nums)
    if head == "ctpcoordinates":      # x, y, width, height
        c, d = a + c, b + d
    if c <= a or d <= b:
        return None
    return UserRegion(Box(a, b, c, d))


# CTP DicomPixelAnonymizer scripts: { signature } followed by (x,y,w,h) regions.
_CTP_METHODS = {"equals": "equals", "equalsignorecase": "equals", "contains": "contains",
                "containsignorecase": "contains", "startswith": "startswith",
                "startswithignorecase": "startswith", "endswith": "endswith",
                "endswithignorecase": "endswith", "matches": "matches",
                "isblank": "empty", "exists": "present", "isgreaterthan": "min",
                "islessthan": "max"}


def parse_ctp(text: str, *, source: str = "") -> RuleSet:
    """A CTP DicomPixelAnonymizer script: each ``{ ... }`` signature (``*`` and,
    ``+`` or, ``!`` not, parentheses; ``Keyword.method("value")`` or
    ``[gggg,eeee].method("value")``) followed by its ``(x,y,w,h)`` regions.
    ``#`` starts a comment; a comment line right before a signature names it."""
    out = RuleSet()
    lines = text.splitlines()
    clean = "\n".join(l.split("#", 1)[0] if not l.lstrip().startswith("#") else "" for l in lines)
    names = _ctp_names(lines)
    count = 0
    for m in re.finditer(r"\{(?P<sig>[^{}]*)\}(?P<regions>(?:\s*\([^()]*\))*)", clean, re.S):
        count += 1
        line_no = clean.count("\n", 0, m.start()) + 1
        name = names.get(line_no) or f"signature {count}"
        where = f"{source} line {line_no}"
        regions = []
        for r in re.findall(r"\(([^()]*)\)", m.group("regions")):
            nums = [n.strip() for n in r.split(",")]
            if len(nums) == 4 and all(re.fullmatch(r"\d+", n) for n in nums):
                x, y, w, h = (int(n) for n in nums)
                if w > 0 and h > 0:
                    regions.append(UserRegion(Box(x, y, x + w, y + h)))
                    continue
            out.unmapped.append(f"{where} ({name}): region ({r}) is not x,y,w,h")
        try:
            groups = _ctp_expression(m.group("sig"))
        except ValueError as exc:
            out.unmapped.append(f"{where} ({name}): signature not used ({exc})")
            continue
        if not regions:
            out.unmapped.append(f"{where} ({name}): signature without regions")
            continue
        out.rules.append(Rule(name, groups, tuple(regions), "blank", source))
    if count == 0:
        out.unmapped.append(f"{source}: no {{ signature }} found")
    return out


def _ctp_names(lines: Sequence[str]) -> dict[int, str]:
    """Signature line -> the comment right above it (or text after its brace)."""
    names = {}
    for i, line in enumerate(lines):
        s = line.strip()
        if not s.startswith("{"):
            continue
        inline = s[1:].split("#", 1)
        if len(inline) > 1 and inline[1].strip():
            names[i + 1] = inline[1].strip()
        elif i and lines[i - 1].strip().startswith("#"):
            names[i + 1] = lines[i - 1].strip().lstrip("#").strip()
    return names


_CTP_TOKEN = re.compile(r"""\s*(?:(?P<op>[*+!()])|(?P<call>(?P<attr>\[[0-9A-Fa-f,]+\]|[A-Za-z][A-Za-z0-9]*)
    \.(?P<method>[A-Za-z]+)\(\s*(?:"(?P<value>(?:[^"\\]|\\.)*)")?\s*\))|(?P<bool>true|false))""", re.X)


def _ctp_expression(text: str) -> tuple[tuple[Condition, ...], ...]:
    """An OR of ANDs from a CTP boolean expression (NOT pushed onto the tests)."""
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _CTP_TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {text[pos:pos + 30].strip()!r}")
        pos = m.end()
        if m.group("op"):
            tokens.append(m.group("op"))
        elif m.group("bool"):
            tokens.append(m.group("bool") == "true")
        else:
            method = m.group("method").lower()
            if method not in _CTP_METHODS:
                raise ValueError(f"method {m.group('method')} is not supported")
            tokens.append(Condition(m.group("attr"), _CTP_METHODS[method],
                                    (m.group("value") or "").replace('\\"', '"')))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        return ((),)                     # an empty signature matches every image
    dnf, rest = _or(tokens, 0, False)
    if rest != len(tokens):
        raise ValueError("unbalanced expression")
    return tuple(tuple(g) for g in dnf)


_NEGATE = {"equals": "notequals", "notequals": "equals", "contains": "notcontains",
           "notcontains": "contains", "present": "missing", "missing": "present"}


def _or(tokens, i, neg):
    groups, i = _and(tokens, i, neg)
    while i < len(tokens) and tokens[i] == "+":
        more, i = _and(tokens, i + 1, neg)
        groups = _combine(groups, more, "and" if neg else "or")
    return groups, i


def _and(tokens, i, neg):
    groups, i = _unary(tokens, i, neg)
    while i < len(tokens) and tokens[i] == "*":
        more, i = _unary(tokens, i + 1, neg)
        groups = _combine(groups, more, "or" if neg else "and")
    return groups, i


def _unary(tokens, i, neg):
    if i >= len(tokens):
        raise ValueError("expression ends early")
    t = tokens[i]
    if t == "!":
        return _unary(tokens, i + 1, not neg)
    if t == "(":
        groups, i = _or(tokens, i + 1, neg)
        if i >= len(tokens) or tokens[i] != ")":
            raise ValueError("missing )")
        return groups, i + 1
    if isinstance(t, bool):
        return ([[]] if t != neg else []), i + 1
    if isinstance(t, Condition):
        if neg:
            if t.op not in _NEGATE:
                raise ValueError(f"cannot negate {t.op}")
            t = Condition(t.attribute, _NEGATE[t.op], t.value)
        return [[t]], i + 1
    raise ValueError(f"unexpected {t!r}")


def _combine(a, b, how):
    if how == "or":
        return a + b
    return [x + y for x in a for y in b]
