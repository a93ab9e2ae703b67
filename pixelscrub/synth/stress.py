"""A stress set: burned-in text drawn from wider distributions than the default set's.

The default generator's look is what detection was developed on.  This one draws
what it did not see: TrueType faces from Debian's font packages (DejaVu and
Liberation: sans, serif, mono, narrow; regular, bold, italic) beside the Hershey
faces, cap heights 7-40 px, tight and wide letter spacing, text over gradients,
speckle and anatomy, contrast down to 25 grey levels, coloured text, JPEG at
quality 50-95, names and label words the default set never prints (its own name
pools, names absent from the header, physicians with titles and degrees, labels in
several languages), institutions wrapped over two lines or cut at the image edge.

Every text item is tagged with the failure kinds it exercises, so a scorer can
report each kind apart.  Same layout as the default set (``dicom/``, ``truth/``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..records import Box
from .backgrounds import radiograph, ultrasound_frames
from .canvas import Canvas
from .dicom import header_phi, write_dicom
from .identity import Identity, format_date
from .scenes import SceneSpec
from .text import Glyphs, render
from .truth import FileTruth, write_truth

__all__ = ["TRUETYPE_FACES", "HERSHEY_FACES", "available_faces", "stress_file", "stress_set"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
#: face -> (regular, bold, italic) file names, from fonts-dejavu-core and fonts-liberation.
TRUETYPE_FACES = {
    "dejavu-sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"),
    "dejavu-mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf"),
    "dejavu-serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf"),
    "liberation-sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
                        "LiberationSans-Italic.ttf"),
    "liberation-narrow": ("LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf",
                          "LiberationSansNarrow-Italic.ttf"),
    "liberation-mono": ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf",
                        "LiberationMono-Italic.ttf"),
    "liberation-serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf",
                         "LiberationSerif-Italic.ttf"),
}
HERSHEY_FACES = ("simplex", "duplex", "complex", "plain")

# Name pools of this set only: none of them is in the default generator's pools.
_FAMILY = ["Murphy", "Baker", "Okonkwo", "Halvorsen", "Castellanos", "Whitfield", "Nakamura",
           "Brennan", "Yilmaz", "Delacroix", "Kaczmarek", "Oyelaran", "Lindgren", "Ferreira",
           "Quintero", "Achterberg", "Moreau", "Szabo", "Rahimi", "Duffy"]
_GIVEN = ["Andrew", "Kimberly", "Hans", "Priya", "Tomasz", "Chiara", "Declan", "Aiko", "Rafael",
          "Leila", "Bjorn", "Yusuf", "Margot", "Esther", "Callum", "Imani", "Viktor", "Rosa"]
_INSTITUTIONS = ["Bayside Regional Medical Center", "Klinikum Am Rosenhang",
                 "Hopital Saint-Laurent", "Meadowbrook Children's Hospital",
                 "Eastgate Diagnostic Imaging", "Ospedale San Vittore"]
_LABELS = {
    "name": ["Name:", "Patient:", "Pat:", "Nom:", "Naam:", "Paciente:", "NAME", "Pt Name:"],
    "id": ["ID:", "MRN:", "Pat ID:", "PID:", "Patienten-Nr:", "MR#"],
    "dob": ["DOB:", "Birth:", "Born:", "Geb.:", "Née le:", "D.O.B.", "Date of Birth:"],
    "acc": ["Acc:", "Accession:", "Acc#"],
    "date": ["Date:", "Exam:", "Datum:", ""],
    "ref": ["Ref:", "Referring:", "Ref. Phys:", "Zuweiser:"],
    "perf": ["Perf:", "Sonographer:", "Performed by:", "Operator:"],
}
_TITLES = ["Dr.", "Dr", "Prof.", ""]
_DEGREES = [", MD", " MD", ", PhD", ""]
_PARAMETERS = ["Gain 52", "DR 60 dB", "FR 28 Hz", "MI 0.9", "TIS 0.3", "Depth 14.5 cm",
               "C5-1", "Abd General", "PW 4.0 MHz", "L 3.52 cm", "Map 3", "Persist Med",
               "THI On", "Focus 2", "WL 40 WW 400", "Img 12/48", "Zoom 1.4"]


@lru_cache(maxsize=1)
def available_faces() -> tuple[str, ...]:
    """TrueType faces whose files are installed, then the Hershey faces."""
    found = [face for face, files in TRUETYPE_FACES.items() if _font_path(files[0])]
    return tuple(found) + HERSHEY_FACES


def _font_path(name: str) -> Optional[Path]:
    return next((d / name for d in FONT_DIRS if (d / name).is_file()), None)


@lru_cache(maxsize=256)
def _truetype(face: str, variant: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_path(TRUETYPE_FACES[face][variant])), size)


def _render_truetype(text: str, face: str, cap: float, variant: int, spacing: float) -> Glyphs:
    """Coverage of ``text`` in a TrueType face at cap height ``cap`` (letter spacing in px)."""
    probe = _truetype(face, variant, 100)
    box = probe.getbbox("H")
    size = max(4, int(round(cap * 100 / max(1, box[3] - box[1]))))
    font = _truetype(face, variant, size)
    width = int(font.getlength(text) + spacing * len(text) + size)
    img = Image.new("L", (width + 8, int(size * 1.6) + 8), 0)
    draw = ImageDraw.Draw(img)
    x = 4.0
    for ch in text:
        draw.text((x, 4), ch, fill=255, font=font)
        x += font.getlength(ch) + spacing
    alpha = np.asarray(img, np.float32) / 255.0
    ys, xs = np.nonzero(alpha > 0.02)
    if ys.size == 0:
        return Glyphs(np.zeros((0, 0), np.float32), cap)
    return Glyphs(np.ascontiguousarray(alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]), cap)


@dataclass(frozen=True)
class Look:
    """How one file's text is drawn."""

    face: str
    cap: float
    variant: int       # 0 regular, 1 bold, 2 italic (TrueType only)
    spacing: float     # extra pixels between letters (TrueType only)
    background: str    # flat | gradient | speckle | anatomy
    contrast: int      # grey levels between text and its ground
    colour: bool
    jpeg: Optional[int]


