"""Fail-closed benchmark (issue #18): slanted names and unreadable text rows.

Names are drawn at 0-40 degrees on a dark screen whose header holds them; rows of
letter-sized scribbles stand for text no OCR can read.  For each case: is the name's
ink removed (>= 90 % of it black), and is the file certified (status ``clean``:
BurnedInAnnotation NO, Clean Pixel Data code)?  A slanted name should be removed and
certified; a scribble row must never be certified.  ``--code DIR`` runs another
checkout of pixelscrub (e.g. an older commit in a git worktree) for a before/after.

``--held-out`` draws another set nobody tuned on: other names, another Hershey face
(duplex, thinner), another size and position, other scribble seeds.  The default set
is the one the retry ladder was developed against; report the held-out one first.

    .venv/bin/python benchmarks/fail_closed.py [--held-out] [--code /tmp/old]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

NAMES = [("KOWALSKI, JAN", "KOWALSKI^JAN"), ("NOWAK, ANNA", "NOWAK^ANNA"),
         ("MUELLER, HANS", "MUELLER^HANS"), ("GARCIA, LUIS", "GARCIA^LUIS"),
         ("OKAFOR, HANS", "OKAFOR^HANS"), ("SMITH, LUCAS", "SMITH^LUCAS")]
HELD_OUT_NAMES = [("PETERSEN, MARIA", "PETERSEN^MARIA"), ("OYELARAN, TOBI", "OYELARAN^TOBI"),
                  ("LINDQVIST, EVA", "LINDQVIST^EVA"), ("NAKAMURA, KEN", "NAKAMURA^KEN"),
                  ("BRENNAN, ROSE", "BRENNAN^ROSE"), ("DUBOIS, CLAIRE", "DUBOIS^CLAIRE")]
ANGLES = (0, 10, 15, 20, 25, 30, 35, 40)

#: How the name is drawn: (font, scale, thickness, origin), tuned set and held-out set.
LOOKS = {False: (cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2, (150, 210)),
         True: (cv2.FONT_HERSHEY_DUPLEX, 0.8, 1, (170, 230))}


def scene(text: str = "", angle: float = 0.0, *, glyphs: int = 0, seed: int = 0,
          held_out: bool = False) -> np.ndarray:
    img = np.full((400, 600), 20, np.uint8)
    cv2.putText(img, "Gain 50  Depth 12 cm", (20, 380), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 220, 1,
                cv2.LINE_AA)
    layer = np.zeros_like(img)
    font, scale, thick, origin = LOOKS[held_out]
    if text:
        cv2.putText(layer, text, origin, font, scale, 230, thick, cv2.LINE_AA)
    rng = np.random.default_rng(seed)
    for k in range(glyphs):
        pts = (rng.random((4, 2)) * [14, 22] + [150 + k * 19, 188]).astype(np.int32)
        cv2.polylines(layer, [pts], False, 230, 2, cv2.LINE_AA)
    turn = cv2.getRotationMatrix2D((300, 200), angle, 1.0)
    return np.maximum(img, cv2.warpAffine(layer, turn, (600, 400)))


def write(path: Path, img: np.ndarray, name: str) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = name, "58213907", "OT"
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = img.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                   help="the pixelscrub checkout to measure (default: this one)")
    p.add_argument("--scribbles", type=int, default=12)
    p.add_argument("--held-out", action="store_true", help="the set nobody tuned on")
    a = p.parse_args(argv)
    sys.path.insert(0, str(a.code))
    import pydicom

    from pixelscrub import ScrubOptions, scrub_file
    opts = ScrubOptions(key=b"fail-closed-benchmark-key-0123456")
    names = HELD_OUT_NAMES if a.held_out else NAMES
    first_seed = 1000 if a.held_out else 0
    print(f"code: {a.code}; set: {'held-out' if a.held_out else 'tuned'}\n")
    print("| case | name ink removed | certified clean | certified but name left (must be 0) "
          "| files | s/file |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for angle in ANGLES:
            removed = certified = wrong = 0
            t = time.perf_counter()
            for text, pn in names:
                img = scene(text, angle, held_out=a.held_out)
                audit = scrub_file(write(tmp / "in.dcm", img, pn), tmp / "out.dcm", opts)
                after = pydicom.dcmread(tmp / "out.dcm").pixel_array
                ink = img > 120
                ink[350:] = False
                gone = (after[ink] == 0).mean() >= 0.9
                removed += int(gone)
                certified += int(audit.status == "clean")
                wrong += int(audit.status == "clean" and not gone)
            s = (time.perf_counter() - t) / len(names)
            print(f"| name at {angle} deg | {removed}/{len(names)} | {certified}/{len(names)} | "
                  f"{wrong} | {len(names)} | {s:.2f} |")
        certified = 0
        t = time.perf_counter()
        for seed in range(first_seed, first_seed + a.scribbles):
            audit = scrub_file(write(tmp / "in.dcm", scene(glyphs=14, seed=seed), "DOE^JANE"),
                               tmp / "out.dcm", opts)
            certified += int(audit.status == "clean")
        s = (time.perf_counter() - t) / a.scribbles
        print(f"| unreadable row (scribbles) | - | {certified}/{a.scribbles} | {certified} | "
              f"{a.scribbles} | {s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
