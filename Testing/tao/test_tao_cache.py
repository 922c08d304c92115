"""The TAO preprocessing cache is checksummed (issue #14): a corrupt, truncated or unchecked
``eyes.npz`` is named in one warning and rebuilt with identical arrays, never half-loaded; a cache
holding a pickle payload is refused the same way."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from orbitai.cohort.manifest import read_manifest
from orbitai.phantoms import write_cohort
from orbitai.tao.data import prepare_eyes
from orbitai.testing.damage import PWNED, drop_checksum, flip_bytes, pickle_payload_with_valid_checksum, truncate

SEED = 777142  # never used for training cohorts


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return read_manifest(write_cohort("tao", 2, SEED, tmp_path_factory.mktemp("tao"), montage_cases=0))


@pytest.fixture(scope="module")
def fresh(cases):
    return prepare_eyes(cases, workers=1)


def same(a, b):
    return (np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and a.case_ids == b.case_ids
            and a.sides == b.sides)


@pytest.mark.parametrize("damage, reason", [
    (flip_bytes, "checksum mismatch"),
    (truncate, "checksum mismatch"),
    (drop_checksum, "no checksum in eyes.npz.sha256"),
    (pickle_payload_with_valid_checksum, "it holds pickled Python objects, which are never loaded"),
])
def test_corrupt_cache_is_named_and_rebuilt(cases, fresh, tmp_path, caplog, damage, reason):
    cache = tmp_path / "eyes.npz"
    assert same(prepare_eyes(cases, cache=cache, workers=1), fresh)
    assert same(prepare_eyes(cases, cache=cache, workers=1), fresh)     # served from the cache
    damage(cache)
    with caplog.at_level(logging.WARNING):
        rebuilt = prepare_eyes(cases, cache=cache, workers=1)
    named = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(named) == 1 and named[0].startswith(f"TAO preprocessing cache {cache} is corrupt ({reason}")
    assert named[0].endswith("; rebuilding it.")
    assert same(rebuilt, fresh) and not (tmp_path / PWNED).exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert same(prepare_eyes(cases, cache=cache, workers=1), fresh)   # the rebuilt cache passes its check
    assert "corrupt" not in caplog.text


def test_cache_of_another_case_list_is_rebuilt_silently(cases, fresh, tmp_path, caplog):
    cache = tmp_path / "eyes.npz"
    prepare_eyes(cases[:1], cache=cache, workers=1)
    with caplog.at_level(logging.WARNING):
        assert same(prepare_eyes(cases, cache=cache, workers=1), fresh)
    assert "corrupt" not in caplog.text
