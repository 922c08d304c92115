"""The lesion-wise (blob) loss term of the lesion training (issue #65): a small lesion counts as much as a large one."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _logits(prob: np.ndarray) -> "torch.Tensor":
    p = torch.from_numpy(np.clip(prob, 1e-6, 1 - 1e-6).astype(np.float32))[None]
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], 1)   # softmax's lesion channel = prob


def _two_lesions() -> np.ndarray:
    lesions = np.zeros((64, 64), np.int64)
    lesions[10:30, 10:30] = 1          # 400 voxels
    lesions[50:52, 50:52] = 2          # 4 voxels
    return lesions


def test_a_missed_small_lesion_costs_as_much_as_a_missed_large_one():
    from monai.losses import DiceLoss

    from orbitai.neuro.lesionseg_train import blob_dice_loss

    lesions = _two_lesions()
    big_only = (lesions == 1).astype(np.float32)
    small_only = (lesions == 2).astype(np.float32)
    target = torch.from_numpy(lesions)[None]
    blob_miss_small = float(blob_dice_loss(_logits(big_only), target))
    blob_miss_big = float(blob_dice_loss(_logits(small_only), target))
    assert blob_miss_small == pytest.approx(0.5, abs=0.05) and blob_miss_big == pytest.approx(0.5, abs=0.05)
    # the overlap loss alone hardly sees the missed small lesion
    dice = DiceLoss(sigmoid=False)(torch.from_numpy(big_only)[None, None], torch.from_numpy(lesions > 0)[None, None].float())
    assert float(dice) < 0.01


def test_false_voxels_raise_it_and_slices_without_lesions_are_left_out():
    from orbitai.neuro.lesionseg_train import blob_dice_loss

    lesions = _two_lesions()
    perfect = (lesions > 0).astype(np.float32)
    speck = perfect.copy()
    speck[40:44, 5:9] = 1.0
    target = torch.from_numpy(lesions)[None]
    assert float(blob_dice_loss(_logits(perfect), target)) < 0.01
    assert float(blob_dice_loss(_logits(speck), target)) > 0.2         # 16 false voxels beside a 4-voxel lesion
    empty = torch.zeros((1, 64, 64), dtype=torch.int64)
    both = torch.cat([target, empty])
    logits = torch.cat([_logits(perfect), _logits(speck)])
    assert float(blob_dice_loss(logits, both)) < 0.01                 # the lesion-free slice adds nothing
    assert float(blob_dice_loss(_logits(speck), empty)) == 0.0


def test_it_has_a_gradient_and_training_samples_number_their_lesions():
    from orbitai.neuro.lesion_cases import Case
    from orbitai.neuro.lesionseg_train import blob_dice_loss, sample

    logits = _logits(np.full((64, 64), 0.5, np.float32)).requires_grad_(True)
    blob_dice_loss(logits, torch.from_numpy(_two_lesions())[None]).backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    ratio = np.ones((30, 150, 150), np.float32)
    label = np.zeros(ratio.shape, np.uint8)
    label[15, 60:70, 60:70] = 1
    label[15, 80:83, 80:83] = 1
    ratio[label > 0] = 1.6
    case = Case(ratio, np.ones_like(ratio), label, 0.1, np.argwhere(label > 0).astype(np.int32),
                np.argwhere(ratio > 0)[::97].astype(np.int32), np.array([0, 109]))
    _, y = sample(case, np.random.default_rng(1), p_lesion=1.0, augment=False)
    assert y.max() == 2 and (y > 0).sum() == 109


def test_hard_negative_patches_centre_on_bright_voxels_that_are_no_lesion():
    """``hard_negative``: patches that are not lesion-centred are centred on the brightest non-lesion voxels (what false
    specks are made of), at least 3 voxels from a lesion; without it they are drawn over the whole brain."""
    from orbitai.neuro.lesion_cases import bright_non_lesion, case_from_arrays
    from orbitai.neuro.lesionseg_train import sample

    rng = np.random.default_rng(0)
    ratio = np.ones((30, 150, 150), np.float32)
    label = np.zeros(ratio.shape, np.uint8)
    label[15, 20:30, 20:30] = 1
    ratio[label > 0] = 1.6
    ratio[14:17, 100:104, 100:104] = 1.5          # a bright spot that is no lesion (a vessel)
    idx = bright_non_lesion(ratio, label, rng)
    assert len(idx) and all(100 <= y < 104 and 100 <= x < 104 for _, y, x in idx)
    case = case_from_arrays({"ratio": ratio, "background": np.ones_like(ratio), "label": label,
                             "mad": np.float32(0.1)}, 1)
    centre = (slice(None), slice(40, 56), slice(40, 56))     # the patch's centre (PATCH 96, no augmentation)

    def bright_share(hard: float) -> float:
        r = np.random.default_rng(2)
        hits = 0
        for _ in range(20):
            x, y = sample(case, r, p_lesion=0.0, augment=False, hard_negative=hard)
            hits += bool(x[2][centre[1:]].max() > 2.0)          # the spot's z-score is 5 on MAD 0.1
        return hits / 20

    assert bright_share(1.0) == 1.0 and bright_share(0.0) < 0.5


def _one_square_lesion(monkeypatch, lt) -> None:
    """Every training phantom of the lesion trainer is one flat brain with a 10 x 10 lesion."""
    from orbitai.neuro import lesion_cases

    ratio = np.ones((24, 120, 120), np.float32)
    label = np.zeros(ratio.shape, np.uint8)
    label[12, 50:60, 50:60] = 1
    ratio[label > 0] = 1.6
    arrays = {"ratio": ratio.astype(np.float16), "background": np.ones_like(ratio, np.float16), "label": label,
              "mad": np.float32(0.1), "seed": np.int64(1), "disease": np.array("ms")}
    monkeypatch.setattr(lesion_cases, "make_case_arrays", lambda *a, **k: arrays)

def test_a_time_limit_writes_the_bundle_from_the_weights_reached_and_says_how_many_steps_ran(tmp_path, monkeypatch):
    from orbitai.bundle import load_bundle
    from orbitai.neuro import lesionseg_train as lt

    _one_square_lesion(monkeypatch, lt)
    recipe = lt.LesionTrainRecipe([1], [], iterations=3, batch=2, checkpoint_every=1, blob=1.0, hard_negative=0.5,
                                  time_limit_min=0.0)
    cut = lt.train(tmp_path / "cut", tmp_path / "w", recipe)
    assert load_bundle(cut).metadata["training"]["steps_run"] == 0 and load_bundle(cut).metadata["training"][
        "iterations"] == 3
    from dataclasses import replace

    full = lt.train(tmp_path / "full", tmp_path / "w", replace(recipe, time_limit_min=None))
    meta = load_bundle(full).metadata["training"]
    assert meta["steps_run"] == 3 and "blob loss" in meta["loss"] and meta["hard_negative_share"] == 0.5


def test_a_run_stopped_and_resumed_ends_with_the_weights_of_one_run(tmp_path, monkeypatch):
    """Issue 77: batches made ahead by worker processes, the steps in the channels-last layout; a run interrupted
    after its second step's checkpoint and run again ends bit for bit where one uninterrupted run ends."""
    import torch

    from orbitai.bundle import load_bundle
    from orbitai.neuro import lesionseg_train as lt

    _one_square_lesion(monkeypatch, lt)
    monkeypatch.delenv("ORBITAI_TRAIN_SPEED", raising=False)
    recipe = lt.LesionTrainRecipe([1, 2], [], iterations=4, batch=2, checkpoint_every=2, lr=1e-3)
    one = load_bundle(lt.train(tmp_path / "one", tmp_path / "w1", recipe)).load_state_dict()
    real = lt.save_checkpoint

    def stop_after_two(state, path):
        real(state, path)
        if state["step"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(lt, "save_checkpoint", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        lt.train(tmp_path / "two", tmp_path / "w2", recipe)
    monkeypatch.setattr(lt, "save_checkpoint", real)
    bundle = load_bundle(lt.train(tmp_path / "two", tmp_path / "w2", recipe))
    two = bundle.load_state_dict()
    assert bundle.metadata["training"]["steps"]["channels_last"] is True
    assert all(torch.equal(one[k], two[k]) for k in one)
