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
        out: list[OcrWord] = []
        with self._lock:
            api = self._api
            api.SetPageSegMode(psm)
            api.SetImageBytes(crop.tobytes(), w, h, 1, w)
            api.SetSourceResolution(300)
            api.Recognize()
            it = api.GetIterator()
            level = tesserocr.RIL.WORD
            line = -1
            while it is not None and not it.Empty(level):
                if it.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
                    line += 1
                text = it.GetUTF8Text(level) or ""
                bb = it.BoundingBox(level)
                if text.strip() and bb is not None:
                    x0, y0, x1, y1 = bb
                    out.append(OcrWord(text.strip(), Box(int(x0), int(y0), int(x1), int(y1)),
                                       float(it.Confidence(level)), max(line, 0)))
                if not it.Next(level):
                    break
        return out

    def close(self) -> None:
        """Free the Tesseract handle (also done when the engine is collected)."""
        self._api.End()
