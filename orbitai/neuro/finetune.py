"""Fine-tune the white-matter lesion network on the user's corrected FLAIRs (``orbitai neuro finetune-lesions``).

The recipe for 3-20 cases on 2 CPU cores (its choices measured in ``benchmarks/bench_finetune.py``), on the plan of
`orbitai.training.finetune` (the orbit fine-tuning's):

- start from the base bundle's weights (the bundled lesion model, or the user's current one);
- each corrected case is read as inference reads a FLAIR: the intracranial mask (`orbitai.neuro.anatomy`), the
  brain's median and MAD, the 1 mm patient-aligned grid of the brain box (`orbitai.neuro.lesionseg.model_grid`);
  then it is one more training case of `orbitai.neuro.lesionseg_train`: the same 2.5D slices, lesion-centred draws
  (half of them each lesion equally likely, so that the small lesions of a light load count) and the same strong
  augmentation (lesion contrast, simulated thick slices, gamma, bias, Rician noise, rotation, flips);
- a share of the draws from phantoms with real lesion maps on real training brains (the base's own training data,
  `orbitai.phantoms.lesion_maps`), so that what it knew is not forgotten;
- early stopping on the user's own cases held out in turn, scored as inference is used (the bundle's
  post-processing) by the mean of voxel Dice and lesion F1; a model that does not beat its base says so.

The result is a new lesion bundle in the user's model folder with its provenance, listed at once in the panels.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.losses import DiceCELoss

from orbitai.bundle.core import Bundle, refuse_package_folder
from orbitai.cohort.manifest import Case
from orbitai.cohort.splits import kfold_split
from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.labels import LABEL_BY_NAME
from orbitai.metrics.segmentation import lesion_metrics
from orbitai.neuro import lesion_cases as lc
from orbitai.neuro import lesionseg_train as lt
from orbitai.neuro.anatomy import extract_brain
from orbitai.neuro.lesionseg import Postprocess, bundle_postprocess, lesion_bundle, lesion_probability, model_grid
from orbitai.neuro.models import LESION_MODELS
from orbitai.neuro.predict import read_flair, read_lesions
from orbitai.neuro.seg_configs import brain_stats
from orbitai.progress import ProgressCallback, emit
from orbitai.scan.flair import check_flair
from orbitai.training import finetune as plan_runner
from orbitai.training.finetune import (FinetuneReport, Install, Plan, RunContext, finetune_and_install,
                                      read_label_values, ticker, train_steps, whole_values, work_folder)

log = logging.getLogger(__name__)

#: What the held-out score of a lesion fine-tuning is.
MEASURE = "mean of Dice and lesion F1"


@dataclass(frozen=True)
class LesionRecipe:
    """The lesion fine-tuning recipe; the defaults are the measured ones (``benchmarks/results/finetune.json``)."""

    steps: int = 200            # the most steps of one run
    eval_every: int = 50        # held-out scoring and checkpoint interval
    folds: int = 3              # cases held out in turn (at most one fold per case; < 2: no early stopping)
    #: a sixth of the base's last training rate: at 2e-4 with a quarter of replay, light-load lesion F1 on held-out
    #: brains fell by 0.11 after 3 cases (``finetune_lesions_lr2e-4.json``), here by 0.06 (``finetune_lesions.json``)
    lr: float = 5e-5
    batch_size: int = 16        # as the base's training
    replay_share: float = 0.5   # draws from real-lesion-map phantoms on training brains (the base's training data)
    replay_cases: int = 3
    replay_seed: int = 48000    # the phantoms' seeds (training brains and maps only, whatever the seed)
    per_lesion: float = 0.5     # lesion-centred draws that pick each lesion equally likely
    contrast_min: float = 0.5   # lesion-contrast augmentation, as the base's training
    seed: int = 0

    def plan(self, n_cases: int) -> Plan:
        """The cases held out in turn (`kfold_split`, at most one fold per case; one case: none) and the schedule."""
        k = min(self.folds, n_cases) if self.folds >= 2 and n_cases >= 2 else 1
        splits = [kfold_split(n_cases, k, f, self.seed) for f in range(k)] if k >= 2 else []
        return Plan(n_cases, self.steps, self.eval_every, tuple((tuple(tr), tuple(va)) for tr, va in splits))


@dataclass
class LesionCase:
    """A corrected FLAIR: the scan, its intracranial mask and lesion mask (its grid), and the training case."""

    case_id: str
    flair: Volume
    brain: Volume
    lesions: Volume
    training: lc.Case


def prepare_case(case_id: str, flair: Volume, lesions: Volume, brain: Volume, seed: int = 0) -> LesionCase:
    """``flair`` with its corrected ``lesions`` and intracranial ``brain`` mask (both on its grid) as a training
    case: resampled onto the model's 1 mm grid of the brain box, intensity over the brain median, the lesions
    inpainted for the contrast augmentation (`orbitai.neuro.lesionseg_train.make_case_arrays`'s arrays)."""
    b = np.asarray(brain.array) > 0
    a = np.asarray(flair.array, np.float32)
    med, mad = brain_stats(a[b])
    if mad <= 0 or med <= 0:
        raise InputError(f"Case {case_id}: the FLAIR is constant or not positive inside the brain; no image to learn "
                         "from.")
    ref = model_grid(flair, b)

    def on_grid(values: np.ndarray, fill: float) -> np.ndarray:
        img = flair.with_array(values.astype(np.float32)).to_sitk()
        return sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, fill,
                                                    sitk.sitkFloat32))

    inside = on_grid(b, 0.0) > 0.5
    ratio = np.where(inside, np.maximum(on_grid(a, 0.0) / med, 1e-3), 0.0).astype(np.float32)
    label = ((on_grid(np.asarray(lesions.array) > 0, 0.0) >= 0.5) & inside).astype(np.uint8)
    arrays = {"ratio": ratio.astype(np.float16), "label": label, "mad": np.float32(mad / med),
              "background": lc.inpaint_lesions(ratio, label).astype(np.float16)}
    return LesionCase(case_id, flair, brain, lesions, lc.case_from_arrays(arrays, seed))


