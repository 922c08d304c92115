"""A call marked "do not use" is not assessed (issue 61 item 5): TAO on a brain-protocol T2 (no fat suppression),
IVGC on a scan stated T1 and NMOSD/MS on lesions in a vascular-territory pattern, each a DICOM series run through its
``predict`` command. In place of the call and its probability, "not assessed: <reason>" in the command's summary
line, ``result.json`` (``call`` null with a ``reason``; the probability kept there as a detail), the DICOM SR (a
"Not assessed" evaluation, no probability) and the Slicer/browser Logic's table call column and status line."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_seg_sr import dciodvfy_errors  # Testing/dicom on sys.path
from test_seg_sr_tasks import sr_numbers

from orbitai.cli import main
from orbitai.io import read_scan, read_volume, write_dicom_series, write_volume
from orbitai.phantoms import write_cohort
from orbitai.phantoms.brain import infarct_flair_case
from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case

pytest.importorskip("highdicom", reason="install orbitai[dicom] (pydicom, highdicom)")
SEED = 3990123          # the brain-protocol T2 of Testing/tao/test_tao_trust.py
NOT_ASSESSED = "not assessed"

# task -> (key of the probability, words of the call, how the probability reads in a summary)
TASKS = {"tao": ("probability_active", ("active", "inactive"), "P(active)"),
         "ivgc": ("probability", ("responder", "non-responder"), "P(respon"),
         "neuro": ("probability_nmosd", ("NMOSD", "MS"), "P(NMOSD)")}


def _run(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, str, Path]]:
    """task -> (output folder, what the command printed, the input series) of the three out-of-scope runs."""
    root = tmp_path_factory.mktemp("not_assessed")
    done = {}
    brain_t2 = orbit_case(SEED, "t2", tao="active", orientation="axial", spacing=(0.6, 0.6, 3.3),
                          rendering=Rendering(contrast=CONTRASTS["t2_no_fat_suppression"]))
    series = write_dicom_series(brain_t2.image, root / "brain_t2", "MR")
    seg = write_volume(brain_t2.labels, root / "brain_t2_seg.nrrd")
    done["tao"] = (root / "tao", _run(["tao", "predict", str(series), "--segmentation", str(seg), "--out",
                                       str(root / "tao"), "--no-maps", "--device", "cpu"]), series)

    from orbitai.cohort.manifest import read_manifest
    case = read_manifest(write_cohort("ivgc", 1, 777061, root / "ivgc_cohort", montage_cases=0),
                         need_segmentation=True)[0]
    series = write_dicom_series(read_volume(case.image), root / "ivgc_dicom", "MR")
    done["ivgc"] = (root / "ivgc", _run(["ivgc", "predict", str(series), "--segmentation", str(case.segmentation),
                                         "--out", str(root / "ivgc"), "--device", "cpu", "--no-gradcam",
                                         "--modality", "T1"]), series)

    infarct = infarct_flair_case(7100)
    series = write_dicom_series(infarct.image.with_array(np.round(infarct.image.array * 100.0)), root / "flair", "MR")
    flair = read_scan(series)[0]     # read back with its slices in the other order: the lesions on that grid
    lesions = write_volume(flair.with_array(infarct.labels.array[::-1]), root / "infarct_lesions.nrrd")
    done["neuro"] = (root / "neuro", _run(["neuro", "predict", str(series), "--lesions", str(lesions), "--out",
                                           str(root / "neuro"), "--device", "cpu", "--no-heatmap"]), series)
    return done


def _findings(data: dict, task: str) -> list[dict]:
    return data["eyes"] if task == "tao" else [data]


def _shown(finding: dict) -> str:
    """"not assessed: <reason>" of a finding marked do not use (its ``trust`` without ": do not use")."""
    return f"{NOT_ASSESSED}: {finding['trust'][:-len(': do not use')]}"


@pytest.mark.parametrize("task", list(TASKS))
def test_result_json_has_a_null_call_with_its_reason_and_keeps_the_probability(runs, task):
    out, _, _ = runs[task]
    key = TASKS[task][0]
    data = json.loads((out / "result.json").read_text())
    for f in _findings(data, task):
        assert f["trust"].endswith(": do not use"), f
        assert f.get("call", "") is None and f.get("reason") == f["trust"][:-len(": do not use")], f
        assert "do not use" not in f["reason"]
        assert 0.0 <= f[key] <= 1.0           # the probability stays, as a detail


@pytest.mark.parametrize("task", list(TASKS))
def test_the_summary_line_says_not_assessed_in_place_of_the_call_and_probability(runs, task):
    out, printed, _ = runs[task]
    _, calls, shown = TASKS[task]
    data = json.loads((out / "result.json").read_text())
    assert _shown(_findings(data, task)[0]) in printed, printed
    assert shown not in printed and "->" not in printed, printed
    lines = [ln for ln in printed.splitlines() if NOT_ASSESSED in ln]
    assert len(lines) == len(_findings(data, task))
    for ln in lines:
        assert not re.search(r"\b\d\.\d{3}\b", ln) and not any(re.search(rf"(?<![-\w]){c}\b", ln.split(":")[0])
                                                               for c in calls), ln


def _sr_items(path: Path) -> list[tuple[str, str, str]]:
    """(tracking identifier, concept name, coded value or "") of every CODE and NUM item in the measurement groups."""
    import pydicom

    out: list[tuple[str, str, str]] = []

    def walk(items, label: str) -> None:
        for it in items:
            name = it.ConceptNameCodeSequence[0].CodeMeaning
            if name == "Tracking Identifier":
                label = it.TextValue
            elif it.ValueType in ("CODE", "NUM") and name != "Finding":
                value = it.ConceptCodeSequence[0].CodeMeaning if it.ValueType == "CODE" else ""
                out.append((label, name, value))
            if "ContentSequence" in it and name != "Measurement Group":
                walk(it.ContentSequence, label)

    def groups(items) -> None:
        for it in items:
            if it.ConceptNameCodeSequence[0].CodeMeaning == "Measurement Group":
                walk(it.ContentSequence, "")
            elif "ContentSequence" in it:
                groups(it.ContentSequence)

    groups(pydicom.dcmread(path).ContentSequence)
    return out


@pytest.mark.parametrize("task", list(TASKS))
def test_the_sr_names_not_assessed_and_carries_no_probability(runs, task):
    out, _, _ = runs[task]
    data = json.loads((out / "result.json").read_text())
    assert data["files"]["dicom_sr"] == "report.dcm"
    report = out / "report.dcm"
    assert not any(meaning == "Probability" for _, meaning in sr_numbers(report))
    assessed = [(label, value) for label, _, value in _sr_items(report) if value == "Not assessed"]
    assert len(assessed) == len(_findings(data, task))
    for f, (label, _) in zip(_findings(data, task), assessed):
        assert label.endswith(_shown(f)) and "P(" not in label
    assert dciodvfy_errors(report) == []


def _logic_outputs(ctx, task: str, out: Path, series: Path):
    from orbitai.mrml import volume_node_from_volume

    node = volume_node_from_volume(ctx, read_scan(series)[0], name="scan")
    if task == "tao":
        from orbitai.app.tao_activity import TAOActivityLogic
        outputs = TAOActivityLogic(ctx).loadResults(out, node)
        return outputs, outputs.table_node, "P(active)"
    if task == "ivgc":
        from orbitai.app.ivgc_response import IVGCResponseLogic
        outputs = IVGCResponseLogic(ctx).loadResults(out, node)
        return outputs, outputs.result_table, "P(response)"
    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    outputs = NeuroDifferentialLogic(ctx).loadResults(out, node)
    return outputs, outputs.probability_table, "P(NMOSD)"


@pytest.mark.parametrize("task", list(TASKS))
def test_the_front_ends_table_and_status_line_show_not_assessed(ctx, runs, task):
    from orbitai.mrml import rows_from_table_node

    out, _, series = runs[task]
    _, calls, _ = TASKS[task]
    data = json.loads((out / "result.json").read_text())
    outputs, table, p_column = _logic_outputs(ctx, task, out, series)
    rows = rows_from_table_node(table)
    assert [r["call"] for r in rows] == [_shown(f) for f in _findings(data, task)]
    assert all(r[p_column] == "" for r in rows), rows          # no probability beside it
    status = outputs.summary()
    assert _shown(_findings(data, task)[0]) in status, status
    assert not re.search(r"P(\([^)]*\))? = ", status), status
    head = status.split(" Scan: ")[0]
    assert not any(re.search(rf"(?<![-\w]){c} \(", head) for c in calls), status
