"""Redaction plans, display-black fill values, and DCT-domain JPEG redaction."""
from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid

from conftest import pydicom_file
from pixelscrub.codecs.jpeg_dct import dct_region, mcu_box
from pixelscrub.decode import display_view, image_info, iter_encoded_frames, iter_frames
from pixelscrub.dicomio import read_dataset, write_atomic
from pixelscrub.encode import redact_dataset, release
from pixelscrub.records import Box, Hit
from pixelscrub.redact import RedactionPlan, fill_frame, fill_value, plan_redactions
from test_codec_matrix import synthetic

jpeglib = pytest.importorskip("jpeglib")


def test_plan_margin_clip_frames_and_dedup():
    info = image_info(synthetic("mono8", frames=3))  # 64 x 48
    hits = [Hit(Box(60, 40, 70, 50), "a"), Hit(Box(60, 40, 70, 50), "b"),
            Hit(Box(0, 0, 4, 4), "c", frames=(1, 7)), Hit(Box(5, 5, 6, 6), "d", frames=(9,)),
            Hit(Box(10, 10, 12, 12), "e", frames=(0, 1, 2))]
    plan = plan_redactions(hits, info, margin=2)
    assert plan.boxes_for("pixels", 0) == [Box(58, 38, 64, 48), Box(8, 8, 14, 14)]
    assert Box(0, 0, 6, 6) in plan.boxes_for("pixels", 1)
    assert Box(0, 0, 6, 6) not in plan.boxes_for("pixels", 2)
    assert len(plan.boxes) == 3 and plan.boxes[2].frames is None  # all frames -> None
    assert plan.boxes_for("overlay:6000", 0) == []
    assert RedactionPlan().is_empty() and not plan.is_empty()
    with pytest.raises(ValueError):
        plan_redactions(hits, info, margin=-1)


def test_fill_values_are_display_black():
    assert fill_value(image_info(synthetic("mono8"))) == 0
    assert fill_value(image_info(synthetic("mono1-8"))) == 255
    assert fill_value(image_info(synthetic("signed12"))) == -2048
    assert fill_value(image_info(synthetic("rgb"))) == (0, 0, 0)
    assert fill_value(image_info(synthetic("ybr"))) == (0, 128, 128)
    mono = synthetic("mono12")
    mono.RescaleSlope, mono.RescaleIntercept = -1, 4095
    assert fill_value(mono) == 4095
    j2k = read_dataset(pydicom_file("GDCMJ2K_TextGBR.dcm"))  # YBR_RCT decodes as RGB
    assert fill_value(j2k) == (0, 0, 0)


@pytest.mark.parametrize("name", ["examples_palette.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm", "MR_small.dcm"])
def test_filled_box_displays_black(name):
    ds = read_dataset(pydicom_file(name))
    info = image_info(ds)
    frame = next(iter_frames(ds))
    filled = fill_frame(frame, [Box(2, 3, 20, 15)], fill_value(info))
    assert not np.shares_memory(filled, frame)
    view = display_view(filled, ds, info)
    black = view[3:15, 2:20]
    if view.ndim == 3:
        luma = view.astype(float) @ [0.299, 0.587, 0.114]
        assert luma[3:15, 2:20].max() <= luma.min() + 1
    else:
        assert (black == view.min()).all()


