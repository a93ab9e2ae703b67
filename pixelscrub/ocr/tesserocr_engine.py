"""Tesseract in-process through tesserocr: one API handle, reused for every crop."""
from __future__ import annotations

import threading

import numpy as np
import tesserocr

from ..records import Box
from .base import OcrWord, check_crop, ocr_settings, tessdata_dir

__all__ = ["TesserocrEngine"]


class TesserocrEngine:
    """An :class:`~pixelscrub.ocr.OcrEngine` over one ``PyTessBaseAPI``.

    A Tesseract handle is not thread-safe, so calls are serialised with a lock;
    give each worker process or thread its own engine for parallel work.
    """

    name = "tesserocr"

    def __init__(self):
        cfg = ocr_settings()
        self._api = tesserocr.PyTessBaseAPI(
            path=tessdata_dir(), lang=cfg["lang"], psm=tesserocr.PSM.SINGLE_LINE,
            variables={k: str(v) for k, v in cfg["variables"].items()})
        self._lock = threading.Lock()

    def read_lines(self, crop: np.ndarray, *, psm: int = 7) -> list[OcrWord]:
        crop = check_crop(crop)
        h, w = crop.shape
        with self._lock:
            api = self._api
            api.SetPageSegMode(psm)
            api.SetImageBytes(crop.tobytes(), w, h, 1, w)
            api.SetSourceResolution(300)
            api.Recognize()
            return _words(api.GetIterator())

    def close(self) -> None:
        """Free the Tesseract handle (also done when the engine is collected)."""
        self._api.End()


def _words(it) -> list[OcrWord]:
    """The words of a recognised page, walked symbol by symbol so that each word
    also carries its characters' confidences."""
    word, symbol = tesserocr.RIL.WORD, tesserocr.RIL.SYMBOL
    out: list[OcrWord] = []
    current = None   # [text, box, confidence, line, char confidences] of the open word
    line = -1

    def close() -> None:
        if current is not None and current[0] and current[1] is not None:
            x0, y0, x1, y1 = current[1]
            out.append(OcrWord(current[0], Box(int(x0), int(y0), int(x1), int(y1)),
                               current[2], max(current[3], 0), tuple(current[4])))

    while it is not None and not it.Empty(symbol):
        if it.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
            line += 1
        if current is None or it.IsAtBeginningOf(word):
            close()
            current = [(it.GetUTF8Text(word) or "").strip(), it.BoundingBox(word),
                       float(it.Confidence(word)), line, []]
        current[4].append(float(it.Confidence(symbol)))
        if not it.Next(symbol):
            break
    close()
    return out
