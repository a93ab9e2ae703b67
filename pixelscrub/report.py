"""The run report: one audit record per file (JSON Lines) and a closing summary.

Each line is :meth:`FileAudit.to_json` of one file, written as soon as the file
is done so a crashed run still leaves its report.  The last line is the summary
(``{"record": "summary", ...}``): files in, clean, unverified, written without
checking, failed, skipped, boxes by
reason, frames and seconds per stage.  OCR text appears only with ``log_phi``.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import ScrubError
from .records import FileAudit

__all__ = ["RunSummary", "ReportWriter"]


@dataclass
class RunSummary:
    """Totals over one batch run; ``exit_status`` is the CLI's exit code."""

    files_in: int = 0
    clean: int = 0       # written and certified (every frame checked, every text line read)
    unverified: int = 0  # written apart: checking was asked for but could not be done in full
    written: int = 0     # written without checking (regions-only, --no-pixels)
    failed: int = 0
    skipped: int = 0
    frames: int = 0
    frames_checked: int = 0
    boxes_by_reason: Counter = field(default_factory=Counter)
    seconds_by_stage: Counter = field(default_factory=Counter)
    wall_seconds: float = 0.0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    report_error: Optional[str] = None  # the report could not be written in full

    def add(self, audit: FileAudit) -> None:
        """Count ``audit``."""
        self.files_in += 1
        if audit.status == "clean":
            self.clean += 1
        elif audit.status == "unverified":
            self.unverified += 1
        elif audit.status == "written":
            self.written += 1
        elif audit.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        self.frames += audit.frames
        self.frames_checked += audit.frames_checked
        for hit in audit.hits:
            self.boxes_by_reason[hit.reason] += 1
        for stage in audit.stages:
            self.seconds_by_stage[stage.stage] += stage.seconds

    @property
    def files_out(self) -> int:
        return self.clean + self.unverified + self.written

    @property
    def exit_status(self) -> int:
        return 1 if (self.failed or self.unverified or self.interrupted
                     or self.report_error) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "summary",
            "files_in": self.files_in, "files_out": self.files_out,
            "clean": self.clean, "unverified": self.unverified,
            "written_unchecked": self.written,
            "failed": self.failed, "skipped": self.skipped,
            "frames": self.frames, "frames_checked": self.frames_checked,
            "boxes_by_reason": dict(sorted(self.boxes_by_reason.items())),
            "seconds_by_stage": {k: round(v, 3) for k, v in sorted(self.seconds_by_stage.items())},
            "wall_seconds": round(self.wall_seconds, 3),
            "files_per_second": round((self.files_in - self.skipped) / self.wall_seconds, 3)
            if self.wall_seconds else None,
            "interrupted": self.interrupted,
            "warnings": list(self.warnings),
        }

    def text(self) -> str:
        """The summary as a few human lines (no PHI: counts only)."""
        lines = [
            f"files in: {self.files_in}, out: {self.files_out} (clean {self.clean}, "
            f"unverified {self.unverified}, unchecked by request {self.written}), "
            f"failed: {self.failed}, "
            f"skipped (done before): {self.skipped}"
            + (", INTERRUPTED" if self.interrupted else ""),
            f"frames: {self.frames} (checked {self.frames_checked}); "
            f"wall time {self.wall_seconds:.1f} s",
        ]
        if self.boxes_by_reason:
            lines.append("boxes: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.boxes_by_reason.items())))
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.report_error:
            lines.append(f"error: {self.report_error}")
        if self.seconds_by_stage:
            lines.append("seconds by stage: " + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(self.seconds_by_stage.items())))
        return "\n".join(lines)


class ReportWriter:
    """Appends audit records to a JSON Lines file, flushing each line.

    A write error (a full disk) does not stop the batch: it is kept in ``error``
    and makes the run's exit status 1, since the audit is then incomplete.
    """

    def __init__(self, path: Optional[os.PathLike], *, log_phi: bool = False):
        self.log_phi = log_phi
        self.error: Optional[str] = None
        self._fh = None
        if path is not None:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(path, "w", encoding="utf-8")
            except OSError as exc:
                raise ScrubError(f"{path}: cannot write the report ({exc.strerror})",
                                 reason="usage") from None

    def _put(self, record: dict, sync: bool = False) -> None:
        if self._fh is None or self.error:
            return
        try:
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            self.error = f"cannot write the report ({exc.strerror})"

    def write(self, audit: FileAudit) -> None:
        self._put(audit.to_json(log_phi=self.log_phi))

    def close(self, summary: RunSummary) -> None:
        if self._fh is not None:
            self._put(summary.to_json(), sync=True)
            try:
                self._fh.close()
            except OSError as exc:
                self.error = self.error or f"cannot write the report ({exc.strerror})"
            self._fh = None
