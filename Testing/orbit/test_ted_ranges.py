"""Issue 66 item 3: the checks know thyroid eye disease (TED) patients' volume ranges (TOM500 tables, written by
scripts/ted_ranges.py into orbitai/resources/orbit_ranges.json): with population ``ted`` (the default) a rectus above
the normal adult range but within TED's is "enlarged", a finding never counted against the result; the population
is chosen on the command line and the panel and said in result.json, volumes.csv and the summary."""
from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.errors import InputError
from orbitai.io import write_volume
from orbitai.labels import ORBIT_LABELS
from orbitai.orbit.anatomy import (
    DEFAULT_POPULATION,
    ENLARGED,
    NORMAL,
    OUTSIDE,
    POPULATIONS,
    RANGES_FILE,
    RECTI,
    TED_RANGES,
    check_structure,
    check_structures,
    checked_range,
    verdict,
)
from orbitai.phantoms.orbit import TED_MUSCLE_SCALE, orbit_case, ted_case

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO.parent / "shared" / "data" / "tom500_ted_tables" / "mri_features.csv"
SEED = 660301            # never used for training cohorts
MR_LEFT = next(v for v, lab in ORBIT_LABELS.items() if lab.name == "medial_rectus_muscle_left")
EYE_LEFT = next(v for v, lab in ORBIT_LABELS.items() if lab.name == "eyeball_left")


def _script():
    spec = importlib.util.spec_from_file_location("ted_ranges", REPO / "scripts" / "ted_ranges.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ted_ranges"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not TABLE.is_file(), reason="the shared TOM500 table is not on this machine")
def test_checked_in_ranges_are_what_the_script_makes_of_the_table():
    script = _script()
    data = json.loads(RANGES_FILE.read_text())
    assert data == json.loads(json.dumps(script.ranges(TABLE)))
    ted = data["ted"]
    assert ted["source"]["patients"] == 400 and ted["percentiles"] == [2.5, 97.5]
    # the scrambled names read by label value: the 'eyeball_' prefix is the superior rectus (label 1), the
    # 'lateral_rectus_' one the eyeball (label 9); each side about half of the both-orbit median (README)
    assert ted["structures"]["superior_rectus_muscle"]["column_prefix"] == "eyeball"
    assert ted["structures"]["eyeball"]["label"] == 9
    assert 6.0 < ted["structures"]["eyeball"]["median_cm3"] < 7.0           # 13.1 mL both orbits
    assert 0.75 < ted["structures"]["medial_rectus_muscle"]["median_cm3"] < 0.95   # 1.71 mL both orbits
    assert all(s["sides"] == 800 for s in ted["structures"].values())


def test_package_reads_the_ted_ranges_from_its_own_resources():
    assert RANGES_FILE.parent == REPO / "orbitai" / "resources"
    assert set(TED_RANGES) == {"eyeball", "optic_nerve", *RECTI}
    assert all(0 < lo < hi for lo, hi in TED_RANGES.values())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"resources/**/*"' in pyproject            # package data: the JSON ships in the wheel
    # TED's upper bounds of the globe and the nerve lie below the healthy ones: only recti read differently
    assert checked_range("eyeball", "ted") == checked_range("eyeball", "healthy")
    assert checked_range("medial_rectus_muscle", "ted")[1] == TED_RANGES["medial_rectus_muscle"][1] > 1.6


def test_a_rectus_above_the_healthy_range_within_teds_is_an_enlarged_finding():
    lo, hi = TED_RANGES["medial_rectus_muscle"]
    vol = (1.6 + hi) / 2
    ted = check_structure(MR_LEFT, vol, 0.9, "ted")
    assert ted.status == ENLARGED and not ted.implausible
    assert f"{lo:g}-{hi:g} cm3" in ted.note and "thyroid eye disease" in ted.note
    assert ted.to_json()["range_cm3"] == [0.3, hi] and ted.to_json()["population"] == "ted"
    healthy = check_structure(MR_LEFT, vol, 0.9, "healthy")
    assert healthy.status == OUTSIDE and healthy.to_json()["range_cm3"] == [0.3, 1.6]
    beyond = check_structure(MR_LEFT, hi + 0.5, 0.9, "ted")
    assert beyond.status == OUTSIDE and not beyond.implausible and f"{hi:g}" in beyond.note
    assert check_structure(MR_LEFT, 1.0, 0.9, "ted").status == NORMAL
    assert check_structure(MR_LEFT, 0.1, 0.9, "ted").implausible           # small stays implausible
    big_eye = check_structure(EYE_LEFT, 10.0, 0.9, "ted")                  # a globe is never "enlarged"
    assert big_eye.status == OUTSIDE and big_eye.implausible
    assert DEFAULT_POPULATION == "ted" and check_structure(MR_LEFT, vol, 0.9).status == ENLARGED
    # all recti enlarged within TED's ranges, the eyeballs and nerves normal: no "unlikely" verdict
    checks = [check_structure(v, 7.0 if v <= 2 else 0.5 if v <= 4 else 1.65, 0.9, "ted") for v in range(1, 13)]
    assert verdict(checks) is None and sum(c.status == ENLARGED for c in checks) == 8


