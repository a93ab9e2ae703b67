"""Read stage with real Tesseract on synthetic crops: text, boxes, rotations, engines."""
from __future__ import annotations

import re
import threading

import cv2
import numpy as np
import pytest
from rapidfuzz import fuzz

from pixelscrub.ocr import OcrEngine, available_engines, get_engine, ocr_settings
from pixelscrub.propose import propose_text_regions
from pixelscrub.read import prepare_crop, read_batch, read_proposal, read_proposals
from pixelscrub.records import Box, Proposal, Word

from test_propose import draw, fan_image, radiograph_display


@pytest.fixture(scope="module")
def engine():
    return get_engine("auto")


def texts(words):
    return [w.text for w in words]


def near(a: Box, b: Box, tol: int = 3) -> bool:
    return (abs(a.x0 - b.x0) <= tol and abs(a.y0 - b.y0) <= tol
            and abs(a.x1 - b.x1) <= tol and abs(a.y1 - b.y1) <= tol)


def test_auto_engine_is_in_process(engine):
    assert isinstance(engine, OcrEngine)
    assert engine.name == "tesserocr"
    assert available_engines()[0] == "tesserocr"
    with pytest.raises(ValueError):
        get_engine("nope")
    assert get_engine("auto") is get_engine("tesserocr")  # started once per thread
    other = []
    t = threading.Thread(target=lambda: other.append(get_engine("tesserocr")))
    t.start()
    t.join()
    assert other[0] is not engine and other[0].name == "tesserocr"


@pytest.mark.parametrize("name", ["tesserocr", "pytesseract"])
def test_each_engine_reads_a_line_with_boxes(name):
    eng = get_engine(name)
    img = np.full((50, 320), 255, np.uint8)
    box = draw(img, "12345678 15/01/1980", (8, 34), scale=0.8, color=0, thick=2)
    words = eng.read_lines(img, psm=7)
    assert texts(words) == ["12345678", "15/01/1980"]
    assert all(0 <= w.confidence <= 100 for w in words)
    assert words[0].box.x0 <= box.x0 + 3 and words[1].box.x1 >= box.x1 - 3
    assert words[0].box.x1 < words[1].box.x0
    with pytest.raises(ValueError):
        eng.read_lines(np.zeros((5, 5, 3), np.uint8))


def test_words_in_image_coordinates_with_unique_lines(engine):
    img = np.zeros((160, 400), np.uint8)
    a = draw(img, "DOE^JOHN", (30, 40), font=cv2.FONT_HERSHEY_DUPLEX, scale=0.8)
    b = draw(img, "12345678", (200, 90), font=cv2.FONT_HERSHEY_SIMPLEX, scale=0.6)
    c = draw(img, "15/01/1980", (40, 140), font=cv2.FONT_HERSHEY_COMPLEX, scale=0.6)
    props = propose_text_regions(img)
    words = read_proposals(img, props, engine)
    by_text = {w.text: w for w in words}
    assert "12345678" in by_text and "15/01/1980" in by_text
    # the caret may be read as a caret, a look-alike or a gap between two words
    name_words = [w for w in words if w.box.intersects(a)]
    name_text = re.sub(r"[\s*\-~]+", "^", " ".join(w.text for w in name_words))
    assert fuzz.ratio(name_text, "DOE^JOHN") >= 85, name_text
    assert near(by_text["12345678"].box, b)
    assert near(by_text["15/01/1980"].box, c)
    covered = name_words[0].box
    for w in name_words[1:]:
        covered = covered.union(w.box)
    assert covered.intersection(a).area >= 0.8 * a.area
    assert len({w.line_id for w in words}) == len(props) == 3
    assert all(w.frames is None and w.layer == "pixels" for w in words)


def test_tiny_text_is_upscaled_and_read(engine):
    img = np.zeros((40, 160), np.uint8)
    box = draw(img, "12345678", (8, 25), font=cv2.FONT_HERSHEY_PLAIN, scale=0.6)
    assert box.height <= 9
    words = read_proposals(img, propose_text_regions(img), engine)
    assert texts(words) == ["12345678"]
    assert near(words[0].box, box)


