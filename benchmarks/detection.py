"""Detection accuracy and speed benchmark (issue #5): pixelscrub and Presidio side by side.

One seeded synthetic set (``pixelscrub.synth``) with exact ground truth; pixelscrub in
each mode and Presidio's DicomImageRedactorEngine (its own venv, ``no_op`` NLP engine,
header deny-list) scrub the same files; one scorer (``pixelscrub.bench.score``) scores
every output. Then pydicom's bundled ultrasound and secondary-capture files check how
many real files each tool decodes, scrubs and writes back decodable.

Writes the "## Detection accuracy (issue #5)" section of ``benchmarks/RESULTS.md``
(other sections are left alone), PNG plots in ``benchmarks/plots/`` and the raw numbers
in ``OUT/detection.json``. Usage::

    .venv/bin/python benchmarks/detection.py [--count N] [--seed 1] [--no-presidio]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import warnings
from pathlib import Path

# One OpenMP thread per Tesseract: the benchmark runs one file at a time on a shared box.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from pixelscrub.bench.run import (BENCH_KEY, ToolRun, format_runs, format_stages,  # noqa: E402
                                  run_pixelscrub_isolated)
from pixelscrub.bench.score import (KEPT_COVERAGE, REMOVED_COVERAGE, ScoreReport,  # noqa: E402
                                    format_summary, score_folder)
from pixelscrub.options import ScrubOptions  # noqa: E402
from pixelscrub.synth import CASES, generate_set, read_truth, truth_files  # noqa: E402

SECTION = "## Detection accuracy (issue #5)"
RESULTS = HERE / "RESULTS.md"
PLOTS = HERE / "plots"
PYDICOM_DIR = Path(pydicom.__file__).parent / "data" / "test_files"
REAL_FILES = ("examples_ybr_color.dcm", "examples_rgb_color.dcm", "examples_palette.dcm",
              "examples_jpeg2k.dcm", "ExplVR_BigEnd.dcm", "SC_*.dcm")
#: Issue #3's targets, as (label, check on the overall summary of the default mode).
TARGETS = "PHI items removed >= 99.5 %, none still readable by OCR, non-PHI text kept >= 95 %"


# --------------------------------------------------------------------------- inputs

def real_files() -> list[Path]:
    """pydicom's bundled ultrasound and secondary-capture files (never downloads)."""
    out: list[Path] = []
    for pattern in REAL_FILES:
        out.extend(sorted(PYDICOM_DIR.glob(pattern)))
    return out


def text_lines(items) -> int:
    """Text items grouped into lines: same row (vertical overlap) and a small gap."""
    boxes = sorted((it.box for it in items), key=lambda b: (b.y0, b.x0))
    lines: list[list] = []
    for b in boxes:
        for line in lines:
            last = line[-1]
            overlap = min(last.y1, b.y1) - max(last.y0, b.y0)
            gap = b.x0 - last.x1
            if overlap > 0.5 * min(last.height, b.height) and -2 <= gap <= 3 * max(last.height, b.height):
                line.append(b)
                break
        else:
            lines.append([b])
    return len(lines)


def cine_ocr_budget(truth_dir: Path, run: ToolRun) -> list[dict]:
    """Per cine: OCR calls made vs static text lines + distinct dynamic texts."""
    calls = {r["file"]: r.get("ocr_calls") for r in run.per_file}
    out = []
    for tp in truth_files(truth_dir):
        t = read_truth(tp)
        if t.frames < 2:
            continue
        static = [it for it in t.items if it.frames is None]
        dynamic = [it for it in t.items if it.frames is not None]
        out.append({"file": t.file, "frames": t.frames, "static_lines": text_lines(static),
                    "dynamic_texts": len(dynamic), "ocr_calls": calls.get(t.file)})
    return out


# --------------------------------------------------------------------------- real files

