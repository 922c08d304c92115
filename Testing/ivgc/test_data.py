"""IVGC image input (paper 001): ROI bounding box, ROI slices, z-score, 128 x 128 x 32, augmentation."""
import dataclasses

import numpy as np
import pytest

from orbitai.classify.data import collate
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError
from orbitai.io import Volume, read_volume, write_volume
from orbitai.ivgc.data import (TARGET_SHAPE, AugmentSpec, ImageAugment, IvgcImageDataset, RoiCrop, preprocess,
                               roi_mask)
from orbitai.labels import values_for
from orbitai.phantoms.cohort import write_cohort

MR_LR, FOUR = "mrlr", "all"


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = tmp_path_factory.mktemp("ivgc")
    return read_manifest(write_cohort("ivgc", 2, seed=3, out_dir=out, montage_cases=0))


def test_input_shape_zscore_and_crop_holds_roi(cases):
    image, labels = read_volume(cases[0].image), cases[0].labels()
    x, crop = preprocess(image, labels, MR_LR)
    assert x.shape == (1, *TARGET_SHAPE) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4
    mask = roi_mask(labels, MR_LR)
    ks, js, is_ = np.nonzero(mask)
    # slices chosen by the ROI: exactly the slices holding it
    assert (crop.start[0], crop.stop[0]) == (ks.min(), ks.max() + 1)
    # the in-plane box holds the ROI with the 2 mm margin (0.5 mm voxels -> 4 voxels), clipped to the image
    margin = int(np.ceil(2.0 / image.spacing[0]))
    assert crop.start[1] == max(0, js.min() - margin) and crop.stop[1] == min(image.shape[1], js.max() + 1 + margin)
    assert crop.start[2] == max(0, is_.min() - margin) and crop.stop[2] == min(image.shape[2], is_.max() + 1 + margin)
    assert mask[crop.slices].sum() == mask.sum()
    # all four recti: a box at least as large as MR+LR's
    _, crop4 = preprocess(image, labels, FOUR)
    assert all(a4 <= a for a4, a in zip(crop4.start, crop.start)) and all(
        b4 >= b for b4, b in zip(crop4.stop, crop.stop))


def test_crop_maps_back_onto_the_mri(cases):
    """The ROI resized like the image, then placed back with RoiCrop.to_volume, lands on the ROI."""
    from monai.transforms import Resize

    image, labels = read_volume(cases[1].image), cases[1].labels()
    _, crop = preprocess(image, labels, MR_LR)
    mask = roi_mask(labels, MR_LR)
    on_net = np.asarray(Resize(crop.shape, mode="trilinear", align_corners=False)(
        mask[crop.slices][None].astype(np.float32)))[0]
    back = crop.to_volume(on_net)
    assert back.same_geometry(image)
    got = back.array > 0.5
    dice = 2 * (got & mask).sum() / (got.sum() + mask.sum())
    assert dice > 0.9, dice
    outside = np.ones(image.shape, bool)
    outside[crop.slices] = False
    assert not back.array[outside].any()                     # nothing outside the crop box
    with pytest.raises(ValueError, match="network's shape"):
        crop.to_volume(np.zeros((4, 4, 4)))


def test_network_grid_is_the_resize_geometry():
    """A linear ramp survives crop -> resize -> to_volume unchanged inside the box."""
    from monai.transforms import Resize

    k, j, i = np.meshgrid(np.arange(12), np.arange(40), np.arange(50), indexing="ij")
    ramp = (3.0 * i + 2.0 * j + 5.0 * k).astype(np.float32)
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)    # an oblique-free but permuted frame
    image = Volume(ramp, (0.4, 0.6, 2.5), (10.0, -5.0, 3.0), direction)
    mask = np.zeros(ramp.shape, bool)
    mask[3:9, 5:30, 10:45] = True
    crop = RoiCrop.around(image, mask, shape=(16, 32, 32), margin_mm=0.0)
    assert crop.start == (3, 5, 10) and crop.stop == (9, 30, 45)
    on_net = np.asarray(Resize(crop.shape, mode="trilinear", align_corners=False)(ramp[crop.slices][None]))[0]
    back = crop.to_volume(on_net).array
    inner = (slice(4, 8), slice(6, 29), slice(11, 44))         # away from the box's border half-voxels
    assert np.allclose(back[inner], ramp[inner], atol=1e-3)


def test_augmentation_is_seeded_and_in_plane():
    aug = ImageAugment(AugmentSpec(prob=1.0))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 8, 32, 32)).astype(np.float32)
    a = aug({"image": x, "label": 1}, np.random.default_rng(11))
    b = aug({"image": x, "label": 1}, np.random.default_rng(11))
    c = aug({"image": x, "label": 1}, np.random.default_rng(12))
    assert a["image"].shape == x.shape and a["image"].dtype == np.float32 and a["label"] == 1
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    assert not np.allclose(a["image"], x)
    # rotation about the slice axis only: identical slices stay identical under rotation
    rot = ImageAugment(AugmentSpec(prob=1.0, noise_std=0.0, zoom=(1.0, 1.0), rotate_deg=20))
    same = np.repeat(rng.normal(size=(1, 1, 32, 32)).astype(np.float32), 6, axis=1)
    out = rot({"image": same}, np.random.default_rng(1))["image"]
    assert not np.allclose(out, same) and np.allclose(out, out[:, :1], atol=1e-5)


