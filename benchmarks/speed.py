"""Speed benchmark (issue 12): single frames against Presidio, a long cine against the codec.

1. Single frames: the single-frame files of a synthetic set (``pixelscrub.synth``,
   seed ``--seed``, varied look), scrubbed by pixelscrub in ONE process (``-j 1``,
   phi mode, defaults: verify on) and by Presidio's DicomImageRedactorEngine in one
   process (its own venv, see ``pixelscrub.bench.presidio``).  Frames per second
   exclude start-up and set-up for both (per-file seconds summed), and both are
   scored against the same truth, so the ratio comes with the recall.
2. A 300-frame ultrasound cine (640x480, JPEG baseline and uncompressed) with a
   static overlay of PHI and a timer that changes on every frame: pixelscrub's
   scrub time against the time its own codec layer takes to decode every frame
   and re-encode the file with one box on every frame.  The scrub runs in a fresh
   process; its peak memory (VmHWM) is reported beside the peak after start-up.
3. ``--profile``: cProfile of the single-frame run; the top functions by own time.

    .venv/bin/python benchmarks/speed.py [--seed 11] [--count 60] [--frames 300] [--no-presidio]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

os.environ.setdefault("PIXELSCRUB_KEY", "speed-benchmark-key-0123456789abcdef")

from pixelscrub.bench.score import score_folder  # noqa: E402
from pixelscrub.options import ScrubOptions  # noqa: E402
from pixelscrub.pipeline import scrub_file  # noqa: E402


def _hwm_mib() -> float:
    """This process's peak resident memory so far (VmHWM), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- 1. single frames -----------------------------------------------------------------

def single_frame_set(tmp: Path, seed: int, count: int) -> Path:
    from pixelscrub.synth.generate import generate_set
    full = tmp / "synth"
    generate_set(full, count, seed, vary=True)
    root = tmp / "single"
    (root / "dicom").mkdir(parents=True)
    (root / "truth").mkdir()
    for t in sorted((full / "truth").glob("*.json")):
        d = json.loads(t.read_text())
        if d["frames"] == 1:
            shutil.copy2(full / "dicom" / d["file"], root / "dicom" / d["file"])
            shutil.copy2(t, root / "truth" / t.name)
    return root


def run_pixelscrub(root: Path, profile: bool) -> dict:
    files = sorted((root / "dicom").glob("*.dcm"))
    out = root / "pixelscrub"
    out.mkdir()
    options = ScrubOptions()
    scrub_file(files[0], root / "warm.dcm", options)   # imports, Tesseract start-up
    stages: dict[str, float] = {}
    prof = cProfile.Profile() if profile else None
    per_file = []
    for f in files:
        if prof:
            prof.enable()
        t = time.perf_counter()
        audit = scrub_file(f, out / f.name, options)
        per_file.append(time.perf_counter() - t)
        if prof:
            prof.disable()
        for rep in audit.stages:
            stages[rep.stage] = stages.get(rep.stage, 0.0) + rep.seconds
        if audit.status == "unverified":    # scored too: held files must not show PHI
            shutil.move(str(Path(audit.output)), out / f.name)
    hot = ""
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        hot = buf.getvalue()
    return {"seconds": sum(per_file), "files": len(files), "stages": stages, "hot": hot,
            "score": score_folder(root / "truth", out, root / "dicom")}


def run_presidio_side(root: Path) -> dict:
    from pixelscrub.bench.presidio import run_presidio
    run = run_presidio(root / "dicom", root / "presidio", root / "presidio.jsonl")
    return {"seconds": sum(run.per_file_seconds), "files": len(run.per_file_seconds),
            "failed": run.failed,
            "score": score_folder(root / "truth", root / "presidio", root / "dicom")}


# -- 2. the long cine ---------------------------------------------------------------------

