"""Fuzz campaign benchmark (issue #14): many structure-aware mutations of real files
through real batches, and what held.

Each case is one of pydicom's bundled files (uncompressed, RLE, JPEG baseline /
extended, JPEG-LS, JPEG 2000, multi-frame) with one mutation (``pixelscrub.bench.fuzz``):
truncation at an element boundary, huge or off-by-some lengths, wrong VRs, a pixel
module that lies, broken fragment lengths, broken JPEG / JPEG 2000 code streams,
byte flips.  Prints a Markdown table of the counts that must be zero and of the
failure reasons.

    .venv/bin/python benchmarks/fuzz.py [--cases 2000] [--seed 1] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pydicom  # noqa: E402

from pixelscrub.bench.fuzz import run_campaign  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--json", type=Path, help="also write the raw result here")
    a = p.parse_args(argv)
    seeds = Path(pydicom.__file__).parent / "data" / "test_files"
    r = run_campaign(seeds, a.cases, seed=a.seed, batch=a.batch, jobs=a.jobs)
    print(f"Fuzz campaign: {r.cases} cases (seed {a.seed}), {r.cases // a.batch + bool(r.cases % a.batch)} "
          f"batches of {a.batch} with -j {a.jobs}, {r.seconds:.0f} s\n")
    print("| check | count |\n| --- | --- |")
    for name, value in (("cases tried", r.cases), ("outputs written (all re-read as DICOM)", r.outputs),
                        ("failed with a named one-line reason", sum(r.failures_by_reason.values())),
                        ("batch crashes", len(r.batch_crashes)),
                        ("files without exactly one record", len(r.missing_records)),
                        ("partial or unreadable outputs", len(r.partial_outputs)),
                        ("inputs modified", len(r.inputs_modified)),
                        ("failures without a reason naming the file", len(r.unnamed_failures))):
        print(f"| {name} | {value} |")
    print("\n| mutation | cases |\n| --- | --- |")
    for kind, n in sorted(r.by_kind.items()):
        print(f"| {kind} | {n} |")
    print("\n| failure reason | files |\n| --- | --- |")
    for reason, n in r.failures_by_reason.most_common():
        print(f"| {reason} | {n} |")
    if a.json:
        a.json.write_text(json.dumps(r.to_json(), indent=1))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
