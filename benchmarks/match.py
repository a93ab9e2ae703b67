"""Match-stage benchmark: word-level precision/recall and speed on synthetic overlays.

Each case is a random header (name, IDs, dates, times, institution, physician)
and the overlay lines a scanner would burn in: PHI written in a random form
(name order, date format, ...) and measurement / settings lines ("TIS 0.4",
"12.5 cm", "W:400 L:40"...).  OCR noise is applied to the words: confusable
characters swapped (O/0, I/1/l, S/5, B/8, Z/2, G/6), punctuation lost, two
words merged.  Every word carries its truth (PHI or not).

Reported for ``match_words`` in phi mode with the header's terms and with no
terms (header already stripped: pattern and label rules only): word precision,
word recall, measurement words redacted, and words per second.

Then the committed ``sample_data``: every truth item (PHI or not) scored against
the hits for words taken from the truth text (perfect OCR) and, with ``--ocr``,
from pixelscrub's own OCR of the pixels.  Usage::

    .venv/bin/python benchmarks/match.py [--cases 400] [--seed 7] [--ocr] [--out FILE]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.dataset import Dataset  # noqa: E402

from pixelscrub.match import match_words  # noqa: E402
from pixelscrub.phi_terms import phi_terms_from_header  # noqa: E402
from pixelscrub.records import Box, Word  # noqa: E402

SURNAMES = ["SMITH", "JOHNSON", "GARCIA", "MULLER", "DUBOIS", "ROSSI", "JANSEN", "SILVA",
            "NGUYEN", "KOWALSKI", "OBRIEN", "LI", "KIM", "PATEL", "ANDERSSON", "FISCHER",
            "MARTIN", "LOPEZ", "BROWN", "TANAKA", "OKAFOR", "HANSEN", "COHEN", "WAGNER"]
GIVEN = ["JOHN", "ANNA", "MARIA", "PETER", "SOPHIE", "LUCA", "EMMA", "JAN", "WEI", "FATIMA",
         "OLIVER", "CLARA", "DAVID", "ELENA", "HUGO", "MIA", "JO", "AHMED", "LEA", "TOM"]
INSTITUTIONS = ["SAINT MARY HOSPITAL", "CITY IMAGING CENTER", "KLINIKUM NORD",
                "HOPITAL SAINT LOUIS", "OSPEDALE MAGGIORE", "RIVERSIDE CLINIC"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

MEASUREMENTS = [
    lambda r: ["TIS", f"{r.randint(0, 30) / 10}"], lambda r: ["MI", f"{r.randint(1, 19) / 10}"],
    lambda r: [f"{r.randint(1, 300) / 10}", "cm"], lambda r: [f"{r.randint(30, 90)}", "dB"],
    lambda r: [f"{r.randint(10, 150) / 10}MHz"], lambda r: ["FR", f"{r.randint(8, 60)}Hz"],
    lambda r: [f"{r.choice([64, 128, 256, 512])}x{r.choice([64, 128, 256, 512])}"],
    lambda r: ["kVp", f"{r.choice([80, 100, 120, 140])}"],
    lambda r: ["mAs", f"{r.randint(20, 400)}"],
    lambda r: [f"W:{r.randint(50, 2000)}", f"L:{r.randint(-500, 500)}"],
    lambda r: ["Im:", f"{r.randint(1, 300)}/{r.randint(300, 600)}"], lambda r: ["1:1"],
    lambda r: ["Gain", f"{r.randint(0, 100)}"], lambda r: ["Depth", f"{r.randint(2, 24)}cm"],
    lambda r: [r.choice(["C5-1", "L12-5", "P4-2", "S5-1"])], lambda r: ["DR", f"{r.randint(40, 90)}"],
    lambda r: ["Se:", f"{r.randint(1, 20)}"], lambda r: [f"{r.randint(1, 99)}.{r.randint(0, 9)}", "mm"],
    lambda r: ["HR", f"{r.randint(50, 120)}", "bpm"], lambda r: ["Zoom", f"{r.randint(10, 40) / 10}"],
    lambda r: ["PRF", f"{r.randint(10, 90) / 10}", "kHz"], lambda r: ["ANT"], lambda r: ["R"],
]

#: words on PHI lines that are labels: neither PHI nor wrong to redact
LABELS = {"Dr", "DOB:", "MRN", "ID:", "Name:", "Acc#"}

CONFUSE = {"O": "0", "0": "O", "I": "1", "1": "l", "S": "5", "5": "S", "B": "8", "8": "B",
           "Z": "2", "2": "Z", "G": "6", "6": "G"}


def _date(r: random.Random) -> date:
    return date(1930, 1, 1) + timedelta(days=r.randint(0, 365 * 90))


def _date_text(r: random.Random, d: date) -> list[str]:
    forms = [f"{d:%Y%m%d}", f"{d:%Y-%m-%d}", f"{d:%m/%d/%Y}", f"{d:%d/%m/%Y}", f"{d:%d.%m.%Y}",
             f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year}",
             f"{d.day:02d}-{MONTHS[d.month - 1].upper()}-{d.year % 100:02d}",
             f"{MONTHS[d.month - 1]} {d.day} {d.year}", f"{d.month}/{d.day}/{d.year % 100:02d}"]
    return r.choice(forms).split()


def _case(r: random.Random):
    fam, giv = r.choice(SURNAMES), r.choice(GIVEN)
    pid = r.choice([f"{r.randint(10**6, 10**8)}", f"{r.choice('ABCDMRX')}{r.randint(10**5, 10**7)}",
                    f"{r.randint(1000, 99999)}{r.choice('ABCDEFGH')}{r.randint(10, 99)}"])
    dob, study = _date(r), date(2024, 1, 1) + timedelta(days=r.randint(0, 700))
    hh, mm, ss = r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)
    inst, ref = r.choice(INSTITUTIONS), (r.choice(SURNAMES), r.choice(GIVEN))
    ds = Dataset()
    ds.PatientName = f"{fam}^{giv}"
    ds.PatientID = pid
    ds.PatientBirthDate = f"{dob:%Y%m%d}"
    ds.StudyDate = f"{study:%Y%m%d}"
    ds.StudyTime = f"{hh:02d}{mm:02d}{ss:02d}"
    ds.InstitutionName = inst
    ds.ReferringPhysicianName = f"{ref[0]}^{ref[1]}"
    ds.AccessionNumber = f"{r.randint(10**7, 10**9)}"
    name_forms = [[f"{fam},", giv], [giv.title(), fam.title()], [f"{giv[0]}.", fam], [fam, giv],
                  [f"{fam}^{giv}"], [fam]]
    phi_lines = [
        r.choice(name_forms), r.choice([[pid], ["MRN", pid], ["ID:", pid]]),
        r.choice([[], ["DOB:"]]) + _date_text(r, dob), _date_text(r, study),
        r.choice([[f"{hh:02d}:{mm:02d}:{ss:02d}"], [f"{hh:02d}:{mm:02d}"]]),
        inst.split(), ["Dr", ref[1].title(), ref[0].title()], [ds.AccessionNumber],
    ]
    lines = [(ln, True) for ln in r.sample(phi_lines, r.randint(3, len(phi_lines)))]
    lines += [(m(r), False) for m in r.sample(MEASUREMENTS, r.randint(4, 10))]
    r.shuffle(lines)
    return ds, lines


def _noisy(r: random.Random, texts: list[str], truth: list, rate: float):
    """OCR noise: confusable characters, lost trailing punctuation, two words merged."""
    out = []
    for t, phi in zip(texts, truth):
        t = "".join(CONFUSE[c] if c in CONFUSE and r.random() < rate else c for c in t)
        if r.random() < rate and t[-1:] in ",.":
            t = t[:-1]
        out.append((t, phi))
    if len(out) > 1 and r.random() < rate:
        i = r.randrange(len(out) - 1)
        (a, pa), (b, pb) = out[i:i + 2]
        out[i:i + 2] = [(a + b, True if (pa or pb) else pa)]
    return [(t, phi) for t, phi in out if t]


def _words(lines, r, rate):
    """Words laid out one line each; truth per word: True PHI, False not, None a label."""
    words, truth, y = [], [], 10
    for li, (texts, phi) in enumerate(lines):
        x = 10
        flags = [None if phi and t in LABELS else phi for t in texts]
        for i, (t, flag) in enumerate(_noisy(r, texts, flags, rate)):
            w = 8 * len(t)
            words.append(Word(t, Box(x, y, x + w, y + 12), 90.0, li, i))
            truth.append(flag)
            x += w + 8
        y += 40
    return words, truth


def run(cases: int, seed: int, rate: float) -> dict[str, dict[str, float]]:
    r = random.Random(seed)
    data = []
    for _ in range(cases):
        ds, lines = _case(r)
        words, truth = _words(lines, r, rate)
        data.append((phi_terms_from_header(ds), words, truth))
    results = {}
    for label, use_terms in (("header terms", True), ("no header (patterns only)", False)):
        tp = fp = fn = n_words = 0
        t0 = time.perf_counter()
        for terms, words, truth in data:
            hits = match_words(words, terms if use_terms else [])
            red = [any(h.box.contains(w.box) for h in hits) for w in words]
            for is_red, is_phi in zip(red, truth):
                if is_phi is None:
                    continue
                n_words += 1
                tp += is_red and is_phi
                fp += is_red and not is_phi
                fn += is_phi and not is_red
        secs = time.perf_counter() - t0
        total = sum(len(w) for _, w, _ in data)
        results[label] = {
            "words": n_words, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "measurement words redacted": fp, "PHI words missed": fn,
            "words/s": total / secs, "ms/image": 1000 * secs / len(data)}
    return results


def _truth_words(items):
    """Perfect-OCR words of a sample file's truth items: items side by side on a
    row share a line; word boxes split the item box by character position."""
    rows: list[dict] = []
    for it in sorted(items, key=lambda it: (it["box"][1], it["box"][0])):
        x0, y0, x1, y1 = it["box"]
        frames = tuple(it["frames"]) if it["frames"] is not None else None
        for row in rows:
            h = min(y1 - y0, row["y1"] - row["y0"])
            if (row["frames"] == frames and min(y1, row["y1"]) - max(y0, row["y0"]) > h / 2
                    and 0 <= x0 - row["x1"] < 3 * h):
                row["items"].append(it)
                row["x1"] = x1
                break
        else:
            rows.append({"x1": x1, "y0": y0, "y1": y1, "frames": frames, "items": [it]})
    words = []
    for li, row in enumerate(rows):
        for it in row["items"]:
            x0, y0, x1, y1 = it["box"]
            text, pos = it["text"], 0
            for part in text.split(" "):
                a = x0 + (x1 - x0) * pos // len(text)
                b = x0 + (x1 - x0) * (pos + len(part)) // len(text)
                words.append(Word(part, Box(a, y0, max(a + 1, b), y1), 90.0, li, len(words),
                                  row["frames"]))
                pos += len(part) + 1
    return words


def _ocr_words(path: Path):
    from pixelscrub.decode import image_info, iter_display
    from pixelscrub.detect import detect_words
    from pixelscrub.dicomio import read_dataset
    from pixelscrub.ocr import get_engine
    from pixelscrub.propose import ultrasound_regions
    ds = read_dataset(path)
    det = detect_words(lambda: iter_display(ds), image_info(ds).frames, engine=get_engine("auto"),
                       imaging_regions=ultrasound_regions(ds))
    return det.words


def _covered(item, hits) -> float:
    """Fraction of the item's box under hit boxes of its frames."""
    import numpy as np
    b = Box(*item["box"])
    mask = np.zeros((b.height, b.width), bool)
    for h in hits:
        if item["frames"] is not None and h.frames is not None \
                and not set(item["frames"]) & set(h.frames):
            continue
        i = h.box.intersection(b)
        if not i.is_empty():
            mask[i.y0 - b.y0:i.y1 - b.y0, i.x0 - b.x0:i.x1 - b.x0] = True
    return float(mask.mean()) if mask.size else 0.0


