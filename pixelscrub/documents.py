"""Objects without Pixel Data: encapsulated PDFs scrubbed page by page, the rest
refused or passed to the header step by the pipeline.

An encapsulated PDF carries its PHI in the document itself (text, images, metadata).
Its pages are rendered with PDFium (pypdfium2), each page goes through the same
detection and matching as a screenshot, the hits are blacked out, and the document
is written back as a PDF of page images only: no text layer, no metadata, no
embedded files of the original survive.
"""
from __future__ import annotations

import io
import time
from typing import Optional

import numpy as np
from pydicom.dataset import Dataset

from .errors import ScrubError
from .records import PIXEL_LAYER, FileAudit, Hit

__all__ = ["ENCAPSULATED_PDF", "REFUSED_DOCUMENTS", "scrub_pdf", "render_pdf", "pages_to_pdf",
           "refused_document", "keep_scrubbed_document"]

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
#: Encapsulated documents pixelscrub cannot clean (CDA, STL, OBJ, MTL): refused, so
#: they are never passed through with the PHI they hold.
REFUSED_DOCUMENTS = {"1.2.840.10008.5.1.4.1.1.104.2": "CDA", "1.2.840.10008.5.1.4.1.1.104.3": "STL",
                     "1.2.840.10008.5.1.4.1.1.104.4": "OBJ", "1.2.840.10008.5.1.4.1.1.104.5": "MTL"}
#: Rendering resolution of PDF pages (dots per inch): small print stays readable.
DPI = 150


def render_pdf(data: bytes, dpi: int = DPI) -> list[np.ndarray]:
    """Every page of a PDF as an RGB uint8 array."""
    import pypdfium2 as pdfium
    try:
        doc = pdfium.PdfDocument(data)
    except Exception as exc:  # noqa: BLE001 - a broken document is one reason
        raise ScrubError(f"encapsulated PDF cannot be opened ({type(exc).__name__})",
                         reason="bad-document") from None
    pages = []
    try:
        for i in range(len(doc)):
            bitmap = doc[i].render(scale=dpi / 72.0)
            pages.append(np.array(bitmap.to_pil().convert("RGB"), dtype=np.uint8))
    finally:
        doc.close()
    return pages


def pages_to_pdf(pages: list[np.ndarray], dpi: int = DPI) -> bytes:
    """A PDF made of page images only (Pillow writes no text layer, no metadata)."""
    from PIL import Image
    images = [Image.fromarray(p) for p in pages]
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return buf.getvalue()


