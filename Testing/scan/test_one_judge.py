"""Issue 63, item 1: `orbitai.scan` is the only judge of what an image is, and what the user states wins.

A real 12-bit T2 head that `scan` called MR with confidence 1.0 was segmented and then told "looks like CT stored
with 1024 added"; a real PD head was "MR with only 60 % confidence"; the old value rules (the CSF 99th-percentile
ratio, the +1024 offset rule, the 8-bit CT rule) decided on their own outside `orbitai/scan`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, write_volume
from orbitai.phantoms.heads import HELD_OUT, render_scan
from orbitai.preprocess.checks import check_input
from orbitai.scan import scan_facts

from test_scan_facts import twelve_bit_t2

PACKAGE = Path(__file__).resolve().parents[2] / "orbitai"

#: The old checks' own thresholds and verdicts: each may be written only under orbitai/scan.
OLD_RULES = {
    "the CSF 99th-percentile ratio": re.compile(r"percentile\(core, 99\)|ratio > 1\.75|CSF_RATIO_T2 ="),
    "the T1 bright-depth ratio": re.compile(r"T1_BRIGHT_DEPTH\s*="),
    "the 8-bit CT rule": re.compile(r"EIGHT_BIT_AT_(ZERO|255)\s*=|def eight_bit_ct_evidence"),
    "the HU rule": re.compile(r"p1 < -500 and p99 > 0|lo < -200 or"),
    "the +1024 offset verdict": re.compile(r"looks like CT stored with 1024 added"),
    "the T2/T1 verdicts": re.compile(r"looks like a T2 \(CSF|looks like a T1 \(its bright"),
}
#: The +1024 value statistic itself (`orbitai.io.values.offset_ct_evidence`) stays below `orbitai.scan`: the DICOM
#: reader uses it to convert a series whose Modality tag says CT (orbitai.io cannot import orbitai.scan). Its
#: verdicts on an image are orbitai/scan's: no other module calls it.
OFFSET_STATISTIC = re.compile(r"offset_ct_evidence\(")
OFFSET_STATISTIC_ALLOWED = {"io/values.py", "io/dicom.py"}


#: The judge's measures and verdicts on an image's values (`orbitai.scan.evidence`, `orbitai.scan.values`): called only
#: under orbitai/scan. A caller reads the scan's facts instead (`orbitai.scan.values.model_family`,
#: `bundled_model_family`, `value_caveats`, `check_not_wrapped`, each with the input's `ScanFacts`).
VALUE_JUDGEMENTS = re.compile(r"\b(looks_like_ct|image_is_ct|eight_bit_ct_evidence|wrapped_values_evidence|"
                              r"value_evidence|evidence_of)\s*\(|orbitai\.scan\.evidence|"
                              r"from orbitai\.scan\.values import[^\n]*\b(looks_like_ct|image_is_ct|eight_bit_ct_evidence)\b")


def test_no_module_outside_orbitai_scan_judges_an_image_from_its_values():
    """Issue 63, item 1: CT or MR, CT values and wrapped values are decided by orbitai/scan alone, once per input;
    the callers (orbit, TAO, IVGC, neuro, DICOM inputs, the Slicer Logic) read the facts."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("scan/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = VALUE_JUDGEMENTS.search(line)
            if m:
                found.append(f"{rel}:{n}: {m.group(0)!r}")
    assert not found, found


def test_no_image_check_outside_orbitai_scan():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("scan/"):
            continue
        text = path.read_text(encoding="utf-8")
        for what, rule in OLD_RULES.items():
            found += [f"{rel}: {what} ({m.group(0)!r})" for m in rule.finditer(text)]
        if rel not in OFFSET_STATISTIC_ALLOWED and OFFSET_STATISTIC.search(text):
            found.append(f"{rel}: calls the +1024 offset statistic")
    assert not found, found


def test_the_12_bit_t2_gets_no_ct_warning_from_the_input_check_when_the_facts_say_mr():
    vol = twelve_bit_t2()
    facts = scan_facts(vol)
    assert facts.require_modality() == "MR"
    assert check_input(vol, "MR", facts) == []
    stated = scan_facts(vol, stated="T2")
    assert check_input(vol, "MR", stated) == []
    # a CT model given it anyway: said against what the facts say, never as "CT stored with 1024 added"
    assert check_input(vol, "CT", facts) == [
        "This model expects CT in Hounsfield units but the image does not look like CT."]


