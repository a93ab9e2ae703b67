"""The ``pixelscrub`` command: a thin layer over :func:`pixelscrub.batch.run_batch`
and :func:`pixelscrub.pipeline.inspect_file`.

Exit status: 0 every file written (and, in phi/all-text mode, every frame
checked), 1 some files failed or could not be fully checked, 2 usage error, 130
interrupted (Ctrl-C or SIGTERM; run the same command again to resume).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from typing import Optional, Sequence

from . import __version__
from .errors import ScrubError
from .options import MODES, ScrubOptions, parse_region

__all__ = ["main", "build_parser", "options_from_args"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _region(text: str):
    try:
        return parse_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_scrub_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``scrub`` and ``inspect``: what counts as PHI and how."""
    p.add_argument("--mode", choices=MODES, default="phi",
                   help="phi: text matching the header or PHI patterns (default); "
                        "all-text: every text region minus the allowlist; "
                        "regions-only: only --region boxes and --rules regions, no OCR; "
                        "rules-only: the same, for sites that trust only their templates")
    p.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="device region rules: pixelscrub TOML/YAML, a deid recipe or a CTP "
                        "DicomPixelAnonymizer script; matching regions are blanked in every "
                        "mode (reason rule:NAME); repeatable")
    p.add_argument("--region", action="append", type=_region, default=[], metavar="X0,Y0,X1,Y1[@FRAMES]",
                   help="also black out this box (native pixels, half-open), on frames like 0,2,5-9 "
                        "(0-based; default all); repeatable")
    p.add_argument("--margin", type=int, default=3, metavar="N",
                   help="grow each redaction by N pixels on every side (default 3)")
    p.add_argument("--max-pixels", type=_positive_int, default=ScrubOptions.max_pixels, metavar="N",
                   help="refuse images with more than N samples (rows x columns x frames x "
                        "samples) before decoding (default %(default)s)")
    p.add_argument("--max-frame-pixels", type=_positive_int, default=ScrubOptions.max_frame_pixels,
                   metavar="N", help="refuse images whose frames hold more than N samples "
                                     "(rows x columns x samples) before decoding (default %(default)s)")
    p.add_argument("--redact-unread", action="store_true",
                   help="black out text lines that stay unreadable after every retry, so "
                        "the file can be certified (default: such a file is written as "
                        "unverified, apart from the clean ones)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the verify stage (re-reading each scrubbed image as an attacker "
                        "would, whole frames at two scales and both polarities, and redacting "
                        "what detection missed); faster, less safe")
    p.add_argument("--ocr-engine", default="auto", metavar="NAME",
                   help="OCR engine: auto (default), tesserocr or pytesseract")
    p.add_argument("--verify-engine", default="", metavar="NAME",
                   help="a second OCR engine the verify stage also reads whole frames with "
                        "(rapidocr: PP-OCRv4, finds text over speckle Tesseract misses; about "
                        "0.6 s per frame re-read); default none")
    p.add_argument("--log-phi", action="store_true",
                   help="put OCR text and error details in the report and output (they are PHI)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its ``scrub``, ``inspect`` and (when installed) ``bench`` commands."""
    parser = argparse.ArgumentParser(
        prog="pixelscrub",
        description="Remove patient information burned into DICOM pixels, then de-identify the header.")
    parser.add_argument("--version", action="version", version=f"pixelscrub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("scrub", help="scrub files and folders into an output folder",
                       description="Scrub DICOM files and folders (recursively) into OUTDIR, "
                                   "mirroring relative paths. Re-running the same command "
                                   "skips files already done.",
                       epilog="Exit status: 0 every file written (in phi and all-text mode also "
                              "certified: every frame checked, every text line read or "
                              "redacted), 1 some files failed or are unverified (see the "
                              "report), 2 usage error, 130 interrupted.")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files or folders")
    s.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="output folder (must not be inside an input folder)")
    _add_scrub_options(s)
    s.add_argument("--documents", choices=("scrub", "refuse"), default="scrub",
                   help="encapsulated PDFs: scrub (render the pages, black out PHI, write them "
                        "back as page images; default) or refuse (fail them, so that "
                        "--quarantine keeps them apart)")
    s.add_argument("--no-header", action="store_true", help="leave the header as it is")
    s.add_argument("--no-pixels", action="store_true", help="leave the pixels as they are")
    s.add_argument("-j", "--jobs", type=_positive_int, default=None, metavar="N",
                   help="worker processes (default: all cores)")
    s.add_argument("--report", metavar="FILE.jsonl",
                   help="run report, one JSON line per file plus a closing summary line "
                        "(default: OUTDIR-report.jsonl beside OUTDIR, so the output "
                        "folder holds only images and the hidden resume journal "
                        ".pixelscrub-journal.jsonl)")
    s.add_argument("--quarantine", metavar="DIR",
                   help="copy inputs that failed here (mirroring paths; inputs are never moved)")
    s.add_argument("--rename", choices=("mirror", "uid"), default="mirror",
                   help="mirror: outputs at the inputs' relative paths (default); uid: "
                        "OUTDIR/StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID.dcm of the "
                        "new UIDs, so no input path (often holding a patient's name) reaches "
                        "the output tree, and reports name inputs by a keyed hash")
    s.add_argument("--unverified", metavar="DIR",
                   help="where outputs go whose pixels could not be checked in full (a frame "
                        "not checked, a text line unreadable): they are not certified and "
                        "never land beside the clean ones (default: OUTDIR-unverified "
                        "beside OUTDIR)")
    s.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="give up on a file after this long (default 1800, enough for a "
                        "1,000-frame cine in phi mode on a slow core; 0: no limit)")
    s.add_argument("--max-memory", type=int, default=None, metavar="MB",
                   help="cap each worker's address space at MB megabytes; a file that "
                        "needs more fails as out of memory instead of waking the OOM killer "
                        "(default: three quarters of this machine's memory shared among the "
                        "workers, at least 2048; 0: no cap)")
    s.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask cluster; inputs and OUTDIR must be on a filesystem "
                        "every worker sees at the same paths")
    s.add_argument("--no-resume", "--overwrite", dest="resume", action="store_false",
                   help="redo every file, even those a previous run finished")
    s.add_argument("--review", action="store_true",
                   help="also write the review page (OUTDIR-review/index.html) after the run")
    s.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="progress display on stderr (default: a bar on a terminal, "
                        "plain lines otherwise)")
    _add_header_arguments(s)

    v = sub.add_parser("review", help="write a static HTML page to review a run's outputs",
                       description="Write OUTDIR-review/index.html from a run report: one card per "
                                   "output with the scrubbed image and its redactions by reason, "
                                   "filters, a summary, approve/reject and a decisions download. "
                                   "No PHI unless --show-phi.")
    v.add_argument("report", metavar="REPORT|OUTDIR",
                   help="the run report (OUTDIR-report.jsonl), or OUTDIR for its default report")
    v.add_argument("-o", "--output", metavar="DIR", help="where to write the page "
                                                         "(default: OUTDIR-review beside the report)")
    v.add_argument("--show-phi", action="store_true",
                   help="add the original images and OCR text (needs a --log-phi report); "
                        "the page then says it shows PHI")
    rl = sub.add_parser("release", help="quarantine the outputs a reviewer rejected",
                        description="Move the outputs marked rejected in a review decisions file "
                                    "(downloaded from the review page) into a quarantine folder.")
    rl.add_argument("decisions", metavar="DECISIONS.json")
    rl.add_argument("--report", required=True, metavar="FILE.jsonl", help="the run's report")
    rl.add_argument("--quarantine", required=True, metavar="DIR")

    r = sub.add_parser("rules", help="device region rules: check a rules file")
    rsub = r.add_subparsers(dest="rules_command", metavar="ACTION")
    rsub.required = True
    rc = rsub.add_parser("check", help="validate rules files and show which inputs each matches",
                         description="Read rules files (pixelscrub TOML/YAML, deid recipes, CTP "
                                     "scripts), name what cannot be mapped, and with --inputs "
                                     "show which files each rule matches. Exit 2 on an invalid "
                                     "file.")
    rc.add_argument("files", nargs="+", metavar="FILE")
    rc.add_argument("--inputs", metavar="DIR", help="a folder of DICOM files to match the rules "
                                                    "against (headers only are read)")

    i = sub.add_parser("inspect", help="show what would be redacted and why; writes nothing")
    i.add_argument("file", metavar="FILE")
    _add_scrub_options(i)
    i.add_argument("--json", action="store_true", help="print the audit record as JSON")

    from .gateway.command import add_serve_parser
    add_serve_parser(sub, _add_scrub_options, _add_header_arguments)

    _add_bench(sub)
    return parser


