"""Score any de-identification tool's output folder against ground truth.

Rules (per text item, in display units of the original, see :mod:`.display`):

- ``contrast`` C: on the original, the largest channel difference between the mean of
  the item's ink pixels and the mean of the other pixels of its box.
- an ink pixel is *changed* when the output differs from the original by more than
  ``max(CHANGE_FLOOR, CHANGE_OF_CONTRAST * C)`` in any channel.
- an ink pixel is *visible* when it is unchanged and still differs by at least
  ``VISIBLE_OF_CONTRAST * C`` from the mean of the non-ink pixels around it (a
  ``VISIBLE_WINDOW`` square) in the output. That catches fills of the ink's own colour
  and blurs, and partial boxes do not fool it. Ink pixels not visible on the original
  itself are left out.
- ``coverage``: the fraction of (originally visible) ink pixels no longer visible;
  ``changed``: the fraction of ink pixels changed.
- a PHI item is **removed** when ``coverage >= REMOVED_COVERAGE`` on every frame it is
  on (up to ``MAX_FRAMES_CHECKED`` frames spread over its frames are checked).
- a non-PHI item is **kept** when ``coverage <= KEPT_COVERAGE`` on every checked frame.
- PHI **still readable**: Tesseract re-reads the item's area (box plus margin) on the
  output and the reading matches the item's text (see :mod:`.ocr`); the same reading
  on the original says whether OCR could read it at all.
- **collateral**: the fraction of pixels outside every item's box (grown by
  ``TEXT_MARGIN``) that changed by more than ``COLLATERAL_TOLERANCE``.
- **header PHI left**: the original header's identifying values found anywhere in the
  output file's bytes outside its pixel data.
- **invalid** outputs: missing, unreadable, undecodable, or with other geometry.

Outputs are matched to truth by relative path, then by SOPInstanceUID, then by file name.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np
import pydicom

from ..records import Box
from ..synth.truth import FileTruth, TextItem, read_truth, truth_files
from .display import display_frames, display_map
from .ocr import OCR_MARGIN, is_readable, read_line

__all__ = [
    "ItemScore", "FileScore", "GroupSummary", "ScoreReport",
    "score_file", "score_folder", "summarize", "load_presidio_truth",
    "write_presidio_truth", "format_summary",
    "REMOVED_COVERAGE", "KEPT_COVERAGE",
]

REMOVED_COVERAGE = 0.90
KEPT_COVERAGE = 0.25
CHANGE_FLOOR = 6.0
CHANGE_OF_CONTRAST = 0.5
VISIBLE_OF_CONTRAST = 0.35
VISIBLE_WINDOW = 7
COLLATERAL_TOLERANCE = 12.0
TEXT_MARGIN = 8
MAX_FRAMES_CHECKED = 5


@dataclass(frozen=True)
class ItemScore:
    """What happened to one truth item in one output."""

    file: str
    category: str
    text: str
    is_phi: bool
    why: str
    tags: tuple[str, ...]
    coverage: float
    changed: float
    removed: bool
    kept: bool
    readable_before: Optional[bool] = None
    readable_after: Optional[bool] = None


@dataclass(frozen=True)
class FileScore:
    """One output file: its status, its items, collateral damage and header PHI left."""

    file: str
    category: str
    status: str  # ok | missing | unreadable | undecodable | geometry
    detail: str = ""
    output: Optional[str] = None
    items: tuple[ItemScore, ...] = ()
    collateral: Optional[float] = None
    header_phi_left: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupSummary:
    """Totals over a group of files (a category, a tag, or everything)."""

    files: int
    invalid: int
    phi_items: int
    phi_removed: int
    phi_coverage_mean: Optional[float]
    phi_readable_before: int
    phi_readable_after: int
    nonphi_items: int
    nonphi_kept: int
    collateral_mean: Optional[float]
    header_phi_files: int

    @property
    def recall(self) -> Optional[float]:
        return self.phi_removed / self.phi_items if self.phi_items else None

    @property
    def kept_rate(self) -> Optional[float]:
        return self.nonphi_kept / self.nonphi_items if self.nonphi_items else None

    def to_json(self) -> dict:
        d = asdict(self)
        d["recall"] = self.recall
        d["nonphi_kept_rate"] = self.kept_rate
        return d


@dataclass(frozen=True)
class ScoreReport:
    files: tuple[FileScore, ...]
    overall: GroupSummary
    by_category: dict[str, GroupSummary] = field(default_factory=dict)
    by_tag: dict[str, GroupSummary] = field(default_factory=dict)

    def to_json(self, *, items: bool = False) -> dict:
        d = {
            "overall": self.overall.to_json(),
            "by_category": {k: v.to_json() for k, v in self.by_category.items()},
            "by_tag": {k: v.to_json() for k, v in self.by_tag.items()},
            "invalid": [{"file": f.file, "status": f.status, "detail": f.detail}
                        for f in self.files if f.status != "ok"],
            "header_phi_left": {f.file: list(f.header_phi_left) for f in self.files
                                if f.header_phi_left},
        }
        if items:
            d["files"] = [asdict(f) for f in self.files]
        return d


# --------------------------------------------------------------------------- pixels

def _frames_to_check(item: TextItem, n_frames: int) -> list[int]:
    frames = list(item.frames) if item.frames is not None else list(range(n_frames))
    frames = [f for f in frames if 0 <= f < n_frames]
    if len(frames) <= MAX_FRAMES_CHECKED:
        return frames
    idx = np.linspace(0, len(frames) - 1, MAX_FRAMES_CHECKED).round().astype(int)
    return [frames[i] for i in sorted(set(idx.tolist()))]


def _ink_contrast(crop: np.ndarray, ink: np.ndarray) -> float:
    if not ink.any():
        return 0.0
    rest = ~ink
    if not rest.any():
        return float(np.abs(crop[ink].mean(axis=0)).max())
    return float(np.abs(crop[ink].mean(axis=0) - crop[rest].mean(axis=0)).max())


def _visible(crop: np.ndarray, ink: np.ndarray, contrast: float) -> np.ndarray:
    """Ink pixels that stand out from the mean of the non-ink pixels around them."""
    bgmask = (~ink).astype(np.float32)
    k = (VISIBLE_WINDOW, VISIBLE_WINDOW)
    count = cv2.boxFilter(bgmask, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    diff = np.zeros(ink.shape, np.float32)
    for ch in range(crop.shape[-1]):
        plane = crop[..., ch].astype(np.float32)
        total = cv2.boxFilter(plane * bgmask, -1, k, normalize=False,
                              borderType=cv2.BORDER_CONSTANT)
        local = np.divide(total, count, out=plane.copy(), where=count > 0)
        diff = np.maximum(diff, np.abs(plane - local))
    return (diff >= VISIBLE_OF_CONTRAST * contrast) & ink


def _item_pixels(item: TextItem, before: np.ndarray, after: np.ndarray,
                 frame: int) -> tuple[float, float]:
    """(coverage, changed) of ``item`` on one frame."""
    b = item.box
    ink = item.ink
    crop_in = before[frame, b.y0:b.y1, b.x0:b.x1]
    crop_out = after[frame, b.y0:b.y1, b.x0:b.x1]
    if ink is None or ink.shape != crop_in.shape[:2]:
        ink = np.ones(crop_in.shape[:2], bool)
    if not ink.any():
        return 0.0, 0.0
    c0 = _ink_contrast(crop_in, ink)
    tol = max(CHANGE_FLOOR, CHANGE_OF_CONTRAST * c0)
    changed = np.abs(crop_out - crop_in).max(axis=-1) > tol
    seen_before = _visible(crop_in, ink, c0)
    if not seen_before.any():
        seen_before = ink
    seen_after = _visible(crop_out, ink, c0) & ~changed & seen_before
    coverage = 1.0 - seen_after.sum() / seen_before.sum()
    return float(coverage), float(changed[ink].mean())


def _ocr_item(img: np.ndarray, item: TextItem, frame: int) -> str:
    h, w = img.shape[1:3]
    b = item.box.expand(OCR_MARGIN, w, h)
    crop = img[frame, b.y0:b.y1, b.x0:b.x1]
    gray = crop.mean(axis=-1) if crop.shape[-1] == 3 else crop[..., 0]
    return read_line(gray, item.rotation, item.cap_height)


def _collateral(truth: FileTruth, before: np.ndarray, after: np.ndarray) -> float:
    h, w = before.shape[1:3]
    text = np.zeros((h, w), bool)
    for it in truth.items:
        b = it.box.expand(TEXT_MARGIN, w, h)
        text[b.y0:b.y1, b.x0:b.x1] = True
    outside = ~text
    if not outside.any():
        return 0.0
    n = before.shape[0]
    frames = (list(range(n)) if n <= MAX_FRAMES_CHECKED
              else np.linspace(0, n - 1, MAX_FRAMES_CHECKED).round().astype(int).tolist())
    changed = total = 0
    for f in frames:
        diff = np.abs(after[f] - before[f]).max(axis=-1)
        changed += int((diff[outside] > COLLATERAL_TOLERANCE).sum())
        total += int(outside.sum())
    return changed / total


# --------------------------------------------------------------------------- header

def _header_values(key: str, value: str) -> list[bytes]:
    vals = {value.strip()}
    if "^" in value:
        parts = [p for p in value.split("^") if p]
        vals.add(" ".join(parts))
        if len(parts) >= 2:
            vals.add(f"{parts[0]}, {parts[1]}")
    return [v.encode("latin-1", "replace") for v in vals if len(v) >= 4]


def _header_phi_left(truth: FileTruth, out_path: Path, ds) -> tuple[str, ...]:
    if not truth.header_phi:
        return ()
    raw = out_path.read_bytes()
    pd = ds.get("PixelData") if ds is not None else None
    if pd is not None:
        data = pd if isinstance(pd, (bytes, bytearray)) else bytes(pd)
        if data:
            raw = raw.replace(bytes(data), b"", 1)
    raw_upper = raw.upper()
    left = []
    for key, value in truth.header_phi.items():
        if any(v.upper() in raw_upper for v in _header_values(key, value)):
            left.append(key)
    return tuple(left)


# --------------------------------------------------------------------------- per file

def _read_original(path: Path):
    """(dataset, display map, display frames) of an original file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        dmap = display_map(ds)
        return ds, dmap, display_frames(ds, dmap)


