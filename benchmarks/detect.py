"""Detection benchmark on the synthetic sample set: proposal recall, word-box recall,
text recall, OCR calls and OCR time per crop.

For every truth item (``sample_data/truth/*.json``) of a file:

- *proposed*: at least ``--cover`` of its ink pixels lie inside some proposal made
  on a frame where it appears (what the read stage can see);
- *boxed*: at least ``--cover`` of its ink pixels lie inside OCR word boxes of words
  valid on that frame (what the redaction acts on);
- *read*: the words overlapping its box, joined, match its text with rapidfuzz
  ``partial_ratio`` >= ``--score`` (what the match stage needs).

Usage::

    .venv/bin/python benchmarks/detect.py [--truth sample_data/truth] [--engine auto]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pixelscrub.decode import iter_display  # noqa: E402
from pixelscrub.detect import detect_words  # noqa: E402
from pixelscrub.ocr import get_engine  # noqa: E402
from pixelscrub.propose import propose_text_regions, ultrasound_regions  # noqa: E402
from pixelscrub.read import prepare_crop  # noqa: E402
from pixelscrub.records import Box, Proposal  # noqa: E402


def ink_mask(item: dict) -> np.ndarray:
    """The item's ink pixels inside its box (truth run lengths, off/on from off)."""
    x0, y0, x1, y1 = item["box"]
    flat = np.zeros((y1 - y0) * (x1 - x0), bool)
    pos, on = 0, False
    for run in item["ink_rle"]:
        if on:
            flat[pos:pos + run] = True
        pos += run
        on = not on
    return flat.reshape(y1 - y0, x1 - x0)


def covered_fraction(item: dict, boxes) -> float:
    x0, y0, x1, y1 = item["box"]
    ink = ink_mask(item)
    if not ink.any():
        return 0.0
    cover = np.zeros_like(ink)
    for b in boxes:
        c = b.intersection(Box(x0, y0, x1, y1))
        if not c.is_empty():
            cover[c.y0 - y0:c.y1 - y0, c.x0 - x0:c.x1 - x0] = True
    return float((ink & cover).sum() / ink.sum())


def first_frame(item: dict) -> int:
    return 0 if item["frames"] is None else int(item["frames"][0])


def bench_file(dcm: Path, truth: dict, engine, cover: float, score: float) -> dict:
    ds = pydicom.dcmread(dcm)
    n = int(truth["frames"])
    regions = ultrasound_regions(ds)
    t = time.perf_counter()
    det = detect_words(lambda: iter_display(ds), n, engine=engine, imaging_regions=regions)
    seconds = time.perf_counter() - t

    # Proposals on each frame an item first appears on (a cine's items may differ).
    wanted = sorted({first_frame(it) for it in truth["items"]})
    proposals: dict[int, list[Proposal]] = {}
    for i, frame in enumerate(iter_display(ds)):
        if i in wanted:
            proposals[i] = propose_text_regions(frame, imaging_regions=regions)
        if not wanted or i >= wanted[-1]:
            break

    rows = []
    for it in truth["items"]:
        f = first_frame(it)
        words = [w for w in det.words if w.frames is None or f in w.frames]
        box = Box(*it["box"])
        near = sorted((w for w in words if w.box.intersects(box)),
                      key=lambda w: (w.line_id, w.index))
        text = " ".join(w.text for w in near)
        rows.append({
            "tags": it["tags"] or ["plain"], "is_phi": it["is_phi"],
            "proposed": covered_fraction(it, [p.box for p in proposals.get(f, [])]) >= cover,
            "boxed": covered_fraction(it, [w.box for w in words]) >= cover,
            "read": bool(text) and fuzz.partial_ratio(it["text"], text) >= score,
        })
    return {"file": dcm.name, "frames": n, "frames_checked": det.frames_checked,
            "proposals": det.proposals, "ocr_calls": det.ocr_calls, "words": len(det.words),
            "seconds": round(seconds, 3), "stage_seconds": det.seconds, "items": rows}


def crop_timing(engine_names, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per OCR call on a typical prepared line crop, per engine."""
    import cv2
    img = np.zeros((40, 220), np.uint8)
    cv2.putText(img, "DOE^JOHN 15/01/1980", (6, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1,
                cv2.LINE_AA)
    prep = prepare_crop(img, Proposal(Box(2, 10, 215, 32)))
    out = {}
    for name in engine_names:
        try:
            eng = get_engine(name)
        except Exception as exc:  # not installed here
            out[name] = f"unavailable: {exc}"
            continue
        eng.read_lines(prep.pixels)
        t = time.perf_counter()
        for _ in range(repeats):
            eng.read_lines(prep.pixels)
        out[name] = round((time.perf_counter() - t) / repeats * 1000, 1)
    return out


def summarise(results: list[dict]) -> dict:
    by_tag: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        for row in r["items"]:
            for tag in row["tags"]:
                by_tag[tag].append(row)
            by_tag["all"].append(row)
            if row["is_phi"]:
                by_tag["phi"].append(row)

    def rate(rows, key):
        return round(sum(r[key] for r in rows) / len(rows), 3) if rows else None

    return {tag: {"items": len(rows), "proposed": rate(rows, "proposed"),
                  "boxed": rate(rows, "boxed"), "read": rate(rows, "read")}
            for tag, rows in sorted(by_tag.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", default=str(ROOT / "sample_data" / "truth"))
    ap.add_argument("--dicom", default=None, help="default: <truth>/../dicom")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--cover", type=float, default=0.9)
    ap.add_argument("--score", type=float, default=80.0)
    ap.add_argument("--json", default=None, help="also write the full results here")
    args = ap.parse_args(argv)
    truth_dir = Path(args.truth)
    dicom_dir = Path(args.dicom) if args.dicom else truth_dir.parent / "dicom"
    engine = get_engine(args.engine)
    results = []
    for tpath in sorted(truth_dir.glob("*.json")):
        truth = json.loads(tpath.read_text())
        r = bench_file(dicom_dir / truth["file"], truth, engine, args.cover, args.score)
        results.append(r)
        items = r["items"]
        print(f"{r['file']:28s} frames {r['frames_checked']}/{r['frames']:<3d} "
              f"proposals {r['proposals']:4d} ocr_calls {r['ocr_calls']:4d} "
              f"{r['seconds']:6.2f}s  proposed {sum(i['proposed'] for i in items)}/{len(items)} "
              f"boxed {sum(i['boxed'] for i in items)}/{len(items)} "
              f"read {sum(i['read'] for i in items)}/{len(items)}")
    summary = summarise(results)
    print("\nrecall by tag (proposed / boxed / read):")
    for tag, s in summary.items():
        print(f"  {tag:14s} n={s['items']:4d}  {s['proposed']}  {s['boxed']}  {s['read']}")
    calls = sum(r["ocr_calls"] for r in results)
    read_s = sum(r["stage_seconds"].get("read", 0.0) for r in results)
    print(f"\nOCR calls {calls}, read stage {read_s:.2f}s, "
          f"{1000 * read_s / max(calls, 1):.1f} ms per call (with preprocessing)")
    timing = crop_timing(["tesserocr", "pytesseract"])
    print("OCR ms per line crop:", timing)
    if args.json:
        Path(args.json).write_text(json.dumps({"files": results, "summary": summary,
                                               "crop_ms": timing}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
