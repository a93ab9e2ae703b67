"""``python -m pixelscrub.synth --out DIR --count N --seed S [--cases a,b]``."""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .generate import CASES, generate_set

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pixelscrub.synth",
                                description="Write synthetic DICOMs with burned-in text "
                                            "and ground truth (OUT/dicom, OUT/truth).")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--count", type=int, default=len(CASES),
                   help=f"number of files (default {len(CASES)}: one of each case)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", default="",
                   help="comma-separated case names to cycle through; known: "
                        + ", ".join(CASES))
    p.add_argument("--vary", action="store_true",
                   help="draw fonts, sizes, printed forms, label words and offsets per file "
                        "instead of each case's fixed look (for benchmark sets)")
    a = p.parse_args(argv)
    cases = [c for c in a.cases.split(",") if c] or None
    try:
        files = generate_set(a.out, a.count, a.seed, cases, vary=a.vary)
    except ValueError as e:
        p.error(str(e))
    per = Counter(f.category for f in files)
    print(f"wrote {len(files)} files to {a.out}/dicom and truth to {a.out}/truth: "
          + ", ".join(f"{k} {v}" for k, v in sorted(per.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
