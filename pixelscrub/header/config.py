"""Command-line flags and config files for the header de-identification options.

A config file (JSON, or TOML by its ``.toml`` suffix) holds the
:class:`DeidOptions` fields by name, at the top level or under a ``deid``
table, e.g.::

    retain_long_modified_dates = true
    clean_descriptors = true
    safe_private = [{creator = "SIEMENS MR HEADER", group = "0019", element = "0C"}]

Flags given on the command line switch options on over the file.  Unknown keys
are an error, so a misspelt option never silently leaves PHI in place.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from ..errors import ScrubError
from .options import DeidOptions, SafePrivate

__all__ = ["FLAGS", "add_cli_arguments", "options_from_cli", "load_config"]

#: DeidOptions switch -> help text; each becomes ``--retain-...`` / ``--clean-...``.
FLAGS = {
    "retain_long_full_dates": "keep dates and times as they are (PS3.15 Retain Longitudinal, Full Dates)",
    "retain_long_modified_dates": "shift each patient's dates by a keyed number of days (Modified Dates)",
    "retain_patient_chars": "keep age, sex, size, weight and the like (Retain Patient Characteristics)",
    "retain_device_id": "keep device names and serial numbers (Retain Device Identity)",
    "retain_institution_id": "keep institution names and addresses (Retain Institution Identity)",
    "retain_uids": "keep the original UIDs (Retain UIDs)",
    "retain_safe_private": "keep private attributes on the safe list (Retain Safe Private)",
    "clean_descriptors": "keep descriptions with PHI words replaced (Clean Descriptors)",
    "clean_structured_content": "keep SR content with PHI cleaned (Clean Structured Content)",
    "clean_graphics": "keep overlays, curves and graphic annotations, cleaned (Clean Graphics)",
}
_PATHS = ("pseudonym_csv", "reid_map")


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the header de-identification flags to ``parser``."""
    group = parser.add_argument_group("header de-identification (DICOM PS3.15 profile options)")
    for name, text in FLAGS.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, action="store_true",
                           default=None, help=text)
    group.add_argument("--deid-config", metavar="FILE",
                       help="JSON or TOML file with the options above (and safe_private)")
    group.add_argument("--key-file", metavar="FILE",
                       help="file holding the secret for UIDs, pseudonyms and date shifts "
                            "(default: $PIXELSCRUB_KEY)")
    group.add_argument("--pseudonym-csv", metavar="FILE",
                       help="CSV original_id,research_id[,research_name]; an ID missing from it is an error")
    group.add_argument("--reid-map", metavar="FILE",
                       help="append pseudonym -> original rows here (never inside the output folder)")


def load_config(path: str) -> dict[str, Any]:
    """The DeidOptions keyword arguments a config file sets (validated)."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".toml":
            with open(p, "rb") as f:
                data = _toml().load(f)
        else:
            with open(p, encoding="utf-8") as f:
                data = json.load(f)
    except (OSError, ValueError) as e:
        raise ScrubError(f"cannot read the de-identification config {p.name}: {e}", reason="config") from None
    if isinstance(data, dict) and isinstance(data.get("deid"), dict) and len(data) == 1:
        data = data["deid"]
    if not isinstance(data, dict):
        raise ScrubError("the de-identification config must be a table of options", reason="config")
    known = {f.name for f in fields(DeidOptions)}
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in known:
            raise ScrubError(f"unknown de-identification option {raw_key!r} in {p.name}", reason="config")
        if key == "safe_private":
            out[key] = tuple(_safe_private(v) for v in value)
        elif key in FLAGS:
            if not isinstance(value, bool):
                raise ScrubError(f"option {key} must be true or false", reason="config")
            out[key] = value
        else:
            out[key] = None if value is None else str(value)
    return out


def _toml():
    """The TOML reader: the standard library's (Python 3.11+) or tomli."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise ScrubError("TOML configs need Python 3.11 or the tomli package; use JSON",
                             reason="config") from None
    return tomllib


def _safe_private(entry: Any) -> SafePrivate:
    try:
        if isinstance(entry, dict):
            creator, group, element = entry["creator"], entry["group"], entry["element"]
        else:
            creator, group, element = entry
        return SafePrivate(str(creator), _hex(group), _hex(element))
    except (KeyError, TypeError, ValueError) as e:
        raise ScrubError(f"bad safe_private entry: {e}", reason="config") from None


def _hex(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def options_from_cli(args: argparse.Namespace) -> tuple[DeidOptions, Optional[bytes]]:
    """DeidOptions from the parsed flags (over ``--deid-config``) and the key, if any.

    The key comes from ``--key-file`` or ``$PIXELSCRUB_KEY``; None when neither
    is set (the CLI then decides whether a random per-run key is acceptable).
    """
    from . import KEY_ENV, load_key

    kwargs: dict[str, Any] = {}
    if getattr(args, "deid_config", None):
        kwargs.update(load_config(args.deid_config))
    for name in FLAGS:
        if getattr(args, name, None):
            kwargs[name] = True
    for name in _PATHS:
        if getattr(args, name, None):
            kwargs[name] = str(getattr(args, name))
    try:
        options = DeidOptions(**kwargs)
    except ValueError as e:
        raise ScrubError(str(e), reason="config") from None
    key_file = getattr(args, "key_file", None)
    if key_file:
        return options, load_key(key_file)
    if not os.environ.get(KEY_ENV, "").strip():
        return options, None
    return options, load_key()  # a key that is set but too short is an error, not "no key"
