"""The trainer's dataset hook: a multi-input model (image + radiomics + clinical vectors) learns
from named in-memory samples; a file dataset streams 3D volumes from disk one case at a time and
gives the same weights whatever the number of loader workers; mismatches fail with one clear line."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from orbitai.classify import (TABULAR_KINDS, ArrayDataset, FileDataset, FusionNet, TrainSettings, fit, image_encoder,
                              predict_proba, read_image, tabular_classifier, vector_encoder)
from orbitai.errors import InputError

TINY = dict(widths=(4, 8, 8, 16), layers=(1, 1, 1, 1))


def _ivgc_like(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Image, radiomics and clinical inputs; each carries part of the class signal."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    image = rng.normal(0, 1, (n, 1, 8, 12, 12)).astype(np.float32)
    image[y == 1, :, 2:6, 3:9, 3:9] += 1.0
    radiomics = rng.normal(0, 1, (n, 20)).astype(np.float32)
    radiomics[:, :3] += 1.5 * y[:, None]
    clinical = rng.normal(0, 1, (n, 4)).astype(np.float32)
    clinical[:, 0] -= 1.0 * y
    return {"image": image, "radiomics": radiomics, "clinical": clinical}, y


def _fusion(seed: int = 0, vectors: dict[str, int] | None = None) -> FusionNet:
    torch.manual_seed(seed)
    encoders = {"image": image_encoder(3, 1, **TINY)}
    for name, n in (vectors or {"radiomics": 20, "clinical": 4}).items():
        encoders[name] = vector_encoder(n, (16, 16, 16))
    return FusionNet(encoders, hidden=16)


def _noise(sample: dict, rng: np.random.Generator) -> dict:
    return {**sample, "image": sample["image"] + rng.normal(0, 0.1, sample["image"].shape).astype(np.float32)}


def test_multi_input_model_learns(tmp_path):
    inputs, y = _ivgc_like(48, seed=0)
    model = _fusion()
    assert model.input_names == ("image", "radiomics", "clinical")
    s = TrainSettings(epochs=8, lr=3e-3, lr_after=1e-3, decay_epoch=6, batch_size=16,
                      conv_weight_decay=0.0, fc_weight_decay=0.0)
    summary = fit(model, ArrayDataset(inputs, y), s, tmp_path, val=ArrayDataset(*_ivgc_like(16, seed=1)),
                  augment=_noise, seed=2)
    rows = list(csv.DictReader((tmp_path / "epochs.csv").open()))
    losses = [float(r["train_loss"]) for r in rows]
    assert summary["finished"] and len(rows) == 8
    assert losses[-1] < 0.5 * losses[0], losses
    test_inputs, yt = _ivgc_like(32, seed=5)
    p = predict_proba(model, ArrayDataset(test_inputs))
    assert p.shape == (32, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert float(np.mean(p.argmax(1) == yt)) >= 0.85


def _write_cohort(folder: Path, n: int) -> tuple[dict[str, list[Path]], np.ndarray]:
    rng = np.random.default_rng(3)
    y = np.arange(n) % 2
    files: dict[str, list[Path]] = {"flair": [], "lesions": []}
    for i in range(n):
        flair = rng.normal(0, 1, (10, 12, 12)).astype(np.float32)
        lesions = np.zeros_like(flair)
        lesions[2:5, 3:6, 3:6] = 1.0
        if y[i]:
            lesions[6:9, 6:10, 6:10] = 1.0
            flair += 0.8 * lesions
        for name, arr, ext in (("flair", flair, ".nrrd"), ("lesions", lesions, ".nii.gz")):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing((2.0, 2.0, 2.0))
            path = folder / f"case{i:02d}_{name}{ext}"
            sitk.WriteImage(img, str(path))
            files[name].append(path)
    return files, y


def test_file_dataset_streams_from_disk(tmp_path):
    files, y = _write_cohort(tmp_path, 8)
    reads: list[Path] = []

    def counting_reader(path: Path) -> np.ndarray:
        reads.append(path)
        return read_image(path)

    clinical = np.random.default_rng(4).normal(0, 1, (8, 3)).astype(np.float32)
    ds = FileDataset(files, y, vectors={"clinical": clinical}, reader=counting_reader,
                     case_ids=[f"case{i:02d}" for i in range(8)])
    assert reads == [] and len(ds) == 8                    # construction reads nothing
    sample = ds[5]
    assert reads == [files["flair"][5], files["lesions"][5]]   # one case, on request
    assert sample["flair"].shape == (1, 10, 12, 12) and sample["flair"].dtype == np.float32
    assert np.array_equal(sample["clinical"], clinical[5]) and sample["label"] == 1
    assert sample["case_id"] == "case05"

    def model() -> FusionNet:
        torch.manual_seed(0)
        return FusionNet({"flair": image_encoder(3, 1, **TINY), "lesions": image_encoder(3, 1, **TINY),
                          "clinical": vector_encoder(3, (8,))}, hidden=8)

    s = TrainSettings(epochs=2, lr=1e-3, lr_after=1e-3, decay_epoch=2, batch_size=4)
    reads.clear()
    one = model()
    fit(one, ds, s, tmp_path / "w0", val=ds, seed=1)
    # each epoch streams every case once for training and once for validation (+1 peek at the start)
    assert len(reads) == 2 * (2 * 2 * 8) + 2
    two = model()
    fit(two, FileDataset(files, y, vectors={"clinical": clinical}), s, tmp_path / "w2", val=ds, seed=1,
        num_workers=2)
    for (k, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        assert torch.equal(a, b), k
    assert (tmp_path / "w2" / "checkpoint.pt").exists()


def test_mismatches_fail_with_one_line(tmp_path):
    inputs, y = _ivgc_like(8, seed=0)
    s = TrainSettings(epochs=1, lr=1e-3, lr_after=1e-3, decay_epoch=1, batch_size=4)
    expected = r"takes inputs \['image', 'radiomics', 'clinical'\].*missing: \['clinical'\]"
    with pytest.raises(InputError, match=expected) as exc:
        fit(_fusion(), ArrayDataset({"image": inputs["image"], "radiomics": inputs["radiomics"]}, y), s, tmp_path)
    with pytest.raises(InputError, match="no labels"):
        fit(_fusion(), ArrayDataset(inputs), s, tmp_path)
    with pytest.raises(InputError, match="different numbers of cases"):
        ArrayDataset({"image": inputs["image"], "clinical": inputs["clinical"][:5]}, y)
    with pytest.raises(InputError, match="Missing input file .*nope.nrrd"):
        FileDataset({"flair": [tmp_path / "nope.nrrd"]}, [0])
    assert "\n" not in str(exc.value)


def test_tabular_classifiers_learn_radiomics_vectors():
    inputs, y = _ivgc_like(80, seed=0)
    test_inputs, yt = _ivgc_like(40, seed=1)
    for kind in TABULAR_KINDS:
        model = tabular_classifier(kind, seed=0).fit(inputs["radiomics"], y)
        p = model.predict_proba(test_inputs["radiomics"])
        assert p.shape == (40, 2), kind
        assert float(np.mean(p.argmax(1) == yt)) >= 0.8, kind
    with pytest.raises(InputError, match="Unknown tabular classifier 'xgb'"):
        tabular_classifier("xgb")
