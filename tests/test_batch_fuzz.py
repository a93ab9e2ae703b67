"""Property: mutated real DICOM files (truncated, bytes flipped) never crash a batch,
never leave a partial output, and every file gets exactly one record."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pydicom
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import pydicom_file
from pixelscrub.batch import JOURNAL_NAME, run_batch
from pixelscrub.options import ScrubOptions, parse_region

SOURCES = ["CT_small.dcm", "SC_rgb_rle.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_jpeg_gdcm.dcm"]
OPTS = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),), key=b"k" * 32)

mutation = st.tuples(
    st.sampled_from(SOURCES),
    st.floats(0.0, 1.0),  # keep this fraction of the file
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=6),  # xor bytes
)


def mutate(name: str, keep: float, flips) -> bytes:
    data = bytearray(pydicom_file(name).read_bytes())
    for where, xor in flips:
        i = min(len(data) - 1, int(where * len(data)))
        data[i] ^= xor
    return bytes(data[: max(0, int(keep * len(data)))] if keep < 0.97 else data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_never_crash_or_leave_partial_output(cases):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for i, (name, keep, flips) in enumerate(cases):
            (src / f"m{i}.dcm").write_bytes(mutate(name, keep, flips))
        before = {p.name: p.read_bytes() for p in src.iterdir()}
        summary = run_batch([src], out, OPTS, jobs=2, progress="none", timeout=60)
        recs = [json.loads(l) for l in (Path(tmp) / "out-report.jsonl").read_text().splitlines()]
        assert recs[-1]["record"] == "summary"
        assert sorted(Path(r["input"]).name for r in recs[:-1]) == sorted(before)
        assert summary.files_out + summary.failed == len(cases)
        assert {p.name: p.read_bytes() for p in src.iterdir()} == before
        outputs = sorted(p.name for p in out.iterdir() if p.name != JOURNAL_NAME)
        assert outputs == sorted(Path(r["output"]).name for r in recs[:-1] if r["output"])
        for r in recs[:-1]:
            if r["status"] == "failed":
                assert r["error"].startswith(r["input"] + ": ") and "\n" not in r["error"]
            else:  # whatever was written is a whole, readable DICOM file
                ds = pydicom.dcmread(Path(tmp) / r["output"])  # named from beside OUTDIR
                assert "PixelData" in ds
        shutil.rmtree(out)
