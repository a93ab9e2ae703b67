"""Overlay planes and high-bit overlays as layers: display and redaction."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import pydicom_file
from pixelscrub.decode import image_info, iter_frames
from pixelscrub.dicomio import read_dataset, write_atomic
from pixelscrub.encode import redact_dataset, release
from pixelscrub.errors import ScrubError
from pixelscrub.overlays import iter_overlay_display, overlay_layers
from pixelscrub.records import Box, Hit
from pixelscrub.redact import RedactionPlan, plan_redactions
from test_codec_matrix import synthetic


def test_overlay_plane_found_and_displayed():
    ds = read_dataset(pydicom_file("examples_overlay.dcm"))
    (layer,) = overlay_layers(ds)
    assert layer.name == "overlay:6000" and (layer.rows, layer.columns) == (300, 484)
    (view,) = list(iter_overlay_display(ds, layer))
    assert view.dtype == np.uint8 and view.shape == (300, 484)
    np.testing.assert_array_equal(view > 0, ds.overlay_array(0x6000) > 0)
    assert set(np.unique(view)) == {0, 255}


def test_overlay_origin_maps_to_image_coordinates():
    ds = read_dataset(pydicom_file("examples_overlay.dcm"))
    plane = ds.overlay_array(0x6000)
    ds[0x60000050].value = [11, 21]  # 1-based (row, col)
    (layer,) = overlay_layers(ds)
    assert layer.origin == (10, 20)
    (view,) = list(iter_overlay_display(ds, layer))
    np.testing.assert_array_equal(view[10:, 20:] > 0, plane[:290, :464] > 0)
    assert not view[:10].any() and not view[:, :20].any()


def test_overlay_plane_redaction(tmp_path):
    ds = read_dataset(pydicom_file("examples_overlay.dcm"))
    before = ds.overlay_array(0x6000).copy()
    ys, xs = np.nonzero(before)
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    box = Box(max(0, x - 30), max(0, y - 20), x + 30, y + 20)
    plan = plan_redactions([Hit(box, "user-region", layer="overlay:6000")], image_info(ds),
                           margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    after = out.overlay_array(0x6000)
    inside = np.zeros_like(before, bool)
    inside[box.y0:box.y1, box.x0:box.x1] = True
    assert before[inside].any() and not after[inside].any()
    np.testing.assert_array_equal(before[~inside], after[~inside])
    assert result.overlay_bits_cleared == int(before[inside].sum())
    np.testing.assert_array_equal(next(iter_frames(ds)), next(iter_frames(out)))  # pixels kept
    np.testing.assert_array_equal(ds.overlay_array(0x6000), before)  # input untouched


def _highbit_ds():
    ds = synthetic("mono12", frames=2)
    words = np.frombuffer(ds.PixelData, np.uint16).reshape(2, 48, 64).copy()
    words[:, 30:40, 5:50] |= 1 << 15  # overlay ink in bit 15
    ds.PixelData = words.tobytes()
    ds.add_new(0x60000010, "US", 48)
    ds.add_new(0x60000011, "US", 64)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 15)
    return ds, words


def test_highbit_overlay_layer_and_redaction(tmp_path):
    ds, words = _highbit_ds()
    path = tmp_path / "hb.dcm"
    ds.save_as(path, enforce_file_format=True)
    ds = read_dataset(path)
    (layer,) = overlay_layers(ds)
    assert layer.name == "highbit:15"
    views = list(iter_overlay_display(ds, layer))
    assert len(views) == 2 and (views[1][30:40, 5:50] == 255).all() and views[1].sum() == 255 * 450
    # pixel values never show the overlay bit
    assert next(iter_frames(ds)).max() < 4096
    plan = plan_redactions([Hit(Box(0, 28, 20, 45), "user-region", frames=(1,), layer=layer.name)],
                           image_info(ds), margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    after = list(iter_overlay_display(out, overlay_layers(out)[0]))
    assert not after[1][28:45, 0:20].any()
    assert (after[1][30:40, 20:50] == 255).all()  # outside the box: kept
    np.testing.assert_array_equal(after[0], views[0])  # other frame: kept
    assert result.overlay_bits_cleared == 10 * 15
    for a, b in zip(iter_frames(ds), iter_frames(out)):
        np.testing.assert_array_equal(a, b)  # image values untouched


def test_pixel_fill_clears_unused_high_bits(tmp_path):
    ds, words = _highbit_ds()
    plan = plan_redactions([Hit(Box(0, 28, 64, 45), "user-region")], image_info(ds), margin=0)
    new, _ = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    raw = list(iter_frames(out, keep_unused_bits=True))
    assert all((r[28:45] == 0).all() for r in raw)


def test_plan_with_unknown_layer_fails_closed(tmp_path):
    ds = read_dataset(pydicom_file("CT_small.dcm"))
    plan = plan_redactions([Hit(Box(0, 0, 5, 5), "x", layer="overlay:6002")], image_info(ds),
                           margin=0)
    with pytest.raises(ScrubError):
        redact_dataset(ds, plan, workdir=str(tmp_path))


def test_multi_frame_overlay_maps_frames():
    ds = synthetic("mono8", frames=3)
    planes = np.zeros((2, 48, 64), np.uint8)
    planes[0, 5:10, 5:10] = 1
    planes[1, 20:25, 20:25] = 1
    from pydicom.pixels import pack_bits
    ds.add_new(0x60000010, "US", 48)
    ds.add_new(0x60000011, "US", 64)
    ds.add_new(0x60000015, "IS", 2)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000051, "US", 2)
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", pack_bits(planes.reshape(-1)))
    (layer,) = overlay_layers(ds)
    assert layer.overlay_frames == 2 and layer.first_frame == 1 and layer.frames == 3
    views = list(iter_overlay_display(ds, layer))
    assert len(views) == 3 and not views[0].any()
    assert views[1][5:10, 5:10].all() and views[2][20:25, 20:25].all()
    assert views[1].sum() == 25 * 255 and views[2].sum() == 25 * 255


def test_big_endian_overlay_survives_conversion(tmp_path):
    import shutil
    import subprocess
    if shutil.which("dcmconv") is None:
        pytest.skip("dcmconv not installed")
    be = tmp_path / "be.dcm"
    subprocess.run(["dcmconv", "+tb", str(pydicom_file("examples_overlay.dcm")), str(be)],
                   check=True)
    ref = read_dataset(pydicom_file("examples_overlay.dcm")).overlay_array(0x6000)
    ds = read_dataset(be)
    (layer,) = overlay_layers(ds)
    (view,) = list(iter_overlay_display(ds, layer))
    np.testing.assert_array_equal(view > 0, ref > 0)
    new, result = redact_dataset(ds, RedactionPlan(), workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2"  # kept big endian
    (view,) = list(iter_overlay_display(out, overlay_layers(out)[0]))
    np.testing.assert_array_equal(view > 0, ref > 0)
    le = tmp_path / "le.dcm"  # DCMTK reads our big endian overlay the same way
    subprocess.run(["dcmconv", "+te", str(tmp_path / "out.dcm"), str(le)], check=True)
    np.testing.assert_array_equal(read_dataset(le).overlay_array(0x6000), ref)
    np.testing.assert_array_equal(next(iter_frames(out)), next(iter_frames(ds)))
