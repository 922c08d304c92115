"""Which scan to correct next (``orbitai seg rank``): the user's unlabelled scans ranked by how little the model
can be trusted on them, so that the annotator corrects the cases that teach it the most (active learning).

A scan's score is the mean, over the structure-sides the model segments (both eyeballs, nerves and recti), of
its doubt: 1 for a structure that is missing or outside the normal adult range (`orbitai.orbit.anatomy`), otherwise
one minus the model's mean confidence over the structure. A scan where no orbit is found scores 1.

Before any network runs, each scan is judged once by the one judge of what a scan is (`orbitai.scan.scan_facts`)
against what the task needs (`task_expects`: the orbits in view, the model's modality): a scan that surely breaks it
(a brain-only FLAIR, a CT for an MRI model) is not segmented but listed last, "not ranked", with the reason; the facts
are then handed to the segmentation (judged once). A scan in whose front of the head the network finds no orbit
scores 1 at once: the whole-scan second search of `orbitai.orbit.segment.segment` (a whole run of the network, most of
the ranking's time on a scan it fails on) cannot make it less doubtful. Progress is reported per scan ("scan 2 of 6").
With ``cache`` (``seg rank``, so "Which scan next"), a scan ranked before by the same model is not segmented again
(`orbitai.orbit.rank_cache`): ranking again after a correction costs the new scans only.
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
from orbitai.orbit.predict import SegOptions, SegRun
from orbitai.orbit.predictor import OrbitPredictor
from orbitai.orbit.rank_cache import cached_ranking, keep_ranking, ranking_key
from orbitai.orbit.result import NOT_RANKED
from orbitai.orbit.rules import OrbitNotFoundError
from orbitai.orbit.segment import OrbitSearch
from orbitai.predictor import Case
from orbitai.progress import ProgressCallback
from orbitai.scan import Expects, ScanFacts, scan_facts

log = logging.getLogger(__name__)

#: The score of a scan that is not ranked (left out, unreadable): listed after every ranked scan.
NOT_RANKED_SCORE = -1.0


@dataclass
class Ranked:
    case_id: str
    image: str
    score: float          # 0 (the model is sure and plausible) .. 1 (nothing to trust); -1: not ranked (see note)
    implausible: int      # structure-sides missing or outside the normal range
    structures: int
    mean_confidence: Optional[float]
    note: str = ""

    @property
    def ranked(self) -> bool:
        return self.score >= 0.0

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


def task_expects(modality: str, name: str = "the model") -> Expects:
    """What ranking a scan with a segmentation model of ``modality`` ("CT", "MR", "any") needs of it: the orbits in
    view, and the model's modality."""
    return Expects(modality=modality if modality in ("CT", "MR") else None, orbits=True, name=name)


def left_out_reason(facts: ScanFacts, expects: Expects) -> str:
    """Why a scan is not worth segmenting for the ranking ("" when it is): each way its facts surely break
    ``expects`` (the orbits surely not in view, another modality), with what the scan is."""
    reasons = facts.breaks(expects)
    return f"{NOT_RANKED}: {'; '.join(reasons)} ({facts.summary()})" if reasons else ""


def rank_scans(scans: Sequence[tuple[str, str | os.PathLike]], model: Optional[str] = None, device: str = "cpu",
               progress: Optional[ProgressCallback] = None, mirror: bool = False, judge: bool = True,
               locate: bool = True, cache: bool = False) -> list[Ranked]:
    """``scans`` ((case id, image file)) ranked most doubtful first (ties: in the order given), the scans not ranked
    last. ``model``: a bundle (default: the bundled MRI model); every scan is segmented once, without mirroring by
    default (twice as fast; the ranking, not the masks, is what counts here). ``judge``: ask the scan's facts first
    and leave out the scans that surely do not show what the task needs (module docstring); without it, every scan is
    segmented (as before the facts were asked) and, where no orbit is found in the front of the head, searched again
    over the whole scan; with it, a scan whose facts say the orbits are in view (or do not say) but in whose front the
    network finds none scores 1 (nothing to trust) without that second whole-scan run. ``locate``: in a whole head, the network runs on a box around the
    orbits found by a coarse pass (`orbitai.orbit.locate`, the segmentation's default). ``cache``: a scan ranked before
    by the same model with the same options is not segmented again (`orbitai.orbit.rank_cache`; ``seg rank``'s
    default). The network runs through the task's predictor (`orbitai.orbit.predictor.OrbitPredictor.run`)."""
    predictor = OrbitPredictor(model or "MR", device)
    bundle, _, spec = predictor.models.get(False)
    expects = task_expects(spec.modality, f"the model {bundle.name}")
    sides = len(spec.structures) * 2
    weights = str(bundle.metadata.get("weights_sha256", "")) if cache else ""
    options = {"mirror": mirror, "judge": judge, "locate": locate}
    out: list[Ranked] = []
    for n, (case_id, image) in enumerate(scans, 1):
        if progress:
            progress(n - 1, len(scans), f"scan {n} of {len(scans)}")
        key = None
        try:
            vol = read_volume(image)
            key = ranking_key(vol, weights, options)
            kept = cached_ranking(key)
            if kept is not None:        # ranked before: the same scan, model and options
                out.append(Ranked(case_id, os.fspath(image), **kept))
                continue
            facts = scan_facts(vol, path=image) if judge else None
            why = left_out_reason(facts, expects) if facts is not None else ""
            if why:
                out.append(Ranked(case_id, os.fspath(image), NOT_RANKED_SCORE, 0, 0, None, why))
            else:
                made = predictor.run(Case(vol, facts, given=image, scan=image), SegOptions(mirror=mirror),
                                     predictor.device, search=OrbitSearch(locate=locate, whole_scan=not judge))
                assert isinstance(made, SegRun)
                res = made.seg
                checks = check_structures(res.labels, spec.structures, res.confidence)   # one side with one globe
                score, bad, conf = doubt(checks)
                out.append(Ranked(case_id, os.fspath(image), score, bad, len(checks), conf))
        except OrbitNotFoundError as exc:
            out.append(Ranked(case_id, os.fspath(image), 1.0, sides, sides, None, one_line(exc)))
        except OrbitAIError as exc:      # an unreadable or unsuitable scan: said, last in the list (not kept)
            out.append(Ranked(case_id, os.fspath(image), NOT_RANKED_SCORE, 0, 0, None,
                              f"{NOT_RANKED}: {one_line(exc)}"))
            continue
        keep_ranking(key, out[-1].to_row())
    if progress:
        progress(len(scans), len(scans), f"{len(scans)} of {len(scans)} scans ranked")
    order = sorted(range(len(out)), key=lambda i: (-out[i].score, i))
    return [out[i] for i in order]
