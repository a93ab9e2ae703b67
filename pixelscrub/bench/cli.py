"""``pixelscrub bench score`` and ``pixelscrub bench run`` (also ``python -m pixelscrub.bench``)."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["add_bench_parser", "build_parser", "main"]


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``bench`` with its ``score`` and ``run`` subcommands to a subparsers object."""
    b = subparsers.add_parser(
        "bench", help="measure detection accuracy and speed against ground truth",
        description="Score any tool's output against ground truth, or run pixelscrub "
                    "(and optionally Presidio) on a synthetic set and score it.")
    sub = b.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    sub.required = True
    _add_subcommands(sub)
    return b


def _add_subcommands(sub) -> None:
    """The ``score`` and ``run`` subcommands, on any subparsers object."""
    s = sub.add_parser("score", help="score an output folder against ground truth",
                       description="Compare each output file with its original and its "
                                   "ground truth; outputs are matched by relative path, "
                                   "then SOPInstanceUID, then file name.")
    s.add_argument("--truth", required=True, type=Path,
                   help="truth folder (pixelscrub.synth JSON) or a Presidio ground_truth.json")
    s.add_argument("--output", required=True, type=Path, help="the tool's output folder")
    s.add_argument("--input", type=Path, default=None,
                   help="the original DICOM folder (default: dicom/ beside the truth folder)")
    s.add_argument("--json", type=Path, default=None, help="also write the scores here")
    s.add_argument("--items", action="store_true", help="include per-item scores in --json")
    s.add_argument("--no-ocr", action="store_true", help="skip the re-OCR readability check")
    s.set_defaults(func=_cmd_score)

    r = sub.add_parser("run", help="run pixelscrub (and Presidio) on a set and score it",
                       description="Generate a synthetic set (or take --truth), scrub it "
                                   "with pixelscrub.pipeline.scrub_file, score the output, "
                                   "and report speed, time per stage and peak memory.")
    r.add_argument("--truth", type=Path, default=None,
                   help="existing truth folder (its DICOMs in dicom/ beside it)")
    r.add_argument("--count", type=int, default=20, help="files to generate (default 20)")
    r.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    r.add_argument("--out", type=Path, default=Path("bench-out"),
                   help="work folder for the set and outputs (default bench-out)")
    r.add_argument("--mode", default="phi", help="pixelscrub mode (default phi)")
    r.add_argument("--presidio", action="store_true",
                   help="also run Presidio's DicomImageRedactorEngine (own venv) and score it")
    r.add_argument("--trace-memory", action="store_true",
                   help="also measure Python allocation peak with tracemalloc (slower)")
    r.add_argument("--no-ocr", action="store_true", help="skip the re-OCR readability check")
    r.add_argument("--json", type=Path, default=None, help="also write all results here")
    r.set_defaults(func=_cmd_run)


def _cmd_score(args) -> int:
    from .score import format_summary, score_folder

    if not args.truth.exists():
        print(f"pixelscrub bench: no truth at {args.truth}", file=sys.stderr)
        return 2
    try:
        report = score_folder(args.truth, args.output, args.input, ocr=not args.no_ocr)
    except ValueError as e:
        print(f"pixelscrub bench: {e}", file=sys.stderr)
        return 2
    print(format_summary(report, f"{args.output} vs {args.truth}"))
    for f in report.files:
        if f.status != "ok":
            print(f"invalid output: {f.file}: {f.status} {f.detail}")
    if args.json:
        args.json.write_text(json.dumps(report.to_json(items=args.items), indent=1))
    return 0


def _cmd_run(args) -> int:
    from ..options import ScrubOptions
    from ..synth import generate_set
    from .run import BENCH_KEY, format_runs, format_stages, run_pixelscrub_isolated
    from .score import format_summary, score_folder

    out = args.out
    if args.truth:
        truth = args.truth
        dicom = truth.parent / "dicom"
    else:
        if (out / "set").exists():
            shutil.rmtree(out / "set")
        generate_set(out / "set", args.count, args.seed)
        truth, dicom = out / "set" / "truth", out / "set" / "dicom"
    results = {}
    cache: dict = {}
    runs = []
    dst = out / f"pixelscrub-{args.mode}"
    if dst.exists():
        shutil.rmtree(dst)
    run = run_pixelscrub_isolated(dicom, dst, ScrubOptions(mode=args.mode, key=BENCH_KEY),
                         report=out / f"pixelscrub-{args.mode}-report.jsonl",
                         trace_memory=args.trace_memory)
    runs.append(run)
    rep = score_folder(truth, dst, dicom, ocr=not args.no_ocr, cache=cache)
    print(format_summary(rep, run.tool))
    print()
    results[run.tool] = {"run": run.to_json(), "score": rep.to_json()}
    if args.presidio:
        from .presidio import run_presidio
        pdst = out / "presidio"
        if pdst.exists():
            shutil.rmtree(pdst)
        prun = run_presidio(dicom, pdst, out / "presidio-report.jsonl")
        runs.append(prun)
        prep = score_folder(truth, pdst, dicom, ocr=not args.no_ocr, cache=cache)
        print(format_summary(prep, prun.tool))
        print()
        results[prun.tool] = {"run": prun.to_json(), "score": prep.to_json()}
    print(format_runs(runs))
    print()
    print(format_stages(run))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser: ``python -m pixelscrub.bench score|run ...``."""
    p = argparse.ArgumentParser(prog="python -m pixelscrub.bench",
                                description="Benchmark: score outputs against ground truth.")
    sub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    sub.required = True
    _add_subcommands(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
