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
   the same command after a cancel goes on where it stopped, and a success removes the folder. Both carry the
   run's fingerprint (the inputs' checksums, the base's weights, the recipe): a checkpoint of other inputs is
   never resumed. The work folder holds a marker file (:data:`WORK_MARKER`); a folder of that name without it is
   the user's, and is refused, never written into or removed.

Why here and not MONAI Label's trainer: MONAI Label fine-tunes inside its server with a GPU in mind and knows
nothing of a phantom replay set or of a base to beat; the loop itself is a dozen lines.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Collection, Optional, Sequence, TypeVar

import numpy as np
import torch

from orbitai.bundle.core import MODEL_NAME, Bundle, iter_bundles, save_bundle, user_model_folder
from orbitai.cohort.manifest import Case, folder_name_problem
from orbitai.errors import InputError
from orbitai.io import VolumeError, read_volume
from orbitai.io.checksums import sha256_input
from orbitai.progress import ProgressCallback
from orbitai.result import RESULT_FILE
from orbitai.staging import finetune_work_folder, training_folder, write_json_atomic
from orbitai.training.checkpoint import resume as resume_checkpoint
from orbitai.training.checkpoint import save_checkpoint
from orbitai.training.finite import FiniteSteps

log = logging.getLogger(__name__)

#: One run: (run tag, training indices, held-out indices, steps, evaluation steps) -> curve (mean score of
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
        write_json_atomic(self.path, {"key": self.key, "curves": self.curves}, indent=1)


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


# --------------------------------------------------------------- what cannot teach: refused before any training
def check_distinct_cases(cases: Sequence[Case], what: str = "image") -> None:
    """Refuse in one line two cases with one image (the same checksum: a case trained on would be held out and
    scored too) and a segmentation that is its own image (``what``: the image in words, e.g. "FLAIR")."""
    seen: dict[str, str] = {}
    for c in cases:
        if not Path(c.image).exists():
            raise InputError(f"Case {c.case_id}: the {what} {c.image} does not exist.")
        digest = sha256_input(c.image)
        if digest in seen:
            raise InputError(f"Cases {seen[digest]} and {c.case_id} have the same {what} (one checksum): a case "
                             "would be trained on and scored as held out; give each scan once.")
        seen[digest] = c.case_id
        seg = c.segmentation
        if seg is not None and Path(seg).is_file() and sha256_input(seg) == digest:
            raise InputError(f"Case {c.case_id}: the segmentation {Path(seg).name} is the {what} itself; give the "
                             "corrected segmentation (a label map or .seg.nrrd) in the manifest's 'segmentation' "
                             "column.")


def read_label_values(case: Case) -> tuple[np.ndarray, dict[int, str]]:
    """The distinct values of ``case``'s segmentation as stored (no rounding) and, for a ``.seg.nrrd``, its
    segments' names by label value ({} for a plain label map); unreadable: one line naming the case."""
    path = Path(case.segmentation or "")
    if not path.is_file():
        raise InputError(f"Case {case.case_id}: the segmentation {path} does not exist.")
    try:
        vol = read_volume(path, keep_metadata=True)
    except VolumeError as exc:
        raise InputError(f"Case {case.case_id}: the segmentation {path.name}: {exc}") from None
    meta = vol.metadata
    names: dict[int, str] = {}
    n = 0
    while f"Segment{n}_ID" in meta:
        try:
            value = int(meta.get(f"Segment{n}_LabelValue", str(n + 1)))
        except ValueError:
            value = n + 1
        names[value] = meta.get(f"Segment{n}_Name", meta[f"Segment{n}_ID"]).strip()
        n += 1
    return np.unique(np.asarray(vol.array)), names


def whole_values(values: np.ndarray, case_id: str, name: str, scheme: str) -> list[int]:
    """``values`` as whole numbers, or one line naming the case: a label map holds whole label values
    (``scheme``: the task's values in words); one of fractions (scaled, or an image) cannot teach."""
    v = np.asarray(values, np.float64)
    if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
        frac = [f"{x:g}" for x in v[~np.isfinite(v) | (v != np.round(v))][:3]]
        raise InputError(f"Case {case_id}: the segmentation {name} holds values that are not whole label values "
                         f"({', '.join(frac)}): it is not a label map of {scheme} (scaled, or an image?); give "
                         "the corrected segmentation as saved by Slicer or the browser.")
    return [int(x) for x in v]


