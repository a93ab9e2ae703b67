"""Cines stored as video (MPEG-2, MPEG-4 AVC/H.264, HEVC/H.265), through PyAV.

A video transfer syntax holds one stream for all frames, so the frame-by-frame codec
layer does not apply: the stream is decoded with FFmpeg (inside PyAV's wheel), frames
are streamed twice through the same detection as any cine (the static overlay read
once, changing text where it changes), the hits are blacked out on every frame they
are on, and the frames are encoded again with the same codec, container, size,
pixel format and frame rate into the same transfer syntax.  Every frame is
re-encoded (a video stream cannot keep some frames as stored); the audit says so.
"""
from __future__ import annotations

import io
from fractions import Fraction
from typing import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_fragments

from .errors import ScrubError

__all__ = ["VIDEO_SYNTAXES", "is_video", "video_bytes", "iter_video_frames", "encode_video"]

#: Video transfer syntaxes (PS3.5 8.2.5-8.2.8) and the FFmpeg encoder for each.
VIDEO_SYNTAXES = {
    "1.2.840.10008.1.2.4.100": "mpeg2video", "1.2.840.10008.1.2.4.100.1": "mpeg2video",
    "1.2.840.10008.1.2.4.101": "mpeg2video", "1.2.840.10008.1.2.4.101.1": "mpeg2video",
    "1.2.840.10008.1.2.4.102": "libx264", "1.2.840.10008.1.2.4.102.1": "libx264",
    "1.2.840.10008.1.2.4.103": "libx264", "1.2.840.10008.1.2.4.103.1": "libx264",
    "1.2.840.10008.1.2.4.104": "libx264", "1.2.840.10008.1.2.4.104.1": "libx264",
    "1.2.840.10008.1.2.4.105": "libx264", "1.2.840.10008.1.2.4.105.1": "libx264",
    "1.2.840.10008.1.2.4.106": "libx264", "1.2.840.10008.1.2.4.106.1": "libx264",
    "1.2.840.10008.1.2.4.107": "libx265", "1.2.840.10008.1.2.4.108": "libx265",
}


def is_video(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "") or "") in VIDEO_SYNTAXES


def video_bytes(ds: Dataset) -> bytes:
    """The video stream: every fragment of the encapsulated Pixel Data, joined."""
    value = ds.PixelData
    try:
        return b"".join(generate_fragments(value))
    except Exception as exc:  # noqa: BLE001 - malformed encapsulation is one reason
        raise ScrubError(f"encapsulated video is malformed ({type(exc).__name__})",
                         reason="undecodable") from None


def _container(data: bytes):
    import av
    try:
        return av.open(io.BytesIO(data), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise ScrubError(f"video stream cannot be opened ({type(exc).__name__})",
                         reason="undecodable") from None


def iter_video_frames(data: bytes) -> Iterator[np.ndarray]:
    """Each frame of the stream as an RGB uint8 array, decoded one at a time."""
    container = _container(data)
    try:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
    except ScrubError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ScrubError(f"video frame cannot be decoded ({type(exc).__name__})",
                         reason="undecodable") from None
    finally:
        container.close()


#: Demuxer names FFmpeg probes -> the muxer that writes the same container.
_MUXERS = {"mpegvideo": "mpeg2video", "mpeg": "mpeg", "mpegts": "mpegts", "h264": "h264",
           "hevc": "hevc", "mov": "mp4"}


def stream_facts(data: bytes) -> dict:
    """Container format, codec, size, pixel format and frame rate of the stream."""
    container = _container(data)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.base_rate or Fraction(30)
        demuxer = container.format.name.split(",")[0]
        return {"format": _MUXERS.get(demuxer, demuxer), "codec": ctx.name,
                "width": ctx.width, "height": ctx.height,
                "pix_fmt": ctx.pix_fmt or "yuv420p", "rate": Fraction(rate).limit_denominator(1001),
                "profile": ctx.profile}
    finally:
        container.close()


def encode_video(frames: Iterator[np.ndarray], facts: dict, syntax: str) -> tuple[bytes, int]:
    """Encode RGB frames with the input's codec family, container, size, pixel format
    and frame rate; returns the stream and the number of frames."""
    import av
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=facts["format"])
    stream = out.add_stream(VIDEO_SYNTAXES[syntax], rate=facts["rate"])
    stream.width, stream.height = facts["width"], facts["height"]
    stream.pix_fmt = facts["pix_fmt"] if facts["pix_fmt"] in ("yuv420p", "yuv422p") else "yuv420p"
    if facts["codec"] == "mpeg2video":
        stream.bit_rate = 8_000_000
    else:
        stream.options = {"crf": "18", "preset": "medium"}
    n = 0
    for frame in frames:
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in stream.encode(vf):
            out.mux(packet)
        n += 1
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return buf.getvalue(), n


def write_video(out: Dataset, stream: bytes, frames: int) -> None:
    """Put an encoded stream into ``out`` as encapsulated Pixel Data."""
    out.PixelData = encapsulate([stream + (b"\0" if len(stream) % 2 else b"")])
    out["PixelData"].is_undefined_length = True
    out["PixelData"].VR = "OB"
    out.NumberOfFrames = frames
