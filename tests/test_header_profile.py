"""Table E.1-1 loading and how combined actions and options resolve."""
from __future__ import annotations

import json

import pytest

from pixelscrub.header.options import DeidOptions
from pixelscrub.header.profile import (OPTION_KEYS, TABLE_PATH, TYPE1_LIKELY, load_rules,
                                       private_rule, resolve, rule_for)


def test_table_has_every_row():
    rows = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    rules = load_rules()
    assert len(rows) == 621
    assert len(rules.exact) + len(rules.masked) + 1 == len(rows)
    assert private_rule().basic == "X" and private_rule().option_action("rtnSafePrivOpt") == "C"


def test_every_row_resolves_to_one_action_under_every_option():
    rules = load_rules()
    tables = [(tag, r) for tag, r in rules.exact.items()] + [(v, r) for _, v, r in rules.masked]
    for column in [None, *OPTION_KEYS.values()]:
        for tag, rule in tables:
            assert resolve(rule, [column] if column else [], tag) in set("DZXKCU")


@pytest.mark.parametrize("tag,expected", [
    (0x00100010, "Z"),   # Patient's Name
    (0x00100030, "Z"),   # Patient's Birth Date
    (0x00101040, "X"),   # Patient's Address
    (0x00080018, "U"),   # SOP Instance UID
    (0x0020000D, "U"),   # Study Instance UID
    (0x00080080, "Z"),   # Institution Name X/Z/D, Type 2/3
    (0x00081010, "Z"),   # Station Name X/Z/D
    (0x00181000, "D"),   # Device Serial Number X/Z/D, Type 1 in Enhanced General Equipment
    (0x00080023, "D"),   # Content Date Z/D, Type 1 in SR
    (0x00080021, "X"),   # Series Date X/D
    (0x00081110, "Z"),   # Referenced Study Sequence X/Z
    (0x00081140, "U"),   # Referenced Image Sequence X/Z/U*
    (0x0040A730, "D"),   # Content Sequence
])
def test_basic_profile(tag, expected):
    assert resolve(rule_for(tag), [], tag) == expected


def test_repeating_groups():
    assert rule_for(0x60003000).name == "Overlay Data"
    assert rule_for(0x601E4000).name == "Overlay Comments"
    assert rule_for(0x50021234).name == "Curve Data"
    assert rule_for(0x00280010) is None  # Rows: not in the table, kept


def test_options_override_and_most_protective_wins():
    calibration = 0x00181203  # Calibration DateTime: Z; device K; full dates K; modified dates C
    rule = rule_for(calibration)
    assert resolve(rule, [], calibration) == "Z"
    assert resolve(rule, ["rtnDevIdOpt"], calibration) == "K"
    assert resolve(rule, ["rtnDevIdOpt", "rtnLongModifDatesOpt"], calibration) == "C"
    study_date = 0x00080020
    assert resolve(rule_for(study_date), DeidOptions(retain_long_full_dates=True).columns, study_date) == "K"
    assert resolve(rule_for(study_date), DeidOptions(retain_long_modified_dates=True).columns,
                   study_date) == "C"
    assert resolve(rule_for(0x00080018), DeidOptions(retain_uids=True).columns, 0x00080018) == "K"


def test_type1_list_only_names_d_combinations():
    for tag in TYPE1_LIKELY:
        assert "D" in rule_for(tag).basic.split("/") and "/" in rule_for(tag).basic


def test_date_options_exclude_each_other():
    with pytest.raises(ValueError):
        DeidOptions(retain_long_full_dates=True, retain_long_modified_dates=True)
