"""Shared test helpers: pydicom's bundled test files, without network look-ups."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pydicom
import pytest

#: pydicom's bundled test files folder. ``get_testdata_files()`` tries to download
#: the external set and hangs offline, so list the folder instead.
PYDICOM_TEST_DIR = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_file(name: str) -> Path:
    """Path of a bundled pydicom test file (never downloads)."""
    path = PYDICOM_TEST_DIR / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def pydicom_image_files() -> list[Path]:
    """Every bundled pydicom test file that carries Pixel Data."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(PYDICOM_TEST_DIR.iterdir()):
            if not path.is_file():
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=False, defer_size=1024)
            except Exception:
                continue
            if "PixelData" in ds:
                out.append(path)
    return out


@pytest.fixture
def testdata():
    return pydicom_file


@pytest.fixture(autouse=True)
def _fresh_line_readings():
    """Each test starts with no remembered line readings (``read._READ_BEFORE``), so
    OCR call counts do not depend on which tests ran before."""
    from pixelscrub import read
    read._READ_BEFORE.seen.clear()
    yield