#: The lesion scheme: 0 no lesion, 1 lesion.
LESION_VALUES = (0, 1)
#: Names of other tasks' structures (the orbit scheme's), which a lesion segmentation's segments never bear.
_OTHER_STRUCTURES = frozenset(LABEL_BY_NAME) | {lab.structure for lab in LABEL_BY_NAME.values()}


def check_lesion_labels(case: Case) -> None:
    """Refuse in one line (naming the case) a lesion segmentation that cannot teach the lesion network: values
    other than 0 (no lesion) and 1 (lesion), whatever their sign (a fraction, a negative mark, another task's
    label map), or a ``.seg.nrrd`` whose segments are named as another task's structures (an orbit segmentation)."""
    values, names = read_label_values(case)
    name = Path(case.segmentation or "").name
    scheme = "the lesion scheme (0 no lesion, 1 lesion)"
    present = whole_values(values, case.case_id, name, scheme)
    outside = [v for v in present if v not in LESION_VALUES]
    if outside:
        raise InputError(f"Case {case.case_id}: the lesion segmentation {name} holds label values outside {scheme}: "
                         f"{', '.join(map(str, outside[:5]))}; mark every lesion voxel 1 and everything else 0 (a "
                         "map of several labels, e.g. an orbit segmentation, is not a lesion map).")
    other = sorted(n for v, n in names.items() if v in present and v != 0
                   and "_".join(n.lower().replace("-", " ").split()) in _OTHER_STRUCTURES)
    if other:
        raise InputError(f"Case {case.case_id}: the segment {other[0]!r} of {name} is an orbit structure, not a "
                         "lesion: give the FLAIR's corrected lesion segmentation.")


def read_case(case: Case, seed: int = 0) -> LesionCase:
    """A manifest row (FLAIR, lesion segmentation on its grid) read and prepared as `neuro lesions` reads a FLAIR;
    a segmentation that cannot teach is refused first (`check_lesion_labels`)."""
    if case.segmentation is None:
        raise InputError(f"Case {case.case_id} has no lesion segmentation: fine-tuning learns from corrected "
                         "segmentations; give one per case (the manifest's 'segmentation' column).")
    check_lesion_labels(case)
    flair, _ = read_flair(case.image)
    check_flair(flair)
    lesions = read_lesions(case.segmentation, flair, case_id=case.case_id)
    return prepare_case(case.case_id, flair, lesions, extract_brain(flair).mask, seed)


@functools.lru_cache(maxsize=1)
def replay_cases(seed: int, n: int) -> tuple[lc.Case, ...]:
    """``n`` phantoms with real lesion maps on real training brains (the base's training data), from ``seed``."""
    return tuple(lc.case_from_arrays(lc.make_case_arrays(s, lc.REAL), s) for s in range(seed, seed + n))


def case_score(model: torch.nn.Module, case: LesionCase, pp: Postprocess, device: torch.device) -> float:
    """The mean of voxel Dice and lesion F1 of the model's lesions on ``case`` (its grid, ``pp`` applied; no
    mirrored pass, for speed)."""
    prob = lesion_probability(case.flair, case.brain, model, device, mirror=False)
    m = lesion_metrics(pp.apply(prob).array, np.asarray(case.lesions.array) > 0, case.flair.spacing)
    return 0.5 * (m["dice"] + m["lesion_f1"])


def _fingerprint(cases: Sequence[LesionCase], bundle: Bundle, recipe: LesionRecipe) -> str:
    """What a resumed run must share with the stopped one: the cases' contents, the base's weights, the recipe."""
    h = hashlib.sha256()
    for c in cases:
        for a in (c.flair.array, c.lesions.array):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr((c.case_id, c.flair.spacing, c.flair.origin)).encode())
    h.update(str(bundle.metadata.get("weights_sha256", bundle.path)).encode())
    h.update(repr(asdict(recipe)).encode())
    return h.hexdigest()


