"""Header de-identification benchmark: pixelscrub vs dicognito vs Kitware's dicom-anonymizer.

The same files (pydicom's bundled test files with a pixel module, and a few RT
objects without) get the same synthetic PHI planted (``pixelscrub.header.plant``).
Each tool de-identifies them; the written bytes are scanned for every planted
value.  Reported per tool: planted attributes cleaned (an attribute is cleaned
when no part of its planted value is left anywhere in any output), planted values
left (file x value pairs found in the output bytes, name parts counted
separately), outputs that are valid
instances (re-read, SOP Class kept, Study/Series/SOP Instance UIDs valid),
whether series grouping survived, how many of a fixed list of non-PHI attributes
(:data:`UTILITY`: pixel module, geometry, modality...) came through unchanged, and
files per second (read + de-identify +
write, in-process, after start-up).

dicognito and dicom-anonymizer are installed only for this benchmark, into
``benchmarks/.venv-header`` (created on first run; git-ignored), and run there
by this same script in ``--worker`` mode.  Usage::

    .venv/bin/python benchmarks/header.py [--out benchmarks/results/header.md]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_VENV = HERE / ".venv-header"
BENCH_PACKAGES = ["dicognito==0.19.0", "dicom-anonymizer==2.1.0"]
OTHER_TOOLS = ("dicognito", "dicom-anonymizer")
NON_IMAGE = ("rtplan.dcm", "rtstruct.dcm", "test-SR.dcm", "reportsi.dcm", "waveform_ecg.dcm")
MAX_BYTES = 3_000_000
KEY = b"benchmark-key-0123456789abcdef"
REPEATS = 3


# --- worker: runs inside the benchmark venv, imports only pydicom and the tool -----------

def _worker(tool: str, indir: str, outdir: str) -> dict:
    import warnings

    import pydicom

    warnings.simplefilter("ignore")
    if tool == "dicognito":
        from dicognito.anonymizer import Anonymizer
        anonymizer = Anonymizer(seed="benchmark")
        run = anonymizer.anonymize
    elif tool == "dicom-anonymizer":
        from dicomanonymizer import anonymize_dataset
        run = anonymize_dataset
    else:
        raise SystemExit(f"unknown tool {tool}")
    return _process(run, indir, outdir, pydicom)


def _process(run, indir: str, outdir: str, pydicom) -> dict:
    """Each file read, de-identified, written; timed REPEATS times, the median kept."""
    names = sorted(os.listdir(indir))
    timings = []
    for _ in range(REPEATS):
        failed = []
        start = time.perf_counter()
        for name in names:
            try:
                ds = pydicom.dcmread(os.path.join(indir, name))
                run(ds)
                ds.save_as(os.path.join(outdir, name))
            except Exception as e:  # a tool failing on a file is a result, not a crash
                failed.append([name, type(e).__name__])
        timings.append(time.perf_counter() - start)
    return {"files": len(names), "failed": failed, "seconds": sorted(timings)[len(timings) // 2]}


# --- driver: runs in the project venv -------------------------------------------------

def _ensure_venv() -> Path:
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import dicognito, dicomanonymizer"],
                           capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *BENCH_PACKAGES], check=True)
    return python


def _inputs(indir: Path) -> dict:
    """Plant PHI into the benchmark files; returns {name: planted series number}."""
    import warnings

    import pydicom

    sys.path.insert(0, str(ROOT))
    from pixelscrub.header.plant import plant_phi
    from tests.conftest import PYDICOM_TEST_DIR, pydicom_image_files

    paths = [p for p in pydicom_image_files() if p.stat().st_size < MAX_BYTES]
    paths += [PYDICOM_TEST_DIR / n for n in NON_IMAGE if (PYDICOM_TEST_DIR / n).is_file()]
    series = {}
    warnings.simplefilter("ignore")
    for path in paths:
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        meta = getattr(ds, "file_meta", None)
        if meta is None or "TransferSyntaxUID" not in meta or "SOPClassUID" not in ds:
            continue
        if "MediaStorageSOPClassUID" not in meta:
            continue
        n = len(series)
        plant_phi(ds, series=n // 2 + 1, instance=n % 2 + 1)  # pairs of files share a series
        name = f"{n:03d}.dcm"
        try:
            ds.save_as(indir / name, enforce_file_format=True)
        except Exception:
            continue
        series[name] = n // 2 + 1
    return series


def _pixelscrub(indir: str, outdir: str, options) -> dict:
    import pydicom

    from pixelscrub.header import deidentify

    return _process(lambda ds: deidentify(ds, options, key=KEY), indir, outdir, pydicom)


def _secrets_by_attribute() -> dict[str, str]:
    """Planted attribute -> its exact planted value."""
    from pixelscrub.header.plant import PLANTED, PLANTED_UID_ROOT

    out = dict(PLANTED)
    out["Dates (Study/Series/Acquisition/Content/SR)"] = "20190314"
    out["Instance UIDs"] = PLANTED_UID_ROOT
    return out


def _secret_values() -> set[str]:
    """Every planted string that must not survive, name parts included."""
    values = set(_secrets_by_attribute().values())
    return values | {part for v in values if "^" in v for part in v.split("^")}


#: Attributes that carry no identity and that a useful output must keep unchanged.
UTILITY = ("Modality", "SOPClassUID", "Rows", "Columns", "BitsAllocated", "BitsStored",
           "PhotometricInterpretation", "SamplesPerPixel", "PixelSpacing", "SliceThickness",
           "ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept",
           "WindowCenter", "WindowWidth", "Manufacturer", "KVP", "NumberOfFrames", "ImageType",
           "BodyPartExamined", "SeriesNumber", "InstanceNumber", "PixelData")


def _utility(before, after) -> tuple[int, int]:
    """(kept unchanged, present before) over :data:`UTILITY`."""
    present = [kw for kw in UTILITY if kw in before]
    kept = sum(1 for kw in present if kw in after and after[kw].value == before[kw].value)
    return kept, len(present)


def _score(indir: Path, outdir: Path, series: dict, result: dict) -> dict:
    import warnings

    import pydicom
    from pydicom.uid import UID

    warnings.simplefilter("ignore")
    secrets = _secrets_by_attribute()
    values = _secret_values()
    leaked_attrs, left, valid, out_series = set(), 0, 0, {}
    kept = present = 0
    for name in series:
        path = outdir / name
        if not path.exists():
            continue
        data = path.read_bytes()
        left += sum(1 for v in values if v.encode() in data)
        leaked_attrs.update(attr for attr, v in secrets.items() if v.encode() in data)
        try:
            ds = pydicom.dcmread(path)
            uids = [UID(str(ds[k].value)) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                                    "SOPInstanceUID")]
            if "SOPClassUID" in ds and all(u.is_valid and len(u) <= 64 for u in uids):
                valid += 1
            out_series[name] = (uids[0], uids[1])
            k, n = _utility(pydicom.dcmread(indir / name), ds)
            kept, present = kept + k, present + n
        except Exception:
            pass
    grouping = all((series[a] == series[b]) == (out_series[a] == out_series[b])
                   for a in out_series for b in out_series)
    done = result["files"] - len(result["failed"])
    return {
        "files": result["files"], "failed": len(result["failed"]),
        "attrs_cleaned": len(secrets) - len(leaked_attrs), "attrs_planted": len(secrets),
        "leaked": sorted(leaked_attrs), "values_left": left, "valid": valid,
        "grouping": grouping, "utility": f"{kept}/{present}", "files_per_s": done / result["seconds"] if result["seconds"] else 0.0,
    }


def _table(rows: dict) -> str:
    lines = [
        "| tool | files (failed) | planted attributes cleaned | planted values left | valid outputs "
        "| series grouping kept | non-PHI attributes kept | files/s | attributes left |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, r in rows.items():
        lines.append(
            f"| {tool} | {r['files']} ({r['failed']}) | {r['attrs_cleaned']}/{r['attrs_planted']} "
            f"| {r['values_left']} | {r['valid']}/{r['files']} | {'yes' if r['grouping'] else 'NO'} "
            f"| {r['utility']} | {r['files_per_s']:.0f} | {', '.join(r['leaked']) or '-'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table (markdown) here")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return 0

    sys.path.insert(0, str(ROOT))
    from pixelscrub.header import DeidOptions

    python = _ensure_venv()
    with tempfile.TemporaryDirectory(prefix="pixelscrub-bench-header-") as tmp:
        indir = Path(tmp) / "in"
        indir.mkdir()
        series = _inputs(indir)
        configs = {
            "pixelscrub (Basic Profile)": DeidOptions(),
            "pixelscrub (+ modified dates, clean descriptors/SR)": DeidOptions(
                retain_long_modified_dates=True, clean_descriptors=True,
                clean_structured_content=True),
        }
        rows = {}
        for label, options in configs.items():
            out = Path(tmp) / f"out-{len(rows)}"
            out.mkdir()
            rows[label] = _score(indir, out, series, _pixelscrub(str(indir), str(out), options))
        for tool in OTHER_TOOLS:
            out = Path(tmp) / tool
            out.mkdir()
            done = subprocess.run([str(python), __file__, "--worker", tool, str(indir), str(out)],
                                  capture_output=True, text=True, check=True)
            rows[tool] = _score(indir, out, series, json.loads(done.stdout.strip().splitlines()[-1]))
    table = _table(rows)
    if importlib.util.find_spec("pixelscrub.match") and importlib.util.find_spec("pixelscrub.phi_terms"):
        matcher = "the pixel stage's PHI matcher (pixelscrub.match)"
    else:
        matcher = "no PHI matcher available: text to clean was replaced by dummies"
    table += (f"\n\nClean options used {matcher}. files/s: median of {REPEATS} runs, "
              "read + de-identify + write, one process, start-up excluded.")
    versions = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                              capture_output=True, text=True).stdout.split()
    versions = [v for v in versions if v.split("==")[0].lower() in
                ("dicognito", "dicom-anonymizer", "dicom_anonymizer", "pydicom")]
    header = (f"Header de-identification on {len(series)} planted files "
              f"(pydicom test files < {MAX_BYTES // 1_000_000} MB with pixel data + RT plan, SR and waveform objects); "
              f"benchmark venv: {', '.join(versions)}\n\n")
    print(header + table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("# Header de-identification benchmark\n\n" + header + table + "\n",
                                  encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
