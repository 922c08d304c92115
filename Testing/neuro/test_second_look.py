"""Issue 79: the learned second look at each lesion candidate (orbitai.neuro.second_look, second_look_fit)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from orbitai.io import Volume
from orbitai.neuro import second_look_fit as fit
from orbitai.neuro.lesion_rules import describe
from orbitai.neuro.lesionseg_eval import PhantomCase
from orbitai.neuro.second_look import (DROPPED_KEY, FEATURES, SecondLook, dropped_note, find_candidates,
                                       feature_rows)
from Testing.neuro.test_lesionseg import untrained_bundle  # noqa: F401  (the module's bundle fixture)


def _brain(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.ogrid[:n, :n, :n]
    c = (n - 1) / 2
    brain = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= (n / 2 - 1) ** 2
    return brain, np.where(brain, 100.0, 0.0).astype(np.float32)


def test_a_candidate_is_described_by_its_contrast_to_its_own_shell_its_core_and_where_it_lies():
    brain, image = _brain()
    blob = np.zeros(brain.shape, bool)
    blob[18:22, 18:22, 18:24] = True
    image[blob] = 180.0
    image[16:18, 16:24, 16:26] = 60.0                  # a darker band in its 2 mm shell (above it)
    prob = np.where(blob, 0.4, 0.0).astype(np.float32)
    prob[19:21, 19:21, 20:22] = 0.9                    # 8 confident voxels of 96
    _, comps = describe(blob, prob, image, brain, (1.0, 1.0, 1.0))
    (c,) = comps
    shell = np.zeros(brain.shape, bool)
    shell[16:24, 16:24, 16:26] = True
    shell &= ~blob
    # the shell within 2 mm (exact distance): reproduced with scipy's EDT on the whole grid
    from scipy import ndimage as ndi
    ring = (ndi.distance_transform_edt(~blob) <= 2.0) & ~blob & brain
    assert c.ring_contrast == pytest.approx(180.0 / image[ring].mean(), rel=1e-5)
    assert c.ring_contrast > c.contrast                # the darker band lowers its background, not the brain's
    assert c.peak_prob == pytest.approx(0.9) and c.core_fraction == pytest.approx(8 / 96)
    assert c.extent_mm == pytest.approx(6.0) and 0.4 < c.height < 0.6
    rows = feature_rows(comps, 1.0)
    assert rows.shape == (1, len(FEATURES)) and rows[0, FEATURES.index("log_mm3")] == pytest.approx(np.log10(96))


def test_a_kept_candidate_is_drawn_at_the_bundles_threshold_a_dropped_one_not_at_all():
    brain, image = _brain()
    prob = np.zeros(brain.shape, np.float32)
    prob[10:14, 18:22, 18:22] = 0.35                   # faint candidate, no voxel at the voxel threshold
    prob[24:30, 18:24, 18:24] = 0.35
    prob[26:28, 20:22, 20:22] = 0.8                    # its core
    prob[18:20, 5:7, 18:20] = 0.6                      # to be dropped
    vol = Volume(image)
    cands = find_candidates(vol.with_array(prob), vol, brain, 0.3)
    assert len(cands.comps) == 3
    look = SecondLook(None, 0.3, 0.5, 0.65)
    keep = np.array([c.voxels != 8 for c in cands.comps])
    mask = look.mask(vol.with_array(prob), cands, keep)
    assert mask[10:14, 18:22, 18:22].all()             # kept whole: no voxel reaches 0.65
    assert mask[26:28, 20:22, 20:22].all() and mask.sum() == 64 + 8
    assert not mask[18:20, 5:7, 18:20].any()


def _cases():
    """Six light cases: true lesions bright with a confident core; false candidates faint specks on the rim."""
    rng = np.random.default_rng(0)
    out, probs = [], []
    for k in range(6):
        brain, image = _brain()
        image = np.where(brain, image + rng.normal(0, 4, image.shape), 0).astype(np.float32)
        truth = np.zeros(brain.shape, np.uint8)
        prob = np.zeros(brain.shape, np.float32)
        for j in range(3):
            z, y = 8 + 8 * j, 12 + k
            truth[z:z + 3, y:y + 3, 18:21] = 1
            image[z:z + 3, y:y + 3, 18:21] = 170.0 + rng.uniform(0, 20)
            prob[z:z + 3, y:y + 3, 18:21] = 0.9
        for j in range(3):                             # false: faint, 4 voxels, at the brain's edge
            z = 10 + 7 * j
            prob[z:z + 2, 20:22, 2 + (k % 2)] = 0.45
            image[z:z + 2, 20:22, 2 + (k % 2)] = 115.0
        vol = Volume(image, (1.6, 1.6, 1.6))            # a brain of 137 mL (lesionseg refuses < 100 mL)
        out.append(PhantomCase(f"light {k}", "light", vol, vol.with_array(brain.astype(np.uint8)),
                               vol.with_array(truth)))
        probs.append(vol.with_array(prob))
    return tuple(out), probs


@pytest.fixture()
def fitting(untrained_bundle, tmp_path, monkeypatch):  # noqa: F811
    """The fit on :func:`_cases` (their probabilities given, 3 folds) into a copy of the untrained bundle: the cases
    and the copy's path."""
    cases, probs = _cases()
    by_name = {c.name: p for c, p in zip(cases, probs)}
    monkeypatch.setattr(fit, "fit_cases", lambda regional=False: cases)
    monkeypatch.setattr(fit, "cached_probability", lambda case, bundle, model: by_name[case.name])
    monkeypatch.setattr(fit, "FOLDS", 3)
    path = tmp_path / "b"
    shutil.copytree(untrained_bundle, path)
    return cases, path


