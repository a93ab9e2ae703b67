"""Propose candidate text regions in one display image.

Text burned into medical images is thin strokes, brighter or darker than their
immediate surroundings, of roughly uniform height, lined up on a baseline.  So:

1. contrast maps: white top-hat (light-on-dark strokes) and black-hat
   (dark-on-light strokes) of the gray view and, for colour images, of the
   per-pixel channel maximum and saturation (yellow/green/cyan/blue labels can
   be dim in gray but are strong there);
2. a local threshold on each map: a multiple of the local *median* response
   (robust to the text itself), so a label a few grey levels off a smooth
   radiograph background is kept while the speckle of an ultrasound fan needs a
   much stronger stroke; inside ultrasound imaging regions the threshold is
   stricter, but text there is still proposed;
3. per plane and polarity (a union would fuse the strokes of one with the
   gaps between letters of another), connected components of character size,
   linked into lines by baseline overlap, similar height and small gaps, both
   horizontally and vertically (text rotated 90 degrees in a margin); each line
   takes the orientation most of its letters side with;
4. the lines of all planes and polarities merged, a line box found twice kept once
   (found in both polarities, as high as the line in the polarity of its ink);
5. lines of one height that follow each other on a row with ink (punctuation
   too small to be a character) or texture in the gap joined into one
   (:func:`_join_rows`): small, widely spaced text falls apart word by word;
   two touching letters too short for a line alone (a degree, 'MD') join the
   line they end the same way, and so does one letter after a mark ('^G'), but
   only over the mark's ink;
6. a line that runs from a flat ground into texture (speckle, anatomy) is
   followed along its row while pixels of its own ink level continue there
   (:func:`_into_texture`): the threshold of step 2 rises with the texture and
   drops the rest of its strokes;
7. large text lying wholly over texture (white letters over speckle) has no
   top-hat above the texture's, but its strokes have flat cores, which speckle
   rarely has (:func:`_plateau_lines`): lines of such cores, long and
   mostly outside every line found before, are added.  The per-frame pass over a cine's moving
   areas skips this step (``plateau=False``): text that stays put over a moving
   fan is found on the cine's mean frame, where the speckle has averaged out.
8. small faint text (cap height 7, a few grey levels over a blocky JPEG ground)
   breaks into pieces below character size at the threshold of step 2: a
   second pass at ``faint_noise_factor`` adds the long upright lines it finds
   clear of the lines found before, as weak leads (:func:`_faint_lines`); like
   step 7, not on a cine's per-frame pass.

Each proposal hugs one text line: the redaction uses OCR word boxes, and the
anatomy and measurements around them must survive.

Tuning constants live in ``models/v1/propose.json``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Optional, Sequence

import cv2
import numpy as np

from .assets import load_json
from .percentiles import int_percentiles
from .records import Box, Proposal, covered_share

__all__ = ["propose_text_regions", "propose_with_strokes", "ultrasound_regions",
           "propose_params", "contrast_channels", "text_mask", "plane_masks"]

#: ``Proposal.score`` of a line found by a weak cue (:func:`_plateau_lines`): read,
#: but never reported as text left unread.
WEAK_CUE = 0.5

#: RegionSpatialFormat values of SequenceOfUltrasoundRegions that hold image data
#: (1 2D tissue/flow, 2 M-mode, 3 spectral, 4 waveform); 0 none and 5 graphics are not.
_IMAGING_FORMATS = (1, 2, 3, 4)


def propose_params(params: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The tuned defaults from ``models/v1/propose.json`` updated with ``params``."""
    p = dict(load_json("propose.json"))
    if params:
        unknown = set(params) - set(p)
        if unknown:
            raise ValueError(f"unknown propose parameters: {sorted(unknown)}")
        p.update(params)
    return p


def ultrasound_regions(ds) -> list[Box]:
    """Imaging-region boxes from SequenceOfUltrasoundRegions (empty if absent).

    DICOM's RegionLocationMaxX1/MaxY1 are inclusive, the returned boxes half-open.
    Graphics regions (RegionSpatialFormat 5) and regions without a format count
    as annotation area, not imaging.
    """
    out = []
    for item in getattr(ds, "SequenceOfUltrasoundRegions", None) or []:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            continue
        fmt = item.get("RegionSpatialFormat")
        if fmt is not None and int(fmt) not in _IMAGING_FORMATS:
            continue
        box = Box(min(x0, x1), min(y0, y1), max(x0, x1) + 1, max(y0, y1) + 1)
        if not box.is_empty():
            out.append(box)
    return out


def contrast_channels(image: np.ndarray) -> list[np.ndarray]:
    """The uint8 planes text is looked for in: gray, plus channel max and
    saturation (max - min) for a colour image."""
    image = _check_image(image)
    if image.ndim == 2:
        return [image]
    rgb = image[..., :3]
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    hi = rgb.max(axis=2)
    sat = hi - rgb.min(axis=2)
    planes = [gray, np.ascontiguousarray(hi)]
    if sat.max() > 0:
        planes.append(np.ascontiguousarray(sat))
    return planes


