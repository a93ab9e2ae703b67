"""Keyed, deterministic UID replacement.

A UID is replaced by ``2.25.<integer>`` where the integer is a UUID (RFC 9562
version 8, "custom") built from HMAC-SHA256(key, UID).  With the same key the
same UID gets the same replacement in every file, run and machine, so studies,
series and references between instances stay linked; without the key the
original cannot be recovered or confirmed by hashing guesses.
"""
from __future__ import annotations

import hashlib
import hmac

from pydicom.uid import UID_dictionary

__all__ = ["map_uid", "is_well_known"]

_DOMAIN = b"pixelscrub/uid\0"


def is_well_known(uid: str) -> bool:
    """True for UIDs defined by the standard (SOP classes, transfer syntaxes, ...)."""
    return uid in UID_dictionary


def map_uid(uid: str, key: bytes) -> str:
    """The replacement of ``uid`` under ``key``; well-known and empty UIDs are kept.

    >>> map_uid("1.2.3", b"k") == map_uid("1.2.3", b"k") != map_uid("1.2.3", b"j")
    True
    """
    if not key:
        raise ValueError("a non-empty key is required to replace UIDs")
    uid = str(uid).strip().rstrip("\0")
    if not uid or is_well_known(uid):
        return uid
    raw = bytearray(hmac.new(key, _DOMAIN + uid.encode("ascii", "replace"), hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80   # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80   # RFC 9562 variant
    return "2.25." + str(int.from_bytes(raw, "big"))