def draw_look(rng: np.random.Generator) -> Look:
    faces = available_faces()
    cap = float(np.clip(rng.choice([rng.uniform(7, 10), rng.uniform(10, 18), rng.uniform(18, 40)],
                                   p=[0.3, 0.5, 0.2]), 7, 40))
    return Look(face=str(faces[rng.integers(len(faces))]), cap=round(cap, 1),
                variant=int(rng.choice([0, 1, 2], p=[0.6, 0.25, 0.15])),
                spacing=float(rng.choice([-0.5, 0.0, 0.0, 1.0, 2.5])),
                background=str(rng.choice(["flat", "gradient", "speckle", "anatomy"])),
                contrast=int(rng.choice([rng.integers(25, 60), rng.integers(60, 200)], p=[0.3, 0.7])),
                colour=bool(rng.random() < 0.3),
                jpeg=int(rng.integers(50, 96)) if rng.random() < 0.3 else None)


def _glyphs(text: str, look: Look) -> Glyphs:
    if look.face in TRUETYPE_FACES:
        return _render_truetype(text, look.face, look.cap, look.variant, look.spacing)
    return render(text, look.face, look.cap, thickness=2 if look.variant == 1 else 1)


def _background(rng, look: Look, rows: int, cols: int) -> np.ndarray:
    if look.background == "speckle":
        img = ultrasound_frames(rng, rows, cols)[0] * 200
        img += rng.uniform(0, 30)
    elif look.background == "anatomy":
        img = radiograph(rng, rows, cols).astype(np.float64)
        img = img / max(1.0, img.max()) * 210
    elif look.background == "gradient":
        lo, hi = sorted(rng.uniform(0, 200, 2))
        ramp = np.linspace(lo, hi, cols if rng.random() < 0.5 else rows)
        img = np.broadcast_to(ramp[None, :] if ramp.size == cols else ramp[:, None],
                              (rows, cols)).astype(np.float64)
    else:
        img = np.full((rows, cols), rng.uniform(0, 60))
    return np.clip(img, 0, 255)


