"""The pixelscrub command: exit statuses, error lines, outputs, inspect, progress."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pydicom_file
from pixelscrub.cli import build_parser, main, options_from_args

ROOT = Path(__file__).resolve().parents[1]
KEY = "0123456789abcdef0123456789abcdef"
FAST = ["--mode", "regions-only", "--region", "0,0,8,8", "-j", "2", "--progress", "none"]


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("PIXELSCRUB_KEY", KEY)


def make_inputs(tmp_path: Path, bad: bool = False) -> Path:
    src = tmp_path / "in"
    (src / "s").mkdir(parents=True)
    shutil.copyfile(pydicom_file("CT_small.dcm"), src / "ct.dcm")
    shutil.copyfile(pydicom_file("MR_small.dcm"), src / "s" / "mr.dcm")
    if bad:
        (src / "s" / "notes.txt").write_text("not a DICOM file\n")
    return src


def test_all_written_exits_0(tmp_path, keyed, capsys):
    src = make_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["scrub", str(src), "-o", str(out), *FAST]) == 0
    assert (out / "ct.dcm").is_file() and (out / "s" / "mr.dcm").is_file()
    err = capsys.readouterr().err
    assert "files in: 2, out: 2" in err
    assert "warning" not in err  # the key came from PIXELSCRUB_KEY
    assert KEY not in err


def test_bad_file_exits_1_with_one_line_naming_it(tmp_path, keyed, capsys):
    src = make_inputs(tmp_path, bad=True)
    out = tmp_path / "out"
    assert main(["scrub", str(src), "-o", str(out), *FAST]) == 1
    lines = [l for l in capsys.readouterr().err.splitlines() if "notes.txt" in l]
    assert lines == ["pixelscrub: s/notes.txt: input is not a DICOM Part 10 file"]
    assert (out / "ct.dcm").is_file() and not (out / "s" / "notes.txt").exists()


@pytest.mark.parametrize("argv", [
    ["scrub", "IN", "-o", "OUT", "--region", "1,2,3"],
    ["scrub", "IN", "-o", "OUT", "--region", "5,5,1,1"],
    ["scrub", "IN", "-o", "OUT", "--mode", "everything"],
    ["scrub", "IN", "-o", "OUT", "-j", "0"],
    ["scrub", "IN"],
    ["frobnicate"],
])
def test_argument_errors_exit_2(tmp_path, argv):
    argv = [a.replace("IN", str(tmp_path)).replace("OUT", str(tmp_path / "o")) for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("case", ["out-inside-input", "missing-input", "margin"])
def test_unsafe_or_wrong_runs_exit_2(tmp_path, keyed, capsys, case):
    src = make_inputs(tmp_path)
    argv = ["scrub", str(src), "-o", str(tmp_path / "out"), *FAST]
    if case == "out-inside-input":
        argv[3] = str(src / "s" / "out")
    elif case == "missing-input":
        argv[1] = str(tmp_path / "nope")
    else:
        argv += ["--margin", "-1"]
    before = sorted(p for p in src.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pixelscrub: ")
    assert sorted(p for p in src.rglob("*")) == before


def test_single_file_goes_to_outdir_by_name(tmp_path, keyed):
    src = make_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["scrub", str(src / "s" / "mr.dcm"), "-o", str(out), *FAST,
                 "--report", str(tmp_path / "r.jsonl")]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["mr.dcm"]
    recs = [json.loads(l) for l in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert recs[0]["output"] == "out/mr.dcm" and recs[0]["input"] == "mr.dcm"
    assert recs[-1]["record"] == "summary"


def test_random_key_warns_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PIXELSCRUB_KEY", raising=False)
    src = make_inputs(tmp_path)
    assert main(["scrub", str(src), "-o", str(tmp_path / "out"), *FAST]) == 0
    assert capsys.readouterr().err.count("random key") == 1


def test_short_key_in_environment_is_a_usage_error(tmp_path, monkeypatch, capsys):
    """A key that is set but too short must not quietly become a random key: the
    user expects the same pseudonyms on every run."""
    monkeypatch.setenv("PIXELSCRUB_KEY", "short")
    src = make_inputs(tmp_path)
    assert main(["scrub", str(src), "-o", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "shorter than" in err and "random key" not in err
    assert not (tmp_path / "out").exists()


def test_options_from_args_builds_scrub_options(keyed):
    args = build_parser().parse_args(
        ["scrub", "x", "-o", "y", "--mode", "all-text", "--region", "1,2,3,4@0-2",
         "--region", "5,6,7,8", "--margin", "0", "--no-header", "--max-pixels", "99",
         "--log-phi", "--retain-uids"])
    opts = options_from_args(args)
    assert opts.mode == "all-text" and opts.margin == 0 and not opts.header and opts.pixels
    assert [r.frames for r in opts.regions] == [(0, 1, 2), None]
    assert opts.max_pixels == 99 and opts.log_phi
    assert opts.deid.retain_uids and opts.key == KEY.encode()


def test_inspect_prints_regions_and_writes_nothing(tmp_path, capsys):
    src = make_inputs(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main(["inspect", str(src / "ct.dcm"), "--mode", "regions-only",
                 "--region", "1,2,30,40@0"]) == 0
    out = capsys.readouterr().out
    assert "1 region(s) would be redacted" in out
    assert "box 1,2,30,40 frames 0: user-region" in out
    assert sorted(tmp_path.rglob("*")) == before
    assert main(["inspect", str(src / "ct.dcm"), "--mode", "regions-only",
                 "--region", "1,2,30,40", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["hits"][0]["box"] == [1, 2, 30, 40] and "text" not in rec["hits"][0]


def test_inspect_bad_file_exits_1(tmp_path, capsys):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"\0" * 10)
    assert main(["inspect", str(bad), "--mode", "regions-only"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]


def test_console_run_without_terminal_prints_plain_lines(tmp_path):
    src = make_inputs(tmp_path, bad=True)
    out = tmp_path / "out"
    env = dict(os.environ, PIXELSCRUB_KEY=KEY, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "pixelscrub.cli", "scrub", str(src), "-o", str(out),
                           "--mode", "regions-only", "-j", "2"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "pixelscrub: 3/3 files done, 1 failed" in proc.stderr
    assert "\r" not in proc.stderr  # no progress bar escape codes in CI logs


def test_inspect_phi_mode_shows_reasons_but_text_only_with_log_phi(capsys):
    import pydicom
    sample = ROOT / "sample_data" / "dicom" / "0006_sc_viewer.dcm"
    if not sample.is_file():
        pytest.skip("sample_data not present")
    family = str(pydicom.dcmread(sample).PatientName.family_name).upper()
    assert main(["inspect", str(sample)]) == 0
    quiet = capsys.readouterr().out
    assert "header:PatientName" in quiet and family not in quiet.upper()
    assert main(["inspect", str(sample), "--log-phi"]) == 0
    assert family in capsys.readouterr().out.upper()


def test_bench_subcommand_is_hooked_in(capsys):
    pytest.importorskip("pixelscrub.bench.cli")
    with pytest.raises(SystemExit) as info:
        main(["bench", "score", "--help"])
    assert info.value.code == 0
    assert "--truth" in capsys.readouterr().out


def test_regions_only_without_regions_warns(tmp_path, keyed, capsys):
    src = make_inputs(tmp_path)
    assert main(["scrub", str(src), "-o", str(tmp_path / "out"), "--mode", "regions-only",
                 "--progress", "none"]) == 0
    assert "without --region leaves every pixel" in capsys.readouterr().err
