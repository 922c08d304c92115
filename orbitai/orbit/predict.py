"""Orbit segmentation of one scan: what ``orbitai seg predict`` runs for each case (the Logic's child runs
that command; the annotation tools' model prior runs the same engine through ``orbitai seg prior``)."""
from __future__ import annotations

import logging
import os
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from orbitai.device import run_with_fallback
from orbitai.dicom.export import write_dicom_results
from orbitai.dicom.seg import RESAMPLED_NOTE
from orbitai.io import read_scan, require_values, write_volume
from orbitai.orbit.anatomy import DEFAULT_POPULATION, check_structures, checked_range, verdict
from orbitai.orbit.models import load_seg_model
from orbitai.orbit.result import LABELMAP_FILE, SOFT_VOLUME_KEY, SegmentationResult, check_row
from orbitai.orbit.rules import structure_volumes
from orbitai.orbit.segment import segment
from orbitai.preprocess.checks import check_spacing
from orbitai.scan import ScanFacts, scan_facts
from orbitai.scan.values import bundled_model_family, check_not_wrapped, model_family
from orbitai.preprocess.slices import structure_gap_warnings
from orbitai.progress import ProgressCallback

__all__ = ["ModelCache", "predict"]

log = logging.getLogger("orbitai.seg")


class ModelCache:
    """The segmentation models a run needs, each loaded once: the one named by --model, or the
    bundled default of each modality met (a batch mixing CT and MRI loads both)."""

    def __init__(self, name: str | None, device) -> None:
        self.name, self.device = name, device
        self.loaded: dict[bool | None, tuple] = {}

    def get(self, is_ct: bool) -> tuple:
        key = None if self.name else is_ct
        if key not in self.loaded:
            self.loaded[key] = load_seg_model(self.name, is_ct, self.device)
        return self.loaded[key]


