"""IVGC radiomics: ROI strategies (bilateral, prefixes, label checks), the documented perturbation,
and ``orbitai ivgc features`` on phantoms: Dask (2 workers) gives the serial table, reruns reuse
the checksummed per-case cache, a failed case is one line by id without losing the others, and bad
input (missing rectus named, labels outside the scheme, geometry, 2D, NaN, CT, no muscle) is one
line with nothing written."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.errors import InputError
from orbitai.io import Volume, read_volume, write_volume
from orbitai.ivgc.features import WideTable, cache_folder
from orbitai.ivgc.rois import (PERTURBATION, STRATEGIES, STRATEGY_NAMES, parse_strategies, perturb_labels,
                               strategy_masks)

pytest.importorskip("radiomics")
pytest.importorskip("dask.distributed")


def test_strategies_are_the_papers_six_bilateral_rois():
    assert STRATEGY_NAMES == ("sr", "lr", "mr", "ir", "mrlr", "all")
    assert STRATEGIES["mr"].values == (9, 10) and STRATEGIES["lr"].values == (11, 12)
    assert STRATEGIES["sr"].values == (5, 6) and STRATEGIES["ir"].values == (7, 8)
    assert sorted(STRATEGIES["mrlr"].values) == [9, 10, 11, 12]
    assert sorted(STRATEGIES["all"].values) == list(range(5, 13))
    assert [s.name for s in parse_strategies("all, MR mr")] == ["all", "mr"]
    with pytest.raises(InputError, match="Unknown ROI strategy 'so'"):
        parse_strategies(["so"])


def _labels() -> np.ndarray:
    lab = np.zeros((6, 40, 50), np.uint8)
    for i, v in enumerate(range(5, 13)):
        lab[1:5, 3 + 9 * (i // 2):9 + 9 * (i // 2), 2 + 24 * (v % 2):12 + 24 * (v % 2)] = v
    lab[0, 0, 0] = 1                      # an eyeball voxel: in the scheme, not a rectus
    return lab


def test_strategy_masks_and_their_errors():
    lab = _labels()
    masks = strategy_masks(lab, parse_strategies(None))
    assert masks["mrlr"].sum() == masks["mr"].sum() + masks["lr"].sum()
    assert masks["all"].sum() == sum(masks[s].sum() for s in ("sr", "lr", "mr", "ir"))
    no_right_lr = np.where(lab == 12, 0, lab)
    with pytest.raises(InputError, match=r"lacks lateral_rectus_muscle_right \(label 12\), which ROI strategy 'lr'"):
        strategy_masks(no_right_lr, parse_strategies(["mr", "lr"]))
    assert set(strategy_masks(no_right_lr, parse_strategies(["mr", "sr"]))) == {"mr", "sr"}
    with pytest.raises(InputError, match=r"outside the orbit scheme \(40\)"):
        strategy_masks(np.where(lab == 5, 40, lab), parse_strategies(["mr"]))
    with pytest.raises(InputError, match="non-integer label values"):
        strategy_masks(lab.astype(np.float32) + (lab == 9) * 0.5, parse_strategies(["mr"]))
    with pytest.raises(InputError, match="holds no rectus muscle"):
        strategy_masks(np.where(lab > 4, 0, lab), parse_strategies(["mr"]))


def test_perturbation_moves_each_contour_in_plane_and_is_repeatable():
    lab = _labels()
    a = perturb_labels(lab, (2.5, 0.7, 0.7), "case_1")
    assert np.array_equal(a, perturb_labels(lab, (2.5, 0.7, 0.7), "case_1"))
    assert not np.array_equal(a, perturb_labels(lab, (2.5, 0.7, 0.7), "case_2"))
    for v in range(5, 13):
        before, after = lab == v, a == v
        assert after.any() and not np.array_equal(before, after)
        # in-plane only: the slices a muscle spans do not change
        assert np.array_equal(before.any(axis=(1, 2)), after.any(axis=(1, 2)))
    assert np.array_equal(a == 1, lab == 1)            # non-recti untouched
    assert "one voxel" in PERTURBATION


# --------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from orbitai.phantoms.cohort import write_cohort

    return write_cohort("ivgc", 4, 21, tmp_path_factory.mktemp("ivgc4"), montage_cases=0)


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.slow   # over 15 s; the cohort runner's Dask test keeps Dask in the default suite
def test_dask_gives_the_serial_table(cohort, tmp_path, capsys):
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    args = ["--manifest", str(cohort), "--strategies", "mrlr"]
    rc, out, err = _run(["ivgc", "features", *args, "--out", str(serial), "--workers", "0"], capsys)
    assert rc == 0, err
    assert "4 cases x 660 features (1 ROI strategy x 660); 4 extracted" in out
    rc, out, err = _run(["ivgc", "features", *args, "--out", str(dask), "--workers", "2"], capsys)
    assert rc == 0, err
    a, b = WideTable.from_csv(serial), WideTable.from_csv(dask)
    assert a.case_ids == b.case_ids == [f"ivgc_{i:04d}" for i in range(4)]
    assert a.names == b.names and a.names[0] == "mrlr_original_shape_Elongation" and len(a.names) == 660
    assert np.array_equal(a.X, b.X)


def test_reruns_keep_the_rows_of_unchanged_cases(cohort, tmp_path, capsys):
    out_csv = tmp_path / "f.csv"
    args = ["ivgc", "features", "--manifest", str(cohort), "--strategies", "mr", "--out", str(out_csv),
            "--workers", "0"]
    rc, out, err = _run(args, capsys)
    assert rc == 0 and "4 extracted, 0 kept" in out, err
    first = WideTable.from_csv(out_csv)
    assert len(first.keys) == 4 and next(csv.reader(out_csv.open()))[:2] == ["case_id", "inputs_sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]        # no cache left after a complete run
    rc, out, err = _run(args, capsys)
    assert rc == 0 and "0 extracted, 4 kept from the earlier run" in out
    assert np.array_equal(WideTable.from_csv(out_csv).X, first.X)
    # other strategies are other work
    rc, out, err = _run([*args, "--strategies", "mr", "lr"], capsys)
    assert rc == 0 and "4 extracted, 0 kept" in out


def _manifest_with(cohort: Path, tmp_path: Path, case: int, segmentation: Path | None) -> Path:
    rows = list(csv.DictReader(cohort.open()))
    for r in rows:
        for k in ("image", "segmentation"):
            r[k] = str((cohort.parent / r[k]).resolve())
    if segmentation is not None:
        rows[case]["segmentation"] = str(segmentation)
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def test_a_failed_case_is_named_the_others_written_and_a_rerun_does_only_what_is_missing(cohort, tmp_path, capsys,
                                                                                        caplog):
    from orbitai.cohort.manifest import read_labels

    rows = list(csv.DictReader(cohort.open()))
    labels = read_labels(cohort.parent / rows[1]["segmentation"])
    broken = tmp_path / "broken.nrrd"
    write_volume(labels.with_array(np.where(labels.array == 10, 0, labels.array).astype(np.uint8)), broken)
    out = tmp_path / "f.csv"
    args = ["ivgc", "features", "--out", str(out), "--workers", "0", "--strategies", "mr"]
    rc, stdout, err = _run([*args, "--manifest", str(_manifest_with(cohort, tmp_path, 1, broken))], capsys)
    assert rc == 1
    assert err.strip().splitlines() == [
        "orbitai ivgc features: error: 1 of 4 cases failed: ivgc_0001 (the segmentation broken.nrrd lacks "
        "medial_rectus_muscle_right (label 10), which ROI strategy 'mr' (medial rectus, both orbits) needs.); "
        f"the other 3 are in {out}"]
    assert WideTable.from_csv(out).case_ids == ["ivgc_0000", "ivgc_0002", "ivgc_0003"]
    # the finished cases wait in the checksummed cache; a damaged entry is named in one warning and redone
    entries = sorted(cache_folder(out).glob("*.npz"))
    assert len(entries) == 3
    entries[1].write_bytes(entries[1].read_bytes()[:-20])
    out.unlink()                                   # the cache alone resumes the run
    caplog.set_level(logging.WARNING)   # the warning is logged (where stderr goes depends on earlier tests)
    rc, stdout, err = _run([*args, "--manifest", str(_manifest_with(cohort, tmp_path, 1, None))], capsys)
    assert rc == 0, err
    assert "2 extracted, 2 kept from the earlier run" in stdout
    warned = err + caplog.text
    assert "radiomics case cache" in warned and "checksum mismatch" in warned
    assert WideTable.from_csv(out).case_ids == [f"ivgc_{i:04d}" for i in range(4)]
    assert not cache_folder(out).exists()


def _one_case(tmp_path: Path, image: Volume, labels: Volume) -> Path:
    write_volume(image, tmp_path / "img.nrrd")
    write_volume(labels, tmp_path / "seg.nrrd")
    m = tmp_path / "m.csv"
    m.write_text("case_id,image,segmentation,label\nc1,img.nrrd,seg.nrrd,1\n")
    return m


def _case(cohort: Path) -> tuple[Volume, Volume]:
    from orbitai.cohort.manifest import read_labels

    row = next(csv.DictReader(cohort.open()))
    return read_volume(cohort.parent / row["image"]), read_labels(cohort.parent / row["segmentation"])


def _shifted(v: Volume, mm: float) -> Volume:
    return Volume(v.array, v.spacing, tuple(np.add(v.origin, (mm, 0.0, 0.0))), v.direction)


BAD = {
    "missing rectus": (lambda im, lab: (im, lab.with_array(np.where(lab.array == 6, 0, lab.array))),
                       "lacks superior_rectus_muscle_right (label 6), which ROI strategy 'sr'"),
    "labels outside the scheme": (lambda im, lab: (im, lab.with_array(np.where(lab.array == 13, 33, lab.array))),
                                  "label values outside the orbit scheme (33)"),
    "no overlap": (lambda im, lab: (im, _shifted(lab, 500.0)), "does not lie in the image's physical space: origin "
                                                                "shifted by (500.0, 0.0, 0.0) mm"),
    "shifted 30 mm": (lambda im, lab: (im, _shifted(lab, 30.0)), "does not lie in the image's physical space: origin "
                                                                 "shifted by (30.0, 0.0, 0.0) mm"),
    "2D image": (lambda im, lab: (Volume(im.array[:, :, 10:11].copy(), im.spacing, im.origin, im.direction),
                                  Volume(lab.array[:, :, 10:11].copy(), lab.spacing, lab.origin, lab.direction)),
                 "is 2D"),
    "NaN": (lambda im, lab: (im.with_array(np.where(lab.array == 9, np.nan, im.array.astype(np.float32))), lab),
            "Case c1: the image img.nrrd contains"),
    "CT as MRI": (lambda im, lab: (im.with_array(im.array.astype(np.int16) - 1024), lab), "looks like CT"),
    "empty muscle mask": (lambda im, lab: (im, lab.with_array(np.where((lab.array >= 5) & (lab.array <= 12), 0,
                                                                       lab.array))), "holds no rectus muscle"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_one_line_and_nothing_is_written(kind, cohort, tmp_path, capsys):
    image, labels = _case(cohort)
    change, message = BAD[kind]
    manifest = _one_case(tmp_path, *change(image, labels))
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, out, err = _run(["ivgc", "features", "--manifest", str(manifest), "--out", str(tmp_path / "f.csv"),
                         "--workers", "0", "--strategies", "sr", "mr"], capsys)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_segmentation_on_another_grid_is_refused_or_resampled_on_request(cohort, tmp_path, capsys):
    from orbitai.io import resample_spacing

    image, labels = _case(cohort)
    finer = resample_spacing(labels, [s * 0.5 for s in labels.spacing], label=True)
    manifest = _one_case(tmp_path, image, finer)
    args = ["ivgc", "features", "--manifest", str(manifest), "--out", str(tmp_path / "f.csv"), "--workers", "0",
            "--strategies", "mr"]
    rc, out, err = _run(args, capsys)
    assert rc == 2 and "Case c1: the segmentation seg.nrrd does not lie in the image's physical space: shape" in err
    assert not (tmp_path / "f.csv").exists()
    rc, out, err = _run([*args, "--resample-masks"], capsys)
    assert rc == 0, err
    assert "warning: --resample-masks: a segmentation not on its image's grid was resampled" in out
    assert WideTable.from_csv(tmp_path / "f.csv").X.shape == (1, 660)
    assert not cache_folder(tmp_path / "f.csv").exists()
    # a row of a resampled segmentation is not reused by a run that refuses it
    rc, out, err = _run(args, capsys)
    assert rc == 2 and "does not lie in the image's physical space" in err


def test_options_are_checked_before_any_work(cohort, tmp_path, capsys):
    rc, _, err = _run(["ivgc", "features", "--manifest", str(cohort), "--out", str(tmp_path),
                       "--workers", "0"], capsys)
    assert rc == 2 and "is a folder" in err
    rc, _, err = _run(["ivgc", "features", "--manifest", str(cohort), "--out", str(tmp_path / "f.csv"),
                       "--workers", "-1"], capsys)
    assert rc == 2 and "--workers must be 0 or more" in err
    rc, _, err = _run(["ivgc", "features", "--manifest", str(cohort), "--out", str(tmp_path / "f.csv"),
                       "--strategies", "xx"], capsys)
    assert rc == 2 and "Unknown ROI strategy 'xx'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_forty_phantoms_on_two_dask_workers_give_the_serial_table(tmp_path, capsys):
    from orbitai.phantoms.cohort import write_cohort

    manifest = write_cohort("ivgc", 40, 7, tmp_path / "cohort", montage_cases=0)
    tables = []
    for name, workers in (("serial", "0"), ("dask", "2")):
        rc, out, err = _run(["ivgc", "features", "--manifest", str(manifest), "--out", str(tmp_path / f"{name}.csv"),
                             "--workers", workers], capsys)
        assert rc == 0, err
        tables.append(WideTable.from_csv(tmp_path / f"{name}.csv"))
    assert tables[0].X.shape == (40, 6 * 660)
    assert tables[0].case_ids == tables[1].case_ids and tables[0].names == tables[1].names
    assert np.array_equal(tables[0].X, tables[1].X)


def test_a_running_dask_scheduler_is_used_by_its_address(cohort, tmp_path, capsys):
    from dask.distributed import LocalCluster

    args = ["ivgc", "features", "--manifest", str(cohort), "--strategies", "ir"]
    assert _run([*args, "--out", str(tmp_path / "serial.csv"), "--workers", "0"], capsys)[0] == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        rc, out, err = _run([*args, "--out", str(tmp_path / "remote.csv"), "--scheduler", cluster.scheduler_address],
                            capsys)
    assert rc == 0, err
    a, b = WideTable.from_csv(tmp_path / "serial.csv"), WideTable.from_csv(tmp_path / "remote.csv")
    assert a.names == b.names and np.array_equal(a.X, b.X)
    rc, out, err = _run([*args, "--out", str(tmp_path / "x.csv"), "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert rc == 2 and "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()
