"""Local worker processes that survive crashing codecs.

Native decoders can abort or segfault the whole process on a malformed file, so
each file is scrubbed in a worker process that the batch watches.  A worker that
dies takes only its current file with it: that file is recorded as failed
("worker crashed: signal N") and a fresh worker takes over.  A file that runs
past the per-file timeout has its worker killed the same way.

A ``ProcessPoolExecutor`` is not used because one dead worker breaks the whole
pool; here each worker has its own pipe and is replaced on its own.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable, Iterable, Optional

from .options import ScrubOptions
from .records import OUTPUT_STATUSES, FileAudit

__all__ = ["STARTED", "START_GRACE", "Task", "run_task", "run_local", "failed_audit", "death_reason",
           "limit_memory", "default_memory_limit", "memory_limit"]

#: Modules the fork server imports once, so a replacement worker starts quickly.
_PRELOAD = ["pixelscrub.pipeline", "numpy", "pydicom"]

#: A worker sends this when it starts a file: the per-file timeout counts from then,
#: so a worker (or a loaded machine) that is slow to start does not eat a file's time.
STARTED = "started"

#: How long a worker may take to start a file it was given before it counts as hung.
START_GRACE = 120.0


@dataclass(frozen=True)
class Task:
    """One file to scrub: ``tmp`` is where the worker writes; the batch renames it."""

    index: int
    src: str
    tmp: str
    workdir: str


def failed_audit(src: str, reason: str) -> FileAudit:
    """A failed record whose one-line error names the file."""
    return FileAudit(input=src, status="failed", error=f"{src}: {reason}")


def run_task(scrub: Callable, task: Task, options: ScrubOptions) -> FileAudit:
    """Scrub one file into ``task.tmp``; never leaves a partial or failed output behind."""
    try:
        audit = scrub(task.src, task.tmp, options, workdir=task.workdir)
    except Exception as exc:  # scrub_file should not raise; fail closed if it does
        audit = failed_audit(task.src, f"internal error ({type(exc).__name__})")
    if audit.status in OUTPUT_STATUSES:
        try:
            if os.path.getsize(task.tmp) > 0:
                return audit
        except OSError:
            pass
        audit.status = "failed"
        audit.error = audit.error or f"{task.src}: no output was written"
    try:
        os.unlink(task.tmp)
    except OSError:  # nothing there, or not ours to remove: the batch clears the folder
        pass
    return audit


#: The least address space a worker gets by default: a phi-mode worker (Python,
#: NumPy, OpenCV, Tesseract) maps about 0.9 GB before it allocates a frame.
MIN_WORKER_MEMORY = 2 * 2**30


def default_memory_limit(workers: int) -> int:
    """Each worker's default address-space cap: three quarters of the machine's
    memory shared among ``workers``, and at least :data:`MIN_WORKER_MEMORY`."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(MIN_WORKER_MEMORY, int(0.75 * total / max(1, workers)))


def limit_memory(max_bytes: Optional[int]) -> None:
    """Cap this process's address space, so a decoder asking for an absurd buffer gets
    a MemoryError (the file fails) instead of the machine's OOM killer."""
    if max_bytes:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def memory_limit() -> Optional[int]:
    """This process's address-space cap in bytes, or None when there is none."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def _worker_main(conn, scrub: Callable, single_thread: bool, max_memory: Optional[int]) -> None:
    # Ctrl-C goes to the whole process group; the parent decides what to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(max_memory)
    if single_thread:
        # Tesseract's OpenMP threads would fight the other workers for the cores;
        # set before the OCR library is loaded (it is loaded lazily, on first use).
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task, options = msg
        conn.send(STARTED)
        conn.send((task.index, run_task(scrub, task, options)))


class _Worker:
    def __init__(self, ctx, scrub: Callable, single_thread: bool, max_memory: Optional[int]):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, scrub, single_thread, max_memory),
                                daemon=True,
                                name="pixelscrub-worker")
        self.proc.start()
        child.close()
        self.task: Optional[Task] = None
        self.timeout: Optional[float] = None
        self.deadline = float("inf")

    def give(self, task: Task, options: ScrubOptions, timeout: Optional[float]) -> None:
        self.task, self.timeout = task, timeout
        self.deadline = time.monotonic() + START_GRACE + timeout if timeout else float("inf")
        self.conn.send((task, options))

    def started(self) -> None:
        if self.timeout:
            self.deadline = time.monotonic() + self.timeout

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(2)
        self.kill()


def death_reason(code: Optional[int]) -> str:
    """"worker crashed: signal N (NAME)" from a process exit code (negative: signal)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"worker crashed: signal {-code} ({name})"
    return f"worker crashed: exit status {code}"


def _context():
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    except ValueError:  # no fork server on this platform
        return mp.get_context("spawn")


def run_local(tasks: Iterable[Task], options: ScrubOptions, on_result: Callable[[Task, FileAudit], None],
              *, jobs: int, scrub: Callable, timeout: Optional[float] = None,
              max_memory: Optional[int] = None) -> None:
    """Run ``tasks`` on ``jobs`` worker processes, calling ``on_result`` for each.

    ``on_result`` runs in this process, one file at a time.  Every task gets exactly
    one result, crashed and timed-out ones included.  With more than one worker,
    each keeps OCR to one thread (``OMP_THREAD_LIMIT=1`` unless already set).
    ``max_memory`` (bytes) caps each worker's address space: ``None`` for
    :func:`default_memory_limit`, 0 for no cap.
    """
    ctx = _context()
    pending = deque(tasks)
    workers: list[_Worker] = []
    jobs = max(1, min(jobs, len(pending)))
    if max_memory is None:
        max_memory = default_memory_limit(jobs)
    try:
        while pending or any(w.task for w in workers):
            for w in workers:
                if w.task is None and pending:
                    w.give(pending.popleft(), options, timeout)
            while pending and len(workers) < jobs:
                w = _Worker(ctx, scrub, jobs > 1, max_memory)
                workers.append(w)
                w.give(pending.popleft(), options, timeout)
            busy = [w for w in workers if w.task is not None]
            now = time.monotonic()
            wait_for = max(0.0, min(w.deadline for w in busy) - now)
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                             timeout=None if wait_for == float("inf") else wait_for))
            for w in busy:
                task = w.task
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        msg = None
                    if msg == STARTED:
                        w.started()
                        continue
                    audit = msg[1] if msg is not None else None
                    if audit is not None:
                        w.task = None
                        on_result(task, audit)
                        continue
                elif w.proc.sentinel not in ready:
                    if time.monotonic() < w.deadline:
                        continue
                    w.kill()
                    _drop(workers, w)
                    on_result(task, failed_audit(task.src, f"timed out after {timeout:g} s"))
                    continue
                w.proc.join(5)
                reason = death_reason(w.proc.exitcode)
                w.kill()
                _drop(workers, w)
                on_result(task, failed_audit(task.src, reason))
    finally:
        for w in workers:
            if w.task is None:
                w.stop()
            else:
                w.kill()


def _drop(workers: list, dead: _Worker) -> None:
    """Forget ``dead``; the loop starts a fresh worker when there is work for it."""
    workers.remove(dead)
    _cleanup_tmp(dead.task)


def _cleanup_tmp(task: Optional[Task]) -> None:
    """Remove what a killed worker may have left of its output."""
    if task is None:
        return
    try:
        os.unlink(task.tmp)
    except OSError:
        pass
