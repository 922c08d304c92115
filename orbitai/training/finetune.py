"""Fine-tuning a bundled model on a user's own corrected cases: what every task's recipe shares.

A task (``orbitai/orbit/finetune.py``) supplies how one run trains and scores; this module runs the plan:

1. **Cross-validation for early stopping.** With folds, the user's cases are held out in turn (the task splits
   them, e.g. with :func:`orbitai.cohort.splits.kfold_split`); each fold fine-tunes from the base and scores its held-out cases
   every ``eval_every`` steps, the base itself at step 0. The step with the best mean over the folds is the
   stopping point, and the curve at step 0 is the base's own cross-validated figure.
2. **The final run** trains on every case for that many steps and is installed as a new bundle in the user's model
   folder (``~/.orbitai/models``, on the bundle search path): never over the bundled model.
3. **Resume.** Each finished fold's curve is kept in ``state.json`` and the running one's weights in a checksummed
   checkpoint (``orbitai.training.checkpoint``) every ``eval_every`` steps, in a work folder beside the output;
   the same command after a cancel goes on where it stopped, and a success removes the folder.

Why here and not MONAI Label's trainer: MONAI Label fine-tunes inside its server with a GPU in mind and knows
nothing of a phantom replay set or of a base to beat; the loop itself is a dozen lines.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from orbitai.staging import write_text_atomic

log = logging.getLogger(__name__)

#: One run: (run tag, training indices, held-out indices, steps, evaluation steps, resume) -> curve (mean score of
#: the held-out cases at each evaluation step; empty without held-out cases).
RunFn = Callable[[str, Sequence[int], Sequence[int], int, Sequence[int]], list[float]]


@dataclass(frozen=True)
class Plan:
    """The cross-validation plan of one fine-tuning (saved in its work folder and in the bundle)."""

    cases: int
    steps: int          # the most steps a run may take
    eval_every: int
    #: (training indices, held-out indices) of each fold (the task's split, e.g. `orbitai.cohort.splits.kfold_split`);
    #: none: no cross-validation
    folds: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()

    @property
    def eval_steps(self) -> list[int]:
        """The steps at which a fold scores its held-out cases (0: the base)."""
        return list(range(0, self.steps + 1, self.eval_every))

    def total_steps(self) -> int:
        """Training steps of the whole plan (folds at full length, the final run at most as long)."""
        return self.steps * (len(self.folds) + 1)


@dataclass
class Outcome:
    """What cross-validation says: the stopping step and the base's and the fine-tuned model's held-out scores."""

    stop_step: int
    base_score: Optional[float]          # mean over folds at step 0 (None without cross-validation)
    tuned_score: Optional[float]         # mean over folds at the stopping step
    curve: list[float] = field(default_factory=list)    # mean over folds at each evaluation step
    folds: list[list[float]] = field(default_factory=list)

    @property
    def better_than_base(self) -> Optional[bool]:
        if self.base_score is None or self.tuned_score is None:
            return None
        return self.stop_step > 0 and self.tuned_score > self.base_score

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "better_than_base": self.better_than_base}


def choose_stop(plan: Plan, curves: Sequence[Sequence[float]]) -> Outcome:
    """The evaluation step with the best mean held-out score (the earliest of equals; never 0 unless the base wins
    at every step, when the full schedule is run and reported as below its base)."""
    if not curves:
        return Outcome(plan.steps, None, None)
    mean = np.mean(np.asarray(curves, float), axis=0)
    best = int(np.argmax(mean))
    stop = plan.eval_steps[best] if best > 0 else plan.steps
    tuned = float(mean[best]) if best > 0 else float(mean[-1])
    return Outcome(stop, float(mean[0]), tuned, [float(v) for v in mean], [list(map(float, c)) for c in curves])


class State:
    """The finished folds' curves in ``WORK/state.json``, kept only while the plan is the same."""

    def __init__(self, work: Path, plan: Plan, fingerprint: str):
        self.path = work / "state.json"
        # as it reads back from JSON (tuples as lists), so that the same plan compares equal
        self.key = json.loads(json.dumps({"plan": asdict(plan), "fingerprint": fingerprint}))
        self.curves: dict[str, list[float]] = {}
        self.stale = False      # an earlier run's state with other cases or settings was found (and dropped)
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                if saved.get("key") == self.key:
                    self.curves = {str(k): [float(x) for x in v] for k, v in saved.get("curves", {}).items()}
                else:
                    self.stale = True
                    log.warning("the earlier fine-tuning in %s had other cases or settings: starting over", work)
            except (OSError, ValueError, TypeError, AttributeError):
                self.stale = True
                log.warning("unreadable %s: starting over", self.path)

    def done(self, tag: str) -> Optional[list[float]]:
        return self.curves.get(tag)

    def record(self, tag: str, curve: list[float]) -> None:
        self.curves[tag] = curve
        write_text_atomic(self.path, json.dumps({"key": self.key, "curves": self.curves}, indent=1))


def cross_validate(plan: Plan, state: State, run: RunFn) -> Outcome:
    """Every fold of ``plan`` (those in ``state`` are not run again), then the stopping step."""
    curves = []
    for f, (tr, va) in enumerate(plan.folds):
        tag = f"fold{f}"
        curve = state.done(tag)
        if curve is None:
            curve = run(tag, tr, va, plan.steps, plan.eval_steps)
            state.record(tag, curve)
        curves.append(curve)
    return choose_stop(plan, curves)