@pytest.mark.parametrize("k,expect_rotation", [(1, 90), (3, 270)])
def test_rotated_label_is_read(engine, k, expect_rotation):
    img = np.zeros((220, 120), np.uint8)
    strip = np.zeros((26, 170), np.uint8)
    draw(strip, "12345678", (6, 20), scale=0.6)
    img[20:190, 80:106] = np.rot90(strip, k)
    ys, xs = np.nonzero(img)
    ink = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    props = propose_text_regions(img)
    words = read_proposals(img, props, engine)
    assert "12345678" in texts(words), words
    w = next(w for w in words if w.text == "12345678")
    assert w.rotation == expect_rotation
    assert near(w.box, ink, tol=4)


def _vertical_line(img: np.ndarray) -> Proposal:
    """The proposal of the one vertical line drawn in ``img``, from its ink: these
    tests are about reading a line, not about how the propose stage splits a name
    whose caret gap depends on the OpenCV release's glyphs."""
    ys, xs = np.nonzero(img)
    return Proposal(Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                    rotation=90)


@pytest.mark.parametrize("k,expect_rotation", [(1, 90), (3, 270)])
@pytest.mark.parametrize("name,font,scale", [
    ("MULLER^LIAM", cv2.FONT_HERSHEY_SIMPLEX, 0.45),
    ("TANAKA^ELENA", cv2.FONT_HERSHEY_COMPLEX, 0.5),
])
def test_rotated_caret_name_is_read_right_way_up(engine, k, expect_rotation, name, font, scale):
    """The caret sinks Tesseract's word confidence of the upright reading below that
    of the upside-down one (MULLER*LIAM 0 vs WVITYSTINN 49); its letters are still
    surer than the misreading's, and those decide which way up the line reads."""
    strip = np.zeros((30, 200), np.uint8)
    draw(strip, name, (4, 20), font=font, scale=scale, color=235)
    img = np.zeros((240, 80), np.uint8)
    img[20:220, 30:60] = np.rot90(strip, k)
    words, calls = read_proposal(img, _vertical_line(img), engine)
    assert calls == 3  # 90, 270 and unrotated, as before
    best = [w for w in words if w.line_id == 0]  # the winning reading comes first
    assert best and {w.rotation for w in best} == {expect_rotation}, texts(words)
    assert re.findall("[A-Z]+", " ".join(texts(best))) == name.split("^")


@pytest.mark.parametrize("k,expect_rotation", [(1, 90), (3, 270)])
@pytest.mark.parametrize("name", ["ROSSI^JOHN", "HOSS^JOHN"])
def test_close_call_keeps_both_readings(engine, k, expect_rotation, name):
    """Turned upside down, ROSSI^JOHN reads NHOC.ISSOUY with letters as sure as the
    upright ones (O, S, H, I, N look alike both ways up): Tesseract's evidence
    cannot decide, so both readings go on to the match stage."""
    strip = np.zeros((30, 200), np.uint8)
    draw(strip, name, (4, 20), scale=0.45, color=235)
    img = np.zeros((240, 80), np.uint8)
    img[20:220, 30:60] = np.rot90(strip, k)
    words, calls = read_proposal(img, _vertical_line(img), engine)
    assert calls == 3
    upright = [w.text for w in words if w.rotation == expect_rotation]
    assert re.findall("[A-Z]+", " ".join(upright)) == name.split("^"), texts(words)
    assert len({w.line_id for w in words}) == len({w.rotation for w in words})


def test_tesserocr_gives_character_confidences(engine):
    """The word confidence of DOE^JOHN is near 0; its letters are near 100."""
    img = np.full((50, 200), 255, np.uint8)
    draw(img, "DOE^JOHN", (8, 34), scale=0.8, color=0, thick=2)
    words = engine.read_lines(img, psm=7)
    assert len(words) == 1 and len(words[0].char_confidences) == len(words[0].text)
    assert words[0].confidence < 50
    assert sorted(words[0].char_confidences)[1] > 95


@pytest.mark.parametrize("color", [(255, 255, 0), (0, 255, 255), (40, 90, 255)])
def test_coloured_label_over_speckle_is_read(engine, color):
    rgb = np.repeat(fan_image(160, 260, seed=7)[..., None], 3, axis=2)
    draw(rgb, "15/01/1980", (70, 90), scale=0.55, color=color)
    words = read_proposals(rgb, propose_text_regions(rgb), engine)
    assert "15/01/1980" in texts(words), texts(words)


