"""How far to trust a call (issue 51), every classifier in one run: the out-of-distribution flag and the calibration
refitted on the phantoms of ``make trust`` (without writing the bundles) and measured on held-out test phantoms,
with what out-of-distribution inputs get.

Cohorts (``build/trust/<task>/{train,validation,test}``, written when missing): TAO 120/200/200 phantoms (seeds
3000/3500/3700; 2 eyes each), IVGC 150/200/200 (6000, the training cohort / 6500 / 7000), NMOSD/MS 160/160/160
(16000, the training cohort / 16500 / 17000). Per classifier: the share of test cases flagged (target <= 5 %), the
expected calibration error (15 bins) before and after calibration (target <= 0.05) and the reliability diagrams
(in notes). Out of distribution: noise with the phantom's segmentation (TAO, IVGC), a brain-protocol T2 without fat
suppression (TAO), infarct phantoms (NMOSD/MS: the scope check and the distance), the scope check's false
alarms on the MS/NMOSD test phantoms and on the 28 real MS lesion maps of ``shared/data``, and TAO's calls on the
real brain-protocol T2 MRIs of MS patients there (no thyroid eye disease: each call should say do not use). ``python -m benchmarks trust`` -> ``benchmarks/results/trust.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parent.parent / "build" / "trust"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_LESIONS, REAL_RAW = SHARED / "ms_lesion_masks_lesjak", SHARED / "ms_flair_raw_lesjak"
REAL_FLAIR = SHARED / "ms_flair_lesjak" / "cs_patient26_FLAIR_MNI.nii.gz"
COHORTS = {"tao": {"train": (120, 3000), "validation": (200, 3500), "test": (200, 3700)},
           "ivgc": {"train": (150, 6000), "validation": (200, 6500), "test": (200, 7000)},
           "brain-flair": {"train": (160, 16000), "validation": (160, 16500), "test": (160, 17000)}}
FOLDER = {"tao": "tao", "ivgc": "ivgc", "brain-flair": "neuro"}
MODELS = {"tao": ("B", "A"), "ivgc": ("svm", "resnet50", "rdinet", "rdinet_clinical"),
          "brain-flair": ("neuro_twoview18_demo", "neuro_resnet3d18_demo")}
INFARCTS = 20


def _cohort(kind: str, split: str) -> Path:
    from orbitai.phantoms.cohort import write_cohort

    n, seed = COHORTS[kind][split]
    folder = ROOT / FOLDER[kind] / split
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        write_cohort(kind, n, seed, folder, montage_cases=0)
    return manifest


def _record(metrics: dict[str, Any], notes: dict[str, Any], name: str, report: dict[str, Any]) -> None:
    t = report["test"]
    metrics[f"{name}_test_flagged_share"] = t["flagged_share"]
    metrics[f"{name}_test_ece_uncalibrated"] = t["ece_uncalibrated"]
    metrics[f"{name}_test_ece_calibrated"] = t["ece_calibrated"]
    metrics[f"{name}_test_accuracy"] = t["accuracy"]
    notes[name] = report


def _fit_all(kind: str, label: Any, fit: Any, metrics: dict[str, Any], notes: dict[str, Any], prefix: str = ""
             ) -> dict[str, list]:
    """Refit (without writing) and record every model of ``kind`` on its cohorts; the cohorts' cases."""
    from orbitai.cohort.manifest import read_labelled_manifest

    cases = {s: read_labelled_manifest(_cohort(kind, s), label) for s in COHORTS[kind]}
    for model in MODELS[kind]:
        _record(metrics, notes, prefix + model, fit(model, cases["train"], cases["validation"], cases["test"], "cpu",
                                                    write=False, cache=ROOT / FOLDER[kind] / "cache"))
    return cases


def _tao(metrics: dict[str, Any], notes: dict[str, Any]) -> None:
    from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case
    from orbitai.scan import scan_facts
    from orbitai.tao.data import case_label
    from orbitai.tao.predict import predict_tao
    from orbitai.tao.spec import EXPECTS
    from orbitai.tao.trust import fit_tao_trust

    _fit_all("tao", case_label, fit_tao_trust, metrics, notes, "tao_")
    flagged = {"noise": 0, "t2_no_fat_suppression": 0, "t2_no_fs_distance": 0}
    for seed in range(3990000, 3990010):
        case = orbit_case(seed, "t2", tao="active", orientation="axial")
        noise = np.random.default_rng(seed).normal(500, 200, case.image.shape).clip(0).astype(np.int16)
        pred = predict_tao(case.image.with_array(noise), case.labels, "B", "cpu", maps=False)
        flagged["noise"] += sum(e.flagged for e in pred.eyes)
        brain = orbit_case(seed, "t2", tao="active", orientation="axial",
                           rendering=Rendering(contrast=CONTRASTS["t2_no_fat_suppression"]), spacing=(0.6, 0.6, 3.3))
        pred = predict_tao(brain.image, brain.labels, "B", "cpu", maps=False)
        flagged["t2_no_fs_distance"] += sum(e.flagged for e in pred.eyes)
        pred.out_of_scope(scan_facts(brain.image, {}, None).breaks(EXPECTS))   # as 'tao predict' does
        flagged["t2_no_fat_suppression"] += sum(e.flagged for e in pred.eyes)
    metrics["tao_B_noise_eyes_flagged_share"] = flagged["noise"] / 20
    metrics["tao_B_t2_no_fs_eyes_flagged_share"] = flagged["t2_no_fat_suppression"] / 20
    metrics["tao_B_t2_no_fs_eyes_flagged_by_distance_share"] = flagged["t2_no_fs_distance"] / 20


