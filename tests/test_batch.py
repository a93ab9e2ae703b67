"""Batch engine: mirrored outputs, resume, crash and timeout isolation, layout checks."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import pydicom_file
from pixelscrub.batch import (JOURNAL_NAME, PARTIAL_DIR, check_layout, default_report_path,
                              discover, options_hash, run_batch)
from pixelscrub.errors import ScrubError
from pixelscrub.options import ScrubOptions, parse_region
from pixelscrub.pipeline import scrub_file

KEY = b"k" * 32
OPTS = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),), key=KEY)


def crashing_scrub(src, dst, options, *, workdir=None):
    """Aborts the worker process on files named crash*, like a native codec would."""
    if Path(src).name.startswith("crash"):
        Path(dst).write_bytes(b"half written")
        os.abort()
    return scrub_file(src, dst, options, workdir=workdir)


def slow_scrub(src, dst, options, *, workdir=None):
    """Hangs on files named slow*, after touching $PIXELSCRUB_TEST_HANGING (if set) so
    a test can wait for that event instead of guessing with a sleep."""
    if Path(src).name.startswith("slow"):
        if os.environ.get("PIXELSCRUB_TEST_HANGING"):
            Path(os.environ["PIXELSCRUB_TEST_HANGING"]).touch()
        time.sleep(60)
    return scrub_file(src, dst, options, workdir=workdir)


def env_scrub(src, dst, options, *, workdir=None):
    """Notes the OCR thread limit the worker runs with."""
    audit = scrub_file(src, dst, options, workdir=workdir)
    audit.notes.append(f"OMP_THREAD_LIMIT={os.environ.get('OMP_THREAD_LIMIT')}")
    return audit


def limit_scrub(src, dst, options, *, workdir=None):
    """Notes the address-space cap the worker runs under."""
    from pixelscrub.worker import memory_limit
    audit = scrub_file(src, dst, options, workdir=workdir)
    audit.notes.append(f"memory_limit={memory_limit()}")
    return audit


def unchecked_scrub(src, dst, options, *, workdir=None):
    """Writes the file without OCR, and says so, as when frames could not be checked."""
    audit = scrub_file(src, dst, replace(options, mode="regions-only"), workdir=workdir)
    audit.status = "unverified"
    return audit


def tree(tmp_path: Path, names=("a.dcm", "sub/b.dcm", "sub/deeper/c.dcm")) -> Path:
    src = tmp_path / "in"
    for name in names:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pydicom_file("CT_small.dcm"), src / name)
    return src


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def records(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def run(src, out, **kw):
    kw.setdefault("jobs", 2)
    kw.setdefault("progress", "none")
    return run_batch(src if isinstance(src, list) else [src], out, kw.pop("options", OPTS), **kw)


def test_outputs_mirror_inputs_and_report_ends_with_summary(tmp_path):
    src = tree(tmp_path)
    single = tmp_path / "single.dcm"
    shutil.copyfile(pydicom_file("MR_small.dcm"), single)
    before = snapshot(src)
    out = tmp_path / "out"
    summary = run([src, single], out)
    assert summary.exit_status == 0 and summary.failed == 0
    produced = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert produced == ["a.dcm", "single.dcm", "sub/b.dcm", "sub/deeper/c.dcm"]
    assert snapshot(src) == before  # inputs untouched
    assert not (out / PARTIAL_DIR).exists()
    recs = records(default_report_path(out))
    assert recs[-1]["record"] == "summary"
    assert recs[-1]["files_in"] == 4 and recs[-1]["files_out"] == 4
    assert recs[-1]["boxes_by_reason"] == {"user-region": 4}
    assert {r["status"] for r in recs[:-1]} == {"written"}
    assert (out / "a.dcm").stat().st_mode & 0o044  # readable by others, like any new file


def test_resume_skips_done_files_and_redoes_changed_ones(tmp_path):
    src = tree(tmp_path)
    out = tmp_path / "out"
    run(src, out)
    first = snapshot(out)
    again = run(src, out)
    assert again.skipped == 3 and again.files_out == 0
    assert snapshot(out) == first
    # a changed input is redone, the others still skipped
    shutil.copyfile(pydicom_file("MR_small.dcm"), src / "a.dcm")
    third = run(src, out)
    assert third.skipped == 2 and third.files_out == 1
    # other options: everything redone
    other = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,9,9"),), key=KEY)
    assert run(src, out, options=other).files_out == 3
    # an output deleted by hand is redone
    (out / "sub/b.dcm").unlink()
    fourth = run(src, out, options=other)
    assert fourth.files_out == 1 and (out / "sub/b.dcm").is_file()
    assert run(src, out, options=other, resume=False).files_out == 3


def test_edited_models_or_pseudonym_table_redo_the_files(tmp_path, monkeypatch):
    """Resume compares more than flags: a changed allowlist (models/) or pseudonym
    table changes what a file's output would be, so finished files are redone."""
    from pixelscrub.assets import models_dir
    from pixelscrub.header import DeidOptions
    models = tmp_path / "models"
    shutil.copytree(models_dir().parent, models)
    monkeypatch.setenv("PIXELSCRUB_MODELS", str(models))
    phi = ScrubOptions(mode="phi", key=KEY)
    before = options_hash(phi)
    assert options_hash(phi) == before
    with open(models / "v1" / "allowlist.txt", "a") as f:
        f.write("LIVER\n")
    assert options_hash(phi) != before
    assert options_hash(OPTS) == options_hash(OPTS)  # regions-only reads no models
    table = tmp_path / "pseudonyms.csv"
    table.write_text("original,pseudonym\nDOE^JOHN,PS-1\n")
    named = ScrubOptions(mode="regions-only", regions=OPTS.regions, key=KEY,
                         deid=DeidOptions(pseudonym_csv=str(table)))
    first = options_hash(named)
    table.write_text("original,pseudonym\nDOE^JOHN,PS-2\n")
    assert options_hash(named) != first


