"""Options for one scrub, shared by the Python API, the CLI and batch runs."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .records import Box

__all__ = ["UserRegion", "ScrubOptions", "parse_region", "MODES", "NO_OCR_MODES"]

#: ``phi``: header matches + pattern rules; ``all-text``: every text region minus the
#: allowlist; ``regions-only``: user regions (and device rules) only, no OCR;
#: ``rules-only``: the same, for sites that trust only their device templates.
MODES = ("phi", "all-text", "regions-only", "rules-only")

#: Modes that read no text: their outputs are never certified.
NO_OCR_MODES = ("regions-only", "rules-only")


@dataclass(frozen=True)
class UserRegion:
    """A rectangle the user wants blacked out, on some frames (``None``: all)."""

    box: Box
    frames: Optional[tuple[int, ...]] = None


_REGION_RE = re.compile(r"^\s*(\d+),(\d+),(\d+),(\d+)\s*(?:@\s*([0-9,\-\s]+))?$")


def parse_region(text: str) -> UserRegion:
    """Parse ``x0,y0,x1,y1[@frames]``; frames as ``0,2,5-9`` (0-based, inclusive ranges).

    >>> parse_region("0,0,100,40@0-2,5")
    UserRegion(box=Box(x0=0, y0=0, x1=100, y1=40), frames=(0, 1, 2, 5))
    """
    m = _REGION_RE.match(text)
    if not m:
        raise ValueError(f"bad region {text!r}: expected x0,y0,x1,y1[@frames]")
    x0, y0, x1, y1 = (int(v) for v in m.groups()[:4])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"bad region {text!r}: x1 must exceed x0 and y1 must exceed y0")
    frames = None
    if m.group(5):
        picked: set[int] = set()
        for part in m.group(5).replace(" ", "").split(","):
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                if int(b) < int(a):
                    raise ValueError(f"bad frame range {part!r} in region {text!r}")
                picked.update(range(int(a), int(b) + 1))
            else:
                picked.add(int(part))
        frames = tuple(sorted(picked))
    return UserRegion(Box(x0, y0, x1, y1), frames)


@dataclass(frozen=True)
class ScrubOptions:
    """Everything that decides what one scrub does.

    ``deid`` is a :class:`pixelscrub.header.DeidOptions` (``None``: the Basic Profile
    defaults) and ``key`` the secret for UIDs, pseudonyms and date shifts;
    ``max_pixels`` refuses absurd images (Rows x Columns x Frames x Samples) and
    ``max_frame_pixels`` absurd frames (Rows x Columns x Samples) before anything
    is decoded.  ``rules`` are :class:`pixelscrub.rules.Rule` device templates
    (``--rules``): their regions are blanked in every mode.  ``documents`` is
    ``"scrub"`` (encapsulated PDFs are rendered, scrubbed and rewritten) or
    ``"refuse"`` (they fail with a clear reason, and go to the quarantine).  ``redact_unread`` blanks text lines that stay unreadable after the
    retry ladder, so that the image can be certified; without it such an image is
    written as ``unverified``.  ``verify`` re-reads every scrubbed image the way an
    attacker would (:mod:`pixelscrub.verify`) and redacts what was missed; what a
    second re-read still finds leaves the image unverified.
    """

    mode: str = "phi"
    regions: tuple[UserRegion, ...] = ()
    margin: int = 3
    pixels: bool = True
    header: bool = True
    deid: Any = None
    key: Optional[bytes] = None
    log_phi: bool = False
    max_pixels: int = 4_000_000_000
    max_frame_pixels: int = 2 ** 27
    redact_unread: bool = False
    rules: tuple = ()
    documents: str = "scrub"
    ocr_engine: str = "auto"
    verify: bool = True
    verify_engine: str = ""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.margin < 0:
            raise ValueError("margin must be >= 0")
        if self.documents not in ("scrub", "refuse"):
            raise ValueError("documents must be 'scrub' or 'refuse'")
