"""Issue #65 item 2-3: the rules that remove each kind of false lesion component, on small synthetic arrays."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.neuro.lesion_rules import DEFAULT_RULES, Rules, apply_rules, describe


def _brain(n: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ball of brain (intensity 100), a dark ventricle block off the midline; zero probability."""
    z, y, x = np.ogrid[:n, :n, :n]
    c = (n - 1) / 2
    brain = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= (n / 2 - 2) ** 2
    image = np.where(brain, 100.0, 0.0).astype(np.float32)
    image[20:28, 20:28, 28:32] = 10.0              # ventricle: deep, dark, 4-7 mm right of the midline (x ~ 23.5)
    return brain, image, np.zeros(brain.shape, np.float32)


def _kinds(mask, prob, image, brain):
    _, comps = describe(mask, prob, image, brain, (1.0, 1.0, 1.0))
    return {c.kind for c in comps}, comps


def test_one_voxel_ventricle_rim_is_removed_and_a_thick_periventricular_lesion_kept():
    brain, image, prob = _brain()
    rim = np.zeros(brain.shape, bool)
    rim[20:28, 20:28, 32] = True                   # one voxel thick, on the ventricle's lateral wall
    lesion = np.zeros(brain.shape, bool)
    lesion[21:26, 28:33, 27:31] = True             # 5 x 5 x 4 mm, touching the ventricle's back wall
    prob[rim | lesion] = 0.95
    kinds, comps = _kinds(rim | lesion, prob, image, brain)
    assert {c.kind for c in comps} == {"ventricle_rim"}
    out, removed = apply_rules(rim | lesion, prob, image, brain, (1.0, 1.0, 1.0), Rules(rim_thickness_mm=1.0))
    assert removed == {"ventricle_rim": 1}
    assert not out[rim].any() and out[lesion].all()


def test_juxtacortical_speck_removed_below_its_size_a_large_one_kept():
    brain, image, prob = _brain()
    speck = np.zeros(brain.shape, bool)
    speck[23:25, 23:25, 2:4] = True                # 8 mm3 at the brain's edge
    big = np.zeros(brain.shape, bool)
    big[10:16, 10:16, 5:11] = True                 # 216 mm3 touching the edge
    prob[speck | big] = 0.97
    _, comps = _kinds(speck | big, prob, image, brain)
    assert [c.kind for c in comps] == ["juxtacortical", "juxtacortical"]
    out, removed = apply_rules(speck | big, prob, image, brain, (1.0, 1.0, 1.0), Rules(juxtacortical_mm3=20.0))
    assert removed == {"juxtacortical": 1}
    assert not out[speck].any() and out[big].all()


def test_speck_rule_weighs_size_by_probability_and_keeps_a_true_small_lesion():
    brain, image, prob = _brain()
    faint = np.zeros(brain.shape, bool)
    faint[20:22, 34:36, 20:22] = True              # 8 mm3, deep white matter, unsure
    small = np.zeros(brain.shape, bool)
    small[34:37, 30:33, 20:23] = True              # 27 mm3 small true lesion, sure
    prob[faint], prob[small] = 0.7, 0.95
    kinds, _ = _kinds(faint | small, prob, image, brain)
    assert kinds == {"deep_white_matter"}
    rules = Rules(speck_mm3=30.0, speck_prob=0.8)
    out, removed = apply_rules(faint | small, prob, image, brain, (1.0, 1.0, 1.0), rules)
    assert removed == {"deep_white_matter": 1}
    assert not out[faint].any() and out[small].all()
    out, removed = apply_rules(faint | small, prob, image, brain, (1.0, 1.0, 1.0), DEFAULT_RULES)
    assert removed == {"deep_white_matter": 1}          # the chosen rules: specks < 20 mm3 of mean probability < 0.8
    assert not out[faint].any() and out[small].all()
    prob[faint] = 0.9                                   # a sure speck is kept
    out, removed = apply_rules(faint | small, prob, image, brain, (1.0, 1.0, 1.0), DEFAULT_RULES)
    assert removed == {} and out[faint].all()