def _add_header_arguments(parser: argparse.ArgumentParser) -> None:
    from .header.config import add_cli_arguments
    add_cli_arguments(parser)


def _add_bench(sub) -> None:
    """``pixelscrub bench`` comes from the benchmark module, when it is installed."""
    try:
        from .bench.cli import add_bench_parser
    except ImportError:
        return
    add_bench_parser(sub)


def options_from_args(args: argparse.Namespace, *, warn=None) -> ScrubOptions:
    """ScrubOptions from parsed ``scrub``/``inspect`` arguments.

    Without a key (no ``--key-file``, no ``$PIXELSCRUB_KEY``) one random key is made
    for the whole run, so all workers agree on it; ``warn`` is told once.
    """
    deid, key = None, None
    if hasattr(args, "key_file"):
        from .header.config import options_from_cli
        deid, key = options_from_cli(args)
        if key is None and not getattr(args, "no_header", False):
            key = secrets.token_bytes(32)
            if warn:
                warn("no de-identification key (PIXELSCRUB_KEY or --key-file): using a random "
                     "key for this run, so UIDs and pseudonyms differ from other runs and "
                     "a re-run cannot resume")
    rules = ()
    if args.rules:
        from .rules import load_rules
        loaded = load_rules(args.rules)
        rules = tuple(loaded.rules)
        for line in loaded.unmapped:
            if warn:
                warn(f"rules: {line}")
    return ScrubOptions(
        mode=args.mode, regions=tuple(args.region), margin=args.margin, rules=rules,
        pixels=not getattr(args, "no_pixels", False), header=not getattr(args, "no_header", False),
        deid=deid, key=key, log_phi=args.log_phi, max_pixels=args.max_pixels,
        max_frame_pixels=args.max_frame_pixels, redact_unread=args.redact_unread,
        documents=getattr(args, "documents", "scrub"),
        ocr_engine=args.ocr_engine, verify=getattr(args, "verify", True),
        verify_engine=getattr(args, "verify_engine", ""))


