"""Run a batch on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Each file is one Dask task running the same :func:`pixelscrub.worker.run_task` as
a local worker, so outputs are byte-identical to a local run with the same key.
Workers read inputs and write into ``OUTDIR/.pixelscrub-partial/`` by absolute
path, so the inputs and the output folder must be mounted at the same paths on
every worker (a shared filesystem).  The client renames finished files into place
and keeps the journal and report, exactly as in a local run.

A worker that dies mid-file is restarted by its nanny and Dask retries the task
elsewhere; after ``distributed.scheduler.allowed-failures`` deaths the file is
recorded as failed ("worker crashed").  There is no per-file timeout here.
"""
from __future__ import annotations

from typing import Callable, Iterable

from .options import ScrubOptions
from .records import FileAudit
from .worker import Task, failed_audit, run_task

__all__ = ["run_on_cluster"]

#: How often a task the cluster cancelled (not one that killed workers) is sent again.
_RESUBMITS = 2


def run_on_cluster(address: str, tasks: Iterable[Task], options: ScrubOptions,
                   on_result: Callable[[Task, FileAudit], None], *, scrub: Callable) -> None:
    """Scrub ``tasks`` on the cluster at ``address``, calling ``on_result`` per file."""
    try:
        from distributed import Client, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError as exc:
        raise RuntimeError("--scheduler needs dask[distributed]: "
                           "pip install 'pixelscrub[cluster]'") from exc
    tasks = list(tasks)
    if not tasks:
        return
    with Client(address, timeout="30s") as client:
        # Options travel with each task (they are small): scattered data would be
        # lost, and every task depending on it cancelled, when a worker dies.
        futures = {client.submit(run_task, scrub, task, options, pure=False): (task, 0)
                   for task in tasks}
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
                        again = client.submit(run_task, scrub, task, options, pure=False)
                        futures[again] = (task, tries + 1)
                        pending.add(again)
                        continue
                    audit = failed_audit(task.src, f"cluster error ({type(exc).__name__})")
                on_result(task, audit)
                fut.release()
        except BaseException:
            client.cancel(list(futures))
            raise
