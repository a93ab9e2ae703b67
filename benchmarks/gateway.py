"""Gateway benchmark: instances per second through `pixelscrub serve` against `scrub`.

The same files (``sample_data/dicom``, copied ``--copies`` times with new SOP
Instance UIDs, so the destination keeps every one) go

1. through ``pixelscrub scrub -j N`` into a folder, and
2. from DCMTK's storescu through ``pixelscrub serve -j N`` to DCMTK's storescp,
   timed from storescu's start until the last instance lands at storescp.

Both in phi mode with the same key.  Needs Debian's dcmtk.

    .venv/bin/python benchmarks/gateway.py [--copies 4] [--jobs 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
KEY = "gateway-benchmark-key-0123456789abcdef"
ENV = {**os.environ, "PIXELSCRUB_KEY": KEY}
CLI = [sys.executable, "-m", "pixelscrub.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(folder: Path, copies: int) -> dict[str, list[Path]]:
    """Copies of the sample files, grouped by transfer syntax (storescu proposes per group)."""
    groups: dict[str, list[Path]] = {}
    for n in range(copies):
        for src in sorted((ROOT / "sample_data" / "dicom").glob("*.dcm")):
            ds = pydicom.dcmread(src)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            out = folder / f"{n}_{src.name}"
            ds.save_as(out)
            groups.setdefault(str(ds.file_meta.TransferSyntaxUID), []).append(out)
    return groups


#: storescu's option that proposes a compressed syntax (uncompressed needs none).
_PROPOSE = {"1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
            "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt",
            "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.90": "-xv",
            "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("storescu"):
        print("needs DCMTK (apt-get install dcmtk)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        groups = _inputs(tmp / "in", args.copies)
        total = sum(len(v) for v in groups.values())

        start = time.perf_counter()
        subprocess.run(CLI + ["scrub", str(tmp / "in"), "-o", str(tmp / "batch"), "-j",
                              str(args.jobs), "--redact-unread", "--progress", "none"],
                       env=ENV, check=False, capture_output=True)
        batch_s = time.perf_counter() - start

        dest_port = _free_port()
        (tmp / "dest").mkdir()
        dest = subprocess.Popen(["storescp", "+xa", "-od", str(tmp / "dest"), str(dest_port)])
        serve = subprocess.Popen(CLI + ["serve", "--port", "0", "--spool", str(tmp / "spool"),
                                        "--forward", f"DEST@127.0.0.1:{dest_port}", "-j",
                                        str(args.jobs), "--redact-unread", "--retry-max", "1"],
                                 env=ENV, stderr=subprocess.PIPE, text=True)
        port = None
        for line in serve.stderr:
            if "listening as" in line:
                port = int(line.split(" on port ")[1].split(",")[0])
                break
        start = time.perf_counter()
        for syntax, files in groups.items():
            extra = [_PROPOSE[syntax]] if syntax in _PROPOSE else []
            subprocess.run(["storescu", *extra, "-aec", "PIXELSCRUB", "127.0.0.1", str(port),
                            *map(str, files)], check=True, capture_output=True)
        acked_s = time.perf_counter() - start
        while len(list((tmp / "dest").iterdir())) < total:
            if time.perf_counter() - start > 1800:
                break
            time.sleep(0.05)
        arrived = len(list((tmp / "dest").iterdir()))
        gateway_s = time.perf_counter() - start
        serve.terminate()
        serve.wait()
        dest.terminate()
        dest.wait()

    print(f"{total} instances ({args.copies} copies of sample_data/dicom), -j {args.jobs}, phi mode")
    print(f"scrub (batch)      : {batch_s:6.1f} s  {total / batch_s:5.2f} instances/s")
    print(f"serve (gateway)    : {gateway_s:6.1f} s  {total / gateway_s:5.2f} instances/s  "
          f"({arrived}/{total} arrived; all acknowledged after {acked_s:.1f} s)")
    print(f"gateway / batch    : {gateway_s / batch_s:5.2f}x the batch's time")
    return 0 if arrived == total else 1


if __name__ == "__main__":
    sys.exit(main())
