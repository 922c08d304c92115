"""IVGCResponse Logic and job panel on a real MRML scene: run by ``Testing/IVGCResponse`` (pytest, headless
with slicer-core) and by the module's self-test inside Slicer (IVGCResponseTest).

Two layers: `loadResults` against output folders written here as the ``orbitai ivgc predict`` contract
says (fast; no model), and the whole Logic end to end through the child process on an IVGC phantom
(these need the demo bundles: see `installed`).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from orbitai.errors import DeviceError, InputError, OrbitAIError
from orbitai.io import Volume, rotation, write_volume
from orbitai import selftest
from orbitai.testing import node_ids, panel, patched, raises, slicer_context  # noqa: F401 - slicer_context: self-test

SEED = 880913  # never used for training cohorts
SVM = "ivgc_svm_demo"
CLINICAL = "ivgc_rdinet_clinical_demo"


def installed(model: str = SVM) -> bool:
    """Whether the IVGC demo bundle ``model`` is installed (the end-to-end tests need it)."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    return model in IVGCResponseLogic.modelChoices().values()


# --------------------------------------------------------------------------- contract folders
def _reference_mri() -> Volume:
    """A small oblique, anisotropic coronal 'MRI' grid (values irrelevant to loadResults)."""
    rng = np.random.default_rng(5)
    a = rng.normal(100.0, 10.0, (10, 40, 56)).astype(np.float32)
    return Volume(a, (0.8, 0.8, 2.5), (50.0, -20.0, 30.0), rotation(0.04, 0.05, -0.08))


FEATURES = [("mrlr_original_shape_MajorAxisLength", 41.25, 0.82),
            ("mrlr_wavelet-LLH_firstorder_Median", 312.5, -0.41),
            ("mrlr_original_glcm_Correlation", 0.37, 0.12)]


def write_contract_result(out: Path, ref: Volume, probability: float = 0.81, gradcam: bool = True,
                          coefficients: bool = True) -> dict:
    """An output folder as ``orbitai ivgc predict`` writes it (result.json, features.csv, gradcam.nrrd)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"features": "features.csv"}
    with open(out / "features.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["feature", "value", "coefficient"])
        for name, value, coef in FEATURES:
            w.writerow([name, value, coef if coefficients else ""])
    if gradcam:
        a = np.zeros(ref.shape, np.float32)
        a[3:7, 10:30, 8:20] = np.linspace(0.1, 1.0, 12, dtype=np.float32)
        write_volume(ref.with_array(a), out / "gradcam.nrrd")
        files["gradcam"] = "gradcam.nrrd"
    result = {"task": "ivgc_response", "probability": probability,
              "call": "responder" if probability >= 0.5 else "non-responder", "threshold": 0.5,
              "model": "ivgc_rdinet_demo" if gradcam else SVM, "kind": "rdinet" if gradcam else "svm",
              "strategy": "mrlr", "clinical_used": False, "files": files, "warnings": []}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


def test_load_results_writes_tables_and_overlay(ctx, tmp_path: Path):
    from orbitai.mrml.results import scan_of
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.io import read_volume
    from orbitai.mrml import ijk_to_ras_of, rows_from_table_node, volume_from_volume_node, volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    write_contract_result(tmp_path / "res", ref)
    before = node_ids(ctx)
    out = IVGCResponseLogic(ctx).loadResults(tmp_path / "res", mri)

    rows = rows_from_table_node(out.result_table)
    assert out.result_table.GetName() == "IVGC response" and len(rows) == 1
    row = rows[0]
    assert abs(row["P(response)"] - 0.81) < 1e-9 and row["call"] == "responder"
    assert row["model"] == "ivgc_rdinet_demo" and row["ROI strategy"] == "mrlr"
    assert row["clinical features"] == "not used"
    assert out.result_table.GetColumnDescription("call").startswith("responder when P(response) >= 0.5;")

    feats = rows_from_table_node(out.features_table)
    assert [r["feature"] for r in feats] == [f[0] for f in FEATURES]
    assert np.allclose([r["value"] for r in feats], [f[1] for f in FEATURES])
    assert np.allclose([r["coefficient"] for r in feats], [f[2] for f in FEATURES])

    node = out.gradcam_node
    assert node.GetAttribute("OrbitAI.Overlay") == "1"
    assert np.allclose(ijk_to_ras_of(node), ijk_to_ras_of(mri), atol=1e-5)
    assert np.allclose(volume_from_volume_node(node).array, read_volume(tmp_path / "res" / "gradcam.nrrd").array)
    added = node_ids(ctx) - before
    for n in (out.result_table, out.features_table, node):
        assert n.GetID() in added and scan_of(n) is mri
    assert "RDINet on mrlr: responder (P(response) = 0.81)" in out.summary()


def test_load_results_radiomics_model_without_gradcam(ctx, tmp_path: Path):
    """A radiomics SVM result: no Grad-CAM; features without coefficients are kept (empty coefficient)."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.mrml import rows_from_table_node, volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    write_contract_result(tmp_path / "res", ref, probability=0.2, gradcam=False, coefficients=False)
    out = IVGCResponseLogic(ctx).loadResults(tmp_path / "res", mri)
    assert out.gradcam_node is None
    assert rows_from_table_node(out.result_table)[0]["call"] == "non-responder"
    assert len(rows_from_table_node(out.features_table)) == len(FEATURES)
    assert "Radiomics SVM on mrlr: non-responder" in out.summary()