def test_fit_chooses_thresholds_out_of_fold_writes_the_forest_into_the_bundle_and_segment_uses_it(fitting):
    from orbitai.bundle import load_bundle
    from orbitai.cli import main
    from orbitai.neuro import lesionseg

    cases, path = fitting
    assert main(["neuro", "second-look", "--bundle", str(path)]) == 0
    b = load_bundle(path)
    b.verify()                                         # the weights are those of before
    meta = b.metadata["second_look"]
    assert meta["validation_out_of_fold"]["all_lesion_f1"] == 1.0 and meta["true_candidates"] == 18
    assert meta["candidates"] == 36 and "never the test split" in meta["fitted_on"]
    look = SecondLook.of_bundle(b)
    assert look is not None and look.voxel_threshold == 0.5
    # segment_with reads the second look: the mask is the kept candidates of the network's own probability
    case = cases[0]
    prob = lesionseg.lesion_probability(case.image, case.brain, b.load_model("cpu"))
    want, dropped = look.apply(prob, case.image, case.brain.array > 0)
    got = lesionseg.segment_lesions(case.image, case.brain, bundle=str(path), device="cpu")
    assert np.array_equal(got.array > 0, want)
    assert DROPPED_KEY in got.metadata
    assert (dropped_note(got) != []) == bool(dropped)
    # an explicit threshold is the single-threshold path (no second look)
    plain = lesionseg.segment_lesions(case.image, case.brain, bundle=str(path), device="cpu", threshold=1.01)
    assert plain.array.sum() == 0 and DROPPED_KEY not in plain.metadata


def test_a_tampered_second_look_file_is_refused_by_its_checksum(fitting):
    from orbitai.bundle import load_bundle
    from orbitai.errors import BundleError

    _, path = fitting
    fit.fit_second_look(str(path))
    with open(path / "second_look.skops", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="checksum"):
        SecondLook.of_bundle(load_bundle(path))


def test_the_tally_scores_a_keep_choice_as_lesion_metrics_scores_its_mask():
    """The fit scores each keep threshold from per-candidate tallies; they equal `lesion_metrics` of the drawn mask
    where no candidate's core splits (here: every subset of the candidates)."""
    from orbitai.metrics.segmentation import lesion_metrics

    cases, probs = _cases()
    case, prob = cases[1], probs[1]
    prob = prob.with_array(np.where(prob.array >= 0.9, 0.5, prob.array))     # true lesions: no voxel at 0.65
    prob.array[9:10, 14:15, 18:19] = 0.8                                      # one of them with a one-voxel core
    cands = find_candidates(prob, case.image, case.brain.array > 0, 0.3)
    tally = fit.Tally.of(cands, prob, case.truth.array > 0, 0.65)
    look = SecondLook(None, 0.3, 0.5, 0.65)
    rng = np.random.default_rng(3)
    for _ in range(8):
        keep = rng.random(len(cands.comps)) < 0.5
        want = lesion_metrics(look.mask(prob, cands, keep), case.truth.array, case.image.spacing)
        got = tally.figures(keep)
        for k in ("dice", "lesion_f1", "avd_ml"):
            assert got[k] == pytest.approx(want[k]), (k, keep)


class _PeakSplit:
    """A stand-in forest with one split on the candidate's peak probability, as a fitted tree may have near 1.0."""

    classes_ = [0, 1]

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        keep = rows[:, FEATURES.index("peak_prob")] >= 0.99999
        return np.stack([~keep, keep], axis=1).astype(float)


def test_the_second_look_reads_a_probability_as_it_was_fitted_in_float16_or_float32_alike():
    brain, image = _brain()
    prob = np.zeros(brain.shape, np.float32)
    prob[24:30, 18:24, 18:24] = 0.9
    prob[26:28, 20:22, 20:22] = 0.99997             # float16 holds it as 1.0: the split on the peak sees 1.0
    vol = Volume(image)
    look = SecondLook(_PeakSplit(), 0.3, 0.5, 0.65)
    fresh, dropped_fresh = look.apply(vol.with_array(prob), vol, brain)
    cached, dropped_cached = look.apply(vol.with_array(prob.astype(np.float16)), vol, brain)
    assert np.array_equal(fresh, cached) and len(dropped_fresh) == len(dropped_cached) == 0
    assert fresh.sum() == 6 * 6 * 6
