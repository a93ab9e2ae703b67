"""Codec benchmark: decode and redact+encode speed per transfer syntax.

Makes two synthetic images (512x512 12-bit MONOCHROME2, 4 frames; 640x480 RGB,
20 frames), stores each in every input syntax (pydicom's encoders, DCMTK's
dcmcjpeg/dcmconv for JPEG, big endian and deflated), then times
``iter_frames`` (decode) and ``redact_dataset`` + ``write_atomic`` with one box
on every frame (redact/encode).  MB/s counts uncompressed pixel bytes.

    .venv/bin/python benchmarks/codec.py [--repeat N]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pixelscrub.decode import image_info, iter_frames  # noqa: E402
from pixelscrub.dicomio import read_dataset, write_atomic  # noqa: E402
from pixelscrub.encode import redact_dataset, release  # noqa: E402
from pixelscrub.records import Box, Hit  # noqa: E402
from pixelscrub.redact import plan_redactions  # noqa: E402


def _image(kind: str) -> Dataset:
    rng = np.random.default_rng(7)
    if kind == "mono":
        rows, cols, frames, spp = 512, 512, 4, 1
    else:
        rows, cols, frames, spp = 480, 640, 20, 3
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    body = np.exp(-(((xx - cols / 2) / (cols / 3)) ** 2 + ((yy - rows / 2) / (rows / 3)) ** 2))
    stack = []
    for f in range(frames):
        img = body * (0.8 + 0.02 * f) + rng.normal(0, 0.02, body.shape)
        img[20:40, 20:260] = 1.0  # burned-in text band
        stack.append(img)
    arr = np.clip(np.stack(stack), 0, 1)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds.SOPClassUID = uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid.generate_uid(), uid.generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = rows, cols, frames, spp
    ds.PixelRepresentation = 0
    if spp == 1:
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelData = (arr * 4095).astype(np.uint16).tobytes()
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        rgb = np.stack([arr, arr * 0.8, arr * 0.6], axis=-1)
        ds.PixelData = (rgb * 255).astype(np.uint8).tobytes()
    return ds


def _inputs(kind: str, tmp: Path) -> dict[str, Path]:
    ds = _image(kind)
    native = tmp / f"{kind}-explicit.dcm"
    ds.save_as(native, enforce_file_format=True)
    out = {"Explicit VR LE": native}
    for name, flag in (("Explicit VR BE", "+tb"), ("Deflated", "+td")):
        if shutil.which("dcmconv"):
            p = tmp / f"{kind}-{flag[1:]}.dcm"
            subprocess.run(["dcmconv", flag, str(native), str(p)], check=True)
            out[name] = p
    jpeg = [("JPEG Lossless SV1", "+e1")]
    jpeg.append(("JPEG Extended 12-bit", "+ee") if kind == "mono" else ("JPEG Baseline", "+eb"))
    for name, flag in jpeg:
        if shutil.which("dcmcjpeg"):
            p = tmp / f"{kind}-{flag[1:]}.dcm"
            subprocess.run(["dcmcjpeg", flag, str(native), str(p)], check=True)
            out[name] = p
    for name, ts, plugin, kw in (
        ("RLE", uid.RLELossless, "pylibjpeg", {}),
        ("JPEG-LS lossless", uid.JPEGLSLossless, "pyjpegls", {}),
        ("JPEG-LS near (NEAR=2)", uid.JPEGLSNearLossless, "pyjpegls", {"jls_error": 2}),
        ("JPEG 2000 lossless", uid.JPEG2000Lossless, "pylibjpeg", {}),
        ("JPEG 2000 lossy (10:1)", uid.JPEG2000, "pylibjpeg", {"j2k_cr": [10]}),
    ):
        d = _image(kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d.compress(ts, encoding_plugin=plugin, **kw)
        p = tmp / f"{kind}-{ts}.dcm"
        d.save_as(p, enforce_file_format=True)
        out[name] = p
    return out


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs (default 2)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pixelscrub-bench-") as t:
        tmp = Path(t)
        for kind in ("mono", "rgb"):
            for name, path in _inputs(kind, tmp).items():
                ds = read_dataset(path)
                info = image_info(ds)
                mb = info.rows * info.columns * info.samples_per_pixel * \
                    (info.bits_allocated // 8) * info.frames / 1e6
                dec = _time(lambda: [None for _ in iter_frames(read_dataset(path))], args.repeat)
                plan = plan_redactions([Hit(Box(20, 20, 260, 40), "pattern:name")], info, margin=2)
                result = {}

                def redact():
                    new, res = redact_dataset(read_dataset(path), plan, workdir=t)
                    write_atomic(new, tmp / "out.dcm")
                    release(new)
                    result["r"] = res

                enc = _time(redact, args.repeat)
                res = result["r"]
                out_name = uid.UID(res.transfer_syntax_out).name
                rows.append((f"{kind} {info.columns}x{info.rows}x{info.frames}", name, out_name,
                             mb / dec, info.frames / dec, mb / enc, info.frames / enc,
                             path.stat().st_size / 1e6))
    head = ("image", "syntax in", "syntax out", "dec MB/s", "dec fr/s", "redact MB/s",
            "redact fr/s", "in MB")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | "
              f"{r[6]:.1f} | {r[7]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