def test_dct_multiframe_only_touched_blocks_change(tmp_path):
    """30-frame YBR_FULL_422 baseline JPEG: coefficients outside MCUs bit-exact."""
    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    info = image_info(ds)
    box = Box(37, 21, 90, 50)
    plan = plan_redactions([Hit(box, "user-region", frames=(3, 17))], info, margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == uid.JPEGBaseline8Bit
    assert out.PhotometricInterpretation == "YBR_FULL_422"
    assert not result.lossy_recompressed and result.frames_changed == 2
    assert result.frames_copied == 28
    assert result.frames_dct_edited == [3, 17] and result.frames_reencoded == []
    mcu = dct_region(box, 2, 2)  # 4:2:0 here: 16 x 16 MCUs
    changed_blocks = 0
    for k, (a, b) in enumerate(zip(iter_encoded_frames(ds), iter_encoded_frames(out))):
        if k not in (3, 17):
            assert a == b
            continue
        (tmp_path / "a.jpg").write_bytes(a)
        (tmp_path / "b.jpg").write_bytes(b)
        ja, jb = jpeglib.read_dct(str(tmp_path / "a.jpg")), jpeglib.read_dct(str(tmp_path / "b.jpg"))
        for comp, scale in (("Y", 8), ("Cb", 16), ("Cr", 16)):
            ca, cb = getattr(ja, comp), getattr(jb, comp)
            sel = np.zeros(ca.shape[:2], bool)
            sel[mcu.y0 // scale:mcu.y1 // scale, mcu.x0 // scale:mcu.x1 // scale] = True
            np.testing.assert_array_equal(ca[~sel], cb[~sel])
            # blocks wholly inside the box: black DC, no AC; the box's edge blocks are
            # re-quantised, so only whole blocks are flat
            whole = np.zeros(ca.shape[:2], bool)
            whole[-(-box.y0 // scale):box.y1 // scale, -(-box.x0 // scale):box.x1 // scale] = True
            assert (cb[whole][:, 1:, :] == 0).all() and (cb[whole][:, 0, 1:] == 0).all()
            changed_blocks += int((ca != cb).any(axis=(2, 3)).sum())
    assert 0 < changed_blocks <= result.blocks_changed
    assert mcu_box(Box(1, 2, 17, 9), 16, 8) == Box(0, 0, 32, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = pydicom.dcmread(tmp_path / "out.dcm").pixel_array
    for k in (3, 17):   # display black, but for the re-quantised edge blocks' noise
        inside = rgb[k, box.y0:box.y1, box.x0:box.x1]
        assert inside.mean() <= 2 and np.percentile(inside, 99) <= 24


def test_dct_monochrome_and_box_at_image_edge(tmp_path):
    ds = read_dataset(pydicom_file("SC_rgb_small_odd_jpeg.dcm"))  # 3 x 3 pixels
    info = image_info(ds)
    plan = plan_redactions([Hit(Box(1, 1, 3, 3), "user-region")], info, margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    rgb = read_dataset(tmp_path / "out.dcm").pixel_array.astype(int)
    before = ds.pixel_array.astype(int)
    assert rgb[1:, 1:].mean() <= 12 and result.blocks_changed == 3   # one block each of Y, Cb, Cr
    # the pixels left of and above the box are not blacked out with it
    assert rgb[0, :].mean() >= 0.5 * before[0, :].mean() and rgb[:, 0].mean() >= 0.5 * before[:, 0].mean()


def test_user_regions_get_no_margin():
    info = image_info(synthetic("mono8"))
    plan = plan_redactions([Hit(Box(10, 10, 20, 20), "user-region"),
                            Hit(Box(30, 30, 40, 40), "pattern:date")], info, margin=3)
    assert plan.boxes_for("pixels", 0) == [Box(10, 10, 20, 20), Box(27, 27, 43, 43)]


import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _boxes(max_w, max_h):
    return st.lists(
        st.tuples(st.integers(0, max_w - 1), st.integers(0, max_h - 1),
                  st.integers(1, max_w), st.integers(1, max_h))
        .map(lambda t: Box(t[0], t[1], t[0] + t[2], t[1] + t[3])), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=_boxes(67, 53), frame=st.integers(0, 1),
       syntax=st.sampled_from(["explicit", "rle", "jls", "j2k"]),
       kind=st.sampled_from(["mono8-odd", "signed12", "rgb", "ybr"]))
def test_random_boxes_lossless(tmp_path, boxes, frame, syntax, kind):
    from test_codec_matrix import make_input
    if syntax == "jls" and kind == "signed12":
        kind = "mono8-odd"
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    ds = read_dataset(make_input(kind, syntax, folder))
    info = image_info(ds)
    plan = plan_redactions([Hit(b, "pattern:x", frames=(frame,)) for b in boxes], info, margin=1)
    new, result = redact_dataset(ds, plan, workdir=str(folder))
    write_atomic(new, folder / "out.dcm")
    release(new)
    a = list(iter_frames(ds))
    b = list(iter_frames(read_dataset(folder / "out.dcm")))
    inside = np.zeros((info.rows, info.columns), bool)
    for p in plan.boxes_for("pixels", frame):
        inside[p.y0:p.y1, p.x0:p.x1] = True
    np.testing.assert_array_equal(a[1 - frame], b[1 - frame])
    np.testing.assert_array_equal(a[frame][~inside], b[frame][~inside])
    assert (b[frame][inside] == np.asarray(fill_value(info))).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=_boxes(100, 100))
def test_random_boxes_dct(tmp_path, boxes):
    """Any boxes on a 4:2:2 JPEG: coefficients change only in the MCUs they touch,
    and the boxes show black (within the re-quantised edge blocks' noise)."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    ds = read_dataset(pydicom_file("SC_rgb_dcmtk_+eb+cy+s2.dcm"))  # 100x100, 4:2:2
    info = image_info(ds)
    plan = plan_redactions([Hit(b, "pattern:x") for b in boxes], info, margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(folder))
    write_atomic(new, folder / "out.dcm")
    release(new)
    src = next(iter_encoded_frames(ds))
    dst = next(iter_encoded_frames(read_dataset(folder / "out.dcm")))
    (folder / "a.jpg").write_bytes(src)
    (folder / "b.jpg").write_bytes(dst)
    ja, jb = jpeglib.read_dct(str(folder / "a.jpg")), jpeglib.read_dct(str(folder / "b.jpg"))
    total = 0
    for comp, (sx, sy) in (("Y", (8, 8)), ("Cb", (16, 8)), ("Cr", (16, 8))):
        ca, cb = getattr(ja, comp), getattr(jb, comp)
        sel = np.zeros(ca.shape[:2], bool)
        for p in plan.boxes_for("pixels", 0):
            m = dct_region(p, 2, 1)
            sel[m.y0 // sy:-(-m.y1 // sy), m.x0 // sx:-(-m.x1 // sx)] = True
        np.testing.assert_array_equal(ca[~sel], cb[~sel])
    rgb = read_dataset(folder / "out.dcm").pixel_array
    for p in plan.boxes_for("pixels", 0):
        luma = rgb[p.y0:p.y1, p.x0:p.x1].astype(float) @ [0.299, 0.587, 0.114]
        assert luma.mean() <= 8 and luma.max() <= 64


def test_dct_keeps_a_label_printed_a_few_pixels_from_the_value(tmp_path):
    """'ID: 12345' in a 4:2:2 baseline JPEG, the value's box starting 5 pixels after
    the label, mid-MCU.  Rounding the box out to whole MCUs (16 x 8 here) blacked
    out the label's last letters; the blocks the box's edge crosses are now decoded,
    filled inside the box only and re-quantised, so the label keeps its ink."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    img = np.full((48, 160, 3), 40, np.uint8)
    cv2.putText(img, "ID:", (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1, cv2.LINE_AA)
    cv2.putText(img, "12345", (45, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1,
                cv2.LINE_AA)
    label_x1 = int(np.nonzero((img[:, :42, 0] > 120).any(axis=0))[0].max()) + 1
    ok, jpg = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90,
                                                   cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                   cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422])
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 48, 160, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([jpg.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    ds = read_dataset(tmp_path / "in.dcm")
    info = image_info(ds)
    value = Box(label_x1 + 5, 12, 120, 36)
    assert value.x0 % 16 not in (0, 15)   # mid-MCU: whole MCUs would reach into the label
    plan = plan_redactions([Hit(value, "pattern:id")], info, margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    assert result.frames_dct_edited == [0]
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    a = next(iter_frames(ds)).astype(int)[..., 0]
    b = next(iter_frames(read_dataset(tmp_path / "out.dcm"))).astype(int)[..., 0]
    label = np.zeros(a.shape, bool)
    label[:, :label_x1] = a[:, :label_x1] > 120          # the label's ink
    assert label.sum() > 20
    assert (np.abs(a[label] - b[label]) <= 24).mean() >= 0.95
    assert b[12:36, value.x0:120].mean() <= 3            # the value is gone
