"""Generate a seeded set of synthetic DICOM files with exact ground truth.

Layout of a set folder::

    OUT/dicom/<index>_<case>.dcm     the files a de-identification tool reads
    OUT/truth/<index>_<case>.json    their ground truth (pixelscrub.synth.truth)

The same ``seed``, ``count`` and ``vary`` always give the same pixels, headers and truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom

from .dicom import header_phi, write_dicom
from .identity import make_identity
from .scenes import CATEGORY_OF, SCENES, build_scene, draw_style
from .truth import FileTruth, write_truth

__all__ = ["CASES", "GeneratedFile", "generate_file", "generate_set"]

#: Case names in the order a set cycles through them.
CASES: tuple[str, ...] = tuple(SCENES)


@dataclass(frozen=True)
class GeneratedFile:
    dicom: Path
    truth: Path
    case: str
    category: str


def _build(case: str, index: int, seed: int, vary: bool):
    """Build the scene; with ``vary``, shrink the drawn style until its layout fits."""
    style = draw_style(np.random.default_rng([seed, index, 99991])) if vary else None
    while True:
        rng = np.random.default_rng([seed, index, sum(map(ord, case))])
        try:
            return (*build_scene(case, rng, make_identity(rng), style), style)
        except ValueError:
            if style is None or (style.cap <= 7.0 and style.dx == 0 and style.dy == 0):
                raise
            style = style.smaller()


def generate_file(out: Path, index: int, seed: int, case: Optional[str] = None, *,
                  vary: bool = False) -> GeneratedFile:
    """Write file number ``index`` of the set with ``seed`` (its case cycles through CASES).

    ``vary`` draws a per-file :class:`~pixelscrub.synth.scenes.Style` (fonts, sizes,
    printed forms, label words, offsets, colours) instead of each case's fixed look.
    """
    case = case or CASES[index % len(CASES)]
    canvas, spec, ident, style = _build(case, index, seed, vary)
    name = f"{index:04d}_{case}"
    dpath = Path(out) / "dicom" / f"{name}.dcm"
    ds = write_dicom(dpath, canvas.pixels, spec, ident, seed=seed, index=index)
    frames, rows, cols, samples = canvas.pixels.shape
    notes = spec.notes
    if style is not None:
        notes += (f"style: font {style.font}, cap {style.cap:g}, name {style.name_style}, "
                  f"dates {style.date_style}/{style.dob_style}, labels {' '.join(style.labels)}",)
    truth = FileTruth(
        file=f"{name}.dcm", category=CATEGORY_OF[case], case=case,
        sop_instance_uid=str(ds.SOPInstanceUID), rows=rows, columns=cols, frames=frames,
        samples=samples, photometric=str(ds.PhotometricInterpretation),
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID), items=tuple(canvas.items),
        header_phi=header_phi(ds), seed=seed, notes=notes,
    )
    tpath = Path(out) / "truth" / f"{name}.json"
    write_truth(truth, tpath)
    return GeneratedFile(dpath, tpath, case, truth.category)


def generate_set(out: Path, count: int, seed: int = 0,
                 cases: Optional[Sequence[str]] = None, *,
                 vary: bool = False) -> list[GeneratedFile]:
    """Write ``count`` files cycling through ``cases`` (default: every case)."""
    chosen = tuple(cases) if cases else CASES
    for c in chosen:
        if c not in SCENES:
            raise ValueError(f"unknown case {c!r}; known: {', '.join(SCENES)}")
    return [generate_file(Path(out), i, seed, chosen[i % len(chosen)], vary=vary)
            for i in range(count)]
