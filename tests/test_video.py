"""Cines stored as video (H.264, MPEG-2): decoded with PyAV, scrubbed like any cine,
encoded again in the same transfer syntax; checked by decoding the output again."""
from __future__ import annotations

import io
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

from pixelscrub import ScrubOptions, scrub_file
from pixelscrub.video import iter_video_frames, stream_facts, video_bytes

av = pytest.importorskip("av")
KEY = b"video-test-key-0123456789abcdefgh"
H264 = "1.2.840.10008.1.2.4.102"
MPEG2 = "1.2.840.10008.1.2.4.100"
FRAMES = 12


def frame(i: int) -> np.ndarray:
    """A moving fan with a static name banner and a changing timer (RGB)."""
    img = np.zeros((240, 320, 3), np.uint8)
    rng = np.random.default_rng(i)
    fan = rng.integers(40, 160, (160, 200), dtype=np.uint8)
    img[60:220, 60:260] = cv2.GaussianBlur(fan, (0, 0), 4)[..., None]
    cv2.putText(img, "LARSEN, INGRID", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (240, 240, 240), 2,
                cv2.LINE_AA)
    cv2.putText(img, f"00:{i:02d}", (250, 232), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (240, 240, 240), 1,
                cv2.LINE_AA)
    return img


def video_dicom(path: Path, syntax: str) -> Path:
    codec, fmt = ("libx264", "h264") if syntax == H264 else ("mpeg2video", "mpeg2video")
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=fmt)
    stream = out.add_stream(codec, rate=Fraction(25))
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": "12"}
    else:
        stream.bit_rate = 8_000_000
    for i in range(FRAMES):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame(i), format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    data = buf.getvalue()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "LARSEN^INGRID", "88123", "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 240, 320, FRAMES
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_PARTIAL_420", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.CineRate, ds.FrameTime = 25, 40.0
    ds.PixelData = encapsulate([data + (b"\0" if len(data) % 2 else b"")])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("syntax", [H264, MPEG2])
def test_video_cine_is_scrubbed_in_its_own_syntax(tmp_path, syntax):
    src = video_dicom(tmp_path / "cine.dcm", syntax)
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert audit.status == "clean", (audit.error, audit.notes)
    assert audit.frames == audit.frames_checked == FRAMES
    assert any(h.reason == "header:PatientName" and h.frames is None for h in audit.hits)
    out = pydicom.dcmread(dst)
    assert out.file_meta.TransferSyntaxUID == syntax and out.NumberOfFrames == FRAMES
    assert out.BurnedInAnnotation == "NO"
    data = video_bytes(out)
    facts = stream_facts(data)
    assert (facts["width"], facts["height"], facts["rate"]) == (320, 240, Fraction(25))
    frames = list(iter_video_frames(data))
    assert len(frames) == FRAMES
    before = list(iter_video_frames(video_bytes(pydicom.dcmread(src))))
    for a, b in zip(before, frames):
        name = a[6:30, 6:190].max(axis=2) > 180                # the name's ink
        assert name.sum() > 200 and (b[6:30, 6:190][name].max(axis=1) < 40).mean() > 0.95
        # the fan below is kept (within the codec's noise)
        assert np.abs(a[80:200, 80:240].astype(int) - b[80:200, 80:240]).mean() < 6
    assert "video: all 12 frames decoded and encoded again" in " ".join(
        n for s in audit.stages for n in s.notes)
    assert b"LARSEN" not in dst.read_bytes()
    assert subprocess.run(["dcmdump", "-q", str(dst)], capture_output=True).returncode == 0


def test_regions_only_video(tmp_path):
    from pixelscrub.options import parse_region
    src = video_dicom(tmp_path / "cine.dcm", H264)
    audit = scrub_file(src, tmp_path / "out.dcm",
                       ScrubOptions(key=KEY, mode="regions-only",
                                    regions=(parse_region("0,0,320,40@0-5"),)))
    assert audit.status == "written"
    frames = list(iter_video_frames(video_bytes(pydicom.dcmread(tmp_path / "out.dcm"))))
    assert frames[0][5:35, 5:300].max() < 40 and frames[8][5:35, 5:300].max() > 180


def test_video_output_is_reread_by_the_verify_stage(tmp_path, monkeypatch):
    """Detection that finds nothing: the verify stage reads the encoded video and finds
    the name itself; the video is encoded again with it blacked out."""
    from pixelscrub import pipeline
    monkeypatch.setattr(pipeline, "find_hits", lambda ds, info, options, audit, **kw: ([], True))
    src = video_dicom(tmp_path / "cine.dcm", H264)
    dst = tmp_path / "out.dcm"
    audit = scrub_file(src, dst, ScrubOptions(key=KEY))
    assert any(h.reason == "verify:header:PatientName" for h in audit.hits)
    assert audit.stage("verify").counts["frames_reread"] == 3
    assert audit.status == "clean", audit.notes
    frames = list(iter_video_frames(video_bytes(pydicom.dcmread(dst))))
    before = list(iter_video_frames(video_bytes(pydicom.dcmread(src))))
    for a, b in zip(before, frames):
        name = a[6:30, 6:190].max(axis=2) > 180
        assert (b[6:30, 6:190][name].max(axis=1) < 40).mean() > 0.9
    # without verify, the blind detection's miss stays in the output
    audit = scrub_file(src, tmp_path / "raw.dcm", ScrubOptions(key=KEY, verify=False))
    raw = list(iter_video_frames(video_bytes(pydicom.dcmread(tmp_path / "raw.dcm"))))
    name = before[0][6:30, 6:190].max(axis=2) > 180
    assert (raw[0][6:30, 6:190][name].max(axis=1) > 150).mean() > 0.8
