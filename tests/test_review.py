"""The review page, opened in a real headless Chromium (Debian's, driven by Playwright):
cards, filters, no PHI, decisions and release, --show-phi, a 1,000-file page."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from pixelscrub import ScrubOptions
from pixelscrub.batch import default_report_path, run_batch
from pixelscrub.errors import ScrubError
from pixelscrub.review import build_review, release

CHROMIUM = Path("/usr/bin/chromium")
SAMPLES = Path(__file__).resolve().parent.parent / "sample_data" / "dicom"
KEY = b"review-test-key-0123456789abcdefg"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed (make setup installs it)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-quic",
                                    "--no-first-run", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A phi-mode run: three sample images, a cine, an unreadable scribble row, a bad file."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_fail_closed import _scene, _write
    root = tmp_path_factory.mktemp("review")
    src = root / "PATIENT_EXPORT_HANSEN"
    src.mkdir()
    for name in ("0000_us_gray.dcm", "0004_us_cine.dcm", "0006_sc_viewer.dcm", "0008_xr_mono2.dcm"):
        shutil.copyfile(SAMPLES / name, src / name)
    _write(src / "scribble.dcm", _scene(glyphs=14, seed=1))
    (src / "bad.dcm").write_bytes(b"not dicom")
    out = root / "out"
    summary = run_batch([src], out, ScrubOptions(key=KEY), jobs=2, progress="none")
    assert summary.failed == 1 and summary.unverified == 1
    return root, src, out


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(page_path.as_uri())
    page.wait_for_selector(".card")
    return page


def _phi_strings(src: Path) -> set[str]:
    """Names, IDs and dates of every input header, and the input folder's name."""
    out = {src.name, str(src)}
    for path in src.glob("*.dcm"):
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName",
                   "AccessionNumber"):
            value = str(ds.get(kw, "") or "")
            out |= {part for part in value.replace("^", " ").split() if len(part) > 3}
    return out


def test_page_cards_filters_and_no_phi(run, browser, tmp_path):
    root, src, out = run
    index = build_review(default_report_path(out))
    assert index == root / "out-review" / "index.html"
    page = _open(browser, index)
    assert page.locator(".card").count() == 6
    assert page.locator("#count").inner_text() == "6 of 6 files"
    # every image card has a thumbnail of the scrubbed pixels and a full-size view
    assert page.locator(".card img").count() == 5
    page.locator(".card img").first.click()
    assert page.locator("#viewer").is_visible()
    page.locator("#viewer").click()
    page.check("#f-review")
    assert page.locator(".card").count() == 2            # the unverified and the failed file
    assert page.locator(".card.failed").count() == 1
    page.check("#f-failed")
    assert page.locator(".card").count() == 1
    page.uncheck("#f-failed")
    page.uncheck("#f-review")
    page.select_option("#f-reason", "unread")
    assert page.locator(".card").count() == 1
    page.select_option("#f-reason", "")
    page.select_option("#f-modality", "US")
    assert page.locator(".card").count() == 2             # the single-frame scan and the cine
    page.select_option("#f-modality", "")
    assert "redactions per reason" in page.inner_text("#summary")
    # the cine's card shows a strip: frame 0 and frames where its timer changed
    assert "frames shown: 0, " in page.inner_text(".card:has-text('20/20')")
    # nothing identifying anywhere: page, data, DOM text
    text = (index.read_text() + (index.parent / "data.js").read_text() + page.content())
    leaked = [s for s in _phi_strings(src) if s in text]
    assert not leaked, leaked
    shot = tmp_path / "review.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()


def test_decisions_download_and_release(run, browser, tmp_path):
    root, src, out = run
    report = default_report_path(out)
    page = _open(browser, build_review(report, out_dir=tmp_path / "page"))
    cards = page.locator(".card")
    first_key = cards.nth(0).get_attribute("data-key")
    cards.nth(0).locator("button.reject").click()
    cards.nth(1).locator("button.approve").click()
    assert page.locator(".card.rejected").count() == 1 and page.locator(".card.approved").count() == 1
    with page.expect_download() as info:
        page.click("#download")
    decisions = tmp_path / "decisions.json"
    info.value.save_as(decisions)
    page.close()
    data = json.loads(decisions.read_text())
    assert data["decisions"][first_key] == "rejected" and list(data["decisions"].values()).count(
        "approved") == 1
    first = json.loads(report.read_text().splitlines()[0])
    before = {p.name for p in out.rglob("*.dcm")}
    moved, kept = release(decisions, report, tmp_path / "quarantine")
    assert moved == 1 and kept == 4
    assert (tmp_path / "quarantine" / first["output"]).is_file()
    assert len({p.name for p in out.rglob("*.dcm")}) == len(before) - 1


def test_show_phi_needs_a_log_phi_report_and_says_so(run, browser, tmp_path):
    root, src, out = run
    with pytest.raises(ScrubError, match="--log-phi"):
        build_review(default_report_path(out), out_dir=tmp_path / "x", show_phi=True)
    report = tmp_path / "phi-report.jsonl"
    run_batch([src], tmp_path / "phi-out", ScrubOptions(key=KEY, log_phi=True), jobs=2,
              progress="none", report=report)
    page = _open(browser, build_review(report, out_dir=tmp_path / "phi-page", show_phi=True))
    assert "shows PHI" in page.inner_text("#phi-banner")
    assert page.locator("img.original").count() == 5
    assert page.locator(".ocr-text").count() >= 3
    page.close()


def test_thousand_files_load_in_seconds(run, browser, tmp_path):
    root, src, out = run
    index = build_review(default_report_path(out), out_dir=tmp_path / "big")
    data_js = index.parent / "data.js"
    data = json.loads(data_js.read_text()[len("window.REVIEW = "):-2])
    base = [c for c in data["cards"] if c.get("thumb")]
    data["cards"] = [dict(base[i % len(base)], n=i + 1, key=f"{i:016x}") for i in range(1000)]
    data_js.write_text("window.REVIEW = " + json.dumps(data) + ";\n")
    page = _open(browser, index)    # how long it takes is measured in benchmarks/RESULTS.md
    assert page.locator("#count").inner_text() == "1000 of 1000 files"
    assert page.locator(".card").count() == 60           # paged: the rest on demand
    page.click("#more")
    assert page.locator(".card").count() == 120
    us = sum(c.get("modality") == "US" for c in data["cards"])
    assert 0 < us < 1000
    page.select_option("#f-modality", "US")
    assert page.locator("#count").inner_text() == f"{us} of 1000 files"
    page.close()
