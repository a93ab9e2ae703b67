"""redact_dataset + write_atomic on every pydicom bundled image, and with regions."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid

from conftest import pydicom_file, pydicom_image_files
from pixelscrub.decode import image_info, iter_encoded_frames, iter_frames
from pixelscrub.dicomio import read_dataset, write_atomic
from pixelscrub.encode import redact_dataset, release
from pixelscrub.errors import ScrubError
from pixelscrub.records import Box, Hit
from pixelscrub.redact import RedactionPlan, fill_value, plan_redactions

jpeglib = pytest.importorskip("jpeglib")

IMAGE_FILES = pydicom_image_files()
LOSSLESS_OUT = {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian,
                uid.DeflatedExplicitVRLittleEndian, uid.RLELossless, uid.JPEGLSLossless,
                uid.JPEG2000Lossless}


def _pydicom_can_decode(path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmread(path).pixel_array
        return True
    except Exception:
        return False


def _dct(codestream: bytes, tmp_path, name: str):
    p = tmp_path / name
    p.write_bytes(codestream)
    j = jpeglib.read_dct(str(p))
    j.load()
    return [c for c in (j.Y, j.Cb, j.Cr) if c is not None]


def _write_read(ds, plan, tmp_path, name="out.dcm"):
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    out = tmp_path / name
    write_atomic(new, out)
    release(new)
    return read_dataset(out), result


@pytest.mark.parametrize("path", IMAGE_FILES, ids=lambda p: p.name)
def test_empty_plan_round_trip(path, tmp_path):
    before = path.read_bytes()
    try:
        ds = read_dataset(path)
        frames_in = list(iter_frames(ds))
    except ScrubError as exc:
        assert "\n" not in str(exc)
        assert not _pydicom_can_decode(path), f"refused a file pydicom decodes: {exc}"
        return
    out, result = _write_read(ds, RedactionPlan(), tmp_path)
    assert path.read_bytes() == before  # input untouched
    assert result.frames_written == len(frames_in)
    frames_out = list(iter_frames(out))
    assert len(frames_out) == len(frames_in)
    ts_in = ds.file_meta.TransferSyntaxUID
    ts_out = out.file_meta.TransferSyntaxUID
    assert ts_out == result.transfer_syntax_out
    if ts_in in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit) and ts_out == ts_in:
        for k, (a, b) in enumerate(zip(iter_encoded_frames(ds), iter_encoded_frames(out))):
            ca, cb = _dct(a, tmp_path, f"a{k}.jpg"), _dct(b, tmp_path, f"b{k}.jpg")
            assert all(np.array_equal(x, y) for x, y in zip(ca, cb))
    else:
        assert ts_out in LOSSLESS_OUT or ts_out == ts_in
        for a, b in zip(frames_in, frames_out):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert out.get(kw) == ds.get(kw)
    assert int(out.get("NumberOfFrames", 1)) == len(frames_in)
    assert not [f for f in os.listdir(tmp_path) if f.startswith((".out", "pixelscrub-"))]


def _decodable(paths):
    out = []
    for p in paths:
        try:
            ds = read_dataset(p)
            next(iter_frames(ds))
            out.append(p)
        except ScrubError:
            continue
    return out


DECODABLE = _decodable(IMAGE_FILES)


def _region(info) -> Box:
    """A box a quarter of the way in, at least one pixel, not block aligned."""
    x0, y0 = info.columns // 4 + 1, info.rows // 4 + 1
    x1 = max(x0 + 1, min(info.columns, info.columns // 2 + 3))
    y1 = max(y0 + 1, min(info.rows, info.rows // 2 + 3))
    return Box(min(x0, info.columns - 1), min(y0, info.rows - 1), x1, y1)


def _mask(info, box: Box, grow: int = 0, mcu=(1, 1)) -> np.ndarray:
    """Pixels that may differ: ``box`` rounded out to ``mcu`` and grown by ``grow``."""
    mw, mh = mcu
    x0, y0 = (box.x0 // mw) * mw - grow, (box.y0 // mh) * mh - grow
    x1, y1 = -(-box.x1 // mw) * mw + grow, -(-box.y1 // mh) * mh + grow
    m = np.zeros((info.rows, info.columns), bool)
    m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return m


@pytest.mark.parametrize("path", DECODABLE, ids=lambda p: p.name)
def test_region_filled_inside_identical_outside(path, tmp_path):
    ds = read_dataset(path)
    info = image_info(ds)
    box = _region(info)
    plan = plan_redactions([Hit(box, "user-region", frames=(0,))], info, margin=0)
    out, result = _write_read(ds, plan, tmp_path)
    assert result.frames_changed == 1
    a = list(iter_frames(ds))
    b = list(iter_frames(out))
    ts_out = out.file_meta.TransferSyntaxUID
    inside = _mask(info, box)
    for k in range(1, len(a)):  # other frames: untouched
        np.testing.assert_array_equal(a[k], b[k])
    if result.transfer_syntax_out == uid.JPEGBaseline8Bit and ds.file_meta.TransferSyntaxUID == ts_out:
        from pixelscrub.codecs.jpeg_dct import color_model
        stream = next(iter_encoded_frames(out))
        j = jpeglib.read_dct(str(_tmp_jpeg(tmp_path, stream)))
        j.load()
        samp = [tuple(r) for r in j.c_samp_factor()][: (3 if j.Cb is not None else 1)]
        from pixelscrub.codecs.jpeg_dct import dct_region
        region = dct_region(box, max(h for _, h in samp), max(v for v, _ in samp))
        changed = _mask(info, region, grow=1)
        np.testing.assert_array_equal(a[0][~changed], b[0][~changed])
        # inside the box black: exactly in the blocks it covers whole, within the
        # quantisation noise of the blocks its edge crosses (decoded, filled, re-quantised)
        luma = b[0][..., 0] if b[0].ndim == 3 else b[0]
        assert luma[inside].mean() <= 2 and np.percentile(luma[inside], 99) <= 24
        if color_model(stream, info.photometric) == "YCbCr":
            core = _mask(info, Box(box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1))
            if core.any():
                assert np.abs(b[0][core][..., 1:].astype(int) - 128).mean() <= 3
        # ...and the pixels of those blocks outside the box keep their values within
        # that noise: a label a few pixels from a value is not blacked out with it
        near = changed & ~inside
        if near.any():
            before = a[0][..., 0] if a[0].ndim == 3 else a[0]
            assert np.abs(before[near].astype(int) - luma[near]).mean() <= 4
        assert result.blocks_changed > 0
        return
    fill = np.asarray(fill_value(image_info(out)))
    if ts_out in LOSSLESS_OUT or not result.lossy_recompressed:
        np.testing.assert_array_equal(a[0][~inside], b[0][~inside])
        assert (b[0][inside] == fill).all()
    elif ts_out == uid.JPEGLSNearLossless:
        from pixelscrub.codecs.jpegls import near_of
        near = near_of(next(iter_encoded_frames(out)))
        diff = np.abs(a[0][~inside].astype(np.int64) - b[0][~inside])
        assert diff.max() <= near
        assert (np.abs(b[0][inside].astype(np.int64) - fill) <= near).all()
        assert result.lossy_recompressed
    elif ts_out == uid.JPEG2000:
        # lossy re-encode at the original ratio: outside close, inside near the fill
        assert result.lossy_recompressed
        assert out.LossyImageCompression == "01"
        span = float(info.stored_max - info.stored_min)
        err = np.abs(a[0][~inside].astype(np.float64) - b[0][~inside]).mean()
        assert err < 0.05 * span
        assert np.abs(b[0][inside].astype(np.float64) - fill).mean() < 0.05 * span
    else:
        raise AssertionError(f"unexpected output syntax {ts_out}")


def _tmp_jpeg(tmp_path, data):
    p = tmp_path / "frame.jpg"
    p.write_bytes(data)
    return p


def test_new_dataset_shares_nothing_mutable(tmp_path):
    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    ds.add_new(0x00081110, "SQ", [pydicom.Dataset()])
    ds[0x00081110].value[0].ReferencedSOPInstanceUID = "1.2.3"
    new, _ = redact_dataset(ds, RedactionPlan(), workdir=str(tmp_path))
    for tag in ds.keys():
        if tag != 0x7FE00010:
            assert new[tag] is not ds[tag]
    new[0x00081110].value[0].ReferencedSOPInstanceUID = "9.9.9"
    new.PatientName = "Changed^Name"
    new.file_meta.ImplementationVersionName = "X"
    assert ds[0x00081110].value[0].ReferencedSOPInstanceUID == "1.2.3"
    assert ds.PatientName != "Changed^Name"
    assert ds.file_meta.get("ImplementationVersionName") != "X"
    assert ds._dict[0x7FE00010].value is None  # input Pixel Data was never loaded
    release(new)


def test_corrupt_compressed_frame_is_refused(tmp_path):
    ds = pydicom.dcmread(pydicom_file("MR_small_jp2klossless.dcm"))
    from pydicom.encaps import encapsulate
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64])
    ds.save_as(tmp_path / "bad.dcm")
    bad = read_dataset(tmp_path / "bad.dcm")
    plan = plan_redactions([Hit(Box(0, 0, 8, 8), "user-region")], image_info(bad), margin=0)
    with pytest.raises(ScrubError) as e:
        redact_dataset(bad, plan, workdir=str(tmp_path))
    assert e.value.reason == "undecodable" and "\n" not in str(e.value)
    assert [f for f in os.listdir(tmp_path) if f.startswith("pixelscrub-")] == []


def test_missing_frames_are_refused(tmp_path):
    ds = pydicom.dcmread(pydicom_file("SC_rgb_rle_2frame.dcm"))
    ds.NumberOfFrames = 3
    ds.save_as(tmp_path / "short.dcm")
    with pytest.raises(ScrubError):
        redact_dataset(read_dataset(tmp_path / "short.dcm"), RedactionPlan(),
                       workdir=str(tmp_path))


def test_extended_offset_table_when_offsets_overflow(tmp_path, monkeypatch):
    """Past 4 GiB a Basic Offset Table cannot hold offsets: EOT is written instead."""
    import pixelscrub.encode as encode_mod
    monkeypatch.setattr(encode_mod, "BOT_LIMIT", 100)  # pretend 100 bytes is 4 GiB
    ds = read_dataset(pydicom_file("SC_rgb_rle_2frame.dcm"))
    info = image_info(ds)
    plan = plan_redactions([Hit(Box(0, 0, 10, 10), "user-region", frames=(1,))], info, margin=0)
    new, _ = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert "ExtendedOffsetTable" in out and "ExtendedOffsetTableLengths" in out
    frames = list(iter_frames(out))
    np.testing.assert_array_equal(frames[0], next(iter_frames(ds)))
    assert (frames[1][:10, :10] == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pydicom.dcmread(tmp_path / "out.dcm").pixel_array.shape == (2, 100, 100, 3)


def test_untouched_j2k_frames_are_copied_as_stored(tmp_path):
    """YBR_RCT/ICT JPEG 2000: frames without boxes keep their codestream (no re-encode)."""
    for name in ("GDCMJ2K_TextGBR.dcm", "examples_jpeg2k.dcm"):
        ds = read_dataset(pydicom_file(name))
        new, result = redact_dataset(ds, RedactionPlan(), workdir=str(tmp_path))
        assert result.frames_copied == 1 and not result.lossy_recompressed
        assert new.PhotometricInterpretation == ds.PhotometricInterpretation
        release(new)


def test_dct_failure_falls_back_to_lossless(tmp_path, monkeypatch):
    """If a frame cannot be edited in the DCT domain, the image is re-encoded losslessly."""
    import pixelscrub.codecs.jpeg_dct as dct
    real = dct.redact_frame
    calls = []

    def flaky(data, boxes, info, *, workdir=None):
        calls.append(1)
        if len(calls) == 2:
            raise ScrubError("JPEG frame could not be read in the DCT domain", reason="dct-read")
        return real(data, boxes, info, workdir=workdir)

    monkeypatch.setattr(dct, "redact_frame", flaky)
    ds = read_dataset(pydicom_file("examples_ybr_color.dcm"))
    info = image_info(ds)
    plan = plan_redactions([Hit(Box(10, 10, 50, 30), "user-region", frames=(0, 5))], info,
                           margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == uid.JPEGLSLossless
    assert "DCT domain" in result.notes[0] and result.frames_written == 30
    assert out.PhotometricInterpretation == "YBR_FULL" and out.LossyImageCompression == "01"
    a, b = list(iter_frames(ds)), list(iter_frames(out))
    for k in range(30):
        expect = a[k].copy()
        if k in (0, 5):
            expect[10:30, 10:50] = (0, 128, 128)
        np.testing.assert_array_equal(b[k], expect)
    assert [f for f in os.listdir(tmp_path) if f.startswith("pixelscrub-")] == []


def test_untouched_frames_are_not_made_lossier(tmp_path):
    """Near-lossless JPEG-LS stored with Planar Configuration 1 cannot be copied
    as is, so untouched frames are re-encoded with NEAR=0 (still .81)."""
    from test_codec_matrix import make_input
    src = make_input("rgb-planar", "jls-near", tmp_path)
    ds = read_dataset(src)
    assert ds.PlanarConfiguration == 1
    info = image_info(ds)
    plan = plan_redactions([Hit(Box(1, 1, 9, 9), "user-region", frames=(1,))], info, margin=0)
    new, result = redact_dataset(ds, plan, workdir=str(tmp_path))
    write_atomic(new, tmp_path / "out.dcm")
    release(new)
    out = read_dataset(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == uid.JPEGLSNearLossless
    assert result.frames_copied == 0 and result.frames_changed == 1
    a, b = list(iter_frames(ds)), list(iter_frames(out))
    np.testing.assert_array_equal(a[0], b[0])  # lossless re-encode of the untouched frame
    outside = np.ones(a[1].shape[:2], bool)
    outside[1:9, 1:9] = False
    assert np.abs(a[1][outside].astype(int) - b[1][outside]).max() <= 2
    assert (b[1][1:9, 1:9] <= 2).all()


@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "SC_rgb_rle_2frame.dcm"])
def test_a_second_write_copies_frames_the_first_already_filled(name, tmp_path):
    """The verify stage writes again with a few more boxes: frames whose boxes the
    first write already filled come from it as written, and the result is the
    same as writing from scratch."""
    from pixelscrub.encode import PriorOutput
    ds = read_dataset(pydicom_file(name))
    info = image_info(ds)
    first_hits = [Hit(Box(4, 4, 40, 20), "user-region")]
    more = [Hit(Box(10, 6, 30, 18), "verify:pattern:time"),            # inside the first box
            Hit(Box(20, 30, 44, 44), "verify:pattern:time", frames=(info.frames - 1,))]
    plan1 = plan_redactions(first_hits, info, margin=0)
    plan2 = plan_redactions(first_hits + more, info, margin=0)
    first, r1 = redact_dataset(ds, plan1, workdir=str(tmp_path))
    again, r2 = redact_dataset(ds, plan2, workdir=str(tmp_path), prior=PriorOutput(first, plan1, r1))
    fresh, r3 = redact_dataset(ds, plan2, workdir=str(tmp_path))
    assert r2.frames_reused == info.frames - 1 and r3.frames_reused == 0
    assert r2.frames_changed == r3.frames_changed == info.frames
    assert sorted(r2.frames_reencoded) == sorted(r3.frames_reencoded)
    assert sorted(r2.frames_dct_edited) == sorted(r3.frames_dct_edited)
    assert list(iter_encoded_frames(again)) == list(iter_encoded_frames(fresh))
    for d in (first, again, fresh):
        release(d)
