"""The same batch on a Dask cluster gives byte-identical outputs to a local run."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import pydicom_file
from pixelscrub.batch import JOURNAL_NAME, default_report_path
from pixelscrub.cli import main

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
KEY = "cluster-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def cluster():
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), old]))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=50) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def outputs(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != JOURNAL_NAME}


def test_cluster_run_matches_local_run(tmp_path, cluster, monkeypatch, capsys):
    monkeypatch.setenv("PIXELSCRUB_KEY", KEY)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm"):
        shutil.copyfile(pydicom_file(name), src / name)
    shutil.copyfile(pydicom_file("MR_small.dcm"), src / "sub" / "mr.dcm")
    (src / "sub" / "broken.dcm").write_bytes(b"DICM" * 10)
    common = ["--mode", "regions-only", "--region", "2,2,20,12", "--progress", "none"]
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["scrub", str(src), "-o", str(local), "-j", "2", *common]) == 1
    assert main(["scrub", str(src), "-o", str(remote), "--scheduler", cluster.scheduler_address,
                 *common]) == 1
    prefix = cluster.scheduler.task_prefixes.get("run_isolated")  # the files really ran there
    assert prefix is not None and sum(prefix.state_counts.values()) >= 5
    a, b = outputs(local), outputs(remote)
    assert sorted(a) == ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm", "sub/mr.dcm"]
    assert a == b  # byte-identical, header UIDs included (same key)
    errs = {}
    for out in (local, remote):
        recs = [json.loads(l) for l in default_report_path(out).read_text().splitlines()]
        errs[out] = [r["error"] for r in recs[:-1] if r["status"] == "failed"]
        assert recs[-1]["files_out"] == 4 and recs[-1]["failed"] == 1
    assert errs[local] == errs[remote] and errs[local][0].startswith("sub/broken.dcm: ")
    # and the cluster run resumes like a local one
    assert main(["scrub", str(src), "-o", str(remote), "--scheduler", cluster.scheduler_address,
                 *common]) == 1
    assert "skipped (done before): 4" in capsys.readouterr().err


def test_crashing_and_hanging_files_fail_alone_on_the_cluster(tmp_path, cluster):
    import signal
    from pixelscrub.batch import run_batch
    from pixelscrub.options import ScrubOptions
    from test_batch import crashing_scrub, slow_scrub

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.dcm", "crash.dcm", "b.dcm", "crash2.dcm", "c.dcm"):
        shutil.copyfile(pydicom_file("CT_small.dcm"), src / name)
    out = tmp_path / "out"
    opts = ScrubOptions(mode="regions-only", key=KEY.encode())
    summary = run_batch([src], out, opts, scheduler=cluster.scheduler_address, progress="none",
                        scrub=crashing_scrub)
    assert summary.failed == 2 and summary.files_out == 3
    recs = [json.loads(l) for l in default_report_path(out).read_text().splitlines()[:-1]]
    errors = sorted(r["error"] for r in recs if r["status"] == "failed")
    sig = f"signal {int(signal.SIGABRT)} (SIGABRT)"
    assert errors == [f"crash.dcm: worker crashed: {sig}", f"crash2.dcm: worker crashed: {sig}"]
    assert sorted(p.name for p in out.glob("*.dcm")) == ["a.dcm", "b.dcm", "c.dcm"]
    assert len(cluster.scheduler.workers) == 2  # no Dask worker died

    (src / "slow.dcm").write_bytes((src / "a.dcm").read_bytes())
    slow = run_batch([src], tmp_path / "out2", opts, scheduler=cluster.scheduler_address,
                     progress="none", scrub=slow_scrub, timeout=5)
    assert slow.failed == 1 and slow.files_out == 5


def test_memory_cap_applies_on_the_cluster(tmp_path, cluster):
    import pydicom
    from pixelscrub.batch import run_batch
    from pixelscrub.options import ScrubOptions, parse_region

    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(pydicom_file("SC_rgb_rle.dcm"))
    ds.Rows, ds.Columns = 30000, 30000  # 2.7 GB once decoded, over 100x100 data
    ds.save_as(src / "huge.dcm", enforce_file_format=False)
    # the per-frame cap would refuse it before decoding: lift it to reach the memory cap
    opts = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,9,9"),), key=KEY.encode(),
                        max_frame_pixels=10**10)
    summary = run_batch([src], tmp_path / "out", opts, scheduler=cluster.scheduler_address,
                        progress="none", max_memory=1500 * 2**20)
    rec = json.loads(default_report_path(tmp_path / "out").read_text().splitlines()[0])
    # the helper runs under the cap: the size check before decoding names it
    assert summary.failed == 1 and "the limit is 1500 MiB" in rec["error"]


def test_unreachable_scheduler_is_a_usage_error(tmp_path, monkeypatch, capsys):
    import socket
    import pixelscrub.cluster
    monkeypatch.setattr(pixelscrub.cluster, "CONNECT_TIMEOUT", "1s")
    monkeypatch.setenv("PIXELSCRUB_KEY", KEY)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(pydicom_file("CT_small.dcm"), src / "a.dcm")
    rc = main(["scrub", str(src), "-o", str(tmp_path / "out"), "--mode", "regions-only",
               "--scheduler", f"tcp://127.0.0.1:{port}", "--progress", "none"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"pixelscrub: tcp://127.0.0.1:{port}: cannot reach the Dask scheduler")
    assert not (tmp_path / "out" / ".pixelscrub-partial").exists()


def instant_scrub(src, dst, options, *, workdir=None):
    """Fails at once: the helper's result follows its STARTED message immediately."""
    from pixelscrub.records import FileAudit
    return FileAudit(input=src, status="failed", error=f"{src}: instant")


def test_helper_reads_a_result_right_behind_started(tmp_path, monkeypatch):
    """Both messages can arrive in one read; the parent must not then wait on the pipe
    for a result it already holds (with no timeout that was a hang for ever)."""
    import threading

    from pixelscrub.cluster import _Helper
    from pixelscrub.options import ScrubOptions
    from pixelscrub.worker import Task

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    helper = _Helper(None)
    results = []

    def calls():
        for i in range(30):
            task = Task(i, str(tmp_path / f"{i}.dcm"), str(tmp_path / f"{i}.tmp"), str(tmp_path))
            results.append(helper.call(instant_scrub, task, ScrubOptions(mode="regions-only"), None))

    worker = threading.Thread(target=calls, daemon=True)
    worker.start()
    worker.join(60)
    try:
        assert not worker.is_alive(), f"helper.call hung after {len(results)} calls"
        assert [a.error.endswith(": instant") for a, _ in results] == [True] * 30
    finally:
        helper.kill()
