"""Synthetic set generator: determinism, decodability, truth consistent with pixels/header."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pixelscrub.records import Box
from pixelscrub.synth import CASES, generate_set, read_truth
from pixelscrub.synth.__main__ import main as synth_main
from pixelscrub.synth.canvas import Canvas
from pixelscrub.synth.truth import decode_mask, encode_mask


@pytest.fixture(scope="module", params=[False, True], ids=["fixed", "vary"])
def synset(request, tmp_path_factory):
    """One file of every case, with each case's fixed look and with per-file styles."""
    out = tmp_path_factory.mktemp("syn")
    files = generate_set(out, len(CASES), seed=11, vary=request.param)
    return out, files


def _decoded(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames == 1:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[..., None]
    return ds, arr.astype(np.float64)


@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
@settings(max_examples=60, deadline=None)
def test_mask_rle_round_trip(mask):
    runs = encode_mask(mask)
    assert sum(runs) == mask.size
    assert np.array_equal(decode_mask(runs, *mask.shape), mask)


def test_decode_mask_rejects_wrong_size():
    with pytest.raises(ValueError):
        decode_mask([1, 2], 2, 2)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_set(tmp_path / "a", 3, seed=5)
    b = generate_set(tmp_path / "b", 3, seed=5)
    c = generate_set(tmp_path / "c", 3, seed=6)
    for fa, fb, fc in zip(a, b, c):
        assert fa.dicom.read_bytes() == fb.dicom.read_bytes()
        assert fa.truth.read_bytes() == fb.truth.read_bytes()
        assert fa.dicom.read_bytes() != fc.dicom.read_bytes()


def test_every_case_decodes_with_declared_geometry(synset):
    _, files = synset
    assert {f.case for f in files} == set(CASES)
    for f in files:
        t = read_truth(f.truth)
        ds, arr = _decoded(f.dicom)
        assert str(ds.file_meta.TransferSyntaxUID) == t.transfer_syntax
        assert arr.shape == (t.frames, t.rows, t.columns, t.samples), f.case
        assert str(ds.SOPInstanceUID) == t.sop_instance_uid
        assert t.file == f.dicom.name


def test_several_transfer_syntaxes_and_photometrics(synset):
    _, files = synset
    truths = [read_truth(f.truth) for f in files]
    assert len({t.transfer_syntax for t in truths}) >= 5
    assert {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL_422"} <= {t.photometric for t in truths}


def test_ink_is_visible_against_its_surroundings(synset):
    """Each item's ink differs from the non-ink pixels of its box in the decoded file."""
    _, files = synset
    for f in files:
        t = read_truth(f.truth)
        _, arr = _decoded(f.dicom)
        scale = 4095.0 if arr.max() > 255 else 255.0
        for it in t.items:
            frame = (it.frames or (0,))[0]
            crop = arr[frame, it.box.y0:it.box.y1, it.box.x0:it.box.x1]
            assert it.ink is not None and it.ink.shape == crop.shape[:2]
            assert it.ink.any(), it.text
            ink = crop[it.ink].mean(axis=0)
            ring = crop[~it.ink].mean(axis=0) if (~it.ink).any() else ink
            assert np.abs(ink - ring).max() / scale > 0.04, (f.case, it.text)


def test_items_inside_image_and_not_overlapping(synset):
    _, files = synset
    for f in files:
        t = read_truth(f.truth)
        for i, a in enumerate(t.items):
            assert Box(0, 0, t.columns, t.rows).contains(a.box)
            for b in t.items[i + 1:]:
                same = a.frames is None or b.frames is None or set(a.frames) & set(b.frames)
                assert not (same and a.box.intersects(b.box)), (f.case, a.text, b.text)


def test_header_and_burned_in_phi_agree(synset):
    _, files = synset
    for f in files:
        t = read_truth(f.truth)
        ds = pydicom.dcmread(f.dicom, stop_before_pixels=True)
        names = [it for it in t.items if it.why == "header:PatientName"]
        for it in names:
            family, given_ = str(ds.PatientName).split("^")
            words = it.text.upper().replace(",", " ").replace("^", " ").split()
            assert set(words) <= {family, given_}, it.text
        for it in t.items:
            if it.why.startswith("header:"):
                assert it.is_phi
                kw = it.why.split(":", 1)[1]
                assert str(ds.get(kw, "")).strip(), (f.case, kw)


def test_categories_have_their_defining_properties(synset):
    _, files = synset
    by_case = {f.case: read_truth(f.truth) for f in files}
    for case in ("negative_blank", "negative_nonphi", "negative_lookalike"):
        assert not any(it.is_phi for it in by_case[case].items)
    assert not by_case["negative_blank"].items
    for case in ("stripped_us", "stripped_report"):
        t = by_case[case]
        assert t.header_phi == {}
        phi = [it for it in t.items if it.is_phi]
        assert phi and all(it.why.startswith("pattern:") for it in phi)
    conf = by_case["hard_confusable"]
    pid = conf.header_phi["PatientID"]
    shown = [it.text for it in conf.items if it.why == "header:PatientID"]
    assert shown and shown[0] != pid and len(shown[0]) == len(pid)
    assert any(it.rotation == 90 for it in by_case["hard_rotated"].items)
    tiny = [it for it in by_case["hard_tiny"].items if it.is_phi]
    assert tiny and max(it.cap_height for it in tiny) <= 7.0
    split = [it for it in by_case["hard_split"].items if "split" in it.tags]
    assert len(split) == 2 and split[0].box.y1 <= split[1].box.y0


def test_cine_has_static_overlay_and_dynamic_text(synset):
    _, files = synset
    t = read_truth(next(f.truth for f in files if f.case == "us_cine"))
    assert t.frames >= 20
    static = [it for it in t.items if it.frames is None]
    dynamic = [it for it in t.items if it.frames is not None]
    assert static and dynamic
    clock = [it for it in dynamic if it.is_phi]
    covered = sorted(f for it in clock for f in it.frames)
    assert covered == list(range(t.frames)) and len(clock) >= 2
    assert clock[0].why == "header:StudyTime"
    assert {it.why for it in clock[1:]} == {"pattern:time"}


def test_canvas_refuses_overlapping_and_out_of_bounds_text():
    c = Canvas(np.zeros((1, 60, 200, 1), np.uint8))
    c.draw("ABC", 5, 5, is_phi=False, why="nonphi:x", color=255, cap=10)
    with pytest.raises(ValueError):
        c.draw("DEF", 8, 6, is_phi=False, why="nonphi:x", color=255, cap=10)
    with pytest.raises(ValueError):
        c.draw("WIDE TEXT", 190, 5, is_phi=False, why="nonphi:x", color=255, cap=10)


def test_cli_writes_requested_count(tmp_path, capsys):
    assert synth_main(["--out", str(tmp_path), "--count", "2", "--seed", "3",
                       "--cases", "sc_report"]) == 0
    assert len(list((tmp_path / "dicom").glob("*.dcm"))) == 2
    assert len(list((tmp_path / "truth").glob("*.json"))) == 2
    assert "wrote 2 files" in capsys.readouterr().out


#: The OpenCV release sample_data/ was drawn with: its Hershey glyph metrics decide
#: every text box, so only it reproduces the committed pixels exactly.
SAMPLE_DATA_OPENCV = "5.0."


def test_committed_sample_data_is_what_its_readme_command_makes(tmp_path):
    """sample_data/ must stay reproducible from the command in its README: the same
    files, patients, cases and texts with any OpenCV; the same pixels and truth
    bytes with the OpenCV release it was drawn with."""
    import re
    from pathlib import Path

    import cv2
    root = Path(__file__).resolve().parent.parent / "sample_data"
    m = re.search(r"--count (\d+) --seed (\d+)", (root / "README.md").read_text())
    assert m, "README lost its generation command"
    files = generate_set(tmp_path, int(m.group(1)), seed=int(m.group(2)))
    committed = sorted(p.name for p in (root / "dicom").glob("*.dcm"))
    assert committed == sorted(f.dicom.name for f in files)
    exact = cv2.__version__.startswith(SAMPLE_DATA_OPENCV)
    for f in files:
        new_truth, old_truth = read_truth(f.truth), read_truth(root / "truth" / f.truth.name)
        assert (new_truth.case, new_truth.header_phi) == (old_truth.case, old_truth.header_phi)
        assert sorted((it.text, it.is_phi, it.why) for it in new_truth.items) == sorted(
            (it.text, it.is_phi, it.why) for it in old_truth.items), f.case
        ds_new, new = _decoded(f.dicom)
        ds_old, old = _decoded(root / "dicom" / f.dicom.name)
        assert str(ds_new.PatientName) == str(ds_old.PatientName)
        assert new.shape == old.shape
        if not exact:
            continue
        assert f.truth.read_bytes() == (root / "truth" / f.truth.name).read_bytes(), f.case
        # Pixels, not bytes: a newer codec library may pack the same pixels differently,
        # and a newer JPEG encoder may round a lossy file slightly differently.
        if ds_old.file_meta.TransferSyntaxUID != pydicom.uid.JPEGBaseline8Bit:
            assert np.array_equal(new, old), f.case
        else:
            assert np.abs(new - old).mean() < 1.0, f.case


def test_vary_changes_the_look_but_not_the_content(tmp_path):
    fixed = generate_set(tmp_path / "f", len(CASES), seed=8)
    varied = generate_set(tmp_path / "v", len(CASES), seed=8, vary=True)
    fonts_fixed = {it.font for f in fixed for it in read_truth(f.truth).items}
    fonts_varied = {it.font for f in varied for it in read_truth(f.truth).items}
    assert len(fonts_varied) > len(fonts_fixed)
    for a, b in zip(fixed, varied):
        ta, tb = read_truth(a.truth), read_truth(b.truth)
        assert (ta.case, ta.header_phi) == (tb.case, tb.header_phi)
        assert sum(it.is_phi for it in ta.items) == sum(it.is_phi for it in tb.items)
        assert any(n.startswith("style:") for n in tb.notes)
