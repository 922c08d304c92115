"""SharedExtractor (each filtered image once per patient, every ROI from it) gives pyradiomics' own
``execute`` values: on an IVGC phantom patient for the paper's ROI strategies (660 features each:
14 shape, 198 first-order, 448 texture), on a small image whose ROIs touch the border (the wavelet
is then computed on whole axes), and for settings that make ``execute`` work per ROI."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.radiomics import RadiomicsProtocol, extract_features
from orbitai.radiomics.extract import plain_features
from orbitai.radiomics.shared import SharedExtractor, _compacted, _wavelet_region, bounding_box

pytest.importorskip("radiomics")

RTOL = 1e-6


def _max_rel(a: dict, b: dict) -> float:
    assert list(a) == list(b)             # same names, same order
    return max(abs(float(a[k]) - float(b[k])) / max(abs(float(b[k])), 1e-12) for k in b)


@pytest.fixture(scope="module")
def patient():
    from orbitai.ivgc.rois import parse_strategies, strategy_masks
    from orbitai.phantoms.cohort import make_case

    case = make_case("ivgc", 5, 0, label=1)
    image = case.image.to_sitk()
    masks = strategy_masks(np.asarray(case.labels.array), parse_strategies(["ir", "mrlr", "all"]))
    return image, masks


def test_shared_equals_pyradiomics_execute_on_a_phantom_patient(patient):
    image, masks = patient
    proto = RadiomicsProtocol.load("ivgc")
    shared = SharedExtractor(proto).execute(image, masks)
    for roi, mask in masks.items():
        plain = plain_features(image, mask, proto, roi)
        assert _max_rel(shared[roi], plain) <= RTOL, roi
        classes = collections.Counter(k.split("_")[1] for k in shared[roi])
        assert len(shared[roi]) == 660
        assert classes["shape"] == 14 and classes["firstorder"] == 198
        assert classes["glcm"] + classes["glrlm"] + classes["glszm"] == 448
    # the wavelet ran on the orbit region, not the whole slice
    boxes = {r: bounding_box(m, r, {}) for r, m in masks.items()}
    mimg = {r: sitk.GetImageFromArray(m.astype(np.uint32)) for r, m in masks.items()}
    crop, _, _ = _wavelet_region(image, mimg, boxes, {})
    assert np.prod(crop.GetSize()) < 0.6 * np.prod(image.GetSize())
    # and the bilateral ROI's texture ran on its box without the empty planes between the orbits
    view = _compacted(mimg["ir"], boxes["ir"], gap=2)
    assert view is not None
    box_voxels = np.prod(boxes["ir"][1::2] - boxes["ir"][0::2] + 1)
    assert np.prod(view[1].GetSize()) < 0.7 * box_voxels
    assert sitk.GetArrayViewFromImage(view[1]).sum() == masks["ir"].sum()


def _small(seed: int = 1):
    rng = np.random.default_rng(seed)
    arr = rng.normal(500, 80, (9, 20, 24)).astype(np.float32)
    lab = np.zeros(arr.shape, np.uint8)
    lab[0:5, 0:6, 2:9] = 1          # touches the first slice and row: wavelet over whole axes
    lab[3:9, 12:19, 15:23] = 2
    arr[lab == 1] -= 200
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.7, 2.5))
    msk = sitk.GetImageFromArray(lab)
    msk.CopyInformation(img)
    return img, msk


def test_shared_equals_plain_at_the_border_and_in_the_table():
    img, msk = _small()
    shared = extract_features(img, msk, "ivgc", rois={"a": 1, "ab": [1, 2]}, case_id="s")
    plain = extract_features(img, msk, "ivgc", rois={"a": 1, "ab": [1, 2]}, case_id="s", shared=False)
    assert [r.name for r in shared] == [r.name for r in plain] and len(shared) == 2 * 660
    for x, y in zip(shared, plain):
        assert x.roi == y.roi and x.value == pytest.approx(y.value, rel=RTOL, abs=1e-12)


def test_per_roi_settings_and_mask_dependent_filters_fall_back_to_execute():
    img, msk = _small(2)
    lab = sitk.GetArrayFromImage(msk)
    masks = {"a": lab == 1, "b": lab == 2}
    proto = RadiomicsProtocol.from_dict({
        "setting": {"binWidth": 10, "resampledPixelSpacing": [1, 1, 2.5], "interpolator": "sitkBSpline"},
        "passes": [{"imageType": {"Original": {}, "Square": {}}, "featureClass": {"firstorder": [], "glcm": []}}]})
    shared = SharedExtractor(proto).execute(img, masks)
    for roi, m in masks.items():
        assert _max_rel(shared[roi], plain_features(img, m, proto, roi)) <= RTOL


def test_an_roi_pyradiomics_cannot_use_is_one_line():
    img, msk = _small()
    one = np.zeros(sitk.GetArrayFromImage(msk).shape, bool)
    one[4, 10, 10] = True
    with pytest.raises(InputError, match="ROI 'x' holds a single voxel"):
        SharedExtractor("ivgc").execute(img, {"x": one})
    with pytest.raises(InputError, match="ROI 'x' is empty"):
        SharedExtractor("ivgc").execute(img, {"x": np.zeros_like(one)})
