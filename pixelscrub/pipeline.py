"""The staged pipeline for one image: decode -> propose -> read -> match -> redact
-> encode -> header, with every stage reporting into one :class:`FileAudit`.

This is the Python API behind the CLI: :func:`scrub_file` (path in, path out),
:func:`scrub_dataset` (a pydicom Dataset in, a new Dataset out) and
:func:`inspect_file` (what would be redacted, writing nothing).  Batch runs call
:func:`scrub_file` once per file in worker processes.
"""
from __future__ import annotations

import copy
import logging
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from pydicom import Dataset

from .errors import ScrubError
from .options import NO_OCR_MODES, ScrubOptions
from .records import PIXEL_LAYER, FileAudit, Hit, Word, covered_share

__all__ = ["scrub_file", "scrub_dataset", "inspect_file", "find_hits"]

log = logging.getLogger("pixelscrub")

_RUN_KEY: Optional[bytes] = None


@contextmanager
def _timed(audit: FileAudit, stage: str):
    start = time.perf_counter()
    try:
        yield audit.stage(stage)
    finally:
        audit.stage(stage).seconds += time.perf_counter() - start


def _timed_frames(factory: Callable[[], Iterator], audit: FileAudit) -> Callable[[], Iterator]:
    """Wrap a frame factory so time spent decoding is booked to the decode stage."""
    def frames():
        it = iter(factory())
        while True:
            start = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                audit.stage("decode").seconds += time.perf_counter() - start
                return
            audit.stage("decode").seconds += time.perf_counter() - start
            yield frame
    return frames


#: Display frames of a cine up to this many bytes are kept from detection's first
#: pass for its second, so each frame is decoded once; a larger cine is streamed
#: twice instead, and memory stays bounded.
KEEP_DECODED_BYTES = 256 * 2 ** 20


def _decoded_once(factory: Callable[[], Iterator], budget: int = KEEP_DECODED_BYTES
                  ) -> Callable[[], Iterator]:
    """A frame factory whose first complete pass is kept (if it fits ``budget``) and
    replayed by later calls, instead of decoding every frame again."""
    kept: list = []
    replay = False

    def frames():
        nonlocal replay
        if replay:
            yield from kept
            return
        kept.clear()
        size, fits = 0, True
        for frame in factory():
            size += frame.nbytes
            fits = fits and size <= budget
            if fits:
                kept.append(frame)
            yield frame
        replay = fits
        if not fits:
            kept.clear()

    return frames


def _encode_counts(rep, result) -> None:
    """Which frames the encode stage wrote how: copied as stored (no loss, no time),
    edited in the DCT domain, or decoded and encoded again (as frame ranges); on a
    second write after verify, how many were taken as first written."""
    rep.counts.update({"frames_written": result.frames_written,
                       "frames_copied": result.frames_copied,
                       "frames_reencoded": _ranges(result.frames_reencoded),
                       "frames_dct_edited": _ranges(result.frames_dct_edited)})
    if result.frames_reused:
        rep.counts["frames_reused"] = result.frames_reused


def _ranges(frames: list[int]) -> str:
    """0-based frame numbers as '0-4,7' ('' for none)."""
    out, start, prev = [], None, None
    for f in frames + [None]:
        if start is not None and (f is None or f != prev + 1):
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if f is not None and start is None:
            start = f
        prev = f
    return ",".join(out)


