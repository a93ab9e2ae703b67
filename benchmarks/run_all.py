"""The whole benchmark in one command (``make bench``): prints every number.

Runs the detection accuracy and speed benchmark (``detection.py``: pixelscrub and
Presidio on one synthetic set, one scorer, plus pydicom's real files; updates
``RESULTS.md`` and ``plots/``), then every other benchmark script beside it
(``header.py``, ``codec.py``, ``match.py``, ...) with its defaults, each in its own
process. A failing script is reported and the run goes on; the exit status is 1 when
any failed.

    .venv/bin/python benchmarks/run_all.py [--only detection,header] [detection options]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Scripts in this folder that are helpers, not benchmarks.
NOT_BENCHMARKS = {"run_all.py", "presidio_runner.py"}


def benchmark_scripts() -> list[str]:
    """Benchmark names: detection first, then the other scripts in name order."""
    names = sorted(p.stem for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS)
    return ["detection"] + [n for n in names if n != "detection"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated benchmark names to run")
    a, rest = p.parse_known_args(argv)
    chosen = [n for n in a.only.split(",") if n] or benchmark_scripts()
    failed = []
    for name in chosen:
        script = HERE / f"{name}.py"
        if not script.is_file():
            print(f"run_all: no benchmark {name!r}", file=sys.stderr)
            failed.append(name)
            continue
        args = rest if name == "detection" else []
        print(f"\n======== {name} ========", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script), *args]).returncode
        print(f"======== {name}: exit {rc}, {time.perf_counter() - t0:.0f} s ========", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nrun_all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