def scrub_pdf(ds: Dataset, out: Dataset, options, audit: FileAudit, *, engine=None) -> bool:
    """Scrub the encapsulated PDF of ``ds`` into ``out``; returns whether every page
    was read (no text left unread), which is what allows BurnedInAnnotation NO."""
    from .detect import detect_words
    from .match import match_words
    from .ocr import get_engine
    from .phi_terms import phi_terms_from_header
    from .redact import fill_frame

    data = bytes(ds.get("EncapsulatedDocument", b"") or b"")
    length = ds.get("EncapsulatedDocumentLength")
    if length:
        data = data[:int(length)]        # without the pad byte of an odd-length document
    if not data:
        raise ScrubError("encapsulated PDF has no document", reason="bad-document")
    pages = render_pdf(data)
    if not pages:
        raise ScrubError("encapsulated PDF has no pages", reason="bad-document")
    engine = engine or get_engine(options.ocr_engine)
    terms = phi_terms_from_header(ds)
    verified = True
    hits_all: list[Hit] = []
    for n, page in enumerate(pages):
        det = detect_words(lambda page=page: iter([page]), 1, engine=engine)
        found = match_words(det.words, terms, mode=options.mode)
        unread = det.unread
        boxes = found + (unread if options.redact_unread else [])
        verified &= det.frames_checked == 1 and (options.redact_unread or not unread)
        if unread and not options.redact_unread:
            audit.review += [Hit(u.box, "unread", (n,), PIXEL_LAYER, 0.0) for u in unread]
        h, w = page.shape[:2]
        pages[n] = fill_frame(page, [x.box.expand(options.margin, w, h) for x in boxes], (0, 0, 0))
        hits_all += [Hit(x.box, x.reason, (n,), PIXEL_LAYER, x.confidence, x.text, x.score)
                     for x in boxes]
        audit.stage("read").counts[f"page{n}"] = {"words": len(det.words), "hits": len(boxes),
                                                  "unread": len(unread)}
    pdf = pages_to_pdf(pages)
    if options.verify:
        pdf, missed, clean = _verify_pages(pdf, pages, terms, options, audit, engine)
        hits_all += missed
        verified &= clean
    out.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    out.EncapsulatedDocumentLength = len(pdf)
    title = str(ds.get("DocumentTitle", "") or "")
    if title:
        from .match import find_phi_in_text
        spans = find_phi_in_text(title, terms)
        for start, end, _ in reversed(spans):
            title = title[:start] + "*" * (end - start) + title[end:]
        out.DocumentTitle = title
    audit.hits = hits_all
    audit.frames = audit.frames_checked = len(pages)
    audit.notes.append(f"encapsulated PDF: {len(pages)} page(s) rendered at {DPI} dpi, scrubbed "
                       "and written back as page images (no text layer, no metadata)")
    return verified


def _verify_pages(pdf: bytes, pages: list[np.ndarray], terms, options, audit: FileAudit,
                  engine) -> tuple[bytes, list[Hit], bool]:
    """Render the written PDF again and re-read every page as an attacker would
    (:func:`pixelscrub.verify.recheck`); black out what was missed, write the pages
    again and re-read once more.  Returns the PDF, the hits added, and False when
    PHI is still readable (listed in ``audit.review``)."""
    from .ocr import get_engine
    from .redact import fill_frame
    from .verify import recheck

    second = get_engine(options.verify_engine) if options.verify_engine else None
    added: list[Hit] = []
    for attempt in range(2):
        start = time.perf_counter()
        found = []
        for n, page in enumerate(render_pdf(pdf)):
            hits, _ = recheck(iter([page]), 1, terms, engine, mode=options.mode, second=second)
            found += [Hit(h.box, h.reason, (n,), PIXEL_LAYER, h.confidence, h.text, h.score)
                      for h in hits]
        rep = audit.stage("verify")
        rep.seconds += time.perf_counter() - start
        rep.counts["pages_reread" if attempt == 0 else "pages_reread_again"] = len(pages)
        rep.counts["found" if attempt == 0 else "left_after_second_pass"] = len(found)
        if not found:
            return pdf, added, True
        if attempt == 1:
            audit.review += found
            return pdf, added, False
        for hit in found:
            n = hit.frames[0]
            h, w = pages[n].shape[:2]
            pages[n] = fill_frame(pages[n], [hit.box.expand(options.margin, w, h)], (0, 0, 0))
        added += found
        audit.notes.append(f"verify: {len(found)} region(s) missed by detection were found "
                           "by re-reading the written pages and redacted")
        pdf = pages_to_pdf(pages)
    return pdf, added, False


def keep_scrubbed_document(document: tuple[bytes, int], out: Dataset) -> None:
    """Put the scrubbed document (bytes, length) back after the header step: the
    Basic Profile replaces Encapsulated Document with a dummy (D) because it cannot
    clean it; pixelscrub did clean it (rendered, redacted, rewritten without text)."""
    out.EncapsulatedDocument, out.EncapsulatedDocumentLength = document


def refused_document(ds: Dataset) -> Optional[str]:
    """The kind of an encapsulated document pixelscrub refuses, if ``ds`` is one."""
    return REFUSED_DOCUMENTS.get(str(ds.get("SOPClassUID", "")))
