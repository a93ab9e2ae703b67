"""Device region rules: pixelscrub's TOML/YAML, deid's bundled recipes and a CTP
DicomPixelAnonymizer script, applied to real pixel data through the pipeline."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import pydicom_file
from pixelscrub import ScrubOptions, scrub_dataset, scrub_file
from pixelscrub.cli import main
from pixelscrub.errors import ScrubError
from pixelscrub.records import Box
from pixelscrub.rules import (ALL, US_REGIONS, Condition, blank_regions, load_rules,
                              matching_rules)

DATA = Path(__file__).parent / "data"
CTP = DATA / "ctp_pixel_anonymizer.script"
KEY = b"rules-test-key-0123456789abcdefgh"


def deid_recipe(name: str) -> Path:
    """A recipe shipped inside deid's PyPI package (read as data, deid is not imported)."""
    spec = importlib.util.find_spec("deid")
    assert spec is not None, "deid is a test dependency"
    return Path(list(spec.submodule_search_locations)[0]) / "data" / name


def ct_like(**attrs) -> pydicom.Dataset:
    """CT_small (128x128, 16-bit) with the given header attributes."""
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    for k, v in attrs.items():
        setattr(ds, k, v)
    return ds


def changed(before: np.ndarray, after: np.ndarray) -> Box:
    ys, xs = np.nonzero(before != after)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


# -- deid recipes, as shipped ----------------------------------------------------------------

def test_deid_default_recipe_maps_its_filters_and_names_the_rest():
    rules = load_rules([deid_recipe("deid.dicom")])
    assert len(rules.rules) > 100
    assert {r.action for r in rules.rules} >= {"blank"}
    assert any("%header section not used" in u for u in rules.unmapped)
    assert any("whitelist" in u and "not used" in u for u in rules.unmapped)
    assert any("without coordinates" in u for u in rules.unmapped)
    assert all("\n" not in u for u in rules.unmapped)
    names = [r.name for r in rules.rules]
    assert "LightSpeed Dose Report" in names


def us_image(**attrs) -> pydicom.Dataset:
    """A 768x1024 8-bit ultrasound frame of mid grey with the given header attributes."""
    ds = ct_like(**attrs)
    ds.Rows, ds.Columns = 768, 1024
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.full((768, 1024), 128, np.uint8).tobytes()
    for kw in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    return ds


def test_deid_graylist_blanks_its_coordinates_on_a_matching_image():
    rules = load_rules([deid_recipe("deid.dicom")])
    ds = us_image(Modality="US", Manufacturer="Hitachi Aloka", Rows=768,
                  ManufacturerModelName="HI VISION Avius", ImageType=["ORIGINAL", "PRIMARY"])
    assert [r.name for r in matching_rules(rules.rules, ds)] == ["Hitachi"]
    other = us_image(Modality="US", Manufacturer="Hitachi", ManufacturerModelName="Arietta",
                     ImageType=["ORIGINAL", "PRIMARY"])
    assert not matching_rules(rules.rules, other)
    out, audit = scrub_dataset(ds, ScrubOptions(mode="rules-only", rules=tuple(rules.rules),
                                                key=KEY))
    assert {h.reason for h in audit.hits} == {"rule:Hitachi"}
    # ctpcoordinates 0,0,1140,74 is x,y,w,h: the top 74 rows, clipped to the width
    assert changed(ds.pixel_array, out.pixel_array) == Box(0, 0, 1024, 74)
    assert audit.status == "written"      # rules-only reads no text: never certified


def test_deid_blacklist_wins_over_its_graylist():
    """deid's own recipe flags a LightSpeed dose screen (graylist) and blacklists every
    CT screen save: the image is refused, as deid would."""
    rules = load_rules([deid_recipe("deid.dicom")])
    ds = ct_like(Modality="CT", Manufacturer="GE", ManufacturerModelName="LightSpeed VCT",
                 ImageType=["ORIGINAL", "PRIMARY", "SCREEN SAVE"])
    actions = {r.name: r.action for r in matching_rules(rules.rules, ds)}
    assert actions["LightSpeed Dose Report"] == "blank"
    assert "reject" in actions.values()
    with pytest.raises(ScrubError, match="rejected by rule"):
        scrub_dataset(ds, ScrubOptions(mode="rules-only", rules=tuple(rules.rules), key=KEY))


