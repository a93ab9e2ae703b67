"""Benchmark scorer: untouched copies score 0 % removed, exact truth redaction 100 %."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest

from pixelscrub.bench.__main__ import main as bench_main
from pixelscrub.bench.ocr import is_readable, similarity
from pixelscrub.bench.score import (format_summary, load_presidio_truth, score_folder,
                                    write_presidio_truth)
from pixelscrub.synth import generate_set, read_truth

#: Uncompressed cases, so the tests can rewrite pixels with pydicom alone.
PLAIN = ["us_gray", "sc_dose", "hard_rotated", "stripped_us", "negative_blank"]


@pytest.fixture(scope="module")
def plainset(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    generate_set(out, len(PLAIN), seed=3, cases=PLAIN)
    return out


def _copy(src_dir, dst_dir):
    shutil.copytree(src_dir / "dicom", dst_dir)
    return dst_dir


def _redact(out_dir, truth_dir, *, phi_only=True, fraction=1.0, strip_header=False):
    """Black out each PHI item's box (or its left ``fraction``) with pydicom."""
    for tp in sorted(truth_dir.glob("*.json")):
        t = read_truth(tp)
        path = out_dir / t.file
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array.copy()
        for it in t.items:
            if phi_only and not it.is_phi:
                continue
            b = it.box
            x1 = b.x0 + max(1, int(round(b.width * fraction)))
            arr[b.y0:b.y1, b.x0:x1] = 0
        ds.PixelData = arr.tobytes()
        if strip_header:  # blank every element holding a header PHI value
            values = set(t.header_phi.values())
            for elem in ds:
                if elem.VR in ("PN", "LO", "SH", "DA", "TM", "DT") and str(elem.value) in values:
                    elem.value = ""
        ds.save_as(path)