def test_options_hash_is_stable_and_hides_the_key():
    a = options_hash(OPTS)
    assert a == options_hash(ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),),
                                          key=KEY, log_phi=True))
    assert a != options_hash(ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),),
                                          key=b"z" * 32))
    assert KEY.decode() not in a


def test_crashing_worker_fails_only_its_file(tmp_path):
    src = tree(tmp_path, ("a.dcm", "crash1.dcm", "b.dcm", "crash2.dcm", "c.dcm"))
    out = tmp_path / "out"
    summary = run(src, out, scrub=crashing_scrub)
    assert summary.failed == 2 and summary.files_out == 3
    recs = {Path(r["input"]).name: r for r in records(default_report_path(out))[:-1]}
    for name in ("crash1.dcm", "crash2.dcm"):
        assert recs[name]["status"] == "failed"
        assert recs[name]["error"] == f"{name}: worker crashed: signal {int(signal.SIGABRT)} (SIGABRT)"
        assert not (out / name).exists()
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL_NAME, "a.dcm", "b.dcm", "c.dcm"]


def test_timeout_kills_the_file_not_the_batch(tmp_path):
    src = tree(tmp_path, ("a.dcm", "slow.dcm", "b.dcm"))
    out = tmp_path / "out"
    start = time.monotonic()
    summary = run(src, out, scrub=slow_scrub, timeout=5)
    assert time.monotonic() - start < 30
    assert summary.failed == 1 and summary.files_out == 2
    rec = [r for r in records(default_report_path(out)) if r.get("input", "").endswith("slow.dcm")]
    assert rec[0]["error"].endswith("timed out after 5 s")
    assert not (out / "slow.dcm").exists()


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    src = tree(tmp_path, ("a.dcm",))
    out = tmp_path / "out"
    (out / PARTIAL_DIR / "pixelscrub-x").mkdir(parents=True)
    (out / PARTIAL_DIR / "0.dcm").write_bytes(b"partial")
    run(src, out)
    assert not (out / PARTIAL_DIR).exists()
    assert (out / "a.dcm").is_file()