def test_dataset_streams_cases_with_vectors(cases):
    radiomics = np.arange(2 * 5, dtype=np.float64).reshape(2, 5)
    ds = IvgcImageDataset.from_cases(cases, MR_LR, vectors={"radiomics": radiomics})
    assert len(ds) == 2 and list(ds.labels) == [int(c.row["label"]) for c in cases]
    s = ds[1]
    assert set(s) == {"image", "radiomics", "case_id", "label"}
    assert s["image"].shape == (1, *TARGET_SHAPE) and s["radiomics"].dtype == np.float32
    assert s["case_id"] == cases[1].case_id
    batch = collate([ds[0], s])
    assert tuple(batch["image"].shape) == (2, 1, *TARGET_SHAPE) and tuple(batch["radiomics"].shape) == (2, 5)
    x, crop = ds.load(0)
    assert np.array_equal(x, ds[0]["image"]) and crop.image_shape == cases[0].labels().shape
    unlabelled = IvgcImageDataset.from_cases(cases, MR_LR, with_labels=False)
    assert unlabelled.labels is None and "label" not in unlabelled[0]


def test_bad_input_is_one_clear_line(cases, tmp_path):
    image, labels = read_volume(cases[0].image), cases[0].labels()
    mr_left = values_for("medial_rectus_muscle")[0]
    no_mr = labels.with_array(np.where(labels.array == mr_left, 0, labels.array))
    with pytest.raises(InputError, match="medial_rectus_muscle_left"):
        preprocess(image, no_mr, MR_LR)
    preprocess(image, no_mr, "lr")                                  # a strategy without it is fine
    with pytest.raises(InputError, match="Unknown ROI strategy"):
        preprocess(image, labels, "mrsr")
    shifted = Volume(labels.array, labels.spacing, tuple(o + 5 for o in labels.origin), labels.direction)
    with pytest.raises(InputError, match="does not lie on the MRI's grid"):
        preprocess(image, shifted, MR_LR)
    nan = image.with_array(image.array.astype(np.float32))
    nan.array[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        preprocess(nan, labels, MR_LR)
    bad = dataclasses.replace(cases[0], row={**cases[0].row, "label": "2"})
    with pytest.raises(InputError, match="label must be 0"):
        IvgcImageDataset.from_cases([bad], MR_LR)
    write_volume(no_mr, tmp_path / "no_mr.nrrd")
    ds = IvgcImageDataset([cases[0].image], [tmp_path / "no_mr.nrrd"], MR_LR, case_ids=["x1"])
    with pytest.raises(InputError, match="Case x1: .*medial_rectus_muscle_left"):
        ds[0]
    assert IvgcImageDataset([cases[0].image], [tmp_path / "no_mr.nrrd"], "lr")[0]["image"].shape == (1, *TARGET_SHAPE)


def test_preprocessing_cache_gives_the_same_input(cases, tmp_path):
    plain = IvgcImageDataset.from_cases(cases, MR_LR)
    cached = IvgcImageDataset.from_cases(cases, MR_LR, cache_dir=tmp_path / "cache")
    x0, crop0 = plain.load(0)
    x1, crop1 = cached.load(0)                    # computed and written
    files = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1
    x2, crop2 = cached.load(0)                    # read back
    assert np.array_equal(x0, x1) and np.array_equal(x0, x2) and crop0 == crop1 == crop2
    # another ROI strategy is another entry; a damaged entry is rebuilt
    IvgcImageDataset.from_cases(cases, FOUR, cache_dir=tmp_path / "cache").load(0)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    files[0].write_bytes(files[0].read_bytes()[:100])
    x3, _ = cached.load(0)
    assert np.array_equal(x0, x3)


def test_roi_only_keeps_the_muscles_alone(cases):
    image, labels = read_volume(cases[0].image), cases[0].labels()
    plain, crop = preprocess(image, labels, MR_LR)
    masked, crop2 = preprocess(image, labels, MR_LR, roi_only=True)
    assert crop == crop2 and masked.shape == plain.shape
    kept = masked != 0
    # what is kept is the plain input there (z-scored over the whole box); the rest is 0
    assert np.array_equal(masked[kept], plain[kept])
    assert 0.005 < kept.mean() < 0.5
    mask = roi_mask(labels, MR_LR)
    assert crop.to_volume(kept[0].astype(np.float32)).array[mask].mean() > 0.8   # kept voxels lie on the ROI
