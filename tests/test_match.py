"""Matching OCR words against header terms, patterns, labels and the allowlist."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings, strategies as st
from pydicom.dataset import Dataset

from conftest import pydicom_file
from pixelscrub.match import (complete_values, find_phi_in_text, is_allowlisted, match_params,
                              match_words, normalize)
from pixelscrub.phi_terms import PhiTerm, phi_terms_from_header
from pixelscrub.records import Box, Hit, Word


def line(texts, line_id=0, y=10, x=10, h=12, cw=8, frames=None, layer="pixels"):
    """Words of one OCR line, laid out left to right like a monospace overlay."""
    out = []
    for i, t in enumerate(texts):
        w = len(t) * cw
        out.append(Word(t, Box(x, y, x + w, y + h), 90.0, line_id, i, frames, layer))
        x += w + cw
    return out


def _header():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN^A^DR^JR"
    ds.PatientID = "1O2345B7"
    ds.PatientBirthDate = "19800115"
    ds.StudyDate = "20240302"
    ds.StudyTime = "143005"
    ds.AccessionNumber = "ACC998877"
    ds.InstitutionName = "Saint Mary Hospital"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    return ds


@pytest.fixture(scope="module")
def terms():
    return phi_terms_from_header(_header())


def _found(words, terms, **kw):
    return [(h.text, h.reason) for h in match_words(words, terms, **kw)]


@pytest.mark.parametrize("texts", [
    ["DOE,", "JOHN"], ["DOE", "JOHN"], ["John", "Doe"], ["J.", "DOE"], ["DOE", "J"],
    ["JOHN", "A", "DOE"], ["JOHN", "A.", "DOE"], ["DOE^JOHN^A^DR^JR"], ["Doe,John"],
    ["DOE"], ["D0E,", "J0HN"], ["DOEJOHN"],
])
def test_name_forms_are_hits(terms, texts):
    hits = match_words(line(texts), terms)
    assert [h.reason for h in hits] == ["header:PatientName"]
    words = line(texts)
    box = words[0].box
    for w in words[1:]:
        box = box.union(w.box)
    # the box holds the words, and may reach past them where the name's written
    # form goes on (the middle name A after "DOE, JOHN")
    got = hits[0].box
    assert (got.x0, got.y0, got.y1) == (box.x0, box.y0, box.y1) and got.x1 >= box.x1
    assert hits[0].text == " ".join(texts)


@pytest.mark.parametrize("texts, more", [
    (["GREGORY"], len(" HOUSE")),            # the given name read, the surname not
    (["DOE,", "JOHN"], len("A")),            # the middle name unread ("DOE JOHN A")
    (["Dr", "GREGORY", "HOU"], len("SE")),   # the surname's end unread (a title before)
    (["DOE^JOHN^A^DR^JR"], 0),               # the whole value
    (["HOUSE,", "GREGORY", "MD"], 0),        # a degree after it: the name is complete
])
def test_a_name_read_in_part_is_redacted_to_its_printed_length(terms, texts, more):
    """What OCR did not read of a name (over speckle the rest is often never even
    proposed) is most likely printed right after what it read, in the name's
    shortest longer written form."""
    words = line(texts, cw=8)
    (hit,) = [h for h in match_words(words, terms) if h.reason.startswith("header:")]
    assert hit.box.x1 == words[-1].box.x1 + 8 * more


def test_the_rest_of_a_name_stops_before_the_next_field(terms):
    words = line(["GREGORY", "ID:", "123"], cw=8)
    (hit,) = [h for h in match_words(words, terms) if h.reason.startswith("header:")]
    assert hit.box.x1 < words[1].box.x0


def test_name_with_one_ocr_error_is_a_hit_with_lower_score(terms):
    (hit,) = match_words(line(["DOE,", "JOHM"]), terms)
    assert hit.reason == "header:PatientName" and 80 <= hit.score < 100


def test_initials_alone_are_not_hits_but_next_to_phi_they_are(terms):
    assert _found(line(["JD"]), terms) == []
    assert _found(line(["JD", "Gain", "50"]), terms) == []
    found = _found(line(["J.D.", "15/01/1980"]), terms)
    assert ("J.D.", "header:PatientName") in found
    assert ("15/01/1980", "header:PatientBirthDate") in found


def test_name_split_over_two_lines_gives_one_hit_per_line():
    ds = Dataset()
    ds.PatientName = "LI^WEI"
    terms = phi_terms_from_header(ds)
    # "LI" alone is too short to be redacted anywhere...
    assert _found(line(["LI", "12.5", "cm"]), terms) == []
    # ...but "LI" at the end of a line with "WEI" starting the line just below is the name
    words = line(["Gain", "50", "LI"], line_id=0, y=10) + line(["WEI", "TIS", "0.4"], 1, y=24)
    hits = match_words(words, terms)
    assert sorted((h.text, h.reason) for h in hits) == [
        ("LI", "header:PatientName"), ("WEI", "header:PatientName")]
    assert {h.box.y0 for h in hits} == {10, 24}
    # a line far below, or beside rather than below, does not join
    far = line(["LI"], 0, y=10) + line(["X", "WEI"], 1, y=200)
    assert _found(far, terms) == [("WEI", "header:PatientName")]


def test_dates_in_other_formats(terms):
    for texts in (["15-Jan-1980"], ["15", "JAN", "80"], ["01/15/1980"], ["19800115"],
                  ["Jan", "15,", "1980"], ["15", "janvier", "1980"], ["2024-03-02"],
                  ["02.03.2024"]):
        found = _found(line(texts), terms)
        assert len(found) == 1 and found[0][1] in ("header:PatientBirthDate",
                                                   "header:StudyDate"), texts


def test_times(terms):
    assert _found(line(["14:30:05"]), terms) == [("14:30:05", "header:StudyTime")]
    assert _found(line(["2:30", "PM"]), terms) == [("2:30 PM", "header:StudyTime")]


def test_id_with_confusable_characters_matches(terms):
    assert _found(line(["102345B7"]), terms) == [("102345B7", "header:PatientID")]
    assert _found(line(["lO2345B7"]), terms) == [("lO2345B7", "header:PatientID")]
    assert normalize("1O2345B7") == normalize("102345B7") == "10234587"


def test_other_number_does_not_match_header_id():
    ds = Dataset()
    ds.PatientID = "48213067"
    terms = phi_terms_from_header(ds)
    hits = match_words(line(["Ref", "48213067"]), terms)
    assert [h.reason for h in hits] == ["header:PatientID"]
    # a different 8-digit number is redacted only by the long-number pattern rule
    hits = match_words(line(["Ex", "93517624"]), terms)
    assert [h.reason for h in hits] == ["pattern:id"]
    # and a short number is not redacted at all
    assert match_words(line(["1234"]), terms) == []


def test_multiword_values_match_across_words(terms):
    found = _found(line(["Saint", "Mary", "Hospita1"]), terms)
    assert found == [("Saint Mary Hospita1", "header:InstitutionName")]
    assert _found(line(["Dr", "Gregory", "House"]), terms) == [  # the title goes with it
        ("Dr Gregory House", "header:ReferringPhysicianName")]


def test_stripped_header_text_is_caught_by_patterns_and_labels():
    for texts, reason in ((["DOB:", "15.01.1980"], "label:DOB"),
                          (["MRN", "88123456"], "label:MRN"),
                          (["Name:", "SMITH,", "ANNA"], "label:Name"),
                          (["Acc#", "A7781"], "label:Accession"),
                          (["Dr.", "Watson"], "label:Dr"),
                          (["Exam", "date", "03/02/2024"], "pattern:date"),
                          (["14:22:01"], "pattern:time"),
                          (["Tel", "(555)", "123-4567"], "pattern:phone"),
                          (["A1234567"], "pattern:id")):
        hits = match_words(line(texts), [])
        assert len(hits) == 1 and hits[0].reason == reason, (texts, hits)


MEASUREMENTS = [
    ["12.5", "cm"], ["TIS", "0.4", "MI", "1.1"], ["60", "dB"], ["3.5MHz"], ["FR", "30Hz"],
    ["128x128"], ["kVp", "120", "mAs", "250"], ["W:400", "L:40"], ["Im:", "23/120"],
    ["1:1"], ["DR", "60"], ["Gain", "50", "Depth", "16cm"], ["C5-1"], ["L12-5", "P4-2"],
    ["ANT"], ["Se:", "3", "Im:", "23"], ["D", "12.3", "mm"], ["0.123456"],
]


@pytest.mark.parametrize("texts", MEASUREMENTS)
def test_measurements_survive_phi_mode(terms, texts):
    assert match_words(line(texts), terms) == []


def test_allowlisted_words_need_a_full_exact_header_match():
    ds = Dataset()
    ds.PatientName = "GAIN^MARK"
    terms = phi_terms_from_header(ds)
    assert is_allowlisted("Gain")
    # the surname alone is an overlay word: kept
    assert match_words(line(["Gain", "50"]), terms) == []
    # the whole name is PHI even though "Gain" is on the allowlist
    assert _found(line(["GAIN,", "MARK"]), terms) == [("GAIN, MARK", "header:PatientName")]
    ds.PatientName = "GAIN"
    assert _found(line(["GAIN"]), phi_terms_from_header(ds)) == [("GAIN", "header:PatientName")]
    # fuzzy matches never override the allowlist
    ds.PatientName = "DEPTHS"
    assert match_words(line(["Depth"]), phi_terms_from_header(ds)) == []


def test_is_allowlisted():
    for word in ("TIS", "tis", "MI", "Gain", "dB", "C5-1", "3.5MHz", "60dB", "W:400", "L:40",
                 "Im:23/120", "cm", "R", "ANT", "kVp", "(L)", "|", "-"):
        assert is_allowlisted(word), word
    for word in ("DOE", "A1234567", "Ex123456", "1980", "12.5", "L123456", "Smith"):
        assert not is_allowlisted(word), word


def test_all_text_mode_keeps_only_allowlisted_words(terms):
    words = line(["Gain", "50", "Foo", "C5-1", "3.5MHz", "DOE", "15.01.1980"])
    hits = match_words(words, terms, mode="all-text")
    found = sorted((h.text, h.reason) for h in hits)
    assert found == [("15.01.1980", "header:PatientBirthDate"), ("50", "mode:all-text"),
                     ("DOE", "header:PatientName"), ("Foo", "mode:all-text")]
    # phi mode on the same words: only the PHI
    assert sorted(_found(words, terms)) == [("15.01.1980", "header:PatientBirthDate"),
                                            ("DOE", "header:PatientName")]
    with pytest.raises(ValueError):
        match_words(words, terms, mode="regions-only")


def test_hit_carries_frames_layer_and_confidence(terms):
    words = [Word("DOE", Box(5, 5, 30, 15), 71.0, 3, 0, (2, 3), "overlay:6000"),
             Word("JOHN", Box(34, 5, 70, 15), 88.0, 3, 1, (2, 3), "overlay:6000")]
    (hit,) = match_words(words, terms)
    assert isinstance(hit, Hit)
    # (and one character further: the middle name A may follow, unread)
    assert hit.box == Box(5, 5, 79, 15)
    assert hit.frames == (2, 3) and hit.layer == "overlay:6000" and hit.confidence == 71.0
    # words on different layers or frames are different lines
    split = [Word("DOE", Box(5, 5, 30, 15), 90, 3, 0, (0,)),
             Word("JOHN", Box(34, 5, 70, 15), 90, 3, 1, (1,))]
    assert sorted(h.text for h in match_words(split, terms)) == ["DOE", "JOHN"]


def test_find_phi_in_text(terms):
    text = "CT for John Doe 1980-01-15, ref Dr. House"
    spans = find_phi_in_text(text, terms)
    assert [(text[s:e], r) for s, e, r in spans] == [
        ("John Doe", "header:PatientName"), ("1980-01-15", "header:PatientBirthDate"),
        ("Dr. House", "label:Dr")]  # the title goes with the name
    assert find_phi_in_text("CT HEAD W/O CONTRAST", terms) == []
    # without patterns, only header values are found
    text = "Pt seen 03/04/2021, MRN 5566778"
    assert find_phi_in_text(text, terms, patterns=False) == []
    spans = find_phi_in_text(text, terms)
    assert [text[s:e] for s, e, _ in spans] == ["03/04/2021", "5566778"]


def test_pydicom_file_names_are_found_in_words():
    terms = phi_terms_from_header(pydicom.dcmread(pydicom_file("CT_small.dcm")))
    words = line(["CompressedSamples,", "CT1", "1CT1", "19-Jan-2004", "07:27:30"])
    found = _found(words, terms)
    assert ("CompressedSamples, CT1", "header:PatientName") in found
    # the clock time printed after the date goes with the date's hit too
    assert ("19-Jan-2004 07:27:30", "header:StudyDate") in found
    assert ("07:27:30", "header:StudyTime") in found
    assert any(t == "1CT1" for t, _ in found)


def test_name_glued_to_a_short_word_is_found(terms):
    found = _found(line(["DrGregory", "House"]), terms)
    assert found == [("DrGregory House", "header:ReferringPhysicianName")]
    # numbers never match with extra digits glued on
    ds = Dataset()
    ds.PatientID = "48213067"
    assert [h.reason for h in match_words(line(["Ref", "4821306712"]), phi_terms_from_header(ds))
            ] == ["pattern:id"]


def test_noisy_dimensions_are_not_ids():
    for text in ("l28x256", "Z56x128", "512xG4"):
        assert match_words(line([text]), []) == [], text


@settings(max_examples=150, deadline=None)
@given(st.text("0123456789", min_size=8, max_size=8))
def test_other_8_digit_numbers_never_match_the_header_id(number):
    ds = Dataset()
    ds.PatientID = "48213067"
    terms = phi_terms_from_header(ds)
    diff = sum(a != b for a, b in zip(number, "48213067"))
    reasons = {h.reason for h in match_words(line(["Ref", number]), terms)}
    if diff >= 2:
        assert "header:PatientID" not in reasons
    else:
        assert reasons == {"header:PatientID"}


def test_short_numeric_study_id_needs_context_and_is_never_a_measurement():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.StudyID = "120"
    terms = phi_terms_from_header(ds)
    assert _found(line(["120"]), terms) == []
    # next to the patient name, the study ID is redacted too
    assert sorted(_found(line(["DOE", "JOHN", "120"]), terms)) == [
        ("120", "header:StudyID"), ("DOE JOHN", "header:PatientName")]
    # but after a setting name it is a measurement, even next to PHI
    assert _found(line(["DOE", "JOHN", "kVp", "120"]), terms) == [
        ("DOE JOHN", "header:PatientName")]


def test_short_header_number_next_to_a_setting_is_a_measurement():
    ds = Dataset()
    ds.StudyID = "1250"
    terms = phi_terms_from_header(ds)
    assert _found(line(["1250"]), terms) == [("1250", "header:StudyID")]
    assert _found(line(["Vol", "1250", "ml"]), terms) == []
    assert _found(line(["1250", "cm"]), terms) == []


def test_label_at_line_end_takes_the_value_below():
    words = (line(["Gain", "50", "Name:"], 0, y=10) + line(["SMITH,", "ANNA", "TIS", "0.4"], 1, y=24)
             + line(["DOB"], 2, y=38) + line(["l5.0l.198O"], 3, y=52))
    found = sorted(_found(words, []))
    # the labels stay, their values go
    assert found == [("SMITH, ANNA", "label:Name"), ("l5.0l.198O", "label:DOB")]
    # a value of the wrong shape below a label is left alone
    words = line(["DR"], 0, y=10) + line(["60", "dB"], 1, y=24)
    assert match_words(words, []) == []
    # a title goes with the name below it
    words = line(["Gain", "50", "Dr."], 0, y=10) + line(["Watson", "TIS", "0.4"], 1, y=24)
    assert sorted(_found(words, [])) == [("Dr.", "label:Dr"), ("Watson", "label:Dr")]


SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def truth_words(items):
    """Words as a perfect OCR would give them for the truth items of a sample file:
    items side by side on one row share a line, word boxes split the item box by
    character position."""
    rows: list[dict] = []
    for it in sorted(items, key=lambda it: (it["box"][1], it["box"][0])):
        x0, y0, x1, y1 = it["box"]
        frames = tuple(it["frames"]) if it["frames"] is not None else None
        for row in rows:
            h = min(y1 - y0, row["y1"] - row["y0"])
            if (row["frames"] == frames and min(y1, row["y1"]) - max(y0, row["y0"]) > h / 2
                    and 0 <= x0 - row["x1"] < 3 * h):
                row["items"].append(it)
                row["x1"] = x1
                break
        else:
            rows.append({"x1": x1, "y0": y0, "y1": y1, "frames": frames, "items": [it]})
    words, owner = [], []
    for li, row in enumerate(rows):
        for it in row["items"]:
            x0, y0, x1, y1 = it["box"]
            text, pos = it["text"], 0
            for part in text.split(" "):
                a = x0 + (x1 - x0) * pos // len(text)
                b = x0 + (x1 - x0) * (pos + len(part)) // len(text)
                words.append(Word(part, Box(a, y0, max(a + 1, b), y1), 90.0, li, len(words),
                                  row["frames"]))
                owner.append(it)
                pos += len(part) + 1
    return words, owner


@pytest.mark.skipif(not (SAMPLE / "truth").is_dir(), reason="sample_data not present")
def test_sample_data_truth_items_are_classified_exactly():
    """Every PHI item of the committed sample set is redacted, no other item is
    touched (with perfect OCR; the two stripped files have empty headers)."""
    found = missed = wrong = 0
    for path in sorted((SAMPLE / "truth").glob("*.json")):
        truth = json.loads(path.read_text())
        ds = pydicom.dcmread(SAMPLE / "dicom" / truth["file"], stop_before_pixels=True)
        words, owner = truth_words(truth["items"])
        hits = match_words(words, phi_terms_from_header(ds))
        covered = [any(h.box.contains(w.box) and h.frames == w.frames for h in hits)
                   for w in words]
        for it in truth["items"]:
            mine = [c for c, o in zip(covered, owner) if o is it]
            if it["is_phi"]:
                found += all(mine)
                missed += not all(mine)
            else:
                wrong += any(mine)
    assert (missed, wrong) == (0, 0)
    assert found > 90


def test_partly_read_value_is_found_and_its_box_grown(terms):
    # faint text: OCR read only the start of the institution name
    words = line(["Saint", "Mary", "Hosp"])
    (hit,) = match_words(words, terms)
    assert hit.reason == "header:InstitutionName" and hit.score < 100
    read = words[0].box.union(words[-1].box)
    missing = len("Saint Mary Hospital") - len("Saint Mary Hosp")
    assert hit.box.x0 == read.x0 and hit.box.x1 == read.x1 + round(missing * read.width / 15)
    # a short start is not enough
    assert match_words(line(["Sain"]), terms) == []


def test_inexact_matches_take_whole_words():
    ds = Dataset()
    ds.PatientID = "46905432"
    ds.StudyDate = "20180127"
    terms = phi_terms_from_header(ds)
    # "4690543" ending one line and "27" starting the next must not make the ID,
    # stealing the date's first token
    words = line(["4690543:"], 0, y=28) + line(["27-JAN-1"], 1, y=49)
    found = sorted(_found(words, terms))
    assert found == [("27-JAN-1", "header:StudyDate"), ("4690543:", "header:PatientID")]


def test_turned_name_words_are_joined():
    ds = Dataset()
    ds.PatientName = "OBRIEN^JOHN"
    words = [Word("JOHN", Box(6, 255, 19, 298), 80, 8, 0, rotation=90),
             Word("OBRIEN", Box(6, 306, 19, 363), 80, 11, 0, rotation=90)]
    (hit,) = match_words(words, phi_terms_from_header(ds))
    assert hit.box == Box(6, 255, 19, 363) and hit.reason == "header:PatientName"


def test_hand_built_terms_and_min_score():
    loose = PhiTerm("JOHANNESBURG", "InstitutionName", "text")
    strict = PhiTerm("JOHANNESBURG", "InstitutionName", "text", min_score=100.0)
    words = line(["JOHANNESBUR6"])          # 6 read for G: exact after the confusion map
    assert _found(words, [strict]) == [("JOHANNESBUR6", "header:InstitutionName")]
    words = line(["JOHANNESBURX"])          # one real error
    assert _found(words, [loose]) == [("JOHANNESBURX", "header:InstitutionName")]
    assert _found(words, [strict]) == []


def test_initials_are_never_a_label():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.ReferringPhysicianName = "TANAKA^AMARA"
    terms = phi_terms_from_header(ds)
    words = line(["At:", "18:04", "DOE"])
    assert sorted(_found(words, terms)) == [("18:04", "pattern:time"), ("DOE", "header:PatientName")]
    assert ("A.T.", "header:ReferringPhysicianName") in _found(line(["A.T.", "DOE"]), terms)


def test_box_grows_over_digits_read_as_junk():
    ds = Dataset()
    ds.StudyDate = "20210531"
    words = [Word("31-MAY-~:", Box(8, 49, 67, 61), 60.0, 0, 0)]
    (hit,) = match_words(words, phi_terms_from_header(ds))
    # "21" was read as "~:": two characters of the date unread, the box grows by two
    assert hit.reason == "header:StudyDate"
    assert hit.box.x1 == 67 + round(2 * 59 / 9)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=6),
                min_size=1, max_size=5))
def test_any_words_all_text_covers_phi_mode_and_every_non_allowlisted_word(rows):
    words = [w for li, texts in enumerate(rows) for w in line(texts, li, y=10 + 14 * li)]
    terms = phi_terms_from_header(_header())
    phi = match_words(words, terms)
    every = match_words(words, terms, mode="all-text")
    assert {(h.box, h.reason) for h in phi} <= {(h.box, h.reason) for h in every}
    for w in words:
        if not is_allowlisted(w.text):
            assert any(h.box.contains(w.box) for h in every)


def test_letter_pairs_read_as_one_letter():
    ds = Dataset()
    ds.PatientName = "HERNANDEZ^EDUARDO"
    terms = phi_terms_from_header(ds)
    assert normalize("HERNANDEZ") == normalize("HEMANDEZ")
    assert _found(line(["HEMANDEZ"]), terms) == [("HEMANDEZ", "header:PatientName")]
    assert _found(line(["VVALTER"]), [PhiTerm("WALTER", "PatientName", "name")]) == [
        ("VVALTER", "header:PatientName")]


def test_find_phi_in_text_keeps_measurements_equal_to_short_ids():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.StudyID = "1250"
    terms = phi_terms_from_header(ds)
    text = "John Doe CT 1250 mAs, Study ID 1250"
    spans = find_phi_in_text(text, terms)
    assert [(text[s:e], r) for s, e, r in spans] == [
        ("John Doe", "header:PatientName"), ("1250", "header:StudyID")]
    assert spans[1][0] == text.rindex("1250")


def test_label_and_value_read_as_two_lines_of_one_row():
    words = line(["Name:"], 0, x=10) + line(["SMITH,", "ANNA"], 1, x=70)
    assert _found(words, []) == [("SMITH, ANNA", "label:Name")]
    ds = Dataset()
    ds.PatientName = "LI^WEI"
    # the short surname as its own line, next to the given name on the same row:
    # one line again, one hit
    words = line(["LI"], 0, x=10) + line(["WEI"], 1, x=40)
    assert _found(words, phi_terms_from_header(ds)) == [("LI WEI", "header:PatientName")]
    # far apart on the row: not joined
    words = line(["Name:"], 0, x=10) + line(["SMITH"], 1, x=400)
    assert _found(words, []) == []


def test_dangling_label_never_takes_overlay_words():
    words = line(["Name:"], 0, x=10) + line(["Gain", "50"], 1, x=70)
    assert match_words(words, []) == []
    words = line(["Name:"], 0, y=10) + line(["Depth", "16cm"], 1, y=24)
    assert match_words(words, []) == []


def test_id_glued_to_its_label():
    ds = Dataset()
    ds.PatientID = "96011D15"
    terms = phi_terms_from_header(ds)
    assert _found(line(["MRN960l1D15"]), terms) == [("MRN960l1D15", "header:PatientID")]
    # digits glued on make another number, not the ID
    assert "header:PatientID" not in {r for _, r in _found(line(["960l1D1577"]), terms)}


def test_number_read_in_part_and_at_sign_for_zero():
    ds = Dataset()
    ds.PatientID = "581570266"
    ds.StudyDate = "20251107"
    terms = phi_terms_from_header(ds)
    words = [Word("5815702¢", Box(8, 28, 68, 40), 50.0, 0, 0)]
    (hit,) = match_words(words, terms)
    assert hit.reason == "header:PatientID" and hit.box.x1 > 68   # grown over the lost "66"
    words = [Word("@7-NOV~:", Box(8, 49, 66, 61), 50.0, 1, 0)]
    (hit,) = match_words(words, terms)
    assert hit.reason == "header:StudyDate" and hit.box.x1 > 66
    # a shorter start of an ID is not enough
    assert [h.reason for h in match_words(line(["58157"]), terms)] == []


@pytest.mark.parametrize("texts, expected", [
    (["Ref:", "Dr.", "Gregory", "House"], "Dr. Gregory House"),
    (["Gregory", "House,", "MD"], "Gregory House, MD"),
    (["Prof", "HOUSE,", "GREGORY", "PhD"], "Prof HOUSE, GREGORY PhD"),
])
def test_titles_and_degrees_go_with_a_header_name(terms, texts, expected):
    hits = [h for h in match_words(line(texts), terms) if h.reason.endswith("PhysicianName")
            or h.reason.startswith(("label:", "pattern:name"))]
    words = line(texts)
    covered = [w for w in words if any(h.box.contains(w.box) for h in hits)]
    assert " ".join(w.text for w in covered).endswith(expected)


@pytest.mark.parametrize("texts", [
    ["SMITH^LUCAS^G"], ["BAKER^KIMBERLY^A"], ["Dr", "Hans", "Okafor"], ["Mrs.", "Kim", "Baker"],
    ["Anna", "Lee,", "MD"], ["Perf.", "Phys:", "Okafor,", "Hans", "PhD"],
])
def test_names_without_a_header_source(texts):
    """phi mode with no header term at all (a stripped header, or someone else's name)."""
    hits = match_words(line(texts), [])
    assert hits and all(h.reason in ("pattern:name", "label:Physician", "label:Dr") for h in hits)


@pytest.mark.parametrize("texts", [
    ["DR", "60"], ["Dr", "60", "dB"], ["Mr", "Gain", "50"], ["TGC^2"], ["Frame", "Rate", "MD"],
    ["Gain", "Map", "MD"],
])
def test_overlay_words_are_no_names(texts):
    assert match_words(line(texts), []) == []


def test_fragments_of_one_value_are_joined(terms):
    """Wide letter spacing splits a printed value into pieces; the pieces between
    matched ones, and a month name just before, go with it."""
    words = line(["Exam:", "2024", "-", "03", "=02", "14:30"])
    hits = match_words(words, terms)
    covered = [w.text for w in words if any(h.box.contains(w.box) for h in hits)]
    assert covered == ["2024", "-", "03", "=02", "14:30"]
    words = line(["Birth:", "Jan", "15", "1980"])
    covered = [w.text for w in words if any(h.box.contains(w.box) for h in match_words(words, terms))]
    assert covered == ["Jan", "15", "1980"]
    # two values of different events on one row stay apart
    words = line(["DOB", "15.01.1980", "Study", "02.03.2024"])
    hits = match_words(words, terms)
    assert not any(h.box.contains(words[2].box) for h in hits)


def test_a_labelled_value_read_without_confidence_is_redacted_whole():
    """Fail closed: "DOB 22.05.1966" read as "BOB 22 shoe" at low confidence still goes."""
    from dataclasses import replace
    words = line(["DOB", "BOB", "22", "shoe"])
    words = [words[0]] + [replace(w, confidence=35.0) for w in words[1:]]
    hits = match_words(words, [])
    covered = [w.text for w in words if any(h.box.contains(w.box) for h in hits)]
    assert covered == ["BOB", "22", "shoe"] and hits[0].reason == "label:DOB"
    # read with confidence, a value that is no PHI stays ("Probe ID: C5-1" is a probe)
    assert match_words(line(["Probe", "ID:", "C5-1"]), []) == []
    # and the next label on the row ends the value
    words = line(["DOB:", "Xq7b", "Gain:", "50"])
    words = [replace(w, confidence=30.0) if w.text == "Xq7b" else w for w in words]
    covered = [w.text for w in words if any(h.box.contains(w.box) for h in match_words(words, []))]
    assert covered == ["Xq7b"]


def test_pieces_of_one_printed_line_are_one_line():
    # A label in one colour and a name in wide letter spacing, read as three lines:
    # no header, so only the label rule can find the name, and only on one line.
    words = (line(["Sonographer:"], 0, x=10) + line(["Chiara"], 1, x=120)
             + line(["Baker"], 2, x=180))
    assert _found(words, []) == [("Chiara Baker", "label:Operator")]
    # without the joining, the label's value is the next piece, and a name of one
    # word takes the next name-like word on its row
    apart = {"line_join": {**match_params()["line_join"], "max_join_gap": 0}}
    assert [(h.text, h.reason) for h in match_words(words, [], params=apart)] == [
        ("Chiara Baker", "label:Operator")]
    one_more = words + line(["Gain"], 3, x=240) + line(["Hall"], 4, x=280)
    assert [(h.text, h.reason) for h in match_words(one_more, [], params=apart)] == [
        ("Chiara Baker", "label:Operator")]
    # two readings of the same ink are alternatives, never joined into one line; the
    # label pairs with each, so the value is found whichever reading holds its shape
    words = line(["DOB:"], 0, x=10) + line(["12/03/1961"], 1, x=50) + line(["12/08/1961"], 2, x=52)
    assert sorted(_found(words, [])) == [("12/03/1961", "label:DOB"), ("12/08/1961", "label:DOB")]
    words = (line(["Zuweiser:"], 0, x=10) + line(["Kimber1)"], 1, x=90)
             + line(["Kimberl", "iterberg"], 2, x=91))
    assert _found(words, []) == [("Kimberl iterberg", "label:Physician")]


def test_institution_wrapped_onto_the_next_line():
    # no header: the name is only an institution by its keyword, on the line above
    words = line(["Klinikum"], 0, y=10) + line(["Am", "Rosenhang"], 1, y=26)
    assert sorted(_found(words, [])) == [("Am Rosenhang", "pattern:institution"),
                                         ("Klinikum", "pattern:institution")]
    # a keyword line over an overlay line is no institution
    words = line(["Radiology"], 0, y=10) + line(["Gain", "50"], 1, y=26)
    assert _found(words, []) == []


def test_wrapped_institution_with_a_typographic_apostrophe():
    """OCR prints the apostrophe of CHILDREN'S as U+2019, and HOSPITAL is also a
    label word ("Hospital: ..."): neither may stop the name at the line break."""
    words = line(["Meadowbrook"], 0, y=10) + line(["Children\u2019s", "Hospital"], 1, y=26)
    assert sorted(_found(words, [])) == [("Children\u2019s Hospital", "pattern:institution"),
                                         ("Meadowbrook", "pattern:institution")]
    # the line below still stops at a label that is no institution word
    words = line(["Meadowbrook"], 0, y=10) + line(["Name:", "Lee"], 1, y=26)
    assert ("Meadowbrook", "pattern:institution") not in _found(words, [])


def _covers(hits, word):
    return any(h.box.contains(word.box) for h in hits)


@pytest.mark.parametrize("tail,conf", [("1!", 95.0), ("1639", 57.0), ("06:", 31.0), ("1é&s¥", 12.0),
                                       ("16:C", 77.0)])
def test_the_time_after_a_date_goes_with_it(terms, tail, conf):
    """OCR stops inside the clock time printed after a date: what it leaves goes too."""
    date, rest = line(["02.03.2024", tail])
    rest = Word(rest.text, rest.box, conf, 1, 0)      # read as a line of its own
    hits = match_words([date, rest], terms)
    assert _covers(hits, date) and _covers(hits, rest)


@pytest.mark.parametrize("tail", [["Img", "12/48"], ["Gain", "52"], ["LA", "3.2cm"]])
def test_overlay_after_a_date_stays(terms, tail):
    words = line(["02.03.2024", *tail])
    hits = match_words(words, terms)
    assert _covers(hits, words[0]) and not any(_covers(hits, w) for w in words[1:])


@pytest.mark.parametrize("tail,conf", [("MD", 96.0), ("RDM5", 75.0), ("PhO", 88.0), ("-M", 0.0),
                                       ("ML", 83.0),     # "MD" read as a unit
                                       ("MD:", 95.0)])   # a colon read after it: no label
def test_a_degree_read_apart_from_its_name_goes_with_it(terms, tail, conf):
    name = line(["Dr", "Gregory", "House,"])
    gap = name[-1].box
    degree = Word(tail, Box(gap.x1 + 6, gap.y0, gap.x1 + 6 + 8 * len(tail), gap.y1), conf, 1, 0)
    hits = match_words([*name, degree], terms)
    assert all(_covers(hits, w) for w in [*name, degree])


@pytest.mark.parametrize("tail,expected", [("\u2018MD", True), ("Gain", False)])
def test_a_letter_between_a_name_and_its_degree_goes_with_them(terms, tail, expected):
    """'Viktor Caste! Taine Lain S MD' over speckle: the lone "S" (an overlay letter
    on its own) is the name's end when a degree follows it."""
    name = line(["Dr", "Gregory", "House"])
    end = name[-1].box
    s = Word("S", Box(end.x1 + 8, end.y0 + 4, end.x1 + 16, end.y1), 49.0, 1, 0)
    deg = Word(tail, Box(s.box.x1 + 10, end.y0, s.box.x1 + 10 + 8 * len(tail), end.y1), 62.0, 1, 1)
    hits = match_words([*name, s, deg], terms)
    assert _covers(hits, name[1])
    assert _covers(hits, s) == expected and _covers(hits, deg) == expected
    # a label between them starts the next field ("MRN", then "3N" read over its end)
    mrn = Word("mrn", Box(end.x1 + 8, end.y0, end.x1 + 32, end.y1), 92.0, 0, 3)
    over = Word("3N", Box(mrn.box.x1 - 15, end.y0, mrn.box.x1, end.y1), 45.0, 1, 0)
    assert not _covers(match_words([*name, mrn, over], terms), mrn)
    after = Word("3N", Box(mrn.box.x1 + 4, end.y0, mrn.box.x1 + 20, end.y1), 45.0, 1, 0)
    assert not _covers(match_words([*name, mrn, after], terms), mrn)


@pytest.mark.parametrize("tail,expected", [("ouse,", True), ("gain", False), ("mrn", False)])
def test_a_name_tail_between_a_name_and_its_degree_goes_with_them(terms, tail, expected):
    """'Dr Rafa Mc eau, MD' across a bright band: 'eau,' read with confidence 97 is
    the end of Moreau (lower case, no label, no overlay word), and the degree after
    it goes with the name too."""
    name = line(["Dr", "Gregory"])
    end = name[-1].box
    piece = Word(tail, Box(end.x1 + 20, end.y0, end.x1 + 20 + 8 * len(tail), end.y1), 97.0, 0, 2)
    deg = Word("MD", Box(piece.box.x1 + 8, end.y0, piece.box.x1 + 24, end.y1), 97.0, 0, 3)
    hits = match_words([*name, piece, deg], terms)
    assert _covers(hits, name[1])
    assert _covers(hits, piece) == expected and _covers(hits, deg) == expected


def test_a_name_after_a_label_value_of_titles_only_goes_with_it():
    """'Performed by: Prof' read as a line, 'callum' and 'Oyelaran' as two more
    lines further along the row: a title alone is no whole name."""
    label = line(["Performed", "by:", "Prof"], 0)
    end = label[-1].box
    first = Word("callum", Box(end.x1 + 21, end.y0, end.x1 + 69, end.y1), 81.0, 1, 0)
    last = Word("Oyelaran", Box(first.box.x1 + 11, end.y0, first.box.x1 + 75, end.y1), 83.0, 2, 0)
    gain = Word("Gain", Box(last.box.x1 + 11, end.y0, last.box.x1 + 43, end.y1), 95.0, 3, 0)
    hits = match_words([*label, first, last, gain], [])
    assert _covers(hits, label[2]) and _covers(hits, first) and _covers(hits, last)
    assert not _covers(hits, gain) and not _covers(hits, label[1])
    # after a whole name, a confident word further along stays
    named = line(["Performed", "by:", "Prof", "Callum", "Oyelaran"], 0)
    end = named[-1].box
    more = Word("Smith", Box(end.x1 + 22, end.y0, end.x1 + 62, end.y1), 95.0, 1, 0)
    assert not _covers(match_words([*named, more], []), more)


def test_a_date_read_up_to_its_year_grows_over_the_year():
    words = line(["Exam:", "o6/18/"])
    year = Word("2022", Box(words[1].box.x1, 10, words[1].box.x1 + 32, 22), 0.0, 9, 0)
    hits = match_words(words, [])
    assert _covers(hits, words[1]) and _covers(hits, year)
    whole = line(["Exam:", "06/18/2022"])
    assert [h.box for h in match_words(whole, [])] == [whole[1].box]


def test_the_unsure_rest_of_a_name_after_a_tall_reading_goes_with_it(terms):
    """'Dr Gregory' with 'Gregory' read in a box 2.5 times its letters (speckle read
    with it): the small unsure reading of the surname after it still goes too."""
    name = line(["Dr", "Gregory"], h=12)
    tall = replace(name[1], box=Box(name[1].box.x0, 4, name[1].box.x1, 34), line_id=1, index=0)
    rest = Word("ouze", Box(tall.box.x1 + 30, 20, tall.box.x1 + 62, 30), 0.0, 0, 2)
    kv = Word("kv", Box(rest.box.x1 + 4, 18, rest.box.x1 + 20, 32), 44.0, 0, 3)   # "MD"
    hits = match_words([name[0], name[1], tall, rest, kv], terms)
    assert _covers(hits, rest) and _covers(hits, kv)
    # read with confidence, or further off, a unit stays (the name's end is taken
    # a character past "ouze", which is one letter short of House)
    for unit in (replace(kv, confidence=95.0),
                 replace(kv, box=Box(rest.box.x1 + 20, 18, rest.box.x1 + 36, 32))):
        assert not _covers(match_words([name[0], name[1], tall, rest, unit], terms), unit)


def test_a_unit_after_a_name_stays_when_it_is_no_degree_close_by(terms):
    name = line(["Gregory", "House"])
    end = name[-1].box
    far = Word("ML", Box(end.x1 + 2 * end.height, end.y0, end.x1 + 2 * end.height + 16, end.y1),
               95.0, 1, 0)
    hits = match_words([*name, far], terms)
    assert _covers(hits, name[0]) and not _covers(hits, far)


def test_the_next_label_after_a_name_stays(terms):
    # "ID:" is one letter from "MD", but a label: the next field starts there
    for label in ("ID:", "1D:"):
        words = line(["Name:", "Gregory", "House", label])
        hits = match_words(words, terms)
        assert _covers(hits, words[1]) and not _covers(hits, words[3]), label


def test_a_second_reading_of_a_name_end_goes_with_it(terms):
    """'Halvorsen' then 'en,' 'MD' read again as another line over the same ink."""
    name = line(["Gregory", "House"])
    end = name[-1].box
    again = [Word("ouse,", Box(end.x1 - 30, end.y0, end.x1 + 4, end.y1), 96.0, 1, 0),
             Word("MD", Box(end.x1 + 10, end.y0, end.x1 + 26, end.y1), 96.0, 1, 1)]
    hits = match_words([*name, *again], terms)
    assert all(_covers(hits, w) for w in again)


def test_a_far_word_on_the_row_stays(terms):
    name = line(["Gregory", "House"])
    end = name[-1].box
    far = Word("xq", Box(end.x1 + 40, end.y0, end.x1 + 56, end.y1), 10.0, 1, 0)
    hits = match_words([*name, far], terms)
    assert _covers(hits, name[0]) and not _covers(hits, far)


def test_what_is_left_of_a_time_further_after_a_date_goes_with_it(terms):
    # "08:" unread: only "16" was read, 2.8 row heights after the date
    date = line(["2022-01-01"])[0]
    h = date.box.height
    tail = Word("16", Box(date.box.x1 + int(2.8 * h), date.box.y0,
                          date.box.x1 + int(2.8 * h) + 20, date.box.y1), 97.0, 1, 0)
    far = Word("16", Box(date.box.x1 + 4 * h, date.box.y0, date.box.x1 + 4 * h + 20,
                         date.box.y1), 97.0, 1, 0)
    assert _covers(match_words([date, tail], terms), tail)
    assert not _covers(match_words([date, far], terms), far)


def test_an_unread_label_value_is_redacted_from_the_label_on(terms):
    # "PID: 578999210" read as "PID:" and garbage over part of the digits
    label = Word("PID:", Box(35, 92, 82, 111), 97.0, 0, 0)
    junk = Word("moe", Box(125, 96, 223, 107), 0.0, 0, 1)
    hits = [h for h in match_words([label, junk], terms) if h.box.intersects(junk.box)]
    assert hits and hits[0].box.x0 <= 84 and hits[0].box.x1 >= 223 + 5
    assert not hits[0].box.intersects(label.box)
    # the garbage's box is shorter than the ink: the value spans the label's rows
    assert hits[0].box.y0 <= 92 and hits[0].box.y1 >= 111


def test_the_surname_after_a_title_and_first_name_read_on_another_line_goes_with_it():
    """'Perf: Prof Declan' read as one line, 'Prof. .Declan: Kaczmarek' as another
    (the second reading of 'Declan' ends in a colon): the surname is still the name's."""
    first = [Word("Perf", Box(32, 399, 99, 431), 84.0, 0, 0),
             Word("Prof", Box(122, 399, 190, 426), 97.0, 1, 0),
             Word("Declan", Box(210, 400, 320, 427), 96.0, 1, 1)]
    second = [Word("Declan:", Box(204, 398, 323, 427), 83.0, 2, 0),
              Word("Kaczmarek", Box(334, 399, 513, 427), 97.0, 3, 0)]
    hits = match_words(first + second, [])
    assert _covers(hits, first[2]) and _covers(hits, second[1]), hits
    assert not _covers(hits, first[0])


@pytest.mark.parametrize("label", ["Nom;", "Pat;", "Name;", "Nom?", "Pat?"])
def test_a_label_read_with_a_semicolon_still_announces_its_value(label):
    """Tesseract reads a small colon as a semicolon ("Nom;") or a question mark
    ("Nom?", over a gradient): the value after it
    is still the label's, with no header to match it against (nor a surname the
    name lexicon knows)."""
    value = "Rosa Quexbrand"
    words = line([label, *value.split()])
    assert [r for t, r in _found(words, []) if t == value], _found(words, [])
    # the same words with no label before them are not PHI by themselves
    assert not [r for t, r in _found(line(["Gain;", *value.split()]), []) if t == value]


def _line_hit(x0, x1, y=10, h=12, frames=None):
    return Hit(Box(x0, y, x1, y + h), "line", frames=frames)


def test_a_value_grows_to_the_end_of_its_line_over_unread_ink():
    """'134311644' read as '1 an' plus ink no word covers: the hit runs on to where
    the proposed line's ink ends."""
    words = line(["ID:", "1", "an"])                       # ID: 10-34, 1: 42-50, an: 58-74
    hit = Hit(Box(42, 10, 74, 22), "header:PatientID", text="1 an")
    (grown,) = complete_values([hit], words, [_line_hit(8, 120)])
    assert grown.box == Box(42, 10, 120, 22)
    # a line on another row, or of another frame, changes nothing
    assert complete_values([hit], words, [_line_hit(8, 120, y=40)]) == [hit]
    assert complete_values([hit], words, [_line_hit(8, 120, frames=(3,))]) == [hit]
    # nor does a line to a hit that is no value (a user region, an unread line)
    other = replace(hit, reason="unread")
    assert complete_values([other], words, [_line_hit(8, 120)]) == [other]


def test_a_grown_value_stops_at_the_next_field():
    # a name, a doubtful piece of it, then the next label read with confidence
    words = line(["SMITH,", "lNGR", "Age:", "54"])          # 10-58, 66-98, 106-138, 146-162
    words[1] = replace(words[1], confidence=31.0)
    hit = Hit(Box(10, 10, 58, 22), "header:PatientName", text="SMITH,")
    (grown,) = complete_values([hit], words, [_line_hit(8, 170)])
    assert grown.box == Box(10, 10, 98, 22)
    # overlay vocabulary read with little confidence stops it too
    words = line(["12/03/1961", "Gain", "52"])
    words[1] = replace(words[1], confidence=35.0)
    hit = Hit(words[0].box, "pattern:date", text="12/03/1961")
    assert complete_values([hit], words, [_line_hit(8, 200)]) == [hit]


def test_a_grown_value_keeps_its_label():
    """To the left only doubtful words go with the value, and a label misread
    ('D.0.B.', '!D:') is still a label."""
    for label, conf in (("D.0.B.", 51.0), ("|D:", 51.0), ("!D:", 75.0), ("DOB:", 51.0)):
        words = line([label, "10/31/1934"])
        words[0] = replace(words[0], confidence=conf)
        hit = Hit(words[1].box, "header:PatientBirthDate", text="10/31/1934")
        (grown,) = complete_values([hit], words, [_line_hit(8, words[1].box.x1 + 1)])
        assert grown.box.x0 == hit.box.x0, label
    # a doubtful first piece of the date ("C:" for "01") goes with it
    words = line(["Geb.:", "C:", "/27/1933"])
    words[1] = replace(words[1], confidence=34.0)
    hit = Hit(words[2].box, "header:PatientBirthDate", text="/27/1933")
    (grown,) = complete_values([hit], words, [_line_hit(8, words[2].box.x1)])
    assert grown.box.x0 == words[1].box.x0


def test_a_grown_name_takes_its_title_as_misread_and_stops_there(terms):
    """'Sonographer: Prof. Bjorn Halvorsen MD' over a bright band: the surname is
    a header hit, 'Bjorn' is unread ink, 'Prof.' reads 'Pro' and a washed-out
    letter '2i' (both confident).  The name grows over them to the title, which
    is its start: the label before it stays, even when a second, shorter line
    proposed over the band would let it grow again."""
    ds = Dataset()
    ds.OperatorsName = "HALVORSEN^BJORN"
    found_terms = phi_terms_from_header(ds)
    words = line(["Sonographer:", "Pro", "2i", "n", "Halvorsen", "MD"])
    words = [replace(w, confidence=c) for w, c in zip(words, (90.0, 77.0, 73.0, 74.0, 96.0, 96.0))]
    hit = Hit(Box(words[4].box.x0, 10, words[5].box.x1, 22), "header:OperatorsName",
              text="Halvorsen MD")
    lines = [_line_hit(8, words[5].box.x1), _line_hit(words[2].box.x0, words[2].box.x1)]
    (grown,) = complete_values([hit], words, lines, terms=found_terms)
    assert grown.box.x0 == words[1].box.x0 and grown.box.x1 == hit.box.x1
    # another, doubtful reading of the title around it ('Proj' at 7) leaves it the title
    other = Word("Proj", Box(words[1].box.x0, 9, words[1].box.x1 + 4, 23), 7.0, 1, 0)
    (grown,) = complete_values([hit], words + [other], lines, terms=found_terms)
    assert grown.box.x0 == words[1].box.x0
    # without the header's kinds the hit is no name: it stops at the confident 'Pro'
    (plain,) = complete_values([hit], words, lines)
    assert plain.box.x0 > words[1].box.x1
    # a word that is no title ('Exam'), or a label one letter from one ('MRN', 'Mrs'), is not taken
    for text in ("Exa", "MRN"):
        words[1] = replace(words[1], text=text)
        (other,) = complete_values([hit], words, lines, terms=found_terms)
        assert other.box.x0 > words[1].box.x1, text
    # the end of a name word read on its own ('ntero' of Quintero, 'kamura,.MD' glued to
    # its degree) does not end the name either: it runs on to the line's end
    for tail in (["ntero,", "PhD"], ["kamura,.MD"]):
        words = line(["Sonographer:", "Andrew", "Qu", *tail])
        hit = Hit(Box(words[1].box.x0, 10, words[2].box.x1, 22), "header:OperatorsName",
                  text="Andrew Qu")
        (grown,) = complete_values([hit], words, [_line_hit(8, words[-1].box.x1)],
                                   terms=found_terms)
        assert grown.box.x1 == words[-1].box.x1, tail
        assert grown.box.x0 == hit.box.x0
    # ...but only when nothing more than degrees follows it: lower-case words after a
    # name in a sentence are the sentence
    words = line(["Mr.", "Halvorsen", "presents", "with", "right", "upper", "pain."])
    words[5] = replace(words[5], confidence=97.0)
    hit = Hit(Box(words[0].box.x0, 10, words[2].box.x1, 22), "header:OperatorsName",
              text="Mr. Halvorsen presents")
    (grown,) = complete_values([hit], words, [_line_hit(8, words[-1].box.x1)], terms=found_terms)
    assert grown == hit
    # a scrap of the same ink read apart inside the tail ("St" inside "hterberg") does
    # not stop the name; a label inside a larger reading still does
    for scrap, stops in (("St", False), ("ID:", True)):
        words = line(["Andrew", "Qu", "hterberg"])
        inner = words[2].box
        bit = Word(scrap, Box(inner.x1 - 20, 8, inner.x1 - 4, 16), 28.0, 1, 0)
        hit = Hit(Box(words[0].box.x0, 10, words[1].box.x1, 22), "header:OperatorsName",
                  text="Andrew Qu")
        (grown,) = complete_values([hit], words + [bit], [_line_hit(8, inner.x1)],
                                   terms=found_terms)
        assert (grown.box.x1 < inner.x1) is stops, scrap
    # nor is a label after the name one letter from a degree ('ID:' and 'MD', 'PID' and 'PhD')
    for label in ("ID:", "PID:"):
        words = line(["Halvorsen", "MD", label, "12345"])
        hit = Hit(Box(words[0].box.x0, 10, words[1].box.x1, 22), "header:OperatorsName",
                  text="Halvorsen MD")
        (grown,) = complete_values([hit], words, [_line_hit(8, words[3].box.x1)], terms=found_terms)
        assert grown.box.x1 < words[2].box.x0, label


@pytest.mark.parametrize("text, hit", [("Kimber", True), ("Nakamu", True), ("Kimbe", False),
                                       ("Naka", False)])
def test_most_of_one_name_part_matches_it(text, hit):
    """'Kimber' of KIMBERLY (the end faded into anatomy): six characters and three
    quarters of the part or more."""
    ds = Dataset()
    ds.OperatorsName = "NAKAMURA^KIMBERLY"
    found = _found(line([text]), phi_terms_from_header(ds))
    assert (found == [(text, "header:OperatorsName")]) is hit, found


@pytest.mark.parametrize("text, harmless", [
    ("00:03.90", True), ("0:03.9", True), ("12:59,125", True), ("74", True), ("0.4", True),
    ("10:15", False), ("10:15:30", False), ("12:63.10", False), ("12.03.2024", False),
    ("1234", False), ("KOWALSKI", False)])
def test_harmless_words_are_vocabulary_short_values_and_elapsed_times(text, harmless):
    from pixelscrub.match import is_harmless
    assert is_harmless(text) is harmless


def test_a_timer_read_with_little_confidence_needs_no_review():
    """A cine's timer ('00:00.00' at 43) is read, if not confidently: its region is
    handled; a time of day read as poorly still goes to review."""
    from pixelscrub.pipeline import ScrubOptions, _covered, _handled
    region = Hit(Box(529, 8, 605, 24), "unread", frames=(0,))
    for text, handled in (("00:00.00", True), ("10:15:00", False)):
        word = Word(text, Box(530, 9, 604, 23), 43.0, 0, 0, (0,), "pixels")
        assert _covered(region, _handled([], [word], ScrubOptions())) is handled


@pytest.mark.parametrize("label, value, redacted", [
    ("Accession:", ["RX?"], True),          # the start of a number, the rest over speckle
    ("MRN:", ["48"], True),
    ("DOB:", ["10"], True),
    ("Zuweiser:", ["Q."], True),
    ("Gain:", ["RX?"], False)])             # no PHI label
def test_a_confident_value_its_label_could_not_announce_is_redacted(label, value, redacted):
    words = line([label, *value])
    hits = match_words(words, [])
    assert any(h.box.intersects(words[1].box) for h in hits) is redacted, hits


@pytest.mark.parametrize("kind, texts, plausible", [
    ("id", ["RX2088450"], True), ("id", ["RX?"], False), ("id", ["48"], False),
    ("id", ["12-34"], True), ("date", ["Mar", "25"], True), ("date", ["10"], False),
    ("date", ["1938-02-08"], True), ("name", ["Leila", "Moreau"], True),
    ("name", ["Q."], False), ("name", ["O'Brien"], True), ("name", ["Le*la"], False)])
def test_plausible_values_of_a_label(kind, texts, plausible):
    from pixelscrub.match import _plausible_value
    assert _plausible_value(kind, texts) is plausible


def test_a_short_value_after_a_label_without_its_colon_is_left():
    """'MRN MD': with no colon the label may be a word of the text, and 'MD' stays."""
    words = line(["MRN", "MD"])
    assert not any(h.box.intersects(words[1].box) for h in match_words(words, []))
    words = line(["MRN:", "MD"])
    assert any(h.box.intersects(words[1].box) for h in match_words(words, []))


def _institution_terms(name="Eastgate Diagnostic Imaging", patient="MURPHY^PRIYA^K"):
    ds = Dataset()
    ds.InstitutionName, ds.PatientName = name, patient
    return phi_terms_from_header(ds)


@pytest.mark.parametrize("texts, found", [
    (["Eastgate", "Diagnosi"], True),      # cut at the edge, its last letter misread
    (["Eastgate", "Diagnos"], True),       # cut, read right (as before)
    (["Eastgate", "Dxagnosx"], False),     # two misread letters
    (["Eastwood", "Dialysis"], False)])
def test_the_start_of_a_long_value_with_one_misread_letter_matches(texts, found):
    words = line(texts)
    hits = match_words(words, _institution_terms())
    assert any(h.reason == "header:InstitutionName" for h in hits) is found, hits


def test_a_misread_start_is_not_continued_on_the_next_line():
    """'MURPHY' ending a line and 'MR#' starting the next are no 'MURPHYPR...' with
    one misread letter: the label below stays."""
    words = line(["Naam:", "MURPHY"], 0) + line(["MR#", "135973851"], 1, y=28)
    hits = match_words(words, _institution_terms())
    assert not any(h.box.intersects(words[2].box) for h in hits), hits
    # 'Aux' is one letter from 'Aur' of Saint-Laurent
    words = line(["Hopital", "Saint-L"], 0) + line(["Aux:", "12"], 1, y=28)
    hits = match_words(words, _institution_terms("Hopital Saint-Laurent", "KOWALSKI^JAN"))
    assert not any(h.box.intersects(words[2].box) for h in hits), hits


def test_the_value_after_a_misread_label_goes_and_the_label_stays():
    """'Zuweiser:' read as 'Zuveiser.' at confidence 0, the physician after it read
    badly: the value is redacted, the label is not (it stops the value's growth)."""
    words = [Word("Zuveiser.", Box(13, 118, 53, 128), 0.0, 0, 0),
             Word("De", Box(58, 118, 68, 128), 89.0, 0, 1),
             Word("Esther", Box(72, 118, 100, 128), 59.0, 0, 2),
             Word("Fenera", Box(104, 118, 131, 128), 59.0, 0, 3),
             Word("PH", Box(135, 118, 152, 128), 55.0, 0, 4)]
    lines = [Hit(Box(11, 116, 153, 130), "line")]
    hits = complete_values(match_words(words, []), words, lines)
    assert _covers(hits, words[2]) and _covers(hits, words[3]), hits
    assert not any(h.box.intersects(words[0].box) for h in hits), hits


def test_what_is_left_of_the_date_before_a_clock_time_goes_with_it():
    """'Exam: 2022-03-06 13:52' read as 'Exam:', '202:' and '03-06' (the year's last
    digit lost), '13:52': only the time matched; the date's pieces go with it, the
    label and a measurement before a time do not."""
    words = [Word("Exam:", Box(8, 95, 43, 106), 97.0, 0, 0),
             Word("202:", Box(47, 95, 73, 106), 88.0, 1, 0),
             Word("03-06", Box(76, 95, 109, 106), 95.0, 2, 0),
             Word("13:52", Box(112, 95, 143, 106), 97.0, 2, 1)]
    hits = match_words(words, [])
    assert _covers(hits, words[1]) and _covers(hits, words[2]) and _covers(hits, words[3])
    assert not _covers(hits, words[0])
    gain = [Word("MI", Box(8, 95, 22, 106), 96.0, 0, 0), Word("0.9", Box(27, 95, 43, 106), 96.0, 0, 1),
            Word("13:52", Box(48, 95, 79, 106), 97.0, 1, 0)]
    hits = match_words(gain, [])
    assert _covers(hits, gain[2]) and not _covers(hits, gain[1])


def test_an_institution_word_read_apart_on_its_row_goes_with_the_institution():
    """'Meadowbrook' over 'Children's Hospital' in wide letter spacing: "Children" and
    "Hospital" read as two lines, the "'s" between them lost, too far apart to be one
    line; the wrapped institution took "Children" only.  An institution word further
    along the row is the institution's, an overlay word is not."""
    words = (line(["Meadowbrook"], 0, y=8, h=17, x=10)
             + [Word("Children", Box(10, 40, 127, 58), 96.0, 1, 0),
                Word("Hospital", Box(177, 41, 293, 61), 96.0, 2, 0)])
    hits = match_words(words, [])
    assert _covers(hits, words[-2]) and _covers(hits, words[-1]), hits
    other = words[:-1] + [Word("Gain", Box(177, 41, 240, 61), 96.0, 2, 0)]
    assert not _covers(match_words(other, []), other[-1])


@pytest.mark.parametrize("pieces", [["04/22/2\u00b0", ")"], ["O1-NOV-23"], ["NOV-21"]])
def test_a_date_read_in_pieces_before_its_clock_time_goes_with_it(pieces):
    """'Datum: 04/22/2020 06:32' read as '04/22/2\u00b0', ')' and '06:32' (the year's
    end lost, a mark read alone); '01-NOV-23 21:08' read with O for 0: only the time
    matched, the date's remains go with it, the label does not."""
    words = [Word("Datum:", Box(34, 265, 161, 290), 93.0, 0, 0)]
    x = 177
    for i, text in enumerate(pieces):
        width = 127 if len(text) > 2 else 12
        words.append(Word(text, Box(x, 265, x + width, 291), 68.0, 0, 1 + i))
        x += width + 56 if i == 0 and len(pieces) > 1 else width + 12
    words.append(Word("06:32", Box(x, 265, x + 96, 290), 95.0, 0, 1 + len(pieces)))
    hits = match_words(words, [])
    assert all(_covers(hits, w) for w in words[1:]), hits
    assert not _covers(hits, words[0])


@pytest.mark.parametrize("value, more", [
    ("1O234", len("5B7")),      # the start of the header's patient ID
    ("1O23?", len("5B7")),      # junk read for its last character
    ("XYZ12", 0),               # no header ID starts so: only what was read
])
def test_the_start_of_a_header_id_after_its_label_is_redacted_to_the_ids_length(
        terms, value, more):
    """'Accession: RX15', the rest of RX1540448 over speckle never proposed: the
    label's value is the header's ID, printed to its length."""
    words = line(["ID:", value], cw=8)
    (hit,) = [h for h in match_words(words, terms) if h.reason == "label:ID"]
    assert hit.box.x1 == words[1].box.x1 + 8 * more


def test_the_rest_of_a_header_id_stops_before_the_next_label(terms):
    words = line(["ID:", "1O23", "DOB:"], cw=8)
    (hit,) = [h for h in match_words(words, terms) if h.reason == "label:ID"]
    assert words[1].box.x1 < hit.box.x1 < words[2].box.x0


def test_a_surer_reading_of_the_same_ink_decides_what_follows_a_name(terms):
    """'Makaws ura', then the degree read twice: "MAD" (69) and "MD" (94) over the
    same ink; the surer reading says it is the name's degree."""
    name = line(["Dr", "Gregory", "House"])
    end = name[-1].box
    x = end.x1 + 10
    mad = Word("MAD", Box(x, end.y0, x + 24, end.y1), 69.0, 1, 0)
    md = Word("MD", Box(x + 2, end.y0, x + 22, end.y1), 94.0, 2, 0)
    header = [h for h in match_words([*name, mad, md], terms) if h.reason.startswith("header:")]
    assert _covers(header, md)
    # a label read surer than the junk over its end stays a label ("mrn" and "3N")
    mrn = Word("mrn", Box(x, end.y0, x + 24, end.y1), 92.0, 1, 0)
    junk = Word("3N", Box(x + 10, end.y0, x + 24, end.y1), 45.0, 2, 0)
    assert not _covers(match_words([*name, mrn, junk], terms), mrn)


@pytest.mark.parametrize("value", [["Jul"], ["Oct", "5"], ["12"]])
def test_the_start_of_a_birth_date_after_its_label_is_redacted(terms, value):
    """'DOB: Jul' read with confidence, the rest of the date lost over speckle: a
    birth date is PHI however little of it was read (and the header's birth date
    then tells how far it goes)."""
    words = line(["DOB:", *value], cw=8)
    hits = match_words(words, terms)
    assert any(h.reason == "label:DOB" and h.box.contains(w.box) for h in hits for w in words[1:])


def test_a_word_ending_in_a_colon_read_unsure_inside_a_value_is_no_label(terms):
    """'Date of Birth: Oct 5 7: 729': the "7:" read at 57 is part of the year, not
    the next field; a label read with confidence is ("DOB: Oct 5 Age: 40")."""
    words = line(["Birth:", "Oct", "5", "7:", "729"], cw=8)
    words[3] = replace(words[3], confidence=57.0)
    words[4] = replace(words[4], confidence=32.0)
    hits = match_words(words, terms)
    assert any(h.box.contains(words[4].box) for h in hits)
    words = line(["Birth:", "Oct", "5", "Age:", "40"], cw=8)
    hits = match_words(words, terms)
    assert not any(h.box.intersection(words[3].box).area for h in hits)


@pytest.mark.parametrize("word, label", [("DOB:15.01.1980", "DOB:"), ("3irth:15-JAN-80", "3irth:"),
                                         ("D.O.B.1980-01-15", "D.O.B.")])
def test_a_label_glued_to_its_value_in_one_word_stays(terms, word, label):
    """OCR read no space between a label and the value after it: the hit starts
    where the value does (by the share of characters), so the label stays."""
    words = line([word], cw=8)
    hits = [h for h in match_words(words, terms) if h.reason == "header:PatientBirthDate"]
    assert hits and all(h.box.x0 >= words[0].box.x0 + 8 * len(label) - 1 for h in hits)
    assert all(h.box.x1 == words[0].box.x1 for h in hits)



def test_the_end_of_a_header_id_after_its_label_is_redacted_from_the_ids_start():
    """'Acc: 399674', the RX1 of RX1399674 lost over speckle: the value read is the
    end of the header's accession number, so its start is redacted too, up to the
    label."""
    ds = Dataset()
    ds.AccessionNumber = "RX1399674"
    terms = phi_terms_from_header(ds)
    label, _, value = line(["Accession:", "RX1", "399674"], cw=8)      # "RX1" unread
    (hit,) = [h for h in match_words([label, value], terms) if h.reason == "label:Accession"]
    assert hit.box.x0 == value.box.x0 - 8 * len("RX1")
    # never over the label
    label, value = line(["Accession:", "399674"], cw=8)
    (hit,) = [h for h in match_words([label, value], terms) if h.reason == "label:Accession"]
    assert hit.box.x0 > label.box.x1



def test_a_value_read_without_its_start_grows_to_the_left(terms):
    """'1ildren's Hospita:' for Meadowbrook Children's Hospital: a read that is the
    end of the header value lacks its start (wrapped from the line above, or lost
    over a dark ground), so the box grows to the left, not past its end."""
    words = line(["int", "Mary", "Hospital"], x=60)
    (hit,) = [h for h in match_words(words, terms) if h.reason == "header:InstitutionName"]
    assert hit.box.x1 == words[-1].box.x1
    assert hit.box.x0 == words[0].box.x0 - 2 * 8       # "Sa", eight pixels a letter


@pytest.mark.parametrize("label", ["Date:", "Datum:", "Study Date:", "Fecha:"])
def test_a_date_label_announces_a_date(terms, label):
    """'Datum: 10-FF' for 10-FEB-22 06:16 over speckle: what follows a date label
    and starts like a date is a date (PHI however little was read of it)."""
    words = line([*label.split(), "10-FF"], cw=8)
    hits = match_words(words, terms)
    assert any(h.reason == "label:Date" and h.box.contains(words[-1].box) for h in hits)
    # the label itself stays
    assert not any(h.box.intersection(words[0].box).area for h in hits)


def test_the_rest_of_a_value_grows_past_marks_read_on_their_own(terms):
    """'CITY HEART !! str' for CITY HEART INSTITUTE: a mark read alone ("!!") is
    no overlay word that ends the value; the rest of the institution goes too."""
    words = line(["Saint", "Mary", "!!", "str"], cw=8)
    hits = [h for h in match_words(words, terms) if h.reason == "header:InstitutionName"]
    assert any(h.box.x1 >= words[1].box.x1 + 8 * len("Hospital") for h in hits), hits