def _decodes(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return (frames, int(ds.Rows), int(ds.Columns)), arr


def real_file_check(src_dir: Path, tool_outputs: dict[str, tuple[Path, ToolRun]]) -> list[dict]:
    """Per tool: files that decode (input), were scrubbed, and whose output decodes with
    the input's geometry."""
    files = sorted(src_dir.glob("*.dcm"))
    decodable = {}
    for f in files:
        try:
            decodable[f.name] = _decodes(f)[0]
        except Exception:
            decodable[f.name] = None
    rows = []
    for tool, (out_dir, run) in tool_outputs.items():
        status = {r["file"]: r["status"] for r in run.per_file}
        why = {}
        for e in run.errors:
            name, _, msg = e.partition(": ")
            why[Path(name).name] = msg.replace(str(src_dir), "").strip()[:80]
        scrubbed = sum(1 for f in files if status.get(f.name) not in (None, "failed"))
        reenc, failures = 0, []
        for f in files:
            o = out_dir / f.name
            try:
                geom = _decodes(o)[0] if o.is_file() else None
            except Exception as e:
                failures.append(f"{f.name}: output undecodable ({type(e).__name__})")
                continue
            if geom is None:
                failures.append(f"{f.name}: no output ({why.get(f.name) or status.get(f.name, '?')})")
            elif decodable[f.name] is not None and geom != decodable[f.name]:
                failures.append(f"{f.name}: geometry {decodable[f.name]} -> {geom}")
            else:
                reenc += 1
        rows.append({"tool": tool, "files": len(files),
                     "input_decodes": sum(v is not None for v in decodable.values()),
                     "scrubbed": scrubbed, "output_decodes": reenc, "failures": failures,
                     "seconds": run.seconds})
    return rows


# --------------------------------------------------------------------------- plots

def make_plots(scores: dict[str, ScoreReport], runs: dict[str, ToolRun], plots: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    tools = list(scores)
    all_cats = sorted({c for r in scores.values() for c in r.by_category})
    made = []
    for metric, fname, title in [
            ("recall", "phi_removed_by_category.png", "PHI text items removed"),
            ("kept_rate", "nonphi_kept_by_category.png", "Non-PHI text items kept")]:
        cats = [c for c in all_cats if any(
            getattr(r.by_category.get(c), metric, None) is not None for r in scores.values())]
        fig, ax = plt.subplots(figsize=(9, 4.4))
        width = 0.8 / max(1, len(tools))
        x = np.arange(len(cats) + 1)
        for i, tool in enumerate(tools):
            groups = [scores[tool].by_category.get(c) for c in cats] + [scores[tool].overall]
            vals = [getattr(g, metric) if g is not None and getattr(g, metric) is not None
                    else np.nan for g in groups]
            ax.bar(x + i * width - 0.4 + width / 2, [100 * v for v in vals], width, label=tool)
        ax.set_xticks(x, cats + ["overall"])
        ax.set_ylabel("%")
        ax.set_ylim(0, 105)
        ax.set_title(title + " (same scorer, same files)")
        if metric == "recall":
            ax.axhline(99.5, color="k", lw=0.8, ls="--", label="target 99.5 %")
        else:
            ax.axhline(95, color="k", lw=0.8, ls="--", label="target 95 %")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
        fig.tight_layout()
        fig.savefig(plots / fname, dpi=90)
        plt.close(fig)
        made.append(plots / fname)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(runs)
    spf = [runs[n].seconds_per_frame or 0.0 for n in names]
    ax.barh(names, spf, color="tab:gray")
    for i, v in enumerate(spf):
        ax.text(v, i, f" {v:.3f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds per frame (lower is better)")
    ax.set_title("Time per frame, synthetic set, 1 process")
    fig.tight_layout()
    fig.savefig(plots / "time_per_frame.png", dpi=90)
    plt.close(fig)
    made.append(plots / "time_per_frame.png")
    return made


# --------------------------------------------------------------------------- report

def _targets(report: ScoreReport) -> str:
    o = report.overall
    recall = o.recall or 0.0
    kept = o.kept_rate or 0.0

    def mark(ok):
        return "met" if ok else "**not met**"
    return (f"- PHI text items removed: {100 * recall:.1f} % (target >= 99.5 %: "
            f"{mark(recall >= 0.995)})\n"
            f"- PHI items still readable by OCR after redaction: {o.phi_readable_after} "
            f"(target 0: {mark(o.phi_readable_after == 0)})\n"
            f"- non-PHI text items kept: {100 * kept:.1f} % (target >= 95 %: "
            f"{mark(kept >= 0.95)})")


def _missed(report: ScoreReport, limit: int = 25) -> str:
    rows = []
    for f in report.files:
        for it in f.items:
            if it.is_phi and not it.removed:
                rows.append(f"| {f.file} | {it.why} | {', '.join(it.tags) or '-'} | "
                            f"{100 * it.coverage:.0f}% | {'yes' if it.readable_after else 'no'} |")
    if not rows:
        return "None."
    head = ("| file | why | tags | ink hidden | readable after |\n"
            "| --- | --- | --- | --- | --- |")
    more = f"\n\n... and {len(rows) - limit} more." if len(rows) > limit else ""
    return head + "\n" + "\n".join(rows[:limit]) + more


def _lost(report: ScoreReport) -> str:
    counts: dict[str, int] = {}
    for f in report.files:
        for it in f.items:
            if not it.is_phi and not it.kept:
                counts[it.why] = counts.get(it.why, 0) + 1
    if not counts:
        return "None."
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def by_reason(scores: dict[str, ScoreReport]) -> str:
    """PHI removed per reason (header attribute or pattern kind), one column per tool."""
    tools = list(scores)
    table: dict[str, dict[str, list[int]]] = {}
    for tool, rep in scores.items():
        for f in rep.files:
            for it in f.items:
                if it.is_phi:
                    cell = table.setdefault(it.why, {}).setdefault(tool, [0, 0])
                    cell[0] += it.removed
                    cell[1] += 1
    head = "| PHI reason | items | " + " | ".join(tools) + " |\n| --- | --- |" + " --- |" * len(tools)
    rows = []
    for why in sorted(table):
        n = max(v[1] for v in table[why].values())
        cells = [f"{100 * table[why][t][0] / table[why][t][1]:.0f}%" if t in table[why] else "-"
                 for t in tools]
        rows.append(f"| {why} | {n} | " + " | ".join(cells) + " |")
    return head + "\n" + "\n".join(rows)


def build_section(args, scores, runs, budget, real_rows, fixed_compare, plots,
                  presidio_note) -> str:
    prun = runs.get("Presidio DicomImageRedactorEngine")
    presidio_setup = f"{prun.setup_seconds:.1f} s" if prun else "not run"
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    default = next(iter(scores))
    parts = [SECTION, "",
             f"Measured {when} on {platform.machine()} ({platform.python_version()}), "
             f"one process, by `.venv/bin/python benchmarks/run_all.py` "
             f"(`benchmarks/detection.py --count {args.count} --seed {args.seed}`). "
             "The set is synthetic (`python -m pixelscrub.synth --count "
             f"{args.count} --seed {args.seed}{'' if args.fixed_look else ' --vary'}`): "
             "every burned-in text item has its exact ink mask, so accuracy is measured "
             "per pixel, not by eye. "
             + ("Each case keeps its fixed look (the look of `sample_data/`)."
                if args.fixed_look else
                "`--vary` draws fonts, sizes, printed name/date forms, label words, "
                "offsets and colours per file, so this is not the look of `sample_data/` "
                "that detection was developed on; the fixed-look comparison below shows "
                "the gap."), "",
             "How items are scored (`pixelscrub/bench/score.py`): an ink pixel is *hidden* "
             "when it changed by more than half the item's contrast or no longer stands out "
             "from the pixels around it. A PHI item counts **removed** when "
             f">= {100 * REMOVED_COVERAGE:.0f} % of its ink is hidden on every frame it is on; "
             f"a non-PHI item counts **kept** when <= {100 * KEPT_COVERAGE:.0f} % is hidden. "
             "*Readable* means Tesseract re-reads the item's area and fuzzy-matches its text "
             "(before: on the original; after: on the output). *Collateral* is the "
             "fraction of pixels away from all text that changed. *Header PHI files* are "
             "outputs whose bytes (outside pixel data) still hold an original identifying "
             "header value. Invalid outputs (missing, unreadable, undecodable, other "
             "geometry) count their PHI as not removed.", "",
             "Score any tool the same way: `pixelscrub bench score --truth DIR/truth "
             "--output TOOL_OUT` (originals in `DIR/dicom`), or with annotations in "
             "Presidio's `ground_truth.json` format: `--truth ground_truth.json --input "
             "DICOM_DIR`. Timings come from a 2-core machine shared with other jobs: "
             "compare tools within one run, not across runs.", "",
             f"### Targets (issue #3), pixelscrub default mode ({default})", "",
             _targets(scores[default]), ""]
    for tool, rep in scores.items():
        parts += [format_summary(rep, tool), ""]
    if presidio_note:
        parts += [f"Presidio: {presidio_note}", ""]
    parts += ["### PHI removed by reason", "", by_reason(scores), ""]
    if fixed_compare is not None:
        frun, frep = fixed_compare
        g, v = frep.overall, scores[default].overall

        def pct(x):
            return "-" if x is None else f"{100 * x:.1f}%"
        parts += ["### Fixed look (as `sample_data/`) vs varied look, " + frun.tool, "",
                  "| set | PHI items | PHI removed | readable after | non-PHI kept |",
                  "| --- | --- | --- | --- | --- |",
                  f"| fixed look (`--seed {args.seed}`, no `--vary`) | {g.phi_items} | "
                  f"{pct(g.recall)} | {g.phi_readable_after} | {pct(g.kept_rate)} |",
                  f"| varied look (main set above) | {v.phi_items} | {pct(v.recall)} | "
                  f"{v.phi_readable_after} | {pct(v.kept_rate)} |", ""]
    parts += ["### Speed and memory (same files, one process each)", "",
              format_runs(list(runs.values())), "",
              "Each tool runs in its own process, one file at a time; peak RSS is that "
              "process's. Totals exclude interpreter start-up; the first file of each "
              "pixelscrub run includes loading OpenCV and Tesseract (hence s/file max), "
              f"Presidio's engine set-up ({presidio_setup}) is excluded.", ""]
    first = runs[default]
    parts += [f"### Time per stage, {first.tool} (summed over files)", "",
              format_stages(first), ""]
    if budget:
        parts += ["### Cine OCR budget (target: static overlays cost at most one Tesseract "
                  "call per text line per series)", "",
                  "| file | frames | static text lines | distinct dynamic texts | OCR calls | "
                  "within lines + texts |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for b in budget:
            bound = b["static_lines"] + b["dynamic_texts"]
            ok = b["ocr_calls"] is not None and b["ocr_calls"] <= bound
            parts.append(f"| {b['file']} | {b['frames']} | {b['static_lines']} | "
                         f"{b['dynamic_texts']} | {b['ocr_calls']} | "
                         f"{'yes' if ok else '**no**'} ({bound}) |")
        parts += ["", "Dynamic texts (a clock that ticks, a frame counter) need a read each "
                      "time they change, so the bound for a cine is static lines + dynamic "
                      "texts.", ""]
    parts += [f"### PHI items not removed ({default})", "", _missed(scores[default]), "",
              f"Non-PHI items lost ({default}), by kind: {_lost(scores[default])}", ""]
    if real_rows:
        parts += ["### Real files: pydicom's bundled ultrasound and secondary-capture files", "",
                  "No ground truth: this checks that files decode, scrub and come back "
                  "decodable with the same geometry.", "",
                  "| tool | files | input decodes | scrubbed | output decodes, same geometry | s |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in real_rows:
            parts.append(f"| {r['tool']} | {r['files']} | {r['input_decodes']} | "
                         f"{r['scrubbed']} | {r['output_decodes']} | {r['seconds']:.1f} |")
        for r in real_rows:
            if r["failures"]:
                parts += ["", f"{r['tool']} failures: " + "; ".join(r["failures"][:12])
                          + (" ..." if len(r["failures"]) > 12 else "")]
        parts.append("")
    if plots:
        parts += ["### Plots", ""]
        parts += [f"![{p.stem}](plots/{p.name})" for p in plots]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def update_results(section: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md, keeping every other section."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=3 * len(CASES),
                   help="files in the set (default: three of every case)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench-out" / "detection")
    p.add_argument("--modes", default="phi,all-text")
    p.add_argument("--no-presidio", action="store_true")
    p.add_argument("--no-real", action="store_true")
    p.add_argument("--no-ocr", action="store_true", help="skip the re-OCR readability check")
    p.add_argument("--fixed-look", action="store_true",
                   help="main set in each case's fixed look (as sample_data) instead of "
                        "per-file varied styles")
    p.add_argument("--no-fixed-compare", action="store_true",
                   help="skip the extra fixed-look set for pixelscrub's default mode")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--plots", type=Path, default=PLOTS)
    a = p.parse_args(argv)

    out = a.out
    if out.exists():
        shutil.rmtree(out)
    vary = not a.fixed_look
    generate_set(out / "set", a.count, a.seed, vary=vary)
    truth, dicom = out / "set" / "truth", out / "set" / "dicom"
    print(f"set: {a.count} files (seed {a.seed}, {'varied' if vary else 'fixed'} look) "
          f"in {out / 'set'}", flush=True)

    cache: dict = {}
    scores: dict[str, ScoreReport] = {}
    runs: dict[str, ToolRun] = {}
    for mode in [m for m in a.modes.split(",") if m]:
        dst = out / f"pixelscrub-{mode}"
        run = run_pixelscrub_isolated(dicom, dst, ScrubOptions(mode=mode, key=BENCH_KEY),
                             report=out / f"pixelscrub-{mode}-report.jsonl")
        runs[run.tool] = run
        scores[run.tool] = score_folder(truth, dst, dicom, ocr=not a.no_ocr, cache=cache)
        print(format_summary(scores[run.tool], run.tool) + "\n", flush=True)

    presidio_note = ""
    if not a.no_presidio:
        from pixelscrub.bench.presidio import run_presidio
        try:
            prun = run_presidio(dicom, out / "presidio", out / "presidio-report.jsonl")
            runs[prun.tool] = prun
            scores[prun.tool] = score_folder(truth, out / "presidio", dicom,
                                             ocr=not a.no_ocr, cache=cache)
            print(format_summary(scores[prun.tool], prun.tool) + "\n", flush=True)
            failed = "; ".join(prun.errors[:5])
            presidio_note = (prun.notes[0] + ". Defaults otherwise (fill=contrast, "
                             "padding 25). It redacts pixels only, never the header. "
                             + (f"Files it failed on: {failed}." if failed else ""))
        except Exception as e:  # a missing Presidio must not hide pixelscrub's numbers
            presidio_note = f"not run: {type(e).__name__}: {e}"
            print(f"Presidio not run: {e}", file=sys.stderr)

    fixed_compare = None
    if vary and not a.no_fixed_compare:
        mode = [m for m in a.modes.split(",") if m][0]
        generate_set(out / "fixed-set", a.count, a.seed)
        frun = run_pixelscrub_isolated(out / "fixed-set" / "dicom", out / "fixed-pixelscrub",
                                       ScrubOptions(mode=mode, key=BENCH_KEY))
        fixed_compare = (frun, score_folder(out / "fixed-set" / "truth",
                                            out / "fixed-pixelscrub",
                                            out / "fixed-set" / "dicom", ocr=not a.no_ocr))
        print(format_summary(fixed_compare[1], f"{frun.tool}, fixed look") + "\n", flush=True)

    print(format_runs(list(runs.values())) + "\n")
    first = next(iter(runs.values()))
    print(format_stages(first) + "\n")
    budget = cine_ocr_budget(truth, first)
    for b in budget:
        print(f"cine {b['file']}: {b['frames']} frames, {b['static_lines']} static lines, "
              f"{b['dynamic_texts']} dynamic texts, {b['ocr_calls']} OCR calls")

    real_rows = []
    if not a.no_real:
        real_in = out / "real" / "input"
        real_in.mkdir(parents=True)
        for f in real_files():
            shutil.copy2(f, real_in / f.name)
        tools = {}
        rrun = run_pixelscrub_isolated(real_in, out / "real" / "pixelscrub",
                              ScrubOptions(key=BENCH_KEY), report=out / "real" / "pixelscrub.jsonl")
        tools[rrun.tool] = (out / "real" / "pixelscrub", rrun)
        if "Presidio DicomImageRedactorEngine" in runs:
            from pixelscrub.bench.presidio import run_presidio
            prr = run_presidio(real_in, out / "real" / "presidio", out / "real" / "presidio.jsonl")
            tools[prr.tool] = (out / "real" / "presidio", prr)
        real_rows = real_file_check(real_in, tools)
        for r in real_rows:
            print(f"real files, {r['tool']}: {r['files']} files, {r['input_decodes']} decode, "
                  f"{r['scrubbed']} scrubbed, {r['output_decodes']} outputs decode with the "
                  "same geometry")

    plots = make_plots(scores, runs, a.plots)
    section = build_section(a, scores, runs, budget, real_rows, fixed_compare,
                            [p.relative_to(a.results.parent) if p.is_relative_to(a.results.parent)
                             else p for p in plots], presidio_note)
    update_results(section, a.results)
    (out / "detection.json").write_text(json.dumps({
        "scores": {k: v.to_json(items=True) for k, v in scores.items()},
        "runs": {k: v.to_json() for k, v in runs.items()},
        "cine_budget": budget, "real_files": real_rows}, indent=1, default=str))
    print(f"\nwrote {a.results} (section '{SECTION}'), plots in {a.plots}, raw numbers in "
          f"{out / 'detection.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