def _err(text: str) -> None:
    print(f"pixelscrub: {text}", file=sys.stderr, flush=True)


def _cmd_scrub(args) -> int:
    from .batch import run_batch

    if args.margin < 0:
        raise ScrubError("--margin must be >= 0", reason="usage")
    if args.max_memory is not None and args.max_memory < 0:
        raise ScrubError("--max-memory must be >= 0 (0: no cap)", reason="usage")
    options = options_from_args(args, warn=lambda t: _err(f"warning: {t}"))
    if options.pixels and options.mode == "regions-only" and not (options.regions or options.rules):
        _err("warning: --mode regions-only without --region leaves every pixel as it is")
    if options.pixels and options.mode == "rules-only" and not options.rules:
        _err("warning: --mode rules-only without --rules leaves every pixel as it is")
    summary = run_batch(args.inputs, args.output, options, jobs=args.jobs, report=args.report,
                        quarantine=args.quarantine, unverified=args.unverified,
                        rename=args.rename,
                        resume=args.resume,
                        timeout=args.timeout or None, scheduler=args.scheduler,
                        progress=args.progress,
                        max_memory=None if args.max_memory is None else args.max_memory * 2**20)
    print(summary.text(), file=sys.stderr, flush=True)
    if args.review and not summary.interrupted:
        from .batch import default_report_path
        from .review import build_review
        page = build_review(args.report or default_report_path(args.output))
        _err(f"review page: {page}")
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.exit_status else EXIT_OK


def _describe_hit(hit, log_phi: bool) -> str:
    frames = "all frames" if hit.frames is None else "frames " + _frame_ranges(hit.frames)
    line = (f"  {hit.layer} box {hit.box.x0},{hit.box.y0},{hit.box.x1},{hit.box.y1} {frames}: "
            f"{hit.reason} (OCR confidence {hit.confidence:.0f}, match {hit.score:.0f})")
    if log_phi and hit.text:
        line += f" text={hit.text!r}"
    return line


