"""RapidOCR (PP-OCRv4 detection and recognition, ONNX) as a second OCR engine.

A different family of reader than Tesseract: a learned text detector finds lines
over speckle and anatomy that Tesseract's page layout drops, and its recogniser
was trained on photographs of text, not scans.  The models ship inside the
``rapidocr-onnxruntime`` wheel; nothing is downloaded at run time.  It reads
lines, so a line is cut into words at its spaces, each word's box taken in
proportion to its characters.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from ..records import Box
from .base import OcrWord, check_crop

__all__ = ["RapidOcrEngine"]


class RapidOcrEngine:
    """An :class:`~pixelscrub.ocr.OcrEngine` over one RapidOCR instance (one thread
    for inference, like one Tesseract per worker).  ``psm`` is ignored: the
    detector finds the lines itself."""

    name = "rapidocr"

    def __init__(self):
        from rapidocr_onnxruntime import RapidOCR
        threads = int(os.environ.get("PIXELSCRUB_RAPIDOCR_THREADS", "1"))
        self._ocr = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads,
                             use_cls=False, print_verbose=False)
        self._lock = threading.Lock()

    def read_lines(self, crop: np.ndarray, *, psm: int = 7) -> list[OcrWord]:
        crop = check_crop(crop)
        with self._lock:
            found, _ = self._ocr(crop)
        out: list[OcrWord] = []
        for line, (quad, text, score) in enumerate(sorted(found or [], key=_reading_order)):
            out.extend(_words(np.asarray(quad, float), str(text), float(score) * 100.0, line))
        return out


def _reading_order(item) -> tuple[float, float]:
    quad = np.asarray(item[0], float)
    return (round(quad[:, 1].min() / 8.0), quad[:, 0].min())


def _words(quad: np.ndarray, text: str, confidence: float, line: int) -> list[OcrWord]:
    """The words of one detected line, boxes split along it by character count."""
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    n = max(1, len(text))
    out = []
    pos = 0
    for token in text.split(" "):
        if token:
            a = x0 + (x1 - x0) * pos / n
            b = x0 + (x1 - x0) * (pos + len(token)) / n
            out.append(OcrWord(token, Box(int(np.floor(a)), int(np.floor(y0)),
                                          int(np.ceil(b)), int(np.ceil(y1))),
                               confidence, line))
        pos += len(token) + 1
    return out