def test_deid_ultrasound_recipe_keeps_only_the_imaging_regions():
    rules = load_rules([deid_recipe("deid.dicom.ultrasound")])
    assert {r.action for r in rules.rules} == {"blank", "keep"}
    ds = ct_like(Modality="US")
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 20, 30
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 99, 109
    region.RegionSpatialFormat = 1
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    boxes = [r.box for r, _ in blank_regions(rules.rules, ds)]
    mask = np.zeros((128, 128), bool)
    for b in boxes:
        mask[b.y0:b.y1, b.x0:b.x1] = True
    assert not mask[30:110, 20:100].any() and mask.sum() == 128 * 128 - 80 * 80
    out, audit = scrub_dataset(ds, ScrubOptions(mode="rules-only", rules=tuple(rules.rules),
                                                key=KEY))
    assert (out.pixel_array[30:110, 20:100] == ds.pixel_array[30:110, 20:100]).all()
    assert (out.pixel_array[:30] == out.pixel_array[:30].min()).all()


def test_deid_blacklist_rejects_the_image(tmp_path):
    rules = load_rules([deid_recipe("deid.dicom.xray.chest")])
    assert [r.action for r in rules.rules].count("reject") >= 1
    src = tmp_path / "xa.dcm"
    ct_like(Modality="XA").save_as(src)
    audit = scrub_file(src, tmp_path / "out.dcm", ScrubOptions(mode="rules-only",
                                                                rules=tuple(rules.rules), key=KEY))
    assert audit.status == "failed" and "rejected by rule" in audit.error
    assert not (tmp_path / "out.dcm").exists()


# -- CTP DicomPixelAnonymizer script --------------------------------------------------------

def test_ctp_script_signatures_and_regions():
    rules = load_rules([CTP])
    by_name = {r.name: r for r in rules.rules}
    assert set(by_name) == {"GE LOGIQ header band", "Philips dose screen",
                            "Everything but secondary captures from one workstation"}
    assert [len(r.regions) for r in rules.rules] == [1, 2, 1]
    # (x,y,w,h) becomes a half-open box
    assert by_name["Philips dose screen"].regions[1].box == Box(400, 480, 512, 512)
    assert len(rules.unmapped) == 1 and "isNumericallyAbove is not supported" in rules.unmapped[0]
    us = Dataset()
    us.Modality, us.Manufacturer, us.ManufacturerModelName = "US", "GE Healthcare", "LOGIQE9"
    ct = Dataset()
    ct.Modality, ct.SeriesDescription, ct.ImageType = "CT", "Dose Info", ["ORIGINAL"]
    acme_sc, acme_ct = Dataset(), Dataset()
    acme_sc.Manufacturer = acme_ct.Manufacturer = "ACME"
    acme_sc.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    acme_ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    assert [r.name for r in matching_rules(rules.rules, us)] == ["GE LOGIQ header band"]
    assert [r.name for r in matching_rules(rules.rules, ct)] == ["Philips dose screen"]
    assert not matching_rules(rules.rules, acme_sc)          # the ! holds it back
    assert len(matching_rules(rules.rules, acme_ct)) == 1


def test_ctp_expression_precedence_and_negation():
    from pixelscrub.rules import parse_ctp
    text = '{ !(Modality.equals("CT") + Modality.equals("MR")) * Rows.equals("512") }\n(0,0,1,1)'
    (rule,) = parse_ctp(text).rules
    for modality, rows, expected in (("US", "512", True), ("CT", "512", False),
                                     ("MR", "512", False), ("US", "256", False)):
        ds = Dataset()
        ds.Modality, ds.Rows = modality, int(rows)
        assert rule.holds(ds) is expected, (modality, rows)
    assert parse_ctp("{ Modality.equals(\"CT\") * }\n(0,0,1,1)").unmapped


# -- pixelscrub's own rules ---------------------------------------------------------------

NATIVE_TOML = '''
[[rule]]
name = "big CT screens"
regions = ["0,0,64,16", "100,100,128,128@0"]
[rule.when]
Modality = "ct"
Rows = { min = 100, max = 4096 }
ImageType = { matches = "ORIG.*PRIMARY" }
BurnedInAnnotation = { missing = true }

[[rule]]
name = "acme reject"
action = "reject"
[rule.when]
Manufacturer = { contains = "acme" }
'''


