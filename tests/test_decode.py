"""image_info, per-frame decoding, display views, and streaming memory use."""
from __future__ import annotations

import io
import tracemalloc
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.pixels import iter_pixels

from conftest import pydicom_file
from pixelscrub.decode import display_view, image_info, iter_display, iter_frames
from pixelscrub.dicomio import read_dataset, write_atomic
from pixelscrub.encode import redact_dataset, release
from pixelscrub.errors import ScrubError
from pixelscrub.records import Box, Hit
from pixelscrub.redact import plan_redactions
from test_codec_matrix import synthetic


def _pydicom_frames(name, raw=True):
    """pydicom's frames, decoded by pylibjpeg's plugins as pixelscrub prefers."""
    ds = pydicom.dcmread(pydicom_file(name))
    plugin = "pylibjpeg" if ds.file_meta.TransferSyntaxUID.is_compressed else ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(iter_pixels(ds, raw=raw, decoding_plugin=plugin))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_rle_2frame.dcm",
                                  "examples_ybr_color.dcm", "SC_ybr_full_422_uncompressed.dcm",
                                  "examples_jpeg2k.dcm", "JPEGLSNearLossless_16.dcm",
                                  "liver_1frame.dcm", "image_dfl.dcm", "rtdose_rle.dcm",
                                  "SC_rgb_small_odd_big_endian.dcm"])
def test_iter_frames_matches_pydicom(name):
    ds = read_dataset(pydicom_file(name))
    mine = list(iter_frames(ds))
    ref = _pydicom_frames(name)
    assert len(mine) == len(ref) == image_info(ds).frames
    for a, b in zip(mine, ref):
        np.testing.assert_array_equal(a, b)


def test_image_info_fields_and_colour_space():
    info = image_info(read_dataset(pydicom_file("examples_ybr_color.dcm")))
    assert (info.rows, info.columns, info.frames, info.samples_per_pixel) == (240, 320, 30, 3)
    assert info.photometric == "YBR_FULL_422" and info.frame_photometric == "YBR_FULL"
    assert info.transfer_syntax == uid.JPEGBaseline8Bit and info.is_encapsulated
    j2k = image_info(read_dataset(pydicom_file("GDCMJ2K_TextGBR.dcm")))
    assert j2k.photometric == "YBR_RCT" and j2k.frame_photometric == "RGB"
    mr = image_info(read_dataset(pydicom_file("MR_small.dcm")))
    assert mr.signed and mr.stored_min == -32768 and mr.stored_max == 32767