def _break(path: Path, how: str, ref: Volume) -> None:
    res = json.loads((path / "result.json").read_text())
    if how == "no result.json":
        (path / "result.json").unlink()
        return
    if how == "not json":
        (path / "result.json").write_text("{ half")
        return
    if how == "probability":
        res["probability"] = 1.7
    elif how == "wrong task":
        res["task"] = "tao_activity"
    elif how == "gradcam grid":
        write_volume(Volume(np.zeros(ref.shape, np.float32), ref.spacing, (0.0, 0.0, 0.0), ref.direction),
                     path / "gradcam.nrrd")
    elif how == "gradcam nan":
        a = np.zeros(ref.shape, np.float32)
        a[0, 0, 0] = np.nan
        write_volume(ref.with_array(a), path / "gradcam.nrrd")
    elif how == "features missing":
        (path / "features.csv").unlink()
    (path / "result.json").write_text(json.dumps(res))


BROKEN = ("no result.json", "not json", "probability", "wrong task", "gradcam grid", "gradcam nan", "features missing")


def test_load_results_refuses_broken_folders_scene_unchanged(ctx, tmp_path: Path):
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.mrml import volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    logic = IVGCResponseLogic(ctx)
    before = node_ids(ctx)
    for n, how in enumerate(BROKEN):
        folder = tmp_path / f"broken{n}"
        write_contract_result(folder, ref)
        _break(folder, how, ref)
        try:
            logic.loadResults(folder, mri)
        except (OrbitAIError, ValueError) as exc:
            assert "\n" not in str(exc) and str(exc), f"{how}: {exc!r}"
        else:
            raise AssertionError(f"{how}: the broken folder was accepted")
        assert node_ids(ctx) == before, f"{how}: the scene changed"


def test_load_results_rolls_back_when_a_node_fails(ctx, tmp_path: Path):
    """A failure after the tables were added (here: the Grad-CAM overlay) removes them too."""
    import orbitai.mrml as bridge
    import orbitai.app.ivgc_response as app_module
    from orbitai.app.ivgc_response import IVGCResponseLogic

    ref = _reference_mri()
    mri = bridge.volume_node_from_volume(ctx, ref, name="T2")
    write_contract_result(tmp_path / "res", ref)

    def failing(*args, **kw):
        raise RuntimeError("out of memory")

    before = node_ids(ctx)
    with patched(app_module, "overlay_node_from_volume", failing), raises(RuntimeError, match="out of memory"):
        IVGCResponseLogic(ctx).loadResults(tmp_path / "res", mri)
    assert node_ids(ctx) == before


# --------------------------------------------------------------------------- clinical form
def test_clinical_values_checked_with_the_schema():
    """The form's text values against IVGC_CLINICAL: numbers in range kept, empty ones dropped, a value
    out of range / not a number / not 0-1 refused with the range, required ones named when missing."""
    from orbitai.app.ivgc_response import IVGCResponseLogic, clinical_form

    from orbitai.cohort.clinical import IVGC_CLINICAL

    check = IVGCResponseLogic.checkClinical
    form = clinical_form()
    assert [r[0] for r in form] == IVGC_CLINICAL.names and len(form) == 16
    age = dict((r[0], r) for r in form)["age_years"]
    assert "years" in age[1] and "0 to 120" in age[2]
    values = _phantom_clinical()
    assert check({k: str(v) for k, v in values.items()}, required=True) == values
    partial = {"age_years": "54", "sex_male": "0", "cas_score": "5", "bmi_kg_per_m2": ""}
    assert check(partial, required=True) == {"age_years": 54.0, "sex_male": 0.0, "cas_score": 5.0}
    with raises(InputError, match=r"^Clinical feature 'age_years': 130 is outside the valid range 0 to 120 years"):
        check({**partial, "age_years": "130"}, required=False)
    with raises(InputError, match=r"'iop_mmhg': 'high' is not a number"):
        check({"iop_mmhg": "high"}, required=False)
    with raises(InputError, match=r"'sex_male': '2' must be 0 or 1"):
        check({"sex_male": "2"}, required=False)
    with raises(InputError, match=r"'cas_score': '3.5' must be a whole number"):
        check({"cas_score": "3.5"}, required=False)
    with raises(InputError, match=r"missing: age_years \(age at the start of IVGC, years\); cas_score"):
        check({"sex_male": "1"}, required=True)
    assert check({"sex_male": "1"}, required=False) == {"sex_male": 1.0}
    with raises(InputError, match="Unknown clinical feature"):
        check({"weight": "80"}, required=False)


