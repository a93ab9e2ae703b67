"""Read the words in proposed text regions with Tesseract.

Tesseract only ever sees proposal crops, never a whole frame.  Each crop is
prepared the way Tesseract reads best: in the plane (gray / channel max /
saturation) where the text stands out most, its ground (a line-high median) is
subtracted and the strokes stretched to black on white, so a label a few grey
levels off a graded radiograph reads like print; it is turned upright, upscaled
so that small text has a line height of about ``target_height`` pixels, and
framed by a white border.  Line crops, all at that height, share one Tesseract
call as a mosaic.  Word boxes are mapped back to image coordinates by undoing
each of those steps.

Settings live in ``models/v1/ocr.json``.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import cv2
import numpy as np

from .ocr.base import OcrWord, ocr_settings
from .propose import contrast_channels
from .records import Box, Proposal, Word

__all__ = ["read_proposals", "read_batch", "read_batches", "read_proposal", "reread_doubtful",
           "prepare_crop", "remainders", "fold_remainder",
           "PreparedCrop", "expected_characters", "looks_like_text",
           "renumber_lines", "split_glued_label"]


@dataclass(frozen=True)
class PreparedCrop:
    """An OCR-ready crop and how to map its coordinates back to the image."""

    pixels: np.ndarray            # uint8 2-D, dark text on white, upright, framed
    origin: tuple[int, int]       # (x0, y0) of the crop in the image
    size: tuple[int, int]         # (w, h) of the crop before rotation and scaling
    rotation: int                 # clockwise degrees the crop was turned
    scale: float
    border: int
    psm: int                      # page segmentation mode it should be read with
    contrast: float = 0.0         # grey levels between the strokes and their ground

    def to_image(self, box: Box) -> Box:
        """A box in ``pixels`` coordinates as a box in image coordinates."""
        s, b = self.scale, self.border
        rx0 = math.floor((box.x0 - b) / s)
        ry0 = math.floor((box.y0 - b) / s)
        rx1 = math.ceil((box.x1 - b) / s)
        ry1 = math.ceil((box.y1 - b) / s)
        w, h = self.size
        if self.rotation == 90:      # rotated[i, j] = crop[h-1-j, i]
            x0, x1, y0, y1 = ry0, ry1, h - rx1, h - rx0
        elif self.rotation == 180:
            x0, x1, y0, y1 = w - rx1, w - rx0, h - ry1, h - ry0
        elif self.rotation == 270:   # rotated[i, j] = crop[j, w-1-i]
            x0, x1, y0, y1 = w - ry1, w - ry0, rx0, rx1
        else:
            x0, x1, y0, y1 = rx0, rx1, ry0, ry1
        local = Box(x0, y0, x1, y1).clip(w, h)
        ox, oy = self.origin
        return Box(local.x0 + ox, local.y0 + oy, local.x1 + ox, local.y1 + oy)


def prepare_crop(image: np.ndarray, proposal: Proposal, *, rotation: Optional[int] = None,
                 settings: Optional[Mapping[str, Any]] = None,
                 own_ground: bool = False) -> Optional[PreparedCrop]:
    """The OCR-ready version of ``proposal``'s region, or ``None`` if it is flat.

    The ground is normally estimated with the padding around the proposal as
    context.  With ``own_ground`` it comes from the proposal alone, its edges
    replicated into the padding: the second chance for a line next to a band or
    panel edge (a white title band over a black image), whose other side would
    shift the ground estimate and wash out the strokes beside it.
    """
    cfg = settings or ocr_settings()
    h, w = image.shape[:2]
    box = proposal.box.expand(int(cfg["pad"]), w, h)
    if box.is_empty():
        return None
    rotation = proposal.rotation if rotation is None else rotation
    inner = proposal.box.clip(w, h)
    if own_ground:
        inner = _trim_flat_edges(image, inner)
        crop = _replicated(image, inner, box)
    else:
        crop = image[box.y0:box.y1, box.x0:box.x1]
    line_h = proposal.box.width if rotation % 180 else proposal.box.height
    stroke = _stroke_image(crop, line_h, cfg)
    if stroke is None:
        return None
    plane, contrast = stroke
    # The padding's ink belongs to neighbouring lines, which would confuse a
    # single-line read: blank it.
    keep = np.zeros(plane.shape, bool)
    keep[inner.y0 - box.y0:inner.y1 - box.y0, inner.x0 - box.x0:inner.x1 - box.x0] = True
    plane = np.where(keep, plane, np.uint8(255))
    k = {0: 0, 90: -1, 180: 2, 270: 1}[rotation % 360]
    upright = np.ascontiguousarray(np.rot90(plane, k))
    scale = min(float(cfg["max_scale"]), max(1.0, cfg["target_height"] / max(1, line_h)))
    if scale > 1.0:
        upright = cv2.resize(upright, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    border = int(cfg["border"])
    framed = cv2.copyMakeBorder(upright, border, border, border, border,
                                cv2.BORDER_CONSTANT, value=255)
    psm = cfg["psm_block"] if _text_rows(upright) >= 2 else cfg["psm_line"]
    return PreparedCrop(framed, (box.x0, box.y0), (box.width, box.height), rotation % 360,
                        scale, border, int(psm), contrast)


def read_proposal(image: np.ndarray, proposal: Proposal, engine, *,
                  settings: Optional[Mapping[str, Any]] = None) -> tuple[list[Word], int]:
    """Words of one proposal in image coordinates, and the number of OCR calls made.

    ``line_id`` counts the lines of this proposal from 0.  Vertical text is read
    both ways up (90 and 270 degrees) and unrotated when ``vertical_try_both`` is
    set, keeping the reading with more characters Tesseract is sure of
    (:func:`_sure_characters`) first, then any other reading within
    ``orientation_keep_within`` of it, on lines of its own.
    """
    cfg = settings or ocr_settings()
    rotations = [proposal.rotation % 360]
    if rotations[0] in (90, 270) and cfg["vertical_try_both"]:
        # Upward or downward text, or a stack of short horizontal words
        # (which looks like a vertical line to the propose stage).
        rotations += [360 - rotations[0], 0]
    readings: list[tuple[float, list[Word]]] = []
    calls = 0
    for rot in rotations:
        prep = prepare_crop(image, proposal, rotation=rot, settings=cfg)
        if prep is None:
            continue
        found = engine.read_lines(prep.pixels, psm=prep.psm)
        calls += 1
        readings.append((_sure_characters(found, cfg), _to_words(found, prep, proposal, cfg)))
    if not readings:
        return [], calls
    readings.sort(key=lambda r: -r[0])
    best_score, best = readings[0]
    # A close call (ROSSI^JOHN upside down reads NHOC.ISSOUY, letters as sure as
    # the upright ones): keep the runner-up too, the match stage sees both.
    for score, words in readings[1:]:
        if words and score >= cfg["orientation_keep_within"] * best_score:
            best = best + renumber_lines(words, 1 + max((w.line_id for w in best), default=-1))
    return best, calls


def read_proposals(image: np.ndarray, proposals: Sequence[Proposal], engine, *,
                   first_line_id: int = 0,
                   settings: Optional[Mapping[str, Any]] = None) -> list[Word]:
    """OCR each proposal of ``image``; word boxes in image coordinates.

    Line ids are unique across proposals, numbered from ``first_line_id``.
    """
    out: list[Word] = []
    next_id = first_line_id
    for words in read_batch(image, proposals, engine, settings=settings)[0]:
        out.extend(renumber_lines(words, next_id))
        next_id += 1 + max((wd.line_id for wd in words), default=-1)
    return out


def read_batch(image: np.ndarray, proposals: Sequence[Proposal], engine, *,
               settings: Optional[Mapping[str, Any]] = None) -> tuple[list[list[Word]], int]:
    """The words of each proposal (line ids local to it) and the OCR calls made.

    Single-line upright crops are all prepared to about the same text height, so
    up to ``batch_lines`` of them are stacked into one tall mosaic, separated by
    white bands, and read by ONE Tesseract call as a block; each word goes back
    to the tile its centre lies in.  Vertical and multi-line proposals are read
    one by one (:func:`read_proposal`).
    """
    per_image, calls = read_batches([(image, proposals)], engine, settings=settings)
    return per_image[0], calls


def read_batches(groups: Sequence[tuple[np.ndarray, Sequence[Proposal]]], engine, *,
                 settings: Optional[Mapping[str, Any]] = None
                 ) -> tuple[list[list[list[Word]]], int]:
    """:func:`read_batch` over several images at once: their line crops share mosaics.

    A cine's changing text (a timer, a frame counter) is a line or two per frame;
    read frame by frame each would cost a Tesseract call of its own, read together
    the lines of several frames cost one call per ``batch_lines``.
    """
    cfg = settings or ocr_settings()
    images = [image for image, props in groups for _ in props]
    proposals = [q for _, props in groups for q in props]
    results: list[Optional[list[Word]]] = [None] * len(proposals)
    calls = 0
    lines: list[tuple[int, PreparedCrop]] = []
    for i, prop in enumerate(proposals):
        if int(cfg["batch_lines"]) > 1 and prop.rotation % 360 == 0:
            prep = prepare_crop(images[i], prop, settings=cfg)
            if prep is None:
                results[i] = []
                continue
            if prep.psm == cfg["psm_line"]:
                lines.append((i, prep))
                continue
        results[i], n = read_proposal(images[i], prop, engine, settings=cfg)
        calls += n
    calls += _read_lines(lines, proposals, results, engine, cfg)
    # Second chance for upright lines with a word read poorly (one confident
    # stray character does not make a line read well): the ground from the line alone.
    retry = []
    for i, _ in lines:
        if (min((wd.confidence for wd in results[i]), default=0.0) < cfg["retry_below_confidence"]
                and _context_disagrees(images[i], proposals[i], cfg)):
            prep = prepare_crop(images[i], proposals[i], settings=cfg, own_ground=True)
            if prep is not None and prep.psm == cfg["psm_line"]:
                retry.append((i, prep))
    if retry:
        first = list(results)
        calls += _read_lines(retry, proposals, results, engine, cfg)
        for i, _ in retry:
            if _reading_score(first[i]) >= _reading_score(results[i]):
                results[i] = first[i]
    flat = [r if r is not None else [] for r in results]
    out, start = [], 0
    for _, props in groups:
        out.append(flat[start:start + len(props)])
        start += len(props)
    return out, calls


def _context_disagrees(image: np.ndarray, proposal: Proposal, cfg: Mapping[str, Any]) -> bool:
    """Whether the padding around a line holds something else than the line's own
    edges carry on (a band edge, a panel, a black strip), the case where the
    context ground estimate can wash out strokes.  Speckle or a plain ground
    around a line does not count, so OCR calls are not spent on retries there."""
    h, w = image.shape[:2]
    box = proposal.box.expand(int(cfg["pad"]), w, h)
    inner = _trim_flat_edges(image, proposal.box.clip(w, h))
    if box.is_empty() or inner.is_empty():
        return False
    context = image[box.y0:box.y1, box.x0:box.x1].astype(np.int16)
    own = _replicated(image, inner, box).astype(np.int16)
    delta = np.abs(context - own)
    if delta.ndim == 3:
        delta = delta.max(axis=2)
    outside = np.ones(delta.shape, bool)
    outside[inner.y0 - box.y0:inner.y1 - box.y0, inner.x0 - box.x0:inner.x1 - box.x0] = False
    if not outside.any():
        return False
    share = float((delta[outside] > cfg["retry_context_delta"]).mean())
    return share >= cfg["retry_context_share"]


def _replicated(image: np.ndarray, inner: Box, outer: Box) -> np.ndarray:
    """``image`` over ``outer``, made of ``inner``'s pixels with its edges replicated."""
    return cv2.copyMakeBorder(
        np.ascontiguousarray(image[inner.y0:inner.y1, inner.x0:inner.x1]),
        inner.y0 - outer.y0, outer.y1 - inner.y1, inner.x0 - outer.x0, outer.x1 - inner.x1,
        cv2.BORDER_REPLICATE)


