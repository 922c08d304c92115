"""Issue 78's IVGC bar: do the radiomics features that the bundled IVGC model reads agree between the MR+LR ROI the
orbit MRI model draws and the true MR+LR ROI, on thyroid-eye-disease-like coronal T2 phantoms?

Cases: ``orbitai.phantoms.orbit.ted_case`` (every rectus enlarged as ``TED_MUSCLE_SCALE``) as coronal fat-suppressed
T2 at 0.5 x 0.5 x 3 mm (the IVGC protocol's plane and about its slices) on the four SynthSeg heads no training draws,
two seeds each. Each scan goes through ``orbitai seg predict`` as a user runs it (the bundled MRI model, or
``ORBITAI_ORBIT_MRI_MODEL``); then the features of the ``mrlr`` ROI are extracted twice with the bundled IVGC SVM's own
radiomics protocol (`orbitai.ivgc.features.case_features`, as ``ivgc predict`` does): on the model's labels and on the
truth. Agreement per feature: ICC(3,1) over the cases, model ROI against truth ROI (`orbitai.radiomics.select.icc`).
The bar: ICC >= 0.75 for >= 80 % of the features the SVM uses (its ``selection.json``); all features' share beside it.

The ceiling beside it (``perturbed_*``): the same ICC with the truth's ROI read against the truth moved by one voxel
in-plane (`orbitai.ivgc.rois.perturb_labels`, every rectus contour eroded or grown by one voxel: the IVGC analysis's own
second reader). A feature below the bar there cannot pass with any segmentation that is one voxel off the truth.

``python -m benchmarks ivgc_roi_agreement`` -> ``benchmarks/results/ivgc_roi_agreement.json`` (``..._<model folder>.json``
with a candidate; ~8 min on 2 busy cores).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

#: (seed, head): two seeds on each held-out SynthSeg head.
CASES = tuple((790101 + 10 * i + j, head) for i, head in enumerate((17, 18, 19, 20)) for j in range(2))
SPACING = (0.5, 0.5, 3.0)
ICC_BAR, SHARE_BAR = 0.75, 0.80


def main() -> None:
    from orbitai.bundle.models import find_task_bundle
    from orbitai.cli import main as cli
    from orbitai.io import write_volume
    from orbitai.ivgc.features import case_features
    from orbitai.phantoms.orbit import ted_case
    from orbitai.radiomics.select import icc

    svm = find_task_bundle("ivgc_svm_demo", "ivgc_response", "an IVGC response model")
    protocol = svm.load_file("radiomics_protocol")
    used = list(svm.load_file("selection")["features"])
    model = os.environ.get("ORBITAI_ORBIT_MRI_MODEL") or None
    rows: dict[str, list[dict[str, float]]] = {"model": [], "truth": [], "perturbed": []}
    ids: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, head in CASES:
            case = ted_case(seed, "t2", template=head, orientation="coronal", spacing=SPACING)
            cid = f"t2 coronal head {head} seed {seed}"
            image = write_volume(case.image, Path(tmp) / f"{seed}.nrrd")
            truth = write_volume(case.labels, Path(tmp) / f"{seed}_truth.nrrd")
            out = Path(tmp) / f"out_{seed}"
            assert cli(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--labelmap"]
                       + (["--model", model] if model else [])) == 0
            for name, seg in (("model", out / "labels.nrrd"), ("truth", truth)):
                rows[name].append(case_features(cid, str(image), str(seg), ["mrlr"], protocol))
            rows["perturbed"].append(case_features(cid, str(image), str(truth), ["mrlr"], protocol, perturb=True))
            ids.append(cid)
            print(f"{cid}: {len(rows['model'][-1])} features")
    names = sorted(set(rows["model"][0]) & set(rows["truth"][0]) & set(rows["perturbed"][0]))
    b = np.array([[r[n] for n in names] for r in rows["truth"]])
    values = dict(zip(names, icc(np.array([[r[n] for n in names] for r in rows["model"]]), b, "ICC3")))
    ceiling = dict(zip(names, icc(np.array([[r[n] for n in names] for r in rows["perturbed"]]), b, "ICC3")))
    used_icc = {n: float(values[n]) for n in used if n in values}
    used_ceiling = {n: float(ceiling[n]) for n in used if n in ceiling}
    finite_all = [v for v in values.values() if np.isfinite(v)]
    spread = {n: float(np.std(b[:, names.index(n)]) / (abs(np.mean(b[:, names.index(n)])) or 1.0)) for n in used_icc}
    metrics: dict[str, Any] = {
        "used_features": len(used),
        "used_features_found": len(used_icc),
        "used_share_icc_at_least_075": sum(v >= ICC_BAR for v in used_icc.values()) / max(len(used), 1),
        "used_icc_median": float(np.median(list(used_icc.values()))) if used_icc else float("nan"),
        "all_features": len(names),
        "all_share_icc_at_least_075": sum(v >= ICC_BAR for v in finite_all) / max(len(names), 1),
        "perturbed_used_share_icc_at_least_075": sum(v >= ICC_BAR for v in used_ceiling.values()) / max(len(used), 1),
        "perturbed_all_share_icc_at_least_075": sum(v >= ICC_BAR for v in ceiling.values() if np.isfinite(v))
        / max(len(names), 1),
        "cases": len(ids),
    }
    write_result("ivgc_roi_agreement" + (f"_{Path(model).name}" if model else ""), metrics, {"used_share_icc_at_least_075": f">= {SHARE_BAR}"},
                 notes={"cases": ids, "model": model or "orbit_svnet_mri_demo (bundled)",
                        "ivgc_model": f"{svm.name} (strategy mrlr, {len(used)} features)",
                        "icc": "ICC(3,1), two-way mixed, consistency, single measures (Shrout & Fleiss 1979): the "
                               "model's ROI and the truth's as two readers of the same cases",
                        "used_icc": used_icc,
                        "perturbed_used_icc": used_ceiling,
                        "perturbed": "the truth's ROI with every rectus contour moved by one voxel in-plane "
                                     "(orbitai.ivgc.rois.perturb_labels) read against the truth: the ceiling",
                        "truth_cv": spread})


if __name__ == "__main__":
    main()
