"""Fuzz campaign: structure-aware mutations of real DICOM files through a real batch.

Each case is one seed file and one mutation aimed at a place decoders trust: the
file truncated at an element boundary (or inside a header), an element length made
huge or off by a few bytes, a VR rewritten, Rows/Columns/NumberOfFrames/
BitsAllocated/SamplesPerPixel that lie, an encapsulated fragment's item length
changed, bytes flipped inside a JPEG or JPEG 2000 code stream, random byte flips.
:func:`run_campaign` scrubs the mutated files with :func:`pixelscrub.batch.run_batch`
and checks what a batch promises, case by case: the batch returns, every file gets
exactly one record, every failure is one line that names the file and gives a
reason, nothing half-written is left, inputs are unchanged, and every output reads
back as DICOM with pixel data.

The test suite runs a bounded smoke campaign; ``benchmarks/fuzz.py`` a long one.
"""
from __future__ import annotations

import json
import random
import struct
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import pydicom

__all__ = ["SEEDS", "MUTATIONS", "Element", "elements", "mutate", "CampaignResult",
           "run_campaign"]

#: pydicom's bundled files the campaign starts from: uncompressed, RLE, JPEG
#: baseline/extended/lossless, JPEG-LS, JPEG 2000, multi-frame, 8-16 bit.
SEEDS = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm",
         "JPGExtended.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
         "SC_rgb_small_odd_jpeg.dcm", "examples_jpeg2k.dcm", "SC_rgb_rle_16bit_2frame.dcm")

_LYING_TAGS = {"Rows": 0x00280010, "Columns": 0x00280011, "NumberOfFrames": 0x00280008,
               "BitsAllocated": 0x00280100, "SamplesPerPixel": 0x00280002}


@dataclass(frozen=True)
class Element:
    """Where one top-level element sits in the file: its header's offset, the
    offset and length of its value (``length`` 0xFFFFFFFF: undefined), and whether
    its header carries an explicit VR."""

    tag: int
    start: int
    value: int
    length: int
    explicit: bool


def elements(data: bytes) -> list[Element]:
    """The top-level elements of a Part 10 file (file meta included), in order."""
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), defer_size=1, force=True)
    out = []
    for source, explicit in ((ds.file_meta, True), (ds, not ds.original_encoding[0])):
        for tag in source.keys():
            raw = source._dict[tag]
            tell = getattr(raw, "value_tell", None)
            if tell is None:
                continue
            length = raw.length
            vr = getattr(raw, "VR", None)
            head = 8 if not explicit else (12 if vr in ("OB", "OW", "OF", "SQ", "UT", "UN",
                                                        "OD", "OL", "OV", "UC", "UR")
                                           else 8)
            out.append(Element(int(tag), tell - head, tell, length, explicit))
    return sorted(out, key=lambda e: e.start)


def _fragments(data: bytes, pixel: Element) -> list[tuple[int, int]]:
    """(offset of the item length field, item length) of each encapsulated item."""
    out, pos = [], pixel.value
    while pos + 8 <= len(data):
        tag_group, tag_elem, length = struct.unpack_from("<HHI", data, pos)
        if (tag_group, tag_elem) != (0xFFFE, 0xE000):
            break
        out.append((pos + 4, length))
        pos += 8 + length
    return out


# -- mutations: each takes the file's bytes and a Random, returns new bytes ----------------

