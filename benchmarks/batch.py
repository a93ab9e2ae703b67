"""Batch benchmark: files per second with -j 1 and -j 2, and peak memory on a long cine.

1. Throughput: ``sample_data/dicom`` copied ``--copies`` times, scrubbed by the
   ``pixelscrub scrub`` command with ``-j 1`` and ``-j 2``, in ``regions-only`` and
   ``phi`` mode.  Wall time includes start-up, as a user sees it.
2. Memory: a cine of ``--frames`` frames of 800x600 RGB (moving content under
   static burned-in PHI) is generated into a temp folder, once as JPEG baseline
   and once uncompressed (``--cine-syntax``), then scrubbed with ``-j 1``.  Peak
   memory is the highest VmHWM (peak resident set) of any process in the command's
   process tree (the CLI, the fork server, the worker), sampled from ``/proc``.

    .venv/bin/python benchmarks/batch.py [--copies 3] [--frames 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEY = "batch-benchmark-key-0123456789abcdef"


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def run_cli(args: list[str]) -> dict:
    """Run ``pixelscrub`` with ``args``: wall seconds, exit status, peak RSS of its process
    tree and the CPU seconds the tree used (sampled, so a lower bound)."""
    env = dict(os.environ, PIXELSCRUB_KEY=KEY, PYTHONPATH=str(ROOT))
    peak: dict[int, int] = {}
    cpu: dict[int, float] = {}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pixelscrub.cli", *args, "--progress", "none"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        while not done.is_set():
            todo, seen = [proc.pid], set()
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                peak[pid] = max(peak.get(pid, 0), _hwm_kib(pid))
                cpu[pid] = max(cpu.get(pid, 0.0), _cpu_seconds(pid))
                todo.extend(_children(pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"wall": wall, "status": proc.returncode, "peak_mib": max(peak.values(), default=0) / 1024,
            "cpu": sum(cpu.values()), "stderr": err}


def throughput(tmp: Path, copies: int) -> list[tuple]:
    src = tmp / "set"
    for k in range(copies):
        shutil.copytree(ROOT / "sample_data" / "dicom", src / f"copy{k}")
    n = sum(1 for p in src.rglob("*.dcm"))
    rows = []
    for mode in ("regions-only", "phi"):
        for jobs in (1, 2):
            out = tmp / f"out-{mode}-{jobs}"
            extra = ["--region", "0,0,100,40"] if mode == "regions-only" else []
            r = run_cli(["scrub", str(src), "-o", str(out), "-j", str(jobs), "--mode", mode, *extra])
            summary = json.loads((tmp / f"{out.name}-report.jsonl").read_text().splitlines()[-1])
            rows.append((mode, jobs, n, summary["files_out"], summary["failed"], r["wall"],
                         n / r["wall"], r["cpu"], r["peak_mib"]))
            _print_throughput(rows[-1])
            shutil.rmtree(out)
    return rows


def make_cine(path: Path, frames: int, syntax: str, rows: int = 600, cols: int = 800) -> int:
    """Write an RGB cine with static PHI text over moving content; returns its size."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    rng = np.random.default_rng(0)
    base = rng.integers(0, 40, (rows, cols, 3), dtype=np.uint8)
    cv2.putText(base, "DOE, JOHN   ID 12345678   DOB 01/02/1970", (20, 30),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    cv2.putText(base, "ST MARY HOSPITAL  2024-03-05 10:22:31", (20, 65),
                cv2.FONT_HERSHEY_SIMPLEX, 0.7, (230, 230, 230), 2)

    def frame(i: int) -> np.ndarray:
        img = base.copy()
        cv2.circle(img, (100 + (i * 7) % (cols - 200), rows // 2 + 50), 60, (90, 160, 200), -1)
        return img

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JOHN", "12345678", "19700102"
    ds.InstitutionName, ds.StudyDate, ds.StudyTime = "ST MARY HOSPITAL", "20240305", "102231"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = 33.3
    if syntax == "jpeg":
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422"
        params = [cv2.IMWRITE_JPEG_QUALITY, 90,
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
        ds.PixelData = encapsulate([cv2.imencode(".jpg", frame(i)[..., ::-1], params)[1].tobytes()
                                    for i in range(frames)])
        ds["PixelData"].VR = "OB"
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PhotometricInterpretation = "RGB"
        buf = bytearray(rows * cols * 3 * frames)
        step = rows * cols * 3
        for i in range(frames):
            buf[i * step:(i + 1) * step] = frame(i).tobytes()
        ds.PixelData = bytes(buf)
        del buf
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    del ds
    return path.stat().st_size


def cine_memory(tmp: Path, frames: int, syntaxes: list[str], modes: list[str]) -> list[tuple]:
    rows = []
    for syntax in syntaxes:
        folder = tmp / f"cine-{syntax}"
        folder.mkdir()
        size = make_cine(folder / "cine.dcm", frames, syntax)
        for mode in modes:
            out = tmp / f"cine-out-{syntax}-{mode}"
            extra = ["--region", "0,0,800,80"] if mode == "regions-only" else []
            r = run_cli(["scrub", str(folder), "-o", str(out), "-j", "1", "--mode", mode,
                         "--timeout", "0", *extra])
            summary = json.loads((tmp / f"{out.name}-report.jsonl").read_text().splitlines()[-1])
            status = "ok" if summary["files_out"] == 1 else "FAILED: " + r["stderr"].strip()[:200]
            rows.append((syntax, mode, frames, size / 2**20, r["wall"], r["peak_mib"],
                         summary["boxes_by_reason"], status))
            _print_cine(rows[-1])
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(folder)
    return rows


def _print_throughput(row) -> None:
    mode, jobs, n, ok, failed, wall, rate, cpu, peak = row
    print(f"{mode:<13} {jobs:>2} {n:>5} {ok:>4} {failed:>6} {wall:>7.1f} {rate:>8.2f} {cpu:>6.1f} "
          f"{peak:>9.0f}", flush=True)


def _print_cine(row) -> None:
    syntax, mode, frames, size, wall, peak, boxes, status = row
    print(f"{syntax:<7} {mode:<13} {frames:>6} {size:>9.0f} {wall:>7.1f} {peak:>9.0f}  "
          f"{sum(boxes.values())} boxes {status}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=3, help="copies of sample_data/dicom (default 3)")
    p.add_argument("--frames", type=int, default=1000, help="cine frames (default 1000)")
    p.add_argument("--cine-syntax", default="jpeg,native", help="jpeg,native (default both)")
    p.add_argument("--cine-modes", default="regions-only,phi", help="modes for the cine")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-cine", action="store_true")
    a = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pixelscrub-bench-") as tmp:
        tmp = Path(tmp)
        if not a.skip_throughput:
            print("\nthroughput (pixelscrub scrub, wall time including start-up)")
            print(f"{'mode':<13} {'-j':>2} {'files':>5} {'out':>4} {'failed':>6} "
                  f"{'wall s':>7} {'files/s':>8} {'CPU s':>6} {'peak MiB':>9}", flush=True)
            throughput(tmp, a.copies)
        if not a.skip_cine:
            print(f"\nlong cine: {a.frames} frames 800x600 RGB, -j 1 "
                  "(peak = highest VmHWM in the process tree)")
            print(f"{'syntax':<7} {'mode':<13} {'frames':>6} {'file MiB':>9} {'wall s':>7} "
                  f"{'peak MiB':>9}  boxes / status", flush=True)
            cine_memory(tmp, a.frames, a.cine_syntax.split(","), a.cine_modes.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
