"""Benchmark: score any de-identification tool's output against ground truth, and
measure pixelscrub's (and Presidio's) accuracy and speed on the same files.

``pixelscrub bench score --truth DIR --output DIR`` and ``pixelscrub bench run``; the
scoring rules are in :mod:`pixelscrub.bench.score`.
"""
from .score import (FileScore, GroupSummary, ItemScore, ScoreReport, format_summary,
                    load_presidio_truth, score_file, score_folder, write_presidio_truth)

__all__ = ["FileScore", "GroupSummary", "ItemScore", "ScoreReport", "format_summary",
           "load_presidio_truth", "score_file", "score_folder", "write_presidio_truth"]