def finetune_lesions(cases: Sequence[LesionCase], out: str | Path, base: Optional[str | Bundle] = None,
                     recipe: LesionRecipe = LesionRecipe(), device: str | torch.device = "cpu", resume: bool = True,
                     progress: Optional[ProgressCallback] = None, overwrite: bool = False) -> FinetuneReport:
    """Fine-tune ``base`` (a lesion bundle, or its name or folder; default the bundled one) on ``cases`` and install
    the result at ``out``, never in the bundled models' folder (see `orbitai.training.finetune` for the plan, resume
    and cancel); cases of which none marks a lesion are refused."""
    t0 = time.perf_counter()
    if not cases:
        raise InputError("Fine-tuning needs at least one FLAIR with its corrected lesion segmentation.")
    if not any(np.any(c.training.label) for c in cases):
        raise InputError(f"No lesion is marked in the lesion segmentation of case(s) "
                         f"{', '.join(c.case_id for c in cases[:5])}{' ...' if len(cases) > 5 else ''} (inside the "
                         "brain): fine-tuning learns lesions from corrected lesion maps; give at least one with its "
                         "lesions marked 1.")
    bundle = base if isinstance(base, Bundle) else lesion_bundle(base)
    pp = bundle_postprocess(bundle)
    out = Path(out)
    refuse_package_folder(out)
    work = work_folder(out)
    plan = recipe.plan(len(cases))
    progress = progress or (lambda d, t, m: emit(d, t, m))
    device = torch.device(device)
    replay: tuple[lc.Case, ...] = ()
    if recipe.replay_share > 0 and recipe.replay_cases > 0:
        progress(0, plan.total_steps(), f"rendering {recipe.replay_cases} phantom(s) of the base's training data")
        replay = replay_cases(recipe.replay_seed, recipe.replay_cases)
    ctx = RunContext(work, _fingerprint(cases, bundle, recipe), resume, ticker(plan, progress), device)

    def run(tag: str, tr: Sequence[int], va: Sequence[int], steps: int, eval_steps: Sequence[int]) -> list[float]:
        return _train_run(tag, [cases[i] for i in tr], [cases[i] for i in va], steps, eval_steps, recipe, bundle,
                          pp, replay, ctx)[1]

    training = (f"{recipe.replay_share:.0%} of the draws from {recipe.replay_cases} phantoms with real lesion maps "
                f"on real training brains (seeds {recipe.replay_seed}+)" if replay else "")
    return finetune_and_install(
        plan, ctx, run,
        lambda steps: _train_run("final", list(cases), [], steps, [], recipe, bundle, pp, replay, ctx)[0],
        Install(bundle, out, tuple(c.case_id for c in cases), recipe, training, MEASURE, "lesion_score", overwrite),
        progress, t0)


def _train_run(tag: str, tr: list[LesionCase], va: list[LesionCase], steps: int, eval_steps: Sequence[int],
               recipe: LesionRecipe, bundle: Bundle, pp: Postprocess, replay: Sequence[lc.Case],
               ctx: RunContext) -> tuple[torch.nn.Module, list[float]]:
    """One run from the base's weights: ``steps`` steps on ``tr`` (and the replay phantoms), the mean held-out
    score of ``va`` at ``eval_steps``; checkpoints as `orbitai.training.finetune.train_steps` keeps them."""
    device = ctx.device
    model = bundle.load_model(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)

    def step_loss(step: int) -> torch.Tensor:
        torch.manual_seed(recipe.seed * 100003 + step)
        rng = np.random.default_rng([recipe.seed, sum(map(ord, tag)), step])
        xs, ys = [], []
        for _ in range(recipe.batch_size):
            if replay and (not tr or rng.random() < recipe.replay_share):
                case = replay[int(rng.integers(len(replay)))]
            else:
                case = tr[int(rng.integers(len(tr)))].training
            img, lab = lt.sample(case, rng, per_lesion=recipe.per_lesion, contrast_min=recipe.contrast_min)
            xs.append(img)
            ys.append(lab > 0)                     # the sample numbers its lesions; the loss takes the mask
        x = torch.from_numpy(np.stack(xs)).to(device)
        y = torch.from_numpy(np.stack(ys).astype(np.int64))[:, None].to(device)
        return loss_fn(model(x), y)

    def score(m: torch.nn.Module) -> float:
        return float(np.mean([case_score(m, c, pp, device) for c in va]))

    curve = train_steps(tag, model, opt, steps, eval_steps, recipe.eval_every, step_loss, score if va else None,
                        ctx)
    return model, curve


def out_folder(base: str, name: Optional[str] = None, out: Optional[str | Path] = None) -> Path:
    """Where the fine-tuned lesion bundle goes (`orbitai.training.finetune.out_folder`)."""
    return plan_runner.out_folder(base, name, out, LESION_MODELS.bundled)
