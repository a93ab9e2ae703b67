"""Batch runs that never lose data: parallel, resumable, robust against bad input.

``run_batch`` finds the files under the inputs, mirrors their relative paths
under the output folder, and scrubs each in a worker process (or on a Dask
cluster).  What it guarantees:

* inputs are never written: the output folder, report and quarantine may not lie
  inside an input folder, and every output directory is checked to resolve inside
  the output folder before anything is renamed into it;
* outputs appear atomically: a worker writes into ``OUTDIR/.pixelscrub-partial/``
  and only a finished, non-failed file is renamed into place; whatever a killed
  run left there is removed by the next run;
* a re-run skips files done before: ``OUTDIR/.pixelscrub-journal.jsonl`` records,
  per output, a hash of the input (real path, size, mtime) and of the options;
  a file is skipped only if its output still exists with the recorded size and
  both hashes match.  The journal holds hashes only, no paths or PHI;
* a file that fails gets a one-line reason on stderr and in the report, is never
  written as output (a stale output of an earlier run is removed), and with a
  quarantine folder is copied there (the input stays where it is);
* only certified outputs land in the output folder: a file whose pixels could
  not be checked in full (``unverified``: a frame not checked, a text line that
  stayed unreadable) is written to ``OUTDIR-unverified/`` (or ``unverified=``)
  at the same relative path, never beside the clean ones.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Optional, TextIO

from . import __version__
from .dicomio import member_ref, zip_member
from .errors import ScrubError
from .options import NO_OCR_MODES, ScrubOptions
from .records import OUTPUT_STATUSES, FileAudit
from .report import ReportWriter, RunSummary
from .worker import Task, failed_audit, run_local

__all__ = ["Job", "discover", "check_layout", "options_hash", "run_batch",
           "default_report_path", "default_unverified_path", "PARTIAL_DIR", "JOURNAL_NAME"]

PARTIAL_DIR = ".pixelscrub-partial"
JOURNAL_NAME = ".pixelscrub-journal.jsonl"
_PROGRESS_EVERY = 5.0

#: Why a DICOMDIR found among the inputs is not scrubbed or copied.
DICOMDIR_LEFT_OUT = ("DICOMDIR left out (it lists patient names and IDs; build a new one "
                     "from the outputs)")  # seconds between plain progress lines when not on a terminal


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes (``rel`` is relative to OUTDIR)."""

    src: str
    rel: str


def _usage(message: str) -> ScrubError:
    return ScrubError(message, reason="usage")


