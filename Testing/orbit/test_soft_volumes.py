"""Partial-volume-aware (soft) volumes (issue 66 item 1): each structure-side's class probability summed on the
model grid around it, reported beside the voxel count in result.json, volumes.csv and the volume table, and
what the plausibility checks compare with the ranges. On 3-4 mm slices the binary mask keeps only the voxels a
thin rectus fills for the most part; the soft volume keeps the rest."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from orbitai.cli import main
from orbitai.engine.inference import SegSpec, predict
from orbitai.errors import InputError, ResultError
from orbitai.io import Volume, write_volume
from orbitai.labels import values_for
from orbitai.orbit.anatomy import NORMAL, OUTSIDE, RECTI, check_structures
from orbitai.orbit.models import load_seg_model
from orbitai.orbit.result import SOFT_VOLUME_KEY, SegmentationResult
from orbitai.orbit.segment import segment
from orbitai.phantoms import orbit_case
from orbitai.phantoms.thick import thick_slices, truth_cm3

SEED = 777066          # never used for training cohorts
RECTI_VALUES = [v for s in RECTI for v in values_for(s)]
THIN_VALUES = RECTI_VALUES + list(values_for("optic_nerve"))


# ------------------------------------------------------------------------------------- engine (a toy network)
class FractionNet(torch.nn.Module):
    """Pointwise: the probability of class 1 is the normalised intensity itself (here the share of the voxel
    the structure fills), linearly interpolated on the model grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(1e-6, 1 - 1e-6)
        return torch.cat([torch.log1p(-x), torch.log(x)], 1)


def thick_blobs() -> tuple[Volume, np.ndarray, float]:
    """Two 6 x 7.5 x 7.5 mm blocks (a thin 'rectus' each side, 0.5 mm apart: closer than the margin) on a
    0.5 mm grid, averaged into 4 mm slices (a block fills 3/8, 8/8 and 1/8 of three of them): the thick scan
    (the filled share x 100), the fine truth per side (left of column 29: 1) and the fine voxel's volume (cm3)."""
    k, j, i = np.indices((96, 40, 80))
    block = (k >= 37) & (k <= 48) & (np.abs(j - 20) < 8)
    sides = np.where(i < 29, 1, 2) * (block & ((np.abs(i - 20) < 8) | (np.abs(i - 36) < 8)))
    thick = (sides > 0).astype(np.float32).reshape(12, 8, 40, 80).mean(1) * 100.0
    return Volume(thick, (0.5, 0.5, 4.0), (0.0, 0.0, 1.75)), sides, 0.125 / 1000.0


def test_soft_volumes_count_what_lies_partly_in_a_thick_slice_and_keep_the_sides_apart():
    vol, fine, fine_cm3 = thick_blobs()
    spec = SegSpec((0.5, 0.5, 0.5), (16, 16, 16), ("rectus",), {"mode": "percentile", "low": 0, "high": 100}, "MR")
    res = predict(vol, FractionNet().eval(), spec, mirror=False)
    cls = res.class_map().array
    # the sides as the orbit rules would split them: by the gap between them
    labels = vol.with_array(np.where(cls == 1, np.where(np.arange(80) < 29, 1, 2), 0).astype(np.uint8))
    soft = res.soft_volumes(labels, {1: 1, 2: 1})
    binary = {v: float((labels.array == v).sum()) * vol.voxel_volume_mm3() / 1000.0 for v in (1, 2)}
    truth = {v: float((fine == v).sum()) * fine_cm3 for v in (1, 2)}
    for v in (1, 2):
        assert math.isfinite(soft[v]) and soft[v] >= 0
        assert binary[v] < 0.85 * truth[v]                      # the binary mask loses the partial slices
        assert abs(soft[v] - truth[v]) < 0.1 * truth[v], (v, soft[v], binary[v], truth[v])
    assert soft[1] == pytest.approx(soft[2], rel=1e-3)          # the same blocks: neither side takes the other's
    # a label map on another grid is refused in one line
    with pytest.raises(InputError, match="does not lie on the scan's grid"):
        res.soft_volumes(Volume(np.zeros((3, 3, 3), np.uint8)), {1: 1})


# ----------------------------------------------------------------------------------- checks read them
def test_checks_compare_the_soft_volume_with_the_range_when_given():
    lab = np.zeros((20, 20, 20), np.uint8)
    mr = values_for("medial_rectus_muscle")[0]
    lab[:5, :5, :10] = mr                                       # 0.25 cm3 at 1 mm: below 0.3
    labels = Volume(lab, (1.0, 1.0, 1.0))
    plain = {c.label: c for c in check_structures(labels, ("medial_rectus_muscle",))}
    soft = {c.label: c for c in check_structures(labels, ("medial_rectus_muscle",), volumes={mr: 0.42})}
    assert plain[mr].status == OUTSIDE and soft[mr].status == NORMAL
    assert soft[mr].volume_cm3 == pytest.approx(0.42)
    assert soft[values_for("medial_rectus_muscle")[1]].status == plain[values_for("medial_rectus_muscle")[1]].status


# ------------------------------------------------------------------------------------- the bundled MRI model
@pytest.fixture(scope="module")
def fine_case():
    """The atlas's orbits at 1 mm slices, 0.6 mm in-plane (T2)."""
    return orbit_case(SEED, "t2", orientation="axial", oblique=False, spacing=(0.6, 0.6, 1.0), size=(200, 200, 48))


