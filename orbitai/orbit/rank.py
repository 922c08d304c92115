"""Which scan to correct next (``orbitai seg rank``): the user's unlabelled scans ranked by how little the model
can be trusted on them, so that the annotator corrects the cases that teach it the most (active learning).

A scan's score is the mean, over the structure-sides the model segments (both eyeballs, nerves and recti), of
its doubt: 1 for a structure that is missing or outside the normal adult range (`orbitai.orbit.anatomy`), otherwise
one minus the model's mean confidence over the structure. A scan where no orbit is found scores 1.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from orbitai.errors import OrbitAIError, one_line
from orbitai.io import read_volume
from orbitai.orbit.anatomy import check_structures
from orbitai.orbit.models import load_seg_model
from orbitai.orbit.rules import OrbitNotFoundError
from orbitai.orbit.segment import segment
from orbitai.progress import ProgressCallback

log = logging.getLogger(__name__)


@dataclass
class Ranked:
    case_id: str
    image: str
    score: float          # 0 (the model is sure and plausible) .. 1 (nothing to trust)
    implausible: int      # structure-sides missing or outside the normal range
    structures: int
    mean_confidence: Optional[float]
    note: str = ""

    def to_row(self) -> dict:
        return asdict(self)


def doubt(checks) -> tuple[float, int, Optional[float]]:
    """(score, implausible structure-sides, mean confidence) of one result's structure checks."""
    if not checks:
        return 1.0, 0, None
    per, confs = [], []
    for c in checks:
        if c.implausible or c.confidence is None:
            per.append(1.0)
        else:
            per.append(1.0 - float(c.confidence))
        if c.confidence is not None:
            confs.append(float(c.confidence))
    return float(np.mean(per)), sum(c.implausible for c in checks), (float(np.mean(confs)) if confs else None)


def rank_scans(scans: Sequence[tuple[str, str | os.PathLike]], model: Optional[str] = None, device: str = "cpu",
               progress: Optional[ProgressCallback] = None, mirror: bool = False) -> list[Ranked]:
    """``scans`` ((case id, image file)) ranked most doubtful first (ties: in the order given). ``model``: a bundle
    (default: the bundled MRI model); every scan is segmented once, without mirroring by default (twice as fast; the
    ranking, not the masks, is what counts here)."""
    _, net, spec = load_seg_model(model or "MR", False, device)
    out = []
    for n, (case_id, image) in enumerate(scans, 1):
        try:
            res = segment(read_volume(image), net, spec, "overlap", device, mirror=mirror)
            score, bad, conf = doubt(check_structures(res.labels, spec.structures, res.confidence))
            out.append(Ranked(case_id, os.fspath(image), score, bad, len(spec.structures) * 2, conf))
        except OrbitNotFoundError as exc:
            out.append(Ranked(case_id, os.fspath(image), 1.0, len(spec.structures) * 2, len(spec.structures) * 2,
                              None, one_line(exc)))
        except OrbitAIError as exc:      # an unreadable or unsuitable scan: said, last in the list
            out.append(Ranked(case_id, os.fspath(image), -1.0, 0, 0, None, one_line(exc)))
        if progress:
            progress(n, len(scans), f"ranked {case_id}")
    order = sorted(range(len(out)), key=lambda i: (-out[i].score, i))
    return [out[i] for i in order]
