"""Scene builders: one function per kind of synthetic file.

Each builder takes a seeded generator and an identity and returns a :class:`Canvas`
with its text items plus a :class:`SceneSpec` saying how to write it as DICOM. Layouts
imitate real devices: an ultrasound header band and parameter side panel, a CT dose
sheet, a viewer screenshot with a patient banner, a typed report page, a radiograph
with a low-contrast corner label, and the hard cases issue #3 names.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from ..records import Box
from . import backgrounds as bg
from .canvas import Canvas
from .identity import (DATE_STYLES, NAME_STYLES, Identity, confusable, format_date,
                       format_name, format_time)
from .text import FONTS

__all__ = ["SceneSpec", "Style", "draw_style", "SCENES", "CATEGORY_OF", "build_scene"]

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"

EXPLICIT_LE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


@dataclass(frozen=True)
class SceneSpec:
    """How to write a scene as DICOM.

    ``stripped`` files keep no PHI in the header (it was removed upstream) while the
    pixels still show it. ``bits_stored`` is 8 or 12 (12 stored in 16 allocated).
    """

    category: str
    case: str
    modality: str
    sop_class: str
    photometric: str
    transfer_syntax: str
    bits_stored: int = 8
    stripped: bool = False
    burned_in: str = "YES"
    frame_time_ms: Optional[float] = None
    window: Optional[tuple[float, float]] = None
    description: str = ""
    manufacturer: str = "ACME Imaging"
    model: str = "SonoSynth 5"
    notes: tuple[str, ...] = field(default_factory=tuple)
    jpeg_quality: int = 90


_LABELS = (("Name:", "ID:", "DOB:"), ("Patient:", "PID:", "Birth:"), ("NAME", "MRN", "D.O.B."),
           ("Pt:", "Pat ID", "DOB"))


@dataclass(frozen=True)
class Style:
    """One file's look when a set is generated with ``vary=True``.

    Without it every case keeps its fixed look (the committed sample set); with it
    fonts, sizes, printed forms, label words, offsets and colours change per file, so
    a benchmark set is not the layout a detector was tuned on. Case-defining traits
    (tiny text, odd dates, the confusable ID) always win over the style.
    """

    font: str
    cap: float
    name_style: str
    date_style: str
    dob_style: str
    labels: tuple[str, str, str]
    dx: int
    dy: int
    value_rgb: tuple[int, int, int]

    def smaller(self) -> "Style":
        """The same style one pixel smaller (used when a layout does not fit)."""
        return Style(**{**self.__dict__, "cap": max(7.0, self.cap - 1.0), "dx": 0, "dy": 0})


def draw_style(rng: np.random.Generator) -> Style:
    """A random :class:`Style`."""
    fonts = list(FONTS)
    return Style(
        font=fonts[int(rng.integers(len(fonts)))], cap=float(rng.integers(8, 14)),
        name_style=NAME_STYLES[int(rng.integers(len(NAME_STYLES)))],
        date_style=DATE_STYLES[int(rng.integers(len(DATE_STYLES)))],
        dob_style=DATE_STYLES[int(rng.integers(len(DATE_STYLES)))],
        labels=_LABELS[int(rng.integers(len(_LABELS)))],
        dx=int(rng.integers(0, 16)), dy=int(rng.integers(0, 10)),
        value_rgb=tuple(int(v) for v in rng.integers(150, 256, size=3)),
    )


def _why(header_kw: str, kind: str, stripped: bool) -> str:
    """A PHI reason: the header attribute it came from, or a pattern kind when the header
    was stripped or holds no such value (``header_kw`` empty)."""
    return f"pattern:{kind}" if stripped or not header_kw else f"header:{header_kw}"


class _Writer:
    """Draws label/value runs left to right on a canvas with shared style."""

    def __init__(self, canvas: Canvas, *, font: str, cap: float, color, stripped: bool,
                 thickness: int = 1, antialias: bool = True, tags: tuple[str, ...] = ()):
        self.c = canvas
        self.font, self.cap, self.color = font, cap, color
        self.stripped, self.thickness, self.antialias = stripped, thickness, antialias
        self.tags = tags

    @property
    def space(self) -> int:
        return max(3, int(round(self.cap * 0.7)))

    @property
    def line_height(self) -> int:
        return int(round(self.cap * 1.9)) + 2

    def width(self, text: str) -> int:
        return self.c.size(text, self.font, self.cap)[0]

    def put(self, x: int, y: int, text: str, phi: Optional[tuple[str, str]] = None, *,
            color=None, frames=None, tags: tuple[str, ...] = (), nonphi: str = "label",
            cap: Optional[float] = None, rotation: int = 0) -> int:
        """Draw one item; ``phi`` is ``(header keyword, pattern kind)`` or ``None``.

        Returns the x just after the item plus one space.
        """
        cap = cap or self.cap
        item = self.c.draw(
            text, x, y, is_phi=phi is not None,
            why=_why(*phi, self.stripped) if phi else f"nonphi:{nonphi}",
            color=self.color if color is None else color, font=self.font, cap=cap,
            thickness=self.thickness, antialias=self.antialias, rotation=rotation,
            frames=frames, tags=self.tags + tags)
        return item.box.x1 + self.space

    def run(self, x: int, y: int, parts, **kw) -> int:
        """Draw ``parts`` = [(text, phi-or-None), ...] on one line."""
        for text, phi in parts:
            x = self.put(x, y, text, phi, **kw)
        return x

    def right(self, x_right: int, y: int, text: str, phi=None, **kw) -> int:
        """Draw one item right-aligned at ``x_right``."""
        w = self.width(text)
        return self.put(x_right - w - 2, y, text, phi, **kw)


NAME = ("PatientName", "name")
PID = ("PatientID", "id")
DOB = ("PatientBirthDate", "date")
STUDY_DATE = ("StudyDate", "date")
STUDY_TIME = ("StudyTime", "time")
ACC = ("AccessionNumber", "id")
INST = ("InstitutionName", "institution")
REF = ("ReferringPhysicianName", "name")
OPER = ("OperatorsName", "name")


def _color(rgb: tuple[int, int, int], samples: int, gray: Optional[int] = None):
    if samples == 3:
        return rgb
    return gray if gray is not None else int(round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]))


# --------------------------------------------------------------------------- ultrasound

def _us_canvas(rng, rows, cols, frames, samples, *, tint=False) -> Canvas:
    img = bg.ultrasound_frames(rng, rows, cols, frames,
                               fan_box=(int(cols * 0.12), int(rows * 0.12),
                                        int(cols * 0.82), rows))
    pix = np.rint(img * 235).astype(np.uint8)[..., None]
    if samples == 3:
        pix = np.repeat(pix, 3, axis=3)
        if tint:  # a colour-Doppler-like blob inside the sector
            f, h, w, _ = pix.shape
            yy, xx = np.mgrid[0:h, 0:w]
            blob = ((xx - w * 0.47) ** 2 + (yy - h * 0.45) ** 2) < (min(h, w) * 0.07) ** 2
            blob &= img[0] > 0.05
            pix[:, blob, 0] = 200
            pix[:, blob, 2] = np.clip(pix[:, blob, 2].astype(int) // 3, 0, 255)
    return Canvas(pix)


def _us_overlay(c: Canvas, rng, ident: Identity, *, stripped: bool, font: str, cap: float,
                samples: int, name_style: str = "comma", date_style: str = "us",
                dob_style: str = "us", pid_text: Optional[str] = None,
                tags: tuple[str, ...] = (), phi: bool = True, params: bool = True,
                frames=None, labels: tuple[str, str, str] = _LABELS[0], dx: int = 0,
                dy: int = 0, value_rgb: tuple[int, int, int] = (255, 230, 90)) -> None:
    """The header band (institution, name, ID, DOB, date/time) and parameter panel."""
    cols = c.columns
    w = _Writer(c, font=font, cap=cap, color=_color((235, 235, 235), samples),
                stripped=stripped, tags=tags)
    val = _color(value_rgb, samples, 250)
    x0, y = 4 + dx, 4 + dy
    if phi:
        x = w.put(x0, y, ident.institution, INST, frames=frames)
        w.right(cols - 2 - dx, y, format_date(ident.study_date, date_style), STUDY_DATE,
                color=val, frames=frames)
        y += w.line_height
        x = w.put(x0, y, labels[0], frames=frames)
        x = w.put(x, y, format_name(ident.family, ident.given, name_style), NAME, color=val,
                  frames=frames)
        x = w.put(x + w.space, y, labels[1], frames=frames)
        x = w.put(x, y, pid_text or ident.patient_id, PID, color=val, frames=frames)
        time_text = format_time(ident.study_time)
        # Right-aligned on the name line; one line lower where a font's wider glyphs
        # (OpenCV's Hershey metrics change between releases) leave no room there.
        time_y = y if cols - 2 - dx - w.width(time_text) >= x + w.space else y + w.line_height
        w.right(cols - 2 - dx, time_y, time_text, STUDY_TIME, color=val, frames=frames)
        y += w.line_height
        x = w.put(x0, y, labels[2], frames=frames)
        w.put(x, y, format_date(ident.birth_date, dob_style), DOB, color=val, frames=frames)
    if params:
        pw = _Writer(c, font=font, cap=max(cap - 1, 7), color=_color((120, 230, 120), samples, 200),
                     stripped=stripped, tags=tags)
        depth = int(rng.integers(6, 19))
        lines = [f"C5-1", "Abd Gen", f"TIS {rng.uniform(0.1, 1.5):.1f}",
                 f"MI {rng.uniform(0.3, 1.6):.1f}", f"Gain {int(rng.integers(30, 80))}",
                 f"DR {int(rng.integers(50, 75))} dB", f"{depth} cm",
                 f"FR {int(rng.integers(12, 40))}Hz"]
        y = int(c.rows * 0.25)
        x_panel = int(cols * 0.84)
        for text in lines:
            if y + pw.line_height > c.rows:
                break
            pw.put(x_panel, y, text, nonphi="parameter", frames=frames)
            y += pw.line_height


def us_single(rng, ident, *, samples: int, photometric: str, ts: str, stripped=False,
              case="us", category="us", style: Optional[Style] = None,
              defaults: Optional[dict] = None, **fixed) -> tuple[Canvas, SceneSpec]:
    """A single-frame ultrasound; ``defaults`` give way to ``style``, ``fixed`` never do."""
    c = _us_canvas(rng, 384, 512, 1, samples, tint=samples == 3)
    font = ["simplex", "duplex", "plain", "complex_small"][int(rng.integers(4))]
    overlay = {"cap": float(rng.choice([9, 10, 11, 12])), **(defaults or {})}
    if style is not None:
        font = style.font
        overlay.update(cap=style.cap, name_style=style.name_style,
                       date_style=style.date_style, dob_style=style.dob_style,
                       labels=style.labels, dx=style.dx, dy=style.dy,
                       value_rgb=style.value_rgb)
    overlay.update(fixed)
    _us_overlay(c, rng, ident, stripped=stripped, font=font, samples=samples, **overlay)
    spec = SceneSpec(category, case, "US", US_IMAGE, photometric, ts, stripped=stripped,
                     description="US ABDOMEN")
    return c, spec


def us_gray(rng, ident, style=None):
    return us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=EXPLICIT_LE,
                     case="us_gray", style=style,
                     defaults=dict(name_style="comma", date_style="us"))


def us_rgb(rng, ident, style=None):
    return us_single(rng, ident, samples=3, photometric="RGB", ts=RLE, case="us_rgb",
                     style=style,
                     defaults=dict(name_style="caret", date_style="iso", dob_style="iso"))


def us_ybr(rng, ident, style=None):
    return us_single(rng, ident, samples=3, photometric="YBR_FULL_422", ts=JPEG_BASELINE,
                     case="us_ybr", style=style,
                     defaults=dict(name_style="given_first", date_style="eu_dot",
                                   dob_style="eu_dot"))


def us_jpegls(rng, ident, style=None):
    return us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=JPEG_LS,
                     case="us_jpegls", style=style,
                     defaults=dict(name_style="space", date_style="dicom", dob_style="iso"))


def us_cine(rng, ident, style=None, frames: int = 20):
    """A multi-frame loop: static header/panel, a ticking clock (PHI), a frame counter."""
    rows, cols = 240, 320
    c = _us_canvas(rng, rows, cols, frames, 1)
    font = style.font if style else "simplex"
    cap = min(style.cap, 10.0) if style else 9.0
    looks = (dict(name_style=style.name_style, date_style=style.date_style,
                  dob_style=style.dob_style, labels=style.labels) if style
             else dict(name_style="comma", date_style="dd_mon_yy"))
    _us_overlay(c, rng, ident, stripped=False, font=font, cap=cap, samples=1, **looks)
    w = _Writer(c, font=font, cap=cap, color=230, stripped=False)
    fps = 10
    start = dt.datetime.combine(ident.study_date, ident.study_time)
    y = rows - w.line_height - 2
    groups: dict[str, list[int]] = {}
    for f in range(frames):
        t = (start + dt.timedelta(seconds=f / fps)).time()
        groups.setdefault(format_time(t), []).append(f)
    for text, fr in groups.items():
        # The first second shows the header's StudyTime; later ones are times of day
        # no header attribute holds, so only a time pattern can find them.
        why = "header:StudyTime" if text == format_time(ident.study_time) else "pattern:time"
        c.draw(text, 4, y, is_phi=True, why=why, color=230, font=font, cap=cap,
               frames=fr, tags=("dynamic",))
    for f in range(frames):
        w.right(cols - 2, y, f"{f + 1}/{frames}", frames=[f], nonphi="frame_counter",
                tags=("dynamic",))
    spec = SceneSpec("us_cine", "us_cine", "US", US_MULTIFRAME, "MONOCHROME2", JPEG_BASELINE,
                     frame_time_ms=1000.0 / fps, description="US CARDIAC LOOP")
    return c, spec


# --------------------------------------------------------------------------- screens

def sc_dose(rng, ident, style=None):
    """A CT dose report screenshot: black page, white monospaced-looking table."""
    rows, cols = 512, 512
    c = Canvas(np.zeros((1, rows, cols, 1), np.uint8))
    w = _Writer(c, font=style.font if style else "plain", cap=9.0, color=235,
                stripped=False, antialias=False)
    y = 10
    w.put(10, y, "Dose Report", nonphi="title", cap=12)
    y += 30
    x = w.put(10, y, "Patient Name:")
    w.put(x, y, format_name(ident.family, ident.given, "caret"), NAME)
    y += w.line_height
    x = w.put(10, y, "Patient ID:")
    w.put(x, y, ident.patient_id, PID)
    y += w.line_height
    x = w.put(10, y, "Accession:")
    w.put(x, y, ident.accession, ACC)
    y += w.line_height
    x = w.put(10, y, "Exam Date:")
    x = w.put(x, y, format_date(ident.study_date, "mon_dd_yyyy"), STUDY_DATE)
    w.put(x + 6, y, format_time(ident.study_time, seconds=False), STUDY_TIME)
    y += 2 * w.line_height
    cols_x = [10, 70, 170, 280, 380]
    for x, head in zip(cols_x, ["Series", "Type", "Scan Range", "CTDIvol", "DLP"]):
        w.put(x, y, head, nonphi="table")
    y += w.line_height
    total = 0.0
    for s in range(1, int(rng.integers(3, 6)) + 1):
        ctdi = rng.uniform(2, 25)
        dlp = ctdi * rng.uniform(10, 40)
        total += dlp
        row = [str(s), ["Scout", "Helical", "Axial"][min(s - 1, 2)] if s < 4 else "Helical",
               f"I{int(rng.integers(0, 300))}-S{int(rng.integers(0, 300))}", f"{ctdi:.2f}",
               f"{dlp:.1f}"]
        for x, cell in zip(cols_x, row):
            w.put(x, y, cell, nonphi="table")
        y += w.line_height
    y += w.line_height
    w.put(10, y, f"Total DLP: {total:.1f} mGy-cm", nonphi="table")
    y += w.line_height
    w.put(10, y, "Phantom: Body 32 cm", nonphi="table")
    spec = SceneSpec("sc", "sc_dose", "CT", SECONDARY_CAPTURE, "MONOCHROME2", EXPLICIT_LE,
                     description="DOSE REPORT", model="CT Synth 64")
    return c, spec


def sc_viewer(rng, ident, style=None):
    """A viewer screenshot: patient banner over a radiograph, UI text around it."""
    rows, cols = 400, 640
    pix = np.zeros((1, rows, cols, 3), np.uint8)
    pix[...] = (38, 40, 46)
    c = Canvas(pix)
    c.fill(Box(0, 0, cols, 44), (20, 60, 130))
    xr = bg.radiograph(rng, 320, 300)
    c.pixels[0, 60:380, 170:470, :] = np.rint(xr * 255).astype(np.uint8)[..., None]
    w = _Writer(c, font=style.font if style else "duplex", cap=11.0, color=(255, 255, 255),
                stripped=False)
    x = w.put(8, 6, format_name(ident.family, ident.given, "comma"), NAME)
    x = w.put(x + 12, 6, f"{ident.sex}", nonphi="sex")
    x = w.put(x + 12, 6, "MRN", nonphi="label")
    w.put(x, 6, ident.patient_id, PID)
    y2 = 6 + w.line_height
    x = w.put(8, y2, "DOB", nonphi="label")
    x = w.put(x, y2, format_date(ident.birth_date, "us"), DOB)
    x = w.put(x + 12, y2, "Study", nonphi="label")
    w.put(x, y2, format_date(ident.study_date, "us"), STUDY_DATE)
    ui = _Writer(c, font="simplex", cap=8.0, color=(200, 200, 200), stripped=False)
    y = 60
    for text in ["Series 1", "CHEST PA", "Series 2", "CHEST LAT"]:
        ui.put(8, y, text, nonphi="ui")
        y += ui.line_height
    ui.put(480, 60, f"W: {int(rng.integers(300, 2000))} L: {int(rng.integers(-100, 600))}",
           nonphi="ui")
    ui.put(480, 60 + ui.line_height, "Zoom 100%", nonphi="ui")
    ui.put(480, 380, "Im: 1/1", nonphi="ui")
    spec = SceneSpec("sc", "sc_viewer", "OT", SECONDARY_CAPTURE, "RGB", JPEG_LS,
                     description="SCREEN CAPTURE", model="ViewStation")
    return c, spec


_FINDINGS = [
    "The liver is normal in size and echotexture.",
    "No focal hepatic lesion is identified.",
    "The gallbladder is well distended without stones.",
    "Common bile duct measures 4 mm.",
    "Both kidneys are normal in size without hydronephrosis.",
    "The spleen measures 10.2 cm.",
    "No free fluid in the abdomen.",
]


def sc_report(rng, ident, style=None, *, split_name: bool = False, stripped: bool = False,
              case="sc_report", category="sc"):
    """A typed report page: white background, black paragraph text, PHI in the heading."""
    rows, cols = 640, 512
    c = Canvas(np.full((1, rows, cols, 1), 245, np.uint8))
    tags = ("split",) if split_name else ()
    w = _Writer(c, font=style.font if style else "complex", cap=10.0, color=20,
                stripped=stripped)
    labels = ("Patient:", "MRN:", "DOB:") if style is None else style.labels
    y = 16
    w.put(16, y, ident.institution, INST, cap=13)
    y += 34
    w.put(16, y, "ULTRASOUND REPORT", nonphi="title", cap=12)
    y += 32
    x = w.put(16, y, labels[0])
    if split_name:
        w.put(x, y, ident.family + ",", NAME, tags=tags)
        y += w.line_height
        w.put(x, y, ident.given, NAME, tags=tags)
    else:
        w.put(x, y, format_name(ident.family, ident.given, "given_first"), NAME)
    y += w.line_height
    x = w.put(16, y, labels[1])
    x = w.put(x, y, ident.patient_id, PID)
    x = w.put(x + 20, y, labels[2])
    w.put(x, y, format_date(ident.birth_date, "us"), DOB)
    y += w.line_height
    x = w.put(16, y, "Referring:")
    rf, rg = ident.referring.split("^")
    w.put(x, y, f"Dr. {rg.title()} {rf.title()}", REF)
    y += 2 * w.line_height
    w.put(16, y, "FINDINGS:", nonphi="title")
    y += w.line_height
    order = rng.permutation(len(_FINDINGS))[:5]
    for i in order:
        w.put(16, y, _FINDINGS[int(i)], nonphi="paragraph")
        y += w.line_height
    y += w.line_height
    w.put(16, y, "IMPRESSION: Normal abdominal ultrasound.", nonphi="paragraph")
    y += 2 * w.line_height
    x = w.put(16, y, "Dictated on")
    w.put(x, y, format_date(ident.study_date, "mon_dd_yyyy"), STUDY_DATE)
    spec = SceneSpec(category, case, "OT", SECONDARY_CAPTURE, "MONOCHROME2", RLE,
                     stripped=stripped, description="REPORT", model="ReportWriter")
    return c, spec


# --------------------------------------------------------------------------- radiographs

def _xr(rng, ident, *, mono1: bool, ts: str, case: str, style=None):
    rows, cols = 640, 528
    img = bg.radiograph(rng, rows, cols)
    stored = np.rint(img * 3000 + 400)
    if mono1:
        stored = 4095 - stored
    c = Canvas(stored.astype(np.uint16)[None, ..., None])

    font = style.font if style else "simplex"

    def low_contrast(x: int, y: int, text: str, cap: float) -> int:
        """A label value about 450 levels (of 4096) off the background it sits on."""
        tw, th = c.size(text, font, cap)
        local = float(np.median(stored[y:y + th + 2, x:x + tw + 2]))
        return int(local + (450 if local < 2048 else -450))

    w = _Writer(c, font=font, cap=10.0, color=0, stripped=False, tags=("low_contrast",))
    y = 8
    for text, phi, cap in [(format_name(ident.family, ident.given, "space"), NAME, 10.0),
                           (ident.patient_id, PID, 10.0),
                           (format_date(ident.study_date, "dd_mon_yy"), STUDY_DATE, 10.0),
                           (ident.institution, INST, 8.0)]:
        w.put(8, y, text, phi, cap=cap, color=low_contrast(8, y, text, cap))
        y += w.line_height
    mark = int(4095 - 200) if not mono1 else 200
    w.put(cols - 40, 30, "R", nonphi="marker", color=mark, cap=20, tags=())
    w.put(cols - 120, rows - 24, "PA ERECT", nonphi="view",
          color=low_contrast(cols - 120, rows - 24, "PA ERECT", 10.0))
    window = (2000.0, 3600.0)
    spec = SceneSpec("xr", case, "DX", DX_PRESENTATION,
                     "MONOCHROME1" if mono1 else "MONOCHROME2", ts, bits_stored=12,
                     window=window, description="CHEST PA", model="DR Synth")
    return c, spec


def xr_mono2(rng, ident, style=None):
    return _xr(rng, ident, mono1=False, ts=J2K_LOSSLESS, case="xr_mono2", style=style)


def xr_mono1(rng, ident, style=None):
    return _xr(rng, ident, mono1=True, ts=JPEG_LS, case="xr_mono1", style=style)


# --------------------------------------------------------------------------- hard cases

def hard_tiny(rng, ident, style=None):
    return us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=EXPLICIT_LE,
                     case="hard_tiny", category="hard", style=style, cap=7.0,
                     tags=("tiny",))


def hard_odd_date(rng, ident, style=None):
    return us_single(rng, ident, samples=3, photometric="RGB", ts=JPEG_LS,
                     case="hard_odd_date", category="hard", style=style,
                     date_style="dd_mon_yy", dob_style="mon_dd_yyyy", tags=("odd_date",))


def hard_confusable(rng, ident, style=None):
    pid = ident.patient_id
    digits = list(pid)
    digits[2], digits[-2] = "0", "8"
    pid = "".join(digits)
    ident = Identity(**{**ident.__dict__, "patient_id": pid})
    shown = confusable(pid, rng)
    c, spec = us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=RLE,
                        case="hard_confusable", category="hard", style=style,
                        pid_text=shown, tags=("confusable",))
    return c, spec, ident


def hard_rotated(rng, ident, style=None):
    """Vertical side label (text turned 90 degrees) with name and ID, plus a normal panel."""
    c, spec = us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=EXPLICIT_LE,
                        case="hard_rotated", category="hard", style=style, phi=False)
    font = style.font if style else "duplex"
    w = _Writer(c, font=font, cap=11.0, color=235, stripped=False, tags=("rotated",))
    text = format_name(ident.family, ident.given, style.name_style if style else "comma")
    g_h = c.size(text, font, 11.0)[0]
    w.put(6, c.rows - g_h - 20, text, NAME, rotation=90)
    g2 = c.size(ident.patient_id, font, 11.0)[0]
    w.put(30, c.rows - g2 - 20, ident.patient_id, PID, rotation=90)
    return c, spec


def hard_speckle(rng, ident, style=None):
    """Name, ID and date written straight over the speckle inside the sector."""
    c = _us_canvas(rng, 384, 512, 1, 1)
    w = _Writer(c, font=style.font if style else "simplex", cap=12.0, color=255,
                stripped=False, tags=("speckle",))
    x0, y0 = 200, 170
    w.put(x0, y0, format_name(ident.family, ident.given, "comma"), NAME)
    w.put(x0, y0 + w.line_height, ident.patient_id, PID)
    w.put(x0, y0 + 2 * w.line_height, format_date(ident.study_date, "us"), STUDY_DATE)
    w.put(x0, y0 + 3 * w.line_height, "LIVER RT LOBE", nonphi="annotation")
    spec = SceneSpec("hard", "hard_speckle", "US", US_IMAGE, "MONOCHROME2", JPEG_LS,
                     description="US ABDOMEN")
    return c, spec


def hard_split(rng, ident, style=None):
    return sc_report(rng, ident, style=style, split_name=True, case="hard_split",
                     category="hard")


# --------------------------------------------------------------------------- negatives, stripped

def negative_blank(rng, ident, style=None):
    c, spec = us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=EXPLICIT_LE,
                        case="negative_blank", category="negative", style=style, phi=False,
                        params=False)
    return c, SceneSpec(**{**spec.__dict__, "burned_in": "NO"})


def negative_nonphi(rng, ident, style=None):
    return us_single(rng, ident, samples=3, photometric="RGB", ts=RLE,
                     case="negative_nonphi", category="negative", style=style, phi=False)


def stripped_us(rng, ident, style=None):
    return us_single(rng, ident, samples=1, photometric="MONOCHROME2", ts=EXPLICIT_LE,
                     case="stripped_us", category="stripped", style=style, stripped=True)


def stripped_report(rng, ident, style=None):
    return sc_report(rng, ident, style=style, stripped=True, case="stripped_report",
                     category="stripped")


def us_side_panel(rng, ident, style=None):
    """Another vendor's layout: patient block in a left panel, parameters along the bottom.

    Colour text on a YBR JPEG; the name is printed given-name first over two labels.
    """
    rows, cols = 384, 512
    c = _us_canvas(rng, rows, cols, 1, 3)
    c.fill(Box(0, 0, 118, rows), (18, 22, 40))
    w = _Writer(c, font=style.font if style else "complex_small", cap=9.0,
                color=(150, 200, 255), stripped=False)
    val = (255, 255, 255)
    y = 8
    for label, text, phi in [
            ("Pat:", format_name(ident.family, ident.given, "given_first"), NAME),
            ("ID:", ident.patient_id, PID),
            ("Born:", format_date(ident.birth_date, "iso"), DOB),
            ("Exam:", format_date(ident.study_date, "iso"), STUDY_DATE),
            ("At:", format_time(ident.study_time, seconds=False), STUDY_TIME)]:
        w.put(4, y, label)
        y += w.line_height
        w.put(10, y, text, phi, color=val)
        y += w.line_height + 4
    words = ident.institution.split()
    half = (len(words) + 1) // 2
    for part in (" ".join(words[:half]), " ".join(words[half:])):
        if part:
            w.put(4, y, part, INST, color=(200, 200, 120), tags=("split",))
            y += w.line_height
    pw = _Writer(c, font="simplex", cap=8.0, color=(120, 230, 120), stripped=False)
    x = 124
    for text in [f"MI {rng.uniform(0.3, 1.6):.1f}", f"TIb {rng.uniform(0.1, 1.5):.1f}",
                 f"{int(rng.integers(3, 16))}cm", f"G{int(rng.integers(30, 80))}%",
                 "L12-5"]:
        x = pw.put(x, rows - 14, text, nonphi="parameter") + 8
    spec = SceneSpec("us", "us_side_panel", "US", US_IMAGE, "YBR_FULL_422", JPEG_BASELINE,
                     description="US THYROID", model="Sonara 9")
    return c, spec


def negative_lookalike(rng, ident, style=None):
    """Only non-PHI text that looks like PHI: measurements, ratios, counters, a clip time.

    Tests over-redaction: a tool that blacks these out loses clinical information.
    """
    c = _us_canvas(rng, 384, 512, 1, 1)
    w = _Writer(c, font=style.font if style else "simplex", cap=10.0, color=235,
                stripped=False)
    lines = [f"D1 {rng.uniform(5, 60):.1f} mm", f"D2 {rng.uniform(5, 60):.1f} mm",
             f"Vol {rng.uniform(2, 90):.1f} ml", f"HR {int(rng.integers(55, 110))} bpm",
             f"EF {int(rng.integers(40, 70))}%", f"RI {rng.uniform(0.5, 0.8):.2f}",
             f"{int(rng.integers(2, 9))}/12", f"{rng.uniform(2, 4.5):.1f}MHz"]
    y = 10
    for text in lines:
        w.put(6, y, text, nonphi="measurement")
        y += w.line_height
    w.put(430, 10, "Clip 0:12", nonphi="clip_length")
    w.put(430, 10 + w.line_height, "L/R", nonphi="orientation")
    spec = SceneSpec("negative", "negative_lookalike", "US", US_IMAGE, "MONOCHROME2", RLE,
                     burned_in="YES", description="US ABDOMEN")
    return c, spec


def hard_lowq_jpeg(rng, ident, style=None):
    """An old export: colour ultrasound saved as JPEG at quality 45 (ringing round text)."""
    c, spec = us_single(rng, ident, samples=3, photometric="YBR_FULL_422", ts=JPEG_BASELINE,
                        case="hard_lowq_jpeg", category="hard", style=style,
                        defaults=dict(name_style="comma", date_style="us"),
                        tags=("low_quality",))
    return c, SceneSpec(**{**spec.__dict__, "jpeg_quality": 45})


def hard_inverse(rng, ident, style=None):
    """Dark text on a light banner (the polarity of most pages, rare on scanners)."""
    c = _us_canvas(rng, 384, 512, 1, 1)
    c.fill(Box(0, 0, 512, 44), (215,))
    font = style.font if style else "duplex"
    w = _Writer(c, font=font, cap=11.0, color=25, stripped=False, tags=("inverse",))
    x = w.put(6, 6, format_name(ident.family, ident.given, "comma"), NAME)
    x = w.put(x + 10, 6, ident.patient_id, PID)
    w.right(506, 6, format_date(ident.study_date, "us"), STUDY_DATE)
    x = w.put(6, 6 + w.line_height, "Exam:", nonphi="label")
    w.put(x, 6 + w.line_height, "RENAL", nonphi="annotation")
    w.right(506, 6 + w.line_height, format_time(ident.study_time), STUDY_TIME)
    spec = SceneSpec("hard", "hard_inverse", "US", US_IMAGE, "MONOCHROME2", EXPLICIT_LE,
                     description="US RENAL")
    return c, spec


def hard_name_in_sentence(rng, ident, style=None):
    """A report whose paragraph mentions the patient and a date mid-sentence.

    Only those words are PHI; the rest of each line must survive.
    """
    rows, cols = 400, 512
    c = Canvas(np.full((1, rows, cols, 1), 245, np.uint8))
    w = _Writer(c, font=style.font if style else "complex", cap=10.0, color=20,
                stripped=False, tags=("in_sentence",))
    y = 20
    w.put(16, y, "CLINICAL HISTORY", nonphi="title", cap=12)
    y += 32
    x = w.put(16, y, "Mr." if ident.sex == "M" else "Ms.", nonphi="paragraph")
    x = w.put(x, y, ident.family.title(), NAME)
    w.put(x, y, "presents with right upper quadrant pain.", nonphi="paragraph")
    y += w.line_height
    x = w.put(16, y, "Prior study on", nonphi="paragraph")
    x = w.put(x, y, format_date(ident.study_date - dt.timedelta(days=200), "us"),
              ("", "date"))  # no header attribute holds a prior study's date
    w.put(x, y, "showed no gallstones.", nonphi="paragraph")
    y += w.line_height
    x = w.put(16, y, "Discussed with Dr.", nonphi="paragraph")
    rf, rg = ident.referring.split("^")
    x = w.put(x, y, rf.title(), REF)
    w.put(x, y, "by phone.", nonphi="paragraph")
    y += 2 * w.line_height
    for i in rng.permutation(len(_FINDINGS))[:3]:
        w.put(16, y, _FINDINGS[int(i)], nonphi="paragraph")
        y += w.line_height
    spec = SceneSpec("hard", "hard_name_in_sentence", "OT", SECONDARY_CAPTURE, "MONOCHROME2",
                     RLE, description="REPORT", model="ReportWriter")
    return c, spec


#: Every scene builder by case name, in the order a set cycles through them.
SCENES: dict[str, Callable] = {
    "us_gray": us_gray, "us_rgb": us_rgb, "us_ybr": us_ybr, "us_jpegls": us_jpegls,
    "us_cine": us_cine,
    "sc_dose": sc_dose, "sc_viewer": sc_viewer, "sc_report": sc_report,
    "xr_mono2": xr_mono2, "xr_mono1": xr_mono1,
    "hard_tiny": hard_tiny, "hard_rotated": hard_rotated, "hard_speckle": hard_speckle,
    "hard_split": hard_split, "hard_odd_date": hard_odd_date,
    "hard_confusable": hard_confusable,
    "negative_blank": negative_blank, "negative_nonphi": negative_nonphi,
    "stripped_us": stripped_us, "stripped_report": stripped_report,
    # Added after the first sample set: new cases go last, so a set's first files stay
    # byte-identical for the same seed.
    "us_side_panel": us_side_panel, "negative_lookalike": negative_lookalike,
    "hard_lowq_jpeg": hard_lowq_jpeg, "hard_inverse": hard_inverse,
    "hard_name_in_sentence": hard_name_in_sentence,
}

CATEGORY_OF = {
    "us_gray": "us", "us_rgb": "us", "us_ybr": "us", "us_jpegls": "us", "us_cine": "us_cine",
    "sc_dose": "sc", "sc_viewer": "sc", "sc_report": "sc", "xr_mono2": "xr",
    "xr_mono1": "xr", "negative_blank": "negative", "negative_nonphi": "negative",
    "stripped_us": "stripped", "stripped_report": "stripped",
    "us_side_panel": "us", "negative_lookalike": "negative",
    **{k: "hard" for k in SCENES if k.startswith("hard_")},
}


def build_scene(case: str, rng: np.random.Generator, ident: Identity,
                style: Optional[Style] = None) -> tuple[Canvas, SceneSpec, Identity]:
    """Build scene ``case``; returns the identity actually shown (some cases adjust it)."""
    out = SCENES[case](rng, ident, style)
    if len(out) == 3:
        return out
    c, spec = out
    return c, spec, ident
