"""The DICOM gateway (`pixelscrub serve`) on loopback, with real peers.

DCMTK's storescu sends, DCMTK's storescp or Orthanc receives; the gateway runs as
the real command in its own process (or from the Python API where only the
gateway's own behaviour is under test).  Every wait is on an event: a line the
gateway prints, a file appearing, a port answering; none is a fixed sleep.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid as _uid

from pixelscrub.bench.score import score_file
from pixelscrub.gateway import Destination, Gateway, GatewayConfig, Spool
from pixelscrub.gateway.command import config_defaults
from pixelscrub.gateway.forward import backoff
from pixelscrub.header.uids import map_uid
from pixelscrub.options import ScrubOptions
from pixelscrub.synth.generate import generate_file
from pixelscrub.synth.truth import read_truth

from conftest import pydicom_file

KEY = "gateway-test-key-0123456789abcdef"
needs_dcmtk = pytest.mark.skipif(not shutil.which("storescu") or not shutil.which("storescp"),
                                 reason="DCMTK (Debian package dcmtk) is not installed")
PIXELSCRUB = [sys.executable, "-m", "pixelscrub.cli"]


def wait_until(condition, timeout: float = 120.0, what: str = "condition", detail=None):
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds
    (with ``detail()``, e.g. the gateway's log, in the message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{detail()}" if detail else ""))
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Storescp:
    """DCMTK's storescp writing every instance it gets into ``folder``."""

    def __init__(self, folder: Path, *, port: int = 0, extra=("+xa",)):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = subprocess.Popen(["storescp", "-od", str(folder), "-aet", "DEST", *extra, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: answers(self.port), 30, "storescp to listen")

    def files(self) -> dict[str, Path]:
        """SOP Instance UID -> file (storescp names files MODALITY.SOPInstanceUID)."""
        return {p.name.split(".", 1)[1]: p for p in self.folder.iterdir()
                if "." in p.name and not p.name.startswith(".")}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Serve:
    """``pixelscrub serve`` in its own process group, so a kill takes its workers too."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen(PIXELSCRUB + ["serve", "--port", "0", *map(str, args)],
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     env={**os.environ, "PIXELSCRUB_KEY": KEY, **(env or {})})
        self.lines: list[str] = []
        self.port = None
        for line in self.proc.stderr:  # synchronise on the line that says it listens
            self.lines.append(line)
            if "listening as" in line:
                self.port = int(line.split(" on port ")[1].split(",")[0])
                break
        assert self.port, "".join(self.lines)
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def log(self) -> str:
        return "".join(self.lines)

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(60) == 0, self.log()

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


def storescu(port: int, files, *extra, aet="STORESCU", check=True):
    run = subprocess.run(["storescu", "-aet", aet, "-aec", "PIXELSCRUB", *extra, "127.0.0.1",
                          str(port), *map(str, files)], capture_output=True, text=True, timeout=120)
    if check:
        assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Files with burned-in PHI: single frames (uncompressed) and a JPEG baseline cine."""
    out = tmp_path_factory.mktemp("gw-synth")
    made = [generate_file(out, i, 41, case) for i, case in
            enumerate(["us_gray", "sc_dose", "us_cine"])]
    return {g.case: g for g in made}


def test_destination_and_backoff():
    d = Destination.parse("RESEARCH@pacs.example.org:104")
    assert (d.aet, d.host, d.port) == ("RESEARCH", "pacs.example.org", 104)
    for bad in ("pacs:104", "RESEARCH@pacs", "@host:1", "A" * 17 + "@h:1"):
        with pytest.raises(Exception, match="AET@HOST:PORT"):
            Destination.parse(bad)
    assert [backoff(n, 10) for n in (1, 2, 3, 6)] == [0.5, 1.0, 2.0, 10]


def test_spool_resume_clears_only_unacknowledged(tmp_path):
    spool = Spool(tmp_path / "s")
    kept = spool.receive(b"instance")
    (spool.folder("incoming") / "cut-short.dcm").write_bytes(b"half")
    with pytest.raises(Exception, match="another gateway"):
        Spool(tmp_path / "s")
    spool.close()
    again = Spool(tmp_path / "s")
    assert again.ids("received") == [kept]
    assert not list(again.folder("incoming").iterdir())
    again.close()


def test_config_file_gives_defaults_and_rejects_unknown_keys(tmp_path):
    from pixelscrub.cli import build_parser
    from pixelscrub.gateway.command import with_config

    cfg = tmp_path / "gw.toml"
    cfg.write_text('forward = "DEST@127.0.0.1:104"\nspool = "/tmp/x"\nallow = ["MODALITY"]\n'
                   'mode = "all-text"\nmargin = 5\nretain-device-id = true\n'
                   'region = ["0,0,10,10"]\n')
    args = with_config(build_parser(), ["serve", "--config", str(cfg), "--margin", "7"])
    assert (args.forward, args.allow, args.mode, args.margin) == (
        "DEST@127.0.0.1:104", ["MODALITY"], "all-text", 7)
    assert args.retain_device_id is True and args.region[0].box.x1 == 10
    cfg.write_text('forwrd = "DEST@127.0.0.1:104"\n')
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    with pytest.raises(Exception, match="unknown option 'forwrd'"):
        config_defaults(serve, str(cfg))
    run = subprocess.run(PIXELSCRUB + ["serve", "--config", str(cfg)], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "unknown option 'forwrd'" in run.stderr


def test_serve_refuses_to_start_without_a_fixed_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PIXELSCRUB_KEY"}
    run = subprocess.run(PIXELSCRUB + ["serve", "--forward", "D@127.0.0.1:1", "--spool",
                                       str(tmp_path / "s")], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "fixed key" in run.stderr


def _phi_strings(path: Path) -> list[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return [str(ds.PatientName).replace("^", " ").strip(), str(ds.PatientID)]


@needs_dcmtk
def test_storescu_to_storescp_through_the_gateway(tmp_path, synth):
    """Single frames, a JPEG baseline cine and an RLE multi-frame file arrive scrubbed,
    valid and in the syntax they were sent in."""
    dest = Storescp(tmp_path / "dest")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'forward = "DEST@127.0.0.1:{dest.port}"\nspool = "{tmp_path / "spool"}"\n'
                   f'aet = "PIXELSCRUB"\nallow = ["STORESCU"]\njobs = 2\nretry-max = 0.5\n'
                   f'status-port = 0\nredact-unread = true\n')
    serve = Serve(["--config", cfg])
    try:
        multi = pydicom_file("SC_rgb_rle_2frame.dcm")  # multi-frame, RLE lossless
        storescu(serve.port, [synth["us_gray"].dicom, synth["sc_dose"].dicom])
        storescu(serve.port, [synth["us_cine"].dicom], "-xy")  # propose JPEG baseline
        storescu(serve.port, [multi], "-xr")
        originals = [synth["us_gray"].dicom, synth["sc_dose"].dicom, multi, synth["us_cine"].dicom]
        wanted = {map_uid(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID),
                          KEY.encode()): p for p in originals}
        got = wait_until(lambda: (f := dest.files()).keys() >= wanted.keys() and f,
                         240, "four scrubbed instances at storescp", serve.log)
        status_line = next(l for l in serve.lines if "status at" in l)
        url = status_line.split("status at ")[1].strip()
        status = wait_until(  # storescp writes a file before the gateway hears "stored"
            lambda: (st := json.loads(urllib.request.urlopen(url, timeout=10).read()))
            ["counts"].get("forwarded") == 4 and st, 60, "the status to count four forwarded")
        assert status["queue"]["clean"] == 0 and status["queue"]["received"] == 0
    finally:
        serve.stop()
        dest.stop()

    for new_uid, original in wanted.items():
        out = got[new_uid]
        assert subprocess.run(["dcmdump", "-q", str(out)], capture_output=True).returncode == 0
        before = pydicom.dcmread(original)
        after = pydicom.dcmread(out)
        for phi in _phi_strings(original):
            assert phi not in out.read_bytes().decode("latin-1")
        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
        assert after.StudyInstanceUID == map_uid(str(before.StudyInstanceUID), KEY.encode())
        assert after.pixel_array.shape == before.pixel_array.shape
    for case in ("us_gray", "sc_dose", "us_cine"):
        g = synth[case]
        truth = read_truth(g.truth)
        new_uid = map_uid(truth.sop_instance_uid, KEY.encode())
        scored = score_file(truth, g.dicom, got[new_uid], ocr=False)
        phi = [i for i in scored.items if i.is_phi]
        assert scored.status == "ok" and phi and all(i.removed for i in phi), case
    # the audit log names associations and spool ids, never the patient
    audit = (tmp_path / "spool" / "audit.jsonl").read_text()
    for original in originals:
        for phi in _phi_strings(original):
            assert phi not in audit
    events = [json.loads(l)["event"] for l in audit.splitlines()]
    assert events.count("received") == 4 and events.count("forwarded") == 4
    assert "association-close" in events


@needs_dcmtk
def test_echo_and_calling_ae_allowlist(tmp_path, synth):
    dest = Storescp(tmp_path / "dest")
    serve = Serve(["--forward", f"DEST@127.0.0.1:{dest.port}", "--spool", tmp_path / "spool",
                   "--allow", "MODALITY"])
    try:
        echo = subprocess.run(["echoscu", "-aet", "MODALITY", "-aec", "PIXELSCRUB", "127.0.0.1",
                               str(serve.port)], capture_output=True, text=True, timeout=60)
        assert echo.returncode == 0, echo.stderr
        refused = storescu(serve.port, [synth["us_gray"].dicom], aet="INTRUDER", check=False)
        assert refused.returncode != 0
        log = tmp_path / "spool" / "audit.jsonl"  # written by the association's own thread
        wait_until(lambda: "association-rejected" in log.read_text(), 60, "the audit line")
    finally:
        serve.stop()
        dest.stop()
    audit = [json.loads(l) for l in (tmp_path / "spool" / "audit.jsonl").read_text().splitlines()]
    assert any(a["event"] == "association-rejected" and a["calling_ae"] == "INTRUDER" for a in audit)
    assert not any(a["event"] == "received" for a in audit)
    assert not dest.files()


def _copies(src: Path, folder: Path, count: int, **change) -> list[Path]:
    """``count`` copies of ``src`` with new SOP Instance UIDs (and ``change`` applied)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        ds = pydicom.dcmread(src)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid.generate_uid()
        for k, v in change.items():
            setattr(ds, k, v)
        path = folder / f"copy{n:03d}.dcm"
        ds.save_as(path)
        out.append(path)
    return out


@needs_dcmtk
def test_killed_gateway_loses_nothing_it_acknowledged(tmp_path, synth):
    """SIGKILL during a transfer (destination down), restart: every "stored" arrives."""
    files = _copies(synth["us_gray"].dicom, tmp_path / "in", 30)
    dest_port = free_port()  # nobody listens there yet: everything stays in the spool
    args = ["--forward", f"DEST@127.0.0.1:{dest_port}", "--spool", tmp_path / "spool",
            "--retry-max", "0.5", "-j", "1"]
    serve = Serve(args)
    sender = subprocess.Popen(["storescu", "-v", "-aec", "PIXELSCRUB", "127.0.0.1",
                               str(serve.port), *map(str, files)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    audit = tmp_path / "spool" / "audit.jsonl"
    # storescu sends the fourth instance only after the third was acknowledged; the audit
    # line of an instance is written once it is spooled (scrubbing may move it on)
    wait_until(lambda: audit.is_file() and audit.read_text().count('"event": "received"') >= 4,
               120, "four spooled instances")
    serve.kill()
    log = sender.communicate(timeout=120)[0]
    acked, current = [], None
    for line in log.splitlines():  # storescu -v: "Sending file: X" ... "Store Response (Success)"
        if "Sending file:" in line:
            current = line.split("Sending file:")[1].strip()
        elif "Received Store Response (Success)" in line and current:
            acked.append(current)
    assert len(acked) >= 3

    dest = Storescp(tmp_path / "dest", port=dest_port)
    serve = Serve(args)
    try:
        assert any("resuming" in l for l in serve.lines)
        wanted = {map_uid(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID),
                          KEY.encode()) for p in acked}
        wait_until(lambda: dest.files().keys() >= wanted, 240, "every acknowledged instance",
                   serve.log)
        # an instance spooled but never acknowledged (the kill came first) goes on too
        spool = tmp_path / "spool"
        wait_until(lambda: not list(spool.glob("received/*.dcm")) + list(spool.glob("clean/*.dcm")),
                   120, "an empty spool", serve.log)
    finally:
        serve.stop()
        dest.stop()
    assert not list((spool / "quarantine").iterdir())


@needs_dcmtk
def test_bad_instance_is_quarantined_and_the_rest_flows(tmp_path, synth):
    from pynetdicom import AE
    from pynetdicom.sop_class import SecondaryCaptureImageStorage

    dest = Storescp(tmp_path / "dest")
    gateway = Gateway(GatewayConfig(spool=tmp_path / "spool", host="127.0.0.1", port=0,
                                    forward=Destination("DEST", "127.0.0.1", dest.port),
                                    retry_max=0.5),
                      ScrubOptions(key=KEY.encode()))
    gateway.start()
    try:
        bad = pydicom.dcmread(synth["sc_dose"].dicom)
        bad.PixelData = bad.PixelData[: len(bad.PixelData) // 3]  # claims more than it has
        ae = AE(ae_title="SENDER")
        ae.add_requested_context(SecondaryCaptureImageStorage, _uid.ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", gateway.config.port, ae_title="PIXELSCRUB")
        assert assoc.is_established
        assert assoc.send_c_store(bad).Status == 0x0000  # spooled, so acknowledged
        good = pydicom.dcmread(synth["sc_dose"].dicom)
        assert assoc.send_c_store(good).Status == 0x0000
        assoc.release()
        wait_until(lambda: gateway.counts["forwarded"] == 1 and gateway.counts["failed"] == 1,
                   120, "one forwarded, one quarantined")
    finally:
        gateway.stop()
        dest.stop()
    notes = list((tmp_path / "spool" / "quarantine").glob("*.json"))
    assert len(notes) == 1
    reason = json.loads(notes[0].read_text())["reason"]
    assert "pixel data" in reason.lower() and str(tmp_path) not in reason
    assert len(dest.files()) == 1


def test_uncertified_output_is_held_not_forwarded(tmp_path):
    from pixelscrub.records import FileAudit
    from pixelscrub.worker import Task

    gateway = Gateway(GatewayConfig(spool=tmp_path / "spool", host="127.0.0.1", port=0,
                                    forward=Destination("DEST", "127.0.0.1", 1)),
                      ScrubOptions(key=KEY.encode()))
    spool = gateway.spool
    sid = spool.receive(b"original")
    out = spool.path("work", sid)
    out.write_bytes(b"scrubbed, with a text line left unread")
    gateway._scrubbed(Task(0, str(spool.path("received", sid)), str(out), str(out.parent)),
                      FileAudit(input="x", status="unverified"))
    assert spool.ids("unverified") == [sid] and not spool.ids("clean")
    assert not spool.ids("received")
    assert gateway.counts["unverified"] == 1 and not gateway._to_forward.is_set()
    spool.close()


#: A storescp profile that takes ultrasound in uncompressed syntaxes only.
US_UNCOMPRESSED_ONLY = """
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[OnlyUltrasound]
PresentationContext1 = UltrasoundImageStorage\\Uncompressed
PresentationContext2 = UltrasoundMultiframeImageStorage\\Uncompressed

[[Profiles]]
[Default]
PresentationContexts = OnlyUltrasound
"""


@needs_dcmtk
def test_destination_conversion_and_refusal(tmp_path, synth):
    """A destination that takes no JPEG gets the cine decompressed (lossless); one that
    refuses a SOP class outright has that instance quarantined after the retries."""
    cfg = tmp_path / "storescp.cfg"
    cfg.write_text(US_UNCOMPRESSED_ONLY)
    dest = Storescp(tmp_path / "dest", extra=("-xf", str(cfg), "Default"))
    gateway = Gateway(GatewayConfig(spool=tmp_path / "spool", host="127.0.0.1", port=0,
                                    forward=Destination("DEST", "127.0.0.1", dest.port),
                                    retry_max=0.2, max_attempts=2),
                      ScrubOptions(key=KEY.encode(), pixels=False))
    gateway.start()
    try:
        storescu(gateway.config.port, [synth["us_cine"].dicom], "-xy")
        storescu(gateway.config.port, [synth["sc_dose"].dicom])
        wait_until(lambda: gateway.counts["forwarded"] == 1 and gateway.counts["undeliverable"] == 1,
                   60, "one forwarded, one undeliverable")
    finally:
        gateway.stop()
        dest.stop()
    (cine,) = dest.files().values()
    before, after = pydicom.dcmread(synth["us_cine"].dicom), pydicom.dcmread(cine)
    assert after.file_meta.TransferSyntaxUID in (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian)
    assert after.pixel_array.shape == before.pixel_array.shape
    (note,) = (tmp_path / "spool" / "quarantine").glob("*.json")
    assert "accepts none" in json.loads(note.read_text())["reason"]


class Orthanc:
    """Debian's Orthanc with a throwaway configuration: DICOM and REST on free ports."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.dicom_port, self.http_port = free_port(), free_port()
        config = {"Name": "pixelscrub-test", "StorageDirectory": str(folder / "db"),
                  "IndexDirectory": str(folder / "db"), "Plugins": [],
                  "HttpPort": self.http_port, "DicomPort": self.dicom_port,
                  "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
                  "HttpServerEnabled": True}
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.proc = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(), 60, "Orthanc's REST API")

    def _answers(self) -> bool:
        try:
            self.get("/system")
            return True
        except OSError:
            return False

    def get(self, path: str):
        url = f"http://127.0.0.1:{self.http_port}{path}"
        return json.loads(urllib.request.urlopen(url, timeout=10).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


@pytest.mark.skipif(not shutil.which("Orthanc") or not shutil.which("storescu"),
                    reason="Orthanc and DCMTK (Debian packages orthanc, dcmtk) are needed")
def test_orthanc_receives_one_scrubbed_study_sent_in_two_parts(tmp_path, synth):
    """Two associations carry one study; Orthanc's REST API shows one pseudonymised study."""
    first = pydicom.dcmread(synth["us_gray"].dicom, stop_before_pixels=True)
    same_study = {k: first.get(k) for k in ("PatientName", "PatientID", "PatientBirthDate",
                                             "StudyInstanceUID", "StudyDate", "AccessionNumber")}
    part2 = _copies(synth["us_gray"].dicom, tmp_path / "part2", 2, **same_study)
    orthanc = Orthanc(tmp_path / "orthanc")
    gateway = Gateway(GatewayConfig(spool=tmp_path / "spool", host="127.0.0.1", port=0,
                                    forward=Destination("ORTHANC", "127.0.0.1", orthanc.dicom_port),
                                    retry_max=0.5),
                      ScrubOptions(key=KEY.encode(), redact_unread=True))
    gateway.start()
    try:
        storescu(gateway.config.port, [synth["us_gray"].dicom])
        storescu(gateway.config.port, part2)
        wait_until(lambda: len(orthanc.get("/instances")) == 3, 240, "three instances in Orthanc")
        studies = orthanc.get("/studies")
        tags = orthanc.get(f"/instances/{orthanc.get('/instances')[0]}/simplified-tags")
    finally:
        gateway.stop()
        orthanc.stop()
    assert len(studies) == 1
    assert tags["StudyInstanceUID"] == map_uid(str(first.StudyInstanceUID), KEY.encode())
    assert tags["PatientName"] != str(first.PatientName)
    assert str(first.PatientID) not in json.dumps(tags)
    assert tags.get("BurnedInAnnotation") == "NO"


def _make_tls(folder: Path) -> dict[str, Path]:
    """A CA, and a certificate and key for each side, signed by it (openssl)."""
    folder.mkdir()
    run = lambda *a: subprocess.run(["openssl", *a], cwd=folder, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    for name in ("gateway", "sender", "dest"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt")
    return {p.name: p for p in folder.iterdir()}


@needs_dcmtk
@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is needed to make certificates")
def test_tls_on_both_sides(tmp_path, synth):
    """storescu --(TLS, client certificate checked)--> gateway --(TLS)--> storescp."""
    pem = _make_tls(tmp_path / "pki")
    dest = Storescp(tmp_path / "dest", extra=("+xa", "+tls", str(pem["dest.key"]),
                                              str(pem["dest.crt"]), "+cf", str(pem["ca.crt"])))
    serve = Serve(["--forward", f"DEST@127.0.0.1:{dest.port}", "--spool", tmp_path / "spool",
                   "--tls-cert", pem["gateway.crt"], "--tls-key", pem["gateway.key"],
                   "--tls-ca", pem["ca.crt"], "--forward-tls-ca", pem["ca.crt"],
                   "--forward-tls-cert", pem["gateway.crt"], "--forward-tls-key",
                   pem["gateway.key"], "--retry-max", "0.5"])
    try:
        plain = storescu(serve.port, [synth["us_gray"].dicom], check=False)
        assert plain.returncode != 0  # no TLS: no association
        storescu(serve.port, [synth["us_gray"].dicom], "+tls", str(pem["sender.key"]),
                 str(pem["sender.crt"]), "+cf", str(pem["ca.crt"]))
        new_uid = map_uid(str(pydicom.dcmread(synth["us_gray"].dicom).SOPInstanceUID), KEY.encode())
        wait_until(lambda: new_uid in dest.files(), 120, "the instance at the TLS destination",
                   serve.log)
    finally:
        serve.stop()
        dest.stop()
