"""OCR engines behind one interface.

The read stage never names a backend: it asks :func:`get_engine` for one.
``"auto"`` runs Tesseract in-process through tesserocr when that imports
(about 8x cheaper per crop than starting a process), otherwise through the
``tesseract`` command via pytesseract.
"""
from __future__ import annotations

import threading

from .base import OcrEngine, OcrWord, ocr_settings

__all__ = ["OcrEngine", "OcrWord", "get_engine", "available_engines", "ocr_settings"]

_ENGINES = ("tesserocr", "pytesseract")
#: Engines never chosen by "auto": RapidOCR reads whole frames for the verify stage.
_SECOND = ("rapidocr",)
#: One engine per backend and thread: starting Tesseract (loading its model) costs
#: far more than reading a crop, and a handle must not be shared between threads.
_local = threading.local()


def _make(name: str) -> OcrEngine:
    cache = _local.__dict__.setdefault("engines", {})
    if name not in cache:
        cache[name] = _new(name)
    return cache[name]


def _new(name: str) -> OcrEngine:
    if name == "tesserocr":
        from .tesserocr_engine import TesserocrEngine
        return TesserocrEngine()
    if name == "pytesseract":
        from .pytesseract_engine import PytesseractEngine
        return PytesseractEngine()
    if name == "rapidocr":
        from .rapidocr_engine import RapidOcrEngine
        return RapidOcrEngine()
    raise ValueError(f"unknown OCR engine {name!r}; choose auto, "
                     f"{', '.join(_ENGINES + _SECOND)}")


def available_engines() -> list[str]:
    """Names of the engines that can be created here, preferred first."""
    out = []
    for name in _ENGINES:
        try:
            _make(name)
        except Exception:
            continue
        out.append(name)
    return out


def get_engine(name: str = "auto") -> OcrEngine:
    """An OCR engine: ``"auto"``, ``"tesserocr"`` or ``"pytesseract"``.

    The same calling thread gets the same engine back (created on first use).

    Raises
    ------
    RuntimeError
        No engine could be created (no Tesseract, no language data).
    """
    if name != "auto":
        return _make(name)
    errors = []
    for candidate in _ENGINES:
        try:
            return _make(candidate)
        except Exception as exc:  # try the next backend
            errors.append(f"{candidate}: {exc}")
    raise RuntimeError("no OCR engine available (" + "; ".join(errors) + ")")
