"""Phantoms: geometry, determinism, anatomy against literature ranges, class separability."""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.errors import InputError
from orbitai.io import read_volume
from orbitai.orbit.anatomy import RANGES, structure_measures
from orbitai.phantoms import brain_flair_case, orbit_case, write_cohort
from orbitai.phantoms.orbit import Rendering


@pytest.fixture(scope="module")
def ct_cases():
    return [orbit_case(s, "ct", size=(256, 256, 64), spacing=(0.45, 0.45, 0.9), orientation="axial")
            for s in range(4)]


def test_anatomy_in_literature_ranges(ct_cases):
    for c in ct_cases:
        measures = structure_measures(c.labels)
        assert len(measures) == 12
        for v, m in measures.items():
            assert m["in_range"], (v, m)     # volumes within the normal adult ranges (RANGES)
        assert set(np.unique(c.labels.array)) == set(range(17))


def test_measures_flag_what_lies_outside_the_ranges(ct_cases):
    lab = ct_cases[0].labels
    arr = lab.array.copy()
    arr[arr == 5] = 0                      # left superior rectus missing
    arr[arr == 9] = 0
    arr[tuple(slice(s // 2 - 12, s // 2 + 12) for s in arr.shape)] = 9   # a medial rectus far too big
    m = structure_measures(lab.with_array(arr))
    assert not m[5]["in_range"] and m[5]["voxels"] == 0
    assert not m[9]["in_range"] and m[9]["volume_cm3"] > RANGES["rectus"][1]
    assert m[1]["in_range"] and m[3]["in_range"]


def test_image_and_labels_share_geometry_and_ct_intensities(ct_cases):
    c = ct_cases[0]
    assert c.image.same_geometry(c.labels, tol=0)
    im, L = c.image.array, c.labels.array
    assert im.dtype == np.int16 and L.dtype == np.uint8
    assert 0 <= np.median(im[np.isin(L, [1, 2])]) <= 30            # vitreous
    assert 20 <= np.median(im[np.isin(L, range(5, 13))]) <= 80      # muscle (blurred by fat around)
    assert im.max() > 700 and im.min() <= -900                      # bone, air


@pytest.mark.parametrize("mod,orient", [("t2", "coronal"), ("t1", "axial")])
def test_mri_oblique_geometry(mod, orient):
    c = orbit_case(11, mod, orientation=orient, oblique=8.0, size=(128, 128, 16))
    assert c.image.same_geometry(c.labels, tol=0)
    d = c.labels.direction
    assert not np.allclose(d, np.round(d))          # oblique
    assert 2.0 <= c.image.spacing[2] <= 3.3 and 0.5 <= c.image.spacing[0] <= 0.9
    L, im = c.labels.array, c.image.array.astype(float)
    eye, mus = im[np.isin(L, [1, 2])].mean(), im[np.isin(L, range(5, 13))].mean()
    assert (eye > 2 * mus) if mod == "t2" else (eye < mus)


def test_deterministic_and_varied():
    a = orbit_case(5, "t2", size=(96, 96, 8))
    b = orbit_case(5, "t2", size=(96, 96, 8))
    c = orbit_case(6, "t2", size=(96, 96, 8))
    assert np.array_equal(a.image.array, b.image.array) and np.array_equal(a.labels.array, b.labels.array)
    assert not np.array_equal(a.labels.array, c.labels.array)


def test_domain_random_mode():
    c = orbit_case(3, "ct", rendering=Rendering(domain_random=True), size=(96, 96, 12))
    assert c.image.array.dtype == np.float32 and c.info["modality"] == "synth"
    assert c.image.same_geometry(c.labels, tol=0)


def _cv_auc(x, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    p = cross_val_predict(LogisticRegression(), np.asarray(x)[:, None], y,
                          cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    return roc_auc_score(y, p)


def test_tao_activity_auc_band():
    """Mean rectus T2 signal alone separates active from inactive TAO with AUC 0.70-0.90."""
    x, y = [], []
    for i in range(80):
        lab = i % 2
        c = orbit_case(1000 + i, "t2", tao="active" if lab else "inactive", orientation="axial", size=(112, 112, 10))
        x.append(c.image.array[np.isin(c.labels.array, range(5, 13))].mean())
        y.append(lab)
    auc = _cv_auc(x, np.array(y))
    assert 0.70 <= auc <= 0.90, auc


def test_ivgc_mr_lr_separate_better_than_sr_ir():
    from sklearn.metrics import roc_auc_score

    a, b, y = [], [], []
    for i in range(50):
        lab = i % 2
        c = orbit_case(2000 + i, "t2", ivgc=lab, orientation="coronal", size=(112, 112, 12))
        L, im = c.labels.array, c.image.array.astype(float)
        a.append(im[np.isin(L, [9, 10, 11, 12])].mean())
        b.append(im[np.isin(L, [5, 6, 7, 8])].mean())
        y.append(lab)
    auc_mrlr, auc_srir = roc_auc_score(y, a), roc_auc_score(y, b)
    assert auc_mrlr > auc_srir + 0.1 and 0.7 <= auc_mrlr < 0.99, (auc_mrlr, auc_srir)


def test_brain_flair_ms_vs_nmosd():
    ms = [brain_flair_case(s, "ms") for s in range(3)]
    nm = [brain_flair_case(s, "nmosd") for s in range(3)]
    for c in ms + nm:
        assert c.image.same_geometry(c.labels, tol=0) and c.image.shape == (182, 218, 182)
        assert c.labels.array.max() <= 1
        if c.labels.array.any():
            les = c.image.array[c.labels.array > 0].mean()
            assert les > np.median(c.image.array[c.image.array > 20])
    assert np.mean([c.info["n_lesions"] for c in ms]) > np.mean([c.info["n_lesions"] for c in nm])
    assert all(c.info["lesion_counts"].get("periventricular", 0) > 0 for c in ms)


@pytest.mark.slow   # draws two cohorts
def test_brain_flair_atypical_presentations_look_like_the_other_disease():
    # atypical=0 draws exactly as the default; atypical=1 makes every case the look-alike presentation
    base = brain_flair_case(7, "ms", noise=False)
    same = brain_flair_case(7, "ms", noise=False, atypical=0.0)
    assert np.array_equal(base.labels.array, same.labels.array) and base.info["atypical"] is False
    ms = [brain_flair_case(s, "ms", noise=False, atypical=1.0).info for s in range(4)]
    nm = [brain_flair_case(s, "nmosd", noise=False, atypical=1.0).info for s in range(4)]
    assert all(i["atypical"] for i in ms + nm)
    typical_ms = [brain_flair_case(s, "ms", noise=False).info for s in range(4)]
    # atypical MS has fewer lesions than typical MS; atypical NMOSD has MS-like periventricular ones
    assert np.mean([i["n_lesions"] for i in ms]) < np.mean([i["n_lesions"] for i in typical_ms])
    assert all(i["lesion_counts"].get("periventricular", 0) > 0 for i in nm)
    with pytest.raises(ValueError, match="atypical"):
        brain_flair_case(7, "ms", atypical=1.5)


def test_brain_flair_confluent_lesions_merge_without_compounding_their_contrast():
    from scipy import ndimage as ndi

    c = brain_flair_case(16000, "ms", noise=False, confluent=1.0)
    assert c.info["lesion_counts"]["periventricular_confluent"] >= 6
    lab, _ = ndi.label(c.labels.array > 0, np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.max() >= 800                       # >= 0.8 mL in one lesion (phantom ovoids: <= 0.5 mL)
    big = lab == 1 + int(np.argmax(sizes))
    wm = np.median(c.image.array[c.image.array > 20])
    assert c.image.array[big].max() < 2.2 * wm      # gains merge by maximum (1.3-1.7), not multiply
    assert not brain_flair_case(16000, "nmosd", noise=False, confluent=1.0).info["lesion_counts"].get(
        "periventricular_confluent")


def test_brain_flair_heavy_load_is_periventricular_and_large_and_leaves_defaults_alone():
    from orbitai.phantoms.brain import _template

    c = brain_flair_case(17200, "ms", noise=False, heavy=1.0)
    assert c.info["heavy"] and c.info["lesion_counts"]["periventricular_heavy"] >= 8
    assert 12.0 <= c.info["lesion_volume_ml"] <= 120.0
    # confluent: most of the load sits in few components, none inside the ventricles' CSF
    from scipy import ndimage as ndi

    lab, _ = ndi.label(c.labels.array > 0, np.ones((3, 3, 3), bool))
    sizes = np.sort(np.bincount(lab.ravel())[1:])[::-1]
    assert sizes[:5].sum() > 0.6 * sizes.sum()
    lesion = c.image.array[c.labels.array > 0]     # lesions bright: tissue, not ventricular CSF
    assert np.median(lesion) > 1.1 * np.median(c.image.array[c.image.array > 20])
    assert _template()["vent"].sum() > 5000
    # heavy=0 draws nothing: the default cohorts are unchanged; NMOSD never gets a heavy load
    d0, d1 = brain_flair_case(17000, "ms", noise=False), brain_flair_case(17000, "ms", noise=False, heavy=0.0)
    assert np.array_equal(d0.image.array, d1.image.array) and not d0.info["heavy"]
    assert not brain_flair_case(17100, "nmosd", noise=False, heavy=1.0).info["heavy"]
    with pytest.raises(ValueError, match="heavy"):
        brain_flair_case(7, "ms", heavy=-0.1)


def test_atypical_and_ted_options_are_refused_for_other_kinds_and_out_of_range(tmp_path, capsys):
    from orbitai.cli import main

    assert main(["phantom", "tao", "--n", "1", "--atypical", "0.2", "--out", str(tmp_path / "t")]) != 0
    assert "--atypical applies to brain-flair" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    assert main(["phantom", "tao", "--n", "1", "--ted", "0.3", "--out", str(tmp_path / "t")]) != 0
    assert "--ted applies to orbit-ct and orbit-mri phantoms only" in capsys.readouterr().err
    assert main(["phantom", "orbit-ct", "--n", "1", "--ted", "1.5", "--out", str(tmp_path / "t")]) != 0
    assert "--ted must lie between 0 and 1, got 1.5." in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_cohort_cli_writes_manifest_segmentations_and_is_byte_deterministic(tmp_path):
    from orbitai.cli import main
    from orbitai.io.segfile import read_segmentation

    for out in ("a", "b"):
        assert main(["phantom", "ivgc", "--n", "2", "--seed", "3", "--out", str(tmp_path / out),
                     "--montage-cases", "1" if out == "a" else "0"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "a" / "manifest.csv")))
    assert list(rows[0])[:4] == ["case_id", "image", "segmentation", "label"]
    assert IVGC_CLINICAL.names == list(rows[0])[4:20]
    for r in rows:
        for col in ("image", "segmentation"):
            fa, fb = tmp_path / "a" / r[col], tmp_path / "b" / r[col]
            assert hashlib.sha256(fa.read_bytes()).digest() == hashlib.sha256(fb.read_bytes()).digest()
        lab, table = read_segmentation(tmp_path / "a" / r["segmentation"])
        assert table[9].name == "medial_rectus_muscle_left"
    assert (tmp_path / "a" / "montage.png").stat().st_size > 10_000


@pytest.mark.slow
def test_every_kind_writes(tmp_path):
    for kind in ("orbit-ct", "orbit-mri", "tao", "brain-flair"):
        write_cohort(kind, 2, 1, tmp_path / kind)
        assert (tmp_path / kind / "montage.png").exists()


def test_a_ted_share_enlarges_the_recti_of_that_share_and_leaves_the_other_cases_as_they_were(tmp_path):
    from orbitai.labels import values_for
    from orbitai.phantoms.cohort import make_case
    from orbitai.phantoms.orbit import TED_SCALE

    recti = [v for s in ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle",
                         "lateral_rectus_muscle") for v in values_for(s)]
    manifest = write_cohort("orbit-ct", 3, 1000, tmp_path / "c", montage_cases=0, ted=0.5)
    rows = list(csv.DictReader(manifest.open()))
    scales = [float(r["muscle_scale"]) for r in rows]
    assert 0 < sum(s > 1 for s in scales) < 3                 # some cases enlarged, not all
    for i, (row, scale) in enumerate(zip(rows, scales)):
        # the cohort's files are the cases make_case draws with --ted (read back, not drawn again)
        plain = make_case("orbit-ct", 1000, i)
        image, labels = (read_volume(manifest.parent / row[k]).array for k in ("image", "segmentation"))
        if scale == 1.0:                                          # the cases of --ted 0, byte for byte
            assert np.array_equal(plain.image.array, image) and np.array_equal(plain.labels.array, labels)
            continue
        assert TED_SCALE[0] <= scale <= TED_SCALE[1]
        before, after = (float(np.isin(a, recti).sum()) for a in (plain.labels.array, labels))
        assert scale * 0.6 < after / before < scale * 1.4
    case = make_case("orbit-ct", 1000, scales.index(max(scales)), ted=0.5)     # the cohort's scale is the case's
    assert case.info["muscle_scale"] == pytest.approx(max(scales), abs=1e-3)
    plain = make_case("orbit-ct", 1000, scales.index(1.0), ted=0.5)
    assert "muscle_scale" not in plain.info
    with pytest.raises(InputError, match="orbit-ct and orbit-mri"):
        make_case("tao", 1000, 0, label=1, ted=0.5)