@pytest.mark.slow
def test_seg_predict_on_a_12_bit_t2_head_writes_no_ct_warning(tmp_path):
    """The real case rebuilt: a T2 head stored 0-4095 (12 bits) whose histogram the old +1024 rule took for CT."""
    vol = twelve_bit_t2()
    assert vol.array.min() >= 0 and vol.array.max() <= 4095
    image = tmp_path / "t2_head.nii.gz"
    write_volume(vol, image)
    out = tmp_path / "out"
    assert main(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["scan"]["modality"]["value"] == "MR"
    assert not [w for w in result["warnings"] if "CT" in w], result["warnings"]


@pytest.mark.parametrize("template", HELD_OUT[:2])
def test_a_pd_head_is_known_as_pd_mr_without_a_statement(template):
    """PD is one of the classifier's weightings: a held-out PD head (never seen in training) is MR and PD, sure
    enough that no --modality is asked for."""
    r = render_scan(template, np.random.default_rng(1), "MR", "PD", False, "head", slice_mm=2.0)
    facts = scan_facts(r.volume, path="series_0003.nii.gz")
    assert facts.require_modality() == "MR" and facts.modality.source == "image"
    assert facts.sure("weighting") and facts.weighting.value == "PD", facts.to_json()
    assert "MR PD" in facts.summary()


#: Issue 82, point 3: the last judges that lived outside orbitai/scan (the noise warning of the TAO and IVGC tasks,
#: the FLAIR's head-in-view, CSF and intracranial-volume checks of the neuro task), their measures and thresholds.
SCAN_JUDGES = {"noise_warning", "neighbour_correlation", "MIN_NEIGHBOUR_CORRELATION", "check_flair",
               "check_intracranial_volume", "flair_verdict", "csf_ratio", "depth_ratios", "rough_masks", "RoughMasks",
               "CSF_RATIO_T2", "T1_BRIGHT_DEPTH", "T1_DARK_DEPTH", "HEAD_GRID_MM"}
#: Their verdicts, each written only under orbitai/scan.
SCAN_VERDICTS = re.compile(r"looks like noise around the segmented|No head found: the foreground|too little\s*\"?\s*"
                           r"\"?for a head|not an MR FLAIR|implausible intracranial volume|No FLAIR-like brain found")


def _judges_outside_scan(rel: str, text: str) -> list[str]:
    """What the module ``rel`` (outside orbitai/scan) does that only orbitai/scan may: defines a scan judge (a
    function, class or constant of :data:`SCAN_JUDGES`), imports one from anywhere but orbitai.scan, or writes one of
    their verdicts."""
    import ast

    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in SCAN_JUDGES:
            found.append(f"{rel}:{node.lineno}: defines {node.name}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [f"{rel}:{node.lineno}: defines {t.id}" for t in targets
                      if isinstance(t, ast.Name) and t.id in SCAN_JUDGES]
        elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("orbitai.scan"):
            found += [f"{rel}:{node.lineno}: takes {a.name} from {node.module}" for a in node.names
                      if a.name in SCAN_JUDGES]
    found += [f"{rel}: writes the verdict {m.group(0)!r}" for m in SCAN_VERDICTS.finditer(text)]
    return found


def test_no_module_outside_orbitai_scan_decides_a_scan_question_from_its_values():
    """Issue 82, point 3: orbitai/scan is the only judge of scan questions. No module outside it defines a judge
    of :data:`SCAN_JUDGES` (the noise warning, the FLAIR's checks, their measures and thresholds), takes one from
    anywhere else, or writes one of their verdicts; the callers (the TAO, IVGC and neuro tasks) ask orbitai/scan."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith("scan/"):
            found += _judges_outside_scan(rel, path.read_text(encoding="utf-8"))
    assert not found, found


def test_the_judge_check_catches_what_it_looks_for():
    """The check above fails on the old layout: a judge defined in orbitai/io, one taken from orbitai/neuro, a
    verdict written in a task."""
    assert _judges_outside_scan("io/values.py", "def noise_warning(image, labels):\n    return None\n")
    assert _judges_outside_scan("neuro/predict.py", "from orbitai.neuro.anatomy import check_flair\n")
    assert _judges_outside_scan("neuro/anatomy.py", "CSF_RATIO_T2 = 1.75\n")
    assert _judges_outside_scan("tao/predict.py", "x = 'The MRI looks like noise around the segmented structures'\n")
    assert not _judges_outside_scan("tao/predict.py", "from orbitai.scan.noise import noise_warning\n")


def _held_out_head(modality: str, weighting, slice_mm: float, values) -> Volume:
    r = render_scan(HELD_OUT[0], np.random.default_rng(3), modality, weighting, False, "head", slice_mm=slice_mm)
    return r.volume.with_array(values(r.volume.array.astype(np.float32)).astype(np.float32))


def test_an_mr_of_unsure_weighting_is_read_by_the_mri_model_without_a_question():
    """Issue 78, point 4: the orbit models ask only CT or MR. A held-out head's FLAIR with its values square-rooted
    (PD-like: the classifier leans to PD, unsure between the MR weightings, but sure it is no CT) goes to the MRI
    model without asking for --modality, as `orbitai seg predict` chooses (`OrbitPredictor.check_scan`)."""
    from orbitai.scan.values import bundled_model_family

    vol = _held_out_head("MR", "FLAIR", 4.0, lambda a: np.sqrt(np.clip(a, 0, None)) * 10)
    facts = scan_facts(vol, path="series_0003.nii.gz")
    assert not facts.sure("weighting"), facts.to_json()
    assert bundled_model_family(facts, "series_0003.nii.gz", vol) == "MR"