def make_cine(path: Path, frames: int, syntax: str, rows: int = 480, cols: int = 640) -> None:
    """A grey ultrasound-like cine: speckle sector that moves, a static PHI overlay,
    and a timer that changes on every frame."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    rng = np.random.default_rng(5)
    speckle = rng.gamma(2.0, 30.0, (rows + 64, cols)).clip(0, 255).astype(np.uint8)
    sector = np.zeros((rows, cols), np.uint8)
    cv2.ellipse(sector, (cols // 2, 40), (400, 400), 0, 55, 125, 255, -1)

    def frame(i: int) -> np.ndarray:
        img = np.where(sector > 0, speckle[i % 64:i % 64 + rows], 0).astype(np.uint8)
        cv2.putText(img, "KOWALSKI^ANNA  ID 40917735", (10, 22), cv2.FONT_HERSHEY_DUPLEX,
                    0.6, 230, 1, cv2.LINE_AA)
        cv2.putText(img, "ST LUKE HOSPITAL  12/03/2024", (10, 44), cv2.FONT_HERSHEY_DUPLEX,
                    0.6, 230, 1, cv2.LINE_AA)
        cv2.putText(img, "C5-1  Gain 52  Depth 16cm", (10, rows - 12), cv2.FONT_HERSHEY_DUPLEX,
                    0.5, 200, 1, cv2.LINE_AA)
        t = i / 30.0
        cv2.putText(img, f"{int(t // 60):02d}:{t % 60:05.2f}", (cols - 110, 22),
                    cv2.FONT_HERSHEY_DUPLEX, 0.6, 230, 1, cv2.LINE_AA)
        return img

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "KOWALSKI^ANNA", "40917735", "19610702"
    ds.InstitutionName, ds.StudyDate, ds.StudyTime = "ST LUKE HOSPITAL", "20240312", "101500"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = 33.3
    if syntax == "jpeg":
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([cv2.imencode(".jpg", frame(i), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
                                    .tobytes() for i in range(frames)])
        ds["PixelData"].VR = "OB"
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = b"".join(frame(i).tobytes() for i in range(frames))
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def codec_seconds(path: Path, out: Path) -> float:
    """Decode every frame, then re-encode the file with one box on every frame."""
    from pixelscrub.decode import image_info, iter_frames
    from pixelscrub.dicomio import read_dataset, write_atomic
    from pixelscrub.encode import redact_dataset
    from pixelscrub.records import PIXEL_LAYER, Box
    from pixelscrub.redact import PlannedBox, RedactionPlan
    t = time.perf_counter()
    ds = read_dataset(path)
    for _ in iter_frames(ds):
        pass
    plan = RedactionPlan((PlannedBox(PIXEL_LAYER, Box(8, 6, 260, 50)),))
    image_info(ds)
    new, _ = redact_dataset(ds, plan)
    write_atomic(new, out)
    return time.perf_counter() - t


def _scrub_in_child(src: str, dst: str, queue) -> None:
    """Scrub one file in a fresh process; report seconds, audit and peak memory."""
    import pixelscrub.pipeline  # noqa: F401  (imports before the baseline)
    from pixelscrub.ocr import get_engine
    get_engine("auto")
    base = _hwm_mib()
    t = time.perf_counter()
    audit = scrub_file(src, dst, ScrubOptions())
    queue.put({"scrub": time.perf_counter() - t, "status": audit.status, "hits": len(audit.hits),
               "stages": {r.stage: round(r.seconds, 2) for r in audit.stages},
               "peak_mib": _hwm_mib(), "base_mib": base})


def cine(tmp: Path, frames: int, syntax: str) -> dict:
    import multiprocessing as mp
    src = tmp / f"cine-{syntax}.dcm"
    make_cine(src, frames, syntax)
    codec = min(codec_seconds(src, tmp / f"codec-{syntax}-{k}.dcm") for k in range(2))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_scrub_in_child, args=(str(src), str(tmp / f"scrubbed-{syntax}.dcm"), queue))
    child.start()
    r = queue.get()
    child.join()
    r.update({"syntax": syntax, "frames": frames, "codec": codec,
              "size_mib": src.stat().st_size / 2 ** 20,
              "pixel_mib": frames * 480 * 640 / 2 ** 20})
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--count", type=int, default=60, help="synthetic files drawn (cines dropped)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--no-cine", action="store_true")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.count:
            root = single_frame_set(tmp, a.seed, a.count)
            mine = run_pixelscrub(root, a.profile)
            rows = [("pixelscrub (phi, verify on, -j 1)", mine)]
            if not a.no_presidio:
                rows.append(("Presidio DicomImageRedactorEngine", run_presidio_side(root)))
            print(f"\n### Single-frame files: synthetic seed {a.seed}, {mine['files']} files, one process each\n")
            print("| tool | files | s (sum per file) | frames/s | PHI removed | readable after | non-PHI kept |")
            print("|---|---|---|---|---|---|---|")
            for name, r in rows:
                o = r["score"].overall
                print(f"| {name} | {r['files']} | {r['seconds']:.1f} | {r['files'] / r['seconds']:.2f} "
                      f"| {100 * o.recall:.1f} % ({o.phi_removed}/{o.phi_items}) | {o.phi_readable_after} "
                      f"| {100 * o.kept_rate:.1f} % |")
            if len(rows) == 2:
                ratio = (mine["files"] / mine["seconds"]) / (rows[1][1]["files"] / rows[1][1]["seconds"])
                print(f"\nframes/s ratio pixelscrub / Presidio: {ratio:.2f}x (target 10x)")
            print("\nseconds by stage (pixelscrub): " + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(mine["stages"].items(), key=lambda kv: -kv[1])))
            if mine["hot"]:
                print("\n```\n" + mine["hot"].strip() + "\n```")
        if not a.no_cine:
            print(f"\n### Cine: {a.frames} frames 640x480, static PHI overlay, timer changing every frame\n")
            print("| syntax | file MiB | pixels MiB | codec: decode + re-encode s | scrub s | scrub / codec "
                  "| status | boxes | peak RSS MiB (after start-up) | stages |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            for syntax in ("jpeg", "native"):
                r = cine(tmp, a.frames, syntax)
                print(f"| {syntax} | {r['size_mib']:.1f} | {r['pixel_mib']:.0f} | {r['codec']:.2f} "
                      f"| {r['scrub']:.2f} | {r['scrub'] / r['codec']:.2f}x | {r['status']} | {r['hits']} "
                      f"| {r['peak_mib']:.0f} ({r['base_mib']:.0f}) | "
                      + ", ".join(f"{k} {v}" for k, v in r["stages"].items()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
