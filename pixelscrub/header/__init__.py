"""Header de-identification: DICOM PS3.15 Basic Application Level Confidentiality
Profile with its options, driven by Table E.1-1 as data.

The pipeline calls::

    from pixelscrub.header import DeidOptions, deidentify, load_key
    report = deidentify(ds, DeidOptions(retain_long_modified_dates=True),
                        key=load_key(), pixels_cleaned=True, burned_in_annotation="NO")

``deidentify`` changes ``ds`` in place (file meta included) and returns a
:class:`HeaderReport` of counts that names no PHI.  UIDs, pseudonyms and date
shifts are keyed with HMAC-SHA256, so one key gives the same output on every run
and machine; without the key nothing can be linked back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from pydicom.dataset import Dataset

from ..errors import ScrubError
from .actions import Run, walk
from .clean import collect_terms
from .dates import shift_days
from .marks import write_marks
from .options import DEFAULT_SAFE_PRIVATE, DeidOptions, SafePrivate
from .pseudonyms import append_reid_map, check_reid_map_location, pseudonym_for
from .uids import map_uid

__all__ = [
    "DeidOptions",
    "SafePrivate",
    "DEFAULT_SAFE_PRIVATE",
    "HeaderReport",
    "deidentify",
    "load_key",
    "check_reid_map_location",
    "MIN_KEY_BYTES",
]

#: A shorter secret could be guessed, and with it every pseudonym and UID.
MIN_KEY_BYTES = 16
#: The environment variable the key is read from when no key file is given.
KEY_ENV = "PIXELSCRUB_KEY"

_COUNTS = ("removed", "emptied", "dummied", "kept", "cleaned", "uids_replaced",
           "private_removed", "pseudonymized")
_FILE_META_AE = (0x00020016, 0x00020017, 0x00020018)  # Source/Sending/Receiving AE Title
_FILE_META_PRIVATE = (0x00020100, 0x00020102)          # Private Information (Creator UID)


@dataclass
class HeaderReport:
    """What :func:`deidentify` did to one dataset: counts, options, notes (no PHI)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    method_codes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "options": dict(self.options),
                "notes": list(self.notes), "method_codes": list(self.method_codes)}


def load_key(path: Optional[str] = None, env: str = KEY_ENV) -> bytes:
    """The secret from a file (``path``) or the environment variable ``env``.

    Never from the command line, where other users can read it.  Raises
    :class:`ScrubError` (reason ``no-key``) when there is none or it is shorter
    than :data:`MIN_KEY_BYTES`.
    """
    if path:
        try:
            with open(path, "rb") as f:
                key = f.read().strip()
        except OSError as e:
            raise ScrubError(f"cannot read the key file: {e.strerror}", reason="no-key") from None
        where = "the key file"
    else:
        key = os.environ.get(env, "").strip().encode("utf-8")
        where = f"${env}"
        if not key:
            raise ScrubError(f"no de-identification key: set {env} or give a key file", reason="no-key")
    if len(key) < MIN_KEY_BYTES:
        raise ScrubError(f"the key in {where} is shorter than {MIN_KEY_BYTES} bytes", reason="no-key")
    return key


def deidentify(ds: Dataset, options: DeidOptions = DeidOptions(), *, key: bytes,
               pixels_cleaned: bool = False,
               burned_in_annotation: Optional[str] = None) -> HeaderReport:
    """De-identify ``ds`` in place (file meta included) and say what was done.

    ``pixels_cleaned`` adds the Clean Pixel Data Option code (and lets Clean
    Graphics keep overlays the pixel stage cleaned); ``burned_in_annotation``
    ("NO" only when every frame was checked) is written as BurnedInAnnotation.
    Raises :class:`ScrubError` when the dataset cannot be de-identified; the
    dataset must then be discarded.
    """
    if not key:
        raise ScrubError("no de-identification key", reason="no-key")
    from .. import __version__

    original_id = _text(ds.get("PatientID"))
    original_name = _text(ds.get("PatientName"))
    pseudonym = pseudonym_for(original_id, original_name, _text(ds.get("PatientBirthDate")), key,
                              csv_path=options.pseudonym_csv, prefix=options.pseudonym_prefix)
    run = Run(key=key, options=options, pseudonym=pseudonym, original_patient_id=original_id,
              original_patient_name=original_name, pixels_cleaned=pixels_cleaned)
    if options.retain_long_modified_dates:
        run.shift = shift_days(original_id, key)
        if not original_id:
            run.note("no PatientID: dates shifted by the key's shift for an empty ID")
    try:
        if options.clean_descriptors or options.clean_structured_content or options.clean_graphics:
            run.terms = collect_terms(ds)  # from the original header, before anything changes
        walk(ds, run, top=True)
        _file_meta(ds, run)
        codes = write_marks(ds, options, version=__version__, pixels_cleaned=pixels_cleaned,
                            burned_in_annotation=burned_in_annotation)
    except ScrubError:
        raise
    except Exception as e:  # the message might quote a header value: name the type only
        raise ScrubError(f"header de-identification failed ({type(e).__name__})",
                         reason="header") from e
    if options.reid_map:
        try:
            append_reid_map(str(options.reid_map), pseudonym, original_id, original_name)
        except OSError as e:
            raise ScrubError(f"cannot write the re-identification map: {e.strerror}",
                             reason="reid-map") from None
    report = HeaderReport(options={**options.selected(), "pixels_cleaned": pixels_cleaned},
                          notes=list(run.notes), method_codes=[c for c, _ in codes])
    report.counts.update(run.counts)
    return report


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _file_meta(ds: Dataset, run: Run) -> None:
    """MediaStorageSOPInstanceUID follows the SOPInstanceUID mapping; AE titles and
    private information leave the file meta."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    uid = meta.get("MediaStorageSOPInstanceUID")
    if uid and not run.options.retain_uids:
        meta.MediaStorageSOPInstanceUID = map_uid(str(uid), run.key)
        run.counts["uids_replaced"] += 1
    drop = _FILE_META_PRIVATE + (() if run.options.retain_device_id else _FILE_META_AE)
    for tag in drop:
        if tag in meta:
            del meta[tag]
            run.counts["removed"] += 1
