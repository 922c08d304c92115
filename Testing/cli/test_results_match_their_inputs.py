"""Issue #32, part B: results computed from the wrong inputs.

* Defect 2: a precomputed or cached table is checked against the files it claims to describe (the
  SHA-256 it records), never matched by case id alone: ``ivgc select/train/cv/evaluate`` refuse a feature
  table of other images in one line naming the case; the TAO eye cache and the neuro classifier-input
  cache are rebuilt for other contents at the same paths (same size and modification time).
* Defect 3: a segmentation given with an image must lie in its physical space (one check,
  :func:`orbitai.io.segmentation_on_image`, half a voxel): shifted or on another grid it is refused by
  ``ivgc features/predict``, ``neuro lesions/predict``, ``tao predict``, the cohort commands (naming the
  case) and ``seg train``; with ``--resample-masks`` it is resampled and the result's ``warnings`` say so;
  header round-off is the same grid.
* Defect 7: ``ivgc select`` checks labels, rows and strategies before extracting the second segmentation's
  features, and keeps their cache for the next run; ``neuro cv`` checks the folds before any input is built.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.errors import InputError
from orbitai.io import Volume, read_volume, resample_spacing, write_volume

SEED = 777032     # never used for training cohorts


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _shifted(v: Volume, mm: float, axis: int = 0) -> Volume:
    origin = list(v.origin)
    origin[axis] += mm
    return Volume(v.array, v.spacing, tuple(origin), v.direction)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------------------------- the one grid check
def test_half_a_voxel_is_the_same_grid_and_more_is_not():
    from orbitai.io import grid_difference, segmentation_on_image

    image = Volume(np.zeros((8, 9, 10), np.float32), (0.5, 0.5, 2.0), (10.0, -20.0, 5.0))
    labels = image.with_array(np.ones((8, 9, 10), np.uint8))
    assert grid_difference(image, _shifted(labels, 0.2)) is None                 # 0.4 voxel
    assert "origin shifted by (0.3, 0.0, 0.0) mm" in grid_difference(image, _shifted(labels, 0.3))
    assert "origin shifted" in grid_difference(image, _shifted(labels, 1.5, axis=2))   # 0.75 of a 2 mm slice
    assert grid_difference(image, _shifted(labels, 0.9, axis=2)) is None
    longer = Volume(labels.array, (0.5, 0.5, 2.2), image.origin)                  # the far slice 0.7 mm off
    assert "spacing" in grid_difference(image, longer)
    assert "shape" in grid_difference(image, Volume(labels.array[:, :, 1:], image.spacing, image.origin))
    tilted = Volume(labels.array, image.spacing, image.origin, np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]]))
    assert "direction" in grid_difference(image, tilted)
    on, warning = segmentation_on_image(image, _shifted(labels, 0.2), "the segmentation s.nrrd")
    assert warning is None and on.origin == image.origin                          # taken on the image's grid
    with pytest.raises(InputError, match=r"^The segmentation s.nrrd does not lie in the image's physical space: "
                                         r"origin shifted .*--resample-masks"):
        segmentation_on_image(image, _shifted(labels, 2.0), "the segmentation s.nrrd")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_header_round_off_of_an_oblique_grid_is_the_same_grid(tmp_path, suffix):
    from orbitai.io import grid_difference, rotation, segmentation_on_image

    image = Volume(np.random.default_rng(0).random((12, 40, 36)).astype(np.float32), (0.4377, 0.4377, 3.3),
                   (-101.123456789, 87.654321, -33.3333333), rotation(0.21, -0.13, 0.07))
    labels = image.with_array((image.array > 0.5).astype(np.uint8))
    write_volume(image, tmp_path / f"img{suffix}")
    write_volume(labels, tmp_path / f"seg{suffix}")
    img, seg = read_volume(tmp_path / f"img{suffix}"), read_volume(tmp_path / f"seg{suffix}")
    assert grid_difference(img, seg) is None and grid_difference(image, seg) is None
    on, warning = segmentation_on_image(img, seg, "the segmentation")
    assert warning is None and np.array_equal(on.array, labels.array)


def test_seg_train_refuses_a_shifted_segmentation_naming_the_case():
    from orbitai.orbit.data import resample_pair

    image = Volume(np.zeros((8, 9, 10), np.float32), (1.0, 1.0, 2.0))
    labels = image.with_array(np.zeros((8, 9, 10), np.uint8))
    resample_pair(image, _shifted(labels, 0.3), (1.0, 1.0, 2.0), "Case c1: the segmentation s.nrrd")
    with pytest.raises(InputError, match=r"^Case c1: the segmentation s.nrrd does not lie in the image's physical "
                                         r"space: origin shifted by \(30.0, 0.0, 0.0\) mm"):
        resample_pair(image, _shifted(labels, 30.0), (1.0, 1.0, 2.0), "Case c1: the segmentation s.nrrd")


# --------------------------------------------------------------------------------------------- IVGC
@pytest.fixture(scope="module")
def ivgc(tmp_path_factory) -> dict[str, Path]:
    """Four IVGC phantoms with labels 0, 1, 0, 1 (absolute paths), their medial-recti feature table, and a
    manifest of the same case ids where ivgc_0001's image is ivgc_0002's (a table of other images)."""
    from orbitai.phantoms.cohort import write_cohort

    d = tmp_path_factory.mktemp("ivgc32")
    cohort = write_cohort("ivgc", 4, SEED, d / "cohort", montage_cases=0)
    rows = list(csv.DictReader(cohort.open()))
    for i, r in enumerate(rows):
        r["image"], r["segmentation"] = (str((cohort.parent / r[k]).resolve()) for k in ("image", "segmentation"))
        r["label"] = str(i % 2)

    def manifest(path: Path, rows: list[dict]) -> Path:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return path

    good = manifest(d / "m.csv", rows)
    other = [dict(r) for r in rows]
    other[1]["image"] = rows[2]["image"]
    features = d / "f.csv"
    assert main(["ivgc", "features", "--manifest", str(good), "--out", str(features), "--workers", "0",
                 "--strategies", "mr"]) == 0
    return {"dir": d, "manifest": good, "other": manifest(d / "other.csv", other), "features": features}


def test_the_feature_table_records_each_rows_files(ivgc):
    from orbitai.bundle.core import sha256_input
    from orbitai.ivgc.features import FILE_COLUMNS, WideTable, check_table_files, cohort_inputs

    assert next(csv.reader(ivgc["features"].open()))[:4] == ["case_id", "inputs_sha256", *FILE_COLUMNS]
    table = WideTable.from_csv(ivgc["features"])
    cases = cohort_inputs(ivgc["manifest"])[0]
    assert table.files == [(sha256_input(c.image), sha256_input(c.segmentation)) for c in cases]
    check_table_files(table, cases, "f.csv")                                      # the right files pass


@pytest.mark.parametrize("command", ["select", "train", "cv", "evaluate"])
def test_a_feature_table_of_other_images_is_refused_naming_the_case(ivgc, tmp_path, capsys, command):
    """The issue's case: the same case ids, other images (exit 0 and AUC 0.500 before)."""
    common = ["--manifest", ivgc["other"], "--features", ivgc["features"]]
    argv = {"select": ["ivgc", "select", *common, "--repeat", ivgc["features"], "--cv", "2", "--strategies", "mr",
                       "--out", tmp_path / "sel.json"],
            "train": ["ivgc", "train", *common, "--selection", tmp_path / "sel.json", "--model", "svm",
                      "--strategy", "mr", "--out", tmp_path / "bundle"],
            "cv": ["ivgc", "cv", *common, "--selection", tmp_path / "sel.json", "--model", "svm", "--strategy", "mr",
                   "--folds", "2", "--out", tmp_path / "cv"],
            "evaluate": ["ivgc", "evaluate", *common, "--model", "svm", "--device", "cpu",
                         "--out", tmp_path / "report"]}[command]
    rc, _, err = _run(argv, capsys)
    line = _one_line(err)
    assert rc == 2 and "Case ivgc_0001: the row of --features" in line and "computed from another image" in line, err
    assert list(tmp_path.iterdir()) == []