def _unhandled(truth: FileTruth, readable_before: dict) -> tuple[ItemScore, ...]:
    """Item scores of a file with no valid output: nothing removed, nothing kept."""
    return tuple(ItemScore(file=truth.file, category=truth.category, text=it.text,
                           is_phi=it.is_phi, why=it.why, tags=it.tags, coverage=0.0,
                           changed=0.0, removed=False, kept=False,
                           readable_before=readable_before.get(i))
                 for i, it in enumerate(truth.items))


def score_file(truth: FileTruth, original: Path, output: Optional[Path], *,
               ocr: bool = True, _cache: Optional[dict] = None) -> FileScore:
    """Score one output file against its truth and its original."""
    base = dict(file=truth.file, category=truth.category)
    key = str(original)
    if _cache is not None and key in _cache:
        ds_in, dmap, before, readable_before = _cache[key]
    else:
        ds_in, dmap, before = _read_original(Path(original))
        readable_before = {}
        if ocr:
            for i, it in enumerate(truth.items):
                if it.is_phi:
                    f = _frames_to_check(it, before.shape[0])[0]
                    readable_before[i] = is_readable(it.text, _ocr_item(before, it, f))
        if _cache is not None:
            _cache[key] = (ds_in, dmap, before, readable_before)
    if output is None or not Path(output).is_file():
        return FileScore(status="missing", detail="no output file",
                         items=_unhandled(truth, readable_before), **base)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds_out = pydicom.dcmread(output)
    except Exception as e:
        return FileScore(status="unreadable", detail=type(e).__name__, output=str(output),
                         items=_unhandled(truth, readable_before), **base)
    header_left = _header_phi_left(truth, Path(output), ds_out)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            after = display_frames(ds_out, dmap)
    except Exception as e:
        return FileScore(status="undecodable", detail=f"{type(e).__name__}: {e}"[:200],
                         output=str(output), items=_unhandled(truth, readable_before),
                         header_phi_left=header_left, **base)
    if after.shape[:3] != before.shape[:3]:
        return FileScore(status="geometry", detail=f"{before.shape[:3]} -> {after.shape[:3]}",
                         output=str(output), items=_unhandled(truth, readable_before),
                         header_phi_left=header_left, **base)
    if after.shape[-1] != before.shape[-1]:  # colour <-> gray: compare luminance
        after = after.mean(axis=-1, keepdims=True)
        before = before.mean(axis=-1, keepdims=True)
    items = []
    for i, it in enumerate(truth.items):
        frames = _frames_to_check(it, before.shape[0])
        per = [_item_pixels(it, before, after, f) for f in frames] or [(0.0, 0.0)]
        cov = [p[0] for p in per]
        removed = all(c >= REMOVED_COVERAGE for c in cov)
        kept = all(c <= KEPT_COVERAGE for c in cov)
        rb = ra = None
        if ocr and it.is_phi:
            rb = readable_before.get(i)
            ra = is_readable(it.text, _ocr_item(after, it, frames[0] if frames else 0))
        items.append(ItemScore(
            file=truth.file, category=truth.category, text=it.text, is_phi=it.is_phi,
            why=it.why, tags=it.tags, coverage=float(np.mean(cov)),
            changed=float(np.mean([p[1] for p in per])), removed=removed, kept=kept,
            readable_before=rb, readable_after=ra))
    return FileScore(status="ok", output=str(output), items=tuple(items),
                     collateral=_collateral(truth, before, after),
                     header_phi_left=header_left, **base)