def test_native_toml_conditions(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(NATIVE_TOML)
    rules = load_rules([path]).rules
    ds = ct_like(Modality="CT")
    assert [r.name for r in matching_rules(rules, ds)] == ["big CT screens"]
    assert [(r.box, r.frames) for r, _ in blank_regions(rules, ds)] == [
        (Box(0, 0, 64, 16), None), (Box(100, 100, 128, 128), (0,))]
    ds.BurnedInAnnotation = "YES"
    assert not matching_rules(rules, ds)
    ds = ct_like(Modality="CT", Manufacturer="ACME Imaging")
    assert {r.action for r in matching_rules(rules, ds)} == {"blank", "reject"}


def test_native_yaml_same_structure(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rule:\n  - name: whole frame\n    when: {Modality: US}\n    regions: [all]\n"
                    "  - name: keep fan\n    when: {Modality: US}\n    action: keep\n"
                    "    regions: [ultrasound-regions]\n")
    rules = load_rules([path]).rules
    assert [r.regions for r in rules] == [(ALL,), (US_REGIONS,)]


@pytest.mark.parametrize("text, message", [
    ('[[rule]]\nname = "x"\n[rule.when]\nModality = "CT"\n', "needs regions"),
    ('[[rule]]\nregions = ["0,0,10"]\n', "bad region"),
    ('[[rule]]\nregions = ["0,0,10,10"]\n[rule.when]\nRows = { above = 3 }\n', "unknown test"),
    ('[[rule]]\nregions = ["0,0,10,10"]\n[rule.when]\nRows = { matches = "(" }\n',
     "bad regular expression"),
    ('[[rule]]\nregion = ["0,0,10,10"]\n', "unknown key"),
    ('[[rule]\n', "cannot parse rules"),
])
def test_bad_native_rules_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScrubError, match=message):
        load_rules([path])


def test_condition_on_a_tag_number_and_multivalues():
    ds = ct_like(ImageType=["ORIGINAL", "PRIMARY", "AXIAL"])
    assert Condition("(0008,0008)", "equals", "primary").holds(ds)
    assert Condition("00080008", "contains", "AXI").holds(ds)
    assert not Condition("ImageType", "equals", "SCREEN SAVE").holds(ds)
    assert Condition("StationName", "notequals", "x").holds(ds)   # absent: not equal


# -- rules with OCR, and from the command line ------------------------------------------

def test_rules_add_to_phi_mode_ocr(tmp_path):
    """In phi mode a rule region is blanked and the rest of the image is still read."""
    sample = Path(__file__).resolve().parent.parent / "sample_data" / "dicom" / "0000_us_gray.dcm"
    path = tmp_path / "r.toml"
    path.write_text('[[rule]]\nname = "corner"\nregions = ["0,300,40,340"]\n'
                    '[rule.when]\nModality = "US"\n')
    audit = scrub_file(sample, tmp_path / "out.dcm",
                       ScrubOptions(rules=tuple(load_rules([path]).rules), key=KEY))
    reasons = {h.reason for h in audit.hits}
    assert "rule:corner" in reasons and any(r.startswith("header:") for r in reasons)
    assert audit.status == "clean"
    after = pydicom.dcmread(tmp_path / "out.dcm").pixel_array
    assert (after[300:340, 0:40] == 0).all()


def test_rules_check_command(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    ct_like(Modality="US", Manufacturer="GE Healthcare",
            ManufacturerModelName="LOGIQ E9").save_as(inputs / "us.dcm")
    ct_like(Modality="MR").save_as(inputs / "mr.dcm")
    (inputs / "notes.txt").write_text("not dicom")
    assert main(["rules", "check", str(CTP), "--inputs", str(inputs)]) == 0
    out = capsys.readouterr().out
    assert "3 rule(s) from 1 file(s): 3 blank" in out
    assert "not mapped:" in out and "isNumericallyAbove" in out
    assert "us.dcm: GE LOGIQ header band (blank); 1 region(s) to blank" in out
    assert "mr.dcm" not in out
    assert "1 rule(s) matched some input, 2 none" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\nname = 'x'\n")
    assert main(["rules", "check", str(bad)]) == 2
    assert "needs regions" in capsys.readouterr().err


def test_scrub_rules_only_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIXELSCRUB_KEY", KEY.decode())
    src = tmp_path / "in"
    src.mkdir()
    ct_like(Modality="US", Manufacturer="GE", ManufacturerModelName="LOGIQ P9").save_as(src / "a.dcm")
    out = tmp_path / "out"
    assert main(["scrub", str(src), "-o", str(out), "--mode", "rules-only", "--rules", str(CTP),
                 "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "warning: rules:" in err and "isNumericallyAbove" in err
    rec = json.loads((tmp_path / "out-report.jsonl").read_text().splitlines()[0])
    assert [h["reason"] for h in rec["hits"]] == ["rule:GE LOGIQ header band"]
    before = pydicom.dcmread(src / "a.dcm").pixel_array
    after = pydicom.dcmread(out / "a.dcm").pixel_array
    assert changed(before, after) == Box(0, 0, 128, 40)