def test_a_table_without_checksums_is_matched_by_id_with_a_warning(ivgc, caplog):
    from orbitai.ivgc.features import WideTable, check_table_files, cohort_inputs

    t = WideTable.from_csv(ivgc["features"])
    check_table_files(WideTable(t.case_ids, t.names, t.X), cohort_inputs(ivgc["other"])[0], "old.csv")
    assert "old.csv has no image_sha256 and segmentation_sha256 columns" in caplog.text


def test_ivgc_predict_refuses_a_shifted_segmentation_and_resamples_one_on_request(ivgc, tmp_path, capsys):
    """The issue's case: the recti shifted 30 mm flipped the call with ``warnings: []``."""
    from orbitai.cohort.manifest import read_labels, read_manifest

    case = read_manifest(ivgc["manifest"])[0]
    labels = read_labels(case.segmentation)
    write_volume(_shifted(labels, 30.0), tmp_path / "shifted.nrrd")
    rc, _, err = _run(["ivgc", "predict", case.image, "--segmentation", tmp_path / "shifted.nrrd",
                       "--out", tmp_path / "o"], capsys)
    line = _one_line(err)
    assert rc == 2 and "The segmentation shifted.nrrd does not lie in the image's physical space: origin shifted by " \
                       "(30.0, 0.0, 0.0) mm" in line and "--resample-masks" in line, err
    assert not (tmp_path / "o").exists()
    # on a finer grid in the same place: refused too, or resampled with --resample-masks and said so
    write_volume(resample_spacing(labels, [s / 2 for s in labels.spacing], label=True), tmp_path / "fine.nrrd")
    rc, _, err = _run(["ivgc", "predict", case.image, "--segmentation", tmp_path / "fine.nrrd", "--out",
                       tmp_path / "o", "--no-gradcam"], capsys)
    assert rc == 2 and "physical space: shape" in _one_line(err)
    rc, out, err = _run(["ivgc", "predict", case.image, "--segmentation", tmp_path / "fine.nrrd", "--out",
                         tmp_path / "o", "--no-gradcam", "--resample-masks"], capsys)
    assert rc == 0, err
    warnings = json.loads((tmp_path / "o" / "result.json").read_text())["warnings"]
    assert any("fine.nrrd was not on the image's grid" in w and "--resample-masks" in w for w in warnings), warnings
    assert "warning: The segmentation fine.nrrd was not on the image's grid" in out