def sample_data(ocr: bool) -> dict[str, float]:
    """Item-level scores on ``sample_data``: a PHI item counts as found when 90 % of
    its box is under hits, a non-PHI item as hit when more than 20 % is."""
    import json
    import pydicom
    folder = ROOT / "sample_data"
    found = missed = wrong = nonphi = words = 0
    secs = 0.0
    for path in sorted((folder / "truth").glob("*.json")):
        truth = json.loads(path.read_text())
        dcm = folder / "dicom" / truth["file"]
        ws = _ocr_words(dcm) if ocr else _truth_words(truth["items"])
        terms = phi_terms_from_header(pydicom.dcmread(dcm, stop_before_pixels=True))
        t0 = time.perf_counter()
        hits = match_words(ws, terms)
        secs += time.perf_counter() - t0
        words += len(ws)
        for it in truth["items"]:
            cov = _covered(it, hits)
            if it["is_phi"]:
                found += cov >= 0.9
                missed += cov < 0.9
            else:
                nonphi += 1
                wrong += cov > 0.2
    return {"PHI items": found + missed, "found": found, "missed": missed,
            "non-PHI items": nonphi, "non-PHI hit": wrong, "words/s": words / max(secs, 1e-9)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--noise", type=float, default=0.08, help="per-character confusion rate")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--ocr", action="store_true",
                    help="also score sample_data with words from pixelscrub's OCR (Tesseract)")
    args = ap.parse_args(argv)
    lines = [f"# Match benchmark: {args.cases} synthetic images, seed {args.seed}, "
             f"OCR confusion rate {args.noise}", "",
             "| terms | words | precision | recall | non-PHI words redacted | PHI words missed "
             "| words/s | ms/image |", "|---|---|---|---|---|---|---|---|"]
    for label, m in run(args.cases, args.seed, args.noise).items():
        lines.append(f"| {label} | {m['words']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                     f"{m['measurement words redacted']} | {m['PHI words missed']} | "
                     f"{m['words/s']:.0f} | {m['ms/image']:.2f} |")
    lines += ["", "## sample_data (committed synthetic DICOMs, their headers and truth)", "",
              "| words from | PHI items | found | missed | non-PHI items | non-PHI hit | words/s |",
              "|---|---|---|---|---|---|---|"]
    for label, ocr in (("truth text (perfect OCR)", False), ("pixelscrub OCR", True)):
        if ocr and not args.ocr:
            continue
        m = sample_data(ocr)
        lines.append(f"| {label} | {m['PHI items']} | {m['found']} | {m['missed']} | "
                     f"{m['non-PHI items']} | {m['non-PHI hit']} | {m['words/s']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
