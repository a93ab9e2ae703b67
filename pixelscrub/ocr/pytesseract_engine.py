"""Tesseract through the ``tesseract`` command (pytesseract): one process per crop."""
from __future__ import annotations

import numpy as np
import pytesseract

from ..records import Box
from .base import OcrWord, check_crop, ocr_settings, tessdata_dir

__all__ = ["PytesseractEngine"]


class PytesseractEngine:
    """An :class:`~pixelscrub.ocr.OcrEngine` that runs the Tesseract CLI per call."""

    name = "pytesseract"

    def __init__(self):
        pytesseract.get_tesseract_version()  # raises when the command is missing
        cfg = ocr_settings()
        self._lang = cfg["lang"]
        self._config = f'--tessdata-dir "{tessdata_dir()}" --dpi 300 ' + " ".join(
            f"-c {k}={v}" for k, v in cfg["variables"].items())

    def read_lines(self, crop: np.ndarray, *, psm: int = 7) -> list[OcrWord]:
        crop = check_crop(crop)
        d = pytesseract.image_to_data(crop, lang=self._lang, config=f"--psm {psm} {self._config}",
                                      output_type=pytesseract.Output.DICT)
        lines: dict[tuple[int, int, int], int] = {}
        out = []
        for i, text in enumerate(d["text"]):
            text = (text or "").strip()
            if not text or int(d["level"][i]) != 5:
                continue
            key = (int(d["block_num"][i]), int(d["par_num"][i]), int(d["line_num"][i]))
            line = lines.setdefault(key, len(lines))
            x, y = int(d["left"][i]), int(d["top"][i])
            out.append(OcrWord(text, Box(x, y, x + int(d["width"][i]), y + int(d["height"][i])),
                               max(0.0, float(d["conf"][i])), line))
        return out