def test_image_info_refusals():
    with pytest.raises(ScrubError) as e:
        image_info(read_dataset(pydicom_file("nested_priv_SQ.dcm")))
    assert e.value.reason == "bad-pixel-module"
    ds = read_dataset(pydicom_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
    with pytest.raises(ScrubError) as e:
        image_info(ds)
    assert e.value.reason == "unsupported-syntax"


def test_short_pixel_data_is_refused():
    ds = read_dataset(pydicom_file("MR_truncated.dcm"))
    with pytest.raises(ScrubError) as e:
        list(iter_frames(ds))
    assert e.value.reason == "short-pixel-data"


def test_file_object_source():
    data = pydicom_file("SC_rgb_rle_2frame.dcm").read_bytes()
    ds = read_dataset(io.BytesIO(data))
    assert len(list(iter_frames(ds))) == 2


def test_display_ybr_is_rgb_and_matches_pydicom():
    ds = read_dataset(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    view = next(iter_display(ds))
    ref = _pydicom_frames("SC_rgb_jpeg_dcmtk.dcm", raw=False)[0]
    assert view.dtype == np.uint8 and view.shape == (100, 100, 3)
    np.testing.assert_array_equal(view, ref)


@pytest.mark.parametrize("path", ["sample_data/dicom/0002_us_ybr.dcm",  # YBR_FULL_422
                                  "sample_data/dicom/0004_us_cine.dcm"])  # MONOCHROME2, 20 frames
def test_baseline_jpeg_display_comes_from_opencv(path, monkeypatch):
    """Baseline JPEG display views skip pydicom's decoder (6 ms instead of 38 ms a
    frame): within a few levels of it, same shape, and every frame is there."""
    import pixelscrub.decode as decode
    ds = read_dataset(path)
    info = image_info(ds)
    reference = [display_view(f, ds, info, index=k) for k, f in enumerate(iter_frames(ds))]

    def refuse(*args, **kwargs):
        raise AssertionError("pydicom's decoder was used")
    monkeypatch.setattr(decode, "decode_frame", refuse)
    views = list(iter_display(ds))
    assert len(views) == len(reference) == info.frames
    for got, ref in zip(views, reference):
        assert got.shape == ref.shape and got.dtype == np.uint8
        diff = np.abs(got.astype(int) - ref)
        assert diff.mean() < 0.5 and diff.max() <= 16, (diff.mean(), diff.max())


def test_jpeg_opencv_refuses_goes_through_pydicom(tmp_path):
    """A truncated baseline frame: OpenCV refuses it, pydicom decides (here it decodes
    what is there), exactly as without the shortcut."""
    from pydicom.encaps import encapsulate, generate_frames
    ds = read_dataset(pydicom_file("SC_rgb_dcmtk_+eb+cy+s2.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    info = image_info(ds)
    [view] = list(iter_display(ds))
    [frame] = list(iter_frames(ds))
    np.testing.assert_array_equal(view, display_view(frame, ds, info))


def test_display_palette_and_monochrome1():
    ds = read_dataset(pydicom_file("examples_palette.dcm"))
    view = next(iter_display(ds))
    assert view.shape == (350, 800, 3) and view.dtype == np.uint8
    mono2 = synthetic("mono8", frames=1)
    mono1 = synthetic("mono1-8", frames=1)
    f2 = np.frombuffer(mono2.PixelData, np.uint8).reshape(48, 64)
    v2 = display_view(f2, mono2, image_info(mono2))
    v1 = display_view(f2, mono1, image_info(mono1))
    np.testing.assert_array_equal(v1, 255 - v2)
    assert v2[15, 20] == 255  # the "text" is the brightest thing


def test_display_window_is_applied():
    ds = read_dataset(pydicom_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = 0, 2
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    frame = next(iter_frames(ds))
    view = display_view(frame, ds, image_info(ds))
    assert set(np.unique(view)) <= {0, 255}
    assert ((frame > 0) == (view == 255)).all()


def _cine(tmp_path, frames=100, rows=256, cols=256):
    ds = synthetic("mono12", frames=1)
    rng = np.random.default_rng(1)
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.PixelData = rng.integers(0, 4096, (frames, rows, cols), dtype=np.uint16).tobytes()
    path = tmp_path / "cine.dcm"
    write_atomic(ds, path)
    return path, frames * rows * cols * 2


def test_frames_are_streamed_not_materialised(tmp_path):
    path, size = _cine(tmp_path)
    ds = read_dataset(path)
    tracemalloc.start()
    n = 0
    for frame in iter_frames(ds):
        n += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 100
    assert peak < size / 10, f"peak {peak} bytes for a {size} byte stack"


def test_redact_dataset_streams_big_cine(tmp_path):
    path, size = _cine(tmp_path)
    ds = read_dataset(path)
    info = image_info(ds)
    plan = plan_redactions([Hit(Box(10, 10, 80, 30), "user-region")], info, margin=0)
    tracemalloc.start()
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.frames_changed == 100
    assert peak < size / 10, f"peak {peak} bytes for a {size} byte stack"
    assert new["PixelData"].is_buffered
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    last = list(iter_frames(out))[-1]
    assert (last[10:30, 10:80] == 0).all()


def test_compressed_cine_is_streamed(tmp_path):
    """RLE, 60 frames: redact every frame with a bounded peak allocation."""
    ds = synthetic("mono12", frames=1)
    rows = cols = 256
    frames = 60
    yy, xx = np.mgrid[0:rows, 0:cols]
    stack = np.stack([((xx + yy + f) % 4096) for f in range(frames)]).astype(np.uint16)
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.PixelData = stack.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.compress(uid.RLELossless, encoding_plugin="pylibjpeg")
    path = tmp_path / "rle-cine.dcm"
    write_atomic(ds, path)
    size = stack.nbytes
    src = read_dataset(path)
    plan = plan_redactions([Hit(Box(5, 5, 100, 40), "user-region")], image_info(src), margin=0)
    tracemalloc.start()
    new, result = redact_dataset(src, plan, workdir=str(tmp_path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.frames_changed == frames and peak < size / 8
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == uid.RLELossless
    for k, frame in enumerate(iter_frames(out)):
        assert (frame[5:40, 5:100] == 0).all()
        np.testing.assert_array_equal(frame[40:], stack[k, 40:])


def test_falls_back_to_the_next_plugin(monkeypatch):
    """If pylibjpeg fails on a frame, python-gdcm (next in line) decodes it."""
    import pixelscrub.decode as decode_mod
    from pydicom.pixels import get_decoder
    if "gdcm" not in get_decoder(uid.JPEG2000Lossless).available_plugins:
        pytest.skip("python-gdcm not installed")
    monkeypatch.setattr(decode_mod, "PLUGIN_PREFERENCE", ("no-such-plugin", "gdcm"))
    monkeypatch.setattr(decode_mod, "_plugin_order",
                        lambda decoder: ["no-such-plugin", "gdcm"])
    ds = read_dataset(pydicom_file("MR_small_jp2klossless.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = next(iter_pixels(pydicom.dcmread(pydicom_file("MR_small_jp2klossless.dcm")),
                               raw=True, decoding_plugin="gdcm"))
    np.testing.assert_array_equal(next(iter_frames(ds)), ref)


def test_display_uses_functional_group_windows():
    """Enhanced multi-frame: each frame's own window from the per-frame groups."""
    ds = synthetic("mono12", frames=2)
    per = []
    for center in (100, 3000):
        voi = pydicom.Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 2
        item = pydicom.Dataset()
        item.FrameVOILUTSequence = [voi]
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = per
    pvt = pydicom.Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept = 1, 0
    shared = pydicom.Dataset()
    shared.PixelValueTransformationSequence = [pvt]
    ds.SharedFunctionalGroupsSequence = [shared]
    views = list(iter_display(ds))
    frames = list(iter_frames(ds))
    assert ((frames[0] >= 100) == (views[0] == 255)).all()
    assert ((frames[1] >= 3000) == (views[1] == 255)).all()


@pytest.mark.parametrize("has_bot", [True, False])
def test_fragmented_frames(tmp_path, has_bot):
    """Frames split over several fragments, with and without a Basic Offset Table."""
    from pydicom.encaps import encapsulate
    from pixelscrub.decode import iter_encoded_frames
    src = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    streams = list(iter_encoded_frames(src))
    ds = pydicom.dcmread(pydicom_file("examples_ybr_color.dcm"))
    ds.PixelData = encapsulate(streams, fragments_per_frame=3, has_bot=has_bot)
    ds.save_as(tmp_path / "frag.dcm")
    frag = read_dataset(tmp_path / "frag.dcm")
    assert list(iter_encoded_frames(frag)) == streams
    for a, b in zip(iter_frames(frag), iter_frames(src)):
        np.testing.assert_array_equal(a, b)


def test_vanished_input_is_a_scrub_error(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(pydicom_file("examples_ybr_color.dcm").read_bytes())
    ds = read_dataset(path)
    path.unlink()
    with pytest.raises(ScrubError) as e:
        next(iter_frames(ds))
    assert e.value.reason == "io-error"


def test_iter_display_decodes_only_the_frames_asked_for(monkeypatch):
    """The verify stage reads three frames of a long cine: the others are skipped."""
    import pixelscrub.decode as dec
    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    every = list(dec.iter_display(ds))
    calls = []
    real = dec._turbo_display_frame
    monkeypatch.setattr(dec, "_turbo_display_frame", lambda *a: calls.append(1) or real(*a))
    some = list(dec.iter_display(ds, only={0, 29}))
    assert len(some) == len(every) == 30 and len(calls) == 2
    assert all(v is None for k, v in enumerate(some) if k not in (0, 29))
    np.testing.assert_array_equal(some[0], every[0])
    np.testing.assert_array_equal(some[29], every[29])


@pytest.mark.parametrize("dtype,lo,hi", [(np.uint8, 0, 256), (np.uint16, 0, 4096),
                                         (np.int16, -1024, 3000), (np.int32, -5, 70000)])
def test_percentiles_from_a_histogram_are_numpys_nearest_rank(dtype, lo, hi):
    from pixelscrub.percentiles import int_percentiles
    values = np.random.default_rng(3).integers(lo, hi, (97, 131)).astype(dtype)
    qs = (0.5, 25.0, 50.0, 99.5)
    assert int_percentiles(values, qs) == [float(v) for v in
                                           np.percentile(values, qs, method="inverted_cdf")]
