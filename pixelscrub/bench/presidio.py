"""Glue for running Presidio's DicomImageRedactorEngine side by side with pixelscrub.

Presidio is never a pixelscrub dependency: it lives in its own venv
(``benchmarks/.venv-presidio`` by default), created on first use with pip, and runs
``benchmarks/presidio_runner.py`` in a subprocess. Its speed numbers are the runner's
per-file seconds; its memory is the subprocess's peak resident size.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Optional

from .run import ToolRun

__all__ = ["PRESIDIO_PACKAGES", "ensure_presidio", "run_presidio", "parse_report",
           "default_paths"]

PRESIDIO_PACKAGES = ("presidio-image-redactor>=0.0.57", "presidio-analyzer>=2.2.360")

_REPO = Path(__file__).resolve().parents[2]


def default_paths() -> tuple[Path, Path]:
    """(venv folder, runner script) in the repository's ``benchmarks/`` folder."""
    return _REPO / "benchmarks" / ".venv-presidio", _REPO / "benchmarks" / "presidio_runner.py"


def _python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_presidio(venv_dir: Optional[Path] = None, *, quiet: bool = True) -> Path:
    """The Python of a venv with Presidio installed, creating it when missing."""
    venv_dir = Path(venv_dir or default_paths()[0])
    py = _python(venv_dir)
    check = [str(py), "-c", "import presidio_image_redactor, presidio_analyzer"]
    if py.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    if not py.is_file():
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    cmd = [str(py), "-m", "pip", "install", *(["-q"] if quiet else []), *PRESIDIO_PACKAGES]
    subprocess.run(cmd, check=True)
    return py


def run_presidio(input_dir: Path, output_dir: Path, report: Path, *,
                 venv_dir: Optional[Path] = None, runner: Optional[Path] = None,
                 timeout: float = 3600.0) -> ToolRun:
    """Run Presidio over ``input_dir`` into ``output_dir``; per-file lines go to ``report``."""
    py = ensure_presidio(venv_dir)
    runner = Path(runner or default_paths()[1])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([str(py), str(runner), "--input", str(input_dir), "--output",
                           str(output_dir), "--report", str(report)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"Presidio runner failed: {proc.stderr.strip()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    kb = max(after, before)
    rss = kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024
    return parse_report(Path(report), peak_rss_mb=rss, wall_seconds=seconds)


def parse_report(report: Path, *, peak_rss_mb: Optional[float] = None,
                 wall_seconds: Optional[float] = None) -> ToolRun:
    """A :class:`ToolRun` from the runner's JSON lines (set-up, one per file, memory)."""
    setup = 0.0
    per_file, errors = [], []
    per_file_info: list[dict] = []
    frames = failed = 0
    tm_peak = None
    for line in Path(report).read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "setup_seconds" in rec:
            setup = rec["setup_seconds"]
        elif "tracemalloc_peak_bytes" in rec:
            tm_peak = rec["tracemalloc_peak_bytes"] / 2**20
        else:
            per_file.append(rec["seconds"])
            frames += int(rec.get("frames", 1))
            per_file_info.append({"file": rec["file"], "frames": int(rec.get("frames", 1)),
                                  "status": rec["status"], "seconds": rec["seconds"]})
            if rec["status"] != "ok":
                failed += 1
                errors.append(f"{rec['file']}: {rec['error']}")
    notes = ["no_op NLP engine (no spaCy model can be downloaded here): pattern "
             "recognizers and the header deny-list (use_metadata=True) only"]
    if wall_seconds is not None:
        notes.append(f"wall time including start-up: {wall_seconds:.1f} s")
    return ToolRun(
        tool="Presidio DicomImageRedactorEngine", files=len(per_file), failed=failed,
        frames=frames, seconds=sum(per_file), per_file_seconds=tuple(per_file),
        peak_rss_mb=peak_rss_mb, tracemalloc_peak_mb=tm_peak, setup_seconds=setup,
        errors=tuple(errors), per_file=tuple(per_file_info), notes=tuple(notes))
