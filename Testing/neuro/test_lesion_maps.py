"""Lesion phantoms from real lesion maps on real brains (orbitai.phantoms.lesion_maps, issue #47)."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.phantoms import lesion_maps as lm


def test_splits_keep_held_out_brains_and_maps_out_of_training():
    split = lm.map_split()
    sets = [set(v) for v in split.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1:])
    assert set().union(*sets) == set(lm.map_ids()) - {lm.FINAL_CHECK_MAP}
    assert lm.FINAL_CHECK_MAP in lm.map_ids() and len(lm.map_ids()) == 28
    vols = lm.map_volumes()
    for name in ("validation", "test"):       # each held-out split spans light to heavy-ish loads
        loads = [vols[p] for p in split[name]]
        assert min(loads) < lm.LIGHT_MAX_ML and max(loads) > 20
    brains = [set(v) for v in lm.BRAINS.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(brains) for b in brains[i + 1:])
    assert set(lm.BRAINS["validation"]) | set(lm.BRAINS["test"]) == {17, 18, 19, 20}


def test_real_lesion_gains_are_measured_on_patient26():
    g = lm.real_lesion_gains()
    assert len(g) >= 10 and 1.1 < float(np.median(g)) < 1.6


def _check(img: np.ndarray, bg: np.ndarray, label: np.ndarray, t: lm.BrainTemplate) -> None:
    les = label > 0
    assert les.any() and not np.any(les & ~t.allowed) and not np.any(les & (t.tissue == 0))
    wm = float(np.median(bg[t.tissue == lm.WM]))
    assert float(np.median(img[les])) > 1.15 * wm                 # brighter than white matter, as real lesions
    far = ~ndi_dilate(les)
    assert np.allclose(img[far], bg[far], atol=1e-4)                 # nothing drawn away from the lesions
    assert float(np.abs(img - bg)[les].mean()) > 0.1


def ndi_dilate(m: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.binary_dilation(m, np.ones((3, 3, 3), bool), iterations=3)


def test_case_on_patient26s_brain_is_deterministic_and_in_tissue():
    a = lm.render_case(5, "training", brain=0, maps=(17,))
    b = lm.render_case(5, "training", brain=0, maps=(17,))
    assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3]))
    img, bg, label, grid, info = a
    _check(img, bg, label, lm.brain_template(0))
    assert info["maps"] == [17] and info["brain"] == 0 and 0.5 < info["kept_share"] <= 1.0
    assert grid.GetSize() == img.shape[::-1]


@pytest.mark.slow  # the default suite's 20-minute budget; ~18 s
def test_case_on_a_synthseg_brain_lands_in_its_white_matter():
    """A real map pulled through the registration onto another person's brain keeps most of its volume in tissue
    where lesions lie (affine + demons; an unregistered map would fall partly outside the brain)."""
    t = lm.brain_template(1)
    img, bg, label, grid, info = lm.render_case(3, "training", brain=1, maps=(4,))
    _check(img, bg, label, t)
    assert info["kept_share"] > 0.55 and 20 < info["lesion_volume_ml"] < 45
    light = lm.real_lesion_case(8, "training", load="light", brain=1, slice_mm=4.0)
    assert light.info["mode"] == "subset" and light.info["lesion_volume_ml"] < lm.LIGHT_MAX_ML
    assert light.image.same_geometry(light.labels) and light.info["slice_mm"] == 4.0
    assert set(light.info["maps"]) <= set(lm.map_split()["training"])


def _toy_template(bright: bool = True) -> lm.BrainTemplate:
    """A brain template of tissue slabs (no registration): white matter, grey matter with a bright block, ventricle."""
    import SimpleITK as sitk

    tissue = np.zeros((24, 40, 40), np.uint8)
    tissue[2:22, 2:38, 2:38] = lm.WM
    tissue[2:22, 2:12, 2:38] = lm.GM
    tissue[8:16, 20:28, 16:24] = lm.VENT
    b = np.zeros(tissue.shape, bool)
    b[10:14, 4:8, 10:20] = True
    return lm.BrainTemplate(99, tissue, None, tissue > 0, np.ones(tissue.shape, np.float32), sitk.Image(40, 40, 24,
                            sitk.sitkUInt8), sitk.Transform(3, sitk.sitkIdentity), b if bright else None)


def test_regional_brightness_varies_grey_matter_and_nothing_outside_tissue():
    """Issue 77: a normal FLAIR's regional brightness (the real FLAIR's false lesions lie in bright grey matter):
    grey matter uneven, the bright structures brighter, CSF untouched, the same generator the same gain."""
    t = _toy_template()
    g = lm._regional(t, np.random.default_rng(3))
    assert np.array_equal(g, lm._regional(t, np.random.default_rng(3)))
    assert np.all(g[t.tissue == lm.VENT] == 1) and np.all(g[t.tissue == 0] == 1)
    grey = g[(t.tissue == lm.GM) & ~t.bright]
    assert float(grey.std()) > 0.01 and 0.8 <= float(g.min()) and float(g.max()) <= 1.4
    plain = lm._render_brain(t, np.random.default_rng(5))
    varied = lm._render_brain(t, np.random.default_rng(5), np.random.default_rng(3))
    assert np.allclose(plain[t.tissue == 0], 0) and np.allclose(varied[t.tissue == 0], 0)
    assert float(np.abs(varied - plain)[t.tissue == lm.GM].mean()) > 0.005
    assert float(np.abs(varied - plain)[t.tissue == lm.VENT].max()) < 0.05     # only blur from the neighbours


def test_regional_brightness_leaves_patient26s_brain_and_the_lesions_alone():
    """Brain 0 is a real FLAIR (its own regional brightness): regional rendering changes nothing there, and a case's
    lesions are drawn from the same generator with or without it."""
    a = lm.render_case(5, "training", brain=0, maps=(17,))
    b = lm.render_case(5, "training", brain=0, maps=(17,), regional=True)
    assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3]))
    assert b[4]["regional"] and not a[4]["regional"]


def test_bad_split_or_load_is_refused():
    with pytest.raises(ValueError, match="split"):
        lm.render_case(1, "nope")
    with pytest.raises(ValueError, match="load"):
        lm.render_case(1, "training", load="huge")


def test_training_arrays_of_a_real_map_case():
    from orbitai.neuro.lesion_cases import REAL, make_case_arrays

    # seed 28 draws patient26's brain (brain 0, loaded by the test above): no registration of a SynthSeg brain,
    # ~1 s instead of ~18 s; a SynthSeg brain's case is test_case_on_a_synthseg_brain_lands_in_its_white_matter's
    a = make_case_arrays(28, REAL)
    r, bg, lab = a["ratio"].astype(np.float32), a["background"].astype(np.float32), a["label"] > 0
    assert lab.any() and r.shape == bg.shape == lab.shape
    assert 0.5 < float(np.median(r[r > 0])) < 1.5 and float(a["mad"]) > 0
    assert float(r[lab].mean()) > float(bg[lab].mean()) + 0.1       # the background is the lesion-free rendering


def test_bundle_says_what_it_was_trained_on():
    from orbitai.neuro.lesionseg_train import training_data_text

    text = training_data_text([], [], list(range(20000, 20010)), 0.0, 0.0, 0.35)
    assert "10 noise-free phantoms (seeds 20000-20009)" in text and "drawn lesions" not in text
    assert str(list(lm.map_split()["training"])) in text and "never drawn" in text
    both = training_data_text([1, 2], [3], [5], 0.5, 0.0, 0.5)
    assert "2 MS" in both and "drawn lesions" in both and "real lesion maps" in both
    assert "regional brightness" in training_data_text([], [], [5], 0.0, 0.0, 0.35, regional=True)
    assert "regional brightness" not in text


@pytest.mark.parametrize("seeds", ["x", "5:1"])
def test_bad_real_seeds_are_one_line(seeds, tmp_path, capsys):
    from orbitai.cli import main

    code = main(["neuro", "train-lesions", "--out", str(tmp_path / "b"), "--work", str(tmp_path / "w"),
                 "--ms-seeds", "", "--nmosd-seeds", "", "--real-seeds", seeds])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--real-seeds" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()