def _ivgc(metrics: dict[str, Any], notes: dict[str, Any]) -> None:
    import tempfile

    from orbitai.io import read_volume, write_volume
    from orbitai.ivgc.data import case_label
    from orbitai.ivgc.predict import IvgcOptions, predict_ivgc
    from orbitai.ivgc.trust import fit_ivgc_trust

    cases = _fit_all("ivgc", case_label, fit_ivgc_trust, metrics, notes, "ivgc_")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in MODELS["ivgc"][:3]:         # the clinical RDINet takes the same image path as RDINet
            flagged = 0
            for c in cases["test"][:10]:
                mri = read_volume(c.image)
                noise = np.random.default_rng(len(c.case_id)).normal(float(np.mean(mri.array)), 20,
                                                                      mri.shape).clip(0).astype(np.float32)
                path = write_volume(mri.with_array(noise), Path(tmp) / "noise.nrrd")
                flagged += bool(predict_ivgc(path, c.segmentation, kind, options=IvgcOptions(gradcam=False)).flagged)
            metrics[f"ivgc_{kind}_noise_flagged_share"] = flagged / 10


def _neuro(metrics: dict[str, Any], notes: dict[str, Any]) -> None:
    import tempfile

    from orbitai.io import read_volume, write_volume
    from orbitai.neuro.anatomy import extract_brain
    from orbitai.neuro.predict import VASCULAR, predict_neuro
    from orbitai.neuro.scope import territorial_lesions
    from orbitai.neuro.study import case_label
    from orbitai.neuro.trust import fit_neuro_trust
    from orbitai.phantoms.brain import infarct_flair_case

    cases = _fit_all("brain-flair", case_label, fit_neuro_trust, metrics, notes)
    false_alarms = 0
    for c in cases["test"]:
        flair = read_volume(c.image)
        false_alarms += bool(territorial_lesions(read_volume(c.segmentation), extract_brain(flair)))
    metrics["neuro_scope_false_alarms_share_test"] = false_alarms / len(cases["test"])
    found = {"scope": 0, **{m: 0 for m in MODELS["brain-flair"]}}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(7400, 7400 + INFARCTS):
            case = infarct_flair_case(seed)
            flair = write_volume(case.image, Path(tmp) / "flair.nrrd")
            lesions = write_volume(case.labels, Path(tmp) / "lesions.nrrd")
            for model in MODELS["brain-flair"]:
                pred = predict_neuro(flair, lesions, model, heatmap=False)
                found["scope"] += VASCULAR in pred.out_of_scope and model == MODELS["brain-flair"][0]
                found[model] += bool(pred.trust and pred.ood_distance is not None
                                     and pred.trust.flagged(pred.ood_distance))
    metrics["neuro_infarcts_flagged_share"] = found["scope"] / INFARCTS
    for model in MODELS["brain-flair"]:
        metrics[f"{model}_infarcts_ood_share"] = found[model] / INFARCTS
    # the real MS lesion maps of 28 patients (Lesjak et al., MNI space, on the template FLAIR): none is a territory
    real = sorted(REAL_LESIONS.glob("patient*_lesionmask_MNI.nii.gz"))
    if real:
        template = extract_brain(read_volume(REAL_FLAIR))
        alarms = [p.name[:9] for p in real if territorial_lesions(read_volume(p), template)]
        metrics["neuro_scope_false_alarms_real_ms_maps"] = len(alarms)
        notes["real_ms_maps"] = {"maps": len(real), "read_as_territorial": alarms}


def _real_tao(metrics: dict[str, Any], notes: dict[str, Any]) -> None:
    """The real brain-protocol T2 MRIs of MS patients (no thyroid eye disease; shared/data): TAO's call on each."""
    from orbitai.errors import OrbitAIError
    from orbitai.io import read_scan
    from orbitai.scan import scan_facts
    from orbitai.tao.predict import predict_tao
    from orbitai.tao.spec import EXPECTS

    rows = {}
    for path in sorted(REAL_RAW.glob("*_T2W.nii.gz")):
        image, acq = read_scan(path)
        facts = scan_facts(image, acq.tags, path)
        try:
            pred = predict_tao(image, None, "B", "cpu", maps=False)
        except OrbitAIError as exc:
            rows[path.name] = {"refused": str(exc)}
            continue
        pred.out_of_scope(facts.breaks(EXPECTS))
        rows[path.name] = {"flagged_eyes": sum(e.flagged for e in pred.eyes), "eyes": len(pred.eyes),
                           "why": sorted({e.trust_message for e in pred.eyes})}
    if rows:
        metrics["tao_real_brain_t2_called_and_not_flagged"] = sum(
            r.get("eyes", 0) - r.get("flagged_eyes", 0) for r in rows.values())
        notes["real_brain_t2_tao"] = rows


def main() -> None:
    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {"cohorts": COHORTS}
    for run in (_tao, _ivgc, _neuro, _real_tao):
        run(metrics, notes)
    targets: dict[str, str] = {}
    for name in [k[: -len("_test_flagged_share")] for k in metrics if k.endswith("_test_flagged_share")]:
        targets[f"{name}_test_flagged_share"] = "<= 0.05"
        targets[f"{name}_test_ece_calibrated"] = "<= 0.05"
    targets.update({"tao_B_noise_eyes_flagged_share": ">= 1.0", "tao_B_t2_no_fs_eyes_flagged_share": ">= 1.0", "neuro_infarcts_flagged_share": ">= 1.0",
                    "neuro_scope_false_alarms_share_test": "<= 0.0", "neuro_scope_false_alarms_real_ms_maps": "<= 0",
                    "tao_real_brain_t2_called_and_not_flagged": "<= 0"})
    write_result("trust", metrics, targets, notes)


if __name__ == "__main__":
    main()
