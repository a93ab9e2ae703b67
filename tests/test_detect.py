"""Detection over single images and cines (real Tesseract), and on pydicom's ultrasound files."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from pixelscrub.detect import Detection, detect_words, summarise_frames
from pixelscrub.ocr import get_engine, ocr_settings
from pixelscrub.propose import ultrasound_regions

from conftest import pydicom_file
from test_propose import draw, fan_image

N = 30
TICK = 5  # the timer shows a new value every TICK frames


@pytest.fixture(scope="module")
def engine():
    return get_engine("auto")


def cine_frame(i: int, *, timer: bool = True, fan: bool = True, label: bool = False) -> np.ndarray:
    """Frame i: speckle fan that changes every frame, a static name banner, a timer,
    optionally a static label burned over the moving fan."""
    img = np.zeros((200, 300), np.uint8)
    if fan:
        img[40:200, 60:240] = fan_image(160, 180, seed=100 + i)
    if label:
        draw(img, "LIVER", (125, 130), scale=0.5)
    draw(img, "DOE^JOHN 12345678", (6, 16), scale=0.45)
    draw(img, "15/01/1980", (200, 16), scale=0.45)
    if timer:
        draw(img, f"00:{i // TICK:02d}", (6, 190), scale=0.5)
    return img


class Counting:
    """A frame factory that counts passes and frames, like a streaming decoder."""

    def __init__(self, n, make=cine_frame, stop=None):
        self.n, self.make, self.stop = n, make, stop
        self.passes = 0

    def __call__(self):
        self.passes += 1
        for i in range(self.n if self.stop is None else min(self.n, self.stop)):
            yield self.make(i)


#: OCR calls of one retry ladder on a level line (read._ladder's rungs)
LADDER = 5


def test_single_frame(engine):
    img = cine_frame(0)
    det = detect_words(lambda: iter([img]), 1, engine=engine)
    assert isinstance(det, Detection)
    texts = [w.text for w in det.words]
    assert "12345678" in texts and "15/01/1980" in texts and "00:00" in texts
    assert det.frames_checked == 1
    # Three single-line proposals share one mosaic: one Tesseract call; the caret
    # name reads with a low word confidence and goes up the retry ladder once.
    assert det.proposals >= 3 and det.ocr_calls - det.rereads == 1 and det.rereads <= LADDER
    assert all(w.frames is None for w in det.words)
    assert set(det.seconds) >= {"propose", "read"}
    # the proposed lines go out too (match.complete_values grows values along them)
    assert len(det.lines) == det.proposals and all(line.reason == "line" for line in det.lines)
    assert all(any(line.box.contains(w.box.intersection(line.box)) and
                   line.box.intersection(w.box).area for line in det.lines) for w in det.words)


def test_cine_static_once_dynamic_per_change(engine):
    frames = Counting(N)
    det = detect_words(frames, N, engine=engine)
    assert frames.passes == 2
    assert det.frames_checked == N
    static = [w for w in det.words if w.frames is None]
    assert [w.text for w in static].count("12345678") == 1
    assert [w.text for w in static].count("15/01/1980") == 1
    for v in range(N // TICK):
        hits = [w for w in det.words if w.text == f"00:{v:02d}"]
        assert hits, (v, [w.text for w in det.words])
        assert hits[0].frames == tuple(range(v * TICK, (v + 1) * TICK))
    # Static lines cost one call each per series, the timer one per value: not per
    # frame.  Speckle in the moving fan may add an occasional false proposal.
    static_lines = len({w.line_id for w in static})
    assert det.ocr_calls - det.rereads <= static_lines + N // TICK + N // 5, det.ocr_calls
    assert det.rereads <= LADDER + N // 5   # the caret name once per series, not per frame
    assert len({w.line_id for w in det.words}) == len({(w.line_id, w.frames) for w in det.words})


def test_cine_ocr_calls_exact_without_fan(engine):
    frames = Counting(N, make=lambda i: cine_frame(i, fan=False))
    det = detect_words(frames, N, engine=engine)
    static_lines = len({w.line_id for w in det.words if w.frames is None and
                        w.text in ("DOE*JOHN", "DOE^JOHN", "12345678", "15/01/1980")})
    assert static_lines == 2
    # All static lines in one mosaic call, then the timer's values (one crop per
    # value, not per frame) read together from their frames, batch_lines to a
    # mosaic call; the caret name goes up the retry ladder once per series.
    per_mosaic = int(ocr_settings()["batch_lines"])
    assert det.ocr_calls - det.rereads == 1 + -(-(N // TICK) // per_mosaic)
    assert det.rereads <= LADDER
    assert det.frames_checked == N
    for v in range(N // TICK):   # each value read from the frames that show it
        hits = [w for w in det.words if w.text == f"00:{v:02d}"]
        assert hits and hits[0].frames == tuple(range(v * TICK, (v + 1) * TICK)), v


def test_cine_frames_read_together_are_bounded(engine):
    # A frame's new crops wait for others to share a mosaic, but never more than
    # cine_read_lines of them: with one line a batch, every timer value costs a call.
    det = detect_words(Counting(N, make=lambda i: cine_frame(i, fan=False)), N, engine=engine,
                       params={"cine_read_lines": 1})
    assert det.ocr_calls - det.rereads == 1 + N // TICK
    for v in range(N // TICK):
        hits = [w for w in det.words if w.text == f"00:{v:02d}"]
        assert hits and hits[0].frames == tuple(range(v * TICK, (v + 1) * TICK)), v


def test_codec_noise_is_not_new_text(engine):
    # A lossy codec changes a few grey levels from frame to frame, even in the
    # overlay: the timer must still cost one call per value, not per frame.
    def noisy(i):
        img = cine_frame(i, fan=False).astype(np.int16)
        img += np.random.default_rng(i).integers(-2, 3, img.shape, dtype=np.int16)
        return np.clip(img, 0, 255).astype(np.uint8)
    det = detect_words(Counting(N, make=noisy), N, engine=engine)
    assert det.frames_checked == N
    assert det.ocr_calls - det.rereads <= 1 + N // TICK and det.rereads <= LADDER, det.ocr_calls
    for v in range(N // TICK):
        hits = [w for w in det.words if w.text == f"00:{v:02d}"]
        assert hits and hits[0].frames == tuple(range(v * TICK, (v + 1) * TICK)), v


def test_label_over_moving_fan_is_read_once(engine):
    det = detect_words(Counting(N, make=lambda i: cine_frame(i, timer=False, label=True)), N,
                       engine=engine)
    liver = [w for w in det.words if w.text == "LIVER"]
    assert len(liver) == 1 and liver[0].frames is None, [(w.text, w.frames) for w in det.words]
    assert det.ocr_calls <= LADDER + N // 5


def test_cine_without_changes_is_read_once(engine):
    frame = cine_frame(0)
    det = detect_words(lambda: (frame for _ in range(12)), 12, engine=engine)
    assert det.frames_checked == 12
    assert all(w.frames is None for w in det.words)
    # Nothing changes: one proposal pass on the mean frame, its lines read in one call
    # (the caret name once more up the retry ladder, on lines of their own).
    assert det.proposals == 3
    assert det.ocr_calls - det.rereads == 1 and det.rereads <= LADDER


def test_short_frame_source_is_not_claimed_checked(engine):
    det = detect_words(Counting(N, stop=20), N, engine=engine)
    assert det.frames_checked < N
    assert any("expected" in n for n in det.notes)


def test_no_frames_checks_nothing(engine):
    for n in (1, 5):
        det = detect_words(lambda: iter([]), n, engine=engine)
        assert det.frames_checked == 0 and det.words == [] and det.ocr_calls == 0
        assert "no frames decoded" in det.notes


def test_frame_source_that_changes_shape_fails(engine):
    def frames():
        yield np.zeros((20, 20), np.uint8)
        yield np.zeros((21, 20), np.uint8)
    with pytest.raises(ValueError):
        detect_words(frames, 2, engine=engine)


def test_summary_tolerance():
    a = np.full((4, 4), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 104
    b[1, 1] = 130
    s = summarise_frames(iter([a, b]), tolerance=6)
    assert s.frames == 2 and s.static[0, 0] and not s.static[1, 1]
    assert s.mean[1, 1] == 115
    assert summarise_frames(iter([]), tolerance=6) is None


def _display(ds) -> np.ndarray:
    """A uint8 view of a bundled file, only for these tests (not a codec layer)."""
    arr = ds.pixel_array  # pydicom 3 returns RGB for YBR by default
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.dtype != np.uint8:
        arr = (arr >> 8).astype(np.uint8)
    return arr


@pytest.mark.parametrize("name,expected", [
    ("examples_rgb_color.dcm", {"BAPTIST", "LYMPH", "NODE"}),
    ("examples_palette.dcm", {"PHILIPS", "Healthcare", "11-05-25-142825"}),
    ("examples_ybr_color.dcm", {"Gen"}),
])
def test_real_ultrasound_files(engine, name, expected):
    ds = pydicom.dcmread(pydicom_file(name))
    arr = _display(ds)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = (lambda: iter(arr)) if n > 1 else (lambda: iter([arr]))
    det = detect_words(frames, n, engine=engine, imaging_regions=ultrasound_regions(ds))
    texts = {w.text for w in det.words}
    assert expected <= texts, sorted(texts)
    assert det.frames_checked == n
    h, w = arr.shape[1:3] if n > 1 else arr.shape[:2]
    assert all(0 <= wd.box.x0 < wd.box.x1 <= w and 0 <= wd.box.y0 < wd.box.y1 <= h
               for wd in det.words)
