"""The stress set: wider than the default set, reproducible, truth consistent with pixels."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from pixelscrub.synth.stress import HERSHEY_FACES, TRUETYPE_FACES, available_faces, stress_set
from pixelscrub.synth.truth import read_truth


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    out = tmp_path_factory.mktemp("stress")
    paths = stress_set(out, 40, seed=1001)
    truths = [read_truth(out / "truth" / (p.stem + ".json")) for p in paths]
    return out, paths, truths


def test_truetype_faces_are_installed():
    """make setup installs fonts-dejavu-core and fonts-liberation: six or more families."""
    faces = available_faces()
    assert len([f for f in faces if f in TRUETYPE_FACES]) >= 6 and set(HERSHEY_FACES) <= set(faces)


def test_same_seed_same_bytes(tmp_path, stress):
    out, paths, _ = stress
    again = stress_set(tmp_path, 3, seed=1001)
    for a, b in zip(paths[:3], again):
        assert a.read_bytes() == b.read_bytes()


def test_distributions_are_wide(stress):
    _, paths, truths = stress
    tags = {t for tr in truths for it in tr.items for t in it.tags}
    for needed in ("cap-small", "cap-large", "ground-speckle", "ground-anatomy", "ground-gradient",
                   "low-contrast", "name-no-header", "physician", "institution-wrapped",
                   "institution-cut", "name-caret", "name-comma", "name-first_last"):
        assert needed in tags, needed
    faces = {it.font for tr in truths for it in tr.items}
    assert len(faces & set(TRUETYPE_FACES)) >= 4 and faces & set(HERSHEY_FACES)
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in paths}
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"} <= syntaxes
    caps = [it.cap_height for tr in truths for it in tr.items]
    assert min(caps) < 9 and max(caps) > 25


def test_ink_is_where_the_truth_says(stress):
    """Each item's ink differs from the pixels just outside its box (it was drawn there)."""
    _, paths, truths = stress
    for path, truth in zip(paths[:10], truths[:10]):
        ds = pydicom.dcmread(path)
        img = ds.pixel_array.astype(float)
        if img.ndim == 3:
            img = img.mean(axis=2)
        assert img.shape == (truth.rows, truth.columns)
        for it in truth.items:
            b = it.box
            crop = img[b.y0:b.y1, b.x0:b.x1]
            assert crop.shape == it.ink.shape
            ink, ground = crop[it.ink], crop[~it.ink]
            if ink.size and ground.size:
                assert abs(np.median(ink) - np.median(ground)) >= 8, (path.name, it.text)


def test_header_holds_what_it_should(stress):
    """Unstripped files hold the patient in the header; stripped and foreign names do not."""
    _, paths, truths = stress
    for path, truth in zip(paths, truths):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for it in truth.items:
            if it.is_phi and "name-no-header" in it.tags:
                family = it.text.replace(",", " ").replace("^", " ").split()[0].upper()
                assert family not in str(ds.PatientName).upper()
            elif it.why == "header:PatientID":
                assert it.text == ds.PatientID