def text_mask(image: np.ndarray, *, params: Optional[Mapping[str, Any]] = None,
              imaging_regions: Sequence[Box] = (), polarity: str = "light") -> np.ndarray:
    """Boolean mask of stroke pixels of one polarity (``"light"`` text on darker
    ground, or ``"dark"``): strong enough local contrast in any plane."""
    planes = plane_masks(image, params=params, imaging_regions=imaging_regions,
                         polarity=polarity)
    return np.logical_or.reduce(planes)


def plane_masks(image: np.ndarray, *, params: Optional[Mapping[str, Any]] = None,
                imaging_regions: Sequence[Box] = (), polarity: str = "light"
                ) -> list[np.ndarray]:
    """Stroke masks of one polarity, one per plane of :func:`contrast_channels`.

    Polarities and planes are kept apart: the black-hat of light text marks the
    gaps between its strokes, and so does the top-hat of the saturation plane
    for white text on a coloured panel; a union would fuse a line into a blob.
    """
    return _masks_of(contrast_channels(image), propose_params(params), imaging_regions, polarity)


def _masks_of(planes: Sequence[np.ndarray], p: Mapping[str, Any], imaging_regions: Sequence[Box],
              polarity: str) -> list[np.ndarray]:
    """:func:`plane_masks` of planes already made."""
    inside = _inside(planes[0].shape, imaging_regions)
    return [_strokes(hat, _levels(hat, p), inside, p) for hat in _hats(planes, p, polarity)]


def _hats(planes: Sequence[np.ndarray], p: Mapping[str, Any], polarity: str) -> list[np.ndarray]:
    """Step 1: the contrast map of each plane, white top-hat for ``"light"`` text,
    black-hat for ``"dark"``."""
    op = {"light": cv2.MORPH_TOPHAT, "dark": cv2.MORPH_BLACKHAT}[polarity]
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (p["hat_kernel"], p["hat_kernel"]))
    return [cv2.morphologyEx(plane, op, kernel, borderType=cv2.BORDER_REPLICATE)
            for plane in planes]


def _inside(shape: tuple[int, int], imaging_regions: Sequence[Box]) -> np.ndarray:
    """Boolean map of the ultrasound imaging regions."""
    h, w = shape
    inside = np.zeros((h, w), bool)
    for b in imaging_regions:
        c = b.clip(w, h)
        inside[c.y0:c.y1, c.x0:c.x1] = True
    return inside


def propose_text_regions(image: np.ndarray, *, params: Optional[Mapping[str, Any]] = None,
                         imaging_regions: Sequence[Box] = ()) -> list[Proposal]:
    """Candidate text lines of one display image.

    Parameters
    ----------
    image : ndarray
        uint8 display view, (H, W) gray or (H, W, 3) RGB, 1:1 with native pixels.
    params : mapping, optional
        Overrides of ``models/v1/propose.json``.
    imaging_regions : sequence of Box
        Ultrasound imaging regions: text there is proposed with a stricter
        contrast threshold (speckle), never skipped.

    Returns
    -------
    list of Proposal
        One per text line, in reading order (top to bottom, left to right);
        vertical lines carry ``rotation=90`` (bottom-to-top text; the read
        stage also tries 270).
    """
    return propose_with_strokes(image, params=params, imaging_regions=imaging_regions)[0]


def propose_with_strokes(image: np.ndarray, *, params: Optional[Mapping[str, Any]] = None,
                         imaging_regions: Sequence[Box] = (), plateau: bool = True
                         ) -> tuple[list[Proposal], dict[str, np.ndarray]]:
    """:func:`propose_text_regions` and the stroke masks it came from, by polarity
    (``"light"``, ``"dark"``).

    The cine logic uses the strokes to tell whether a line's ink is the static
    overlay or something that moves.
    """
    p = propose_params(params)
    image = _check_image(image)
    h, w = image.shape[:2]
    planes = contrast_channels(image)
    inside = _inside(planes[0].shape, imaging_regions)
    maps = {polarity: [(hat, _levels(hat, p)) for hat in _hats(planes, p, polarity)]
            for polarity in ("light", "dark")}
    masks = {polarity: [_strokes(hat, levels, inside, p) for hat, levels in pairs]
             for polarity, pairs in maps.items()}
    strokes = _union_by_polarity(masks)
    out = _lines_of(*_pieces(masks, p), strokes, image, planes, p)
    if plateau:
        found_before = [r.box for r in out]
        out += [q for q in _plateau_lines(planes[0], p)
                if covered_share(q.box, found_before) < 0.5]
        if p["faint_noise_factor"] > 0:
            out += _faint_lines(maps, inside, image, planes, out, p)
    limit = p["max_area_fraction"] * h * w
    out = [q for q in out if q.box.area <= limit]
    out.sort(key=lambda q: (q.box.y0, q.box.x0))
    return out, strokes


