"""Whole-scan orbit segmentation: the generic engine (:func:`orbitai.engine.inference.predict`) plus the
orbit rules (:mod:`orbitai.orbit.rules`). No manual crop: the network runs where orbits can lie (the
front of the head, :func:`~orbitai.orbit.rules.orbit_search_box`; the whole scan again when no orbit is
found there), and each orbit is found from the predicted eyeballs (left/right split at the midline
between them; with one globe in view, its side told by its orbit's anatomy and that side alone reported)."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from orbitai.io import Volume
from orbitai.orbit.anatomy import label_counts, one_orbit_warning
from orbitai.orbit.locate import orbit_focus
from orbitai.orbit.rules import (
    MIN_EYEBALL_ML,
    OrbitNotFoundError,
    class_values,
    classes_to_orbit_labels,
    eyeball_class,
    field_of_view_warnings,
    require_orbit,
)
from orbitai.preprocess.checks import check_input
from orbitai.progress import ProgressCallback
from orbitai.scan import ScanFacts
from orbitai.engine.focus import Focus
from orbitai.engine.inference import SegSpec, predict
from orbitai.engine.result import EngineResult

log = logging.getLogger(__name__)


@dataclass
class SegResult:
    labels: Volume                     # orbit-scheme label map on the input grid
    warnings: list[str]
    seconds: float = 0.0
    engine: EngineResult | None = None   # the classes before the orbit rules, and their confidence
    window_seconds: float = 0.0          # the sliding-window inference alone
    prep_seconds: float = 0.0            # resampling to the model grid and normalising

    @property
    def confidence(self) -> Volume | None:
        """Max class probability per voxel on the input grid (made when asked for)."""
        return None if self.engine is None else self.engine.confidence

    def soft_volumes(self, structures: Sequence[str]) -> dict[int, float]:
        """Each orbit-scheme label value's partial-volume-aware volume (cm3): its class's probability summed on
        the model grid around it (:meth:`orbitai.engine.result.EngineResult.soft_volumes`; the sides are kept
        apart by nearness). A structure found on the input grid but not on the coarser model grid keeps its voxel
        volume; one not found, 0. ``structures``: the model's classes (``SegSpec.structures``)."""
        counts = label_counts(self.labels)
        vv = self.labels.voxel_volume_mm3() / 1000.0
        values = {v: c for c, pair in class_values(structures).items() for v in pair}
        soft = {} if self.engine is None else self.engine.soft_volumes(self.labels, values)
        voxels = {v: int(counts[v]) if v < len(counts) else 0 for v in values}
        return {v: (soft.get(v, n * vv) if n else 0.0) for v, n in voxels.items()}


@dataclass(frozen=True)
class OrbitSearch:
    """Where :func:`segment` looks for the orbits and what it takes for one. ``locate``: in a large scan (a whole
    head), find the orbits with a coarse pass first and run the network around them only
    (:mod:`orbitai.orbit.locate`). ``whole_scan``: when no orbit is found in the front of the head, search the whole
    scan again (off: raise at once; ``seg rank`` scores such a scan as doubtful as can be without the second run).
    ``min_eyeball_ml``: less eyeball than this is no orbit."""

    locate: bool = True
    whole_scan: bool = True
    min_eyeball_ml: float = MIN_EYEBALL_ML


def segment(vol: Volume, model: torch.nn.Module, spec: SegSpec, window: str = "overlap",
            device: torch.device | str = "cpu", progress: ProgressCallback | None = None,
            sw_batch_size: int = 1, mirror: bool = True, facts: ScanFacts | None = None,
            search: OrbitSearch = OrbitSearch()) -> SegResult:
    """Segment the orbits of a whole CT/MRI; returns orbit-scheme labels in the input's geometry.

    ``mirror`` averages the prediction with that of the left-right mirrored scan (twice the
    window time, slightly better masks; the model's classes are side-agnostic). Raises
    :class:`~orbitai.orbit.rules.OrbitNotFoundError` when less than ``search.min_eyeball_ml`` of eyeball is found, or
    nothing found looks like an eyeball. ``facts``: what the scan is (`orbitai.scan.scan_facts`), read by
    the input check's warnings. ``search``: where the orbits are looked for (`OrbitSearch`)."""
    t0 = time.perf_counter()
    modality_warnings = check_input(vol, spec.modality, facts)     # what the scan is: its facts say
    warnings = field_of_view_warnings(vol) + modality_warnings
    for w in warnings:
        log.warning(w)
    t1 = time.perf_counter()
    focused: list[bool] = []
    orbits = orbit_focus(model, spec.structures, search.locate)

    def noted(norm, spacing):
        box = orbits(norm, spacing)
        focused.append(box is not None)
        return box
    focus = replace(orbits, find=noted)       # the same grid as the orbits' focus; notes whether it found a box

    def labels_within(where: Focus | None) -> tuple[EngineResult, Volume]:
        res = predict(vol, model, spec, window, device, progress=progress, sw_batch_size=sw_batch_size,
                      mirror=mirror, check=False, focus=where)
        return res, _labels(vol, spec, res, search.min_eyeball_ml, facts)

    try:
        res, labels = labels_within(focus)
    except OrbitNotFoundError:
        if not any(focused) or not search.whole_scan:
            raise
        # the head's front was not where the orbits are (an unusual field of view): the whole scan
        log.info("no orbit in the front of the head; searching the whole scan")
        res, labels = labels_within(None)
    warnings = warnings + one_orbit_warning(labels, spec.structures)
    return SegResult(labels, warnings, time.perf_counter() - t0, res, res.window_seconds,
                     res.prep_seconds + (t1 - t0))


def _labels(vol: Volume, spec: SegSpec, res: EngineResult, min_eyeball_ml: float,
            facts: ScanFacts | None = None) -> Volume:
    """The engine's classes ``res`` turned into orbit-scheme labels on the input grid (raises when no orbit)."""
    labels_arr = np.zeros(vol.shape, np.uint8)
    if res.box is not None and res.classes is not None:
        sub = tuple(slice(a, b) for a, b in res.box)
        labels_arr[sub] = classes_to_orbit_labels(res.classes, class_values(spec.structures),
                                                  eyeball_class=eyeball_class(spec.structures)).array
    labels = vol.with_array(labels_arr)
    require_orbit(labels, spec.structures, min_eyeball_ml, vol, facts)
    return labels