def test_an_unknown_population_is_one_clear_error(tmp_path, capsys):
    from orbitai.io import Volume

    labels = Volume(np.zeros((4, 4, 4), np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="Unknown population 'tao'; use one of ted, healthy"):
        check_structures(labels, ("eyeball",), population="tao")
    with pytest.raises(SystemExit) as exit_:
        main(["seg", "predict", str(tmp_path / "x.nrrd"), "--out", str(tmp_path / "o"), "--population", "tao"])
    assert exit_.value.code == 2
    assert "invalid choice: 'tao'" in capsys.readouterr().err


def test_cli_and_panel_offer_the_population():
    from orbitai.app.orbit_segmentation import PANEL, SegmentationOutputs
    from orbitai.cli import build_parser
    from orbitai.orbit.cli import predict_options

    args = build_parser().parse_args(["seg", "predict", "a.nrrd", "--out", "o", "--population", "healthy"])
    assert predict_options(args)["population"] == "healthy"
    args = build_parser().parse_args(["seg", "predict", "a.nrrd", "--out", "o"])
    assert predict_options(args)["population"] == DEFAULT_POPULATION
    opt = next(o for o in PANEL.options if o.name == "population")
    assert opt.choices() == list(POPULATIONS) and opt.default_value() == DEFAULT_POPULATION
    out = SegmentationOutputs(None, None, info={"population": "ted"})
    assert "Volume ranges: thyroid eye disease" in out.summary()


def test_ted_phantom_enlarges_each_rectus_two_to_three_times():
    kw = dict(size=(128, 128, 32), spacing=(0.8, 0.8, 2.0))    # both orbits whole in the field of view
    plain, ted = orbit_case(SEED, "ct", oblique=False, **kw), ted_case(SEED, "ct", **kw)
    assert ted.info["muscle_scale"] == TED_MUSCLE_SCALE        # inferior, medial, superior 3x, lateral 2x
    for v, lab in ORBIT_LABELS.items():
        before, after = np.count_nonzero(plain.labels.array == v), np.count_nonzero(ted.labels.array == v)
        if lab.structure in RECTI:
            assert abs(after / before - TED_MUSCLE_SCALE[v]) < 0.4, (lab.name, before, after)
        else:
            assert after <= before, lab.name       # only the muscles grew (into fat)
    # what a perfect segmentation of it reads: no "unlikely" verdict, most recti enlarged (the lateral recti, the
    # least enlarged in TED, lie above TED's 97.5th percentile: outside, a finding too, never implausible)
    checks = check_structures(ted.labels, ("eyeball", "optic_nerve", *RECTI), population="ted")
    assert verdict(checks) is None and not any(c.implausible for c in checks)
    assert sum(c.status == ENLARGED for c in checks) >= 4, [(c.name, round(c.volume_cm3, 2), c.status) for c in checks]


def test_predict_on_a_ted_phantom_reports_enlarged_recti_not_an_unlikely_result(tmp_path, capsys):
    """The bundled CT model on a TED-like phantom: the population in result.json, each structure's range used, the
    volumes.csv check column; no "unlikely" verdict; each rectus the model finds above the normal adult range but
    within TED's is "enlarged"."""
    case = ted_case(SEED, "ct")
    path = write_volume(case.image, tmp_path / "ted.nrrd")
    assert main(["seg", "predict", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    data = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert data["population"] == "ted"
    assert not any("unlikely" in w for w in data["warnings"]), data["warnings"]
    for r in data["structures"]:
        lo, hi = r["range_cm3"]
        assert hi == max(r["normal_cm3"][1], TED_RANGES[r["structure"]][1]), r
        finding = r["normal_cm3"][1] < r["soft_volume_cm3"] <= hi and r["confidence"] >= 0.75    # the checks' volume
        assert (r["check"] == ENLARGED) == finding, r
    # (the bundled CT model under-segments these enlarged recti: benchmarks/bench_ted_phantom.py measures it)
    with (tmp_path / "out" / "volumes.csv").open(encoding="utf-8", newline="") as f:
        assert [r["check"] for r in csv.DictReader(f)] == [r["check"] for r in data["structures"]]


def test_volume_table_and_summary_say_enlarged_and_the_ranges_used(ctx, tmp_path):
    """Slicer's (and the browser's) volume table: an enlarged rectus's check text names the TED range; the status
    line says whose ranges were used."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
    from orbitai.mrml import rows_from_table_node, volume_node_from_volume
    from orbitai.orbit.result import SegmentationResult, check_row
    from orbitai.orbit.rules import structure_volumes

    case = ted_case(SEED, "ct", size=(128, 128, 32), spacing=(0.8, 0.8, 2.0))
    node = volume_node_from_volume(ctx, case.image, name="ted phantom")
    structures = ("eyeball", "optic_nerve", *RECTI)
    labels = case.labels.with_array(np.where(case.labels.array <= 12, case.labels.array, 0))   # the model's labels
    rows = structure_volumes(labels, structures)
    checks = {c.label: c for c in check_structures(labels, structures, population="ted")}
    for r in rows:
        r.update(check_row(checks[r["label"]]))
    SegmentationResult(labels, rows, "orbit_svnet_ct_demo", info={"population": "ted"}).write(tmp_path / "res")
    out = OrbitSegmentationLogic(ctx).loadResults(tmp_path / "res", node)
    table = {r["structure"]: r for r in rows_from_table_node(out.volumes_table_node)}
    enlarged = [n for n, c in ((c.name, c) for c in checks.values()) if c.status == ENLARGED]
    assert len(enlarged) >= 4
    for name in enlarged:
        assert table[name]["check"] == "enlarged, within the thyroid eye disease range", table[name]
        assert "thyroid eye disease's" in table[name]["note"]
    assert "Volume ranges: thyroid eye disease" in out.summary()