def _trim_flat_edges(image: np.ndarray, box: Box, tolerance: int = 8) -> Box:
    """``box`` without the flat rows and columns along its edges (a band edge or a
    black strip under a title band carries no strokes, only a false ground)."""
    region = image[box.y0:box.y1, box.x0:box.x1].astype(np.int16)
    if region.ndim == 3:
        region = region.max(axis=2)
    rows = np.flatnonzero(np.ptp(region, axis=1) > tolerance)
    cols = np.flatnonzero(np.ptp(region, axis=0) > tolerance)
    if rows.size == 0 or cols.size == 0:
        return box
    return Box(box.x0 + int(cols[0]), box.y0 + int(rows[0]),
               box.x0 + int(cols[-1]) + 1, box.y0 + int(rows[-1]) + 1)


def _sure_characters(found: Sequence[OcrWord], cfg: Mapping[str, Any]) -> float:
    """How many characters of a reading Tesseract is sure of, to tell which way up
    a crop reads.

    Each character counts ``exp(-(100 - confidence) / orientation_doubt_scale)``:
    about 1 when certain, little when not.  Character confidences are used where
    the engine gives them: an upright ``TANAKA^ELENA`` has a word confidence of
    30 (the caret) and an upside-down reading ``VYN3ITA.VAYNVL`` 27, but eleven of
    the upright characters are at 99, while the misreading's letters hover at
    90-97.  Without them each character takes its word's confidence.
    """
    scale = float(cfg["orientation_doubt_scale"])
    total = 0.0
    for ow in found:
        if ow.confidence < cfg["min_confidence"]:
            continue
        chars = ow.char_confidences or (ow.confidence,) * len(ow.text)
        total += sum(math.exp(-(100.0 - c) / scale) for c in chars)
    return total


