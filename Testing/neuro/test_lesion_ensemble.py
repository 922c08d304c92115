"""A lesion bundle of several networks (scripts/make_lesion_ensemble.py): one bundle whose probability is the mean
of its members' probabilities, refused where the members are not the same network."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from orbitai.bundle import load_bundle, save_bundle
from orbitai.errors import UserError
from orbitai.models import build_model
from orbitai.neuro.lesionseg import lesion_bundle
from orbitai.neuro.lesionseg_train import LesionTrainRecipe, bundle_metadata
from orbitai.neuro.seg_configs import ARCHITECTURE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_lesion_ensemble import make


def _member(folder: Path, seed: int, channels: list[int]) -> Path:
    torch.manual_seed(seed)
    args = {"channels": channels, "num_res_units": 0}
    model = build_model(ARCHITECTURE, **args)
    meta = bundle_metadata(LesionTrainRecipe([1], [2], iterations=0, batch=1, lr=1e-3, seed=seed), args, 0.0, 1, [])
    return save_bundle(model, folder, meta).path


def test_the_ensemble_reads_the_mean_of_its_members_probabilities(tmp_path):
    a, b = _member(tmp_path / "a", 1, [4, 8]), _member(tmp_path / "b", 2, [4, 8])
    out = make([str(a), str(b)], tmp_path / "both")
    ens = lesion_bundle(str(out))                       # found and checksum-verified as a lesion bundle
    meta = ens.metadata
    assert meta["architecture"]["args"]["members"] == 2
    assert [m["weights_sha256"] for m in meta["ensemble"]] == [load_bundle(a).metadata["weights_sha256"],
                                                                load_bundle(b).metadata["weights_sha256"]]
    assert [m["name"] for m in meta["ensemble"]] == ["a", "b"]
    assert "postprocess" not in meta and "second_look" not in meta     # chosen again for the ensemble
    x = torch.randn(3, 5, 32, 32)
    with torch.no_grad():
        got = torch.softmax(ens.load_model("cpu").eval()(x), dim=1)
        want = torch.stack([torch.softmax(load_bundle(p).load_model("cpu").eval()(x), dim=1) for p in (a, b)]).mean(0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_members_of_another_shape_are_refused(tmp_path):
    a, b = _member(tmp_path / "a", 1, [4, 8]), _member(tmp_path / "b", 2, [8, 16])
    with pytest.raises(UserError, match="architecture"):
        make([str(a), str(b)], tmp_path / "both")
    with pytest.raises(UserError, match="at least two"):
        make([str(a)], tmp_path / "one")
    assert not (tmp_path / "both").exists()