def test_low_contrast_label_is_read(engine):
    raw, window = radiograph_display(120, 260)
    label = np.zeros((120, 260), np.uint8)
    draw(label, "12345678", (30, 70), scale=0.6)
    img = window(raw + (label / 255.0) * 900)
    words = read_proposals(img, propose_text_regions(img), engine)
    assert "12345678" in texts(words), texts(words)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_prepare_crop_maps_boxes_back(rotation):
    img = np.full((60, 90), 200, np.uint8)
    img[20:26, 31:47] = 10  # a dark block, a stand-in for a word
    prep = prepare_crop(img, Proposal(Box(25, 15, 60, 35), rotation=rotation))
    ys, xs = np.nonzero(prep.pixels < 128)
    found = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    back = prep.to_image(found)
    assert near(back, Box(31, 20, 47, 26), tol=1), (back, rotation)
    assert prep.scale > 1  # a 20 px high crop is upscaled
    assert prep.pixels[0, 0] == 255  # white frame, dark text


def test_flat_crop_is_not_sent_to_ocr(engine):
    img = np.full((50, 50), 90, np.uint8)
    words, calls = read_proposal(img, Proposal(Box(5, 5, 40, 20)), engine)
    assert words == [] and calls == 0


def test_read_proposal_keeps_frames_and_layer(engine):
    img = np.zeros((40, 200), np.uint8)
    draw(img, "12345678", (8, 28), scale=0.6)
    prop = Proposal(Box(4, 8, 120, 34), frames=(3, 4), layer="overlay:6000")
    words, calls = read_proposal(img, prop, engine)
    assert calls == 1
    assert [(w.text, w.frames, w.layer) for w in words] == [("12345678", (3, 4), "overlay:6000")]
    assert isinstance(words[0], Word)


def test_mosaic_reads_like_single_lines(engine):
    img = np.zeros((200, 420), np.uint8)
    lines = ["DOE JOHN", "12345678", "15/01/1980", "HILLCREST IMAGING", "MRN 5870441"]
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN,
             cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_SIMPLEX]
    scales = [0.5, 0.7, 1.0, 0.45, 0.6]
    for k, (text, font, scale) in enumerate(zip(lines, fonts, scales)):
        draw(img, text, (10 + 30 * k, 30 + 36 * k), font=font, scale=scale)
    props = propose_text_regions(img)
    assert len(props) == 5
    cfg = dict(ocr_settings())
    batched, calls = read_batch(img, props, engine, settings=cfg)
    assert calls == 1
    from pixelscrub.read import _READ_BEFORE
    _READ_BEFORE.seen.clear()      # read again for real, one line a call
    single, single_calls = read_batch(img, props, engine, settings={**cfg, "batch_lines": 1})
    assert single_calls == 5
    for b, s in zip(batched, single):
        assert " ".join(w.text for w in b) == " ".join(w.text for w in s)
        for wb, ws in zip(b, s):
            assert near(wb.box, ws.box, tol=2)
    assert [" ".join(w.text for w in b) for b in batched] == lines
    cfg3 = {**cfg, "batch_lines": 3}
    _READ_BEFORE.seen.clear()
    assert read_batch(img, props, engine, settings=cfg3)[1] == 2


def test_line_at_the_edge_of_a_white_band_gets_a_second_chance(engine):
    """Dark text on a white title band right above a black image: the black in the
    crop padding shifts the context ground estimate; the retry with the line's own
    ground reads it."""
    img = np.zeros((80, 240), np.uint8)
    img[:44] = 255
    ink = draw(img, "18:23:41", (150, 41), color=50, scale=0.55)
    props = [p for p in propose_text_regions(img) if p.box.intersects(ink)]
    assert props
    words, _ = read_batch(img, props, engine)
    assert "18:23:41" in [w.text for ws in words for w in ws]
    without = dict(ocr_settings(), retry_below_confidence=0)
    words, _ = read_batch(img, props, engine, settings=without)
    assert "18:23:41" not in [w.text for ws in words for w in ws]


@pytest.mark.parametrize("text", ["18:23:41", "DOB 12/03/1961"])
def test_second_chance_when_one_word_is_read_poorly(engine, text):
    """The first reading of these lines holds a confident stray character ("4" at
    81) beside garbage: a line is read poorly when any of its words is."""
    img = np.zeros((80, 240), np.uint8)
    img[:44] = 255
    draw(img, text, (6, 41), font=cv2.FONT_HERSHEY_DUPLEX, scale=0.5, color=30)
    props = [p for p in propose_text_regions(img) if p.box.y0 < 44]
    words, _ = read_batch(img, props, engine)
    assert " ".join(w.text for ws in words for w in ws) == text