def _reading_score(words: Optional[Sequence[Word]]) -> float:
    """How much confident text a reading holds, to pick the better of two."""
    return sum(wd.confidence * len(wd.text) for wd in words or ())


def _read_lines(lines, proposals, results, engine, cfg) -> int:
    """Read prepared single-line crops in mosaics into ``results``; OCR calls made.

    A crop read before by this process (the same pixels: a device's overlay line
    on the next image of a series) takes its earlier reading instead of a call."""
    calls = 0
    step = int(cfg["batch_lines"])
    todo = []
    for i, prep in lines:
        known = _READ_BEFORE.get(engine, prep)
        if known is None:
            todo.append((i, prep))
        else:
            results[i] = _to_words(known, prep, proposals[i], cfg)
    # weak leads (Proposal.score) in mosaics of their own: a tile changes how
    # Tesseract reads the block, and they must not change the other lines' readings
    chunks = [group[k:k + step] for group in
              ([t for t in todo if proposals[t[0]].score >= 1.0],
               [t for t in todo if proposals[t[0]].score < 1.0])
              for k in range(0, len(group), step)]
    for chunk in chunks:
        if len(chunk) == 1:
            i, prep = chunk[0]
            found = engine.read_lines(prep.pixels, psm=prep.psm)
            _READ_BEFORE.put(engine, prep, found)
            results[i] = _to_words(found, prep, proposals[i], cfg)
        else:
            for (i, prep), found in zip(chunk, _read_mosaic(chunk, engine, cfg)):
                _READ_BEFORE.put(engine, prep, found)
                results[i] = _to_words(found, prep, proposals[i], cfg)
        calls += 1
    return calls


class _Readings:
    """The OCR words of the last ``size`` line crops read in this process, by engine
    and crop pixels: the static overlay of a series is read once, not per image."""

    def __init__(self, size: int = 4096):
        self.size = size
        self.seen: OrderedDict = OrderedDict()
        self.hits = 0

    @staticmethod
    def _key(engine, prep: PreparedCrop) -> tuple:
        digest = hashlib.blake2b(prep.pixels.tobytes(), digest_size=16).digest()
        return (id(engine), prep.pixels.shape, prep.psm, digest)

    def get(self, engine, prep: PreparedCrop):
        key = self._key(engine, prep)
        found = self.seen.get(key)
        if found is not None:
            self.seen.move_to_end(key)
            self.hits += 1
        return found

    def put(self, engine, prep: PreparedCrop, found) -> None:
        self.seen[self._key(engine, prep)] = list(found)
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)


_READ_BEFORE = _Readings()


