"""The SynthSeg heads as orbit templates (issue #46): the atlas's muscles and nerves carried into a real head."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.errors import ConfigError
from orbitai.orbit.anatomy import RANGES
from orbitai.phantoms import atlas as A
from orbitai.phantoms.head_orbits import head_orbit_model, structure_volumes, target_globe_cm3
from orbitai.phantoms.heads import template_path
from orbitai.phantoms.orbit import orbit_case

HEAD = 3


@pytest.fixture(scope="module")
def model() -> A.OrbitModel:
    return head_orbit_model(HEAD)


@pytest.mark.slow  # the default suite's 20-minute budget; ~30 s: a training-data quality check
def test_every_structure_is_carried_in_with_volumes_in_the_adult_ranges(model):
    vols = structure_volumes(model)
    lo, hi = RANGES["eyeball"]
    assert all(lo <= vols[str(v)] <= hi for v in (1, 2))
    lo, hi = RANGES["optic_nerve"]
    assert all(lo <= vols[str(v)] <= hi for v in (3, 4))
    lo, hi = RANGES["rectus"]
    assert all(lo <= vols[str(v)] <= hi for v in range(5, 13))
    assert all(vols[str(v)] > 0.1 for v in range(13, 17))        # obliques and levator


@pytest.mark.slow  # the head's orbit model (`model`): ~60 s of registration, a training-data check
def test_the_globes_are_the_heads_own_scaled_to_the_real_distribution_and_each_side_its_own(model):
    """The eyeballs are the head's labelled globes (where they lie: not the atlas's), scaled to the TCIA quantile of
    their rank; every left structure lies on the patient's left (LPS x above the midline), every right one on the
    right."""
    assert head_orbit_model(HEAD, False) is model and head_orbit_model(HEAD, own_globes=False) is model   # built once
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(template_path(HEAD))))
    own = float((lab == 506).sum()) / 2000.0                          # 1 mm voxels -> cm^3 per eye
    vols = structure_volumes(model)
    target = target_globe_cm3(HEAD)
    assert 7.0 <= target <= 10.2 and target > own
    assert vols["1"] == pytest.approx(target, rel=0.08) and vols["2"] == pytest.approx(target, rel=0.08)
    centre = np.argwhere(lab == 506).mean(0)[::-1]
    where = sitk.ReadImage(str(template_path(HEAD))).TransformContinuousIndexToPhysicalPoint(centre.tolist())
    mid = 0.5 * (model.globe_centre["left"] + model.globe_centre["right"])
    assert np.linalg.norm(mid - np.array(where)) < 2.0
    gt = A.GT_LUT[model.fine]
    x = model.fine_lo[0] + np.arange(gt.shape[2]) * A.FINE_SP
    mid = 0.5 * (model.globe_centre["left"][0] + model.globe_centre["right"][0])
    for v in range(1, 17):
        xs = x[np.nonzero(gt == v)[2]]
        assert (xs > mid).mean() > 0.99 if v % 2 == 1 else (xs < mid).mean() > 0.99, v


@pytest.mark.slow  # the head's orbit model (`model`): ~60 s of registration, a training-data check
def test_a_case_drawn_from_the_head_holds_every_structure(model):
    case = orbit_case(46, "t1", template=HEAD, spacing=(0.8, 0.8, 0.8), size=(160, 160, 64))
    assert case.info["template"] == HEAD
    present = set(np.unique(case.labels.array)) - {0}
    assert set(range(1, 13)) <= present


def test_the_synthetic_pool_refuses_held_out_heads():
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.synth import PoolRecipe, SynthPool

    with pytest.raises(ConfigError, match="held-out"):
        SynthPool.build(get_config("svnet-demo-mri-heads").spec, PoolRecipe(anatomies=1, templates=[0, 17]))


@pytest.mark.slow  # the head's orbit model (`model`): ~60 s of registration, a training-data check
def test_the_synthetic_pool_draws_its_heads_from_the_templates_in_turn(model):
    """A pool over the atlas and a head: the second anatomy is the head's (another globe volume), and both hold
    every class the MRI model learns."""
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.synth import PoolRecipe, SynthPool

    spec = get_config("svnet-demo-mri-heads").spec
    pool = SynthPool.build(spec, PoolRecipe(anatomies=2, templates=[0, HEAD], tao_share=0.0, size=(120, 120, 60)))
    eyes = [int((h.classes == 1).sum()) for h in pool.heads]
    assert all(set(range(1, spec.n_classes + 1)) <= set(np.unique(h.classes)) for h in pool.heads)
    assert abs(eyes[0] - eyes[1]) > 0.05 * eyes[0]


@pytest.mark.slow  # the head's orbit model (`model`): ~60 s of registration, a training-data check
def test_a_whole_head_ct_holds_fat_around_its_globes_and_every_orbit_structure(model):
    """`whole_head_case`: the head's whole 1 mm field of view on CT, with the orbit contents carried in; the SynthSeg
    labels alone would leave soft tissue (+50 HU) around the globe, where a real orbit holds fat."""
    from scipy import ndimage as ndi

    from orbitai.phantoms.orbit import whole_head_case

    case = whole_head_case(HEAD, "ct")
    head = sitk.ReadImage(str(template_path(HEAD)))
    assert sorted(case.image.shape) == sorted(head.GetSize()) and case.image.spacing == pytest.approx((1, 1, 1))
    img, lab = case.image.array.astype(np.float32), case.labels.array
    assert set(range(1, 13)) <= set(np.unique(lab).tolist())
    for v in (1, 2):
        eye = lab == v
        shell = ndi.binary_dilation(eye, iterations=3) & ~eye & (lab == 0)
        assert -30 < float(np.median(img[eye])) < 40                 # vitreous
        assert float(np.median(img[shell])) < -40                      # orbital fat, not soft tissue
    assert float(np.median(img[lab == 0])) < -500                      # most of the field of view is air


def test_a_heads_own_globes_are_its_label_and_the_scaled_ones_its_target():
    """``own_globes``: each eyeball is the head's label 506 as drawn (holes filled), not scaled to the expert volumes."""
    from scipy import ndimage as ndi

    from orbitai.phantoms.head_orbits import head_codes

    label = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(template_path(HEAD))), "LPS")) == 506
    eyes = np.isin(sitk.GetArrayFromImage(head_codes(HEAD, own_globes=True)), (1, 2))
    assert not (eyes & ~ndi.binary_fill_holes(label)).any()             # nothing grown
    assert (label & ~eyes).sum() < 0.01 * label.sum()                    # only stray pieces of the label left out
    scaled = sitk.GetArrayFromImage(head_codes(HEAD))
    for value in (1, 2):
        assert (scaled == value).sum() / 1000 == pytest.approx(target_globe_cm3(HEAD), rel=0.05)


def test_the_cached_head_builders_hold_one_entry_however_a_call_is_spelled():
    """``head_labels(3)`` and ``head_labels(3, 2)`` are one read (and ``head_orbit_model``'s calls one build: the slow
    globes test above): keyed on the arguments as given, they were two, and a head's orbit model was built twice."""
    from orbitai.phantoms.heads import head_labels

    first = head_labels(HEAD)
    assert head_labels(HEAD, 2) is first and head_labels(HEAD, step=2) is first and head_labels(float(HEAD)) is first