def test_untouched_copies_remove_nothing(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    r = score_folder(plainset / "truth", out)
    o = r.overall
    assert o.files == len(PLAIN) and o.invalid == 0
    assert o.phi_items > 0 and o.phi_removed == 0 and o.phi_coverage_mean == 0.0
    assert o.nonphi_kept == o.nonphi_items > 0
    assert o.collateral_mean == 0.0
    assert o.phi_readable_after == o.phi_readable_before > 0
    assert o.header_phi_files == len(PLAIN) - 1  # the stripped file has no header PHI


def test_exact_truth_redaction_removes_everything(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    _redact(out, plainset / "truth", strip_header=True)
    r = score_folder(plainset / "truth", out)
    o = r.overall
    assert o.phi_removed == o.phi_items > 0
    assert o.phi_coverage_mean > 0.9
    assert o.phi_readable_after == 0
    assert o.nonphi_kept == o.nonphi_items
    assert o.collateral_mean == 0.0
    assert o.header_phi_files == 0
    assert "overall" in format_summary(r, "exact")


def test_half_redaction_does_not_count_as_removed(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    _redact(out, plainset / "truth", fraction=0.5)
    r = score_folder(plainset / "truth", out, ocr=False)
    assert r.overall.phi_removed == 0
    assert 0.2 < r.overall.phi_coverage_mean < 0.8
    assert r.overall.nonphi_kept == r.overall.nonphi_items


def test_redacting_everything_loses_nonphi_and_counts_collateral(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    for p in out.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array.copy()
        arr[-30:] = 255  # a blunt white band over the bottom of every image
        ds.PixelData = arr.tobytes()
        ds.save_as(p)
    _redact(out, plainset / "truth", phi_only=False)
    r = score_folder(plainset / "truth", out, ocr=False)
    assert r.overall.nonphi_kept == 0
    assert r.overall.collateral_mean > 0.0


def test_invalid_outputs_are_reported_and_count_as_not_removed(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    files = sorted(out.glob("*.dcm"))
    files[0].unlink()                          # missing
    files[1].write_bytes(b"not a dicom file")  # unreadable
    ds = pydicom.dcmread(files[2])             # geometry changed
    arr = ds.pixel_array[: ds.Rows // 2].copy()
    ds.Rows = arr.shape[0]
    ds.PixelData = arr.tobytes()
    ds.save_as(files[2])
    r = score_folder(plainset / "truth", out, ocr=False)
    status = {f.file: f.status for f in r.files}
    assert sorted(status.values()).count("ok") == len(PLAIN) - 3
    assert {"missing", "unreadable", "geometry"} <= set(status.values())
    assert r.overall.invalid == 3
    bad_phi = sum(it.is_phi for f in r.files if f.status != "ok" for it in f.items)
    assert bad_phi > 0 and r.overall.phi_items >= bad_phi


def test_outputs_matched_by_sop_instance_uid_when_renamed(plainset, tmp_path):
    out = _copy(plainset, tmp_path / "out")
    for i, p in enumerate(sorted(out.glob("*.dcm"))):
        p.rename(out / f"renamed_{i}.bin")
    r = score_folder(plainset / "truth", out, ocr=False)
    assert r.overall.invalid == 0


def test_presidio_ground_truth_round_trip(plainset, tmp_path):
    truths = [read_truth(p) for p in sorted((plainset / "truth").glob("*.json"))]
    gt = tmp_path / "ground_truth.json"
    write_presidio_truth(truths, gt)
    data = json.loads(gt.read_text())
    first = next(iter(data.values()))
    assert set(first[0]) == {"label", "left", "top", "width", "height"}
    loaded = load_presidio_truth(gt, plainset / "dicom")
    assert sum(len(t.items) for t in loaded) == sum(it.is_phi for t in truths for it in t.items)
    assert all(it.ink is not None and it.ink.any() for t in loaded for it in t.items)
    out = _copy(plainset, tmp_path / "out")
    assert score_folder(gt, out, plainset / "dicom", ocr=False).overall.phi_removed == 0
    _redact(out, plainset / "truth")
    r = score_folder(gt, out, plainset / "dicom", ocr=False)
    assert r.overall.phi_removed == r.overall.phi_items > 0


def test_similarity_tolerates_ocr_noise_but_not_other_text():
    assert is_readable("DOE, JOHN", "Name: DOE JOHN")
    assert is_readable("10234587", "1O2345B7 ".replace("O", "0").replace("B", "8"))
    assert not is_readable("DOE, JOHN", "")
    assert similarity("GARCIA", "TIS 0.4 MI 1.1") < 50
    assert not is_readable("ST MARY GENERAL HOSPITAL", "a")  # a fragment is not the text
    assert not is_readable("DOE, JOHN", "JOHN")
    assert is_readable("ST MARY GENERAL HOSPITAL", "ST MARY GENERAL HOSPTAL")


def test_cli_score_prints_table_and_writes_json(plainset, tmp_path, capsys):
    out = _copy(plainset, tmp_path / "out")
    js = tmp_path / "score.json"
    rc = bench_main(["score", "--truth", str(plainset / "truth"), "--output", str(out),
                     "--json", str(js), "--no-ocr"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "PHI removed" in text and "overall" in text
    assert json.loads(js.read_text())["overall"]["phi_removed"] == 0


def test_fill_in_the_inks_own_colour_counts_as_removed(plainset, tmp_path):
    """Ink pixels keep their value under a box of the same colour, yet nothing is readable."""
    out = _copy(plainset, tmp_path / "out")
    for tp in sorted((plainset / "truth").glob("*.json")):
        t = read_truth(tp)
        ds = pydicom.dcmread(out / t.file)
        arr = ds.pixel_array.copy()
        for it in t.items:
            if it.is_phi:
                b = it.box
                arr[b.y0:b.y1, b.x0:b.x1] = arr[b.y0:b.y1, b.x0:b.x1].max()
        ds.PixelData = arr.tobytes()
        ds.save_as(out / t.file)
    r = score_folder(plainset / "truth", out, ocr=False)
    assert r.overall.phi_removed == r.overall.phi_items > 0
    changed = [it.changed for f in r.files for it in f.items if it.is_phi]
    assert np.mean(changed) < 0.5  # most ink pixels did not change value


def test_presidio_report_parsing(tmp_path):
    from pixelscrub.bench.presidio import parse_report
    rep = tmp_path / "p.jsonl"
    rep.write_text("\n".join(json.dumps(r) for r in [
        {"setup_seconds": 2.0},
        {"file": "a.dcm", "status": "ok", "error": None, "frames": 1, "seconds": 0.5},
        {"file": "b.dcm", "status": "failed", "error": "TypeError: x", "frames": 20,
         "seconds": 0.1},
        {"tracemalloc_peak_bytes": 3 * 2**20}]))
    run = parse_report(rep, peak_rss_mb=100.0)
    assert (run.files, run.failed, run.frames) == (2, 1, 21)
    assert run.seconds == pytest.approx(0.6) and run.setup_seconds == 2.0
    assert run.tracemalloc_peak_mb == pytest.approx(3.0)
    assert run.errors == ("b.dcm: TypeError: x",)


def test_bench_run_scrubs_scores_and_times_stages(tmp_path, capsys):
    """End to end through pixelscrub.pipeline on two small generated files."""
    pytest.importorskip("pixelscrub.pipeline")
    js = tmp_path / "run.json"
    rc = bench_main(["run", "--count", "2", "--seed", "4", "--out", str(tmp_path / "b"),
                     "--no-ocr", "--json", str(js)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "| read |" in text
    res = json.loads(js.read_text())
    run = res["pixelscrub (phi)"]["run"]
    assert run["files"] == 2 and run["frames"] >= 2
    assert run["stage_seconds"].get("total", 0) > 0
    assert run["peak_rss_mb"] > 0
    assert res["pixelscrub (phi)"]["score"]["overall"]["files"] == 2


def _detection_module():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "detection.py"
    spec = importlib.util.spec_from_file_location("bench_detection", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_section_replaced_and_other_sections_kept(tmp_path):
    det = _detection_module()
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n## Header (lead)\n\nkeep me\n")
    det.update_results(det.SECTION + "\n\nfirst\n", md)
    det.update_results(det.SECTION + "\n\nsecond\n", md)
    text = md.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count(det.SECTION) == 1
    md.write_text(det.SECTION + "\n\nold\n\n## Codec (other)\n\nstays\n")
    det.update_results(det.SECTION + "\n\nnew\n", md)
    text = md.read_text()
    assert "stays" in text and "new" in text and "old" not in text


def test_cine_text_lines_group_items_on_a_row(plainset):
    det = _detection_module()
    t = read_truth(sorted((plainset / "truth").glob("*us_gray.json"))[0])
    # Header band: institution | date, Name: value ID: value | time, DOB: value -> 5 lines;
    # the side panel has one item per line.
    header = [it for it in t.items if it.why != "nonphi:parameter"]
    assert det.text_lines(header) == 5
    panel = [it for it in t.items if it.why == "nonphi:parameter"]
    assert det.text_lines(panel) == len(panel)


def test_cli_score_refuses_presidio_truth_without_input(plainset, tmp_path, capsys):
    gt = tmp_path / "ground_truth.json"
    write_presidio_truth([read_truth(p) for p in (plainset / "truth").glob("*.json")], gt)
    rc = bench_main(["score", "--truth", str(gt), "--output", str(plainset / "dicom"),
                     "--no-ocr"])
    assert rc == 2 and "--input" in capsys.readouterr().err
