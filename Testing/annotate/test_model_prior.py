"""The model prior: the network's probability of a structure on the image, never used on another image."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.annotate import AnnotationError, dice
from orbitai.app.annotation.priors import PriorCache
from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS
from orbitai.orbit.prior import PriorUnavailable, compute_prior, image_key, split_side


@pytest.fixture(scope="module")
def orbit():
    from orbitai.phantoms import orbit_case

    case = orbit_case(3, modality="ct", size=(160, 160, 48), spacing=(0.6, 0.6, 1.0), oblique=False)
    return case.image, case.labels


@pytest.fixture(scope="module")
def prior(orbit):
    return compute_prior(orbit[0], mirror=False)


def test_prior_gives_each_structure_on_its_side(orbit, prior):
    image, labels = orbit
    assert prior.midline_x is not None and prior.bundle == "orbit_svnet_ct_demo"
    for name in ("eyeball_left", "eyeball_right", "superior_rectus_muscle_left", "lateral_rectus_muscle_right"):
        p = prior.probability(name, image)
        assert p.shape == image.shape and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
        truth = labels.array == next(v for v, lab in ORBIT_LABELS.items() if lab.name == name)
        assert dice(p > 0.5, truth) > 0.6, name
    # a side keeps its own half: the left eyeball's probability is zero over the right eyeball
    right_eye = labels.array == next(v for v, lab in ORBIT_LABELS.items() if lab.name == "eyeball_right")
    assert prior.probability("eyeball_left", image)[right_eye].max() == 0.0
    # start from the model: the mask above one half, inside the editable area only
    editable = np.zeros(image.shape, bool)
    editable[: image.shape[0] // 2] = True
    m = prior.start_mask("eyeball_left", image, editable)
    assert m.any() and not m[image.shape[0] // 2:].any()


def test_a_prior_is_never_used_on_another_image_or_geometry(orbit, prior):
    image, _ = orbit
    moved = Volume(image.array, image.spacing, tuple(np.add(image.origin, (0.5, 0, 0))), image.direction)
    changed = image.with_array(image.array.copy())
    changed.array[10, 10, 10] += 1
    for other in (moved, changed, Volume(image.array, (0.61, 0.6, 1.0), image.origin, image.direction)):
        assert image_key(other) != prior.key
        with pytest.raises(AnnotationError, match="another image or geometry"):
            prior.probability("eyeball_left", other)
    cache = PriorCache()
    cache._items.put((prior.key, None), prior)
    assert cache.get(image) is prior and cache.get(moved) is None and cache.get(changed) is None


def test_missing_bundle_or_structure_falls_back_with_a_message(orbit, prior):
    image, _ = orbit
    with pytest.raises(PriorUnavailable, match="strokes alone"):
        compute_prior(image, bundle="no_such_bundle_here")
    with pytest.raises(PriorUnavailable, match="has no 'levator_palpebrae_superioris' class"):
        prior.probability("levator_palpebrae_superioris_left", image)
    assert split_side("optic_nerve_right") == ("optic_nerve", "right") and split_side("eyeball") == ("eyeball", None)