def _frame_ranges(frames: Sequence[int]) -> str:
    parts, start, prev = [], None, None
    for f in frames:
        if start is None:
            start = prev = f
        elif f == prev + 1:
            prev = f
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = f
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def _cmd_inspect(args) -> int:
    from .pipeline import inspect_file

    if not os.path.isfile(args.file):
        raise ScrubError(f"{args.file}: not a file", reason="usage")
    options = options_from_args(args)
    audit = inspect_file(args.file, options)
    if args.json:
        print(json.dumps(audit.to_json(log_phi=args.log_phi), indent=2))
    elif audit.status == "failed":
        pass
    else:
        checked = ("every frame checked" if audit.status == "clean"
                   else f"{audit.frames_checked} of {audit.frames} frames checked")
        if audit.review:
            checked += f", {len(audit.review)} text region(s) unreadable: not certified"
        print(f"{args.file}: {audit.frames} frame(s), {audit.transfer_syntax_in}; {checked}")
        print(f"{len(audit.hits)} region(s) would be redacted" + (":" if audit.hits else ""))
        for hit in audit.hits:
            print(_describe_hit(hit, args.log_phi))
        if audit.review:
            print(f"{len(audit.review)} region(s) need review (unreadable text):")
            for hit in audit.review:
                print(_describe_hit(hit, args.log_phi))
        for note in audit.notes:
            print(f"note: {note}")
    if audit.status == "failed":
        _err(audit.error or f"{args.file}: failed")
        return EXIT_FAILED
    return EXIT_OK


def _cmd_rules(args) -> int:
    """``pixelscrub rules check``: what each file holds, what cannot be mapped, and
    which inputs each rule matches (header only, nothing written)."""
    import warnings
    from pathlib import Path

    import pydicom

    from .rules import blank_regions, load_rules, matching_rules
    loaded = load_rules(args.files)
    kinds = {}
    for rule in loaded.rules:
        kinds[rule.action] = kinds.get(rule.action, 0) + 1
    print(f"{len(loaded.rules)} rule(s) from {len(args.files)} file(s): "
          + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    for line in loaded.unmapped:
        print(f"not mapped: {line}")
    if args.inputs:
        root = Path(args.inputs)
        if not root.is_dir():
            raise ScrubError(f"{args.inputs}: not a folder", reason="usage")
        hits: dict[str, list[str]] = {r.name: [] for r in loaded.rules}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - not DICOM: nothing to match
                continue
            rel = path.relative_to(root).as_posix()
            matched = matching_rules(loaded.rules, ds)
            for rule in matched:
                hits[rule.name].append(rel)
            regions = blank_regions(loaded.rules, ds)
            if matched:
                print(f"{rel}: " + "; ".join(f"{r.name} ({r.action})" for r in matched)
                      + f"; {len(regions)} region(s) to blank")
        unused = [name for name, files in hits.items() if not files]
        print(f"{len(hits) - len(unused)} rule(s) matched some input, {len(unused)} none")
    return EXIT_OK


def _cmd_review(args) -> int:
    from pathlib import Path

    from .batch import default_report_path
    from .review import build_review
    report = Path(args.report)
    if report.is_dir():
        report = default_report_path(report)
    if not report.is_file():
        raise ScrubError(f"{args.report}: no run report there", reason="usage")
    print(build_review(report, out_dir=args.output, show_phi=args.show_phi))
    return EXIT_OK


def _terminate(signum, frame):
    raise KeyboardInterrupt  # a polite kill stops the batch the way Ctrl-C does


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pixelscrub`` console script; returns the exit status."""
    from .gateway.command import with_config
    parser = build_parser()
    try:
        args = with_config(parser, argv)  # exits 2 on a usage error
    except ScrubError as exc:
        _err(str(exc))
        return EXIT_USAGE
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main else None
    try:
        if args.command == "scrub":
            return _cmd_scrub(args)
        if args.command == "inspect":
            return _cmd_inspect(args)
        if args.command == "rules":
            return _cmd_rules(args)
        if args.command == "review":
            return _cmd_review(args)
        if args.command == "serve":
            from .gateway.command import run_serve
            return run_serve(args, options_from_args)
        if args.command == "release":
            from .review import release
            moved, kept = release(args.decisions, args.report, args.quarantine)
            print(f"moved {moved} rejected output(s) to {args.quarantine}; {kept} left in place")
            return EXIT_OK
        handler = getattr(args, "func", None)
        if handler is None:
            parser.error(f"unknown command {args.command!r}")
        return handler(args)
    except ScrubError as exc:
        _err(str(exc))
        return EXIT_USAGE if exc.reason in ("usage", "config", "no-key") else EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `pixelscrub inspect FILE | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