#: Progress of one run: (run tag, step, message).
Tick = Callable[[str, int, str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """What every run of one fine-tuning shares (its folds and its final run): the work folder that keeps the
    checkpoint, whether to go on from it, the fingerprint a checkpoint must carry (the run's inputs and settings),
    the progress tick and the device."""

    work: Path
    fingerprint: str
    resume: bool
    tick: Tick
    device: torch.device = torch.device("cpu")


@dataclass(frozen=True)
class Install:
    """What a fine-tuning installs and what its bundle records of where it came from (`provenance`)."""

    base: Bundle
    out: Path
    case_ids: tuple[str, ...]
    recipe: Any                 # the task's recipe (a dataclass), recorded as it was run
    training: str               # the replay data in words ("": none)
    measure: str                # what the held-out score is, in words ("mean Dice")
    score_key: str              # its name in the bundle's metrics (``cross_validated_<score_key>``)
    overwrite: bool = False


def ticker(plan: Plan, progress: ProgressCallback) -> Tick:
    """Progress over the whole plan (the folds in turn, then the final run), with the time left at this pace."""
    total = plan.total_steps()
    clock: list[float] = []     # (time, position) of the first step this process ran

    def tick(tag: str, step: int, message: str) -> None:
        done = min(plan.steps * (int(tag[4:]) if tag.startswith("fold") else len(plan.folds)) + step, total)
        if not clock:
            clock[:] = [time.perf_counter(), done]
        elif done > clock[1]:
            left = (time.perf_counter() - clock[0]) / (done - clock[1]) * (total - done)
            message += f", about {max(1, round(left / 60))} min left"
        progress(done, total, f"{tag}: {message}")

    return tick


#: The file that marks a fine-tuning's work folder as made by OrbitAI (only such a folder is resumed or removed).
WORK_MARKER = ".orbitai-finetune-work"


def work_folder(out: str | Path) -> Path:
    """The work folder of a fine-tuning into ``out``: ``.<name>-finetune`` beside it (`check_work_folder`)."""
    return check_work_folder(finetune_work_folder(out))


def check_work_folder(work: Path) -> Path:
    """``work``, refused in one line when a folder (or file) of that name exists that an OrbitAI fine-tuning did
    not make (no :data:`WORK_MARKER` in it): such a folder is never written into nor removed."""
    if (work.exists() or work.is_symlink()) and (work.is_symlink() or not (work / WORK_MARKER).is_file()):
        raise InputError(f"{work} already exists and was not made by an OrbitAI fine-tuning (it has no "
                         f"{WORK_MARKER}), but a fine-tuning keeps its work there. Move that folder away, or "
                         "choose another --out or --name (nothing of yours is written into or removed).")
    return work


def run_plan(plan: Plan, ctx: RunContext, run: RunFn, final: Callable[[Outcome], T]) -> tuple[Outcome, T]:
    """Cross-validate (finished folds read back from ``ctx.work``), then ``final(outcome)`` (the run on every case
    and the installed bundle). The work folder is removed on success and kept, with its checkpoint, on failure or
    cancel; one without :data:`WORK_MARKER` is refused (`check_work_folder`)."""
    work = check_work_folder(ctx.work)
    with training_folder(work, checkpoint=("checkpoint.pt", "state.json"), finished=lambda: True):
        work.mkdir(parents=True, exist_ok=True)
        (work / WORK_MARKER).write_text("made by an OrbitAI fine-tuning; removed when it succeeds\n",
                                        encoding="utf-8")
        state = State(work, plan, ctx.fingerprint)
        if state.stale or not ctx.resume:      # another run's checkpoint must not start this one
            (work / "checkpoint.pt").unlink(missing_ok=True)
        outcome = cross_validate(plan, state, run)
        return outcome, final(outcome)


def finetune_and_install(plan: Plan, ctx: RunContext, run: RunFn, train_final: Callable[[int], torch.nn.Module],
                         install: Install, progress: ProgressCallback, t0: float) -> "FinetuneReport":
    """The whole plan: cross-validation (`run_plan`), then ``train_final(stop step)`` on every case, installed at
    ``install.out`` with its provenance (`provenance`); ``t0``: when the call began."""
    def final(outcome: Outcome) -> float:
        model = train_final(outcome.stop_step)
        seconds = time.perf_counter() - t0
        save_bundle(model.cpu(), install.out, provenance(install, plan, outcome, seconds), install.overwrite)
        return seconds

    outcome, seconds = run_plan(plan, ctx, run, final)
    progress(plan.total_steps(), plan.total_steps(), "installed")
    return FinetuneReport(install.out, install.base.name, len(install.case_ids), outcome, seconds, install.measure)


def train_steps(tag: str, model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int, eval_steps: Sequence[int],
                eval_every: int, step_loss: Callable[[int], torch.Tensor],
                score: Optional[Callable[[torch.nn.Module], float]], ctx: RunContext) -> list[float]:
    """One run of ``steps`` optimiser steps (``step_loss(step)`` gives the loss of a step's batch, seeded by the
    step so a resumed run draws the same), ``score(model)`` at ``eval_steps`` (0: before any step), a checkpoint every
    ``eval_every`` steps in ``ctx.work`` that a rerun of the same tag and ``ctx.fingerprint`` (the run's inputs and
    settings) goes on from; a checkpoint of another fingerprint is discarded. Returns the curve of scores."""
    curve: list[float] = []
    ckpt = ctx.work / "checkpoint.pt"
    fingerprint, tick = ctx.fingerprint, ctx.tick
    start = 0

    def apply(ck: dict) -> int:
        if ck.get("tag") != tag:
            raise ValueError(f"a checkpoint of run {ck.get('tag')}, not {tag}")
        if ck.get("fingerprint") != fingerprint:
            raise ValueError("a checkpoint of other cases or settings")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        curve[:] = [float(x) for x in ck.get("curve", [])]
        return int(ck["step"])

    initial = ({k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict())

    def reset() -> None:
        model.load_state_dict(initial[0])
        opt.load_state_dict(initial[1])
        curve.clear()

    if ctx.resume and ckpt.is_file():
        start = resume_checkpoint(ckpt, apply, reset, map_location=next(model.parameters()).device) or 0
    tick(tag, start, f"resumed at step {start}" if start else "starting")
    if start == 0 and score is not None and 0 in eval_steps:
        curve.append(score(model))
        model.train()
    finite = FiniteSteps(model, what="fine-tuning")
    for step in range(start, steps):
        finite.begin()
        loss = step_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        finite.step(opt, f"step {step + 1}")      # a non-finite step is skipped, never applied
        done = step + 1
        scored = score is not None and done in eval_steps
        if scored:
            curve.append(score(model))     # type: ignore[misc]
            model.train()
        tick(tag, done, f"step {done}/{steps} loss {float(loss.detach()):.3f}"
             + (f", held-out score {curve[-1]:.3f}" if scored else ""))
        if done % eval_every == 0 and done < steps:
            save_checkpoint({"tag": tag, "fingerprint": fingerprint, "step": done, "model": model.state_dict(),
                             "optimizer": opt.state_dict(), "curve": curve}, ckpt)
    ckpt.unlink(missing_ok=True)
    model.eval()
    return curve


@dataclass
class FinetuneReport:
    """A finished fine-tuning: the installed bundle, its base and what cross-validation said."""

    bundle: Path
    base: str
    cases: int
    outcome: Outcome
    seconds: float
    measure: str = "mean Dice"      # what the held-out score is, in words

    def summary(self) -> str:
        o = self.outcome
        if o.base_score is None:
            return f"fine-tuned {self.base} on {self.cases} case(s) for {o.stop_step} steps (no held-out cases)"
        verdict = "better than" if o.better_than_base else "NOT better than"
        return (f"cross-validated {self.measure} {o.tuned_score:.3f} after {o.stop_step} steps vs {o.base_score:.3f} "
                f"for {self.base}: {verdict} the base")

    def tell(self, summary: Optional[str | Path] = None) -> int:
        """What a fine-tuning command prints (and writes into ``summary/result.json`` when given); exit status 0."""
        if summary:
            write_summary(self, summary)
        print(self.summary())
        print(f"installed {self.bundle}" + ("" if self.outcome.better_than_base is not False else
                                            " (kept, but not better than its base: keep using the base)"))
        return 0


def with_settings(recipe: T, **changes: Any) -> T:
    """The recipe (a dataclass) with the settings given (None: keep the recipe's), the command line's overrides."""
    return replace(recipe, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[type-var]


def out_folder(base: str, name: Optional[str] = None, out: Optional[str | Path] = None,
               bundled: Collection[str] = ()) -> Path:
    """Where the fine-tuned bundle goes: ``out``, else ``<user model folder>/<name or base_ft>``; a name is a name,
    never a path, and a portable folder name (`orbitai.cohort.manifest.folder_name_problem`: not CON, NUL, ... which
    Windows reserves; one line otherwise), and never the name of a ``bundled`` or other installed model."""
    if out:
        return Path(out)
    name = (name or f"{base}_ft").strip()
    why = folder_name_problem(name) if MODEL_NAME.fullmatch(name) else None    # e.g. CON: a Windows device name
    if not MODEL_NAME.fullmatch(name) or why:
        raise InputError(f"--name {name!r} is not a model name{f' ({why})' if why else ''}: give a plain name "
                         "(letters, digits, - and _), or --out FOLDER for a folder.")
    folder = user_model_folder()
    taken = {b.name for b in iter_bundles() if b.path.parent != folder}
    if name in bundled or name in taken:
        raise InputError(f"--name {name}: that is the name of a bundled or installed model outside "
                         f"{folder}; choose another (a model there is never replaced, and would hide the new one).")
    return folder / name


#: What ``finetune --summary DIR`` writes (the panels' job reads it).
FINETUNE_SUMMARY = RESULT_FILE


def write_summary(report: FinetuneReport, folder: str | Path) -> Path:
    """``folder/result.json``: the installed bundle, its base, its figures and whether it beats the base."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"model": report.bundle.name, "bundle": str(report.bundle), "base": report.base, "cases": report.cases,
           "measure": report.measure, "seconds": round(report.seconds, 1), "summary": report.summary(),
           **report.outcome.to_json()}
    return write_json_atomic(folder / FINETUNE_SUMMARY, doc, indent=1)


def provenance(install: Install, plan: Plan, outcome: Outcome, seconds: float) -> dict[str, Any]:
    """A fine-tuned bundle's metadata: the base's task, architecture, input and labels, and where it came from
    (``install``: the base, the cases, the recipe, the replay data and what the held-out score is)."""
    base_meta, base_name, name = install.base.metadata, install.base.name, install.out.name
    case_ids, training_data, measure, key = install.case_ids, install.training, install.measure, install.score_key
    meta = {k: v for k, v in base_meta.items()
            if k in ("task", "architecture", "input", "labels", "parameters", "postprocess")}
    return {
        **meta, "name": name, "version": "0.1.0",
        "description": (f"{base_name} fine-tuned on {len(case_ids)} of the user's corrected scans. "
                        f"{base_meta.get('description', '')}").strip(),
        "training_data": f"{len(case_ids)} user case(s): {', '.join(case_ids[:20])}"
                         + (" ..." if len(case_ids) > 20 else "") + (f"; {training_data}" if training_data else ""),
        "initialised_from": {"bundle": base_name, "weights_sha256": base_meta.get("weights_sha256")},
        "finetune": {"base": base_name, "cases": list(case_ids), "recipe": asdict(install.recipe), "folds": len(plan.folds),
                     "steps": outcome.stop_step, "seconds": round(seconds, 1), "measure": measure,
                     "cross_validation": outcome.to_json()},
        "metrics": ({f"cross_validated_{key}": outcome.tuned_score, f"base_cross_validated_{key}": outcome.base_score}
                    if outcome.base_score is not None else {}),
    }
