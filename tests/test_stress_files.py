"""Whole-pipeline checks on stress files (pixelscrub.synth.stress) of the tuning
seeds (1000-1999), each a case the pipeline once missed.  The held-out seeds
(2000-2999) are never used here."""
from __future__ import annotations

import pytest

from pixelscrub.bench.score import score_file
from pixelscrub.options import ScrubOptions
from pixelscrub.pipeline import scrub_file
from pixelscrub.synth.stress import available_faces, stress_file
from pixelscrub.synth.truth import read_truth


def _scrubbed(tmp_path, seed: int, index: int):
    src = stress_file(tmp_path, index, seed)
    truth = read_truth(tmp_path / "truth" / f"{src.stem}.json")
    dst = tmp_path / "out" / src.name
    audit = scrub_file(src, dst, ScrubOptions(key=b"stress-test-key-0123456789abcdef"))
    assert audit.status in ("clean", "unverified"), audit.error
    return {i.text: i for i in score_file(truth, src, dst, ocr=False).items}


@pytest.mark.skipif("dejavu-sans" not in available_faces(), reason="DejaVu fonts missing")
def test_bold_large_dates_are_read_through_their_washed_out_cores(tmp_path):
    """Seed 1003 file 3: 36 px bold white text over a gradient, no header left.
    A ground window one line high is mostly ink inside bold strokes, so the
    strokes' cores wash out and Tesseract reads '22-E=6C-49' and a confident
    '23.C9.2221': the wide-ground rung and the garbled-number check find them."""
    items = _scrubbed(tmp_path, 1003, 3)
    assert items["22-DEC-49"].removed
    assert items["28.09.2021 12:36"].removed
    assert items["Acc:"].kept and items["Date:"].kept


@pytest.mark.skipif("liberation-mono" not in available_faces(), reason="Liberation fonts missing")
@pytest.mark.parametrize("seed, index, text", [(1002, 59, "10/09/2021 11:26"),
                                               (1002, 58, "386459690"),
                                               (1003, 15, "MOREAU^IMANI")])
def test_a_value_read_in_part_is_redacted_to_the_end_of_its_ink(tmp_path, seed, index, text):
    """OCR matched the start of these values and left their ends outside every
    confident word (low contrast, gradient or speckle ground): the hit grows along
    the proposed text line (match.complete_values)."""
    items = _scrubbed(tmp_path, seed, index)
    assert items[text].removed, items[text].coverage


@pytest.mark.skipif("dejavu-sans" not in available_faces(), reason="DejaVu fonts missing")
def test_a_dark_line_washed_out_by_white_text_below_is_read_in_its_own_polarity(tmp_path):
    """Seed 1002 file 35: 'Am Rosenhang', dark on grey anatomy, in a proposal box
    that reaches into the white text under it.  Prepared by its heavier (white)
    ink tail the line showed a few specks, was neither read nor judged unread,
    and the file was certified with the institution readable."""
    items = _scrubbed(tmp_path, 1002, 35)
    assert items["Am Rosenhang"].removed and items["Klinikum"].removed
    assert items["Patient:"].kept


@pytest.mark.skipif("dejavu-mono" not in available_faces(), reason="DejaVu fonts missing")
def test_a_physician_with_title_and_degree_read_in_pieces_is_redacted_whole(tmp_path):
    """Seed 1005 file 8, over a bright band: 'Dr Rafa Mc eau, MD' (the end of Moreau
    read on its own) and 'Pro Bjorn Halvorsen MD' ('Prof.' misread, 'Bjorn' unread):
    the name's tail, title and degree go with it; the labels stay."""
    items = _scrubbed(tmp_path, 1005, 8)
    assert items["Dr Rafael Moreau, MD"].removed
    assert items["Prof. Bjorn Halvorsen MD"].removed
    assert items["Zuweiser:"].kept and items["Sonographer:"].kept


@pytest.mark.skipif("liberation-sans" not in available_faces(), reason="Liberation fonts missing")
@pytest.mark.parametrize("seed, index, text", [(1006, 10, "2025-07-04 07:49"),
                                               (1007, 24, "27.07.2022 06:14")])
