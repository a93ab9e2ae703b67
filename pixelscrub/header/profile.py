"""PS3.15 Table E.1-1 as rules, and how one attribute's action is decided.

The table (``pixelscrub/data/ps3.15-table-e1-1.json``) gives each attribute a
Basic Profile action and, per option, the action that replaces it.  This module
turns an attribute tag plus the options in force into one of the six single
actions ``D Z X K C U``.

Combined actions (PS3.15 E.3.1) depend on the attribute's Type in the IOD, which
a de-identifier reading one file does not know.  The rule used here always gives
a valid result for any Type the combination allows:

* ``X/Z`` -> ``Z`` (zero length is valid for Type 2 and Type 3);
* ``X/Z/U*`` (Referenced/Source Image Sequence) -> ``U``: the sequence is kept,
  every item is de-identified like the top level and its UIDs are remapped, so
  references between de-identified files still resolve;
* ``X/D``, ``Z/D``, ``X/Z/D`` -> ``D`` when the attribute is Type 1 in a common
  IOD (:data:`TYPE1_LIKELY`), otherwise ``X`` (for ``X/D``) or ``Z``.

When several selected options give an attribute different actions, the most
protective wins (X, then Z, D, U, C, K), so selecting one more option never
reveals what another one hides.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

__all__ = [
    "Rule",
    "OPTION_KEYS",
    "TYPE1_LIKELY",
    "PRIVATE_RULE_ID",
    "TABLE_PATH",
    "load_rules",
    "rule_for",
    "private_rule",
    "resolve",
]

TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "ps3.15-table-e1-1.json"

#: DeidOptions field -> the table's column for that option.
OPTION_KEYS = {
    "retain_long_full_dates": "rtnLongFullDatesOpt",
    "retain_long_modified_dates": "rtnLongModifDatesOpt",
    "clean_descriptors": "cleanDescOpt",
    "retain_uids": "rtnUIDsOpt",
    "retain_device_id": "rtnDevIdOpt",
    "retain_patient_chars": "rtnPatCharsOpt",
    "retain_institution_id": "rtnInstIdOpt",
    "clean_graphics": "cleanGraphOpt",
    "clean_structured_content": "cleanStructContOpt",
    "retain_safe_private": "rtnSafePrivOpt",
}

#: Table id of the "(GGGG,EEEE) where GGGG is odd" row: all private attributes.
PRIVATE_RULE_ID = "ggggeeee-where-gggg-is-odd"

#: Attributes with a ``.../D`` action that are Type 1 (or 1C) in a common IOD,
#: so removing or emptying them could make the instance invalid: Content
#: Date/Time (SR Document General, enhanced multi-frame images), Acquisition
#: DateTime (enhanced MR/CT), Device Serial Number (Enhanced General Equipment),
#: Observation DateTime (SR content items).
TYPE1_LIKELY = frozenset({0x00080023, 0x00080033, 0x0008002A, 0x00181000, 0x0040A032})

_STRICTNESS = "XZDUCK"  # most protective first


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1: the Basic Profile action and the option actions."""

    tag: str          # as printed in the standard, e.g. "(0010,0010)" or "(50XX,XXXX)"
    name: str
    basic: str        # "X", "Z/D", "X/Z/U*", ...
    options: tuple[tuple[str, str], ...] = ()   # (table column, action)

    def option_action(self, column: str) -> Optional[str]:
        for col, action in self.options:
            if col == column:
                return action
        return None


@dataclass(frozen=True)
class _Rules:
    exact: dict[int, Rule]
    masked: tuple[tuple[int, int, Rule], ...]   # (mask, value, rule): tag & mask == value
    private: Rule


def _parse_tag(text: str) -> tuple[int, int]:
    """``(60XX,4000)`` -> (mask, value); X digits are wildcards."""
    digits = text.strip("()").replace(",", "")
    if len(digits) != 8:
        raise ValueError(f"bad tag in Table E.1-1: {text}")
    mask = value = 0
    for ch in digits.upper():
        mask <<= 4
        value <<= 4
        if ch != "X":
            mask |= 0xF
            value |= int(ch, 16)
    return mask, value


@lru_cache(maxsize=None)
def load_rules(path: Optional[str] = None) -> _Rules:
    """Parse the table once; raises if it is missing or malformed (fail closed)."""
    with open(path or TABLE_PATH, encoding="utf-8") as f:
        rows = json.load(f)
    exact: dict[int, Rule] = {}
    masked = []
    private = None
    for row in rows:
        opts = tuple(sorted((k, v) for k, v in row.items() if k.endswith("Opt")))
        rule = Rule(row["tag"], row["name"], row["basicProfile"], opts)
        if row["id"] == PRIVATE_RULE_ID:
            private = rule
            continue
        mask, value = _parse_tag(row["tag"])
        if mask == 0xFFFFFFFF:
            exact[value] = rule
        else:
            masked.append((mask, value, rule))
    if private is None or len(exact) < 500:
        raise ValueError("Table E.1-1 looks incomplete")
    return _Rules(exact, tuple(masked), private)


def rule_for(tag: int) -> Optional[Rule]:
    """The table row for a (public) tag, repeating groups included, or None."""
    rules = load_rules()
    rule = rules.exact.get(tag)
    if rule is not None:
        return rule
    for mask, value, r in rules.masked:
        if tag & mask == value:
            return r
    return None


def private_rule() -> Rule:
    """The table row that covers every private attribute."""
    return load_rules().private


def resolve(rule: Rule, columns: Iterable[str], tag: int) -> str:
    """The single action (D Z X K C U) for ``rule`` with the option ``columns`` in force."""
    chosen = [_single(a, tag) for a in (rule.option_action(c) for c in columns) if a]
    return min(chosen, key=_STRICTNESS.index) if chosen else _single(rule.basic, tag)


def _single(action: str, tag: int) -> str:
    """One action letter for a possibly combined action (rule in the module doc)."""
    if "/" not in action:
        return action
    parts = action.replace("*", "").split("/")
    if "U" in parts:
        return "U"
    if "D" in parts and tag in TYPE1_LIKELY:
        return "D"
    if "Z" in parts:
        return "Z"
    return "X"