def test_ivgc_deep_inputs_refuse_a_shifted_segmentation_naming_the_case(ivgc, tmp_path):
    """``ivgc train/cv/evaluate`` of the image models read each case through the same check."""
    from orbitai.cohort.manifest import read_labels, read_manifest
    from orbitai.ivgc.data import IvgcImageDataset

    cases = read_manifest(ivgc["manifest"])
    write_volume(_shifted(read_labels(cases[2].segmentation), 30.0), tmp_path / "shifted.nrrd")
    ds = IvgcImageDataset([c.image for c in cases], [*(c.segmentation for c in cases[:2]), tmp_path / "shifted.nrrd",
                                                     cases[3].segmentation], "mr",
                          case_ids=[c.case_id for c in cases])
    ds.load(0)
    with pytest.raises(InputError, match=r"^Case ivgc_0002: the segmentation shifted.nrrd does not lie in the "
                                         r"image's physical space: origin shifted"):
        ds.load(2)


@pytest.mark.parametrize("why, change, message", [
    ("one class", lambda rows: [{**r, "label": "1"} for r in rows], "needs at least 2 cases of each class"),
    ("a case the table lacks", lambda rows: [*rows, {**rows[0], "case_id": "ivgc_9999"}],
     "The feature table has no row for case(s) ivgc_9999"),
])
def test_ivgc_select_checks_before_extracting_the_second_segmentation(ivgc, tmp_path, capsys, monkeypatch,
                                                                      why, change, message):
    import orbitai.ivgc.feature_commands as feature_commands

    def no_extraction(*a, **k):
        raise AssertionError("the second segmentation's features were extracted before the checks")

    monkeypatch.setattr(feature_commands, "_extract", no_extraction)
    rows = change(list(csv.DictReader(ivgc["manifest"].open())))
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rc, _, err = _run(["ivgc", "select", "--manifest", manifest, "--features", ivgc["features"], "--cv", "2",
                       "--strategies", "mr", "--workers", "0", "--out", tmp_path / "sel.json"], capsys)
    assert rc == 2 and message in _one_line(err), err
    assert not (tmp_path / "sel.json").exists()