def _read_mosaic(chunk, engine, cfg) -> list[list[OcrWord]]:
    """One OCR call over stacked line crops; the OCR words of each tile, in tile
    coordinates."""
    gap = int(cfg["batch_gap"])
    width = max(prep.pixels.shape[1] for _, prep in chunk)
    tops = []
    y = 0
    for _, prep in chunk:
        tops.append(y)
        y += prep.pixels.shape[0] + gap
    mosaic = np.full((y - gap, width), 255, np.uint8)
    for top, (_, prep) in zip(tops, chunk):
        h, w = prep.pixels.shape
        mosaic[top:top + h, :w] = prep.pixels
    found = engine.read_lines(mosaic, psm=int(cfg["psm_block"]))
    per_tile: list[list[OcrWord]] = [[] for _ in chunk]
    for ow in found:
        cy = (ow.box.y0 + ow.box.y1) / 2
        for t, (top, (_, prep)) in enumerate(zip(tops, chunk)):
            h, w = prep.pixels.shape
            if top <= cy < top + h:
                b = Box(ow.box.x0, ow.box.y0 - top, ow.box.x1, ow.box.y1 - top).clip(w, h)
                per_tile[t].append(OcrWord(ow.text, b, ow.confidence, ow.line))
                break
    return per_tile


# a label glued to its value: "Born:1966-05-13", "by:Prof." (not "13:54")
_GLUED = re.compile(r"^(?P<label>[^\W\d_](?:[^:#\s]*[^\W\d_])?\.?[:#])(?P<value>[^:#\s]+)$")


def split_glued_label(ow: OcrWord) -> list[OcrWord]:
    """``ow`` as a label word and a value word when Tesseract read them as one.

    The space after a label's colon is narrow, and in small widely spaced text
    it is no wider than the gaps between letters.  Matching needs the two
    apart: the label stays, its value goes.  The box is cut in proportion to
    the characters (crop coordinates are upright: the cut is along x).
    """
    m = _GLUED.match(ow.text)
    if m is None:
        return [ow]
    n, k = len(ow.text), len(m.group("label"))
    cut = ow.box.x0 + round(ow.box.width * k / n)
    chars = ow.char_confidences
    return [OcrWord(m.group("label"), Box(ow.box.x0, ow.box.y0, cut, ow.box.y1), ow.confidence,
                    ow.line, chars[:k] if len(chars) == n else ()),
            OcrWord(m.group("value"), Box(cut, ow.box.y0, ow.box.x1, ow.box.y1), ow.confidence,
                    ow.line, chars[k:] if len(chars) == n else ())]


def _to_words(found: Sequence[OcrWord], prep: PreparedCrop, proposal: Proposal,
              cfg: Mapping[str, Any]) -> list[Word]:
    """OCR words of one prepared crop as Words in image coordinates, lines from 0."""
    words = []
    line_ids: dict[int, int] = {}
    index: dict[int, int] = {}
    for ow in (part for whole in found for part in split_glued_label(whole)):
        if ow.confidence < cfg["min_confidence"]:
            continue
        box = prep.to_image(ow.box)
        if box.is_empty():
            continue
        line = line_ids.setdefault(ow.line, len(line_ids))
        i = index.get(line, 0)
        index[line] = i + 1
        words.append(Word(ow.text, box, float(ow.confidence), line_id=line, index=i,
                          frames=proposal.frames, layer=proposal.layer, rotation=prep.rotation))
    return words


def renumber_lines(words: Sequence[Word], first_line_id: int) -> list[Word]:
    """``words`` of one proposal with their local line ids shifted by ``first_line_id``."""
    return [Word(w.text, w.box, w.confidence, w.line_id + first_line_id, w.index,
                 w.frames, w.layer, w.rotation) for w in words]


# -- helpers -----------------------------------------------------------------------------

def _stroke_image(crop: np.ndarray, line_h: int, cfg: Mapping[str, Any]
                  ) -> Optional[tuple[np.ndarray, float]]:
    """Dark strokes on white, from the plane and polarity where strokes stand out
    most, and their contrast in grey levels.

    The ground is estimated by a median filter about one line high (strokes fill
    well under half of such a window) and subtracted, so a radiograph's gradient
    or an uneven panel drops out and a label a few grey levels off its ground
    becomes black on white.  The text polarity is the heavier tail of the
    difference, unless ``cfg["polarity"]`` names it.  ``None`` if nothing stands
    out (a flat crop).
    """
    k = min(255, max(3, int(line_h * cfg["ground_kernel"])) | 1)
    q = float(cfg["stroke_percentile"])
    best, best_contrast = None, 0.0
    forced = cfg.get("polarity")
    for plane in contrast_channels(np.ascontiguousarray(crop)):
        ground = cv2.medianBlur(plane, k)
        diff = plane.astype(np.float32) - ground
        light, dark = np.percentile(diff, q), -np.percentile(diff, 100.0 - q)
        light_ink = light >= dark if forced is None else forced == "light"
        contrast, sign = (light, 1.0) if light_ink else (dark, -1.0)
        if contrast > best_contrast:
            best, best_contrast = sign * diff, float(contrast)
    if best is None or best_contrast < cfg["min_stroke_contrast"]:
        return None
    ink = np.clip(best / best_contrast, 0.0, 1.0)
    if cfg["binarise"]:
        ink = (ink >= 0.5).astype(np.float32)
    return (255.0 * (1.0 - ink)).astype(np.uint8), best_contrast


