"""What the NeuroDifferential self-test steps (`orbitai.testing.neuro_differential`) stand on: the brain phantom, output
folders as ``neuro predict|lesions`` write them (through the core's own writer, no model) and broken ones, the
phantom's FLAIR and lesions as scene nodes, and whether the steps that run the real child can run here.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.io import Volume

SEED = 770311  # never used for training cohorts
LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter", "callosal")


@functools.lru_cache(maxsize=None)
def cli_missing(command: str = "predict") -> str:
    """Why ``orbitai neuro COMMAND`` cannot run here ("" when its ``--help`` exits 0)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "orbitai", "neuro", command, "--help"], capture_output=True,
                         text=True, timeout=300)
    if res.returncode == 0:
        return ""
    return f"'orbitai neuro {command}' does not exist yet ('orbitai neuro {command} --help' exit code {res.returncode})"


def installed() -> bool:
    """Whether an NMOSD-vs-MS bundle is installed (``neuro predict`` needs one)."""
    from orbitai.app.neuro_differential import NeuroDifferentialLogic

    return bool(NeuroDifferentialLogic.modelChoices())


def lesion_model_installed() -> bool:
    """Whether the default lesion segmentation bundle is installed (``neuro lesions|predict`` without a given
    lesion segmentation need it)."""
    from orbitai.bundle import iter_bundles
    from orbitai.neuro.lesionseg import DEFAULT_BUNDLE

    return any(b.name == DEFAULT_BUNDLE for b in iter_bundles())


@functools.lru_cache(maxsize=2)
def phantom(seed: int = SEED, disease: str = "ms"):
    """The brain phantom: a real 182 x 218 x 182 1 mm FLAIR (brain-extracted) and its lesion mask."""
    from orbitai.phantoms.brain import brain_flair_case

    return brain_flair_case(seed, disease)


def lesion_rows(lesions: Volume) -> list[dict[str, Any]]:
    """lesions.csv rows of a mask: 26-connected components (location classes assigned in turn: the
    loader does not interpret them), volume, voxels and RAS centroid."""
    from scipy import ndimage as ndi

    comp, n = ndi.label(np.asarray(lesions.array) != 0, structure=np.ones((3, 3, 3)))
    rows: list[dict[str, Any]] = []
    if n == 0:
        return rows
    counts = np.bincount(comp.ravel())[1:]
    centres = ndi.center_of_mass(comp > 0, comp, range(1, n + 1))
    m = lesions.ijk_to_ras()
    for i, (c, (k, j, ii)) in enumerate(zip(counts, centres)):
        r, a, s = (m @ np.array([ii, j, k, 1.0]))[:3]
        rows.append({"id": i + 1, "volume_ml": float(c) * lesions.voxel_volume_mm3() / 1000.0,
                     "location": LOCATIONS[i % len(LOCATIONS)], "centroid_r": float(r), "centroid_a": float(a),
                     "centroid_s": float(s), "voxels": int(c)})
    return rows


def write_contract_result(out: Path, flair: Volume, lesions: Volume, applies: Optional[bool] = True,
                          probability: float = 0.27) -> dict:
    """An output folder as ``neuro predict`` (``applies`` True/False) or ``neuro lesions`` (None) writes it,
    through the core's writer; returns result.json's findings."""
    from scipy import ndimage as ndi

    from orbitai.neuro.result import write_neuro_result

    rows = lesion_rows(lesions)
    a = np.asarray(flair.array)
    brain = flair.with_array((a > 0.2 * np.percentile(a, 99)).astype(np.uint8))   # the phantom is brain-extracted
    icv = float(brain.array.sum()) * flair.voxel_volume_mm3() / 1000.0
    total = float(sum(r["volume_ml"] for r in rows))
    counts = {loc: sum(r["location"] == loc for r in rows) for loc in LOCATIONS}
    data: dict[str, Any] = {
        "lesions": {"count": len(rows), "total_ml": total, "percent_icv": 100.0 * total / icv, "icv_ml": icv,
                    "counts": counts, "volumes_ml": {loc: sum(r["volume_ml"] for r in rows if r["location"] == loc)
                                                     for loc in LOCATIONS}},
        "device": "cpu", "seconds": 4.2, "warnings": [], "notes": ["already skull-stripped input"]}
    heat = None
    if applies is not None:
        data.update(model="neuro_twoview18_demo", architecture="twoview18", input_mode="lesion_mask", threshold=0.5,
                    applies=applies)
        if applies:
            data.update(probability_nmosd=probability, call="NMOSD" if probability >= 0.5 else "MS")
            h = ndi.gaussian_filter((np.asarray(lesions.array) != 0).astype(np.float32), 3.0)
            heat = flair.with_array((h / h.max()).astype(np.float32))
        else:
            data.update(probability_nmosd=None, call=None, reason="no white-matter lesion was found, so the "
                        "NMOSD-vs-MS classifier does not apply")
    write_neuro_result(out, data, lesions, rows, brain, heat)
    return data


def phantom_flair(ctx, name: str = "FLAIR"):
    from orbitai.mrml import volume_node_from_volume

    case = phantom()
    return case, volume_node_from_volume(ctx, case.image, name=name)


def lesion_node(ctx, labels: Volume, flair_node=None, name: str = "lesions"):
    from orbitai.io.segfile import lesion_table
    from orbitai.mrml import segmentation_node_from_labels

    return segmentation_node_from_labels(ctx, labels, reference_node=flair_node, name=name, table=lesion_table())


def lesion_mask(seg_node, flair_node) -> np.ndarray:
    from orbitai.io.segfile import lesion_table
    from orbitai.mrml import labels_from_segmentation_node

    return np.asarray(labels_from_segmentation_node(seg_node, flair_node, table=lesion_table()).array) != 0


def break_result(folder: Path, how: str) -> None:
    import json

    from orbitai.io import write_volume

    res = json.loads((folder / "result.json").read_text())
    if how == "no result.json":
        (folder / "result.json").unlink()
        return
    if how == "wrong task":
        res["task"] = "ivgc_response"
    elif how == "count":
        res["lesions"]["count"] += 1
    elif how == "call":
        res["call"] = "NMOSD"
    elif how == "heat map NaN":
        heat = phantom().image.with_array(np.zeros(phantom().image.shape, np.float32))
        heat.array[90, 100, 90] = np.nan
        write_volume(heat, folder / "heatmap.nrrd")
    elif how == "lesions missing":
        (folder / "lesions.seg.nrrd").unlink()
    (folder / "result.json").write_text(json.dumps(res))