def test_second_run_on_same_output_is_refused(tmp_path):
    import fcntl
    src = tree(tmp_path, ("a.dcm",))
    out = tmp_path / "out"
    out.mkdir()
    with open(out / JOURNAL_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(ScrubError, match="another pixelscrub run"):
            run(src, out)


@pytest.mark.parametrize("layout", ["out-in-input", "input-in-out", "file-in-out",
                                    "quarantine-in-out", "report-in-input", "out-is-file",
                                    "reid-map-in-out", "reid-map-in-input", "phi-report-in-out"])
def test_unsafe_layouts_are_refused(tmp_path, layout):
    src = tree(tmp_path, ("a.dcm",))
    out, kw, inputs = tmp_path / "out", {}, [src]
    if layout == "out-in-input":
        out = src / "scrubbed"
    elif layout == "input-in-out":
        inputs = [tmp_path / "out" / "in2"]
        shutil.copytree(src, inputs[0])
    elif layout == "file-in-out":
        (out / "x").mkdir(parents=True)
        inputs = [out / "x" / "a.dcm"]
        shutil.copyfile(src / "a.dcm", inputs[0])
    elif layout == "quarantine-in-out":
        kw["quarantine"] = out / "q"
    elif layout == "report-in-input":
        kw["report"] = src / "report.jsonl"
    elif layout == "out-is-file":
        out.write_bytes(b"x")
    elif layout == "reid-map-in-out":
        kw["reid_map"] = out / "map.csv"
    elif layout == "reid-map-in-input":
        kw["reid_map"] = src / "map.csv"
    elif layout == "phi-report-in-out":
        kw.update(report=out / "report.jsonl", log_phi=True)
    with pytest.raises(ScrubError) as info:
        check_layout(inputs, out, **kw)
    assert info.value.reason == "usage"


def test_symlinked_output_folder_into_input_is_not_written(tmp_path):
    src = tree(tmp_path, ("sub/a.dcm",))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(src / "sub")  # would write into the input tree
    before = snapshot(src)
    summary = run(src, out)
    assert summary.failed == 1
    assert snapshot(src) == before
    rec = records(default_report_path(out))[0]
    assert "resolves outside the output folder" in rec["error"]


def test_quarantine_copies_failed_inputs(tmp_path):
    src = tree(tmp_path, ("a.dcm",))
    (src / "bad").mkdir()
    (src / "bad" / "notdicom.dcm").write_bytes(b"hello, not DICOM" * 20)
    out, q = tmp_path / "out", tmp_path / "quarantine"
    summary = run(src, out, quarantine=q)
    assert summary.failed == 1 and summary.files_out == 1
    assert (q / "bad" / "notdicom.dcm").read_bytes() == (src / "bad" / "notdicom.dcm").read_bytes()
    assert (src / "bad" / "notdicom.dcm").exists()
    assert not (out / "bad" / "notdicom.dcm").exists()


def test_stale_output_removed_when_file_now_fails(tmp_path):
    src = tree(tmp_path, ("a.dcm",))
    out = tmp_path / "out"
    run(src, out)
    assert (out / "a.dcm").is_file()
    (src / "a.dcm").write_bytes(b"now broken")
    summary = run(src, out)
    assert summary.failed == 1
    assert not (out / "a.dcm").exists()


def test_discover_names_collisions_and_duplicates(tmp_path):
    a = tree(tmp_path / "x", ("f.dcm",))
    b = tree(tmp_path / "y", ("f.dcm",))
    jobs, problems, _ = discover([a, b, a / "f.dcm"])
    assert [j.rel for j in jobs] == ["f.dcm"]
    assert len(problems) == 1 and "already taken" in problems[0][1]
    assert problems[0][0].rel == "f.dcm"


def _wait_for(path: Path, proc) -> None:
    """Block until ``path`` exists (the worker reached the hanging file), or fail."""
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the batch never reached the hanging file"
        time.sleep(0.05)


# A child started from a shell without job control (CI, `make test &`) inherits SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler: Ctrl-C on a terminal
# reaches a foreground process whose SIGINT is not ignored, so the child restores that.
_RESTORE_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def test_ctrl_c_keeps_finished_files_and_resumes(tmp_path):
    import subprocess
    import sys
    src = tree(tmp_path, ("a.dcm", "b.dcm", "c.dcm", "slow.dcm"))
    out = tmp_path / "out"
    report = default_report_path(out)
    hanging = tmp_path / "hanging"
    script = (
        _RESTORE_SIGINT +
        "import sys; sys.path[:0] = sys.argv[1:3]\n"
        "from test_batch import slow_scrub, OPTS\n"
        "from pixelscrub.batch import run_batch\n"
        "s = run_batch([sys.argv[3]], sys.argv[4], OPTS, jobs=1, progress='none', scrub=slow_scrub)\n"
        "sys.exit(3 if s.interrupted else 0)\n")
    tests_dir, root = str(Path(__file__).parent), str(Path(__file__).parents[1])
    proc = subprocess.Popen([sys.executable, "-c", script, tests_dir, root, str(src), str(out)],
                            start_new_session=True, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PIXELSCRUB_TEST_HANGING=str(hanging)))
    _wait_for(hanging, proc)  # a, b, c are done (one worker, in order) and slow.dcm hangs
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "interrupted" in err
    recs = records(report)
    assert recs[-1]["record"] == "summary" and recs[-1]["interrupted"] is True
    assert not (out / PARTIAL_DIR).exists()
    assert sorted(p.name for p in out.glob("*.dcm")) == ["a.dcm", "b.dcm", "c.dcm"]
    resumed = run(src, out)
    assert resumed.skipped == 3 and resumed.files_out == 1
    assert (out / "slow.dcm").is_file()


