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
from orbitai.io import write_volume
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
