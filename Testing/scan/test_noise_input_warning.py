"""A call on an image that is pure noise where its segmentation lies is said to mean nothing: ``tao predict`` and
``ivgc predict`` add a warning (result.json and the command line) when neighbouring voxels around the segmented
structures do not correlate; a phantom scan gets none."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import read_volume, write_volume
from orbitai.scan.noise import MIN_NEIGHBOUR_CORRELATION, neighbour_correlation, noise_warning

SEED = 777049  # never used for training cohorts


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[Path, Path, Path]]:
    """task -> (phantom image, its segmentation, Gaussian noise of the image's mean and SD on its grid)."""
    from orbitai.cohort.manifest import read_manifest
    from orbitai.phantoms import write_cohort

    root = tmp_path_factory.mktemp("noise")
    out = {}
    for task in ("tao", "ivgc"):
        case = read_manifest(write_cohort(task, 1, SEED, root / task, montage_cases=0), need_segmentation=True)[0]
        image = read_volume(case.image)
        a = image.array.astype(np.float32)
        noise = np.random.default_rng(SEED).normal(a.mean(), a.std(), a.shape).astype(np.float32)
        out[task] = (Path(case.image), Path(case.segmentation),
                     write_volume(image.with_array(noise), root / f"{task}_noise.nrrd"))
    return out


@pytest.mark.parametrize("task", ["tao", "ivgc"])
def test_neighbour_correlation_separates_a_phantom_from_noise(cases, task):
    from orbitai.cohort.manifest import read_labels

    image, seg, noise = cases[task]
    labels = read_labels(seg).array
    assert neighbour_correlation(read_volume(image).array, labels != 0) > 0.8
    assert abs(neighbour_correlation(read_volume(noise).array, labels != 0)) < 0.1
    assert noise_warning(read_volume(image).array, labels) is None
    assert "looks like noise" in noise_warning(read_volume(noise).array, labels, "MRI")


def test_no_warning_without_labels_on_the_grid():
    a = np.random.default_rng(SEED).normal(size=(8, 8, 8))
    assert noise_warning(a, np.zeros((8, 8, 8), np.uint8)) is None
    assert noise_warning(a, np.ones((4, 8, 8), np.uint8)) is None
    assert noise_warning(a, np.ones((8, 8, 8), np.uint8)) is not None
    assert noise_warning(np.cumsum(a, axis=2), np.ones((8, 8, 8), np.uint8)) is None   # structured along x
    assert MIN_NEIGHBOUR_CORRELATION < 0.5


def predict(task: str, image: Path, seg: Path, out: Path) -> list[str]:
    extra = ["--no-maps"] if task == "tao" else ["--no-gradcam"]
    assert main([task, "predict", str(image), "--segmentation", str(seg), "--out", str(out), "--device", "cpu",
                 *extra]) == 0
    return json.loads((out / "result.json").read_text())["warnings"]


@pytest.mark.parametrize("task", ["tao", pytest.param("ivgc", marks=pytest.mark.slow)])   # radiomics of noise: ~30 s
def test_predict_on_noise_warns_and_on_a_phantom_does_not(cases, task, tmp_path, capsys):
    image, seg, noise = cases[task]
    warned = [w for w in predict(task, noise, seg, tmp_path / "noise") if "looks like noise" in w]
    assert len(warned) == 1
    assert f"warning: {warned[0]}" in capsys.readouterr().out
    assert not [w for w in predict(task, image, seg, tmp_path / "phantom") if "looks like noise" in w]
    assert "looks like noise" not in capsys.readouterr().out