# --------------------------------------------------------------------------- folders

def _index_outputs(output_dir: Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    by_uid: dict[str, Path] = {}
    by_name: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(Path(output_dir).rglob("*")):
        if not p.is_file() or p.suffix.lower() in (".json", ".jsonl", ".md", ".txt", ".png"):
            continue
        by_name[p.name].append(p)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            uid = str(ds.get("SOPInstanceUID", ""))
            if uid:
                by_uid.setdefault(uid, p)
        except Exception:
            continue
    return by_uid, by_name


def match_output(truth: FileTruth, output_dir: Path, index=None) -> Optional[Path]:
    """The output file of ``truth``: same relative path, else same SOPInstanceUID/name."""
    direct = Path(output_dir) / truth.file
    if direct.is_file():
        return direct
    by_uid, by_name = index if index is not None else _index_outputs(output_dir)
    if truth.sop_instance_uid in by_uid:
        return by_uid[truth.sop_instance_uid]
    named = by_name.get(Path(truth.file).name)
    return named[0] if named and len(named) == 1 else None


def load_truths(truth: Path, input_dir: Optional[Path] = None) -> list[FileTruth]:
    """Truth records from a pixelscrub truth folder or a Presidio ground_truth.json."""
    truth = Path(truth)
    if truth.is_file():
        if input_dir is None:
            raise ValueError("a Presidio ground-truth file needs --input (the DICOM folder)")
        return load_presidio_truth(truth, input_dir)
    return [read_truth(p) for p in truth_files(truth)]


def score_folder(truth: Path, output_dir: Path, input_dir: Optional[Path] = None, *,
                 ocr: bool = True, cache: Optional[dict] = None) -> ScoreReport:
    """Score every truth file's output in ``output_dir``.

    ``input_dir`` holds the originals (default: ``dicom/`` beside the truth folder).
    ``cache`` (a dict) keeps decoded originals between calls, to score several tools.
    """
    truth = Path(truth)
    if input_dir is None and truth.is_file():
        raise ValueError("a Presidio ground-truth file needs --input (the DICOM folder)")
    input_dir = Path(input_dir) if input_dir else truth.parent / "dicom"
    truths = load_truths(truth, input_dir)
    index = None
    scores = []
    for t in truths:
        out = Path(output_dir) / t.file
        if not out.is_file():
            if index is None:
                index = _index_outputs(Path(output_dir))
            out = match_output(t, output_dir, index)
        scores.append(score_file(t, input_dir / t.file, out, ocr=ocr, _cache=cache))
    return summarize(scores)


def _group(files: Sequence[FileScore], item_filter=None) -> GroupSummary:
    items = [it for f in files for it in f.items if item_filter is None or item_filter(it)]
    phi = [it for it in items if it.is_phi]
    non = [it for it in items if not it.is_phi]
    coll = [f.collateral for f in files if f.collateral is not None]
    return GroupSummary(
        files=len(files), invalid=sum(f.status != "ok" for f in files),
        phi_items=len(phi), phi_removed=sum(it.removed for it in phi),
        phi_coverage_mean=float(np.mean([it.coverage for it in phi])) if phi else None,
        phi_readable_before=sum(bool(it.readable_before) for it in phi),
        phi_readable_after=sum(bool(it.readable_after) for it in phi),
        nonphi_items=len(non), nonphi_kept=sum(it.kept for it in non),
        collateral_mean=float(np.mean(coll)) if coll else None,
        header_phi_files=sum(bool(f.header_phi_left) for f in files))


def summarize(scores: Iterable[FileScore]) -> ScoreReport:
    """Totals overall, per category and per item tag.

    An invalid output counts its truth's PHI items as not removed and its non-PHI items
    as not kept (the scorer cannot show they were handled).
    """
    scores = list(scores)
    cats: dict[str, list[FileScore]] = defaultdict(list)
    for f in scores:
        cats[f.category].append(f)
    tags = sorted({t for f in scores for it in f.items for t in it.tags})
    by_tag = {t: _group(scores, lambda it, t=t: t in it.tags) for t in tags}
    return ScoreReport(tuple(scores), _group(scores),
                       {k: _group(v) for k, v in sorted(cats.items())}, by_tag)


# --------------------------------------------------------------------------- Presidio format

def _ink_from_box(crop: np.ndarray) -> np.ndarray:
    """Guess the ink of a box with no mask: pixels far from the box border's median."""
    gray = crop.mean(axis=-1)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    bgv = float(np.median(border))
    dev = np.abs(gray - bgv)
    thr = max(CHANGE_FLOOR * 2, 0.4 * float(dev.max()))
    return dev > thr


def load_presidio_truth(path: Path, input_dir: Path) -> list[FileTruth]:
    """Presidio's ground_truth.json (filename -> [{label, left, top, width, height}]).

    Every box is PHI (Presidio's format only lists PHI; ``label`` is its text). The ink
    mask is estimated from the original pixels (pixels far from the box border median).
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for name, boxes in data.items():
        src = Path(name)
        if not src.is_absolute():
            cand = Path(input_dir) / name
            src = cand if cand.is_file() else Path(input_dir) / Path(name).name
        rel = str(src.relative_to(input_dir)) if src.is_relative_to(input_dir) else src.name
        ds, _, img = _read_original(src)
        n, h, w, s = img.shape
        items = []
        for b in boxes:
            box = Box(int(b["left"]), int(b["top"]), int(b["left"]) + int(b["width"]),
                      int(b["top"]) + int(b["height"])).clip(w, h)
            if box.is_empty():
                continue
            ink = _ink_from_box(img[0, box.y0:box.y1, box.x0:box.x1])
            items.append(TextItem(text=str(b.get("label", "")), box=box, is_phi=True,
                                  why="label:presidio", ink=ink))
        out.append(FileTruth(
            file=rel, category="presidio", case="presidio",
            sop_instance_uid=str(ds.get("SOPInstanceUID", "")), rows=h, columns=w,
            frames=n, samples=s, photometric=str(ds.get("PhotometricInterpretation", "")),
            transfer_syntax=str(ds.file_meta.get("TransferSyntaxUID", "")),
            items=tuple(items)))
    return out


def write_presidio_truth(truths: Iterable[FileTruth], path: Path, prefix: str = "") -> None:
    """Export PHI items as Presidio's ground_truth.json (for Presidio's own evaluator)."""
    data = {}
    for t in truths:
        data[prefix + t.file] = [
            {"label": it.text, "left": it.box.x0, "top": it.box.y0,
             "width": it.box.width, "height": it.box.height}
            for it in t.items if it.is_phi]
    Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- text

def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def format_summary(report: ScoreReport, title: str = "") -> str:
    """A Markdown table: one row per category, then overall."""
    head = ("| group | files | invalid | PHI items | PHI removed | mean ink coverage | "
            "PHI readable before -> after | non-PHI kept | collateral | header PHI files |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for name, g in [*report.by_category.items(), ("**overall**", report.overall)]:
        rows.append(
            f"| {name} | {g.files} | {g.invalid} | {g.phi_items} | {_pct(g.recall)} "
            f"({g.phi_removed}) | {_pct(g.phi_coverage_mean)} | {g.phi_readable_before} -> "
            f"{g.phi_readable_after} | {_pct(g.kept_rate)} ({g.nonphi_kept}/{g.nonphi_items}) "
            f"| {_pct(g.collateral_mean)} | {g.header_phi_files} |")
    out = (f"### {title}\n\n" if title else "") + head + "\n" + "\n".join(rows)
    if report.by_tag:
        out += "\n\n| hard-case tag | PHI items | PHI removed | non-PHI kept |\n| --- | --- | --- | --- |\n"
        out += "\n".join(f"| {t} | {g.phi_items} | {_pct(g.recall)} | {_pct(g.kept_rate)} |"
                         for t, g in report.by_tag.items())
    return out
