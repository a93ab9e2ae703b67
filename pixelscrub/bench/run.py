"""Run a tool over a folder of DICOMs and measure speed and memory.

pixelscrub runs in this process through :func:`pixelscrub.pipeline.scrub_file`, one file
at a time, so per-stage seconds come from each file's audit record; other tools run in
a subprocess (see :mod:`.presidio`) and report their own per-file seconds.
"""
from __future__ import annotations

import json
import resource
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Optional

__all__ = ["ToolRun", "run_pixelscrub", "run_pixelscrub_isolated", "dicom_files", "format_runs",
           "format_stages", "BENCH_KEY"]

#: Fixed de-identification key for benchmark runs only, so runs are reproducible.
BENCH_KEY = b"pixelscrub-benchmark-key-not-for-real-data"


@dataclass(frozen=True)
class ToolRun:
    """Speed and memory of one tool over one folder.

    ``stage_seconds`` and ``stage_counts`` sum each stage's seconds and numeric counters
    over all files (pixelscrub only); ``peak_rss_mb`` is the process's (or the tool
    subprocess's) peak resident memory; ``tracemalloc_peak_mb`` the peak of Python-level
    allocations when traced; ``per_file`` one dict per file (file, frames, status,
    seconds, ocr_calls).
    """

    tool: str
    files: int
    failed: int
    frames: int
    seconds: float
    per_file_seconds: tuple[float, ...]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_counts: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rss_mb: Optional[float] = None
    tracemalloc_peak_mb: Optional[float] = None
    setup_seconds: float = 0.0
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    per_file: tuple[dict, ...] = ()

    @property
    def frames_per_second(self) -> Optional[float]:
        return self.frames / self.seconds if self.seconds > 0 else None

    @property
    def seconds_per_frame(self) -> Optional[float]:
        return self.seconds / self.frames if self.frames else None

    def to_json(self) -> dict:
        d = asdict(self)
        d["frames_per_second"] = self.frames_per_second
        d["seconds_per_file_mean"] = mean(self.per_file_seconds) if self.per_file_seconds else None
        d["seconds_per_file_median"] = median(self.per_file_seconds) if self.per_file_seconds else None
        return d


def dicom_files(folder: Path) -> list[Path]:
    """Every ``*.dcm`` file under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() == ".dcm")


def _peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    kb = resource.getrusage(who).ru_maxrss
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def run_pixelscrub(input_dir: Path, output_dir: Path, options=None, *,
                   report: Optional[Path] = None, trace_memory: bool = False) -> ToolRun:
    """Scrub every DICOM under ``input_dir`` into ``output_dir`` (same relative paths)."""
    from ..options import ScrubOptions
    from ..pipeline import scrub_file

    options = options or ScrubOptions(key=BENCH_KEY)
    files = dicom_files(input_dir)
    stage_s: dict[str, float] = defaultdict(float)
    stage_c: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    per_file, errors = [], []
    per_file_info: list[dict] = []
    frames = failed = 0
    if trace_memory:
        tracemalloc.start()
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
    rep = open(report, "w", encoding="utf-8") if report else None
    t0 = time.perf_counter()
    try:
        for src in files:
            dst = Path(output_dir) / src.relative_to(input_dir)
            t = time.perf_counter()
            audit = scrub_file(src, dst, options)
            per_file.append(time.perf_counter() - t)
            frames += audit.frames
            if audit.status == "failed":
                failed += 1
                errors.append(str(audit.error))
            ocr_calls = 0
            for s in audit.stages:
                stage_s[s.stage] += s.seconds
                for k, v in _flat(s.counts):
                    stage_c[s.stage][k] += v
                    if k.endswith("ocr_calls"):
                        ocr_calls += int(v)
            per_file_info.append({"file": str(src.relative_to(input_dir)),
                                  "frames": audit.frames, "status": audit.status,
                                  "seconds": per_file[-1], "ocr_calls": ocr_calls})
            if rep:
                rep.write(json.dumps(audit.to_json()) + "\n")
    finally:
        if rep:
            rep.close()
    seconds = time.perf_counter() - t0
    tm_peak = None
    if trace_memory:
        tm_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return ToolRun(
        tool=f"pixelscrub ({options.mode})", files=len(files), failed=failed, frames=frames,
        seconds=seconds, per_file_seconds=tuple(per_file), stage_seconds=dict(stage_s),
        stage_counts={k: dict(v) for k, v in stage_c.items()}, peak_rss_mb=_peak_rss_mb(),
        tracemalloc_peak_mb=tm_peak, errors=tuple(errors), per_file=tuple(per_file_info))


def run_pixelscrub_isolated(input_dir: Path, output_dir: Path, options=None, *,
                            report: Optional[Path] = None,
                            trace_memory: bool = False) -> ToolRun:
    """:func:`run_pixelscrub` in a fresh process, so its peak memory is its own.

    The child's start-up (imports) is not timed; the first file still pays for loading
    OpenCV and Tesseract, as it does for any user.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_pixelscrub, Path(input_dir), Path(output_dir), options,
                           report=report, trace_memory=trace_memory).result()


def _flat(counts: dict, prefix: str = ""):
    """Numeric counters of a stage report, nested dicts flattened to ``a.b`` keys."""
    for k, v in counts.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


def format_runs(runs: list[ToolRun]) -> str:
    """A Markdown table of speed and memory, one row per tool run."""
    head = ("| tool | files | failed | frames | total s | s/file (median) | s/file (max) | "
            "frames/s | peak RSS MB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for r in runs:
        pf = r.per_file_seconds
        fps = r.frames_per_second
        rows.append(f"| {r.tool} | {r.files} | {r.failed} | {r.frames} | {r.seconds:.1f} | "
                    f"{median(pf):.2f} | {max(pf):.2f} | "
                    f"{fps:.2f} | {r.peak_rss_mb:.0f} |" if pf else
                    f"| {r.tool} | 0 | 0 | 0 | - | - | - | - | - |")
    return head + "\n" + "\n".join(rows)


def format_stages(run: ToolRun) -> str:
    """A Markdown table of seconds per stage (summed over files) and their counters."""
    total = run.stage_seconds.get("total") or run.seconds
    lines = ["| stage | seconds | share | s/frame | counters (summed) |",
             "| --- | --- | --- | --- | --- |"]
    for stage, s in sorted(run.stage_seconds.items(), key=lambda kv: -kv[1]):
        counts = run.stage_counts.get(stage, {})
        c = ", ".join(f"{k} {v:g}" for k, v in sorted(counts.items()))
        per_frame = s / run.frames if run.frames else 0.0
        lines.append(f"| {stage} | {s:.2f} | {100 * s / total:.0f}% | {per_frame:.3f} | {c} |")
    return "\n".join(lines)
