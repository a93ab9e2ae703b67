"""The gateway: receive into the spool, scrub from it, forward what came out clean.

Three threads share nothing but the spool's folders: the Storage SCP writes
``received/``, the scrubber turns ``received/`` into ``clean/`` (or
``unverified/``, ``quarantine/``) with the batch command's worker processes, and
the forwarder empties ``clean/``.  A restart finds the work where it was left.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

from ..options import ScrubOptions
from ..records import FileAudit
from ..worker import Task, run_local
from .forward import Destination, backoff, client_tls_context, send_batch
from .receive import Receiver, server_tls_context
from .spool import Spool

__all__ = ["GatewayConfig", "Gateway"]

#: What the scrubber forwards: certified outputs, and outputs of modes that do no
#: checking by the user's choice (regions-only, rules-only, --no-pixels).
FORWARDED = ("clean", "written")


@dataclass
class GatewayConfig:
    """Everything ``pixelscrub serve`` needs besides the scrub options."""

    spool: Path
    forward: Destination
    aet: str = "PIXELSCRUB"
    host: str = "0.0.0.0"
    port: int = 11112
    allow: tuple[str, ...] = ()
    jobs: int = 1
    timeout: Optional[float] = 1800.0
    max_memory: Optional[int] = None
    batch: int = 16
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    tls_ca: Optional[str] = None
    forward_tls: bool = False
    forward_tls_ca: Optional[str] = None
    forward_tls_cert: Optional[str] = None
    forward_tls_key: Optional[str] = None
    retry_max: float = 60.0
    max_attempts: int = 5
    status_port: Optional[int] = None
    status_host: str = "127.0.0.1"


@dataclass
class Gateway:
    config: GatewayConfig
    options: ScrubOptions
    log: Callable[[str], None] = lambda text: None
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self):
        from ..pipeline import scrub_file
        self._scrub = scrub_file
        self.spool = Spool(self.config.spool)
        self._stop = threading.Event()
        self._to_scrub = threading.Event()
        self._to_forward = threading.Event()
        self._attempts: Counter = Counter()
        self._threads: list[threading.Thread] = []
        self._status_server: Optional[ThreadingHTTPServer] = None
        self.started = time.time()
        cfg = self.config
        tls = server_tls_context(cfg.tls_cert, cfg.tls_key, cfg.tls_ca) if cfg.tls_cert else None
        self.receiver = Receiver(self.spool, cfg.aet, cfg.host, cfg.port, allow=tuple(cfg.allow),
                                 tls=tls, on_stored=self._to_scrub.set, log=self.log)
        self._forward_tls = (client_tls_context(cfg.forward_tls_ca, cfg.forward_tls_cert,
                                                cfg.forward_tls_key) if cfg.forward_tls else None)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Resume what the spool holds, then start listening."""
        waiting = self.spool.depth()
        if waiting["received"] or waiting["clean"]:
            self.log(f"resuming: {waiting['received']} to scrub, {waiting['clean']} to forward")
        self.spool.audit({"event": "start", "aet": self.config.aet, "resumed": waiting})
        for target in (self._scrub_loop, self._forward_loop):
            t = threading.Thread(target=target, name=target.__name__, daemon=True)
            t.start()
            self._threads.append(t)
        self.receiver.start()
        self.config.port = self.receiver.port
        if self.config.status_port is not None:
            self._start_status()
        self.log(f"listening as {self.config.aet} on port {self.config.port}, "
                 f"forwarding to {self.config.forward}")

    def stop(self) -> None:
        """Stop listening, let the current scrub and send finish, and return."""
        self.receiver.stop()
        self._stop.set()
        self._to_scrub.set()
        self._to_forward.set()
        for t in self._threads:
            t.join()
        if self._status_server is not None:
            self._status_server.shutdown()
        self.spool.audit({"event": "stop", **self.status()["counts"]})
        self.spool.close()

    def status(self) -> dict:
        """Queue depths and counts since start (no PHI): the status endpoint's body."""
        return {"aet": self.config.aet, "port": self.config.port,
                "uptime_seconds": round(time.time() - self.started, 1),
                "queue": self.spool.depth(),
                "counts": {**self.receiver.counts, **self.counts}}

    # -- scrubbing --------------------------------------------------------------------------
    def _scrub_loop(self) -> None:
        while not self._stop.is_set():
            self._to_scrub.clear()
            ids = self.spool.ids("received")[: self.config.batch]
            if not ids:
                self._to_scrub.wait(1.0)
                continue
            work = self.spool.folder("work")
            tasks = [Task(n, str(self.spool.path("received", i)), str(self.spool.path("work", i)),
                          str(work)) for n, i in enumerate(ids)]
            run_local(tasks, self.options, self._scrubbed, jobs=self.config.jobs,
                      scrub=self._scrub, timeout=self.config.timeout,
                      max_memory=self.config.max_memory)

    def _scrubbed(self, task: Task, audit: FileAudit) -> None:
        spool_id = Path(task.src).stem
        record = {"event": "scrubbed", "spool_id": spool_id, "status": audit.status,
                  "hits": len(audit.hits), "review": len(audit.review),
                  "reasons": dict(Counter(h.reason.split(":")[0] for h in audit.hits)),
                  "seconds": round(audit.stage("total").seconds, 3)}
        if audit.status in FORWARDED:
            self.spool.move(Path(task.tmp), "clean", spool_id)
            self.spool.remove("received", spool_id)
            self.counts["scrubbed"] += 1
            self._to_forward.set()
        elif audit.status == "unverified":
            self.spool.move(Path(task.tmp), "unverified", spool_id,
                            why={"reason": "pixels not certified: text left unread", **record})
            self.spool.remove("received", spool_id)
            self.counts["unverified"] += 1
            self.log(f"{spool_id}: not certified, held in {self.spool.folder('unverified')}")
        else:
            reason = (audit.error or "failed").replace(task.src, spool_id)
            record["error"] = reason
            self.spool.move(Path(task.src), "quarantine", spool_id, why={"reason": reason})
            self.counts["failed"] += 1
            self.log(f"quarantined: {reason}")
        self.spool.audit(record)

    # -- forwarding -------------------------------------------------------------------------
    def _forward_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._to_forward.clear()
            ids = self.spool.ids("clean")[: self.config.batch * 4]
            if not ids:
                self._to_forward.wait(1.0)
                continue
            paths = {i: self.spool.path("clean", i) for i in ids}
            try:
                outcomes = send_batch(paths, self.config.forward, self.config.aet,
                                      tls=self._forward_tls)
            except Exception as exc:  # e.g. a TLS handshake failure: try again later
                outcomes = []
                self.log(f"forwarding failed: {type(exc).__name__}: {exc}")
            progress = any(o.result != "retry" for o in outcomes)
            for o in outcomes:
                self._forwarded(o)
            failures = 0 if progress else failures + 1
            if failures:
                self._stop.wait(backoff(failures, self.config.retry_max))

    def _forwarded(self, outcome) -> None:
        spool_id = outcome.spool_id
        if outcome.result == "sent":
            self.spool.remove("clean", spool_id)
            self.counts["forwarded"] += 1
            self._attempts.pop(spool_id, None)
            self.spool.audit({"event": "forwarded", "spool_id": spool_id,
                              "destination": self.config.forward.aet, "status": outcome.detail})
            return
        if outcome.result == "refused":
            self._attempts[spool_id] += 1
            if self._attempts[spool_id] < self.config.max_attempts:
                return
            self.spool.move(self.spool.path("clean", spool_id), "quarantine", spool_id,
                            why={"reason": outcome.detail})
            self.counts["undeliverable"] += 1
            self.spool.audit({"event": "undeliverable", "spool_id": spool_id,
                              "reason": outcome.detail})
            self.log(f"{spool_id}: quarantined, {outcome.detail}")

    # -- status endpoint --------------------------------------------------------------------
    def _start_status(self) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.rstrip("/") not in ("", "/status"):
                    self.send_error(404)
                    return
                body = json.dumps(gateway.status(), sort_keys=True).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: the gateway keeps its own log
                pass

        self._status_server = ThreadingHTTPServer((self.config.status_host,
                                                   self.config.status_port), Handler)
        self.config.status_port = self._status_server.server_address[1]
        threading.Thread(target=self._status_server.serve_forever, daemon=True,
                         name="status").start()

