"""TAO preprocessing on real phantoms: per-eye crops around the orbit, geometry round trip,
mirroring, the paper's augmentation, and clear errors for unusable input."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cohort.splits import split_by_case
from orbitai.io import Volume, VolumeError
from orbitai.labels import values_for
from orbitai.orbit.rules import OrbitNotFoundError
from orbitai.phantoms import orbit_case
from orbitai.tao.data import augment, centre_crop
from orbitai.tao.preprocess import preprocess_eyes


@pytest.fixture(scope="module")
def case():
    return orbit_case(5, "t2", tao="active", orientation="axial")


@pytest.fixture(scope="module")
def crops(case):
    return preprocess_eyes(case.image, case.labels)


def test_two_eyes_paper_shape_and_zscore(crops):
    assert [c.side for c in crops] == ["right", "left"]
    for c in crops:
        a = c.canonical()
        assert a.shape == (5, 164, 164) and a.dtype == np.float32
        assert abs(a.mean()) < 1e-4 and abs(a.std() - 1) < 1e-3


def test_crop_holds_the_orbit(case, crops):
    """Most of each side's rectus muscles and the eyeball's centre are in the network's view."""
    for c in crops:
        left = c.side == "left"
        recti = [values_for(n)[0 if left else 1] for n in
                 ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle", "lateral_rectus_muscle")]
        eye_v = values_for("eyeball")[0 if left else 1]
        view = np.rint(c.network_view(case.labels, label=True)).astype(int)
        assert (view == eye_v).any()
        # on the five slices, the recti seen in the view vs all their voxels on the same slices
        mid = view[2]
        assert np.isin(mid, recti).sum() > 100
        # the other eye is not in the view
        other = values_for("eyeball")[1 if left else 0]
        assert not (view == other).any()


def test_left_eye_is_mirrored_like_a_right_orbit(case, crops):
    """In the canonical view the lateral rectus lies on the same side for both eyes."""
    cols = []
    for c in crops:
        lr = values_for("lateral_rectus_muscle")[0 if c.side == "left" else 1]
        mr = values_for("medial_rectus_muscle")[0 if c.side == "left" else 1]
        view = np.rint(c.network_view(case.labels, label=True)).astype(int)
        cols.append(np.sign(np.argwhere(view == lr)[:, 2].mean() - np.argwhere(view == mr)[:, 2].mean()))
    assert cols[0] == cols[1] != 0


def test_maps_go_back_to_the_input_geometry(case, crops):
    c = crops[0]
    blob = np.zeros((5, 128, 128), np.float32)
    blob[:, 30:40, 90:100] = 1.0          # a patch in the canonical network view
    back = c.map_to_input(blob, case.image)
    assert back.same_geometry(case.image) and back.array.shape == case.image.shape
    # the labels seen at the patch in the network view are the labels under the mapped-back patch
    view = np.rint(c.network_view(case.labels, label=True)).astype(int)
    inside = back.array > 0.5
    assert inside.sum() > 0
    expected = np.bincount(view[:, 30:40, 90:100].ravel(), minlength=17)
    got = np.bincount(case.labels.array[inside].ravel(), minlength=17)
    assert np.argmax(expected) == np.argmax(got)
    box = c.box_ras()
    assert np.allclose(box["size_mm"][:2], [64 * 128 / 164] * 2, atol=1e-2)
    assert len(box["corners"]) == 8


def test_clear_errors(case):
    ct = orbit_case(5, "ct", orientation="axial")
    with pytest.raises(VolumeError, match="looks like CT"):
        preprocess_eyes(ct.image, ct.labels)
    one = Volume(case.image.array[:1], case.image.spacing, case.image.origin, case.image.direction)
    with pytest.raises(VolumeError, match="slice"):
        preprocess_eyes(one, case.labels)
    empty = case.labels.with_array(np.zeros_like(case.labels.array))
    with pytest.raises(OrbitNotFoundError, match="No orbit found"):
        preprocess_eyes(case.image, empty)


def test_one_missing_eye_is_reported(case):
    lab = case.labels.array.copy()
    lab[lab == values_for("eyeball")[0]] = 0
    crops = preprocess_eyes(case.image, case.labels.with_array(lab))
    assert [c.side for c in crops] == ["right"]
    assert any("left" in w for w in crops[0].warnings)


def test_augmentation_and_split():
    rng = np.random.default_rng(0)
    x = np.arange(5 * 164 * 164, dtype=np.float32).reshape(5, 164, 164)
    outs = {augment(x, rng).tobytes() for _ in range(8)}
    assert all(len(o) == 5 * 128 * 128 * 4 for o in outs) and len(outs) > 1
    assert centre_crop(x[None]).shape == (1, 5, 128, 128)
    ids = [f"c{i // 2}" for i in range(40)]
    tr, te = split_by_case(ids, 0.2, 0)
    assert len(te) == 8 and not {ids[i] for i in tr} & {ids[i] for i in te}


def test_manifest_labels_are_checked_with_one_line_input_errors():
    from pathlib import Path

    from orbitai.cohort.manifest import Case, ManifestError
    from orbitai.tao.data import case_label

    def case(label):
        return Case("c1", Path("c1.nrrd"), None, {"label": label})

    assert case_label(case("1")) == 1 and case_label(case("0.0")) == 0
    for bad, message in (("", "Case c1 has no label"), ("0.5", "label must be 0"), ("yes", "label must be 0")):
        with pytest.raises(ManifestError, match=message) as err:
            case_label(case(bad))
        assert err.value.exit_code == 2