def _real(path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def default_report_path(outdir) -> Path:
    """``OUTDIR-report.jsonl`` beside the output folder, so that nothing but
    scrubbed images lands in a folder that may feed a PACS."""
    out = Path(os.path.abspath(outdir))
    return out.parent / f"{out.name}-report.jsonl"


def default_unverified_path(outdir) -> Path:
    """``OUTDIR-unverified`` beside the output folder: outputs that are not
    certified clean stay out of a folder that may feed a PACS."""
    out = Path(os.path.abspath(outdir))
    return out.parent / f"{out.name}-unverified"


def check_layout(inputs: Iterable, outdir, *, report=None, quarantine=None, reid_map=None,
                 log_phi: bool = False, unverified=None) -> None:
    """Refuse runs that could write into the input tree or mix failures with outputs.

    Nothing that holds PHI may travel with the outputs: not the quarantine (raw
    inputs), not the re-identification map, not a report written with ``log_phi``.
    """
    out = _real(outdir)
    extras = (("report", report), ("quarantine", quarantine), ("re-identification map", reid_map),
              ("unverified folder", unverified))
    for name, extra in (("re-identification map", reid_map),
                        ("report (written with --log-phi)", report if log_phi else None)):
        if extra is not None and _inside(_real(extra), out):
            raise _usage(f"{extra}: the {name} must not be inside the output folder {outdir}")
    if out.exists() and not out.is_dir():
        raise _usage(f"{outdir}: output path exists and is not a folder")
    for item in inputs:
        if not os.path.lexists(item):
            raise _usage(f"{item}: no such file or folder")
        real = _real(item)
        if real.is_dir():
            if _inside(out, real):
                raise _usage(f"{outdir}: output folder is inside input folder {item}")
            if _inside(real, out):
                raise _usage(f"{item}: input folder is inside output folder {outdir}")
            for name, extra in extras:
                if extra is not None and _inside(_real(extra), real):
                    raise _usage(f"{extra}: {name} path is inside input folder {item}")
        else:
            if _inside(real, out):
                raise _usage(f"{item}: input file is inside output folder {outdir}")
            for name, extra in extras:
                if extra is not None and _real(extra) == real:
                    raise _usage(f"{extra}: {name} path is an input file")
    for name, folder in (("quarantine", quarantine), ("unverified", unverified)):
        if folder is not None:
            q = _real(folder)
            if _inside(q, out) or _inside(out, q):
                raise _usage(f"{folder}: {name} folder overlaps output folder {outdir}")
    if report is not None and _real(report).is_dir():
        raise _usage(f"{report}: report path is a folder")


def _walk(top: Path, base: Path, seen: set, jobs: list, problems: list, warnings: list) -> None:
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError as exc:
        problems.append((_job(top, base), f"cannot list folder ({exc.strerror})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = os.stat(path)  # follows symlinks
        except OSError as exc:
            reason = ("symlink loop" if exc.errno == errno.ELOOP else
                      "broken symlink" if entry.is_symlink() and exc.errno == errno.ENOENT
                      else f"cannot stat ({exc.strerror})")
            problems.append((_job(path, base), reason))
            continue
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in seen:
                warnings.append(f"{_job(path, base).rel}: folder already visited (symlink loop), "
                            "not entered again")
                continue
            seen.add(ident)
            _walk(path, base, seen, jobs, problems, warnings)
        elif stat.S_ISREG(st.st_mode) and entry.name.upper() == "DICOMDIR":
            warnings.append(f"{_job(path, base).rel}: {DICOMDIR_LEFT_OUT}")
        elif stat.S_ISREG(st.st_mode):
            jobs.append(_job(path, base))
        else:
            problems.append((_job(path, base), f"not a regular file ({_kind(st.st_mode)})"))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "unknown type"


def _zip_members(path: Path, jobs: list, problems: list, warnings: list) -> None:
    """The members of an export zip as jobs, read later member by member in memory;
    a member name that would climb out of the output folder is refused."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        problems.append((Job(str(path), path.name), f"cannot read zip ({type(exc).__name__})"))
        return
    for info in infos:
        if info.is_dir():
            continue
        rel = PurePosixPath(info.filename)
        job = Job(member_ref(str(path), info.filename), rel.as_posix())
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            problems.append((Job(job.src, f"{path.name}-member"), "zip member name leaves its folder"))
        elif rel.name.upper() == "DICOMDIR":
            warnings.append(f"{rel.as_posix()}: {DICOMDIR_LEFT_OUT}")
        else:
            jobs.append(job)


def _job(path: Path, base: Path) -> Job:
    """``path`` under the input folder ``base`` (a named file: its own name)."""
    rel = path.relative_to(base).as_posix() if path != base else path.name
    return Job(str(path), rel)


def discover(inputs: Iterable) -> tuple[list[Job], list[tuple[Job, str]], list[str]]:
    """Every regular file under ``inputs`` with its relative output path.

    Folders are walked recursively (following symlinks, each real folder once);
    single files map to their name.  Files that can never be read (FIFOs, dangling
    or looping symlinks) come back as (job, reason) problems, not as jobs, so
    nothing blocks on opening them.  The same real file named twice is scrubbed once.
    """
    jobs: list[Job] = []
    problems: list[tuple[Job, str]] = []
    warnings: list[str] = []
    for item in inputs:
        path = Path(item)
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append((Job(str(path), path.name),
                             "symlink loop" if exc.errno == errno.ELOOP
                             else f"cannot stat ({exc.strerror})"))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(path, path, {(st.st_dev, st.st_ino)}, jobs, problems, warnings)
        elif stat.S_ISREG(st.st_mode) and path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            _zip_members(path, jobs, problems, warnings)
        elif stat.S_ISREG(st.st_mode):
            jobs.append(Job(str(path), path.name))
        else:
            problems.append((Job(str(path), path.name),
                             f"not a regular file ({_kind(st.st_mode)})"))
    unique, seen_src, seen_rel = [], set(), {}
    for job in jobs:
        real = job.src if zip_member(job.src) else os.path.realpath(job.src)
        if real in seen_src:
            continue
        seen_src.add(real)
        if job.rel in seen_rel:
            problems.append((job, f"output name {job.rel} is already taken by another input"))
            continue
        seen_rel[job.rel] = job.src
        unique.append(job)
    return unique, problems, warnings


def _canonical(value: Any) -> Any:
    """A JSON-ready form of options that is the same in every process."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__dict__"):
        return {type(value).__name__: _canonical(vars(value))}
    return repr(value)


def _content_hash(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` ("missing" for one that cannot be read)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"\0missing")
    return h.hexdigest()


def options_hash(options: ScrubOptions) -> str:
    """A hash of everything that changes an output (the key enters only hashed):
    the options, the version, the detection assets in models/ and the content of a
    pseudonym table, so a re-run after editing either redoes the files."""
    from .assets import models_dir
    data = _canonical(options)
    data.pop("log_phi", None)
    data["version"] = __version__
    if options.pixels and options.mode not in NO_OCR_MODES:
        data["models"] = _content_hash(sorted(models_dir().iterdir()))
    if options.deid is not None and options.deid.pseudonym_csv:
        data["pseudonym_table"] = _content_hash([Path(options.deid.pseudonym_csv)])
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _input_hash(src: str, opts: str) -> Optional[str]:
    member = zip_member(src)
    try:
        st = os.stat(member[0] if member else src)
    except OSError:
        return None
    where = (f"{os.path.realpath(member[0])}\0{member[1]}" if member
             else os.path.realpath(src))
    ident = f"{where}\0{st.st_size}\0{st.st_mtime_ns}\0{opts}"
    return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()


def _rel_key(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()


class _Journal:
    """Append-only record of finished outputs; also the lock against a second run."""

    def __init__(self, outdir: Path):
        self.path = outdir / JOURNAL_NAME
        self.done: dict[str, dict] = {}
        try:
            self._fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise _usage(f"{outdir}: cannot write to the output folder ({exc.strerror})")
        self.error: Optional[str] = None
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise _usage(f"{outdir}: another pixelscrub run is writing to this folder")
        self._fh.seek(0)
        for line in self._fh:
            try:
                rec = json.loads(line)
                self.done[rec["out"]] = rec
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash

    def finished(self, rel: str, input_hash: Optional[str], roots: dict[str, Path]
                 ) -> Optional[tuple[str, Path]]:
        """(status, folder) of ``rel`` if an earlier run finished it from the same
        input and options and its output is still in that folder, else None.
        ``roots`` maps a status to the folder its outputs go to."""
        rec = self.done.get(_rel_key(rel))
        if not rec or input_hash is None or rec.get("in") != input_hash:
            return None
        status = rec.get("status")
        if status not in roots:
            return None
        dst = roots[status] / self.path_of(rel)
        try:
            if dst.is_file() and dst.stat().st_size == rec.get("size"):
                return status, roots[status]
        except OSError:
            pass
        return None

    def ours(self, rel: str) -> bool:
        return _rel_key(rel) in self.done

    def path_of(self, rel: str) -> str:
        """Where the output of input ``rel`` went, below its folder (``--rename uid``
        names it by UIDs; otherwise it mirrors ``rel``, which is never stored)."""
        return (self.done.get(_rel_key(rel)) or {}).get("path") or rel

    def record(self, rel: str, input_hash: Optional[str], dst: Optional[Path], status: str,
               path: Optional[str] = None) -> None:
        """Note a finished output (``path``: where below its folder, when it is not
        ``rel``); if the disk is full the output stays valid and a re-run simply
        redoes it, so a write error here only warns."""
        if status == "failed" and not self.ours(rel):
            return
        rec = {"out": _rel_key(rel), "in": input_hash, "status": status}
        if path is not None and path != rel:
            rec["path"] = path
        try:
            rec["size"] = dst.stat().st_size if dst is not None else None
            self.done[rec["out"]] = rec
            self._fh.write(json.dumps(rec) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self.error = self.error or f"cannot write the resume journal ({exc.strerror})"

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            self.error = self.error or f"cannot write the resume journal ({exc.strerror})"


class _Progress:
    """tqdm on a terminal; otherwise a plain line every few seconds (CI logs)."""

    def __init__(self, total: int, stream: TextIO, mode: str):
        self.stream, self.total, self.done, self.failed = stream, total, 0, 0
        self._last = time.monotonic()
        self._bar = None
        tty = hasattr(stream, "isatty") and stream.isatty()
        self.quiet = mode == "none"
        if not self.quiet and (mode == "bar" or (mode == "auto" and tty)):
            from tqdm import tqdm
            self._bar = tqdm(total=total, file=stream, unit="file", dynamic_ncols=True)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def step(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if self._bar is not None:
            self._bar.update(1)
            if failed:
                self._bar.set_postfix(failed=self.failed)
        elif not self.quiet:
            now = time.monotonic()
            if now - self._last >= _PROGRESS_EVERY or self.done == self.total:
                self._last = now
                print(f"pixelscrub: {self.done}/{self.total} files done, {self.failed} failed",
                      file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _clear_partial(partial: Path) -> None:
    """Remove what an earlier (killed) run left half-written."""
    if partial.is_dir() and not partial.is_symlink():
        shutil.rmtree(partial, ignore_errors=True)
    elif partial.is_symlink() or partial.exists():
        partial.unlink()


def _quarantine(src: str, rel: str, folder: Path) -> Optional[str]:
    """Copy (never move) a failed input into ``folder``; returns a problem or None."""
    if zip_member(src):
        return "a zip member is not unpacked into the quarantine (the zip is the input)"
    try:
        if not stat.S_ISREG(os.stat(src).st_mode):
            return "not a regular file, not copied to quarantine"
        dst = folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.pixelscrub-tmp")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        return None
    except OSError as exc:
        return f"could not copy to quarantine ({exc.strerror or exc})"


class _Books:
    """Everything done when one file is finished: place it, journal it, report it."""

    def __init__(self, out: Path, journal: _Journal, writer: ReportWriter, pbar: _Progress,
                 summary: RunSummary, *, quarantine: Optional[Path], unverified: Path,
                 log_phi: bool = False, rename: str = "mirror", key: bytes = b""):
        self.out, self.journal, self.writer, self.pbar = out, journal, writer, pbar
        self.summary, self.quarantine, self.log_phi = summary, quarantine, log_phi
        self.rename, self.key = rename, key
        #: where the outputs of each status go: only certified ones in OUTDIR
        self.roots = {"clean": out, "written": out, "unverified": unverified}
        self.jobs: dict[int, tuple[Job, Optional[str]]] = {}
        self.placed: set[tuple[Path, str]] = set()   # outputs written by this run

    def name(self, job: Job) -> str:
        """How reports and error lines name an input: its path below the input
        folder the user named (folders above it, often named after the patient,
        never show); with ``--rename uid``, whose output tree holds no input path,
        a keyed hash of that path; the full path only with ``--log-phi``."""
        if self.log_phi:
            return job.src
        if self.rename == "uid":
            return "input-" + hmac.new(self.key, job.rel.encode("utf-8", "surrogateescape"),
                                       hashlib.sha256).hexdigest()[:16]
        return job.rel

    def problem(self, job: Job, reason: str) -> None:
        """An input that fails before any worker sees it (its name may collide with
        another input's, so nothing of an earlier run is touched)."""
        self.finish(failed_audit(self.name(job), reason), None)

    def on_result(self, task: Task, audit: FileAudit) -> None:
        """A worker's result: rename a good output into place, drop anything else."""
        job, ihash = self.jobs[task.index]
        audit.input = self.name(job)
        if audit.error and audit.error.startswith(task.src + ": "):
            audit.error = f"{audit.input}: {audit.error[len(task.src) + 2:]}"
        if audit.status in OUTPUT_STATUSES:
            root = self.roots[audit.status]
            path = job.rel if self.rename == "mirror" else _uid_path(Path(task.tmp))
            problem = (f"output {root.name}/{path} is already taken by another input "
                       "(the same instance twice?)" if (root, path) in self.placed
                       else _place(Path(task.tmp), root, path))
            if problem is None:
                self.placed.add((root, path))
                audit.output = self.output_name(root, path)
                self._forget_stale(audit, job, keep=(root, path))
                self.journal.record(job.rel, ihash, root / path, audit.status, path)
            else:
                _remove(task.tmp)
                audit.status, audit.output = "failed", None
                audit.error = f"{audit.input}: {problem}"
        else:
            audit.output = None
            _remove(task.tmp)
        self.finish(audit, job)

    def finish(self, audit: FileAudit, job: Optional[Job]) -> None:
        """Report one file; a failed one also loses any earlier output and is quarantined."""
        if audit.status == "failed":
            audit.error = audit.error or f"{audit.input}: failed"
            self.pbar.message(f"pixelscrub: {audit.error}")
            if job is not None:
                self._forget_stale(audit, job)
                self.journal.record(job.rel, None, None, "failed")
                if self.quarantine is not None:
                    problem = _quarantine(job.src, job.rel, self.quarantine)
                    audit.notes.append(problem or "copied to quarantine")
        elif audit.status == "unverified":
            self.pbar.message(f"pixelscrub: {audit.input}: not certified, written to "
                              f"{audit.output}: {_why_unverified(audit)}")
        self.summary.add(audit)
        self.writer.write(audit)
        self.pbar.step(audit.status == "failed")

    def output_name(self, root: Path, path: str) -> str:
        """An output as ``OUTDIR/path`` (or ``OUTDIR-unverified/path``), no folder above."""
        return str(root / path) if self.log_phi else f"{root.name}/{path}"

    def _forget_stale(self, audit: FileAudit, job: Job,
                      keep: Optional[tuple[Path, str]] = None) -> None:
        """Remove this file's output of an earlier run, wherever it went, unless it is
        ``keep`` (a file once clean, now unverified, must not stay among the clean
        ones; a UID-named output whose UIDs changed must not linger)."""
        if not self.journal.ours(job.rel):
            return
        old = self.journal.path_of(job.rel)
        for root in set(self.roots.values()):
            if (root, old) == keep or (root, old) in self.placed:
                continue
            stale = root / old
            if not stale.is_file():
                continue
            try:
                stale.unlink()
                audit.notes.append("output of an earlier run removed")
            except OSError as exc:
                audit.notes.append(f"output of an earlier run could not be removed "
                                   f"({exc.strerror})")


def _uid_path(output: Path) -> str:
    """``StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID.dcm`` of a written output
    (its new UIDs after the header step); a UID that is missing or not a UID is
    replaced by a hash of the file, so no header text becomes a path."""
    import pydicom
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(output, stop_before_pixels=True,
                             specific_tags=["StudyInstanceUID", "SeriesInstanceUID",
                                            "SOPInstanceUID"])
    parts = []
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(ds.get(kw, "") or "")
        if not _UID.fullmatch(value):
            value = "unknown-" + hashlib.sha256(output.read_bytes()).hexdigest()[:16]
        parts.append(value)
    return f"{parts[0]}/{parts[1]}/{parts[2]}.dcm"


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _why_unverified(audit: FileAudit) -> str:
    """Counts only (no PHI): what kept the file from being certified."""
    why = []
    if audit.frames_checked < audit.frames:
        why.append(f"{audit.frames_checked} of {audit.frames} frames checked")
    if audit.review:
        why.append(f"{len(audit.review)} text region(s) could not be read")
    return "; ".join(why) or "not every text region could be checked"


def run_batch(inputs: Iterable, outdir, options: ScrubOptions = ScrubOptions(), *,
              jobs: Optional[int] = None, report=None, quarantine=None, resume: bool = True,
              timeout: Optional[float] = 1800.0, scheduler: Optional[str] = None,
              progress: str = "auto", stream: TextIO = None,
              scrub: Optional[Callable] = None, max_memory: Optional[int] = None,
              unverified=None, rename: str = "mirror") -> RunSummary:
    """Scrub every file under ``inputs`` into ``outdir``; returns the run's summary.

    ``jobs`` worker processes (default: all cores) or, with ``scheduler``, the Dask
    cluster at that address.  ``report`` is the JSON Lines audit (default
    :func:`default_report_path`; ``False`` for none).  ``timeout`` is per file in
    seconds (``None``: no limit).  ``progress`` is ``"auto"``, ``"bar"``,
    ``"lines"`` or ``"none"``.  ``max_memory`` caps each worker's address space in
    bytes (a file that needs more fails as out of memory); ``None``, the default,
    derives the cap from the machine's memory and the number of workers
    (:func:`pixelscrub.worker.default_memory_limit`), 0 means no cap.  ``unverified`` is the
    folder for outputs that are not certified (default
    :func:`default_unverified_path`).  ``rename`` is ``"mirror"`` (outputs at the
    inputs' relative paths) or ``"uid"`` (``Study/Series/SOPInstanceUID.dcm`` of the
    new UIDs, inputs named in reports by a keyed hash).  ``scrub`` defaults to
    :func:`pixelscrub.pipeline.scrub_file`.  Raises :class:`ScrubError` (reason
    ``"usage"``) before doing anything if the layout is unsafe.  Ctrl-C stops the
    run with ``interrupted`` set; finished files stay and a re-run resumes.
    """
    start = time.monotonic()
    if rename not in ("mirror", "uid"):
        raise _usage(f"unknown --rename {rename!r}: choose mirror or uid")
    inputs = [os.fspath(i) for i in inputs]
    if not inputs:
        raise _usage("no input files or folders given")
    report = default_report_path(outdir) if report is None else (report or None)
    unverified = default_unverified_path(outdir) if unverified is None else unverified
    check_layout(inputs, outdir, report=report, quarantine=quarantine,
                 reid_map=getattr(options.deid, "reid_map", None), log_phi=options.log_phi,
                 unverified=unverified)
    if scrub is None:
        from .pipeline import scrub_file as scrub

    out = _real(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage(f"{outdir}: cannot create output folder ({exc.strerror})")
    journal = _Journal(out)
    partial = out / PARTIAL_DIR
    summary = RunSummary()
    writer = None
    try:
        _clear_partial(partial)
        partial.mkdir()
        writer = ReportWriter(report, log_phi=options.log_phi)
        found, problems, summary.warnings = discover(inputs)
        if not found and not problems:
            summary.warnings.append("no files found under the inputs")
        pbar = _Progress(len(found) + len(problems), stream or sys.stderr, progress)
        books = _Books(out, journal, writer, pbar, summary,
                       quarantine=Path(os.path.abspath(quarantine)) if quarantine else None,
                       unverified=Path(os.path.abspath(unverified)), log_phi=options.log_phi,
                       rename=rename, key=options.key or b"")
        for job, reason in problems:
            books.problem(job, reason)
        # the naming scheme decides where outputs go: a change of it redoes the files
        ohash, tasks = options_hash(options) + ("" if rename == "mirror" else ":" + rename), []
        for i, job in enumerate(found):
            ihash = _input_hash(job.src, ohash)
            done = journal.finished(job.rel, ihash, books.roots) if resume else None
            if done is not None:
                books.placed.add((done[1], journal.path_of(job.rel)))
                books.finish(FileAudit(input=books.name(job),
                                       output=books.output_name(done[1], journal.path_of(job.rel)),
                                       status="skipped",
                                       notes=[f"done ({done[0]}) in an earlier run with the same "
                                              "input and options"]), job)
                continue
            tasks.append(Task(i, os.path.abspath(job.src), str(partial / f"{i}.dcm"), str(partial)))
            books.jobs[i] = (job, ihash)
        try:
            if scheduler:
                from .cluster import run_on_cluster
                run_on_cluster(scheduler, tasks, options, books.on_result, scrub=scrub,
                               timeout=timeout, max_memory=max_memory)
            else:
                run_local(tasks, options, books.on_result, jobs=jobs or os.cpu_count() or 1,
                          scrub=scrub, timeout=timeout, max_memory=max_memory)
        except KeyboardInterrupt:
            summary.interrupted = True
            pbar.message("pixelscrub: interrupted; finished files are kept, "
                         "run the same command again to resume")
        finally:
            pbar.close()
    except KeyboardInterrupt:  # while finding files, before any worker started
        summary.interrupted = True
    finally:
        _clear_partial(partial)
        journal.close()
        if journal.error:
            summary.warnings.append(f"{out}: {journal.error}; finished files will be redone "
                                    "by a re-run")
        summary.wall_seconds = time.monotonic() - start
        if writer is not None:
            writer.close(summary)
            if writer.error:
                summary.report_error = f"{report}: {writer.error}"
    return summary


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _place(tmp: Path, out: Path, rel: str) -> Optional[str]:
    """Rename a finished output into ``out/rel``; returns a problem or None.

    The destination folder must resolve inside ``out`` (a symlinked folder in the
    output tree could otherwise point into the inputs).
    """
    dst = out / rel
    try:
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            _remove(tmp)
            return f"cannot write output {dst}: a file is in the way of its folder"
        if not _inside(_real(dst.parent), out):
            _remove(tmp)
            return f"output folder {dst.parent} resolves outside the output folder"
        if dst.is_dir() and not dst.is_symlink():
            _remove(tmp)
            return f"cannot write output {dst}: a folder is in the way"
        os.chmod(tmp, _FILE_MODE)  # the temp file was private; the output gets the usual mode
        try:
            os.replace(tmp, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # another filesystem (an --unverified folder elsewhere): copy beside, then rename
            beside = dst.with_name(f".{dst.name}.pixelscrub-tmp")
            shutil.copyfile(tmp, beside)
            os.chmod(beside, _FILE_MODE)
            os.replace(beside, dst)
            _remove(tmp)
        return None
    except OSError as exc:
        _remove(tmp)
        return f"cannot write output {dst} ({exc.strerror or exc})"