def _phantom_clinical(seed: int = SEED) -> dict[str, float]:
    return {k: float(v) for k, v in _phantom(seed).info["clinical"].items()}


def _phantom(seed: int = SEED, label: int = 1):
    from orbitai.phantoms.cohort import make_case

    return make_case("ivgc", seed, 0, label)


def _phantom_nodes(ctx, drop: Optional[str] = None, seed: int = SEED):
    """The IVGC phantom's T2 MRI and its orbit segmentation (without segment ``drop``) in the scene."""
    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume

    case = _phantom(seed)
    node = volume_node_from_volume(ctx, case.image, name="phantom T2")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="recti")
    if drop is not None:
        s = seg.GetSegmentation()
        s.RemoveSegment(s.GetSegmentIdBySegmentName(drop))
    return case, node, seg


# --------------------------------------------------------------------------- logic
def test_logic_refuses_bad_inputs_before_starting(ctx):
    """Everything the Logic can check is refused before a child starts, one line each, scene unchanged."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.errors import BundleError
    from orbitai.mrml import volume_node_from_volume

    case, node, seg = _phantom_nodes(ctx)
    labelmap = volume_node_from_volume(ctx, Volume(np.zeros((8, 8, 8), np.uint8)), name="labels", label=True)
    before = node_ids(ctx)
    logic = IVGCResponseLogic(ctx)
    with raises(InputError, match="Select a coronal orbital T2 MRI"):
        logic.start(None, seg)
    with raises(InputError, match="'labels' is a label map"):
        logic.start(labelmap, seg)
    with raises(InputError, match="Select the segmentation of the recti"):
        logic.start(node, None)
    with raises(InputError, match="'labels' is not a segmentation node"):
        logic.start(node, labelmap)
    with raises(DeviceError, match="Unknown device"):
        logic.start(node, seg, device="tpu")
    with raises(InputError, match="Unknown ROI strategy 'both'"):
        logic.start(node, seg, strategy="both")
    with raises(InputError, match="'bmi_kg_per_m2': 95 is outside the valid range 10 to 80 kg/m2"):
        logic.start(node, seg, clinical={"bmi_kg_per_m2": "95"})
    with raises(BundleError, match="no_such_model"):
        logic.start(node, seg, model="no_such_model")
    assert node_ids(ctx) == before


def test_logic_refuses_missing_rectus_scene_unchanged(ctx):
    """A segmentation without a rectus the ROI strategy needs: one line naming it; other strategies go on."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx, drop="medial_rectus_muscle_left")
    logic = IVGCResponseLogic(ctx)
    before = node_ids(ctx)
    for strategy in ("mrlr", "mr", "all"):
        with raises(InputError, match=r"^Segmentation 'recti' lacks medial_rectus_muscle_left \(label \d+\), which "
                                      f"ROI strategy '{strategy}'"):
            logic.start(node, seg, strategy=strategy)
    assert node_ids(ctx) == before
    labels = logic.rectiLabels(seg, node, "lr")   # the lateral recti alone are all there
    assert labels.shape == node.GetImageData().GetDimensions()[::-1]
    assert node_ids(ctx) == before