def test_report_inside_output_is_allowed_without_log_phi(tmp_path):
    src = tree(tmp_path, ("a.dcm",))
    out = tmp_path / "out"
    run(src, out, report=out / "pixelscrub-report.jsonl")
    assert records(out / "pixelscrub-report.jsonl")[-1]["files_out"] == 1


def test_progress_bar_on_request(tmp_path):
    import io
    src = tree(tmp_path, ("a.dcm", "b.dcm"))
    stream = io.StringIO()
    run(src, tmp_path / "out", progress="bar", stream=stream)
    assert "2/2" in stream.getvalue() and "file" in stream.getvalue()


@pytest.mark.parametrize("jobs, expected", [(1, "None"), (2, "1")])
def test_parallel_workers_keep_ocr_to_one_thread(tmp_path, monkeypatch, jobs, expected):
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    src = tree(tmp_path, ("a.dcm", "b.dcm"))
    run(src, tmp_path / "out", jobs=jobs, scrub=env_scrub)
    notes = [r["notes"] for r in records(default_report_path(tmp_path / "out"))[:-1]]
    assert all(f"OMP_THREAD_LIMIT={expected}" in n for n in notes)


def test_sigterm_to_the_command_stops_like_ctrl_c(tmp_path):
    import subprocess
    import sys
    src = tree(tmp_path, ("a.dcm", "slow.dcm"))
    out = tmp_path / "out"
    script = (
        "import sys; sys.path[:0] = sys.argv[1:3]\n"
        "import pixelscrub.pipeline, test_batch\n"
        "pixelscrub.pipeline.scrub_file = test_batch.slow_scrub\n"
        "from pixelscrub.cli import main\n"
        "sys.exit(main(['scrub', sys.argv[3], '-o', sys.argv[4], '-j', '1', '--mode', "
        "'regions-only', '--progress', 'none']))\n")
    tests_dir, root = str(Path(__file__).parent), str(Path(__file__).parents[1])
    hanging = tmp_path / "hanging"
    proc = subprocess.Popen([sys.executable, "-c", script, tests_dir, root, str(src), str(out)],
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PIXELSCRUB_KEY="x" * 32,
                                     PIXELSCRUB_TEST_HANGING=str(hanging)))
    report = default_report_path(out)
    _wait_for(hanging, proc)  # a.dcm is done and slow.dcm hangs
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert records(report)[-1]["interrupted"] is True
    assert sorted(p.name for p in out.glob("*.dcm")) == ["a.dcm"]
    assert not (out / PARTIAL_DIR).exists()


def test_unchecked_frames_in_phi_mode_make_the_run_fail(tmp_path, capsys):
    src = tree(tmp_path, ("a.dcm",))
    phi = replace(OPTS, mode="phi")
    summary = run(src, tmp_path / "out", options=phi, scrub=unchecked_scrub,
                  stream=None)
    assert summary.unverified == 1 and summary.exit_status == 1
    # kept, but not claimed clean, and not beside the clean outputs
    assert not (tmp_path / "out" / "a.dcm").exists()
    assert (tmp_path / "out-unverified" / "a.dcm").is_file()
    assert "0 of 1 frames checked" in capsys.readouterr().err
    # regions-only asks for no checking: the same file is a success there
    assert run(src, tmp_path / "out2").exit_status == 0


