"""Seeded synthetic DICOM files with burned-in text and exact per-pixel ground truth.

``python -m pixelscrub.synth --out DIR --count N --seed S`` writes ``DIR/dicom`` and
``DIR/truth``; :mod:`pixelscrub.bench` scores any tool's output against it.
"""
from .generate import CASES, GeneratedFile, generate_file, generate_set
from .scenes import CATEGORY_OF
from .truth import FileTruth, TextItem, read_truth, truth_files, write_truth

__all__ = ["CASES", "CATEGORY_OF", "GeneratedFile", "generate_file", "generate_set",
           "FileTruth", "TextItem", "read_truth", "truth_files", "write_truth"]
