"""Cleaning free text with the same PHI matcher the pixel stage uses.

Terms are collected from the ORIGINAL header (before any attribute changes), so
a name typed into StudyDescription is found even after PatientName is gone.  The
matcher lives in :mod:`pixelscrub.match` / :mod:`pixelscrub.phi_terms` and is
imported lazily; when it cannot be imported, callers get ``None`` and replace the
value with a dummy instead (fail closed).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

__all__ = ["REPLACEMENT", "collect_terms", "clean_text"]

#: What a PHI span becomes; short enough for SH values.
REPLACEMENT = "***"


def collect_terms(ds) -> Optional[list[Any]]:
    """PHI terms of ``ds`` for :func:`clean_text`, or None if the matcher is unavailable."""
    try:
        from ..phi_terms import phi_terms_from_header
    except ImportError:
        return None
    return list(phi_terms_from_header(ds))


def clean_text(text: str, terms: Optional[Sequence[Any]], max_len: Optional[int] = None) -> Optional[str]:
    """``text`` with each PHI span replaced by :data:`REPLACEMENT`; None if it cannot be cleaned."""
    if terms is None:
        return None
    try:
        from ..match import find_phi_in_text
    except ImportError:
        return None
    spans = sorted((int(s), int(e)) for s, e, *_ in find_phi_in_text(text, terms, patterns=True))
    out, pos = [], 0
    for start, end in spans:
        if end <= pos:
            continue
        start = max(start, pos)
        out.append(text[pos:start])
        out.append(REPLACEMENT)
        pos = end
    out.append(text[pos:])
    cleaned = "".join(out)
    if max_len is not None and len(cleaned) > max_len:
        cleaned = cleaned[:max_len]
    return cleaned
