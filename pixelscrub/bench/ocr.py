"""Re-OCR one text item's area to tell whether PHI is still readable after redaction.

Independent of pixelscrub's own detection code on purpose: a scorer should not share
the blind spots of the tool it scores. The crop (box plus a small margin) is turned
upright, scaled to a readable cap height, made dark-on-light, and read by Tesseract as
one line; the result is fuzzy-matched against the item's true text.
"""
from __future__ import annotations

import os
import re
import threading

import cv2
import numpy as np
from rapidfuzz import fuzz

__all__ = ["read_line", "similarity", "is_readable", "READABLE_SCORE", "OCR_MARGIN"]

#: An item is "readable" when the OCR'd text matches its text at least this well (0..100).
READABLE_SCORE = 80.0
#: Pixels of context around the item's box given to OCR.
OCR_MARGIN = 4

_local = threading.local()


def _tessdata() -> str:
    """Tesseract's language folder: $TESSDATA_PREFIX, else what ``tesseract`` reports."""
    env = os.environ.get("TESSDATA_PREFIX")
    if env:
        return env
    import subprocess
    try:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                             timeout=30)
        m = re.search(r'"([^"]+)"', out.stdout + out.stderr)
        if m:
            return m.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    return ""


def _api():
    """A per-thread tesserocr API in single-line mode, or False to use pytesseract."""
    api = getattr(_local, "api", None)
    if api is None:
        try:
            import tesserocr
            api = tesserocr.PyTessBaseAPI(path=_tessdata(), psm=tesserocr.PSM.SINGLE_LINE,
                                          lang="eng")
        except Exception:
            api = False
        _local.api = api
    return api


def _prepare(gray: np.ndarray, rotation: int, cap_height: float) -> np.ndarray:
    img = np.clip(gray, 0, 255).astype(np.uint8)
    if rotation % 360:
        img = np.ascontiguousarray(np.rot90(img, k=-(rotation // 90) % 4))
    target = 28.0
    scale = target / cap_height if cap_height > 0 else max(1.0, 40.0 / max(1, img.shape[0]))
    scale = float(np.clip(scale, 1.0, 6.0))
    if scale > 1.01:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    # Dark text on a light page: invert when the border (background) is dark.
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if border.mean() < 128:
        img = 255 - img
    return cv2.copyMakeBorder(img, 12, 12, 12, 12, cv2.BORDER_REPLICATE)


def read_line(gray: np.ndarray, rotation: int = 0, cap_height: float = 0.0) -> str:
    """Tesseract's reading of a crop holding one line of text (any polarity)."""
    img = _prepare(gray, rotation, cap_height)
    api = _api()
    if api:
        img = np.ascontiguousarray(img)
        api.SetImageBytes(img.tobytes(), img.shape[1], img.shape[0], 1, img.shape[1])
        return api.GetUTF8Text().strip()
    import pytesseract
    return pytesseract.image_to_string(img, config="--psm 7").strip()


def _norm(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def similarity(truth: str, read: str) -> float:
    """How well ``read`` contains ``truth`` (0..100), ignoring case and punctuation.

    A reading longer than the truth is searched for its best-matching stretch; a
    shorter one is compared whole, so a fragment never matches on its own.
    """
    t, r = _norm(truth), _norm(read)
    if not t or not r:
        return 0.0
    if len(t) <= 3:
        return 100.0 if t in r else 0.0
    if len(r) < len(t):
        # partial_ratio would slide the shorter string (a stray "a") along the truth.
        return float(fuzz.ratio(t, r))
    return float(fuzz.partial_ratio(t, r))


def is_readable(truth: str, read: str) -> bool:
    return similarity(truth, read) >= READABLE_SCORE