def test_empty_input_folder_warns(tmp_path):
    (tmp_path / "in").mkdir()
    summary = run(tmp_path / "in", tmp_path / "out")
    assert summary.files_in == 0 and summary.warnings == ["no files found under the inputs"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_workers_get_a_memory_cap_by_default(tmp_path, jobs):
    from pixelscrub.worker import MIN_WORKER_MEMORY, default_memory_limit
    src = tree(tmp_path, ("a.dcm", "b.dcm"))
    run(src, tmp_path / "out", jobs=jobs, scrub=limit_scrub)
    notes = [n for r in records(default_report_path(tmp_path / "out"))[:-1] for n in r["notes"]]
    expected = default_memory_limit(jobs)
    assert expected >= MIN_WORKER_MEMORY
    assert notes.count(f"memory_limit={expected}") == 2
    # 0 lifts the cap
    run(src, tmp_path / "out0", jobs=jobs, scrub=limit_scrub, max_memory=0)
    notes = [n for r in records(default_report_path(tmp_path / "out0"))[:-1] for n in r["notes"]]
    assert notes.count("memory_limit=None") == 2


def test_reports_name_inputs_below_the_folder_given(tmp_path, capsys):
    """Export folders are often named after the patient: no report line or error
    line shows a folder above the input folder, nor an absolute path, unless
    --log-phi asks for it."""
    patient = tmp_path / "SMITH_JOHN_1961"
    src = tree(patient, ("a.dcm", "sub/b.dcm"))
    (src / "sub" / "bad.dcm").write_bytes(b"not dicom")
    out = tmp_path / "out"
    run(src, out, stream=None)
    text = default_report_path(out).read_text() + capsys.readouterr().err
    assert "SMITH" not in text and str(tmp_path) not in text
    recs = records(default_report_path(out))
    assert sorted(r["input"] for r in recs[:-1]) == ["a.dcm", "sub/b.dcm", "sub/bad.dcm"]
    assert [r["error"] for r in recs[:-1] if r["error"]] == [
        "sub/bad.dcm: input is not a DICOM Part 10 file"]
    assert {r["output"] for r in recs[:-1] if r["output"]} == {"out/a.dcm", "out/sub/b.dcm"}
    run(src, tmp_path / "out2", options=replace(OPTS, log_phi=True), stream=None,
        report=tmp_path / "phi-report.jsonl")
    assert str(patient) in (tmp_path / "phi-report.jsonl").read_text()


def test_rename_uid_writes_by_new_uids_and_hides_input_paths(tmp_path, capsys):
    import pydicom
    patient = tmp_path / "DOE_JANE_1970"
    src = tree(patient, ("exam1/a.dcm", "exam1/b.dcm"))
    shutil.copyfile(pydicom_file("MR_small.dcm"), src / "exam1" / "mr.dcm")
    (src / "exam1" / "bad.dcm").write_bytes(b"not dicom")
    (src / "exam1" / "b.dcm").write_bytes((src / "exam1" / "a.dcm").read_bytes())  # same instance
    out = tmp_path / "out"
    summary = run(src, out, rename="uid", stream=None)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert len(files) == 2 and summary.files_out == 2 and summary.failed == 2
    for rel in files:
        ds = pydicom.dcmread(out / rel)
        assert rel == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        assert ds.SOPInstanceUID != pydicom.dcmread(pydicom_file("CT_small.dcm")).SOPInstanceUID
    text = default_report_path(out).read_text() + capsys.readouterr().err
    assert "exam1" not in text and "DOE" not in text and "a.dcm" not in text
    recs = records(default_report_path(out))[:-1]
    assert all(re.fullmatch(r"input-[0-9a-f]{16}", r["input"]) for r in recs)
    assert sum("already taken" in (r["error"] or "") for r in recs) == 1
    # the same key names the same input the same way; a re-run skips what was done
    again = run(src, out, rename="uid", stream=None)
    assert again.skipped == 2
    assert sorted(r["input"] for r in records(default_report_path(out))[:-1]) == sorted(
        r["input"] for r in recs)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm")) == files