def _truncate_at_boundary(data: bytes, rng: random.Random) -> bytes:
    el = rng.choice(elements(data))
    cut = rng.choice([el.start, el.start + 2, el.start + 4, el.value,
                      el.value + max(0, min(el.length, 1 << 30)) // 2])
    return data[:max(0, min(cut, len(data) - 1))]


def _huge_length(data: bytes, rng: random.Random) -> bytes:
    el = rng.choice(elements(data))
    out = bytearray(data)
    at = el.value - 4
    out[at:at + 4] = struct.pack("<I", rng.choice([0xFFFFFFF0, 0x7FFFFFFF, len(data) * 4]))
    return bytes(out)


def _length_off_by_some(data: bytes, rng: random.Random) -> bytes:
    el = rng.choice([e for e in elements(data) if e.length != 0xFFFFFFFF] or elements(data))
    out = bytearray(data)
    at = el.value - 4
    if el.explicit and at - el.start == 6:   # short explicit header: 2-byte length
        length = struct.unpack_from("<H", out, at + 2)[0]
        out[at + 2:at + 4] = struct.pack("<H", max(0, min(0xFFFF, length + rng.choice([-4, -1, 1, 2, 64]))))
    else:
        length = struct.unpack_from("<I", out, at)[0]
        out[at:at + 4] = struct.pack("<I", max(0, (length + rng.choice([-4, -1, 1, 2, 64])) & 0xFFFFFFFF))
    return bytes(out)


def _wrong_vr(data: bytes, rng: random.Random) -> bytes:
    short = [e for e in elements(data) if e.explicit and e.value - e.start == 8
             and e.tag > 0x0002FFFF]
    if not short:
        return _length_off_by_some(data, rng)
    el = rng.choice(short)
    out = bytearray(data)
    out[el.start + 4:el.start + 6] = rng.choice([b"UL", b"SQ", b"OB", b"DA", b"ZZ", b"\x00\x00"])
    return bytes(out)


def _lying_pixel_module(data: bytes, rng: random.Random) -> bytes:
    import io
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        name = rng.choice(list(_LYING_TAGS))
        current = str(ds.get(name, ""))
        value = rng.choice([v for v in {"Rows": [0, 1, 3, 65535], "Columns": [0, 2, 65535],
                                        "NumberOfFrames": [0, 2, 7, 100000, -1],
                                        "BitsAllocated": [0, 1, 12, 24, 64],
                                        "SamplesPerPixel": [0, 2, 3, 4]}[name]
                            if str(v) != current])
        if name == "NumberOfFrames":
            ds.NumberOfFrames = str(value)
        else:
            setattr(ds, name, max(0, value))
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _bad_fragment_length(data: bytes, rng: random.Random) -> bytes:
    pixel = [e for e in elements(data) if e.tag == 0x7FE00010]
    frags = _fragments(data, pixel[0]) if pixel and pixel[0].length == 0xFFFFFFFF else []
    if not frags:
        return _huge_length(data, rng)
    at, length = rng.choice(frags)
    out = bytearray(data)
    out[at:at + 4] = struct.pack("<I", rng.choice([0, 1, 3, max(0, length - 7), length + 9,
                                                   0xFFFFFFFF, len(data)]))
    return bytes(out)


def _broken_code_stream(data: bytes, rng: random.Random) -> bytes:
    pixel = [e for e in elements(data) if e.tag == 0x7FE00010]
    frags = _fragments(data, pixel[0]) if pixel and pixel[0].length == 0xFFFFFFFF else []
    frags = [f for f in frags if f[1] > 16]
    if not frags:
        return _random_flips(data, rng)
    at, length = rng.choice(frags)
    out = bytearray(data)
    start = at + 4
    # the first bytes hold the markers decoders parse first (SOI/SOF/SOS, SIZ/COD)
    for _ in range(rng.randint(1, 6)):
        i = start + min(length - 1, int(rng.expovariate(1 / 48)))
        out[i] ^= rng.randint(1, 255)
    if rng.random() < 0.3:   # or the stream cut short, with the item length kept
        cut = start + rng.randint(2, max(2, length // 2))
        out[cut:start + length] = bytes(start + length - cut)
    return bytes(out)


def _random_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= rng.randint(1, 255)
    return bytes(out)


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate-at-boundary": _truncate_at_boundary,
    "huge-length": _huge_length,
    "length-off": _length_off_by_some,
    "wrong-vr": _wrong_vr,
    "lying-pixel-module": _lying_pixel_module,
    "bad-fragment-length": _bad_fragment_length,
    "broken-code-stream": _broken_code_stream,
    "byte-flips": _random_flips,
}


def mutate(data: bytes, kind: str, seed: int) -> bytes:
    """``data`` with one mutation of ``kind`` drawn from ``seed``."""
    return MUTATIONS[kind](data, random.Random(seed))


# -- the campaign ---------------------------------------------------------------------------

@dataclass
class CampaignResult:
    """What a campaign tried and what broke; every list holds case names."""

    cases: int = 0
    by_kind: Counter = field(default_factory=Counter)
    outputs: int = 0
    failures_by_reason: Counter = field(default_factory=Counter)
    batch_crashes: list[str] = field(default_factory=list)
    missing_records: list[str] = field(default_factory=list)
    partial_outputs: list[str] = field(default_factory=list)
    inputs_modified: list[str] = field(default_factory=list)
    unnamed_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.batch_crashes or self.missing_records or self.partial_outputs
                    or self.inputs_modified or self.unnamed_failures)

    def to_json(self) -> dict:
        d = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in vars(self).items()}
        d["ok"] = self.ok
        return d


def run_campaign(seed_dir: Path, cases: int, *, seed: int = 0, batch: int = 24, jobs: int = 2,
                 kinds: Optional[Sequence[str]] = None, options=None,
                 timeout: float = 120.0) -> CampaignResult:
    """Mutate ``cases`` files drawn from :data:`SEEDS` in ``seed_dir`` and scrub them in
    batches of ``batch`` files; returns what held and what broke."""
    import time

    from ..batch import JOURNAL_NAME, PARTIAL_DIR, default_report_path, run_batch
    from ..options import ScrubOptions, parse_region

    options = options or ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),),
                                      key=b"fuzz-campaign-key-0123456789abcdef")
    rng = random.Random(seed)
    kinds = list(kinds or MUTATIONS)
    seeds = [Path(seed_dir) / name for name in SEEDS if (Path(seed_dir) / name).is_file()]
    originals = {p.name: p.read_bytes() for p in seeds}
    result = CampaignResult()
    start = time.monotonic()
    done = 0
    while done < cases:
        n = min(batch, cases - done)
        with tempfile.TemporaryDirectory(prefix="pixelscrub-fuzz-") as tmp:
            src, out = Path(tmp) / "in", Path(tmp) / "out"
            src.mkdir()
            for i in range(n):
                name, kind = rng.choice(list(originals)), rng.choice(kinds)
                case = f"c{done + i:05d}-{kind}-{Path(name).stem}.dcm"
                (src / case).write_bytes(mutate(originals[name], kind, rng.randrange(1 << 30)))
                result.by_kind[kind] += 1
            before = {p.name: p.read_bytes() for p in src.iterdir()}
            try:
                summary = run_batch([src], out, options, jobs=jobs, progress="none",
                                    timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - the one thing that must never happen
                result.batch_crashes.append(f"batch of {n}: {type(exc).__name__}")
                done += n
                continue
            _check_batch(Path(tmp), src, out, before, default_report_path(out), result,
                         journal=JOURNAL_NAME, partial=PARTIAL_DIR)
            result.outputs += summary.files_out
        done += n
    result.cases = done
    result.seconds = time.monotonic() - start
    return result


def _check_batch(tmp: Path, src: Path, out: Path, before: dict, report: Path,
                 result: CampaignResult, *, journal: str, partial: str) -> None:
    recs = [json.loads(line) for line in report.read_text().splitlines()]
    files = recs[:-1]
    named = Counter(r["input"] for r in files)
    result.missing_records += [n for n in before if named[n] != 1]
    after = {p.name: p.read_bytes() for p in src.iterdir()}
    result.inputs_modified += [n for n in before if after.get(n) != before[n]]
    if (out / partial).exists():
        result.partial_outputs.append(f"{partial} left behind")
    written = {r["output"] for r in files if r.get("output")}
    for path in out.rglob("*"):
        if path.is_file() and path.name != journal and f"{out.name}/{path.name}" not in written:
            result.partial_outputs.append(path.name)
    for r in files:
        if r["status"] == "failed":
            reason = (r.get("error") or "")[len(r["input"]) + 2:]
            if (not (r.get("error") or "").startswith(r["input"] + ": ") or not reason
                    or "\n" in r["error"]):
                result.unnamed_failures.append(r["input"])
            result.failures_by_reason[_reason_kind(reason)] += 1
        elif r.get("output"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(tmp / r["output"])
                if "PixelData" not in ds:
                    raise ValueError("no pixel data")
            except Exception:  # noqa: BLE001
                result.partial_outputs.append(r["input"])


def _reason_kind(reason: str) -> str:
    """A failure reason without its numbers: the row of the campaign's table."""
    words = []
    for word in reason.replace(",", " ").split():
        if any(c.isdigit() for c in word):
            break
        words.append(word)
        if len(words) == 7:
            break
    return " ".join(words) or "(empty)"
