"""The ``neuro predict|lesions`` result folder (orbitai.neuro.result): written atomically, read back
exactly, every incomplete or inconsistent folder refused in one line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orbitai.errors import ResultError
from orbitai.io import Volume, VolumeError, read_volume, rotation, write_volume
from orbitai.neuro.result import (
    LESION_COLUMNS,
    LesionRow,
    NeuroResult,
    NeuroResultError,
    lesion_row,
    write_neuro_result,
)


def _grid() -> Volume:
    """A small oblique, anisotropic 'FLAIR' grid."""
    return Volume(np.zeros((12, 20, 18), np.float32), (0.9, 0.9, 3.0), (10.0, -40.0, 5.0), rotation(0.05, -0.03, 0.1))


def _case(applies: bool | None = True, probability: float = 0.81):
    """(data, lesions, rows, brain, heat) of a valid result: two lesions; ``applies`` None = ``neuro lesions``."""
    g = _grid()
    mask = np.zeros(g.shape, np.uint8)
    mask[3:5, 4:7, 4:7] = 1          # 18 voxels
    mask[8, 12:14, 10:12] = 1        # 4 voxels
    brain = np.zeros(g.shape, np.uint8)
    brain[1:11, 2:18, 2:16] = 1
    v = g.voxel_volume_mm3() / 1000.0
    rows = [{"id": 1, "volume_ml": 18 * v, "location": "periventricular", "centroid_r": 1.5, "centroid_a": -2.0,
             "centroid_s": 14.25, "voxels": 18},
            {"id": 2, "volume_ml": 4 * v, "location": "juxtacortical", "centroid_r": -7.0, "centroid_a": 3.5,
             "centroid_s": 30.0, "voxels": 4}]
    icv = float(brain.sum()) * v
    total = 22 * v
    data = {"lesions": {"count": 2, "total_ml": total, "percent_icv": 100 * total / icv, "icv_ml": icv,
                        "counts": {"periventricular": 1, "juxtacortical": 1},
                        "volumes_ml": {"periventricular": 18 * v, "juxtacortical": 4 * v}},
            "device": "cpu", "seconds": np.float64(3.5), "warnings": ["thick slices"], "notes": ["already skull-stripped"]}
    if applies is not None:
        data.update({"model": "neuro_twoview18_demo", "architecture": "twoview18", "input_mode": "lesion_mask",
                     "threshold": 0.5, "applies": applies})
        if applies:
            data.update({"probability_nmosd": np.float32(probability), "call": "NMOSD" if probability >= 0.5 else "MS"})
        else:
            data.update({"probability_nmosd": None, "call": None, "reason": "no white-matter lesion was found"})
    heat = None
    if applies:
        h = np.zeros(g.shape, np.float32)
        h[2:6, 3:8, 3:8] = np.linspace(0.2, 1.0, 5, dtype=np.float32)
        heat = g.with_array(h)
    return data, g.with_array(mask), rows, g.with_array(brain), heat


def _write(out: Path, applies: bool | None = True, **kw) -> Path:
    data, lesions, rows, brain, heat = _case(applies, **kw)
    return write_neuro_result(out, data, lesions, rows, brain, heat)


def test_round_trip(tmp_path):
    data, lesions, rows, brain, heat = _case()
    path = write_neuro_result(tmp_path / "res", data, lesions, rows, brain, heat)
    assert path == tmp_path / "res" / "result.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["task"] == "neuro_differential"
    assert on_disk["files"] == {"lesions": "lesions.seg.nrrd", "lesion_table": "lesions.csv",
                                "brain": "brain.seg.nrrd", "heatmap": "heatmap.nrrd"}
    assert isinstance(on_disk["probability_nmosd"], float) and on_disk["seconds"] == 3.5
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == sorted([*on_disk["files"].values(), "result.json"])
    assert (tmp_path / "res" / "lesions.csv").read_text().splitlines()[0] == ",".join(LESION_COLUMNS)

    r = NeuroResult.read(tmp_path / "res", _grid())
    assert r.classified and r.applies and r.call == "NMOSD" and abs(r.probability - 0.81) < 1e-6
    assert r.summary["count"] == 2 and r.warnings == ["thick slices"] and r.notes == ["already skull-stripped"]
    assert np.array_equal(r.lesions.array, lesions.array) and r.lesions.same_geometry(_grid(), tol=1e-6)
    assert np.array_equal(r.brain.array, brain.array)
    assert np.allclose(r.heatmap.array, heat.array)
    assert r.lesion_rows == [lesion_row(x) for x in rows]
    assert r.lesion_rows[0] == LesionRow(1, rows[0]["volume_ml"], "periventricular", (1.5, -2.0, 14.25), 18)
    from orbitai.io.segfile import read_segmentation

    _, table = read_segmentation(tmp_path / "res" / "lesions.seg.nrrd")
    assert [t.name for t in table.values()] == ["white_matter_lesion"]


def test_ms_call_below_threshold_and_rows_as_objects(tmp_path):
    data, lesions, rows, brain, heat = _case(probability=0.2)
    objs = [lesion_row(r) for r in rows]    # objects with centroid_ras, as lesion_table.Lesion
    write_neuro_result(tmp_path / "res", data, lesions, objs, None, heat)
    r = NeuroResult.read(tmp_path / "res")
    assert r.call == "MS" and r.brain is None and len(r.lesion_rows) == 2


def test_probability_rounded_onto_the_threshold_keeps_its_call(tmp_path):
    """0.4999996 written as 0.5 (six decimals) with the call 'MS' made before rounding is accepted."""
    data, lesions, rows, brain, heat = _case(probability=0.5)
    data["call"] = "MS"
    write_neuro_result(tmp_path / "res", data, lesions, rows, brain, heat)
    assert NeuroResult.read(tmp_path / "res").call == "MS"


def test_rows_from_the_lesion_table(tmp_path):
    """The CLI hands over `orbitai.neuro.lesion_table.Lesion` objects and `LesionTable.summary()`."""
    from orbitai.neuro.lesion_table import Lesion, LesionTable

    data, lesions, rows, brain, heat = _case()
    table = LesionTable(2, data["lesions"]["total_ml"], data["lesions"]["percent_icv"], data["lesions"]["icv_ml"],
                        [Lesion(r["id"], r["volume_ml"], r["location"], (r["centroid_r"], r["centroid_a"], r["centroid_s"]),
                                r["voxels"]) for r in rows])
    data["lesions"] = table.summary()
    write_neuro_result(tmp_path / "res", data, lesions, table.lesions, brain, heat)
    r = NeuroResult.read(tmp_path / "res", _grid())
    assert r.lesion_rows == [lesion_row(x) for x in rows] and r.summary["counts"]["periventricular"] == 1


def test_no_lesion_classifier_does_not_apply(tmp_path):
    """No lesion: applies false, no probability, no call, a reason; an empty lesion table and mask."""
    data, lesions, _rows, brain, _ = _case(applies=False)
    data["lesions"] = {**data["lesions"], "count": 0, "total_ml": 0.0, "percent_icv": 0.0, "counts": {}, "volumes_ml": {}}
    write_neuro_result(tmp_path / "res", data, lesions.with_array(np.zeros(lesions.shape, np.uint8)), [], brain)
    r = NeuroResult.read(tmp_path / "res", _grid())
    assert r.classified and not r.applies and r.probability is None and r.call is None and r.heatmap is None
    assert r.data["reason"] and r.lesion_rows == [] and not r.lesions.array.any()
    on_disk = json.loads((tmp_path / "res" / "result.json").read_text())
    assert on_disk["applies"] is False and on_disk["probability_nmosd"] is None and "heatmap" not in on_disk["files"]


def test_lesions_only_result(tmp_path):
    _write(tmp_path / "res", applies=None)
    r = NeuroResult.read(tmp_path / "res", _grid())
    assert not r.classified and r.probability is None and r.heatmap is None and len(r.lesion_rows) == 2


@pytest.mark.parametrize("how, match", [
    ("probability without applies", "has probability_nmosd, call but no 'applies'"),
    ("probability when not applying", "does not apply has no probability_nmosd"),
    ("heat map when not applying", "does not apply has no heat map"),
    ("applies without lesions", "cannot apply without any lesion"),
    ("wrong call", "call must be 'NMOSD'"),
    ("probability out of range", r"probability_nmosd must be a finite number in \[0, 1\]"),
    ("no model", "model must be a non-empty string"),
    ("no reason", "reason must be a non-empty string"),
    ("percent", "percent_icv .* is not 100 x total_ml / icv_ml"),
    ("rows vs count", "1 lesions listed, but result.json counts 2"),
    ("duplicate id", "invalid id"),
    ("heat out of range", r"finite values in \[0, 1\]"),
    ("location count", "1 juxtacortical lesions listed, but result.json counts 2"),
    ("location volume", r"the periventricular lesions listed add up to 0\.0437 mL, but result.json says 0\.5 mL"),
])
def test_writer_refuses_what_breaks_the_contract_nothing_written(tmp_path, how, match):
    data, lesions, rows, brain, heat = _case()
    if how == "probability without applies":
        del data["applies"]
    elif how == "probability when not applying":
        data.update(applies=False, reason="none")
    elif how == "heat map when not applying":
        data.update(applies=False, reason="none", probability_nmosd=None, call=None)
    elif how == "applies without lesions":
        data["lesions"] = {**data["lesions"], "count": 0, "total_ml": 0.0, "percent_icv": 0.0}
        rows = []
    elif how == "wrong call":
        data["call"] = "MS"
    elif how == "probability out of range":
        data["probability_nmosd"] = 1.2
    elif how == "no model":
        data["model"] = ""
    elif how == "no reason":
        data.update(applies=False, probability_nmosd=None, call=None)
        heat = None
    elif how == "percent":
        data["lesions"]["percent_icv"] = 5.0
    elif how == "rows vs count":
        rows = rows[:1]
    elif how == "duplicate id":
        rows[1]["id"] = 1
    elif how == "heat out of range":
        heat = heat.with_array(heat.array * 2)
    elif how == "location count":
        data["lesions"]["counts"]["juxtacortical"] = 2
    elif how == "location volume":
        data["lesions"]["volumes_ml"]["periventricular"] = 0.5
    with pytest.raises(NeuroResultError, match=match):
        write_neuro_result(tmp_path / "res", data, lesions, rows, brain, heat)
    assert not (tmp_path / "res").exists()


def test_writer_refuses_maps_off_the_lesion_grid(tmp_path):
    data, lesions, rows, brain, heat = _case()
    moved = Volume(heat.array, heat.spacing, (0.0, 0.0, 0.0), heat.direction)
    with pytest.raises(VolumeError, match="heat map .* does not lie on the lesion mask's grid"):
        write_neuro_result(tmp_path / "res", data, lesions, rows, brain, moved)
    assert not (tmp_path / "res").exists()


def test_rewrite_replaces_previous_result(tmp_path):
    """A second result in the same folder replaces the first whole (no stale heat map from the first)."""
    _write(tmp_path / "res")
    data, lesions, _rows, brain, _ = _case(applies=False)
    data["lesions"] = {**data["lesions"], "count": 0, "total_ml": 0.0, "percent_icv": 0.0, "counts": {},
                       "volumes_ml": {}}
    write_neuro_result(tmp_path / "res", data, lesions.with_array(np.zeros(lesions.shape, np.uint8)), [], brain)
    assert not (tmp_path / "res" / "heatmap.nrrd").exists()
    assert NeuroResult.read(tmp_path / "res").heatmap is None


def _damage(folder: Path, how: str) -> None:
    res = json.loads((folder / "result.json").read_text())
    g = _grid()
    if how == "no result.json":
        (folder / "result.json").unlink()
        return
    if how == "result.json not json":
        (folder / "result.json").write_text('{"task": "neuro_')
        return
    if how == "wrong task":
        res["task"] = "ivgc_response"
    elif how == "no lesions file":
        (folder / "lesions.seg.nrrd").unlink()
    elif how == "lesions not listed":
        del res["files"]["lesions"]
    elif how == "no lesion table":
        (folder / "lesions.csv").unlink()
    elif how == "heat map listed, missing":
        (folder / "heatmap.nrrd").unlink()
    elif how == "brain listed, missing":
        (folder / "brain.seg.nrrd").unlink()
    elif how == "corrupt lesions file":
        (folder / "lesions.seg.nrrd").write_bytes(b"NRRD0004\ntype: garbage\n\n")
    elif how == "truncated heat map":
        data = (folder / "heatmap.nrrd").read_bytes()
        (folder / "heatmap.nrrd").write_bytes(data[: len(data) // 2])
    elif how == "lesion table columns":
        (folder / "lesions.csv").write_text("id,volume\n1,0.2\n")
    elif how == "lesion table number":
        lines = (folder / "lesions.csv").read_text().splitlines()
        lines[1] = lines[1].replace("periventricular", "periventricular,extra")
        (folder / "lesions.csv").write_text("\n".join(lines) + "\n")
    elif how == "lesion table row missing":
        lines = (folder / "lesions.csv").read_text().splitlines()
        (folder / "lesions.csv").write_text("\n".join(lines[:2]) + "\n")
    elif how == "lesion mask empty":
        from orbitai.io.segfile import lesion_table, write_segmentation

        write_segmentation(g.with_array(np.zeros(g.shape, np.uint8)), folder / "lesions.seg.nrrd", lesion_table())
    elif how == "lesion segment misnamed":
        from orbitai.io.segfile import lesion_table, write_segmentation

        lab = read_volume(folder / "lesions.seg.nrrd")
        write_segmentation(lab, folder / "lesions.seg.nrrd", lesion_table("tumour"))
    elif how == "lesions off grid":
        from orbitai.io.segfile import lesion_table, write_segmentation

        lab = read_volume(folder / "lesions.seg.nrrd")
        write_segmentation(Volume(lab.array, lab.spacing, (0.0, 0.0, 0.0), lab.direction),
                           folder / "lesions.seg.nrrd", lesion_table())
    elif how == "heat map NaN":
        a = np.zeros(g.shape, np.float32)
        a[0, 0, 0] = np.nan
        write_volume(g.with_array(a), folder / "heatmap.nrrd")
    elif how == "heat map above 1":
        write_volume(g.with_array(np.full(g.shape, 1.5, np.float32)), folder / "heatmap.nrrd")
    elif how == "heat map off grid":
        write_volume(Volume(np.zeros(g.shape, np.float32), g.spacing, (0.0, 0.0, 0.0), g.direction),
                     folder / "heatmap.nrrd")
    elif how == "brain empty":
        from orbitai.io.segfile import LabelInfo, write_segmentation

        write_segmentation(g.with_array(np.zeros(g.shape, np.uint8)), folder / "brain.seg.nrrd",
                           {1: LabelInfo(1, "intracranial")})
    elif how == "summary missing":
        del res["lesions"]
    elif how == "count negative":
        res["lesions"]["count"] = -1
    elif how == "icv zero":
        res["lesions"]["icv_ml"] = 0
    elif how == "location volume NaN":
        res["lesions"]["volumes_ml"]["periventricular"] = float("nan")
    elif how == "location counts disagree":
        res["lesions"]["counts"] = {"periventricular": 2}
    elif how == "applies not bool":
        res["applies"] = "yes"
    elif how == "threshold missing":
        del res["threshold"]
    elif how == "file outside folder":
        res["files"]["heatmap"] = "../heatmap.nrrd"
    (folder / "result.json").write_text(json.dumps(res))


DAMAGE = ("no result.json", "result.json not json", "wrong task", "no lesions file", "lesions not listed",
          "no lesion table", "heat map listed, missing", "brain listed, missing", "corrupt lesions file",
          "truncated heat map", "lesion table columns", "lesion table number", "lesion table row missing",
          "lesion mask empty", "lesion segment misnamed", "lesions off grid", "heat map NaN", "heat map above 1",
          "heat map off grid", "brain empty", "summary missing", "count negative", "icv zero",
          "location volume NaN", "location counts disagree", "applies not bool", "threshold missing", "file outside folder")


@pytest.mark.parametrize("how", DAMAGE)
def test_reader_refuses_incomplete_or_corrupt_folders(tmp_path, how):
    _write(tmp_path / "res")
    NeuroResult.read(tmp_path / "res", _grid())      # intact: accepted
    _damage(tmp_path / "res", how)
    with pytest.raises((ResultError, VolumeError)) as info:
        NeuroResult.read(tmp_path / "res", _grid())
    msg = str(info.value)
    assert msg and "\n" not in msg, f"{how}: {msg!r}"