def _check_size(info, options: ScrubOptions) -> None:
    total = info.rows * info.columns * info.frames * info.samples_per_pixel
    if total > options.max_pixels:
        raise ScrubError(
            f"image too large: {info.rows}x{info.columns}x{info.frames} frames x"
            f"{info.samples_per_pixel} samples exceeds the limit of {options.max_pixels} samples",
            reason="too-large",
        )
    per_frame = info.rows * info.columns * info.samples_per_pixel
    if per_frame > options.max_frame_pixels:
        raise ScrubError(
            f"frame too large: {info.rows}x{info.columns}x{info.samples_per_pixel} samples "
            f"exceeds the per-frame limit of {options.max_frame_pixels} samples",
            reason="too-large",
        )
    # Ask before allocating: a frame is decoded, viewed and copied a few times over.
    from .worker import memory_limit
    cap = memory_limit()
    need = _FRAME_COPIES * per_frame * max(1, (info.bits_allocated + 7) // 8)
    if cap is not None and need > cap:
        raise ScrubError(f"frame too large for this worker's memory limit: "
                         f"{info.rows}x{info.columns}x{info.samples_per_pixel} samples need about "
                         f"{need // 2**20} MiB, the limit is {cap // 2**20} MiB", reason="too-large")


#: How many frame-sized buffers scrubbing one frame may hold at once (decoded,
#: display view, redacted copy, encoder input).
_FRAME_COPIES = 4


def _max_bytes(options: ScrubOptions) -> int:
    """The most a deflated input may inflate to: the largest image allowed, at two
    bytes a sample, plus the header allowance."""
    from .dicomio import INFLATE_ALLOWANCE
    return options.max_pixels * 2 + INFLATE_ALLOWANCE


def _fixed_region_hits(ds: Dataset, options: ScrubOptions) -> list[Hit]:
    """The user's ``--region`` boxes and the regions of the device rules that match."""
    hits = [Hit(r.box, "user-region", frames=r.frames) for r in options.regions]
    if options.rules:
        from .rules import blank_regions
        hits += [Hit(r.box, f"rule:{name}", frames=r.frames)
                 for r, name in blank_regions(options.rules, ds)]
    return hits


def _check_rejected(ds: Dataset, options: ScrubOptions) -> None:
    """A device rule that rejects this image (deid's blacklist) fails the file."""
    if options.rules:
        from .rules import matching_rules
        for rule in matching_rules(options.rules, ds):
            if rule.action == "reject":
                raise ScrubError(f"rejected by rule {rule.name!r} ({rule.source})",
                                 reason="rejected")


def find_hits(ds: Dataset, info, options: ScrubOptions, audit: FileAudit, *,
              display: Optional[Callable[[], Iterator]] = None) -> tuple[list[Hit], bool]:
    """Detect and match burned-in PHI in every layer of ``ds``.

    ``display`` replaces the pixel layer's frame source (a video stream's frames).
    Returns the hits (user regions included) and whether the pixels are verified:
    every frame of every layer was really checked and every text line was read or
    is redacted, which is what allows BurnedInAnnotation NO and the Clean Pixel
    Data code.  Lines that stayed unreadable go into ``audit.review`` (or, with
    ``options.redact_unread``, into the hits).
    """
    hits = _fixed_region_hits(ds, options)
    audit.stage("match").counts["fixed_regions"] = len(hits)
    if options.mode in NO_OCR_MODES:
        return hits, False

    from .decode import iter_display
    from .detect import detect_words
    from .match import complete_values, match_words
    from .ocr import get_engine
    from .overlays import iter_overlay_display, overlay_layers
    from .phi_terms import phi_terms_from_header
    from .propose import ultrasound_regions

    try:
        engine = get_engine(options.ocr_engine)
    except Exception as exc:  # no Tesseract: the pixels cannot be checked
        raise ScrubError(f"OCR engine unavailable: {exc}", reason="no-ocr") from exc

    layers = [(PIXEL_LAYER, info.frames, _decoded_once(display or (lambda: iter_display(ds))),
               ultrasound_regions(ds))]
    # overlay planes and overlay bits live beside native or frame-coded pixels; a video
    # stream (``display`` given) carries none
    for layer in (overlay_layers(ds) if display is None else []):
        layers.append((layer.name, layer.frames,
                       lambda layer=layer: iter_overlay_display(ds, layer), []))

    words: list[Word] = []
    unread: list[Hit] = []
    lines: list[Hit] = []
    all_checked = True
    for name, n_frames, factory, imaging in layers:
        det = detect_words(_timed_frames(factory, audit), n_frames, engine=engine,
                           imaging_regions=imaging, layer=name)
        words.extend(det.words)
        unread.extend(det.unread)
        lines.extend(det.lines)
        all_checked &= det.frames_checked >= n_frames
        for stage in ("propose", "read"):
            audit.stage(stage).seconds += det.seconds.get(stage, 0.0)
        audit.stage("read").counts.setdefault("reread_seconds", 0.0)
        audit.stage("read").counts["reread_seconds"] += det.seconds.get("reread", 0.0)
        audit.stage("propose").counts[name] = {"proposals": det.proposals}
        audit.stage("read").counts[name] = {
            "ocr_calls": det.ocr_calls, "rereads": det.rereads, "words": len(det.words),
            "unread": len(det.unread), "frames_checked": det.frames_checked, "frames": n_frames,
            # where changing text first shows (a cine's timer, a new label): the review
            # page's frame strip; frame numbers only, no text
            "dynamic_frames": sorted({w.frames[0] for w in det.words if w.frames})[:16]}
        audit.stage("read").notes.extend(det.notes)
        if name == PIXEL_LAYER:
            audit.frames_checked = det.frames_checked

    with _timed(audit, "match") as rep:
        terms = phi_terms_from_header(ds)
        found = complete_values(match_words(words, terms, mode=options.mode), words, lines,
                                terms=terms)
        rep.counts.update({"header_terms": len(terms), "words": len(words), "hits": len(found)})
    hits = hits + found
    if options.redact_unread:
        hits += unread
        rep.counts["unread_redacted"] = len(unread)
    else:
        audit.review = [u for u in unread if not _covered(u, _handled(hits, words, options))]
    return hits, all_checked and not audit.review


def _handled(hits: list[Hit], words: list[Word], options: ScrubOptions) -> list[Hit]:
    """What needs no review: the redactions (with their margin), words read with
    confidence, and words read as harmless vocabulary or short measurement values
    (``DR 74 dB`` at confidence 40 is still no one's name)."""
    from .match import is_harmless
    from .ocr.base import ocr_settings
    cfg = ocr_settings()
    out = [Hit(h.box.expand(options.margin, 1 << 30, 1 << 30), h.reason, h.frames, h.layer)
           for h in hits]
    # a word's box is tight around its ink: half its height around it holds the
    # spacing to its neighbours, which is no unread text either
    out += [Hit(w.box.expand(max(2, w.box.height // 2), 1 << 30, 1 << 30), "read", w.frames,
                w.layer) for w in words
            if w.confidence >= float(cfg["read_min_confidence"])
            or (w.confidence >= float(cfg["harmless_min_confidence"]) and is_harmless(w.text))]
    return out


def _covered(region: Hit, boxes: list[Hit], share: float = 0.9) -> bool:
    """Whether ``boxes`` (redacted, or read with confidence) on the same layer and
    frames cover ``share`` of ``region``: then nothing in it is left unread."""
    same = [h.box for h in boxes if h.layer == region.layer
            and (h.frames is None or (region.frames is not None
                                      and set(region.frames) <= set(h.frames)))]
    return not region.box.is_empty() and covered_share(region.box, same) >= share


def _key(options: ScrubOptions) -> bytes:
    """The de-identification secret: given, from the environment, or one per run."""
    global _RUN_KEY
    if options.key:
        return options.key
    from .header import load_key
    try:
        return load_key()
    except Exception:
        if _RUN_KEY is None:
            _RUN_KEY = secrets.token_bytes(32)
            log.warning("no de-identification key given (PIXELSCRUB_KEY or --key-file): "
                        "using a random key for this run, so UIDs and pseudonyms "
                        "will differ from other runs")
        return _RUN_KEY


def scrub_dataset(ds: Dataset, options: ScrubOptions = ScrubOptions(), *,
                  workdir: Optional[str] = None,
                  audit: Optional[FileAudit] = None) -> tuple[Dataset, FileAudit]:
    """Scrub one image: burned-in PHI out of the pixels, then the header.

    ``ds`` is never modified; the returned Dataset is new.  Raises
    :class:`ScrubError` when the file cannot be processed safely.  When ``workdir``
    is given, pixel data of large images may be backed by temporary files there,
    which must live until the returned Dataset is written.
    """
    from .decode import image_info
    from .encode import redact_dataset
    from .redact import plan_redactions

    audit = audit or FileAudit(input="<dataset>")
    _check_rejected(ds, options)
    if "PixelData" not in ds:
        return _scrub_without_pixels(ds, options, audit)
    from .video import is_video
    if is_video(ds):
        return _scrub_video(ds, options, audit)
    with _timed(audit, "decode"):
        info = image_info(ds)
        _check_size(info, options)
    audit.frames = info.frames
    audit.transfer_syntax_in = str(info.transfer_syntax)

    verified = False
    if options.pixels:
        hits, verified = find_hits(ds, info, options, audit)
        audit.hits = hits
        with _timed(audit, "redact") as rep:
            plan = plan_redactions(hits, info, margin=options.margin)
            rep.counts["hits"] = len(hits)
        with _timed(audit, "encode") as rep:
            out, result = redact_dataset(ds, plan, workdir=workdir)
            _encode_counts(rep, result)
            rep.notes.extend(result.notes)
        if options.verify and options.mode not in NO_OCR_MODES:
            out, result, verified = _verify(ds, out, result, plan, info, options, audit,
                                            verified, workdir)
        audit.transfer_syntax_out = str(result.transfer_syntax_out)
    else:
        with _timed(audit, "encode"):
            out = copy.deepcopy(ds)
        audit.transfer_syntax_out = audit.transfer_syntax_in
        audit.notes.append("pixels not scrubbed (--no-pixels)")

    # Only verified pixels are certified (BurnedInAnnotation NO, Clean Pixel Data
    # code); scrubbed but unverified pixels say YES: they may still hold text.
    _header_step(out, options, audit, verified,
                 "NO" if verified else ("YES" if options.pixels else None))
    audit.status = _status(verified, options)
    if audit.status == "unverified":
        if audit.frames_checked < audit.frames:
            audit.notes.append("not every frame could be checked: not certified")
        if audit.review:
            audit.notes.append(f"{len(audit.review)} text region(s) could not be read: "
                               "not certified (see review; --redact-unread blanks them)")
    return out, audit


def _verify(ds: Dataset, out: Dataset, result, plan, info, options: ScrubOptions,
            audit: FileAudit, verified: bool, workdir: Optional[str]):
    """Re-read a DICOM image output as an attacker would (:func:`_reread`).

    Returns the (possibly re-redacted) output, its encode result, and whether the
    pixels are verified.  A second write copies the frames the first one already
    filled the same way (:class:`~pixelscrub.encode.PriorOutput`).
    """
    from .decode import iter_display
    from .encode import PriorOutput, redact_dataset
    from .redact import plan_redactions
    from .verify import frames_to_verify

    written = {"out": out, "result": result, "plan": plan}

    def redo(hits):
        with _timed(audit, "encode") as rep:
            prior = PriorOutput(written["out"], written["plan"], written["result"])
            written["plan"] = plan_redactions(hits, info, margin=options.margin)
            written["out"], written["result"] = redact_dataset(ds, written["plan"],
                                                               workdir=workdir, prior=prior)
            _encode_counts(rep, written["result"])

    wanted = set(frames_to_verify(info.frames))       # the others are not decoded
    ok = _reread(ds, lambda: iter_display(written["out"], only=wanted), info.frames, options,
                 audit, redo)
    return written["out"], written["result"], _still_verified(verified, ok, audit)


def _still_verified(verified: bool, ok: bool, audit: FileAudit) -> bool:
    """Whether pixels are verified after the verify stage: nothing readable is left
    (``ok``), and detection verified them, or its only doubt was unread lines that
    the verify stage's redactions have since covered."""
    layers = [c for c in audit.stage("read").counts.values() if isinstance(c, dict)]
    every_frame = bool(layers) and all(c["frames_checked"] >= c["frames"] for c in layers)
    return ok and (verified or (every_frame and not audit.review))


def _reread(ds: Dataset, output_frames: Callable[[], Iterator], n_frames: int,
            options: ScrubOptions, audit: FileAudit, redo: Callable[[list], None]) -> bool:
    """Re-read the written output as an attacker would; redact what was missed
    (``redo`` writes the output again with every hit so far) and re-read once more.

    Returns False when PHI is still readable after that: it is listed in
    ``audit.review`` and the file is not certified.
    """
    from .ocr import get_engine
    from .phi_terms import phi_terms_from_header
    from .verify import recheck

    engine = get_engine(options.ocr_engine)
    second = get_engine(options.verify_engine) if options.verify_engine else None
    terms = phi_terms_from_header(ds)
    with _timed(audit, "verify") as rep:
        found, read = recheck(output_frames(), n_frames, terms, engine, second=second)
        rep.counts.update({"frames_reread": read, "found": len(found)})
    if not found:
        return True
    audit.hits = audit.hits + found
    redo(audit.hits)
    # a line detection could not read that is now redacted needs no review
    redacted = _handled(audit.hits, [], options)
    audit.review = [u for u in audit.review if not _covered(u, redacted)]
    with _timed(audit, "verify") as rep:
        left, _ = recheck(output_frames(), n_frames, terms, engine, second=second)
        rep.counts["left_after_second_pass"] = len(left)
    audit.notes.append(f"verify: {len(found)} region(s) missed by detection were found "
                       "by re-reading the output and redacted")
    if left:
        audit.review = audit.review + left
        return False
    return True


def _scrub_without_pixels(ds: Dataset, options: ScrubOptions,
                          audit: FileAudit) -> tuple[Dataset, FileAudit]:
    """An object that is not an image: an encapsulated PDF is scrubbed page by page
    (:mod:`pixelscrub.documents`); other encapsulated documents are refused; a
    structured report, RT object, presentation state, key object selection,
    waveform or raw data object gets the header step (PS3.15 decides what of its
    content tree, graphics and text survives)."""
    from .documents import ENCAPSULATED_PDF, keep_scrubbed_document, refused_document, scrub_pdf

    media = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if media == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        raise ScrubError("a DICOMDIR lists patient names and IDs: left out (build a new one "
                         "from the outputs)", reason="dicomdir")
    kind = refused_document(ds)
    if kind:
        raise ScrubError(f"encapsulated {kind} documents cannot be scrubbed: not written",
                         reason="refused-document")
    out = copy.deepcopy(ds)
    verified = None
    if str(ds.get("SOPClassUID", "")) == ENCAPSULATED_PDF:
        if options.documents == "refuse":
            raise ScrubError("encapsulated PDF refused as asked (--documents refuse): not written",
                             reason="refused-document")
        if not options.pixels or options.mode in NO_OCR_MODES:
            raise ScrubError("an encapsulated PDF is scrubbed by reading its pages; with "
                             "--no-pixels or without OCR it is not written", reason="refused-document")
        with _timed(audit, "read"):
            verified = scrub_pdf(ds, out, options, audit)
    else:
        audit.notes.append("no pixel data: header de-identified only")
    scrubbed = ((bytes(out.EncapsulatedDocument), int(out.EncapsulatedDocumentLength))
                if verified is not None else None)
    _header_step(out, options, audit, bool(verified),
                 None if verified is None else ("NO" if verified else "YES"))
    if scrubbed is not None and options.header:
        keep_scrubbed_document(scrubbed, out)
        audit.stage("header").notes.append(
            "Encapsulated Document: the scrubbed pages, not the profile's dummy")
    audit.status = "clean" if verified is None or verified else "unverified"
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    audit.transfer_syntax_in = audit.transfer_syntax_out = ts or None
    return out, audit


def _header_step(out: Dataset, options: ScrubOptions, audit: FileAudit, verified: bool,
                 burned_in: Optional[str]) -> None:
    """The PS3.15 header step on ``out`` (in place), or only BurnedInAnnotation with
    ``--no-header``; ``verified`` adds the Clean Pixel Data code."""
    if options.header:
        from .header import DeidOptions, deidentify
        with _timed(audit, "header") as rep:
            report = deidentify(out, options.deid or DeidOptions(), key=_key(options),
                                pixels_cleaned=verified, burned_in_annotation=burned_in)
            rep.counts.update(getattr(report, "counts", {}) or {})
            rep.notes.extend(getattr(report, "notes", []) or [])
    elif burned_in:
        out.BurnedInAnnotation = burned_in


def _scrub_video(ds: Dataset, options: ScrubOptions,
                 audit: FileAudit) -> tuple[Dataset, FileAudit]:
    """A cine stored as video: decoded with PyAV, scrubbed like any cine, encoded
    again with the same codec, container and frame rate (:mod:`pixelscrub.video`)."""
    from types import SimpleNamespace

    from .redact import fill_frame, plan_redactions
    from .video import encode_video, iter_video_frames, stream_facts, video_bytes, write_video

    ts = str(ds.file_meta.TransferSyntaxUID)
    audit.transfer_syntax_in = ts
    with _timed(audit, "decode"):
        data = video_bytes(ds)
        facts = stream_facts(data)
    rows, cols = int(facts["height"]), int(facts["width"])
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    info = SimpleNamespace(rows=rows, columns=cols, frames=frames, samples_per_pixel=3,
                           bits_allocated=8)
    _check_size(info, options)
    audit.frames = frames
    out = copy.deepcopy(ds)
    verified = False
    if options.pixels:
        hits, verified = find_hits(ds, info, options, audit,
                                   display=lambda: iter_video_frames(data))
        audit.hits = hits
        encoded = {}

        def encode(hits):
            plan = plan_redactions(hits, info, margin=options.margin)
            redacted = (fill_frame(frame, plan.boxes_for(PIXEL_LAYER, i), (0, 0, 0))
                        for i, frame in enumerate(iter_video_frames(data)))
            with _timed(audit, "encode") as rep:
                encoded["stream"], encoded["frames"] = encode_video(redacted, facts, ts)
                rep.counts["frames_written"] = encoded["frames"]

        encode(hits)
        if options.verify and options.mode not in NO_OCR_MODES:
            # the encoded video is re-read like any output (the codec is lossy)
            ok = _reread(ds, lambda: iter_video_frames(encoded["stream"]), frames,
                         options, audit, encode)
            verified = _still_verified(verified, ok, audit)
        stream, written = encoded["stream"], encoded["frames"]
        write_video(out, stream, written)
        audit.stage("encode").notes.append(
            f"video: all {written} frames decoded and encoded again "
            f"({facts['codec']} in {facts['format']}, {facts['rate']} frames/s)")
        if written != frames:
            verified = False
            audit.notes.append(f"video held {written} frames, NumberOfFrames said {frames}")
    else:
        audit.notes.append("pixels not scrubbed (--no-pixels)")
    audit.transfer_syntax_out = ts
    _header_step(out, options, audit, verified,
                 "NO" if verified else ("YES" if options.pixels else None))
    audit.status = _status(verified, options)
    return out, audit


def _status(verified: bool, options: ScrubOptions) -> str:
    """``clean`` (certified), ``unverified`` (a checking mode that could not check
    everything) or ``written`` (the user asked for no checking)."""
    if verified:
        return "clean"
    return "unverified" if options.pixels and options.mode not in NO_OCR_MODES else "written"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def scrub_file(src, dst, options: ScrubOptions = ScrubOptions(), *,
               workdir: Optional[str] = None) -> FileAudit:
    """Scrub ``src`` into ``dst`` (written atomically); never raises for a bad input.

    A file that cannot be processed gets ``status="failed"`` with a one-line
    ``error`` naming it, and nothing is written at ``dst``.
    """
    from .dicomio import open_member, read_dataset, write_atomic, zip_member

    member = zip_member(src)
    src, dst = (src if member else Path(src)), Path(dst)
    audit = FileAudit(input=str(src))
    start = time.perf_counter()
    try:
        if not member and _same_file(src, dst):
            raise ScrubError("refusing to write over the input file", reason="usage")
        with tempfile.TemporaryDirectory(prefix="pixelscrub-", dir=workdir) as tmp:
            with _timed(audit, "decode"):
                source = open_member(src, _max_bytes(options)) if member else src
                ds = read_dataset(source, max_bytes=_max_bytes(options), allow_no_pixels=True)
            out, audit = scrub_dataset(ds, options, workdir=tmp, audit=audit)
            with _timed(audit, "write"):
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(out, dst)
        audit.output = str(dst)
    except ScrubError as exc:
        audit.status, audit.error = "failed", f"{src}: {exc}"
    except MemoryError:
        audit.status, audit.error = "failed", f"{src}: out of memory"
    except Exception as exc:  # an unexpected failure must not stop a batch
        audit.status, audit.error = "failed", _internal_error(src, exc, options)
    audit.stage("total").seconds = time.perf_counter() - start
    return audit


def inspect_file(src, options: ScrubOptions = ScrubOptions()) -> FileAudit:
    """What :func:`scrub_file` would redact in ``src`` and why; writes nothing."""
    from .decode import image_info
    from .dicomio import read_dataset

    audit = FileAudit(input=str(src))
    try:
        ds = read_dataset(src, max_bytes=_max_bytes(options))
        _check_rejected(ds, options)
        info = image_info(ds)
        _check_size(info, options)
        audit.frames = info.frames
        audit.transfer_syntax_in = str(info.transfer_syntax)
        audit.hits, verified = find_hits(ds, info, options, audit)
        audit.status = _status(verified, options)
    except ScrubError as exc:
        audit.status, audit.error = "failed", f"{src}: {exc}"
    except Exception as exc:
        audit.status, audit.error = "failed", _internal_error(src, exc, options)
    return audit


def _internal_error(src, exc: Exception, options: ScrubOptions) -> str:
    """One line for an unexpected exception; its message (which might quote header
    values) only with ``log_phi``."""
    log.debug("internal error on %s", src, exc_info=options.log_phi)
    if options.log_phi:
        detail = f": {' '.join(str(exc).split())[:200]}"
    elif isinstance(exc, OSError) and exc.strerror:
        detail = f": {exc.strerror}"  # the OS's own words ("No space left on device"), no values
    else:
        detail = ""
    return f"{src}: internal error ({type(exc).__name__}{detail})"