def test_small_faint_text_over_a_blocky_ground_is_proposed(tmp_path, seed, index, text):
    """Cap height 7, a few grey levels above anatomy or speckle, in a JPEG of low
    quality: at the usual stroke threshold the letters break into pieces below
    character size and the line was never proposed (1006/10 stayed readable).
    The faint pass (propose step 8) finds it as a weak lead."""
    items = _scrubbed(tmp_path, seed, index)
    assert items[text].removed, items[text].coverage


@pytest.mark.skipif("dejavu-mono" not in available_faces(), reason="DejaVu fonts missing")
def test_a_degree_of_two_touching_letters_joins_its_line(tmp_path):
    """Seed 1002 file 15: 'Castellanos, MD' in a small monospace face; M and D
    touch, one blob too short to be a line alone, and the gap after the comma is
    wider than the letters are high: the line ended at 'Castellanos' and ', MD'
    stayed.  A stub joins the line it ends (propose._join_rows)."""
    items = _scrubbed(tmp_path, 1002, 15)
    assert items["Dr. Aiko Castellanos, MD"].removed, items["Dr. Aiko Castellanos, MD"].coverage
    assert items["Ref:"].kept


@pytest.mark.skipif("dejavu-sans" not in available_faces(), reason="DejaVu fonts missing")
def test_a_name_read_as_garbage_after_its_label_is_redacted_over_the_labels_rows(tmp_path):
    """Seed 1002 file 17: 'Pt Name: BAKER BJORN', bold 30 px caps over anatomy, the
    name read as garbage whose boxes are shorter than the ink: the label's value
    is redacted over the label's rows, not only the garbage's (its bottom three
    rows of ink stayed)."""
    items = _scrubbed(tmp_path, 1002, 17)
    assert items["BAKER BJORN"].removed, items["BAKER BJORN"].coverage
    assert items["Pt Name:"].kept



@pytest.mark.skipif("liberation-narrow" not in available_faces(), reason="Liberation fonts missing")
def test_small_touching_letters_spelled_out_are_read_again(tmp_path):
    """Seed 1006 file 4: 'Ospedale Sa' (an institution cut at the edge) in 7 px caps
    of a narrow face: the letters touch, the ink is three pieces, too few for a
    line of its own, and Tesseract's one reading ('OspeceleSea' at 13) stood; the
    file was certified with the institution readable.  A long word spelled out
    over few pieces goes up the retry ladder, which reads 'Ospedale Sa'."""
    items = _scrubbed(tmp_path, 1006, 4)
    assert items["Ospedale Sa"].removed, items["Ospedale Sa"].coverage
    assert items["Nom:"].kept


@pytest.mark.skipif("liberation-sans" not in available_faces(), reason="Liberation fonts missing")
def test_a_name_the_header_lacks_and_the_1990_lists_lack_is_redacted(tmp_path):
    """Seed 1008 file 56: 'Patient: Priya Lindgren' in wide letter spacing, each word
    read on its own and the label's colon lost, the header naming someone else:
    only the name lexicon can tell, and the 1990 US lists have no Priya.  The file
    was certified with the name readable."""
    items = _scrubbed(tmp_path, 1008, 56)
    assert items["Priya Lindgren"].removed, items["Priya Lindgren"].coverage
    assert items["Patient:"].kept


@pytest.mark.skipif("dejavu-mono" not in available_faces(), reason="DejaVu fonts missing")
def test_a_name_after_a_label_missing_its_first_letter_is_redacted_whole(tmp_path):
    """Seed 1009 file 33: 'Patient: LINDGREN YUSUF', 37 px caps over anatomy, read as
    'atient: LIND' and, on another line, 'LINDGREN YUSUI': the label lost its P and
    the given name its F, the header names someone else.  The file was certified
    with the name readable.  A label may lose its first letter; a name it announces
    read as one word takes the next name-like word on its row."""
    items = _scrubbed(tmp_path, 1009, 33)
    assert items["LINDGREN YUSUF"].removed, items["LINDGREN YUSUF"].coverage
    assert items["Patient:"].kept