def _text_rows(upright: np.ndarray) -> int:
    """Number of separate horizontal bands holding dark pixels (text lines)."""
    rows = (upright < 128).any(axis=1)
    edges = np.diff(np.concatenate([[0], rows.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    tall = (ends - starts) >= max(3, 0.25 * len(rows))
    return int(tall.sum())


# -- the rest of a line: read what its first reading left out ---------------------------

def remainders(image: np.ndarray, proposals: Sequence[Proposal], words: Sequence[Sequence[Word]],
               *, settings: Optional[Mapping[str, Any]] = None) -> list[tuple[int, Proposal]]:
    """The stretches of upright line proposals that no word covers and that hold a
    row of characters, as (owner index, sub-proposal).

    A crop is read in the one plane and polarity where its strokes stand out most
    (:func:`_stroke_image`), but a line can change colour midway: a light label,
    then its value in dark ink over a lighter ground ('MR#' in pale blue, then the
    number in brown).  The value is then no ink at all in the crop that was read,
    so the line looks well read.  Cut off on its own, the value gets its own
    polarity.  Stretches shorter than ``remainder_min_heights`` line heights, flat,
    or without ``remainder_min_characters`` characters in a row cost no OCR call.
    """
    cfg = settings or ocr_settings()
    h, w = image.shape[:2]
    floor = float(cfg["read_min_confidence"])
    out: list[tuple[int, Proposal]] = []
    for i, prop in enumerate(proposals):
        box = prop.box.clip(w, h)
        if prop.rotation % 360 or box.is_empty():
            continue
        line_h = box.height
        grow = max(1, int(round(float(cfg["remainder_word_grow"]) * line_h)))
        covered = np.zeros(box.width, bool)
        for wd in words[i]:
            covered[max(0, wd.box.x0 - box.x0 - grow):max(0, wd.box.x1 - box.x0 + grow)] = True
        if not any(wd.confidence >= floor for wd in words[i]):
            continue     # nothing read with confidence: the doubtful-line ladder's case
        edges = np.diff(np.concatenate([[1], covered.astype(np.int8), [1]]))
        for s0, s1 in zip(np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)):
            if s1 - s0 < float(cfg["remainder_min_heights"]) * line_h:
                continue
            sub = Proposal(Box(box.x0 + int(s0), box.y0, box.x0 + int(s1), box.y1),
                           prop.frames, prop.layer, 0, "remainder", prop.score)
            prep = prepare_crop(image, sub, settings=cfg)
            if (prep is not None and prep.contrast >= float(cfg["unread_min_contrast"])
                    and looks_like_text(prep.pixels, int(cfg["remainder_min_characters"]),
                                        among_specks=True)):
                out.append((i, sub))
    return out


def fold_remainder(words: Sequence[Word], more: Sequence[Word]) -> list[Word]:
    """The words of a line and of its remainder as one line, ordered left to right,
    so that a label and the value read apart from it are neighbours again."""
    if not words:
        return list(more)
    line = min(wd.line_id for wd in words)
    row = sorted([wd for wd in words if wd.line_id == line] + list(more), key=lambda wd: wd.box.x0)
    return ([Word(wd.text, wd.box, wd.confidence, line, k, wd.frames, wd.layer, wd.rotation)
             for k, wd in enumerate(row)] + [wd for wd in words if wd.line_id != line])


# -- doubtful lines: re-read, then fail closed --------------------------------------------

def reread_doubtful(image: np.ndarray, proposals: Sequence[Proposal],
                    words: Sequence[Sequence[Word]], engine, *,
                    settings: Optional[Mapping[str, Any]] = None
                    ) -> tuple[list[list[Word]], list[Proposal], int]:
    """Re-read the proposals whose reading is doubtful; name the text still unread.

    A reading is doubtful when its confident characters (:func:`_confident_characters`)
    are fewer than ``read_min_share`` of the characters the crop's ink shows
    (:func:`expected_characters`), or its confident words leave part of the ink
    uncovered (:func:`_well_read`).  A doubtful line goes up a retry ladder
    (:func:`_ladder`): deskewed by the ink's minimum-area rectangle, twice the
    scale, page segmentation modes 7, 8 and 6.  Every hypothesis that holds
    confident characters is kept (the match stage sees them all).

    Text drawn at a slant is often proposed as several fragments, and read at the
    wrong angle Tesseract makes confident garbage of them ('NAF', '"AMURA,' for
    NAKAMURA): short or slanted proposals that are neighbours (within a line height
    of each other, in a row) are joined, and a joined region whose ink is a row of
    at least ``join_min_characters`` characters goes up the ladder as one line; so
    does a slanted or short fragment alone whose ink slants.  Small letters that
    touch break into fewer pieces than they are letters: a short fragment that
    Tesseract spelled out as a long word anyway (:func:`_spelled_out`) goes up the
    ladder on its own.

    A line (or joined region) still doubtful whose ink is a legible row of
    characters (:func:`_legible`) is returned as unread: the caller must not certify
    the image unless that region is redacted.

    Returns the words of each proposal, the unread regions (as proposals) and the
    OCR calls made.
    """
    cfg = settings or ocr_settings()
    out = [list(w) for w in words]
    unread: list[Proposal] = []
    loose: list[int] = []        # doubtful, but not a line of its own
    calls = 0
    for i, prop in enumerate(proposals):
        prep = prepare_crop(image, prop, settings=cfg)
        if prep is None:
            continue
        expected = expected_characters(prep.pixels)
        if expected < int(cfg["read_min_characters"]) and prop.score >= 1.0:
            n, still = _reread_other_polarity(image, prop, out[i], engine, cfg)
            calls += n
            if still:
                unread.append(prop)
                continue
        if expected == 0:
            continue
        few = (expected < int(cfg["read_min_characters"])
               or abs(_ink_angle(prep.pixels)) >= float(cfg["deskew_min_degrees"]))
        # small letters that touch: few pieces of ink, which Tesseract spelled out
        spelled = few and prop.score >= 1.0 and _spelled_out(words[i], cfg)
        if few and not spelled:
            if prop.score >= 1.0:
                loose.append(i)   # a few letters, or slanted ink: maybe a piece of a slanted line
            continue
        if _well_read(image, prop, out[i], expected, cfg):
            continue
        found, judges, n = _ladder(prep, prop, engine, cfg, _wide_ground(image, prop, cfg))
        calls += n
        _append_lines(out[i], found)
        if prop.score < 1.0:
            continue   # a weak lead (see Proposal.score) that OCR cannot confirm
        if not _well_read(image, prop, judges, expected, cfg):
            if _legible(prep, cfg):
                unread.append(prop)
            else:
                loose.append(i)
    for group in _neighbours([proposals[i] for i in loose]):
        members = [loose[g] for g in group]
        if len(group) > 1 and not _collinear([proposals[m].box for m in members]):
            continue
        joined = Proposal(_union([proposals[m].box for m in members]),
                          proposals[members[0]].frames, proposals[members[0]].layer, 0, "joined")
        prep = prepare_crop(image, joined, settings=cfg)
        if prep is None or not _legible(prep, cfg, int(cfg["join_min_characters"])):
            continue
        if len(group) == 1 and abs(_ink_angle(prep.pixels)) < float(cfg["deskew_min_degrees"]):
            continue   # a short level word alone: its own reading stands
        expected = expected_characters(prep.pixels)
        if expected < int(cfg["join_min_characters"]):
            continue
        found, judges, n = _ladder(prep, joined, engine, cfg, _wide_ground(image, joined, cfg))
        calls += n
        _append_lines(out[members[0]], found)
        if not _well_read(image, joined, judges, expected, cfg):
            unread.append(joined)
    return out, unread, calls


def _legible(prep: PreparedCrop, cfg: Mapping[str, Any], min_letters: int = 4) -> bool:
    """Text a person could read: a row of at least ``min_letters`` characters
    (:func:`looks_like_text`) at least ``unread_min_contrast`` grey levels off its
    ground (the faint edges of anatomy that the propose stage lets through sit at 5-9)."""
    return (prep.contrast >= float(cfg["unread_min_contrast"])
            and looks_like_text(prep.pixels, min_letters))


def _spelled_out(words: Sequence[Word], cfg: Mapping[str, Any]) -> bool:
    """Tesseract spelled out a word of at least ``reread_min_spelled`` letters or
    digits, however unsure ('OspeceleSea' at 13 for Ospedale Sa in 7 px caps): it
    saw letters it could not read.  Texture mostly reads as short tokens full of
    marks ('se#', '"Ds'), though not always ('Sittings' over anatomy), so this
    earns a re-read, not a place among the unread."""
    least = int(cfg["reread_min_spelled"])
    for w in words:
        text = w.text.strip(".,:;'\"")
        alnum = sum(c.isalnum() for c in text)
        if alnum >= least and alnum >= 0.85 * len(text):
            return True
    return False


def _append_lines(words: list[Word], more: Sequence[Word]) -> None:
    """Add ``more`` to one proposal's ``words`` on lines of their own, less the
    words read again as they were (same text over the same ink)."""
    more = [m for m in more if not any(
        w.text == m.text and w.box.intersection(m.box).area >= 0.5 * min(w.box.area, m.box.area)
        for w in words)]
    if more:
        words.extend(renumber_lines(more, 1 + max((w.line_id for w in words), default=-1)))


def _collinear(boxes: Sequence[Box]) -> bool:
    """Whether the centres of ``boxes`` lie on one straight line (at any slant),
    within half the typical line height: the fragments of one slanted line, not a
    column of separate labels."""
    if len(boxes) < 3:
        return True
    off = _line_offsets([((b.x0 + b.x1) / 2.0, (b.y0 + b.y1) / 2.0) for b in boxes])
    height = float(np.median([min(b.width, b.height) for b in boxes]))
    return float(off.max()) <= 0.5 * height


def _line_offsets(points) -> np.ndarray:
    """How far each point lies from the straight line fitted through all of them."""
    pts = np.asarray(points, np.float32)
    vx, vy, x0, y0 = cv2.fitLine(pts, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    return np.abs((pts[:, 0] - x0) * vy - (pts[:, 1] - y0) * vx)


def _union(boxes: Sequence[Box]) -> Box:
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


def _neighbours(props: Sequence[Proposal]) -> list[list[int]]:
    """Groups of proposals (indices) that lie within a line height of each other."""
    parent = list(range(len(props)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(props):
        for j in range(i + 1, len(props)):
            b = props[j]
            if a.layer != b.layer or a.frames != b.frames:
                continue
            reach = max(min(a.box.height, a.box.width), min(b.box.height, b.box.width))
            if a.box.expand(reach, 1 << 30, 1 << 30).intersects(b.box):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(props)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def expected_characters(pixels: np.ndarray) -> int:
    """How many characters the dark ink of a prepared crop shows: its connected
    components at least ``0.35`` as tall as the tallest (dots, commas and the
    parts of a broken stroke are not characters of their own)."""
    comps = _ink_components(pixels)
    if len(comps) == 0:
        return 0
    return int((comps[:, 3] >= 0.35 * comps[:, 3].max()).sum())


def looks_like_text(pixels: np.ndarray, min_letters: int = 4, *, among_specks: bool = False
                    ) -> bool:
    """Whether the ink of a prepared crop is a row of characters: at least
    ``min_letters`` components of about one height, each no wider than two or three letters run
    together, holding most of the ink, whose centres lie on one straight line (at
    any slant).  Anatomy, speckle and edges break into pieces of every size, and
    most of their ink is in the big ones.

    ``among_specks``: the letter height is taken from the pieces of at least a
    quarter of the biggest one's ink, where specks of texture outnumber the
    letters (the end of a line already read, over speckle).  Not for a region
    with nothing read in it: speckle alone then passes too easily."""
    comps = _ink_components(pixels)
    if len(comps) < min_letters:
        return False
    h = comps[:, 3].astype(float)
    big = comps[:, 4] >= 0.25 * comps[:, 4].max() if among_specks else slice(None)
    med = float(np.median(h[big]))
    letter = (h >= 0.6 * med) & (h <= 1.6 * med) & (comps[:, 2] <= 2.5 * med)
    similar = comps[letter]
    if len(similar) < min_letters or similar[:, 4].sum() < 0.6 * comps[:, 4].sum():
        return False
    off = _line_offsets(np.column_stack([similar[:, 0] + similar[:, 2] / 2.0,
                                         similar[:, 1] + similar[:, 3] / 2.0]))
    return float(np.median(off)) <= 0.35 * med and float(off.max()) <= 1.0 * med


def _ink_components(pixels: np.ndarray) -> np.ndarray:
    """(x, y, w, h, area) of the dark components of a prepared crop, specks dropped."""
    ink = (pixels < 128).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    stats = stats[1:]
    return stats[stats[:, 4] >= 12]


def _confident_characters(words: Sequence, cfg: Mapping[str, Any]) -> int:
    """Characters of the words read with at least ``read_min_confidence``.

    Word confidences, not character ones: Tesseract gives the characters of a
    garbage reading of scribbles 80-99 each and the word 0, while a real token
    that is in no dictionary (``MI1.5``) still scores about 55 as a word.
    """
    floor = float(cfg["read_min_confidence"])
    return sum(len(w.text) for w in words if w.confidence >= floor)


def _well_read(image: np.ndarray, proposal: Proposal, words: Sequence[Word], expected: int,
               cfg: Mapping[str, Any]) -> bool:
    """Whether ``words`` read ``proposal``: their confident characters are at least
    ``read_min_share`` of the ``expected`` ones, and the boxes of the confident words
    cover at least ``read_min_coverage`` of the line's ink.  The second test is the
    one that fails for a slanted name read as a couple of confident fragments
    ('awe' at 61 for SMITH, LUCAS): the count may pass, the ink it covers does not."""
    if _confident_characters(words, cfg) < float(cfg["read_min_share"]) * expected:
        return False
    if any(_garbled_number(w.text) for w in words):
        return False
    return _ink_coverage(image, proposal, words, cfg) >= float(cfg["read_min_coverage"])


#: A letter wedged into a number: digit on one side, digit or separator on the other.
_LETTER_IN_NUMBER = re.compile(r"(?<=\d)[^\W\d_](?=[\d./:-])|(?<=[\d./:-])[^\W\d_](?=\d)")


def _garbled_number(text: str) -> bool:
    """A token of at least four digits with a letter wedged among them
    ('23.C9.2221' for 28.09.2021): Tesseract gives such misreads of dates and IDs
    word confidences of 60 and more, but no printed number looks like that."""
    return sum(c.isdigit() for c in text) >= 4 and bool(_LETTER_IN_NUMBER.search(text))


def _ink_coverage(image: np.ndarray, proposal: Proposal, words: Sequence[Word],
                  cfg: Mapping[str, Any]) -> float:
    """The share of a proposal's ink (its strokes, in image coordinates) inside the
    boxes of the words read with confidence (grown by ``coverage_grow`` pixels)."""
    h, w = image.shape[:2]
    box = proposal.box.clip(w, h)
    if box.is_empty():
        return 1.0
    line_h = box.width if proposal.rotation % 180 else box.height
    stroke = _stroke_image(image[box.y0:box.y1, box.x0:box.x1], line_h, cfg)
    if stroke is None:
        return 1.0
    ink = stroke[0] < 128
    total = int(ink.sum())
    if total == 0:
        return 1.0
    read = np.zeros(ink.shape, bool)
    grow, floor = int(cfg["coverage_grow"]), float(cfg["read_min_confidence"])
    for word in words:
        if word.confidence < floor:
            continue
        b = word.box.expand(grow, w, h).intersection(box)
        read[b.y0 - box.y0:b.y1 - box.y0, b.x0 - box.x0:b.x1 - box.x0] = True
    return float((ink & read).sum()) / total


def _reread_other_polarity(image: np.ndarray, proposal: Proposal, words: list[Word], engine,
                           cfg: Mapping[str, Any]) -> tuple[int, bool]:
    """A line whose crop shows hardly any characters in its heavier ink tail, read
    again in the polarity that shows a row of them; (OCR calls, still unread).

    A dark line on grey whose box reaches into white text is washed out by the
    white strokes' stronger contrast: prepared the usual way it holds a few specks,
    is neither read nor judged unread, and the image would be certified with the
    line readable ('Am Rosenhang' under a white title).  What this reading finds
    is added to ``words``; if it does not read the line, the line is unread.
    A box too short to hold ``read_min_characters`` characters half a line height
    wide each is speckle seen in the other polarity, not a line."""
    b = proposal.box
    length, height = (b.height, b.width) if proposal.rotation % 180 else (b.width, b.height)
    if length < 0.5 * height * int(cfg["read_min_characters"]):
        return 0, False
    for polarity in ("light", "dark"):
        flipped = {**cfg, "polarity": polarity}
        prep = prepare_crop(image, proposal, settings=flipped)
        if prep is None:
            continue
        expected = expected_characters(prep.pixels)
        if (expected < int(cfg["read_min_characters"]) or not _legible(prep, flipped)
                or abs(_ink_angle(prep.pixels)) >= float(cfg["deskew_min_degrees"])):
            continue
        if _well_read(image, proposal, words, expected, flipped):
            return 0, False
        found, judges, calls = _ladder(prep, proposal, engine, flipped,
                                       _wide_ground(image, proposal, flipped))
        _append_lines(words, found)
        return calls, not _well_read(image, proposal, judges, expected, flipped)
    return 0, False


def _wide_ground(image: np.ndarray, proposal: Proposal, cfg: Mapping[str, Any]
                 ) -> Optional[PreparedCrop]:
    """The crop prepared with a ground window ``wide_ground_kernel`` line heights
    wide: bold strokes fill more than half of a window one line high, so the
    median there is ink, and the strokes' cores wash out of the normal crop."""
    return prepare_crop(image, proposal, settings={**cfg, "ground_kernel": cfg["wide_ground_kernel"]})


def _ladder(prep: PreparedCrop, proposal: Proposal, engine, cfg: Mapping[str, Any],
            wide: Optional[PreparedCrop] = None) -> tuple[list[Word], list[Word], int]:
    """Re-read one doubtful crop in several ways.

    Returns the words of every reading that holds confident characters (each on
    lines of its own, all go to the match stage), the words that judge whether the
    crop is now read, and the OCR calls made.  The rungs: the crop deskewed by the
    angle of its ink's minimum-area rectangle (text drawn at a slant), read as a
    line and as a block; twice the scale as a line; as a single word; as a block.
    Each rung maps its word boxes back through its own geometry, so a hit covers
    the slanted text in the image.  For slanted ink only the deskewed readings
    judge: read at the wrong angle, Tesseract turns letters into confident
    garbage ('apm' at 56 for HANS at 25 degrees).  The last rung reads the crop
    without its specks (:func:`_without_specks`): light text over speckle; and
    ``wide``, the crop with a wider ground window (:func:`_wide_ground`), as a line.
    """
    rungs: list[tuple[np.ndarray, np.ndarray, int, bool]] = []  # pixels, map back, psm, judges
    angle = _ink_angle(prep.pixels)
    slanted = abs(angle) >= float(cfg["deskew_min_degrees"])
    if slanted:
        turned, back = _rotated(prep.pixels, angle)
        rungs += [(turned, back, int(cfg["psm_line"]), True),
                  (turned, back, int(cfg["psm_block"]), True)]
    same = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    double = cv2.resize(prep.pixels, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    rungs += [(double, np.array([[0.5, 0, 0], [0, 0.5, 0]]), int(cfg["psm_line"]), not slanted),
              (prep.pixels, same, int(cfg["psm_word"]), not slanted),
              (prep.pixels, same, int(cfg["psm_block"]), not slanted),
              (_without_specks(prep.pixels), same, int(cfg["psm_line"]), not slanted)]
    if wide is not None and wide.pixels.shape == prep.pixels.shape:
        rungs.append((wide.pixels, same, int(cfg["psm_line"]), not slanted))
    out: list[Word] = []
    judges: list[Word] = []
    calls = 0
    floor = float(cfg["read_min_confidence"])
    for pixels, back, psm, judging in rungs:
        found = engine.read_lines(np.ascontiguousarray(pixels), psm=psm)
        calls += 1
        mapped = [OcrWord(ow.text, _map_box(ow.box, back, prep.pixels.shape), ow.confidence,
                          ow.line, ow.char_confidences)
                  for ow in found if ow.text.strip() and ow.confidence >= floor]
        words = _to_words(mapped, prep, proposal, cfg)
        if judging:
            judges += words
        seen = {(w.text, w.box) for w in out}
        words = [w for w in words if (w.text, w.box) not in seen]
        if words:
            out += renumber_lines(words, 1 + max((w.line_id for w in out), default=-1))
    return out, judges, calls


def _without_specks(pixels: np.ndarray) -> np.ndarray:
    """A prepared crop binarised at half its contrast, without the dark pieces
    under ``0.35`` of the tallest one's height: light text over bright speckle
    keeps its letters whole, but the speckle's brightest grains come along as
    specks that Tesseract reads as letters, or that make it read nothing."""
    ink = (pixels < 128).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return np.full_like(pixels, 255)
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    keep = heights >= 0.35 * heights[1:].max()
    keep[0] = False
    return np.where(keep[labels], 0, 255).astype(np.uint8)


def _ink_angle(pixels: np.ndarray) -> float:
    """The slant of a crop's ink line in degrees, in image coordinates (y down, so
    text rising to the right is negative), from the minimum-area rectangle around
    its dark pixels; 0 for steeper than 45 degrees (vertical text is the propose
    stage's 90-degree turns)."""
    ys, xs = np.nonzero(pixels < 128)
    if len(xs) < 20:
        return 0.0
    _, (w, h), angle = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
    if w < h:
        angle += 90.0     # the angle of the rectangle's long side
    angle = (angle + 90.0) % 180.0 - 90.0
    return float(angle) if abs(angle) <= 45.0 else 0.0


def _rotated(pixels: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``pixels`` turned so that a line at ``angle`` (see :func:`_ink_angle`) runs
    level, on a white canvas big enough to hold it, and the 2x3 affine that maps
    the result back."""
    h, w = pixels.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(w * cos + h * sin)), int(math.ceil(w * sin + h * cos))
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    turned = cv2.warpAffine(pixels, m, (nw, nh), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return turned, cv2.invertAffineTransform(m)


def _map_box(box: Box, back: np.ndarray, shape: tuple[int, int]) -> Box:
    """The axis-aligned box around ``box``'s corners mapped by the affine ``back``."""
    corners = np.array([[box.x0, box.y0, 1], [box.x1, box.y0, 1],
                        [box.x0, box.y1, 1], [box.x1, box.y1, 1]], float)
    pts = corners @ np.asarray(back, float).T
    h, w = shape
    return Box(int(math.floor(pts[:, 0].min())), int(math.floor(pts[:, 1].min())),
               int(math.ceil(pts[:, 0].max())), int(math.ceil(pts[:, 1].max()))).clip(w, h)
