"""Load versioned detection assets (vocabularies, tuned parameters) from ``models/``.

Tuning constants live as data in ``models/<version>/`` instead of literals scattered
through the code, so a retuned set is a new version that can be compared with the
old one.  ``PIXELSCRUB_MODELS`` points at another models folder.
"""
from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["MODELS_VERSION", "models_dir", "load_json", "load_words"]

MODELS_VERSION = "v1"


def _model_roots() -> list[Path]:
    """Where ``models/`` may be: ``$PIXELSCRUB_MODELS`` alone when set; else the
    checkout's ``models/`` (source tree, editable install), then the copy a wheel
    installs under ``<prefix>/share/pixelscrub/models`` (pyproject's data-files)."""
    root = os.environ.get("PIXELSCRUB_MODELS")
    if root:
        return [Path(root)]
    return [Path(__file__).resolve().parent.parent / "models",
            Path(sys.prefix) / "share" / "pixelscrub" / "models"]


def models_dir(version: str = MODELS_VERSION) -> Path:
    """The folder holding asset ``version`` (see :func:`_model_roots`)."""
    roots = _model_roots()
    for base in roots:
        if (base / version).is_dir():
            return base / version
    tried = ", ".join(str(base / version) for base in roots)
    raise FileNotFoundError(f"pixelscrub models folder not found (looked in {tried})")


@lru_cache(maxsize=None)
def load_json(name: str, version: str = MODELS_VERSION) -> Any:
    """The parsed JSON asset ``models/<version>/<name>``."""
    with open(models_dir(version) / name, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=None)
def load_words(name: str, version: str = MODELS_VERSION) -> frozenset[str]:
    """A word list asset: one entry a line, ``#`` comments and blanks ignored."""
    words = set()
    with open(models_dir(version) / name, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                words.add(line)
    return frozenset(words)
