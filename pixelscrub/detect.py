"""Detection for a whole image: propose + read, frame by frame for cines, cheaply.

A single frame is proposed and read once.  A cine is streamed (frames are
decoded on the fly and never held together) twice at most:

1. a summary pass: per-pixel minimum, maximum and mean.  Pixels that never change
   (max - min within ``static_tolerance``) are the static overlay.  Text lines are
   proposed ONCE on the mean frame; a line with ink present on every frame (seen
   in the minimum frame for light ink, the maximum for dark ink) is read ONCE
   there (Tesseract sees it over the averaged, quieter ground) and its words hold
   for every frame (``frames=None``).
2. only if some pixels change: a dynamic pass over the frames.  Each frame is
   proposed only inside the changing areas (grown by ``dynamic_margin_x/y``), and a
   proposal is OCR'd only when its crop differs from every crop already read at
   that box (crops are hashed), so a frame timer costs one call per distinct
   value; a line whose ink is only its every-frame ink, already read, is skipped.
   The new crops of several frames (up to ``cine_read_lines`` of them, or frames
   up to ``cine_read_mib`` held) are read together, sharing mosaics.  Those words
   list the frames they appear on.

``frames_checked`` counts the frames really covered by both passes; the caller
may only claim a clean image when it equals the number of frames.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import cv2
import numpy as np

from .ocr import get_engine
from .propose import propose_params, propose_with_strokes, text_mask
from .read import (fold_remainder, read_batch, read_batches, remainders, renumber_lines,
                   reread_doubtful)
from .records import PIXEL_LAYER, Box, Hit, Proposal, Word

__all__ = ["Detection", "detect_words", "CineSummary", "summarise_frames"]


@dataclass
class Detection:
    """What detection found in one layer of one image, and what it cost."""

    words: list[Word]
    frames_checked: int
    proposals: int
    ocr_calls: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Text lines that stayed unreadable after the retry ladder (reason ``"unread"``):
    #: the image may only be certified if each is redacted.
    unread: list[Hit] = field(default_factory=list)
    rereads: int = 0
    #: The upright text lines proposed on single frames and a cine's static layer
    #: (reason ``"line"``): where a value's ink ends when OCR read only part of it.
    lines: list[Hit] = field(default_factory=list)


@dataclass(frozen=True)
class CineSummary:
    """Per-pixel statistics of a frame stack (channels collapsed for ``static``)."""

    mean: np.ndarray      # uint8, shape of a frame
    lo: np.ndarray        # per-pixel minimum: light ink present on every frame shows here
    hi: np.ndarray        # per-pixel maximum: dark ink present on every frame shows here
    static: np.ndarray    # bool (H, W): never changed by more than the tolerance
    frames: int           # frames summarised


def summarise_frames(frames: Iterator[np.ndarray], tolerance: int) -> Optional[CineSummary]:
    """One streamed pass: running min/max/sum; ``None`` when there are no frames."""
    lo = hi = total = None
    n = 0
    shape = None
    for frame in frames:
        frame = np.asarray(frame)
        if shape is None:
            shape = frame.shape
            lo, hi = frame.copy(), frame.copy()
            total = frame.astype(np.float64)
        else:
            if frame.shape != shape:
                raise ValueError(f"frame {n} has shape {frame.shape}, frame 0 {shape}")
            np.minimum(lo, frame, out=lo)
            np.maximum(hi, frame, out=hi)
            total += frame
        n += 1
    if n == 0:
        return None
    spread = hi.astype(np.int16) - lo.astype(np.int16)
    if spread.ndim == 3:
        spread = spread.max(axis=2)
    mean = np.clip(np.rint(total / n), 0, 255).astype(np.uint8)
    return CineSummary(mean, lo, hi, spread <= tolerance, n)


def detect_words(display_frames: Callable[[], Iterator[np.ndarray]], n_frames: int, *,
                 engine=None, imaging_regions: Sequence[Box] = (), layer: str = PIXEL_LAYER,
                 params: Optional[Mapping[str, Any]] = None) -> Detection:
    """Find and read the text of one image layer.

    Parameters
    ----------
    display_frames : callable
        Factory: each call starts a new streamed pass over the uint8 display frames.
    n_frames : int
        Number of frames the layer should have.
    engine : OcrEngine, optional
        Default: ``get_engine("auto")``.
    imaging_regions : sequence of Box
        Ultrasound imaging regions (stricter proposal threshold inside).
    layer : str
        Stamped on every Word.
    params : mapping, optional
        Overrides of ``models/v1/propose.json``.
    """
    p = propose_params(params)
    engine = engine or get_engine("auto")
    run = _Run(engine, imaging_regions, layer, p)
    if n_frames <= 1:
        checked = 0
        for frame in display_frames():
            if checked == 0:
                props, _ = run.propose(frame)
                run.read(frame, [_tag(q, None, layer, "single") for q in props], None)
            checked += 1
        if checked == 0:
            run.notes.append("no frames decoded")
        elif checked > 1:
            run.notes.append(f"expected 1 frame, got {checked}: only the first was checked")
        return run.result(min(checked, 1))
    return _detect_cine(display_frames, n_frames, run)


# -- internals ---------------------------------------------------------------------------

class _Run:
    """Counters and shared state of one detect_words call."""

    def __init__(self, engine, imaging_regions, layer, p):
        self.engine, self.imaging, self.layer, self.p = engine, tuple(imaging_regions), layer, p
        self.words: list[Word] = []
        self.unread: list[Hit] = []
        self.lines: list[Hit] = []
        self.rereads = 0
        self.next_line = 0
        self.proposals = 0
        self.ocr_calls = 0
        self.seconds = {"propose": 0.0, "read": 0.0, "reread": 0.0, "summary": 0.0}
        self.notes: list[str] = []

    def propose(self, image: np.ndarray, offset: tuple[int, int] = (0, 0), *, plateau: bool = True
                ) -> tuple[list[Proposal], dict[str, np.ndarray]]:
        """Proposals and stroke mask of ``image``, a window at ``offset`` of the frame."""
        t = time.perf_counter()
        ox, oy = offset
        regions = [Box(b.x0 - ox, b.y0 - oy, b.x1 - ox, b.y1 - oy) for b in self.imaging]
        props, strokes = propose_with_strokes(image, params=self.p, imaging_regions=regions,
                                              plateau=plateau)
        self.seconds["propose"] += time.perf_counter() - t
        self.proposals += len(props)
        return props, strokes

    def read_words(self, image: np.ndarray, props: Sequence[Proposal]
                   ) -> tuple[list[list[Word]], list[Proposal]]:
        """The words of each of ``props`` (line crops share mosaics; doubtful lines
        re-read) and the text regions still unread."""
        return self.read_many([(image, props)])[0]

    def read_many(self, groups: Sequence[tuple[np.ndarray, Sequence[Proposal]]]
                  ) -> list[tuple[list[list[Word]], list[Proposal]]]:
        """:meth:`read_words` for several images (frames of a cine) at once: their
        first readings share mosaics, the rest is done image by image."""
        t = time.perf_counter()
        per_group, calls = read_batches(groups, self.engine)
        t2 = time.perf_counter()
        out = []
        for (image, props), per_prop in zip(groups, per_group):
            # What a line's first reading left out (a value in another colour than its
            # label) is read on its own, and goes up the same ladder when doubtful.
            rest = remainders(image, props, per_prop)
            subs = [q for _, q in rest]
            sub_words, sub_calls = read_batch(image, subs, self.engine) if subs else ([], 0)
            every, unread, more = reread_doubtful(image, list(props) + subs, per_prop + sub_words,
                                                  self.engine)
            per_prop = every[:len(props)]
            for (owner, _), words in zip(rest, every[len(props):]):
                per_prop[owner] = fold_remainder(per_prop[owner], words)
            calls += sub_calls + more
            self.rereads += sub_calls + more
            out.append((per_prop, unread))
        self.seconds["reread"] += time.perf_counter() - t2
        self.seconds["read"] += time.perf_counter() - t
        self.ocr_calls += calls
        return out

    def read(self, image: np.ndarray, props: Sequence[Proposal], frames) -> None:
        per_prop, unread = self.read_words(image, props)
        self.lines += [Hit(q.box, "line", frames=frames, layer=self.layer)
                       for q in props if q.rotation % 180 == 0]
        for words in per_prop:
            self.add(words, frames)
        for q in unread:
            self.flag_unread(q.box, frames)

    def flag_unread(self, box: Box, frames) -> None:
        self.unread.append(Hit(box, "unread", frames=frames, layer=self.layer, confidence=0.0))

    def add(self, words: Sequence[Word], frames) -> None:
        """Keep ``words`` of one proposal with fresh line ids and the given frames."""
        lines = 1 + max((w.line_id for w in words), default=-1)
        words = renumber_lines(words, self.next_line)
        self.next_line += lines
        self.words.extend(Word(w.text, w.box, w.confidence, w.line_id, w.index, frames,
                               self.layer, w.rotation) for w in words)

    def result(self, checked: int) -> Detection:
        return Detection(self.words, checked, self.proposals, self.ocr_calls,
                         {k: round(v, 4) for k, v in self.seconds.items()}, self.notes,
                         self.unread, self.rereads, self.lines)


def _tag(q: Proposal, frames, layer: str, source: str) -> Proposal:
    return Proposal(q.box, frames, layer, q.rotation, source, q.score)


def _detect_cine(display_frames, n_frames: int, run: _Run) -> Detection:
    p = run.p
    t = time.perf_counter()
    summary = summarise_frames(display_frames(), int(p["static_tolerance"]))
    run.seconds["summary"] += time.perf_counter() - t
    if summary is None:
        run.notes.append("no frames decoded")
        return run.result(0)
    if summary.frames != n_frames:
        run.notes.append(f"expected {n_frames} frames, decoded {summary.frames}")

    # Static overlay: proposed and read once, on the mean frame.  Ink present on
    # every frame shows in the minimum (light ink) or maximum (dark ink) frame.
    always = {"light": text_mask(summary.lo, params=p, imaging_regions=run.imaging,
                                 polarity="light"),
              "dark": text_mask(summary.hi, params=p, imaging_regions=run.imaging,
                                polarity="dark")}
    props, strokes = run.propose(summary.mean)
    static_cover = np.zeros(summary.static.shape, bool)
    static_props = [_tag(q, None, run.layer, "static") for q in props
                    if _ink_is_static(strokes, q.box, always, q.box, p)]
    run.read(summary.mean, static_props, None)
    for q in static_props:
        static_cover[q.box.y0:q.box.y1, q.box.x0:q.box.x1] = True

    dynamic = ~summary.static
    if not dynamic.any():
        return run.result(min(summary.frames, n_frames))
    windows = _dynamic_windows(dynamic, p)
    run.notes.append(f"dynamic areas: {len(windows)}")

    # Dynamic text: proposed per frame inside the changing areas, read per new crop,
    # unless all its character-sized ink is the static overlay read above.
    crops = _CropCache(int(p["static_tolerance"]), int(p["near_duplicates"]))
    seen: dict[bytes, list[Word]] = {}       # crop key -> words read from it
    frames_of: dict[bytes, list[int]] = {}   # crop key -> frames it appeared on
    unread: list[tuple[Box, list[bytes]]] = []  # regions left unread, crop keys beside
    order: list[bytes] = []
    # Frames whose new crops wait to be read together (their lines share mosaics).
    waiting: list[tuple[np.ndarray, list[bytes], list[Proposal]]] = []

    def read_waiting() -> None:
        groups = [(frame, props) for frame, _, props in waiting]
        for (_, keys, props), (per_prop, left) in zip(waiting, run.read_many(groups)):
            for key, words in zip(keys, per_prop):
                seen[key] = words
            unread.extend((q.box, [k for k, p in zip(keys, props) if p.box.intersects(q.box)])
                          for q in left)
        waiting.clear()

    checked = 0
    for i, frame in enumerate(display_frames()):
        if i >= summary.frames:
            run.notes.append("frame source grew between passes; extra frames ignored")
            break
        frame = np.asarray(frame)
        pending: dict[bytes, Proposal] = {}   # crops of this frame not read before
        for win in windows:
            sub = frame[win.y0:win.y1, win.x0:win.x1]
            props, strokes = run.propose(sub, (win.x0, win.y0), plateau=False)
            for prop in props:
                box = Box(prop.box.x0 + win.x0, prop.box.y0 + win.y0,
                          prop.box.x1 + win.x0, prop.box.y1 + win.y0)
                if (static_cover[box.y0:box.y1, box.x0:box.x1].mean() >= p["static_cover"]
                        and _ink_is_static(strokes, prop.box, always, box, p)):
                    continue  # the static overlay, already read from the mean frame
                key = crops.key(frame, box, prop.rotation)
                if key not in frames_of:
                    pending[key] = Proposal(box, None, run.layer, prop.rotation, "dynamic",
                                            prop.score)
                    frames_of[key] = []
                    order.append(key)
                if not frames_of[key] or frames_of[key][-1] != i:
                    frames_of[key].append(i)
        if pending:
            waiting.append((frame, list(pending), list(pending.values())))
            if (sum(len(props) for _, _, props in waiting) >= p["cine_read_lines"]
                    or sum(f.nbytes for f, _, _ in waiting) >= p["cine_read_mib"] * 2 ** 20):
                read_waiting()
        checked += 1
    read_waiting()
    for key in order:
        run.add(seen[key], tuple(frames_of[key]))
    for box, keys in unread:
        run.flag_unread(box, tuple(sorted({f for k in keys for f in frames_of[k]})))
    _merge_dynamic_words(run)
    if checked < summary.frames:
        run.notes.append(f"dynamic pass covered {checked} of {summary.frames} frames")
    return run.result(min(checked, summary.frames, n_frames))


def _polarity(always: Mapping[str, np.ndarray], box: Box, p: Mapping[str, Any]) -> Optional[str]:
    """The polarity of the ink that ``box`` holds on every frame, if any."""
    counts = {pol: int(m[box.y0:box.y1, box.x0:box.x1].sum()) for pol, m in always.items()}
    pol = max(counts, key=counts.get)
    return pol if counts[pol] >= p["min_char_area"] else None


def _ink_is_static(strokes: Mapping[str, np.ndarray], local: Box,
                   always: Mapping[str, np.ndarray], box: Box, p: Mapping[str, Any]) -> bool:
    """Whether the ink of a frame's line (``strokes`` at ``local``) is only the ink
    that line has on every frame (``always`` at ``box``).

    Only the line's own polarity counts: the other polarity marks the ground
    between its letters.  The rims of static letters over a moving ground (text
    burned over an ultrasound fan) vary, but touch the always-present ink;
    anything else counts once it adds up to the ink of a small character (a new
    timer digit does; the odd speckle peak does not).
    """
    pol = _polarity(always, box, p)
    if pol is None:
        return False
    ink = strokes[pol][local.y0:local.y1, local.x0:local.x1]
    base = always[pol][box.y0:box.y1, box.x0:box.x1].astype(np.uint8)
    near = cv2.dilate(base, np.ones((3, 3), np.uint8)).astype(bool)
    return int((ink & ~near).sum()) < p["min_char_area"]


def _dynamic_windows(dynamic: np.ndarray, p: Mapping[str, Any]) -> list[Box]:
    """Bounding boxes of the changing areas, grown (mostly along the lines) so that
    a line whose last digit changes is proposed whole, with its static part."""
    h, w = dynamic.shape
    mx, my = int(p["dynamic_margin_x"]), int(p["dynamic_margin_y"])
    grown = cv2.dilate(dynamic.astype(np.uint8), np.ones((2 * my + 1, 2 * mx + 1), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = [Box(int(x), int(y), int(x + bw), int(y + bh)).clip(w, h)
             for x, y, bw, bh, _ in stats[1:]]
    # Overlapping grown boxes would propose the same text twice: merge them.
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes[i].intersects(boxes[j]):
                    boxes[i] = boxes[i].union(boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


class _CropCache:
    """Keys of the crops already seen: the same key for the same pixels at the same
    box, and for a crop within ``tolerance`` grey levels of a recent one there
    (a lossy codec's noise is not new text)."""

    def __init__(self, tolerance: int, recent: int):
        self.tolerance, self.recent = tolerance, recent
        self.exact: dict[bytes, bytes] = {}
        self.by_box: dict[tuple, list[tuple[np.ndarray, bytes]]] = {}

    def key(self, frame: np.ndarray, box: Box, rotation: int) -> bytes:
        crop = np.ascontiguousarray(frame[box.y0:box.y1, box.x0:box.x1])
        h = hashlib.blake2b(digest_size=16)
        h.update(np.asarray(box.as_list() + [rotation], np.int64).tobytes())
        h.update(str(crop.shape).encode())
        h.update(crop.tobytes())
        digest = h.digest()
        if digest in self.exact:
            return self.exact[digest]
        where = (box, rotation)
        known = self.by_box.setdefault(where, [])
        found = digest
        wide = crop.astype(np.int16)
        for old, old_key in reversed(known[-self.recent:] if self.recent > 0 else []):
            if int(np.abs(wide - old).max()) <= self.tolerance:
                found = old_key
                break
        else:
            known.append((wide, digest))
        self.exact[digest] = found
        return found


def _merge_dynamic_words(run: _Run) -> None:
    """Dynamic words with the same text and box (read from crops that differ only in
    their ground) become one word listing all their frames."""
    out: list[Word] = []
    where: dict[tuple, int] = {}
    for w in run.words:
        if w.frames is None:
            out.append(w)
            continue
        key = (w.text, w.box, w.rotation)
        if key in where:
            old = out[where[key]]
            frames = tuple(sorted(set(old.frames) | set(w.frames)))
            out[where[key]] = Word(old.text, old.box, max(old.confidence, w.confidence),
                                   old.line_id, old.index, frames, old.layer, old.rotation)
        else:
            where[key] = len(out)
            out.append(w)
    run.words = out
