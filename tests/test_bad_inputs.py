"""Bad input never stops a batch, never leaves a partial output, and gets one line.

One batch runs over a folder of broken files (plus a good one); each case then
checks its own record.  Special layouts (FIFOs, symlink loops, a full disk, an
unwritable output) get their own runs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_fragments

from conftest import pydicom_file
from pixelscrub.batch import JOURNAL_NAME, PARTIAL_DIR, default_report_path, run_batch
from pixelscrub.cli import main
from pixelscrub.options import ScrubOptions, parse_region

OPTS = ScrubOptions(mode="regions-only", regions=(parse_region("0,0,8,8"),), key=b"k" * 32)
CT = pydicom_file("CT_small.dcm")  # explicit VR little endian, 128x128x16 bit


def _truncate(at):
    def make(path):
        data = CT.read_bytes()
        path.write_bytes(data[:at(data)])
    return make


def _dataset_edit(name, edit):
    def make(path):
        ds = pydicom.dcmread(pydicom_file(name))
        edit(ds)
        ds.save_as(path, enforce_file_format=False)
    return make


def _raw_patch(find, replace):
    def make(path):
        data = CT.read_bytes()
        assert data.count(find) == 1
        path.write_bytes(data.replace(find, replace))
    return make


def _short_pixels(ds):
    ds.PixelData = ds.PixelData[:1000]


def _absurd(ds):
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 100000


def _syntax(uid):
    def edit(ds):
        ds.file_meta.TransferSyntaxUID = uid
    return edit


def _mpeg2(ds):
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: not supported
    ds.PixelData = encapsulate([ds.PixelData])


def _corrupt_rle_header(ds):
    frag = bytearray(next(generate_fragments(ds.PixelData)))
    frag[0:4] = (15).to_bytes(4, "little")  # claims 15 segments
    frag[4:64] = b"\xff" * 60  # with offsets far past the end
    ds.PixelData = encapsulate([bytes(frag)])


def _corrupt_j2k(ds):
    frag = bytearray(next(generate_fragments(ds.PixelData)))
    frag[:40] = b"\x00" * 40  # no SOC / SIZ marker left
    ds.PixelData = encapsulate([bytes(frag)])


def _no_pixels(path):
    """An image whose Pixel Data is gone (an RT plan or a report has none, and is fine)."""
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(path)


#: case -> (how to make it, the error text it must produce)
CASES = {
    "not_dicom.dcm": (lambda p: p.write_text("just some text\n" * 50), "not a DICOM"),
    "empty.dcm": (lambda p: p.write_bytes(b""), "empty"),
    "trunc_preamble.dcm": (_truncate(lambda d: 64), None),
    "trunc_after_magic.dcm": (_truncate(lambda d: 132), None),
    "trunc_meta.dcm": (_truncate(lambda d: 200), None),
    "trunc_before_pixels.dcm": (_truncate(lambda d: d.find(b"\xe0\x7f\x10\x00") - 20), None),
    "trunc_mid_pixels.dcm": (_truncate(lambda d: len(d) - 16000), None),
    "trunc_last_pixel_byte.dcm": (_truncate(lambda d: d.find(b"\xe0\x7f\x10\x00") + 12 + 32767),
                                  None),
    "short_pixel_data.dcm": (_dataset_edit("CT_small.dcm", _short_pixels), None),
    "rows_wrong_vr.dcm": (_raw_patch(b"(\x00\x10\x00US\x02\x00", b"(\x00\x10\x00OB\x02\x00"), None),
    "rows_wrong_length.dcm": (_raw_patch(b"(\x00\x10\x00US\x02\x00", b"(\x00\x10\x00US\xff\x7f"), None),
    "pixel_length_too_long.dcm": (_raw_patch(b"\xe0\x7f\x10\x00OW\x00\x00\x00\x80\x00\x00",
                                             b"\xe0\x7f\x10\x00OW\x00\x00\x00\x80\x01\x00"), None),
    "absurd_dimensions.dcm": (_dataset_edit("CT_small.dcm", _absurd), "too large"),
    "no_pixel_module.dcm": (_no_pixels, "no Pixel Data"),
    "unknown_syntax.dcm": (_dataset_edit("CT_small.dcm", _syntax("1.2.3.4.5.6.7")), None),
    "mpeg2_syntax.dcm": (_dataset_edit("CT_small.dcm", _mpeg2), None),
    "corrupt_rle.dcm": (_dataset_edit("SC_rgb_rle.dcm", _corrupt_rle_header), None),
    "corrupt_j2k.dcm": (_dataset_edit("MR_small_jp2klossless.dcm", _corrupt_j2k), None),
}


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    src = root / "in"
    src.mkdir()
    shutil.copyfile(CT, src / "good.dcm")
    for name, (make, _) in CASES.items():
        make(src / name)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = root / "out"
    summary = run_batch([src], out, OPTS, jobs=2, progress="none")
    recs = [json.loads(l) for l in default_report_path(out).read_text().splitlines()]
    by_name = {Path(r["input"]).name: r for r in recs[:-1]}
    return src, out, summary, by_name, before


def test_batch_survives_and_writes_only_the_good_file(bad_run):
    src, out, summary, by_name, before = bad_run
    assert summary.files_in == len(CASES) + 1
    assert summary.failed == len(CASES) and summary.files_out == 1
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL_NAME, "good.dcm"]
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched
    assert summary.exit_status == 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_bad_file_fails_with_one_line_naming_it(bad_run, name):
    src, out, _, by_name, _ = bad_run
    rec = by_name[name]
    assert rec["status"] == "failed" and rec["output"] is None
    assert rec["error"].startswith(f"{name}: ")
    assert "\n" not in rec["error"]
    expected = CASES[name][1]
    if expected:
        assert expected in rec["error"]
    assert not (out / name).exists()


def test_max_pixels_refuses_before_decoding(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(CT, src / "ct.dcm")
    opts = ScrubOptions(mode="regions-only", key=b"k" * 32, max_pixels=128 * 128 - 1)
    summary = run_batch([src], tmp_path / "out", opts, jobs=1, progress="none")
    rec = json.loads(default_report_path(tmp_path / "out").read_text().splitlines()[0])
    assert summary.failed == 1 and "image too large" in rec["error"]
    assert [s["stage"] for s in rec["stages"] if s["stage"] in ("encode", "redact")] == []


def _huge_rle(path: Path) -> None:
    ds = pydicom.dcmread(pydicom_file("SC_rgb_rle.dcm"))  # 100x100 RLE data...
    ds.Rows, ds.Columns = 30000, 30000  # ...declared as 30000x30000 (2.7 GB decoded)
    ds.save_as(path, enforce_file_format=False)


@pytest.mark.parametrize("mode", ["regions-only", "phi"])
def test_declared_size_far_beyond_data_fails_within_memory_cap(tmp_path, mode):
    src = tmp_path / "in"
    src.mkdir()
    _huge_rle(src / "huge.dcm")
    opts = ScrubOptions(mode=mode, regions=(parse_region("0,0,50,50"),), key=b"k" * 32)
    summary = run_batch([src], tmp_path / "out", opts, jobs=1, progress="none",
                        max_memory=1500 * 2**20)
    rec = json.loads(default_report_path(tmp_path / "out").read_text().splitlines()[0])
    assert summary.failed == 1 and rec["error"].startswith("huge.dcm: ")
    assert not (tmp_path / "out" / "huge.dcm").exists()


def test_fifo_and_broken_links_do_not_block(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(CT, src / "good.dcm")
    os.mkfifo(src / "pipe.dcm")
    os.mkfifo(tmp_path / "toplevel.dcm")
    (src / "dangling.dcm").symlink_to(tmp_path / "nowhere.dcm")
    (src / "self.dcm").symlink_to(src / "self.dcm")
    summary = run_batch([src, tmp_path / "toplevel.dcm"], tmp_path / "out", OPTS, jobs=1,
                        progress="none", timeout=20)
    recs = {Path(r["input"]).name: r["error"] for r in map(
        json.loads, default_report_path(tmp_path / "out").read_text().splitlines()[:-1])}
    assert summary.files_out == 1 and summary.failed == 4
    assert recs["pipe.dcm"].endswith("not a regular file (FIFO)")
    assert recs["toplevel.dcm"].endswith("not a regular file (FIFO)")
    assert recs["dangling.dcm"].endswith("broken symlink")
    assert recs["self.dcm"].endswith("symlink loop")


def test_symlink_loop_in_tree_visits_each_file_once(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    shutil.copyfile(CT, src / "a" / "x.dcm")
    (src / "a" / "back").symlink_to(src)  # in/a/back -> in: a cycle
    (src / "link").symlink_to(src / "a")  # a second way into in/a
    out = tmp_path / "out"
    rc = main(["scrub", str(src), "-o", str(out), "--mode", "regions-only", "-j", "1",
               "--progress", "none"])
    assert rc == 0
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.dcm")] == ["a/x.dcm"]
    assert "symlink loop" in capsys.readouterr().err


def test_blocked_output_folder_fails_that_file_only(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copyfile(CT, src / "sub" / "a.dcm")
    shutil.copyfile(CT, src / "b.dcm")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_bytes(b"a file where a folder must go")
    summary = run_batch([src], out, OPTS, jobs=1, progress="none")
    assert summary.failed == 1 and summary.files_out == 1
    recs = [json.loads(l) for l in default_report_path(out).read_text().splitlines()[:-1]]
    rec = [r for r in recs if r["status"] == "failed"][0]
    assert rec["error"] == ("sub/a.dcm: cannot write output "
                            f"{out.resolve() / 'sub' / 'a.dcm'}: a file is in the way of its folder")


def unprivileged_scrub(src, dst, options, *, workdir=None):
    """Scrub as user nobody, so permissions apply even though the tests run as root."""
    import pixelscrub.decode  # noqa: F401 - imported while the stdlib is still readable
    import pixelscrub.dicomio  # noqa: F401
    from pixelscrub.pipeline import scrub_file
    if os.getuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    return scrub_file(src, dst, options, workdir=workdir)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop to nobody")
def test_unreadable_input_fails_with_its_reason(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(CT, src / "locked.dcm")
    os.chmod(src / "locked.dcm", 0)
    summary = run_batch([src], tmp_path / "out", OPTS, jobs=1, progress="none",
                        scrub=unprivileged_scrub)
    rec = json.loads(default_report_path(tmp_path / "out").read_text().splitlines()[0])
    assert summary.failed == 1
    assert rec["error"].startswith("locked.dcm: ") and "PermissionError" in rec["error"]
    assert not (tmp_path / "out" / "locked.dcm").exists()


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True)
    return res.returncode == 0


@pytest.fixture
def mounts():
    mounted = []
    yield mounted
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_output_is_a_usage_error(tmp_path, mounts, capsys):
    out = tmp_path / "out"
    if not _mount_tmpfs(out, "ro,size=64k"):
        pytest.skip("cannot mount a tmpfs here")
    mounts.append(out)
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(CT, src / "a.dcm")
    assert main(["scrub", str(src), "-o", str(out), "--mode", "regions-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"pixelscrub: {out}: cannot write to the output folder (Read-only file system)"


def test_full_disk_leaves_no_partial_output(tmp_path, mounts):
    out = tmp_path / "out"
    if not _mount_tmpfs(out, "size=160k"):
        pytest.skip("cannot mount a tmpfs here")
    mounts.append(out)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):  # 8 x 39 kB outputs do not fit in 160 kB
        shutil.copyfile(CT, src / f"ct{i}.dcm")
    summary = run_batch([src], out, OPTS, jobs=2, progress="none",
                        report=tmp_path / "report.jsonl")
    assert summary.failed >= 3 and summary.files_out >= 1
    assert summary.files_out + summary.failed == 8
    assert not (out / PARTIAL_DIR).exists()
    written = sorted(out.glob("*.dcm"))
    assert len(written) == summary.files_out
    for path in written:  # each output is whole
        assert pydicom.dcmread(path).pixel_array.shape == (128, 128)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != JOURNAL_NAME]