def _two_tone_line() -> tuple[np.ndarray, Proposal]:
    """'MR#' light on a dark band, then '629540382' in dark ink on a lighter patch:
    one text line whose value has the other polarity."""
    img = np.full((60, 420, 3), 40, np.uint8)
    img[10:50, 95:400] = 150
    cv2.putText(img, "MR#", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (200, 220, 255), 2, cv2.LINE_AA)
    cv2.putText(img, "629540382", (110, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (60, 40, 20), 2,
                cv2.LINE_AA)
    return img, Proposal(Box(6, 16, 300, 46))


def test_remainder_of_a_two_tone_line_is_read(engine):
    from pixelscrub.read import fold_remainder, remainders
    img, prop = _two_tone_line()
    first, _ = read_batch(img, [prop], engine)
    assert "629540382" not in texts(first[0])     # one polarity per crop: the value is lost
    rest = remainders(img, [prop], first)
    assert len(rest) == 1 and rest[0][0] == 0 and rest[0][1].box.x0 > 60
    more, _ = read_batch(img, [rest[0][1]], engine)
    words = fold_remainder(first[0], more[0])
    assert "629540382" in texts(words)
    # the label and its value are one line again, left to right
    assert len({w.line_id for w in words}) == 1
    assert [w.index for w in words] == list(range(len(words)))
    assert texts(words)[-1] == "629540382"


def test_a_line_read_whole_has_no_remainder(engine):
    from pixelscrub.read import remainders
    img = np.full((60, 420), 20, np.uint8)
    cv2.putText(img, "DOE JOHN 12345678", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 230, 2, cv2.LINE_AA)
    prop = Proposal(Box(6, 16, 330, 46))
    words, _ = read_batch(img, [prop], engine)
    assert remainders(img, [prop], words) == []


def test_a_line_read_before_is_not_read_again(engine):
    """The overlay of a series: the same line crop on the next image costs no call."""
    from pixelscrub import read
    img = np.full((60, 420), 20, np.uint8)
    cv2.putText(img, "Gain 52 Depth 16cm", (10, 40), cv2.FONT_HERSHEY_DUPLEX, 0.9, 230, 2,
                cv2.LINE_AA)
    prop = Proposal(Box(6, 14, 330, 48))
    first, calls = read_batch(img, [prop], engine)
    assert calls == 1 and texts(first[0])[:2] == ["Gain", "52"]
    moved = np.full((120, 500), 20, np.uint8)       # the same line elsewhere in another image
    moved[50:110, 40:460] = img
    again, calls = read_batch(moved, [Proposal(Box(46, 64, 370, 98))], engine)
    assert calls == 0 and texts(again[0]) == texts(first[0])
    assert again[0][0].box.x0 == first[0][0].box.x0 + 40 and again[0][0].box.y0 == first[0][0].box.y0 + 50
    other = img.copy()
    cv2.putText(other, "9", (400, 40), cv2.FONT_HERSHEY_DUPLEX, 0.9, 230, 2, cv2.LINE_AA)
    _, calls = read_batch(other, [Proposal(Box(6, 14, 420, 48))], engine)
    assert calls == 1                                # other pixels: read
    assert read._READ_BEFORE.hits >= 1


@pytest.mark.parametrize("text,parts", [
    ("Born:1966-05-13", ["Born:", "1966-05-13"]), ("by:Prof.", ["by:", "Prof."]),
    ("Geb.:1969", ["Geb.:", "1969"]), ("Pat:Kaczmarek,", ["Pat:", "Kaczmarek,"]),
    ("13:54", ["13:54"]), ("Name:", ["Name:"]), (":Prof", [":Prof"]), ("07:18:22", ["07:18:22"]),
    ("MR#135973851", ["MR#", "135973851"]), ("Acc#RX2088450", ["Acc#", "RX2088450"]),
    ("MR#", ["MR#"]), ("#12", ["#12"]),
])
def test_a_label_glued_to_its_value_is_split(text, parts):
    from pixelscrub.ocr.base import OcrWord
    from pixelscrub.read import split_glued_label
    whole = OcrWord(text, Box(10, 0, 110, 12), 91.0, 2)
    got = split_glued_label(whole)
    assert [w.text for w in got] == parts
    assert got[0].box.x0 == 10 and got[-1].box.x1 == 110
    assert all(a.box.x1 == b.box.x0 for a, b in zip(got, got[1:]))
    assert all(w.line == 2 and w.confidence == 91.0 for w in got)


def test_two_letters_among_specks_of_texture_look_like_text():
    """The end of a line over speckle ('03' of a clock time): the specks around the
    letters outnumber them, and must not set the letter height."""
    from pixelscrub.read import looks_like_text
    crop = np.full((70, 140), 255, np.uint8)
    cv2.putText(crop, "03", (14, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 0, 3, cv2.LINE_AA)
    rng = np.random.default_rng(5)
    specks = crop.copy()
    for x, y in zip(rng.integers(80, 134, 8), rng.integers(8, 60, 8)):
        cv2.rectangle(specks, (int(x), int(y)), (int(x) + 3, int(y) + 4), 0, -1)
    assert looks_like_text(specks, 2, among_specks=True)
    assert not looks_like_text(specks, 2)        # the default: heights of all pieces
    only_specks = np.full((70, 140), 255, np.uint8)
    only_specks[:, 70:] = specks[:, 70:]
    assert not looks_like_text(only_specks, 2, among_specks=True)


@pytest.mark.parametrize("seed, mean", [(3, 170), (7, 190)])
def test_white_text_over_bright_speckle_is_read_without_its_specks(engine, monkeypatch, seed, mean):
    """The speckle's brightest grains pass the crop's half-contrast threshold with
    the letters; the last rung of the retry ladder drops those specks."""
    from test_propose import speckle
    from pixelscrub import read
    img = np.clip(speckle(70, 460, seed, mean=mean), 0, 255).astype(np.uint8)
    box = draw(img, "Dr. Bjorn Duffy", (10, 48), scale=1.1, color=255, thick=2)
    prop = Proposal(box.expand(3, 460, 70), None, "pixels", 0, "single")
    prep = prepare_crop(img, prop)

    def ladder_reads():
        found, _, _ = read._ladder(prep, prop, engine, ocr_settings())
        return " ".join(texts(found))

    assert "Duffy" in ladder_reads()
    monkeypatch.setattr(read, "_without_specks", lambda pixels: pixels)
    assert "Duffy" not in ladder_reads()       # the rung is what reads it


@pytest.mark.parametrize("text, garbled", [
    ("23.C9.2221", True), ("2O24-10-03", True), ("123A456", True),
    ("28.09.2021", False), ("RX5572911", False), ("22-DEC-49", False), ("I1-S95", False),
    ("MI1.5", False), ("C5-1", False), ("1971S", False), ("x1024", False)])
def test_a_letter_wedged_into_a_long_number_is_a_misread(text, garbled):
    from pixelscrub.read import _garbled_number
    assert _garbled_number(text) is garbled


def test_a_dark_line_over_the_top_of_white_text_is_read_in_its_own_polarity(engine):
    """A dark line on grey whose box reaches into the white line under it: the
    white strokes' stronger contrast makes the crop's heavier ink tail the white
    one, the dark letters wash out to nothing, and the line is neither read nor
    unread.  Read again in the polarity that shows a row of characters, it reads."""
    from pixelscrub.read import reread_doubtful
    img = np.full((70, 320), 120, np.uint8)
    cv2.putText(img, "ROSENHANG", (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 85, 2, cv2.LINE_AA)
    cv2.putText(img, "WESTBROOK CLINIC", (10, 52), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2,
                cv2.LINE_AA)
    prop = Proposal(Box(8, 8, 200, 38))
    words, _ = read_batch(img, [prop], engine)
    assert "ROSENHANG" not in [w.text for w in words[0]]     # the washed-out first reading
    out, unread, calls = reread_doubtful(img, [prop], words, engine)
    assert "ROSENHANG" in [w.text for w in out[0]] or unread, [w.text for w in out[0]]
    assert calls >= 1


@pytest.mark.parametrize("text, spelled", [("OspeceleSea", True), ("ILMAZAANDREA\"B-", True),
                                           ("se#", False), ('"Ds', False), ("a-b-c-d-e", False),
                                           ("Zoom", False)])
def test_a_long_word_spelled_out_unsure_earns_a_re_read(text, spelled):
    """Letters Tesseract saw but could not read, not marks of texture or a short word."""
    from pixelscrub.read import _spelled_out
    assert _spelled_out([Word(text, Box(0, 0, 60, 10), 13.0)], ocr_settings()) is spelled
