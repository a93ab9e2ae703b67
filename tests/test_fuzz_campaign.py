"""A bounded fuzz campaign in the suite (``benchmarks/fuzz.py`` runs the long one):
structure-aware mutations of real files through a real batch."""
from __future__ import annotations

import pytest

from conftest import PYDICOM_TEST_DIR
from pixelscrub.bench.fuzz import MUTATIONS, SEEDS, elements, mutate, run_campaign


def test_seeds_are_bundled_and_parse_into_elements():
    for name in SEEDS:
        data = (PYDICOM_TEST_DIR / name).read_bytes()
        els = elements(data)
        assert els and all(e.start < e.value <= len(data) for e in els), name
        assert any(e.tag == 0x7FE00010 for e in els), name


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_each_mutation_changes_the_file_deterministically(kind):
    data = (PYDICOM_TEST_DIR / "SC_rgb_rle_2frame.dcm").read_bytes()
    a, b = mutate(data, kind, 7), mutate(data, kind, 7)
    assert a == b and a != data


@pytest.mark.parametrize("seed", [11, 12])
def test_smoke_campaign_every_failure_named_nothing_partial(seed):
    result = run_campaign(PYDICOM_TEST_DIR, 64, seed=seed, batch=32, jobs=2)
    assert result.cases == 64 and sum(result.by_kind.values()) == 64
    assert result.ok, result.to_json()
    # library exceptions are reduced to a reason before they reach a report
    assert not [r for r in result.failures_by_reason if r.startswith("internal error")]
    assert result.outputs + sum(result.failures_by_reason.values()) == 64
