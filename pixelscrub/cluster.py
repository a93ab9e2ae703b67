"""Run a batch on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Each file is one Dask task running the same :func:`pixelscrub.worker.run_task` as
a local worker, so outputs are byte-identical to a local run with the same key.
Workers read inputs and write into ``OUTDIR/.pixelscrub-partial/`` by absolute
path, so the inputs and the output folder must be mounted at the same paths on
every worker (a shared filesystem).  The client renames finished files into place
and keeps the journal and report, exactly as in a local run.

A Dask worker does not scrub in its own process: a codec that aborts would kill
the worker, and Dask would then blame (and after a few deaths fail) every file
that worker had queued.  Each Dask worker thread keeps a helper process
(``python -m pixelscrub.cluster``) that scrubs one file at a time; a helper that
dies or runs past the per-file timeout fails only its file ("worker crashed:
signal N", "timed out after N s") and is started afresh for the next one.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Callable, Iterable, Optional

from .errors import ScrubError
from .options import ScrubOptions
from .records import FileAudit
from .worker import (START_GRACE, STARTED, Task, death_reason, default_memory_limit,
                     failed_audit, limit_memory, run_task)

__all__ = ["run_on_cluster", "run_isolated"]

#: How long to wait for the scheduler before giving up (a Dask duration).
CONNECT_TIMEOUT = "30s"

#: How often a task the cluster cancelled (not one that killed workers) is sent again.
_RESUBMITS = 2


def run_on_cluster(address: str, tasks: Iterable[Task], options: ScrubOptions,
                   on_result: Callable[[Task, FileAudit], None], *, scrub: Callable,
                   timeout: Optional[float] = None, max_memory: Optional[int] = None) -> None:
    """Scrub ``tasks`` on the cluster at ``address``, calling ``on_result`` per file."""
    try:
        from distributed import Client, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise ScrubError("--scheduler needs dask[distributed]: pip install 'pixelscrub[cluster]'",
                         reason="usage") from None
    tasks = list(tasks)
    if not tasks:
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScrubError(f"{address}: cannot reach the Dask scheduler ({type(exc).__name__})",
                         reason="usage") from None
    with client:
        # Options travel with each task (they are small): scattered data would be
        # lost, and every task depending on it cancelled, when a worker dies.
        def submit(task):
            return client.submit(run_isolated, scrub, task, options, timeout, max_memory,
                                 pure=False)

        futures = {submit(task): (task, 0) for task in tasks}
        pending = as_completed(list(futures))
        try:
            for fut in pending:
                task, tries = futures.pop(fut)
                try:
                    audit = fut.result()
                except KilledWorker:
                    audit = failed_audit(task.src, "worker crashed (Dask worker died on this file)")
                except Exception as exc:  # noqa: BLE001 - one file, one line
                    if fut.status == "cancelled" and tries < _RESUBMITS:
                        again = submit(task)
                        futures[again] = (task, tries + 1)
                        pending.add(again)
                        continue
                    audit = failed_audit(task.src, f"cluster error ({type(exc).__name__})")
                on_result(task, audit)
                fut.release()
        except BaseException:
            client.cancel(list(futures))
            raise


_HEADER = struct.Struct(">Q")
_local = threading.local()


def _send(fh, obj) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:                       # a raw pipe may take part of it at a time
        data = data[fh.write(data):]
    fh.flush()


def _read_exact(fh, size: int) -> bytes:
    """``size`` bytes from ``fh`` (raw pipes return short reads); EOFError at the end."""
    chunks, left = [], size
    while left:
        chunk = fh.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(fh):
    size = _HEADER.unpack(_read_exact(fh, _HEADER.size))[0]
    return pickle.loads(_read_exact(fh, size))


class _Helper:
    """A child process that scrubs one file at a time for one Dask worker thread."""

    def __init__(self, max_memory: Optional[int]):
        self.max_memory = max_memory
        # Unbuffered: the parent select()s on the pipe between messages, and a buffered
        # reader could hold the next message (the result right behind STARTED) where
        # select() cannot see it, and wait for ever.
        self.proc = subprocess.Popen([sys.executable, "-m", "pixelscrub.cluster",
                                      "default" if max_memory is None else str(max_memory)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def call(self, scrub: Callable, task: Task, options: ScrubOptions,
             timeout: Optional[float]) -> tuple[Optional[FileAudit], Optional[str]]:
        """The audit, or None and why the helper had to go."""
        try:
            _send(self.proc.stdin, (scrub, task, options))
        except OSError:
            return None, death_reason(self.proc.wait())
        # The timeout counts from the helper's STARTED (a fresh helper imports first).
        deadline = time.monotonic() + START_GRACE + timeout if timeout else None
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                try:
                    msg = _recv(self.proc.stdout)
                except (EOFError, pickle.UnpicklingError):
                    return None, death_reason(self.proc.wait())
                if msg == STARTED:
                    deadline = time.monotonic() + timeout if timeout else None
                    continue
                return msg, None
            if deadline is not None and time.monotonic() >= deadline:
                self.kill()
                return None, f"timed out after {timeout:g} s"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_isolated(scrub: Callable, task: Task, options: ScrubOptions,
                 timeout: Optional[float] = None, max_memory: Optional[int] = None) -> FileAudit:
    """Scrub one file in this thread's helper process (the Dask task body)."""
    helper = getattr(_local, "helper", None)
    if helper is not None and (helper.proc.poll() is not None or helper.max_memory != max_memory):
        helper.kill()
        helper = None
    if helper is None:
        helper = _local.helper = _Helper(max_memory)
    audit, problem = helper.call(scrub, task, options, timeout)
    if audit is None:
        helper.kill()
        _local.helper = None
        try:
            os.unlink(task.tmp)
        except OSError:
            pass
        return failed_audit(task.src, problem)
    return audit


def _serve() -> None:
    """Helper main loop: read (scrub, task, options), write the audit, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # "default": this machine's share for each of its cores (the helpers of one Dask
    # worker host run side by side); a number of bytes; 0 for no cap.
    arg = sys.argv[1] if len(sys.argv) > 1 else "default"
    limit_memory(default_memory_limit(os.cpu_count() or 1) if arg == "default" else int(arg))
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints must not corrupt the protocol
    proto_in = sys.stdin.buffer
    while True:
        try:
            scrub, task, options = _recv(proto_in)
        except EOFError:
            return
        _send(proto_out, STARTED)
        _send(proto_out, run_task(scrub, task, options))


if __name__ == "__main__":
    _serve()
