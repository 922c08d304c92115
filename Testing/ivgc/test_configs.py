"""IVGC deep-learning configurations (paper 001's recipe, phantom demos) and a smoke training run."""
import csv
from dataclasses import replace

import numpy as np
import pytest
import torch

from orbitai.training.checkpoint import load_checkpoint
from orbitai.classify.train import fit, predict_proba
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import ConfigError
from orbitai.ivgc.configs import CONFIGS, DEMO_EPOCHS, MODELS, N_CLINICAL, get_config
from orbitai.ivgc.data import TARGET_SHAPE, ImageAugment, IvgcImageDataset
from orbitai.models import build_model, count_parameters
from orbitai.ivgc.nets import RDINet, ResNet50Classifier
from orbitai.phantoms.cohort import write_cohort

MR_LR = "mrlr"


def test_paper_and_demo_recipes():
    assert sorted(CONFIGS) == sorted(f"{kind}-{m.replace('_', '-')}" for kind in ("paper", "demo") for m in MODELS)
    for name, cfg in CONFIGS.items():
        s = cfg.settings
        assert (s.lr, s.lr_after, s.batch_size) == (1e-3, 1e-3, 16) and s.decay_epoch == s.epochs
        assert s.conv_weight_decay == s.fc_weight_decay == 0.0
        assert cfg.folds == 5 and cfg.test_fraction == 0.2 and cfg.shape == TARGET_SHAPE == (32, 128, 128)
        assert cfg.roi_only
        assert cfg.augment.noise_std > 0 and cfg.augment.rotate_deg > 0 and cfg.augment.zoom != (1.0, 1.0)
        if name.startswith("paper"):
            assert s.epochs == 100 and cfg.width == 1.0
        else:
            assert s.epochs == DEMO_EPOCHS == 50 and cfg.width == 1 / 8
    assert get_config("paper_rdinet_clinical") is CONFIGS["paper-rdinet-clinical"]
    assert get_config("Demo-ResNet50").model == "resnet50"
    with pytest.raises(ConfigError, match="Unknown IVGC configuration"):
        get_config("paper-vgg")


def test_configs_build_their_networks():
    net = get_config("paper-resnet50").build()
    assert isinstance(net, ResNet50Classifier) and count_parameters(net) == 46_163_010
    clin = get_config("demo-rdinet-clinical")
    arch = clin.architecture(12)
    assert arch == {"name": "ivgc_rdinet", "args": {"n_radiomics": 12, "n_clinical": N_CLINICAL, "width": 0.125,
                                                    "dim": 64}}
    built = build_model(arch["name"], **arch["args"])        # what a bundle rebuilds from its metadata
    assert isinstance(built, RDINet) and built.input_names == ("image", "radiomics", "clinical")
    assert get_config("demo-rdinet").build(12).input_names == ("image", "radiomics")
    with pytest.raises(ConfigError, match="radiomics"):
        get_config("demo-rdinet").build()


@pytest.fixture
def one_thread():
    """One torch thread for the tiny run: on two cores shared with other work, two threads made a
    forward/backward pass of this size about 20x slower (OpenMP threads waiting on each other; measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    return read_manifest(write_cohort("ivgc", 8, seed=21, out_dir=tmp_path_factory.mktemp("ivgc8"), montage_cases=0))


@pytest.mark.parametrize("name", ["demo-rdinet-clinical", "demo-resnet50"])
def test_demo_trains_two_epochs(tiny_cohort, tmp_path, name, one_thread):
    cfg = get_config(name)
    rng = np.random.default_rng(0)
    vectors = {}
    if cfg.uses_radiomics:
        vectors["radiomics"] = rng.normal(size=(8, 5))
    if cfg.uses_clinical:
        vectors["clinical"] = IVGC_CLINICAL.parse_rows([c.row for c in tiny_cohort])
    # a quarter of the paper's input size per axis keeps the default suite fast (the networks pool globally);
    # the full 128 x 128 x 32 input is timed by the demo-epoch measurement in orbitai.ivgc.configs
    ds = IvgcImageDataset.from_cases(tiny_cohort, MR_LR, vectors=vectors or None, shape=(8, 32, 32),
                                     roi_only=cfg.roi_only)
    torch.manual_seed(0)
    net = cfg.build(5)
    if cfg.uses_radiomics:
        net.set_medical_scaling(np.concatenate(list(vectors.values()), 1))
    settings = replace(cfg.settings, epochs=2, batch_size=4)
    summary = fit(net, ds, settings, tmp_path / "work", augment=ImageAugment(cfg.augment), seed=0)
    rows = list(csv.DictReader((tmp_path / "work" / "epochs.csv").open()))
    assert summary["finished"] and [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)
    state = load_checkpoint(tmp_path / "work" / "checkpoint.pt")
    assert state is not None and state["epoch"] == 1
    assert set(state["model"]) == set(net.state_dict())
    p = predict_proba(net, ds, batch_size=4)
    assert p.shape == (8, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
