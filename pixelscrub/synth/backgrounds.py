"""Image content under the text: ultrasound sectors, radiographs, screen pages.

Each function returns a float64 image (0..1 unless said otherwise) from a seeded
generator, so text can be blended on top and the file encoded at any bit depth.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["fan_mask", "ultrasound_frames", "radiograph", "flat_page"]


def fan_mask(height: int, width: int, *, apex_y: float = -0.05, angle_deg: float = 70.0,
             r0: float = 0.12, r1: float = 0.95, cx: float = 0.5) -> np.ndarray:
    """Boolean mask of a sector (curvilinear probe field of view), sizes relative to height."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ay = apex_y * height
    ax = cx * width
    r = np.hypot(xx - ax, yy - ay)
    theta = np.degrees(np.arctan2(xx - ax, yy - ay))
    return (np.abs(theta) <= angle_deg / 2) & (r >= r0 * height) & (r <= r1 * height)


def ultrasound_frames(rng: np.random.Generator, height: int, width: int, frames: int = 1,
                      *, fan_box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(frames, height, width) B-mode-like speckle in a sector, black outside it.

    Tissue is a smooth random echogenicity map with a dark cyst; speckle is
    Rayleigh-distributed and drifts slowly between frames, as in a cine loop.
    ``fan_box`` (x0, y0, x1, y1) limits the sector to part of the image.
    """
    x0, y0, x1, y1 = fan_box or (0, 0, width, height)
    h, w = y1 - y0, x1 - x0
    mask = fan_mask(h, w)
    tissue = cv2.GaussianBlur(rng.random((h, w)), (0, 0), sigmaX=max(h, w) / 14)
    tissue = (tissue - tissue.min()) / (np.ptp(tissue) + 1e-9)
    tissue = 0.35 + 0.65 * tissue
    yy, xx = np.mgrid[0:h, 0:w]
    cyst = ((xx - w * rng.uniform(0.35, 0.65)) ** 2 / (w * 0.08) ** 2
            + (yy - h * rng.uniform(0.45, 0.7)) ** 2 / (h * 0.06) ** 2) < 1
    tissue[cyst] *= 0.12
    depth_gain = np.linspace(1.0, 0.65, h)[:, None]
    out = np.zeros((frames, height, width))
    # Speckle is the magnitude of a complex Gaussian field; mixing fields with weights
    # whose squares sum to one keeps it Rayleigh-distributed while it decorrelates.
    field = rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))
    for f in range(frames):
        if f:
            fresh = rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))
            field = 0.9 * field + np.sqrt(1 - 0.81) * fresh
        speckle = np.abs(field) / np.sqrt(2)
        sp = cv2.GaussianBlur(speckle, (0, 0), sigmaX=0.8, sigmaY=1.4)
        img = np.clip(tissue * depth_gain * sp / 1.6, 0, 1)
        img[~mask] = 0.0
        out[f, y0:y1, x0:x1] = img
    return out


def radiograph(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A chest-radiograph-like image in 0..1 (bright bone/soft tissue, dark lungs and air)."""
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    body = np.exp(-(((xx - 0.5) / 0.42) ** 6 + ((yy - 0.55) / 0.55) ** 6))
    lungs = (np.exp(-(((xx - 0.33) / 0.12) ** 2 + ((yy - 0.45) / 0.22) ** 2))
             + np.exp(-(((xx - 0.67) / 0.12) ** 2 + ((yy - 0.45) / 0.22) ** 2)))
    spine = np.exp(-((xx - 0.5) / 0.04) ** 2) * (yy > 0.1)
    ribs = 0.08 * (np.sin(yy * 60 + np.abs(xx - 0.5) * 14) > 0.6) * (lungs > 0.2)
    img = 0.15 + 0.6 * body - 0.35 * lungs + 0.25 * spine + ribs
    img += cv2.GaussianBlur(rng.normal(0, 0.04, (height, width)), (0, 0), 3)
    img += rng.normal(0, 0.008, (height, width))
    return np.clip(img, 0, 1)


def flat_page(height: int, width: int, level: float) -> np.ndarray:
    """A flat page of brightness ``level`` (screens and report backgrounds)."""
    return np.full((height, width), float(level))