def test_septum_on_the_midline_is_its_own_kind_and_inferior_components_are_infratentorial():
    brain, image, prob = _brain()
    image[20:28, 20:28, 16:20] = 10.0              # the other ventricle, left of the midline
    septum = np.zeros(brain.shape, bool)
    septum[20:28, 20:28, 23:25] = True             # between the two, on the midline (x 23.5)
    septum_img = image.copy()
    septum_img[20:28, 20:28, 20:28] = np.where(septum[20:28, 20:28, 20:28], 100.0, 10.0)
    low = np.zeros(brain.shape, bool)
    low[6:9, 22:25, 22:25] = True                  # deep, in the lowest fifth of the brain
    prob[septum | low] = 0.9
    _, comps = describe(septum | low, prob, septum_img, brain, (1.0, 1.0, 1.0))
    assert sorted(c.kind for c in comps) == ["infratentorial", "septum_midline"]
    out, removed = apply_rules(septum | low, prob, septum_img, brain, (1.0, 1.0, 1.0),
                               Rules(rim_thickness_mm=1.0, infratentorial_mm3=30.0))
    assert removed == {"septum_midline": 1, "infratentorial": 1}
    assert not out.any()


def test_nothing_fires_the_mask_is_unchanged():
    brain, image, prob = _brain()
    lesion = np.zeros(brain.shape, bool)
    lesion[30:35, 30:35, 12:17] = True
    prob[lesion] = 0.9
    out, removed = apply_rules(lesion, prob, image, brain, (1.0, 1.0, 1.0), Rules(10.0, 0.5, 1.0, 20.0, 20.0))
    assert removed == {} and np.array_equal(out, lesion)



def _fake_probability(truth: np.ndarray, speck_centre: list):
    """A stand-in for the network: the phantom's own lesions at 0.97 and a sure speck at the top of the brain."""
    from scipy import ndimage as ndi

    def prob(flair, brain, model, device="cpu", mirror=True, progress=None):
        b = np.asarray(brain.array) > 0
        p = np.where(truth > 0, 0.97, 0.0).astype(np.float32)
        z, y, x = (np.array(ndi.center_of_mass(b)) + 0.5).astype(int)
        top = int(np.nonzero(b[:, y, x])[0].max())
        speck_centre[:] = [top, y, x]
        p[top - 1:top + 2, y - 1:y + 2, x - 1:x + 2] = 0.97
        return flair.with_array(np.where(b, p, 0.0).astype(np.float32))
    return prob


@pytest.mark.slow
def test_the_pipeline_applies_the_rules_and_result_json_counts_them_by_kind(tmp_path, monkeypatch):
    from orbitai.io import write_volume
    from orbitai.neuro import lesionseg
    from orbitai.neuro.predict import NeuroOptions, lesions_data, lesions_of
    from orbitai.phantoms import brain_flair_case

    case = brain_flair_case(777065)
    path = write_volume(case.image, tmp_path / "flair.nii.gz")
    centre: list = []
    monkeypatch.setattr(lesionseg, "lesion_probability", _fake_probability(np.asarray(case.labels.array), centre))
    bundle = lesionseg.lesion_bundle(None)

    def segment(flair, brain):
        return lesionseg.segment_with(bundle, None, flair, brain)

    monkeypatch.setattr(lesionseg, "DEFAULT_RULES", Rules(juxtacortical_mm3=30.0))
    # the rules read the mask of a bundle without a learned second look (issue 79's bundle drops candidates by it)
    monkeypatch.setattr(lesionseg.SecondLook, "of_bundle", lambda *_a, **_k: None)
    found = lesions_of(path, None, None, segment, NeuroOptions())
    z, y, x = centre
    plain = lesionseg.bundle_postprocess(bundle).apply(
        lesionseg.lesion_probability(found.flair, found.extraction.mask, None)).array > 0   # without the rules
    assert plain[z, y, x] and found.lesions.array[z, y, x] == 0
    notes = [n for n in lesions_data(found, "cpu", 1.0)["notes"] if "False-positive rules" in n]
    assert len(notes) == 1 and "juxtacortical" in notes[0]
    # the mask lost only what the rules removed, the rest is the post-processed mask unchanged
    kept = found.lesions.array > 0
    assert kept.sum() < plain.sum() and not np.any(kept & ~plain)
    _, comps = describe(plain, np.where(plain, 0.97, 0.0), found.flair.array, found.extraction.mask.array > 0,
                        found.flair.spacing, found.flair.direction)
    assert sum(1 for c in comps if c.kind == "juxtacortical" and c.mm3 < 30.0) == int(notes[0].split(" removed ")[1].split()[0])
