"""Verify: re-read a scrubbed image the way an attacker would, before it is trusted.

Detection reads proposals; an attacker reads the whole frame.  This stage runs
Tesseract over whole scrubbed frames (sparse-text mode, at 1x and 2x, in the
polarity the frame's ground suggests and in the other one) and matches what it
reads against the header's PHI and the pattern rules, like detection does.
Anything it finds was missed: the pipeline redacts it and verifies again; what a
second pass still finds keeps the file from being certified.  A second engine
(``--verify-engine rapidocr``) reads each of those frames too.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from .records import PIXEL_LAYER, Box, Hit, Word

__all__ = ["VERIFY_PSM", "frames_to_verify", "read_frame", "recheck"]

#: Tesseract page segmentation mode 11: sparse text, find as much text as possible.
VERIFY_PSM = 11
#: Most frames of a cine re-read: the first, the middle and the last.
MAX_FRAMES = 3
#: What an attacker can read: every word of a hit read at least this confidently.
#: (The edge of a black box next to a label reads as low-confidence noise.)
MIN_CONFIDENCE = 60.0
#: The same for a second engine's reading (RapidOCR's line scores run high: 80).
SECOND_MIN_CONFIDENCE = 80.0


def frames_to_verify(n_frames: int) -> list[int]:
    """Which frames are re-read: all of a short stack, else first, middle and last."""
    if n_frames <= MAX_FRAMES:
        return list(range(n_frames))
    return sorted({0, n_frames // 2, n_frames - 1})


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:  # coloured text: its brightest channel carries it best
        return np.ascontiguousarray(frame.max(axis=2))
    return np.ascontiguousarray(frame)


def _views(gray: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(image, scale): dark-on-light first (Tesseract's preference) at 1x, the other
    polarity at 1x, then the first at 2x (small text)."""
    light_ground = float(np.median(gray)) >= 128
    first = gray if light_ground else 255 - gray
    return [(first, 1.0), (255 - first, 1.0),
            (cv2.resize(first, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC), 2.0)]


def _read_view(engine, image: np.ndarray, scale: float, frame_index: int) -> list[Word]:
    words = []
    for i, w in enumerate(engine.read_lines(image, psm=VERIFY_PSM)):
        b = w.box
        box = Box(int(b.x0 / scale), int(b.y0 / scale), int(np.ceil(b.x1 / scale)),
                  int(np.ceil(b.y1 / scale)))
        words.append(Word(w.text, box, w.confidence, w.line, i, (frame_index,), PIXEL_LAYER))
    return words


def read_frame(engine, frame: np.ndarray, frame_index: int) -> list[list[Word]]:
    """The words an attacker's whole-frame OCR reads, one list per view, in frame
    coordinates."""
    return [_read_view(engine, image, scale, frame_index)
            for image, scale in _views(_gray(frame))]


def _agree(hit: Hit, others: Sequence[Hit]) -> bool:
    """Another view found PHI in the same place (at least 30 % of the smaller box)."""
    for o in others:
        if o.box.intersects(hit.box):
            inter = o.box.intersection(hit.box).area
            if inter >= 0.3 * min(o.box.area, hit.box.area):
                return True
    return False


def _looks_like_a_label(text: str) -> bool:
    """A label word misread by one letter ("DOB" as "DOE"): labels stay beside every
    black box of a scrubbed image."""
    from rapidfuzz.distance import Levenshtein

    from .match import label_words
    core = text.strip(" .:#").casefold()
    return len(core) <= 5 and any(Levenshtein.distance(core, w) <= 1 for w in label_words()
                                  if abs(len(w) - len(core)) <= 1)


def _label_on_its_row(hit: Hit, words: Sequence[Word]) -> bool:
    """A label rule's hit counts only with its label on the same row, left of it.

    In a scrubbed image every label's value is a black box, so every label looks
    like one that ends its line and takes its value from the line below: the next
    label ("MR#" under "Patient:").  That is detection's rule for original images,
    not evidence in a scrubbed one.
    """
    if not hit.reason.startswith("label:"):
        return True
    b = hit.box
    for w in words:
        overlap = b.rows_shared(w.box)
        if (overlap >= 0.5 * min(b.height, w.box.height) and w.box.x1 <= b.x0 + 2
                and b.x0 - w.box.x1 <= 3 * b.height):
            return True
    return False


def recheck(frames: Iterable[np.ndarray], n_frames: int, terms: Sequence, engine, *,
            mode: str = "phi", second=None) -> tuple[list[Hit], int]:
    """PHI still readable in the scrubbed ``frames`` (display views, streamed).

    A hit counts when two of the three views of a frame find it (one misread word is
    no evidence; so the costly 2x view is read only when a 1x view found something), it was read with confidence, a label hit has its label on its row,
    and it is not a label word misread.  Phone-number shapes are left to detection:
    device codes ("I169-S247") read as digits in some view.  Returns the hits (for
    every frame: a missed overlay is rarely on one frame only) and the frames read.
    """
    from .match import match_words

    wanted = set(frames_to_verify(n_frames))
    found: list[Hit] = []
    read = 0
    for k, frame in enumerate(frames):
        if k in wanted:
            # A hit counts only where another view agrees: when neither 1x view
            # finds anything, the 2x view cannot count alone and is not read.
            views, per_view = [], []
            for image, scale in _views(_gray(frame)):
                if len(views) == 2 and not any(per_view):
                    break
                views.append(_read_view(engine, image, scale, k))
                per_view.append(match_words(views[-1], terms, mode=mode))
            for v, hits in enumerate(per_view):
                others = [h for u, hs in enumerate(per_view) if u != v for h in hs]
                found += [h for h in hits if h.confidence >= MIN_CONFIDENCE
                          and h.reason != "pattern:phone" and _agree(h, others)
                          and _label_on_its_row(h, views[v])
                          and not _looks_like_a_label(h.text)
                          and not any(f.box.contains(h.box) for f in found)]
            if second is not None:
                # another family of reader is evidence of its own: its confident
                # hits count without a Tesseract view agreeing
                words = _read_view(second, _gray(frame), 1.0, k)
                found += [h for h in match_words(words, terms, mode=mode)
                          if h.confidence >= SECOND_MIN_CONFIDENCE and h.reason != "pattern:phone"
                          and _label_on_its_row(h, words) and not _looks_like_a_label(h.text)
                          and not any(f.box.contains(h.box) for f in found)]
            read += 1
        if k >= max(wanted):
            break
    return [Hit(h.box, f"verify:{h.reason}", None, h.layer, confidence=h.confidence,
                text=h.text, score=h.score) for h in found], read