@pytest.fixture(scope="module")
def mri_model():
    _, net, spec = load_seg_model(None, False, "cpu")
    return net, spec


def test_on_a_1mm_scan_the_soft_volume_is_close_to_the_voxel_count(fine_case, mri_model):
    net, spec = mri_model
    res = segment(fine_case.image, net, spec, mirror=False)
    soft = res.soft_volumes(spec.structures)
    counts = np.bincount(res.labels.array.ravel(), minlength=13)
    vv = res.labels.voxel_volume_mm3() / 1000.0
    assert set(soft) == set(range(1, 13))
    for v, cm3 in soft.items():
        assert math.isfinite(cm3) and cm3 >= 0
        binary = counts[v] * vv
        assert (cm3 > 0) == (binary > 0)
        assert abs(cm3 - binary) <= 0.15 * binary + 0.02, (v, cm3, binary)


def test_on_4mm_slices_the_soft_volume_recovers_what_the_binary_mask_loses(fine_case, tmp_path, capsys):
    """Through ``seg predict``: result.json and volumes.csv carry the soft volume beside the voxel count, the
    checks read it, and on 4 mm slices, over the thin structures whose voxel count lost more than a fifth of the
    1 mm truth, it is larger than the binary one and nearer the truth (on this phantom four such structures with the
    MRI model 0.1.0, one with 0.2.0, which loses less on thick slices; benchmarks/bench_orbit_thick.py measures it on
    the held-out heads)."""
    thick = thick_slices(fine_case, 4)
    truth = truth_cm3(fine_case, 4)
    path = write_volume(thick.image, tmp_path / "t2_4mm.nrrd")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    rows = {r["label"]: r for r in json.loads((out / "result.json").read_text(encoding="utf-8"))["structures"]}
    with (out / "volumes.csv").open(encoding="utf-8", newline="") as f:
        csv_rows = {int(r["label"]): r for r in csv.DictReader(f)}
    for v, r in rows.items():
        assert math.isfinite(r[SOFT_VOLUME_KEY]) and r[SOFT_VOLUME_KEY] >= 0
        assert float(csv_rows[v][SOFT_VOLUME_KEY]) == pytest.approx(r[SOFT_VOLUME_KEY])
        lo, hi = r["normal_cm3"]
        if r["check"] == NORMAL:
            assert lo <= r[SOFT_VOLUME_KEY] <= hi, r
        if "below the normal adult range" in r["note"]:
            assert r[SOFT_VOLUME_KEY] < lo and r["note"].startswith(f"{r[SOFT_VOLUME_KEY]:.2f} cm3"), r
    lost = [v for v in THIN_VALUES if 0 < rows[v]["volume_cm3"] < 0.8 * truth[v]]
    assert lost
    binary = sum(rows[v]["volume_cm3"] for v in lost)
    soft = sum(rows[v][SOFT_VOLUME_KEY] for v in lost)
    true = sum(truth[v] for v in lost)
    assert soft > binary and abs(soft - true) < abs(binary - true), (soft, binary, true)
    # the folder reads back (the soft volume optional, checked when present)
    SegmentationResult.read(out)
    data = json.loads((out / "result.json").read_text(encoding="utf-8"))
    data["structures"][0][SOFT_VOLUME_KEY] = -1.0
    (out / "result.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultError, match="soft_volume_cm3 must be a finite number >= 0"):
        SegmentationResult.read(out)


def test_the_volume_table_shows_the_soft_volume_beside_the_voxel_count(ctx, tmp_path):
    """Slicer's (and the browser's) volume table: a 'soft volume (cm3)' column in cm3 after the voxel count's; a
    result written before the soft volumes existed still loads, without the column."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
    from orbitai.mrml import rows_from_table_node, volume_node_from_volume
    from orbitai.mrml.tables import column_units
    from orbitai.orbit.rules import structure_volumes

    case = orbit_case(SEED, "ct", size=(96, 96, 24), spacing=(0.9, 0.9, 2.0), oblique=False)
    node = volume_node_from_volume(ctx, case.image, name="phantom")
    labels = case.labels.with_array(np.where(case.labels.array <= 12, case.labels.array, 0))
    rows = structure_volumes(labels, ("eyeball", "optic_nerve", *RECTI))
    for r in rows:
        r[SOFT_VOLUME_KEY] = round(1.1 * r["volume_cm3"], 4)
    SegmentationResult(labels, rows, "orbit_svnet_ct_demo").write(tmp_path / "soft")
    out = OrbitSegmentationLogic(ctx).loadResults(tmp_path / "soft", node)
    table = {r["structure"]: r for r in rows_from_table_node(out.volumes_table_node)}
    for r in rows:
        assert table[r["name"]]["soft volume (cm3)"] == pytest.approx(r[SOFT_VOLUME_KEY])
        assert table[r["name"]]["volume (cm3)"] == pytest.approx(r["volume_cm3"])
    assert column_units(out.volumes_table_node) == {"volume (cm3)": "cm3", "soft volume (cm3)": "cm3"}
    for r in rows:
        del r[SOFT_VOLUME_KEY]
    SegmentationResult(labels, rows, "orbit_svnet_ct_demo").write(tmp_path / "plain")
    out = OrbitSegmentationLogic(ctx).loadResults(tmp_path / "plain", node)
    assert "soft volume (cm3)" not in rows_from_table_node(out.volumes_table_node)[0]