def predict(image: str | os.PathLike, out: str | os.PathLike, models: ModelCache, options: Mapping[str, Any],
            facts: Optional[ScanFacts] = None, progress: Optional[ProgressCallback] = None,
            stamp: Optional[Callable[[SegmentationResult], Any]] = None) -> SegmentationResult:
    """Segment the orbits of ``image`` (a file or DICOM folder) into the folder ``out`` (written staged, moved
    in complete: ``result.json``, the segmentation, volumes, and on request the uncertainty map and a plain
    label map), print its summary and the seconds of each stage (read, model, preprocess, window, postprocess,
    volumes, write), and return the result. ``options``: ``window`` (default overlap), ``mirror`` (default on),
    ``uncertainty``, ``labelmap``, ``population`` (whose volume ranges the checks use: ted or healthy, default
    ted, `orbitai.orbit.anatomy.POPULATIONS`) and ``modality``, the ``--modality`` value (what the scan is, when the user says; by
    default the scan's tags and image say, `orbitai.scan.scan_facts`, and choose the CT or the MRI model), unless
    the caller judged the scan already (``facts``); ``stamp`` marks the result before it is written (the predictor's
    `orbitai.predictor.Predictor.stamp`). The body of `orbitai.orbit.predictor.OrbitPredictor.predict`, which every
    front end calls."""
    progress = progress or (lambda done, total, message: None)
    out = Path(out)
    window, mirror = options.get("window") or "overlap", options.get("mirror", True)
    uncertainty, labelmap = bool(options.get("uncertainty")), bool(options.get("labelmap"))
    population = options.get("population") or DEFAULT_POPULATION     # whose ranges: healthy or ted
    checked_range("eyeball", population)       # an unknown one: one line before any work

    t0 = time.perf_counter()
    vol, acquisition = read_scan(image)     # tilted / unevenly spaced DICOM resampled, values in HU
    require_values(vol, "image")
    check_spacing(vol, os.fspath(image))
    # what no model reads (wrapped values), refused before asking what the scan is; the values measured once
    values = check_not_wrapped(vol if facts is None or facts.values is None else facts.values, os.fspath(image))
    if facts is None:
        facts = scan_facts(vol, acquisition.tags, image, options.get("modality"), values=values)
    if models.name:
        is_ct = model_family(facts, values) == "CT"
    else:           # refuses what neither model fits (8-bit CT) and an image that does not say
        is_ct = bundled_model_family(facts, os.fspath(image), values) == "CT"
    for note in acquisition.notes:
        print(f"note: {note}")
    dicom_out = acquisition.source == "dicom" and _dicom_writer_available()
    if dicom_out and acquisition.resampled is not None:
        acquisition.notes.append(RESAMPLED_NOTE)
    t1 = time.perf_counter()
    progress(0, 1, "loading model")
    bundle, model, spec = models.get(is_ct)
    t2 = time.perf_counter()
    log.info("model %s on %s, window %s", bundle.name, models.device, window)
    res = run_with_fallback(lambda d: segment(vol, model, spec, window, d, progress=progress,
                                              mirror=mirror, facts=facts), models.device)
    t3 = time.perf_counter()
    rows = structure_volumes(res.labels, spec.structures)
    # partial-volume-aware volumes from the class probabilities: on thick slices the voxel count misses what
    # lies partly in a voxel
    soft = res.soft_volumes(spec.structures)
    # each structure (its soft volume) against the normal adult range and the model's own confidence (the whole
    # verdict: a warning)
    checks = {c.label: c for c in check_structures(res.labels, spec.structures, res.confidence, population=population,
                                                   volumes=soft)}
    for r in rows:
        r[SOFT_VOLUME_KEY] = round(soft.get(r["label"], r["volume_cm3"]), 4)
        r.update(check_row(checks[r["label"]]))
    # structures lying where the acquired slices are too far apart for them: said, not guessed silently
    gap_warnings = structure_gap_warnings(res.labels.array, res.labels.ijk_to_lps(),
                                          {r["label"]: r["structure"] for r in rows}, acquisition.positions,
                                          acquisition.normal)
    warnings = list(res.warnings) + gap_warnings + facts.notes
    if acquisition.source == "dicom" and not dicom_out:
        warnings.append("DICOM SEG and SR not written: pydicom/highdicom are missing (pip install 'orbitai[dicom]').")
    most = verdict(list(checks.values()))
    if most:
        warnings.append(most)
    uncertainty_map = None
    if uncertainty and res.confidence is not None:
        uncertainty_map = res.confidence.with_array((1.0 - res.confidence.array).astype("float32"))
    result = SegmentationResult(res.labels, rows, bundle.name, warnings, uncertainty_map,
                                {"device": str(models.device), "window": window, "seconds": round(res.seconds, 3),
                                 "window_seconds": round(res.window_seconds, 3), "population": population,
                                 "acquisition": acquisition.to_json(), "scan": facts.to_json()})
    if stamp is not None:
        stamp(result)
    t4 = time.perf_counter()

    def write_extra(tmp: Path) -> dict[str, str]:
        files = {"labelmap": write_volume(res.labels, tmp / LABELMAP_FILE).name} if labelmap else {}
        if dicom_out:      # DICOM input: the SEG and TID 1500 SR beside the NRRD results
            files.update(write_dicom_results(image, res.labels, rows, bundle.name,
                                             str(bundle.metadata.get("version", "")), tmp, warnings))
        return files

    # written into a temporary folder beside OUT and moved into place only when complete
    result.write(out, extra=write_extra if labelmap or dicom_out else None)
    t5 = time.perf_counter()
    for w in warnings:
        print(f"warning: {w}")
    print(f"scan: {facts.summary()}")
    print(f"wrote {out}/result.json ({len(rows)} structures, {res.seconds:.1f} s, model {bundle.name})")
    print(f"timing: window {res.window_seconds:.2f} s, total {res.seconds:.2f} s")
    stages = {"read": t1 - t0, "model": t2 - t1, "preprocess": res.prep_seconds, "window": res.window_seconds,
              "postprocess": (t3 - t2) - res.prep_seconds - res.window_seconds, "volumes": t4 - t3, "write": t5 - t4}
    print("timing stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    for r in rows:
        print(f"  {r['name']:<36} {r['volume_cm3']:.3f} cm3 (soft {r[SOFT_VOLUME_KEY]:.3f})" + (f"  [{r['check']}: {r['note']}]" if r["note"] else ""))
    return result


def _dicom_writer_available() -> bool:
    """Whether pydicom and highdicom can be imported (DICOM SEG/SR are written only then)."""
    return find_spec("pydicom") is not None and find_spec("highdicom") is not None