def test_logic_refuses_unusable_segmentations(ctx):
    """A segment named outside the orbit scheme, or recti that do not overlap the MRI: one line naming the
    segmentation, before any child starts; the scene is unchanged."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.mrml import segmentation_node_from_labels

    case, node, seg = _phantom_nodes(ctx)
    s = seg.GetSegmentation()
    s.GetSegment(s.GetSegmentIdBySegmentName("optic_nerve_left")).SetName("nerve")
    lab = case.labels
    far = Volume(lab.array, lab.spacing, tuple(np.asarray(lab.origin) + 500.0), lab.direction)
    elsewhere = segmentation_node_from_labels(ctx, far, name="elsewhere")
    logic = IVGCResponseLogic(ctx)
    before = node_ids(ctx)
    with raises(InputError, match=r"^Segmentation 'recti': Segments 'nerve' are not in the label table"):
        logic.start(node, seg)
    with raises(InputError, match=r"^Segmentation 'elsewhere' holds no rectus muscle"):
        logic.start(node, elsewhere)
    assert node_ids(ctx) == before


def test_clinical_model_refuses_missing_and_out_of_range(ctx):
    """RDINet with clinical features: the missing required values are listed, out-of-range refused
    with the range, before any child starts; the scene is unchanged."""
    from orbitai.app.ivgc_response import MODELS, IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    logic = IVGCResponseLogic(ctx)
    before = node_ids(ctx)
    label = MODELS[CLINICAL]
    with raises(InputError, match=r"needs the clinical features; missing: age_years .*sex_male .*cas_score"):
        logic.start(node, seg, model=label, clinical={"bmi_kg_per_m2": "24"})
    assert "missing: age_years" in IVGCResponseLogic.whyNotReady(label, "mrlr", {})
    values = {k: str(v) for k, v in _phantom_clinical().items()}
    with raises(InputError, match=r"'exophthalmos_mm': 55 is outside the valid range 5 to 40 mm"):
        logic.start(node, seg, model=label, clinical={**values, "exophthalmos_mm": "55"})
    assert IVGCResponseLogic.whyNotReady(label, "mrlr", values) == ""
    assert node_ids(ctx) == before


def _check_outputs(out, expect_gradcam: bool, node) -> None:
    from orbitai.mrml import ijk_to_ras_of, rows_from_table_node, volume_from_volume_node

    r = out.result
    row = rows_from_table_node(out.result_table)[0]
    assert 0.0 <= row["P(response)"] <= 1.0 and abs(row["P(response)"] - r["probability"]) < 1e-6
    assert row["call"] == ("responder" if r["probability"] >= r["threshold"] else "non-responder")
    assert row["ROI strategy"] == "mrlr" and row["model"] == r["model"]
    feats = rows_from_table_node(out.features_table)
    assert feats and all(f["feature"].startswith("mrlr_") for f in feats)
    assert all(np.isfinite(f["value"]) for f in feats)
    if expect_gradcam:
        m = out.gradcam_node
        assert np.allclose(ijk_to_ras_of(m), ijk_to_ras_of(node), atol=1e-4)
        a = volume_from_volume_node(m).array
        assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.0
    else:
        assert out.gradcam_node is None


def test_logic_predicts_phantom_into_scene(ctx):
    """The radiomics SVM end to end: the real child, the real bundle, the phantom's recti."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    events = []
    before = node_ids(ctx)
    out = IVGCResponseLogic(ctx).run(node, seg, model=SVM, device="cpu", progress=lambda d, t, m: events.append(m))
    assert events, "no progress was reported"
    assert out.result["model"] == SVM and out.result["strategy"] == "mrlr"
    _check_outputs(out, False, node)
    assert out.result_table.GetID() in node_ids(ctx) - before


def test_logic_refuses_strategy_the_model_was_not_trained_on(ctx):
    """The SVM was trained on MR+LR: another ROI strategy is refused before a child starts, naming both."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    before = node_ids(ctx)
    with raises(InputError, match="Radiomics SVM was trained on ROI strategy 'mrlr'; choose 'mrlr'"):
        IVGCResponseLogic(ctx).start(node, seg, strategy="all", model=SVM)
    assert IVGCResponseLogic.whyNotReady("Radiomics SVM", "lr", {}).startswith("Radiomics SVM was trained")
    assert IVGCResponseLogic.whyNotReady("Radiomics SVM", "mrlr", {}) == ""
    assert node_ids(ctx) == before


def test_logic_clinical_model_on_phantom(ctx):
    """RDINet with clinical features end to end, with the phantom's 16 clinical values and Grad-CAM."""
    from orbitai.app.ivgc_response import MODELS, IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    values = {k: str(v) for k, v in _phantom_clinical().items()}
    out = IVGCResponseLogic(ctx).run(node, seg, model=MODELS[CLINICAL], clinical=values, device="cpu")
    assert out.result["clinical_used"] is True
    _check_outputs(out, True, node)


# --------------------------------------------------------------------------- the job panel
def test_panel_binds_results_to_starting_input(ctx):
    """Results attach to the MRI the job started on; inputs locked while it runs, Apply -> Cancel."""
    from orbitai.mrml.results import scan_of
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.mrml import volume_node_from_volume

    case, first, seg = _phantom_nodes(ctx)
    second = volume_node_from_volume(ctx, case.image, name="second T2")
    out = panel.check_binds_results_to_starting_input(
        IVGCResponseLogic(ctx), first, second, {"segmentation_node": seg, "model": SVM, "device": "cpu"})
    assert scan_of(out.result_table) is first


