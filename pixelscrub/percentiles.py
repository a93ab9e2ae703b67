"""Percentiles of integer pixels from their histogram.

Detection takes percentiles of every line of every frame (a cine has hundreds of
frames): a histogram is many times faster than numpy's sort-based percentile for
8- and 16-bit values, and gives numpy's ``method="inverted_cdf"`` values.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["int_percentiles"]


def int_percentiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles ``qs`` (0-100) of non-empty integer ``values`` of up
    to 16 bits; other values go through numpy."""
    values = np.asarray(values)
    if values.dtype.kind not in "ui" or values.dtype.itemsize > 2:
        return [float(v) for v in np.percentile(values, qs, method="inverted_cdf")]
    base = 0 if values.dtype.kind == "u" else int(values.min())
    counts = np.bincount((values if base == 0 else values.astype(np.int32) - base).ravel())
    cdf = np.cumsum(counts)
    n = int(cdf[-1])
    return [float(np.searchsorted(cdf, max(1, int(np.ceil(q / 100.0 * n)))) + base) for q in qs]