def test_ivgc_select_keeps_the_second_segmentations_features_for_the_next_run(ivgc, tmp_path, capsys, monkeypatch):
    import orbitai.ivgc.features as features

    argv = ["ivgc", "select", "--manifest", ivgc["manifest"], "--features", ivgc["features"], "--cv", "2",
            "--strategies", "mr", "--workers", "0", "--out", tmp_path / "sel.json"]
    rc, _, err = _run(argv, capsys)
    assert rc == 0, err
    cache = ivgc["features"].with_name("f.csv.reader2.cache")
    assert len(list(cache.glob("*.npz"))) == 4
    first = (tmp_path / "sel.json").read_text()

    def no_extraction(*a, **k):
        raise AssertionError("extracted again")

    monkeypatch.setattr(features, "case_features", no_extraction)
    rc, _, err = _run(argv, capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "sel.json").read_text())["strategies"] == json.loads(first)["strategies"]


# --------------------------------------------------------------------------------------------- TAO
def _tiny_manifest(d: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_volume(Volume(rng.random((6, 16, 16)).astype(np.float32)), d / f"img{i}.nrrd")
    write_volume(Volume(np.zeros((6, 16, 16), np.uint8)), d / "seg.nrrd")
    (d / "m.csv").write_text("case_id,image,segmentation,label\n"
                             + "".join(f"c{i},img{i}.nrrd,seg.nrrd,{i % 2}\n" for i in range(n)))
    return d / "m.csv"


def _same_size_other_contents(path: Path) -> None:
    """Rewrite ``path`` with other voxel values, the same size and the same modification time."""
    st = path.stat()
    vol = read_volume(path)
    write_volume(vol.with_array(np.asarray(vol.array)[::-1].copy()), path)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_tao_eye_cache_is_not_used_for_other_images_at_the_same_paths(tmp_path, monkeypatch):
    import orbitai.tao.data as data
    from orbitai.cohort.manifest import read_manifest

    def fake_eyes(cases, workers):     # stands for the preprocessing: each case's first voxel
        return [([np.full((5, 4, 4), float(np.asarray(read_volume(c.image).array).ravel()[0]), np.float32)],
                 ["right"], int(c.row["label"]), []) for c in cases]

    monkeypatch.setattr(data, "_map_cases", fake_eyes)
    cases = read_manifest(_tiny_manifest(tmp_path))
    cache = tmp_path / "eyes.npz"
    first = data.prepare_eyes(cases, cache=cache, workers=1)
    assert np.array_equal(data.prepare_eyes(cases, cache=cache, workers=1).x, first.x)   # from the cache
    _same_size_other_contents(Path(cases[1].image))
    again = data.prepare_eyes(cases, cache=cache, workers=1)
    assert again.x[1, 0, 0, 0] == float(np.asarray(read_volume(cases[1].image).array).ravel()[0])
    assert again.x[1, 0, 0, 0] != first.x[1, 0, 0, 0]


@pytest.fixture(scope="module")
def t2(tmp_path_factory):
    from orbitai.io.segfile import write_segmentation
    from orbitai.phantoms.orbit import orbit_case

    d = tmp_path_factory.mktemp("t2_32")
    case = orbit_case(SEED, "t2", tao="active", orientation="axial")
    return case, write_volume(case.image, d / "t2.nrrd"), write_segmentation(case.labels, d / "t2.seg.nrrd")


def test_tao_predict_refuses_a_shifted_segmentation_and_resamples_one_on_request(t2, tmp_path, capsys):
    case, image, _ = t2
    write_volume(_shifted(case.labels, 30.0), tmp_path / "shifted.nrrd")
    rc, _, err = _run(["tao", "predict", image, "--segmentation", tmp_path / "shifted.nrrd", "--no-maps",
                       "--device", "cpu", "--out", tmp_path / "o"], capsys)
    line = _one_line(err)
    assert rc == 2 and "The segmentation shifted.nrrd does not lie in the MRI's physical space: origin shifted" \
        in line and "--resample-masks" in line, err
    assert not (tmp_path / "o").exists()
    write_volume(resample_spacing(case.labels, [s / 2 for s in case.labels.spacing], label=True),
                 tmp_path / "fine.nrrd")
    rc, _, err = _run(["tao", "predict", image, "--segmentation", tmp_path / "fine.nrrd", "--no-maps",
                       "--device", "cpu", "--resample-masks", "--out", tmp_path / "o"], capsys)
    assert rc == 0, err
    warnings = json.loads((tmp_path / "o" / "result.json").read_text())["warnings"]
    assert any("fine.nrrd was not on the MRI's grid" in w for w in warnings), warnings


def test_tao_training_data_refuses_a_shifted_segmentation_naming_the_case(t2, tmp_path):
    from orbitai.cohort.manifest import read_manifest
    from orbitai.tao.data import prepare_eyes

    case, image, _ = t2
    write_volume(_shifted(case.labels, 30.0), tmp_path / "shifted.nrrd")
    (tmp_path / "m.csv").write_text(f"case_id,image,segmentation,label\nt1,{image},{tmp_path / 'shifted.nrrd'},1\n")
    with pytest.raises(InputError, match=r"^Case t1: the segmentation shifted.nrrd does not lie in the MRI's "
                                         r"physical space: origin shifted by \(30.0, 0.0, 0.0\) mm.*resample it onto"):
        prepare_eyes(read_manifest(tmp_path / "m.csv"), workers=1)


# --------------------------------------------------------------------------------------------- Neuro
@pytest.fixture(scope="module")
def brain(tmp_path_factory) -> Path:
    from orbitai.phantoms.cohort import write_cohort

    return write_cohort("brain-flair", 1, SEED, tmp_path_factory.mktemp("brain32"), montage_cases=0)


@pytest.mark.parametrize("command", ["lesions", "predict"])
def test_neuro_refuses_a_shifted_lesion_mask(brain, tmp_path, capsys, command):
    """The issue's case: a lesion mask shifted 40 mm changed the location table and P(NMOSD) without a word."""
    from orbitai.cohort.manifest import read_labels, read_manifest

    case = read_manifest(brain)[0]
    write_volume(_shifted(read_labels(case.segmentation), 40.0), tmp_path / "shifted.nrrd")
    rc, _, err = _run(["neuro", command, case.image, "--lesions", tmp_path / "shifted.nrrd", "--device", "cpu",
                       "--out", tmp_path / "o"], capsys)
    line = _one_line(err)
    assert rc == 2 and "The lesion segmentation shifted.nrrd does not lie in the FLAIR's physical space: origin " \
                       "shifted by (40.0, 0.0, 0.0) mm" in line and "--resample-masks" in line, err
    assert not (tmp_path / "o").exists()


def test_neuro_resamples_a_lesion_mask_on_another_grid_only_on_request(brain, tmp_path):
    from orbitai.cohort.manifest import read_labels, read_manifest
    from orbitai.neuro.predict import read_lesions

    case = read_manifest(brain)[0]
    flair = read_volume(case.image)
    fine = write_volume(resample_spacing(read_labels(case.segmentation), [s / 2 for s in flair.spacing],
                                         label=True), tmp_path / "fine.nrrd")
    with pytest.raises(InputError, match="physical space: shape"):
        read_lesions(fine, flair)
    with pytest.raises(InputError, match=r"^Case b1: the lesion segmentation fine.nrrd does not lie in the FLAIR's "
                                         r"physical space: shape .*resample it onto the FLAIR's grid first"):
        read_lesions(fine, flair, case_id="b1")                # a cohort command: no option to offer
    warnings: list[str] = []
    on = read_lesions(fine, flair, resample=True, warnings=warnings)
    assert on.same_geometry(flair) and on.array.any()
    assert len(warnings) == 1 and "was not on the FLAIR's grid" in warnings[0]
    assert read_lesions(case.segmentation, flair).same_geometry(flair)


def test_the_neuro_input_cache_is_not_used_for_other_images_at_the_same_paths(tmp_path, monkeypatch):
    import orbitai.neuro.study as study
    from orbitai.cohort.manifest import read_manifest
    from orbitai.neuro.study import cohort_inputs

    def fake_input(flair, lesions, mode, size):     # stands for the crop and resize: the FLAIR's first voxel
        return np.full((size,) * 3, float(np.asarray(flair.array).ravel()[0]), np.float32), None

    monkeypatch.setattr(study, "classifier_input", fake_input)
    cases = read_manifest(_tiny_manifest(tmp_path, 2))
    first = np.array(cohort_inputs(cases, "lesion_mask", 4, tmp_path / "cache"))
    _same_size_other_contents(Path(cases[0].image))
    again = np.array(cohort_inputs(cases, "lesion_mask", 4, tmp_path / "cache"))
    assert again[0, 0, 0, 0] != first[0, 0, 0, 0]
    assert again[0, 0, 0, 0] == float(np.asarray(read_volume(cases[0].image).array).ravel()[0])


def test_neuro_cv_checks_the_folds_before_building_any_input(tmp_path, capsys, monkeypatch):
    import orbitai.neuro.study as study

    def slow(*a, **k):
        raise AssertionError("inputs built before the folds were checked")

    monkeypatch.setattr(study, "cohort_inputs", slow)
    monkeypatch.setattr(study, "lesion_summaries", slow)
    manifest = _tiny_manifest(tmp_path)
    rc, _, err = _run(["neuro", "cv", "--manifest", manifest, "--folds", "5", "--repeats", "1", "--epochs", "1",
                       "--out", tmp_path / "cv"], capsys)
    assert rc == 2 and "5-fold stratified CV needs at least 5 cases per class; got [2, 2]" in _one_line(err), err
    assert not (tmp_path / "cv").exists()


def test_seg_train_command_refuses_a_shifted_segmentation_naming_the_case(tmp_path, capsys):
    from orbitai.cohort.manifest import read_manifest
    from orbitai.phantoms import write_cohort

    case = read_manifest(write_cohort("orbit-ct", 1, SEED, tmp_path / "cohort", montage_cases=0))[0]
    write_volume(_shifted(case.labels(), 30.0), tmp_path / "shifted.nrrd")
    (tmp_path / "m.csv").write_text(f"case_id,image,segmentation\n{case.case_id},{case.image},"
                                    f"{tmp_path / 'shifted.nrrd'}\n")
    rc, _, err = _run(["seg", "train", "--manifest", tmp_path / "m.csv", "--config", "svnet-demo-ct", "--epochs", "1",
                       "--device", "cpu", "--out", tmp_path / "bundle"], capsys)
    line = _one_line(err)
    assert rc == 2 and f"Case {case.case_id}: the segmentation shifted.nrrd does not lie in the image's physical " \
                       "space: origin shifted by (30.0, 0.0, 0.0) mm" in line, err
    assert not (tmp_path / "bundle").exists()


def test_a_crop_of_the_images_own_voxels_is_taken_losslessly_and_a_shift_is_not():
    """Slicer saves a .seg.nrrd cropped to its segments' extent on the source image's voxels: that is the same
    physical space (no resampling, no warning). A segmentation of the image's size moved by whole voxels, or a
    crop reaching outside the image, is refused like any other misalignment."""
    from orbitai.io import segmentation_on_image

    rng = np.random.default_rng(3)
    image = Volume(rng.random((10, 12, 14)).astype(np.float32), (0.5, 0.6, 2.0), (10.0, -20.0, 5.0))
    full = np.zeros(image.shape, np.uint8)
    full[3:6, 4:9, 5:10] = 7
    crop_box = (slice(2, 7), slice(3, 10), slice(4, 12))
    origin = tuple(image.index_to_physical([4, 3, 2]))                            # (i, j, k) of the crop's corner
    crop = Volume(full[crop_box], image.spacing, origin, image.direction)
    on, warning = segmentation_on_image(image, crop, "the segmentation s.seg.nrrd")
    assert warning is None and np.array_equal(on.array, full) and on.origin == image.origin
    shifted = Volume(full, image.spacing, tuple(image.index_to_physical([2, 0, 0])), image.direction)
    with pytest.raises(InputError, match="does not lie in the image's physical space"):
        segmentation_on_image(image, shifted, "the segmentation s.seg.nrrd")       # whole size, 2 voxels over
    outside = Volume(full[crop_box], image.spacing, tuple(image.index_to_physical([9, 3, 2])), image.direction)
    with pytest.raises(InputError, match="does not lie in the image's physical space"):
        segmentation_on_image(image, outside, "the segmentation s.seg.nrrd")       # reaches past the image
