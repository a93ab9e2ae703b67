"""Generate a seeded set of synthetic DICOM files with exact ground truth.

Layout of a set folder::

    OUT/dicom/<index>_<case>.dcm     the files a de-identification tool reads
    OUT/truth/<index>_<case>.json    their ground truth (pixelscrub.synth.truth)

The same ``seed`` and ``count`` always give the same pixels, headers and truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom

from .dicom import header_phi, write_dicom
from .identity import make_identity
from .scenes import CATEGORY_OF, SCENES, build_scene
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


def generate_file(out: Path, index: int, seed: int, case: Optional[str] = None) -> GeneratedFile:
    """Write file number ``index`` of the set with ``seed`` (its case cycles through CASES)."""
    case = case or CASES[index % len(CASES)]
    rng = np.random.default_rng([seed, index, sum(map(ord, case))])
    canvas, spec, ident = build_scene(case, rng, make_identity(rng))
    name = f"{index:04d}_{case}"
    dpath = Path(out) / "dicom" / f"{name}.dcm"
    ds = write_dicom(dpath, canvas.pixels, spec, ident, seed=seed, index=index)
    frames, rows, cols, samples = canvas.pixels.shape
    truth = FileTruth(
        file=f"{name}.dcm", category=CATEGORY_OF[case], case=case,
        sop_instance_uid=str(ds.SOPInstanceUID), rows=rows, columns=cols, frames=frames,
        samples=samples, photometric=str(ds.PhotometricInterpretation),
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID), items=tuple(canvas.items),
        header_phi=header_phi(ds), seed=seed, notes=spec.notes,
    )
    tpath = Path(out) / "truth" / f"{name}.json"
    write_truth(truth, tpath)
    return GeneratedFile(dpath, tpath, case, truth.category)


def generate_set(out: Path, count: int, seed: int = 0,
                 cases: Optional[Sequence[str]] = None) -> list[GeneratedFile]:
    """Write ``count`` files cycling through ``cases`` (default: every case)."""
    chosen = tuple(cases) if cases else CASES
    for c in chosen:
        if c not in SCENES:
            raise ValueError(f"unknown case {c!r}; known: {', '.join(SCENES)}")
    return [generate_file(Path(out), i, seed, chosen[i % len(chosen)]) for i in range(count)]