def _identity(rng) -> tuple[Identity, str, str]:
    family, given = (str(rng.choice(_FAMILY)).upper(), str(rng.choice(_GIVEN)).upper())
    ref = (str(rng.choice(_FAMILY)), str(rng.choice(_GIVEN)))
    perf = (str(rng.choice(_FAMILY)), str(rng.choice(_GIVEN)))
    birth = dt.date(1931, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 80)))
    study = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 7)))
    t = dt.time(int(rng.integers(6, 22)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
    pid = str(int(rng.integers(10 ** 6, 10 ** 9)))
    ident = Identity(family=family, given=given, patient_id=pid, birth_date=birth,
                     sex="MF"[int(rng.integers(2))], study_date=study, study_time=t,
                     accession=f"RX{int(rng.integers(10 ** 5, 10 ** 7))}",
                     institution=str(rng.choice(_INSTITUTIONS)),
                     referring=f"{ref[0].upper()}^{ref[1].upper()}",
                     operator=f"{perf[0].upper()}^{perf[1].upper()}")
    return ident, " ".join(ref[::-1]), " ".join(perf[::-1])


def _name_form(family: str, given: str, rng) -> tuple[str, str]:
    form = str(rng.choice(["caret", "comma", "first_last", "upper_space", "caret_middle"]))
    middle = str(rng.choice(list("ABCDEGJKLMRS")))
    text = {"caret": f"{family}^{given}", "comma": f"{family.title()}, {given.title()}",
            "first_last": f"{given.title()} {family.title()}",
            "upper_space": f"{family} {given}",
            "caret_middle": f"{family}^{given}^{middle}"}[form]
    return text, form


def _lines(rng, ident: Identity, ref: str, perf: str, stripped: bool, foreign: bool):
    """(label, value, is_phi, why, tags) rows of the patient block."""
    if foreign:  # the overlay names someone the header does not
        other = [f for f in _FAMILY if f.upper() != ident.family]
        name, form = _name_form(str(rng.choice(other)).upper(), str(rng.choice(_GIVEN)).upper(), rng)
    else:
        name, form = _name_form(ident.family, ident.given, rng)
    why_name = "pattern:name" if (stripped or foreign) else "header:PatientName"
    rows = [(rng.choice(_LABELS["name"]), name, True, why_name,
             ("name", f"name-{form}") + (("name-no-header",) if stripped or foreign else ()))]
    rows.append((rng.choice(_LABELS["id"]), ident.patient_id, True,
                 "pattern:id" if stripped else "header:PatientID", ("id",)))
    dob_style = str(rng.choice(["iso", "us", "eu_dot", "dd_mon_yy", "mon_dd_yyyy"]))
    rows.append((rng.choice(_LABELS["dob"]), format_date(ident.birth_date, dob_style), True,
                 "label:DOB" if stripped else "header:PatientBirthDate", ("dob", "labelled")))
    if rng.random() < 0.5:
        rows.append((rng.choice(_LABELS["acc"]), ident.accession, True,
                     "label:Accession" if stripped else "header:AccessionNumber", ("id",)))
    study_style = str(rng.choice(["iso", "us", "eu_dot", "dd_mon_yy"]))
    rows.append((rng.choice(_LABELS["date"]),
                 f"{format_date(ident.study_date, study_style)} {ident.study_time:%H:%M}", True,
                 "pattern:date" if stripped else "header:StudyDate", ("date",)))
    for kind, who, attr in (("ref", ref, "ReferringPhysicianName"), ("perf", perf, "OperatorsName")):
        if rng.random() < 0.7:
            value = f"{rng.choice(_TITLES)} {who}{rng.choice(_DEGREES)}".strip()
            rows.append((rng.choice(_LABELS[kind]), value, True,
                         "pattern:name" if stripped else f"header:{attr}", ("physician",)))
    return rows


def _fits(canvas: Canvas, glyphs: Glyphs, x: int, y: int) -> bool:
    h, w = glyphs.alpha.shape
    return h > 0 and x + w <= canvas.columns - 2 and y + h <= canvas.rows - 2


def _text_colour(ground: float, look: Look, rng, samples: int):
    level = ground + look.contrast if ground + look.contrast <= 255 else ground - look.contrast
    level = float(np.clip(level, 0, 255))
    if samples == 1:
        return (level,)
    tint = rng.choice([(1.0, 1.0, 0.3), (0.4, 1.0, 1.0), (1.0, 0.55, 0.2), (1.0, 1.0, 1.0)])
    return tuple(float(np.clip(level * c + ground * (1 - c), 0, 255)) for c in tint)


def _place(canvas: Canvas, text: str, x: int, y: int, look: Look, rng, *, is_phi: bool,
           why: str, tags, glyphs: Optional[Glyphs] = None) -> Optional[int]:
    """Draw one item if it fits (``glyphs``: already rendered); returns its right edge."""
    glyphs = glyphs or _glyphs(text, look)
    if not _fits(canvas, glyphs, x, y):
        return None
    h, w = glyphs.alpha.shape
    ground = float(canvas.pixels[0, y:y + h, x:x + w, 0].mean())
    extra = tuple(tags) + ((f"cap-{'small' if look.cap < 10 else 'large' if look.cap > 18 else 'mid'}",
                            f"ground-{look.background}", "low-contrast" if look.contrast < 60 else
                            "contrast", f"face-{look.face}") if is_phi else ())
    try:
        canvas.place(text, glyphs, x, y, is_phi=is_phi, why=why, font=look.face,
                     color=_text_colour(ground, look, rng, canvas.shape[3]), tags=extra)
    except ValueError:  # overlaps an item already drawn
        return None
    return x + w


def build_stress(rng: np.random.Generator):
    """(canvas, spec, identity, look) of one stress image."""
    look = draw_look(rng)
    rows, cols = int(rng.integers(480, 769)), int(rng.integers(640, 1025))
    samples = 3 if look.colour else 1
    base = _background(rng, look, rows, cols)
    pixels = np.repeat(base[None, :, :, None], samples, axis=3).astype(np.uint8)
    canvas = Canvas(pixels)
    stripped, foreign = rng.random() < 0.25, rng.random() < 0.2
    ident, ref, perf = _identity(rng)
    gap = max(3, int(look.cap * 0.6))
    y = int(rng.integers(4, 20))
    x0 = int(rng.integers(4, 40))
    # the institution first: wrapped over two lines, cut at the edge, or whole
    inst, how = ident.institution, str(rng.choice(["whole", "wrapped", "cut"], p=[0.6, 0.2, 0.2]))
    why_inst = "pattern:institution" if stripped else "header:InstitutionName"
    if how == "wrapped":
        words = inst.split()
        parts = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])]
    elif how == "cut":
        parts = [inst[: max(8, int(len(inst) * rng.uniform(0.55, 0.85)))]]
    else:
        parts = [inst]
    for part in parts:
        if _place(canvas, part, x0, y, look, rng, is_phi=True, why=why_inst,
                  tags=("institution", f"institution-{how}")) is not None:
            y += int(look.cap * 1.6) + gap
    for label, value, is_phi, why, tags in _lines(rng, ident, ref, perf, stripped, foreign):
        x = x0
        if label:
            right = _place(canvas, label, x, y, look, rng, is_phi=False, why="nonphi:label", tags=())
            if right is None:
                continue
            x = right + max(4, int(look.cap * 0.7))
        if _place(canvas, value, x, y, look, rng, is_phi=is_phi, why=why, tags=tags) is not None:
            y += int(look.cap * 1.6) + gap
    # a parameter panel at the bottom right: text that must survive
    py = rows - int(rng.integers(8, 30))
    for text in rng.choice(_PARAMETERS, size=int(rng.integers(3, 7)), replace=False):
        glyphs = _glyphs(str(text), look)
        h, w = glyphs.alpha.shape
        py -= h + gap
        if py < y:
            break
        _place(canvas, str(text), max(0, cols - w - int(rng.integers(6, 40))), py, look, rng,
               is_phi=False, why="nonphi:parameter", tags=(), glyphs=glyphs)
    spec = SceneSpec(category="stress", case="stress", modality="US" if look.background == "speckle" else "OT",
                     sop_class="1.2.840.10008.5.1.4.1.1.7", photometric="MONOCHROME2",
                     transfer_syntax="1.2.840.10008.1.2.4.50" if look.jpeg else "1.2.840.10008.1.2.1",
                     stripped=stripped, jpeg_quality=look.jpeg or 90,
                     notes=(f"look: {look}",))
    return canvas, spec, ident, look


def stress_file(out: Path, index: int, seed: int) -> Path:
    """Write stress file ``index`` of ``seed`` (DICOM and truth); returns the DICOM path."""
    rng = np.random.default_rng([seed, index, 7717])
    canvas, spec, ident, look = build_stress(rng)
    name = f"{index:04d}_stress"
    dpath = Path(out) / "dicom" / f"{name}.dcm"
    ds = write_dicom(dpath, canvas.pixels, spec, ident, seed=seed + 50_000, index=index)
    frames, rows, cols, samples = canvas.pixels.shape
    truth = FileTruth(file=f"{name}.dcm", category="stress", case="stress",
                      sop_instance_uid=str(ds.SOPInstanceUID), rows=rows, columns=cols,
                      frames=frames, samples=samples, photometric=str(ds.PhotometricInterpretation),
                      transfer_syntax=str(ds.file_meta.TransferSyntaxUID), items=tuple(canvas.items),
                      header_phi=header_phi(ds), seed=seed, notes=spec.notes)
    write_truth(truth, Path(out) / "truth" / f"{name}.json")
    return dpath


def stress_set(out: Path, count: int, seed: int) -> list[Path]:
    return [stress_file(Path(out), i, seed) for i in range(count)]
