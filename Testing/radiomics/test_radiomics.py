"""Radiomics: pyradiomics as installed, driven by the shipped IVGC protocol, gives the paper's 660
features per ROI and first-order values equal to hand-computed numpy values; protocols, ROI
unions, the tidy table and bad input; ICC against Shrout & Fleiss's published example; t-test,
Mann-Whitney and LASSO selection in scikit-learn form."""
from __future__ import annotations

import collections
import time

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import stats
from sklearn.feature_selection import SelectFpr

from orbitai.errors import InputError
from orbitai.radiomics import (FeatureTable, RadiomicsProtocol, ReproducibilitySelector, extract_features, icc,
                               lasso_selector, mannwhitney_score, selection_pipeline, shipped_protocols, ttest_score)

pytest.importorskip("radiomics")

SPACING = (0.6, 0.5, 2.0)          # x, y, z in mm
MR, LR = 9, 11                     # medial and lateral rectus, left (orbit label table)


def _phantom(seed: int = 0) -> tuple[sitk.Image, sitk.Image, np.ndarray, np.ndarray]:
    """A small T2-like orbit: bright fat around two darker 'muscles' of different texture;
    (image, label map, and their arrays)."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(600, 60, (10, 28, 28))
    lab = np.zeros(arr.shape, np.uint8)
    lab[2:8, 4:10, 5:16] = MR
    lab[3:7, 17:25, 12:18] = LR
    arr[lab == MR] = 250 + rng.gamma(2.0, 15, int((lab == MR).sum()))
    arr[lab == LR] = rng.normal(220, 25, int((lab == LR).sum()))
    arr = arr.astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin((-10.0, 5.0, 3.0))
    msk = sitk.GetImageFromArray(lab)
    msk.CopyInformation(img)
    return img, msk, arr, lab


@pytest.fixture(scope="module")
def ivgc_table() -> tuple[FeatureTable, float]:
    img, msk, _, _ = _phantom()
    t0 = time.process_time()          # CPU time: the machine may be shared
    table = extract_features(img, msk, "ivgc", rois={"mr": MR, "all": [MR, LR]}, case_id="p0")
    return table, time.process_time() - t0


def test_ivgc_protocol_gives_the_papers_660_features(ivgc_table):
    table, seconds = ivgc_table
    assert "ivgc" in shipped_protocols()
    proto = RadiomicsProtocol.load("ivgc")
    for roi in ("mr", "all"):
        rows = [r for r in table if r.roi == roi]
        assert len(rows) == proto.features == 660
        per_class = collections.Counter(r.feature_class for r in rows)
        assert per_class == {"shape": 14, "firstorder": 198, "glcm": 192, "glrlm": 128, "glszm": 128}
        assert per_class["glcm"] + per_class["glrlm"] + per_class["glszm"] == 448
        assert {r.image_type for r in rows if r.feature_class == "firstorder"} == {
            "original", "square", "squareroot", *(f"wavelet-{b}" for b in
                                                  ("LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"))}
        assert all(np.isfinite(r.value) for r in rows)
    # features the paper names for its four-muscle strategy
    for name in ("original_shape_MajorAxisLength", "original_firstorder_Kurtosis", "wavelet-LLH_firstorder_Median",
                 "wavelet-LLL_firstorder_Kurtosis", "square_firstorder_Skewness"):
        table.value("all", name)


def _pyradiomics_bins(v: np.ndarray, width: float) -> np.ndarray:
    """Fixed bin width discretisation written out (IBSI): bins start at min - (min mod width)."""
    low = v.min() - np.mod(v.min(), width)
    return np.floor((v - low) / width).astype(int)


def test_first_order_equals_hand_computed_values(ivgc_table):
    table, _ = ivgc_table
    proto = RadiomicsProtocol.load("ivgc")
    setting = proto.passes[0]["setting"]
    width, shift, scale = proto.bin_width, setting["voxelArrayShift"], setting["normalizeScale"]
    assert (width, shift, scale, setting["normalize"]) == (5.0, 300, 100, True)
    _, _, arr, lab = _phantom()
    x = arr.astype(np.float64)
    z = (x - x.mean()) / x.std(ddof=1) * scale        # z-score over the whole image, then scaled
    voxel_mm3 = float(np.prod(SPACING))
    for roi, values in (("mr", [MR]), ("all", [MR, LR])):
        m = np.isin(lab, values)
        v = z[m]
        n = int(m.sum())
        p = np.bincount(_pyradiomics_bins(v, width)) / n
        p = p[p > 0]
        got = {name: table.value(roi, f"original_firstorder_{name}") for name in
               ("Mean", "Energy", "TotalEnergy", "Entropy", "Uniformity", "Minimum", "Maximum", "Median",
                "Variance", "Kurtosis")}
        assert got["Mean"] == pytest.approx(v.mean(), rel=1e-5, abs=1e-3)
        assert got["Energy"] == pytest.approx(np.sum((v + shift) ** 2), rel=1e-5)
        assert got["TotalEnergy"] == pytest.approx(np.sum((v + shift) ** 2) * voxel_mm3, rel=1e-5)
        assert got["Entropy"] == pytest.approx(-np.sum(p * np.log2(p)), rel=1e-6)
        assert got["Uniformity"] == pytest.approx(np.sum(p ** 2), rel=1e-6)
        assert got["Minimum"] == pytest.approx(v.min(), rel=1e-5)
        assert got["Maximum"] == pytest.approx(v.max(), rel=1e-5)
        assert got["Median"] == pytest.approx(np.median(v), rel=1e-5)
        assert got["Variance"] == pytest.approx(v.var(), rel=1e-5)
        assert got["Kurtosis"] == pytest.approx(stats.kurtosis(v, fisher=False), rel=1e-4)
        # voxel count: shape VoxelVolume is voxels x voxel volume
        assert table.value(roi, "original_shape_VoxelVolume") == pytest.approx(n * voxel_mm3, rel=1e-9)
    assert len(p) > 10          # the bin width gives a real histogram, not a couple of bins


FIRSTORDER_ONLY = {"imageType": {"Original": {}}, "featureClass": {"firstorder": ["Mean", "Entropy"]},
                   "setting": {"binWidth": 10, "additionalInfo": False}}


def test_protocol_files(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("imageType: {Original: {}}\nfeatureClass: {firstorder: [Mean, Entropy]}\n"
                     "setting: {binWidth: 10, additionalInfo: false}\n")
    proto = RadiomicsProtocol.load(plain)
    assert proto.name == "plain" and len(proto.passes) == 1 and proto.bin_width == 10
    assert RadiomicsProtocol.from_dict(proto.to_dict()) == proto
    ivgc = RadiomicsProtocol.load("ivgc")
    assert RadiomicsProtocol.from_dict(ivgc.to_dict()) == ivgc
    bad = tmp_path / "bad.yaml"
    bad.write_text("setting: {binWidth: -1}\n")
    with pytest.raises(InputError, match="bad.yaml, pass 1 are not valid for pyradiomics") as exc:
        RadiomicsProtocol.load(bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="unknown keys \\['binwidth'\\]"):
        RadiomicsProtocol.from_dict({"binwidth": 5})
    with pytest.raises(InputError, match="Unknown radiomics protocol 'nope'.*ivgc"):
        RadiomicsProtocol.load("nope")
    with pytest.raises(InputError, match="radiomics parameter file .* does not exist"):
        RadiomicsProtocol.load(tmp_path / "missing.yaml")


def test_table_per_label_csv_and_wide(tmp_path):
    proto = RadiomicsProtocol.from_dict(FIRSTORDER_ONLY)
    tables = []
    for i in range(3):
        img, msk, _, _ = _phantom(seed=i)
        tables.append(extract_features(img, msk, proto, names={MR: "mr", LR: "lr"}, case_id=f"p{i}"))
    table = FeatureTable.concat(tables)
    assert len(table) == 3 * 2 * 2 and {r.roi for r in table} == {"mr", "lr"}
    back = FeatureTable.from_csv(table.to_csv(tmp_path / "features.csv"))
    assert back.rows == table.rows
    cases, names, X = table.wide(rois=["lr", "mr"])
    assert cases == ["p0", "p1", "p2"] and X.shape == (3, 4)
    assert names == ["mr_original_firstorder_Mean", "mr_original_firstorder_Entropy",
                     "lr_original_firstorder_Mean", "lr_original_firstorder_Entropy"]
    assert X[1, 2] == table.value("lr", "original_firstorder_Mean", case_id="p1")
    img, msk, _, _ = _phantom()
    only_mr = extract_features(img, msk, proto)            # default: every label, named label_<value>
    assert {r.roi for r in only_mr} == {f"label_{MR}", f"label_{LR}"}


def test_bad_input_is_one_clear_line():
    img, msk, arr, lab = _phantom()
    proto = RadiomicsProtocol.from_dict(FIRSTORDER_ONLY)
    with pytest.raises(InputError, match="ROI 'ir' \\(label 7\\) has no voxels"):
        extract_features(img, msk, proto, rois={"ir": 7})
    shifted = sitk.Image(msk)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="does not lie on the image's grid"):
        extract_features(img, shifted, proto)
    nan = arr.copy()
    nan[0, 0, 0] = np.nan
    nan_img = sitk.GetImageFromArray(nan)
    nan_img.CopyInformation(img)
    with pytest.raises(InputError, match="NaN"):
        extract_features(nan_img, msk, proto)
    empty = sitk.GetImageFromArray(np.zeros_like(lab))
    empty.CopyInformation(img)
    with pytest.raises(InputError, match="label map is empty"):
        extract_features(img, empty, proto)


def test_icc_matches_shrout_fleiss():
    # Shrout & Fleiss (1979), Table 2: six targets rated by four judges
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    assert icc(ratings, form="ICC1")[0] == pytest.approx(0.17, abs=0.005)
    assert icc(ratings, form="ICC2")[0] == pytest.approx(0.29, abs=0.005)
    assert icc(ratings, form="ICC3")[0] == pytest.approx(0.71, abs=0.005)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (30, 3))
    b = np.column_stack([a[:, 0] + rng.normal(0, 0.1, 30), rng.normal(0, 1, 30), np.ones(30)])
    a[:, 2] = 1.0                                     # no variance at all: NaN, never kept
    values = icc(a, b)
    assert values[0] > 0.95 and values[1] < 0.5 and np.isnan(values[2])
    sel = ReproducibilitySelector(threshold=0.75).fit(a, X_repeat=b)
    assert sel.get_support().tolist() == [True, False, False]
    assert sel.transform(a).shape == (30, 1)
    with pytest.raises(InputError, match="X_repeat"):
        ReproducibilitySelector().fit(a)


def _cohort(n: int = 80, p: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(0, 1, (n, p))
    X[:, :3] += 1.2 * y[:, None] * np.array([1.0, -1.0, 0.8])
    return X * rng.uniform(1, 100, p), y


def test_univariate_tests_and_lasso():
    X, y = _cohort()
    t, p = ttest_score(X, y)
    ref = stats.ttest_ind(X[y == 1], X[y == 0])
    assert np.allclose(t, np.abs(ref.statistic)) and np.allclose(p, ref.pvalue)
    u, pu = mannwhitney_score(X, y)
    ref_u = stats.mannwhitneyu(X[y == 1, 5], X[y == 0, 5], alternative="two-sided")
    assert u[5] == ref_u.statistic and pu[5] == pytest.approx(ref_u.pvalue)
    kept = SelectFpr(ttest_score, alpha=0.01).fit(X, y).get_support()
    assert kept[:3].all() and kept.sum() <= 5
    names = np.array([f"f{i}" for i in range(X.shape[1])])
    for lasso in ("linear", "logistic"):
        pipe = selection_pipeline(alpha=0.05, lasso=lasso).fit(X, y)
        chosen = list(pipe.get_feature_names_out(names))
        assert {"f0", "f1"} <= set(chosen) and len(chosen) <= 8, (lasso, chosen)
    pipe = selection_pipeline(test="mannwhitney").fit(X, y)
    assert "f0" in pipe.get_feature_names_out(names)
    assert lasso_selector("logistic").fit(X / X.std(0), y).get_support()[0]
    with pytest.raises(InputError, match="two outcome classes"):
        ttest_score(X, np.zeros(len(y)))
