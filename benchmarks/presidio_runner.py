"""Run Presidio's DicomImageRedactorEngine over a folder, for the side-by-side benchmark.

Runs inside Presidio's own venv (``benchmarks/.venv-presidio``, made by
``pixelscrub.bench.presidio``), never in pixelscrub's. spaCy models cannot be
downloaded here, so the analyzer uses presidio-analyzer's ``no_op`` NLP engine: no
named-entity model (no PERSON from language), only its pattern recognizers plus the
header deny-list that ``use_metadata=True`` builds from each file's own header.

    python presidio_runner.py --input DIR --output DIR --report FILE.jsonl

Writes each redacted file at the same relative path and one JSON line per file with
seconds and status.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tracemalloc
import warnings
from pathlib import Path


def build_engine():
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "no_op",
        "models": [{"lang_code": "en", "model_name": "no_op"}],
    })
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    return DicomImageRedactorEngine(ImageAnalyzerEngine(analyzer_engine=analyzer))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--report", required=True, type=Path)
    a = p.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    import pydicom

    t0 = time.perf_counter()
    engine = build_engine()
    setup = time.perf_counter() - t0
    files = sorted(q for q in a.input.rglob("*") if q.is_file() and q.suffix.lower() == ".dcm")
    a.report.parent.mkdir(parents=True, exist_ok=True)
    tracemalloc.start()
    with open(a.report, "w", encoding="utf-8") as rep:
        rep.write(json.dumps({"setup_seconds": setup}) + "\n")
        for src in files:
            rel = src.relative_to(a.input)
            dst = a.output / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            rec = {"file": str(rel), "status": "ok", "error": None}
            t = time.perf_counter()
            try:
                ds = pydicom.dcmread(src)
                rec["frames"] = int(getattr(ds, "NumberOfFrames", 1) or 1)
                out = engine.redact(ds, fill="contrast", use_metadata=True)
                out.save_as(dst)
            except Exception as e:  # a failed file is a result, not a crash
                rec["status"] = "failed"
                rec["error"] = f"{type(e).__name__}: {e}"[:300]
            rec["seconds"] = time.perf_counter() - t
            rep.write(json.dumps(rec) + "\n")
            rep.flush()
    _, peak = tracemalloc.get_traced_memory()
    with open(a.report, "a", encoding="utf-8") as rep:
        rep.write(json.dumps({"tracemalloc_peak_bytes": peak}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
