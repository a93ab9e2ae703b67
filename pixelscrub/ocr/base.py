"""The OCR engine interface and what an engine returns."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..assets import load_json
from ..records import Box

__all__ = ["OcrWord", "OcrEngine", "ocr_settings", "tessdata_dir", "check_crop"]


@dataclass(frozen=True)
class OcrWord:
    """One word of a crop: its box in CROP coordinates, confidence 0..100 and
    which text line of the crop it is on (``line``, counted from 0 in reading order).

    ``char_confidences`` are the confidences of its characters (0..100), where the
    engine gives them (tesserocr), else empty.  Tesseract's word confidence is not
    their mean: one unusual glyph (the ``^`` of ``DOE^JOHN``) can sink a word whose
    letters are all certain to the level of an upside-down misreading.
    """

    text: str
    box: Box
    confidence: float
    line: int = 0
    char_confidences: tuple[float, ...] = ()


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the words of one uint8 grayscale crop (dark text on light works best)."""

    name: str

    def read_lines(self, crop: np.ndarray, *, psm: int = 7) -> list[OcrWord]:
        ...


def ocr_settings() -> dict[str, Any]:
    """Tesseract settings from ``models/v1/ocr.json``."""
    return load_json("ocr.json")


def tessdata_dir() -> str:
    """The first configured tessdata folder that holds the configured language.

    Passed explicitly to Tesseract, so the result does not depend on the
    environment (TESSDATA_PREFIX) or on where a wheel was built.
    """
    cfg = ocr_settings()
    for folder in cfg["tessdata"]:
        if os.path.isfile(os.path.join(folder, cfg["lang"] + ".traineddata")):
            return folder
    raise RuntimeError(f"no {cfg['lang']}.traineddata in any of {cfg['tessdata']}")


def check_crop(crop: np.ndarray) -> np.ndarray:
    """``crop`` as a C-contiguous 2-D uint8 array; anything else is a caller bug."""
    if crop.dtype != np.uint8 or crop.ndim != 2 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"OCR needs a non-empty 2-D uint8 crop, got {crop.dtype} {crop.shape}")
    return np.ascontiguousarray(crop)