def test_panel_refuses_bad_clinical_value(ctx):
    """Apply with an out-of-range clinical value: one error dialog with the range, no child, scene unchanged."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    before = node_ids(ctx)
    p = panel.Panel(IVGCResponseLogic(ctx), node, {"segmentation_node": seg, "clinical": {"iop_mmhg": "120"}})
    p.controller.apply()
    assert not p.controller.running and p.controller.job is None
    assert len(p.view.errors) == 1 and "'iop_mmhg': 120 is outside the valid range 0 to 80 mmHg" in p.view.errors[0]
    assert ("inputs", False) not in p.view.calls and p.view.button[0] == "Apply"
    assert node_ids(ctx) == before


def test_panel_cancel_leaves_scene_unchanged(ctx):
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    panel.check_cancel_leaves_scene_unchanged(ctx, IVGCResponseLogic(ctx), node,
                                              {"segmentation_node": seg, "model": SVM, "device": "cpu"})


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    from orbitai.app.ivgc_response import IVGCResponseLogic

    _, node, seg = _phantom_nodes(ctx)
    panel.check_missing_dependency_reaches_dialog(ctx, IVGCResponseLogic, node, tmp_path, {"segmentation_node": seg})


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    """cuda:99, an MRI with a NaN voxel, a crashing child: one line each, no traceback (#14)."""
    from orbitai.app.ivgc_response import IVGCResponseLogic

    from orbitai.testing.job_errors import check_child_errors_are_one_line

    _, node, seg = _phantom_nodes(ctx)
    check_child_errors_are_one_line(ctx, IVGCResponseLogic(ctx), node,
                                    {"segmentation_node": seg, "model": SVM, "device": "cpu"}, tmp_path)


def test_parameter_choices():
    """Model choices come from the installed IVGC bundles (labels resolve to them); strategies from orbitai.ivgc."""
    from orbitai.app.ivgc_response import DEFAULT_STRATEGY, MODELS, IVGCResponseLogic

    from orbitai.ivgc.rois import STRATEGY_NAMES

    choices = IVGCResponseLogic.modelChoices()
    assert IVGCResponseLogic.modelLabels() == (list(choices) or [MODELS[SVM]])
    for label, name in choices.items():
        assert IVGCResponseLogic.resolveModel(label).path == IVGCResponseLogic.resolveModel(name).path
        assert IVGCResponseLogic.resolveModel(label).metadata["task"] == "ivgc_response"
    assert DEFAULT_STRATEGY == "mrlr" and DEFAULT_STRATEGY in STRATEGY_NAMES


def _bundle(model: str) -> Callable[[], str]:
    return lambda: "" if installed(model) else f"the {model} bundle is not installed"


#: What the steps that run a model need: the model stack and the rest of orbitai/app/requirements/IVGCResponse.txt (Apply
#: checks them all before it starts a job), by import name.
MODEL_NEEDS = (selftest.MODEL,) + ("scipy", "sklearn", "skops", "radiomics", "jsonschema", "captum")

#: The module's self-test (`orbitai.selftest`): the steps and what each needs.
SELF_TEST = (
    selftest.Step(test_load_results_writes_tables_and_overlay, ("ctx", "tmp")),
    selftest.Step(test_load_results_refuses_broken_folders_scene_unchanged, ("ctx", "tmp")),
    selftest.Step(test_clinical_values_checked_with_the_schema),
    selftest.Step(test_logic_refuses_bad_inputs_before_starting, ("ctx",)),
    selftest.Step(test_logic_refuses_missing_rectus_scene_unchanged, ("ctx",)),
    selftest.Step(test_logic_refuses_unusable_segmentations, ("ctx",)),
    selftest.Step(test_parameter_choices),
    selftest.Step(test_logic_refuses_strategy_the_model_was_not_trained_on, ("ctx",), (), _bundle(SVM)),
    selftest.Step(test_clinical_model_refuses_missing_and_out_of_range, ("ctx",), (), _bundle(CLINICAL)),
    selftest.Step(test_logic_predicts_phantom_into_scene, ("ctx",), MODEL_NEEDS, _bundle(SVM)),
    selftest.Step(test_panel_binds_results_to_starting_input, ("ctx",), MODEL_NEEDS, _bundle(SVM)),
    selftest.Step(test_logic_clinical_model_on_phantom, ("ctx",), MODEL_NEEDS, _bundle(CLINICAL)),
)
