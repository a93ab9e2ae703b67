"""Date shifting for the Retain Longitudinal Temporal Information with Modified
Dates option.

Every date of one patient moves by the same whole number of days, derived from
the secret key and the patient's original PatientID with HMAC-SHA256, so the
shift is identical on every run and machine with the same key and every interval
between a patient's dates and times is preserved.  Because the shift is whole
days, times of day (TM, and the time part of DT) do not change.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from typing import Optional

__all__ = ["MAX_SHIFT_DAYS", "shift_days", "shift_da", "shift_dt"]

#: Shifts are between 1 and MAX_SHIFT_DAYS days into the past (never zero).
MAX_SHIFT_DAYS = 3650

_DOMAIN = b"pixelscrub/date-shift\0"
_DT_RE = re.compile(r"^(\d{8})(\d*(?:\.\d*)?)([+-]\d{4})?$")


def shift_days(patient_id: str, key: bytes) -> int:
    """The (negative) number of days every date of this patient moves."""
    if not key:
        raise ValueError("a non-empty key is required to shift dates")
    digest = hmac.new(key, _DOMAIN + patient_id.encode("utf-8"), hashlib.sha256).digest()
    return -(1 + int.from_bytes(digest[:8], "big") % MAX_SHIFT_DAYS)


def _shift_date(text: str, days: int) -> Optional[str]:
    try:
        d = _dt.datetime.strptime(text, "%Y%m%d").date()
        return (d + _dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


def shift_da(value: str, days: int) -> Optional[str]:
    """A DA value (or a ``from-to`` range) shifted; None when it is not a full date."""
    value = value.strip()
    if "-" in value:
        parts = [shift_da(p, days) if p else "" for p in value.split("-", 1)]
        return None if None in parts else "-".join(parts)  # type: ignore[arg-type]
    return _shift_date(value, days)


def shift_dt(value: str, days: int) -> Optional[str]:
    """A DT value shifted, time and UTC offset kept; None unless it has a full date."""
    m = _DT_RE.match(value.strip())
    if not m:
        return None
    date = _shift_date(m.group(1), days)
    if date is None:
        return None
    return date + m.group(2) + (m.group(3) or "")