def _union_by_polarity(masks: Mapping[str, Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """The stroke masks of all planes in one, by polarity."""
    return {polarity: np.logical_or.reduce(m) for polarity, m in masks.items()}


def _pieces(masks: Mapping[str, Sequence[np.ndarray]], p: Mapping[str, Any]
            ) -> tuple[list[tuple[Proposal, str]], list[Proposal]]:
    """Step 3: the lines of each stroke mask, with their polarity, and the stubs
    (see :func:`_proposals_from_mask`) of all masks."""
    stubs: list[Proposal] = []
    found = [(q, polarity) for polarity, per_plane in masks.items()
             for mask in per_plane for q in _proposals_from_mask(mask, p, stubs)]
    return found, stubs


def _lines_of(found: list[tuple[Proposal, str]], stubs: Sequence[Proposal],
              strokes: Mapping[str, np.ndarray],
              image: np.ndarray, planes: Sequence[np.ndarray], p: Mapping[str, Any]
              ) -> list[Proposal]:
    """Steps 4 to 6 of the module docstring: the text lines of the pieces found in
    the stroke masks (``strokes``: their union by polarity)."""
    lines = _join_rows(_merge(found, image, p), image, planes, strokes, p, stubs)
    return _drop_contained([_into_texture(q, planes, p, lines) for q in lines], p)


def _faint_lines(maps: Mapping[str, Sequence[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]],
                 inside: np.ndarray, image: np.ndarray, planes: Sequence[np.ndarray],
                 found: Sequence[Proposal], p: Mapping[str, Any]) -> list[Proposal]:
    """Step 8: lines of strokes above ``faint_noise_factor`` times the noise level
    instead of ``noise_factor``, as weak leads.

    Small low-contrast text over a JPEG-blocky or textured ground (cap height 7,
    25 grey levels) breaks into pieces below character size at the normal
    threshold and is not proposed at all.  A lower threshold finds it, and with
    it many chance lines of texture: so only long upright lines, not mostly
    covered by a line found before nor lying across one (a faint box spanning
    several lines), are added, and as weak leads (read, matched, never reported
    as text left unread).
    """
    fp = dict(p, noise_factor=p["faint_noise_factor"])
    masks = {polarity: [_strokes(hat, levels, inside, fp) for hat, levels in pairs]
             for polarity, pairs in maps.items()}
    boxes = [r.box for r in found]
    # the pieces of lines found before go first: they cost the merge most of its time
    pieces, stubs = _pieces(masks, fp)
    pieces = [(q, pol) for q, pol in pieces if covered_share(q.box, boxes) < 0.9]
    out = []
    for q in _lines_of(pieces, stubs, _union_by_polarity(masks), image, planes, fp):
        if q.rotation or q.box.width < p["faint_min_aspect"] * q.box.height:
            continue
        if covered_share(q.box, boxes) >= 0.5 or any(
                r.box.intersects(q.box) and _thickness(q) > p["merge_height_ratio"] * _thickness(r)
                for r in found):
            continue
        out.append(replace(q, score=WEAK_CUE))
    return out


# -- helpers -----------------------------------------------------------------------------

def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"display views are uint8, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"display views are (H,W) or (H,W,3), got {image.shape}")
    return image


def _levels(hat: np.ndarray, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(noise, peak) of a contrast map: its local *median* response (the
    texture/noise level) and its local maximum, which :func:`_strokes` compares
    it with (computed once for the main and the faint pass).

    The median over a window much larger than a character is barely moved by the
    text itself; it is computed on a subsampled map so that the window is cheap.
    """
    h, w = hat.shape
    d = max(1, int(p["noise_downsample"]))
    small = np.ascontiguousarray(hat[::d, ::d])
    k = int(p["noise_window"]) | 1
    if min(small.shape) >= 2:
        med = cv2.medianBlur(small, min(k, 255))
    else:
        med = small
    # Near the edge of a textured area (the rim of an ultrasound fan) the window
    # median drops while the texture stays: spread the texture level outward a bit.
    spread = int(p["noise_spread"])
    if spread > 1:
        med = cv2.dilate(med, np.ones((spread, spread), np.uint8))
    med = cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR)
    k_peak = cv2.getStructuringElement(cv2.MORPH_RECT, (p["hat_kernel"], p["hat_kernel"]))
    return med, cv2.dilate(hat, k_peak)


def _strokes(hat: np.ndarray, levels: tuple[np.ndarray, np.ndarray], inside: np.ndarray,
             p: Mapping[str, Any]) -> np.ndarray:
    """Stroke pixels of a contrast map: above a multiple of its noise level and the
    core of a local peak (``levels``, from :func:`_levels`).

    The per-pixel levels are looked up in tables over the 256 grey levels
    (:func:`_level_table`): no full-size float arrays, a third of the time.
    """
    noise = _level_table(p["noise_factor"], p["noise_offset"], p["min_contrast"])
    # A stroke is the core of a local peak: drop anti-aliasing halos and the texture
    # between strokes, which otherwise fuse a line into one solid blob.
    med, local_peak = levels
    peak = _level_table(p["stroke_fraction"], 0.0, 0.0)
    out = (hat > cv2.LUT(med, noise)) & (hat > cv2.LUT(local_peak, peak))
    if inside.any():
        strict = _level_table(p["inside_noise_factor"], p["noise_offset"],
                              p["inside_min_contrast"])
        out = np.where(inside, hat > cv2.LUT(med, strict), out)
    return out


def _level_table(factor: float, offset: float, least: float) -> np.ndarray:
    """For each grey level v, the largest integer below ``max(least, factor * v +
    offset)`` (float32 arithmetic), capped at 255: an integer ``hat`` exceeds the
    level exactly when it exceeds this entry."""
    v = np.arange(256, dtype=np.float32)
    level = np.maximum(np.float32(least), np.float32(factor) * v + np.float32(offset))
    return np.minimum(np.floor(level), 255).astype(np.uint8)


def _proposals_from_mask(mask: np.ndarray, p: Mapping[str, Any],
                         stubs: Optional[list[Proposal]] = None) -> list[Proposal]:
    """Lines of components, horizontal or vertical.

    Both groupings are made over all components; each component sides with the
    orientation whose line holds more characters, and a line is kept in the
    orientation most of its components side with.  So two columns of rotated
    text next to each other are not read across as two-letter lines, and a
    stack of short labels does not become one vertical line.

    Given a list, ``stubs`` receives the components of character height left out
    of every line: two touching letters (the 'MD' of 'Castellanos, MD') or one
    letter after a mark (the 'G' of 'RAHIMI^ROSA^G'), too short to be a line
    alone, which :func:`_join_rows` may join to the line they end.
    """
    h, w = mask.shape
    comps = _components(mask, p)
    out: list[Proposal] = []
    if not len(comps):
        return out
    across = _lines(comps, p, vertical=False)
    down = _lines(comps, p, vertical=True)
    n_across = np.zeros(len(comps), np.int64)
    n_down = np.zeros(len(comps), np.int64)
    for idx in across:
        n_across[idx] = len(idx)
    for idx in down:
        n_down[idx] = len(idx)
    for idx in across:
        if (n_across[idx] >= n_down[idx]).mean() >= 0.5:
            out.append(Proposal(_pad(comps[idx], p, w, h), source="single"))
    for idx in down:
        if (n_down[idx] > n_across[idx]).mean() > 0.5:
            out.append(Proposal(_pad(comps[idx], p, w, h), rotation=90, source="single"))
    if stubs is not None:
        ch = comps[:, 3] - comps[:, 1]
        alone = (n_across == 0) & (n_down == 0) & (ch >= p["min_char_height"])
        stubs.extend(Proposal(_pad(comps[k:k + 1], p, w, h), source="single")
                     for k in np.flatnonzero(alone))
    return out


def _merge(found: list[tuple[Proposal, str]], image: np.ndarray,
           p: Mapping[str, Any]) -> list[Proposal]:
    """Clean up the proposals (with their polarities) of all planes.

    The same line found twice (boxes overlapping by half of the smaller, one no
    more than ``merge_height_ratio`` times as high as the other) becomes one
    box, their union.  When the two boxes come from opposite polarities, the
    union spans only the height of the box whose polarity the pixels have
    (:func:`_ink_polarity`): the other polarity may lengthen the line (a
    low-contrast label found piecewise in both) but not heighten it, as it marks
    the ground between the letters, which for dark text on a light band reaches
    into the line below; a box over the line and half the next reads as neither.

    A box mostly covered by boxes that much shorter is dropped: the black-hat
    of tightly spaced light lines can fuse two lines into one tall box, which
    would be read at half the scale it needs.
    """
    ratio = float(p["merge_height_ratio"])
    items = list(found)
    merged = True
    while merged:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (qi, pol_i), (qj, pol_j) = items[i], items[j]
                a, b = qi.box, qj.box
                if qi.rotation != qj.rotation or not a.intersects(b):
                    continue
                ha, hb = _thickness(qi), _thickness(qj)
                if max(ha, hb) > ratio * min(ha, hb):
                    continue
                if a.intersection(b).area < 0.5 * min(a.area, b.area):
                    continue
                box, pol = a.union(b), pol_i
                if pol_i != pol_j:
                    ink = _ink_polarity(image, box, p)
                    if ink is not None:
                        pol = ink
                        box = _along(box, a if ink == pol_i else b, qi.rotation)
                items[i] = (Proposal(box, rotation=qi.rotation, source=qi.source), pol)
                del items[j]
                merged = True
                break
            if merged:
                break
    props = [q for q, _ in items]
    keep = []
    for q in props:
        thinner = [r.box for r in props if r is not q and r.rotation == q.rotation
                   and _thickness(r) * ratio <= _thickness(q) and r.box.intersects(q.box)]
        if thinner:
            cover = np.zeros((q.box.height, q.box.width), bool)
            for r in thinner:
                c = r.intersection(q.box)
                cover[c.y0 - q.box.y0:c.y1 - q.box.y0, c.x0 - q.box.x0:c.x1 - q.box.x0] = True
            if cover.mean() >= 0.8:
                continue
        keep.append(q)
    return keep


def _join_rows(props: list[Proposal], image: np.ndarray, planes: Sequence[np.ndarray],
               strokes: Mapping[str, np.ndarray], p: Mapping[str, Any],
               stubs: Sequence[Proposal] = ()) -> list[Proposal]:
    """Upright lines of one height that follow each other along a row within
    ``row_join_gap`` line heights, with ink of their polarity in the gap, joined
    into one.

    Small text with wide letter spacing falls apart into one line per word:
    the gaps between words are wider than the letters are high, and the
    punctuation in them (the colon of a label, the comma of "Last, First", the
    dashes of a date) is too small to be a character.  Read word by word, the
    punctuation is lost with the gaps, and with it what makes a value a value.
    Over texture a line falls apart as well, where the threshold rises with
    the ground: fragments with a textured gap between them are joined too.
    An empty gap on a flat ground is a gap between fields, and they are read
    apart as before.  ``stubs`` (two touching letters, or one letter, see
    :func:`_proposals_from_mask`) are joined the same way, and count only so; a
    single letter only over stroke ink, and never to another stub.
    """
    n_lines = len(props)
    props = list(props) + _stubs_outside(stubs, props)
    polarity: dict[int, Optional[str]] = {}

    def letter(k: int) -> bool:
        """A stub of one letter, narrower than two touching ones."""
        b = props[k].box
        return k >= n_lines and b.width < p["stub_min_aspect"] * b.height

    def ink_between(i: int, j: int) -> bool:
        if (letter(i) or letter(j)) and min(i, j) >= n_lines:
            return False      # a lone letter ends a line, never starts a chain of them
        a, b = props[i].box, props[j].box
        if i not in polarity:
            polarity[i] = _ink_polarity(image, a, p)
        y0, y1 = max(a.y0, b.y0), min(a.y1, b.y1)
        if polarity[i] is None or b.x0 <= a.x1 or y1 <= y0:
            return b.x0 <= a.x1 and not letter(j)   # touching boxes need no ink between
        if int(strokes[polarity[i]][y0:y1, a.x1:b.x0].sum()) >= 3:
            return True
        # a lone letter joins only over a mark ('^G'): texture holds letter-sized blobs
        return (not (letter(i) or letter(j))
                and _spread(planes[0][y0:y1, a.x1:b.x0]) >= p["texture_min_spread"])

    joined = [(i, j) for i, j in _row_neighbours(props, p) if ink_between(i, j)]
    if not joined:
        return props[:n_lines]
    r, c = np.array(joined).T
    labels = _linked_groups(len(props), r, c)
    groups: dict[int, list[int]] = {}
    for k, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(k)
    out = []
    for group in groups.values():
        if group[0] >= n_lines:
            continue           # stubs alone
        members = [props[k] for k in group]
        box = members[0].box
        for q in members[1:]:
            box = box.union(q.box)
        out.append(members[0] if len(members) == 1 else
                   Proposal(box, members[0].frames, members[0].layer, 0, members[0].source,
                            members[0].score))
    return out


def _stubs_outside(stubs: Sequence[Proposal], lines: Sequence[Proposal]) -> list[Proposal]:
    """The ``stubs`` not half inside one of the ``lines``: a piece of a line found in
    another plane (its first letter) is no stub, the line holds it."""
    if not stubs or not lines:
        return list(stubs)
    s = np.array([q.box.as_list() for q in stubs], np.int64)
    held = np.zeros(len(stubs), bool)
    for b in (q.box for q in lines):
        iw = np.clip(np.minimum(s[:, 2], b.x1) - np.maximum(s[:, 0], b.x0), 0, None)
        ih = np.clip(np.minimum(s[:, 3], b.y1) - np.maximum(s[:, 1], b.y0), 0, None)
        held |= 2 * iw * ih >= (s[:, 2] - s[:, 0]) * (s[:, 3] - s[:, 1])
    return [q for q, h in zip(stubs, held) if not h]


#: Rows of a pairwise comparison done at a time: bounded memory on noisy frames.
_CHUNK = 512


def _row_neighbours(props: Sequence[Proposal], p: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(left, right) index pairs of upright lines of about one height, on one row,
    the right one starting within ``row_join_gap`` line heights of the left one's
    end (or overlapping it by less than half the shorter line)."""
    if len(props) < 2:
        return []
    b = np.array([q.box.as_list() for q in props], np.int64)
    upright = np.array([q.rotation % 180 == 0 for q in props])
    x0, y0, x1, y1 = (b[:, k] for k in range(4))
    hgt, wid = y1 - y0, x1 - x0
    out = []
    for start in range(0, len(props), _CHUNK):       # (chunk x all) pairs at a time
        i = slice(start, start + _CHUNK)
        lo = np.minimum(hgt[i, None], hgt[None, :])
        hi = np.maximum(hgt[i, None], hgt[None, :])
        overlap = np.minimum(y1[i, None], y1[None, :]) - np.maximum(y0[i, None], y0[None, :])
        gap = x0[None, :] - x1[i, None]
        pair = (upright[i, None] & upright[None, :] & (x0[None, :] >= x0[i, None])
                & (hi <= p["row_join_height_ratio"] * lo) & (overlap >= p["row_join_overlap"] * lo)
                & (gap <= p["row_join_gap"] * lo)
                & (gap >= -0.5 * np.minimum(wid[i, None], wid[None, :])))
        a, c = np.nonzero(pair)
        out.extend((int(k + start), int(m)) for k, m in zip(a, c) if k + start != m)
    return out


def _into_texture(q: Proposal, planes: Sequence[np.ndarray], p: Mapping[str, Any],
                  lines: Sequence[Proposal] = ()) -> Proposal:
    """``q`` lengthened along its row, both ways, over textured ground that holds
    the line's ink level.

    Text at one ink level (often saturated white) over speckle is plain to a
    reader, but its top-hat is no higher than the speckle's, so step 2 loses it
    where the ground turns to texture.  The ink level is measured where the line
    was found (the plane and tail that stand out most from its ground); the row
    is then stepped one line height at a time while the band holds pixels of
    that level (``texture_ink_share``) clearly more often (``texture_ink_ratio``)
    than the cleaner of the strips just above and below it, and the band's ground
    (away from the ink) is textured (interquartile range ``texture_min_spread``;
    a flat ground was already searched in step 2).  One window may fail (a space
    between words); two end the line.

    Over another of the row's ``lines`` the ground of a strip must be textured
    instead (``texture_strip_spread``, above the ringing JPEG leaves near glyphs;
    speckle measures 13-50): there the band holds the neighbour's glyphs, whose
    ringing looks like texture, and a crop that ends halfway into a neighbouring
    field reads as neither (sample_data 0020 was held as unread so).
    """
    if q.rotation % 180:
        return q
    h, w = planes[0].shape
    box = q.box.clip(w, h)
    line_h = box.height
    if line_h < p["min_char_height"] or box.width < line_h:
        return q
    level = _ink_level(planes, box, p)
    if level is None:
        return q
    plane, lo, hi = level
    half = max(2, line_h // 2)
    top, bottom = max(0, box.y0 - half), min(h, box.y1 + half)
    rows = plane[top:bottom]                     # the row with a strip above and below
    ink = _glyph_sized((rows >= lo) & (rows <= hi), line_h)
    y0, y1 = box.y0 - top, box.y1 - top
    strips = [(a, b) for a, b in ((0, y0), (y1, bottom - top)) if b - a >= 2]
    if not strips:
        return q

    off_ink = ~cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    # JPEG rings around glyphs for a few pixels: the strips' ground keeps clear of them
    clear_of_ink = ~cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)

    def holds_ink(x0: int, x1: int) -> bool:
        around = min(ink[a:b, x0:x1].mean() for a, b in strips)
        share = ink[y0:y1, x0:x1].mean()
        return bool(share >= p["texture_ink_share"] and share >= p["texture_ink_ratio"] * around)

    taken = np.zeros(w, bool)                      # columns of the row's other lines
    for r in lines:
        b = r.box
        if r is not q and b.rows_shared(box) >= 0.5 * min(b.height, line_h):
            taken[max(0, b.x0):max(0, b.x1)] = True

    def textured(a: int, b: int, x0: int, x1: int, spread: float, away: np.ndarray) -> bool:
        return _spread(rows[a:b, x0:x1][away[a:b, x0:x1]]) >= spread

    def passes(x0: int, x1: int) -> bool:
        if taken[x0:x1].any():
            ground_ok = any(textured(a, b, x0, x1, p["texture_strip_spread"], clear_of_ink)
                            for a, b in strips)
        else:
            ground_ok = textured(y0, y1, x0, x1, p["texture_min_spread"], off_ink)
        return ground_ok and holds_ink(x0, x1)

    if not holds_ink(box.x0, box.x1):
        return q        # its ink level is no rarer in the line than around it: speckle

    def walk(start: int, step: int) -> int:
        edge, misses, x = start, 0, start
        while misses < 2:
            a, b = (x, x + step) if step > 0 else (x + step, x)
            a, b = max(0, a), min(w, b)
            if b - a < max(2, line_h // 3):
                break
            if passes(a, b):
                cols = np.flatnonzero(ink[y0:y1, a:b].any(axis=0))
                edge = a + int(cols.max()) + 1 if step > 0 else a + int(cols.min())
                misses = 0
            else:
                misses += 1
            x += step
        return edge

    x1 = walk(box.x1, line_h)
    x0 = walk(box.x0, -line_h)
    if (x0, x1) == (box.x0, box.x1):
        return q
    pad = int(p["line_pad"])
    grown = Box(max(0, min(box.x0, x0 - pad)), box.y0, min(w, max(box.x1, x1 + pad)), box.y1)
    return Proposal(grown, q.frames, q.layer, q.rotation, q.source, q.score)


def _plateau_lines(gray: np.ndarray, p: Mapping[str, Any]) -> list[Proposal]:
    """Horizontal lines of flat stroke cores over texture (step 7 of the module
    docstring): letters printed at one level over speckle keep flat interiors,
    while speckle changes from pixel to pixel; long lines only, since a few
    specks line up by chance."""
    h, w = gray.shape
    k = np.ones((3, 3), np.uint8)
    flat = (cv2.dilate(gray, k).astype(np.int16) - cv2.erode(gray, k)) <= p["plateau_flat_tolerance"]
    d = max(1, int(p["noise_downsample"]))
    small = np.ascontiguousarray(gray[::d, ::d])
    if min(small.shape) < 2:
        return []
    med = cv2.resize(cv2.medianBlur(small, 9), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    g = gray.astype(np.float32)
    mean = cv2.blur(g, (15, 15))
    textured = cv2.blur(g * g, (15, 15)) - mean * mean >= float(p["plateau_texture_sd"]) ** 2
    diff = gray.astype(np.int16) - med
    out = []
    for away in (diff, -diff):
        cores = cv2.dilate((flat & textured & (away >= p["plateau_contrast"])).astype(np.uint8), k)
        # a glyph's core is about as high as wide; the flat sides of an edge
        # (a band over a black strip) run along it
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
        glyphs = stats[:, cv2.CC_STAT_WIDTH] <= 3 * stats[:, cv2.CC_STAT_HEIGHT]
        glyphs[0] = False
        mask = glyphs[labels]
        out += [replace(q, score=WEAK_CUE) for q in _proposals_from_mask(mask, p)
                if q.rotation == 0 and q.box.width >= p["plateau_min_aspect"] * q.box.height]
    return out


def _glyph_sized(mask: np.ndarray, line_h: int) -> np.ndarray:
    """``mask`` without the components no glyph of a line ``line_h`` high makes:
    the dark outside an ultrasound fan, a saturated blob of speckle."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    small = (stats[:, cv2.CC_STAT_HEIGHT] <= 1.2 * line_h) & (stats[:, cv2.CC_STAT_WIDTH] <= 3 * line_h)
    small[0] = False
    return small[labels]


def _spread(values: np.ndarray) -> float:
    """Interquartile range of ``values``: the texture of a ground, blind to the
    few anti-aliased pixels around strokes that a standard deviation counts."""
    if np.size(values) <= 8:
        return 0.0
    q1, q3 = int_percentiles(values, (25.0, 75.0))
    return q3 - q1


def _drop_contained(props: list[Proposal], p: Mapping[str, Any]) -> list[Proposal]:
    """``props`` without the lines that another line of about their height holds
    (9/10 of the area): fragments of a line found in texture that
    :func:`_into_texture` has now reached from where the line began."""
    if len(props) < 2:
        return list(props)
    ratio = float(p["merge_height_ratio"])
    b = np.array([q.box.as_list() for q in props], np.int64)
    rot = np.array([q.rotation % 180 for q in props])
    thick = np.array([_thickness(q) for q in props], np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = np.arange(len(props))
    held = np.zeros(len(props), bool)
    for start in range(0, len(props), _CHUNK):       # rows: q, columns: r
        i = slice(start, start + _CHUNK)
        iw = np.minimum(b[i, None, 2], b[None, :, 2]) - np.maximum(b[i, None, 0], b[None, :, 0])
        ih = np.minimum(b[i, None, 3], b[None, :, 3]) - np.maximum(b[i, None, 1], b[None, :, 1])
        common = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        bigger = (area[None, :] > area[i, None]) | ((area[None, :] == area[i, None])
                                                    & (order[None, :] < order[i, None]))
        inside = ((common >= 0.9 * area[i, None]) & (rot[i, None] == rot[None, :]) & bigger
                  & (thick[None, :] <= ratio * thick[i, None])
                  & (thick[i, None] <= ratio * thick[None, :]))
        held[i] = inside.any(axis=1)
    return [q for q, h in zip(props, held) if not h]


def _ink_level(planes: Sequence[np.ndarray], box: Box, p: Mapping[str, Any]
               ) -> Optional[tuple[np.ndarray, float, float]]:
    """(plane, low, high): the whole-image plane in which the strokes in ``box``
    stand out most from its ground, and the range of values its ink takes there;
    ``None`` for a line with too little contrast to follow."""
    best = None
    q = float(p["polarity_percentile"])
    for plane in planes:
        crop = plane[box.y0:box.y1, box.x0:box.x1]
        lo, ground, hi = int_percentiles(crop, (100.0 - q, 50.0, q))
        for level, contrast in ((hi, hi - ground), (lo, ground - lo)):
            if best is None or contrast > best[2]:
                best = (plane, float(level), float(contrast))
    plane, level, contrast = best
    if contrast < p["texture_min_contrast"]:
        return None
    tol = max(2.0, p["texture_ink_tolerance"] * contrast)
    return plane, level - tol, level + tol


def _ink_polarity(image: np.ndarray, box: Box, p: Mapping[str, Any]) -> Optional[str]:
    """``"light"`` or ``"dark"``: which way the strokes in ``box`` stand out from
    its ground (the median), in the plane where they stand out most; ``None`` when
    neither tail reaches ``polarity_margin`` times the other."""
    q = float(p["polarity_percentile"])
    light = dark = 0.0
    for plane in contrast_channels(image[box.y0:box.y1, box.x0:box.x1]):
        lo, ground, hi = np.percentile(plane, (100.0 - q, 50.0, q))
        light, dark = max(light, hi - ground), max(dark, ground - lo)
    if light > p["polarity_margin"] * dark:
        return "light"
    if dark > p["polarity_margin"] * light:
        return "dark"
    return None


def _along(union: Box, ink: Box, rotation: int) -> Box:
    """``union`` cut to the extent of ``ink`` across the reading direction."""
    if rotation % 180:
        return Box(ink.x0, union.y0, ink.x1, union.y1)
    return Box(union.x0, ink.y0, union.x1, ink.y1)


def _thickness(q: Proposal) -> int:
    """Line height of a proposal: across the reading direction."""
    return q.box.width if q.rotation % 180 else q.box.height


def _components(mask: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """(N, 5) int array of character-sized components: x0, y0, x1, y1, area."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros((0, 5), np.int64)
    s = stats[1:].astype(np.int64)
    x, y, cw, ch, area = s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4]
    long_side, short_side = np.maximum(cw, ch), np.minimum(cw, ch)
    fill = area / (cw * ch)
    keep = ((long_side >= p["min_char_height"]) & (short_side <= p["max_char_height"])
            & (area >= p["min_char_area"])
            & (long_side <= p["max_char_aspect"] * np.maximum(short_side, 1))
            & ((fill <= p["max_fill"]) | (short_side <= 2)))
    s = s[keep]
    return np.stack([s[:, 0], s[:, 1], s[:, 0] + s[:, 2], s[:, 1] + s[:, 3], s[:, 4]], axis=1)


def _lines(comps: np.ndarray, p: Mapping[str, Any], *, vertical: bool) -> list[np.ndarray]:
    """Index arrays of components that form text lines (along x, or along y if vertical)."""
    if vertical:
        comps = comps[:, [1, 0, 3, 2, 4]]  # swap axes: a vertical line becomes horizontal
    x0, y0, x1, y1 = comps[:, 0], comps[:, 1], comps[:, 2], comps[:, 3]
    hgt = y1 - y0
    ok = (hgt >= p["min_char_height"]) & (hgt <= p["max_char_height"])
    cand = np.flatnonzero(ok)
    if not len(cand):
        return []
    max_gap = p["link_gap_vertical"] if vertical else p["link_gap"]
    rows, cols = [], []
    chunk = 512
    for start in range(0, len(cand), chunk):
        a = cand[start:start + chunk, None]
        b = cand[None, :]
        overlap = np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b])
        hmin = np.minimum(hgt[a], hgt[b])
        hmax = np.maximum(hgt[a], hgt[b])
        gap = np.maximum(x0[a], x0[b]) - np.minimum(x1[a], x1[b])
        link = ((overlap >= p["link_overlap"] * hmin) & (hmax <= p["link_height_ratio"] * hmin)
                & (gap <= max_gap * hmax))
        ia, ib = np.nonzero(link)
        rows.append(ia + start)
        cols.append(ib)
    labels = _linked_groups(len(cand), np.concatenate(rows), np.concatenate(cols))
    min_chars = p["min_vertical_chars"] if vertical else p["min_line_chars"]
    counts = np.bincount(labels)
    # Lone components are decided all at once (speckle makes thousands): below
    # min_chars only a wide one stays (a word whose letters touch), never a vertical.
    cw, ch = x1[cand] - x0[cand], hgt[cand]
    if min_chars > 1:
        lone_ok = np.zeros(len(cand), bool) if vertical else cw >= p["single_char_min_aspect"] * ch
    else:   # a line of one: a vertical one only as long as its rotated letters
        lone_ok = cw >= 1.5 * ch if vertical else np.ones(len(cand), bool)
    kept = {int(labels[i]): cand[i:i + 1] for i in np.flatnonzero((counts[labels] == 1) & lone_ok)}
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    for lab in np.flatnonzero(counts > 1):
        idx = cand[order[starts[lab]:starts[lab + 1]]]
        heights = hgt[idx]
        width = x1[idx].max() - x0[idx].min()
        height = y1[idx].max() - y0[idx].min()
        if len(idx) < min_chars:
            if vertical or width < p["single_char_min_aspect"] * height:
                continue
        elif len(idx) >= 3 and heights.std() > p["max_line_height_cv"] * heights.mean():
            continue
        # Rotated letters share one thickness (the cap height), unlike the
        # letters of stacked horizontal lines lined up in a column.
        elif vertical and (width < 1.5 * height
                           or heights.max() > p["vertical_thickness_ratio"] * heights.min()):
            continue
        kept[int(lab)] = idx
    return [kept[lab] for lab in sorted(kept)]


def _linked_groups(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group label of each of ``n`` nodes joined by the links ``a[i]-b[i]`` (either way),
    numbered in the order of each group's first node (as scipy's
    ``connected_components``, without its sparse-matrix set-up, which cost more
    than the grouping for the few hundred components of a frame)."""
    a, b = np.concatenate([a, b]), np.concatenate([b, a])
    label = np.arange(n)
    while True:
        low = label.copy()
        np.minimum.at(low, a, label[b])
        low = low[low]    # jump: a node takes its new label's label
        if np.array_equal(low, label):
            return np.unique(label, return_inverse=True)[1]
        label = low


def _pad(comps: np.ndarray, p: Mapping[str, Any], w: int, h: int) -> Box:
    box = Box(int(comps[:, 0].min()), int(comps[:, 1].min()),
              int(comps[:, 2].max()), int(comps[:, 3].max()))
    return box.expand(int(p["line_pad"]), w, h)
