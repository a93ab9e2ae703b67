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
   (found in both polarities, as high as the line in the polarity of its ink).

Each proposal hugs one text line: the redaction uses OCR word boxes, and the
anatomy and measurements around them must survive.

Tuning constants live in ``models/v1/propose.json``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .assets import load_json
from .records import Box, Proposal

__all__ = ["propose_text_regions", "propose_with_strokes", "ultrasound_regions",
           "propose_params", "contrast_channels", "text_mask", "plane_masks"]

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
    p = propose_params(params)
    op = {"light": cv2.MORPH_TOPHAT, "dark": cv2.MORPH_BLACKHAT}[polarity]
    planes = contrast_channels(image)
    h, w = planes[0].shape
    inside = np.zeros((h, w), bool)
    for b in imaging_regions:
        c = b.clip(w, h)
        inside[c.y0:c.y1, c.x0:c.x1] = True
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (p["hat_kernel"], p["hat_kernel"]))
    out = []
    for plane in planes:
        hat = cv2.morphologyEx(plane, op, kernel, borderType=cv2.BORDER_REPLICATE)
        out.append(hat > _threshold(hat, inside, p))
    return out


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
                         imaging_regions: Sequence[Box] = ()
                         ) -> tuple[list[Proposal], dict[str, np.ndarray]]:
    """:func:`propose_text_regions` and the stroke masks it came from, by polarity
    (``"light"``, ``"dark"``).

    The cine logic uses the strokes to tell whether a line's ink is the static
    overlay or something that moves.
    """
    p = propose_params(params)
    image = _check_image(image)
    h, w = image.shape[:2]
    found: list[tuple[Proposal, str]] = []
    strokes = {}
    for polarity in ("light", "dark"):
        masks = plane_masks(image, params=p, imaging_regions=imaging_regions,
                            polarity=polarity)
        for mask in masks:
            found.extend((q, polarity) for q in _proposals_from_mask(mask, p))
        strokes[polarity] = np.logical_or.reduce(masks)
    out = _merge(found, image, p)
    limit = p["max_area_fraction"] * h * w
    out = [q for q in out if q.box.area <= limit]
    out.sort(key=lambda q: (q.box.y0, q.box.x0))
    return out, strokes


# -- helpers -----------------------------------------------------------------------------

def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"display views are uint8, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"display views are (H,W) or (H,W,3), got {image.shape}")
    return image


def _threshold(hat: np.ndarray, inside: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Per-pixel threshold from the local median response (the texture/noise level).

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
    med = cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    t = np.maximum(p["min_contrast"], p["noise_factor"] * med + p["noise_offset"])
    # A stroke is the core of a local peak: drop anti-aliasing halos and the texture
    # between strokes, which otherwise fuse a line into one solid blob.
    k_peak = cv2.getStructuringElement(cv2.MORPH_RECT, (p["hat_kernel"], p["hat_kernel"]))
    peak = cv2.dilate(hat, k_peak).astype(np.float32)
    t = np.maximum(t, p["stroke_fraction"] * peak)
    if inside.any():
        t_in = np.maximum(p["inside_min_contrast"], p["inside_noise_factor"] * med + p["noise_offset"])
        t = np.where(inside, t_in, t)
    return t


def _proposals_from_mask(mask: np.ndarray, p: Mapping[str, Any]) -> list[Proposal]:
    """Lines of components, horizontal or vertical.

    Both groupings are made over all components; each component sides with the
    orientation whose line holds more characters, and a line is kept in the
    orientation most of its components side with.  So two columns of rotated
    text next to each other are not read across as two-letter lines, and a
    stack of short labels does not become one vertical line.
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
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(len(cand), len(cand)))
    _, labels = connected_components(graph, directed=False)
    min_chars = p["min_vertical_chars"] if vertical else p["min_line_chars"]
    out = []
    for lab in np.unique(labels):
        idx = cand[labels == lab]
        heights = hgt[idx]
        width = x1[idx].max() - x0[idx].min()
        height = y1[idx].max() - y0[idx].min()
        if len(idx) >= min_chars:
            if len(idx) >= 3 and heights.std() > p["max_line_height_cv"] * heights.mean():
                continue
            # Rotated letters share one thickness (the cap height), unlike the
            # letters of stacked horizontal lines lined up in a column.
            if vertical and (width < 1.5 * height
                             or heights.max() > p["vertical_thickness_ratio"] * heights.min()):
                continue
        elif vertical or width < p["single_char_min_aspect"] * height:
            continue
        out.append(idx)
    return out


def _pad(comps: np.ndarray, p: Mapping[str, Any], w: int, h: int) -> Box:
    box = Box(int(comps[:, 0].min()), int(comps[:, 1].min()),
              int(comps[:, 2].max()), int(comps[:, 3].max()))
    return box.expand(int(p["line_pad"]), w, h)
