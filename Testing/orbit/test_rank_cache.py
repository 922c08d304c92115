"""Issue 81.8: "Which scan next" ranked every scan again each time (22-37 s a whole head on 2 busy cores, nearly all
the network): a scan ranked before by the same model with the same options is not segmented again
(`orbitai.orbit.rank_cache`), and a changed scan, model or option is."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cohort.manifest import read_manifest
from orbitai.io import Volume, read_volume, write_volume
from orbitai.orbit.rank import rank_scans
from orbitai.orbit.rank_cache import cached_ranking, keep_ranking, ranking_key
from orbitai.phantoms import write_cohort
from orbitai.training.checkpoint import CACHE_ENV

SEED = 81008


class Segmented(Exception):
    """The network was run (where the test says it must not be)."""


def _no_network(*_args, **_kwargs):
    raise Segmented()


def test_the_key_follows_the_voxels_the_grid_the_weights_and_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    vol = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), (1.0, 1.0, 2.0))
    key = ranking_key(vol, "w1", {"mirror": False})
    assert key == ranking_key(vol.with_array(vol.array.copy()), "w1", {"mirror": False})
    changed = vol.array.copy()
    changed[0, 0, 0] += 1
    others = [ranking_key(vol.with_array(changed), "w1", {"mirror": False}), ranking_key(vol, "w2", {"mirror": False}),
              ranking_key(vol, "w1", {"mirror": True}), ranking_key(Volume(vol.array, (1.0, 1.0, 3.0)), "w1",
                                                                     {"mirror": False})]
    assert key not in others and len(set(others)) == len(others)
    assert ranking_key(vol, "", {}) is None and cached_ranking(None) is None
    fields = {"score": 0.25, "implausible": 1, "structures": 12, "mean_confidence": 0.8, "note": ""}
    assert cached_ranking(key) is None
    keep_ranking(key, {**fields, "case_id": "x", "image": "x.nrrd"})
    assert cached_ranking(key) == fields
    (tmp_path / "rank" / f"{key}.json").write_text("{not json", encoding="utf-8")
    assert cached_ranking(key) is None                        # unreadable: ranked again


def test_a_scan_ranked_before_is_not_segmented_again(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    case = read_manifest(write_cohort("orbit-mri", 1, SEED, tmp_path / "mri", montage_cases=0),
                         need_segmentation=False)[0]
    first = rank_scans([("a", case.image)], cache=True)
    assert first[0].ranked and len(list((tmp_path / "cache" / "rank").glob("*.json"))) == 1
    monkeypatch.setattr("orbitai.orbit.predictor.segment", _no_network)     # rank's network: OrbitPredictor.run
    again = rank_scans([("b", case.image)], cache=True)           # another name, the same scan: kept
    assert [(r.case_id, r.score, r.implausible, r.structures, r.mean_confidence, r.note) for r in again] == \
        [("b", first[0].score, first[0].implausible, first[0].structures, first[0].mean_confidence, first[0].note)]
    vol = read_volume(case.image)
    write_volume(vol.with_array(vol.array + np.ones_like(vol.array)), tmp_path / "changed.nii.gz")
    for scans, options in (([("c", tmp_path / "changed.nii.gz")], {}), ([("a", case.image)], {"locate": False}),
                           ([("a", case.image)], {"cache": False})):
        with pytest.raises(Segmented):
            rank_scans(scans, **{"cache": True, **options})
