"""Keyed UID replacement: valid, stable, keyed, and well-known UIDs untouched."""
from __future__ import annotations

from hypothesis import given, strategies as st
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from pixelscrub.header.uids import map_uid

KEY = b"test-key-0123456789abcdef"
_uid = st.lists(st.integers(0, 10**12), min_size=2, max_size=12).map(
    lambda parts: "1." + ".".join(str(p) for p in parts))


@given(_uid)
def test_replacement_is_a_valid_short_uid(uid):
    new = map_uid(uid, KEY)
    assert UID(new).is_valid and len(new) <= 64 and new.startswith("2.25.")
    assert new == map_uid(uid, KEY) != map_uid(uid, b"other-key-0123456789")


@given(_uid, _uid)
def test_distinct_uids_stay_distinct(a, b):
    assert (map_uid(a, KEY) == map_uid(b, KEY)) == (a == b)


def test_well_known_and_empty_uids_are_kept():
    for uid in (CTImageStorage, ExplicitVRLittleEndian, "1.2.840.10008.1.1", ""):
        assert map_uid(uid, KEY) == uid


def test_the_key_is_required():
    import pytest
    with pytest.raises(ValueError):
        map_uid("1.2.3", b"")
