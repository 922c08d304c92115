"""Issue 81.8 without a browser: the MRI window presets and the threshold's default from the scan's intensities
(`orbitai.web.intensity`), and the rows of "Which scan next" (the patient of a DICOM row, the scan each row opens)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from orbitai.web.intensity import (AUTO, CT_PRESETS, MRI_PRESETS, foreground, preset_names, preset_values, sample,
                                   threshold_default)


def _head(shape=(40, 64, 64), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head phantom: air (about 0) around an ellipsoid of tissue (about 300) with a bright skull-like shell (about
    900) and a few bright blobs; and the head's mask."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape).astype(float)
    r = np.sqrt(((k - shape[0] / 2) / (shape[0] * 0.42)) ** 2 + ((j - shape[1] / 2) / (shape[1] * 0.42)) ** 2
                + ((i - shape[2] / 2) / (shape[2] * 0.42)) ** 2)
    head = r < 1.0
    a = rng.normal(5, 2, shape)
    a[head] = rng.normal(300, 30, int(head.sum()))
    a[(r >= 0.9) & head] = rng.normal(900, 40, int(((r >= 0.9) & head).sum()))
    return a.astype(np.float32), head


def test_presets_auto_ct_fixed_mri_from_the_scans_percentiles():
    a, head = _head()
    values = preset_values(a)
    assert list(values) == preset_names() == [AUTO, *CT_PRESETS, *MRI_PRESETS]
    for name, (w, lv) in CT_PRESETS.items():
        assert values[name] == [w, lv]
    lo, hi = np.percentile(a, (0.1, 99.9))                  # Slicer's auto window
    assert values[AUTO][0] == pytest.approx(hi - lo, abs=0.2) and values[AUTO][1] == pytest.approx((lo + hi) / 2, abs=0.2)
    for name, (p_lo, p_hi) in MRI_PRESETS.items():
        lo, hi = np.percentile(a[head], (p_lo, p_hi))      # the head's values, not the air's
        w, lv = values[name]
        assert w == pytest.approx(hi - lo, rel=0.05) and lv == pytest.approx((lo + hi) / 2, rel=0.05), name
        assert all(isinstance(x, float) for x in values[name])        # state-ready (JSON) numbers
    assert preset_values(None) == {name: [w, lv] for name, (w, lv) in CT_PRESETS.items()}


def test_the_threshold_default_is_the_brightest_part_of_the_head_not_the_head():
    a, head = _head()
    lo, hi = threshold_default(a)
    selected = (a >= lo) & (a <= hi)
    assert hi >= a.max() and 0 < selected.sum() < 0.05 * head.sum()
    assert selected[head].mean() > 0.99 * selected.mean()      # inside the head
    old = (a >= a.min() + 0.25 * np.ptp(a)) & (a <= a.min() + 0.75 * np.ptp(a))    # the old default: the head
    assert old.sum() > 0.5 * head.sum()
    ct = np.full((20, 40, 40), -1000, np.int16)             # a CT: air, tissue, a little bone
    ct[2:18, 5:35, 5:35] = 40
    ct[2:18, 5:35, 5:7] = 1200
    lo, hi = threshold_default(ct)
    assert 40 < lo <= 1200 == hi
    assert threshold_default(None) is None and threshold_default(np.zeros((0, 3, 3))) is None


def test_sample_and_foreground_are_bounded_and_skip_the_air():
    a, head = _head((80, 128, 128))
    s = sample(a, 100_000)
    assert 100_000 // 27 <= s.size <= 100_000          # an even grid: at most the budget, a step of 3 here
    fg = foreground(s)
    assert fg.min() > 50 and abs(fg.size / s.size - head.mean()) < 0.05
    assert foreground(np.full(10, 3.0)).size == 10


def test_rank_rows_show_the_dicom_patient_and_open_their_scan(tmp_path):
    pytest.importorskip("slicer")
    from orbitai.app.corrections import RankLogic
    from orbitai.io import Volume
    from orbitai.mrml import new_scene, volume_node_from_volume
    from orbitai.orbit.result import RANKING_FILE
    from orbitai.web.identity import set_identity

    ctx = new_scene()
    vol = Volume(np.zeros((4, 5, 6), np.int16), (1.0, 1.0, 1.0))
    dicom = volume_node_from_volume(ctx, vol, name="3: T2 TSE AX")
    set_identity(dicom, {"PatientName": "DOE^JANE", "PatientID": "PID777", "SeriesNumber": "3"})
    nifti = volume_node_from_volume(ctx, vol, name="head")
    set_identity(nifti, {"File": "head.nii.gz"})
    with (tmp_path / RANKING_FILE).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case_id", "image", "score", "implausible", "structures",
                                          "mean_confidence", "note"])
        w.writeheader()
        w.writerow({"case_id": nifti.GetID(), "image": "a.nrrd", "score": 0.7, "implausible": 2, "structures": 12,
                    "mean_confidence": 0.5, "note": ""})
        w.writerow({"case_id": dicom.GetID(), "image": "b.nrrd", "score": 0.2, "implausible": 0, "structures": 12,
                    "mean_confidence": 0.9, "note": ""})
    out = RankLogic(ctx).importResults(tmp_path)
    assert [r["scan"] for r in out.rows] == ["head", "3: T2 TSE AX"]
    assert [r["patient"] for r in out.rows] == ["", "DOE, JANE (ID PID777)"]
    assert out.scan_ids == [nifti.GetID(), dicom.GetID()]
    set_identity(dicom, {"File": "b.nrrd"})          # no DICOM row: no patient column
    dicom.RemoveAttribute("OrbitAI.Identity.PatientName")
    dicom.RemoveAttribute("OrbitAI.Identity.PatientID")
    assert "patient" not in RankLogic(ctx).importResults(tmp_path).rows[0]
