"""Fine-tune an orbit segmentation model on the user's corrected scans (``orbitai seg finetune``).

The recipe for 3-20 cases on 2 CPU cores (its choices measured in ``benchmarks/bench_finetune.py``):

- start from the base bundle's weights (the bundled model for the scans' modality, or the user's current one);
- patches centred on a structure chosen uniformly among those present (the thin muscles as often as the globe);
- strong augmentation: in-plane rotation, left-right flip, gamma, contrast and brightness, a smooth bias field and
  noise (MONAI's random intensity transforms);
- a share of the patches rendered from freshly deformed atlas heads of random contrast (the base model's own
  training data, `orbitai.orbit.synth`), so that what it knew is not forgotten;
- early stopping on the user's own cases held out in turn (`orbitai.training.finetune`); the cross-validated Dice
  of the base and of the fine-tuned model are reported, and a model that does not beat its base says so.

The result is a new bundle in the user's model folder, with its provenance (base model and checksum, cases,
steps, cross-validated figures), listed at once in the panels' model lists.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from monai.transforms import RandAdjustContrast, RandBiasField

from orbitai.bundle.core import Bundle, refuse_package_folder, user_model_folder
from orbitai.cohort.manifest import Case
from orbitai.cohort.splits import kfold_split
from orbitai.engine.inference import SegSpec
from orbitai.errors import InputError
from orbitai.io.checksums import sha256_input
from orbitai.labels import ORBIT_LABELS
from orbitai.orbit.configs import SegConfig
from orbitai.orbit.models import SEG_MODELS
from orbitai.orbit.synth import Building, PoolRecipe, SynthPool, patch_window
from orbitai.orbit.train import Prepared, augment, loss_fn, prepare, validate
from orbitai.progress import ProgressCallback, emit
from orbitai.training import finetune as plan_runner
from orbitai.training.checkpoint import cache_folder
from orbitai.training.finetune import (FinetuneReport, Install, Plan, RunContext, check_distinct_cases,
                                      finetune_and_install, read_label_values, ticker, train_steps, whole_values,
                                      work_folder)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """The fine-tuning recipe; the defaults are the measured ones (``benchmarks/results/finetune.json``)."""

    steps: int = 200            # the most steps of one run (batch ``batch_size``)
    eval_every: int = 50        # held-out scoring and checkpoint interval
    folds: int = 3              # cases held out in turn (at most one fold per case; < 2: no early stopping)
    lr: float = 3e-4
    batch_size: int = 2
    #: Training patch (slices, rows, columns): smaller in-plane than the bundled window (the network is fully
    #: convolutional), so a CPU takes twice the steps in the same time; centred on the structures, it still holds
    #: a muscle with its surroundings (51 mm at 0.8 mm).
    patch: tuple[int, int, int] = (32, 64, 64)
    replay_share: float = 0.25  # patches rendered from deformed atlas heads (the base's own training data)
    replay_anatomies: int = 4
    rotate_deg: float = 15.0
    fg_prob: float = 0.9
    seed: int = 0

    def plan(self, n_cases: int) -> Plan:
        """The cases held out in turn (`kfold_split`, at most one fold per case; one case: none) and the schedule."""
        k = min(self.folds, n_cases) if self.folds >= 2 and n_cases >= 2 else 1
        splits = [kfold_split(n_cases, k, f, self.seed) for f in range(k)] if k >= 2 else []
        return Plan(n_cases, self.steps, self.eval_every, tuple((tuple(tr), tuple(va)) for tr, va in splits))


def sample_structure_patch(p: Prepared, patch: Sequence[int], rng: np.random.Generator,
                           fg_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """A patch of ``p`` centred (with jitter) on a voxel of a class chosen uniformly among those present, with
    probability ``fg_prob``; anywhere otherwise. Padded where the case is smaller than the patch."""
    pads = [(0, max(0, s - n)) for n, s in zip(p.image.shape, patch)]
    img = np.pad(p.image, pads, constant_values=float(p.image.min())) if any(x[1] for x in pads) else p.image
    lab = np.pad(p.classes, pads) if any(x[1] for x in pads) else p.classes
    centre = None
    present = [c for c in np.unique(lab) if c > 0]
    if present and rng.random() < fg_prob:
        c = present[rng.integers(len(present))]
        idx = np.flatnonzero(lab == c)
        centre = np.unravel_index(idx[rng.integers(len(idx))], lab.shape)
    sl = patch_window(lab.shape, patch, centre, rng)
    return img[sl], lab[sl]


def augment_strong(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator,
                   cfg: SegConfig) -> tuple[np.ndarray, np.ndarray]:
    """Rotation about the slice axis, left-right flip, gamma, a smooth bias field, contrast/brightness and noise
    on a 0..1-normalised patch (MONAI transforms, seeded from ``rng``)."""
    seed = int(rng.integers(2 ** 31))
    # rotation and flip as ``seg train`` draws them (its noise left to the end here)
    img, lab = augment(img, lab, rng, cfg)
    x: np.ndarray = img[None]
    gamma = RandAdjustContrast(prob=0.8, gamma=(0.6, 1.6))
    gamma.set_random_state(seed)
    x = np.asarray(gamma(x))
    bias = RandBiasField(prob=0.5, coeff_range=(0.0, 0.3), degree=3)
    bias.set_random_state(seed + 1)
    x = np.asarray(bias(x))
    x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
    x = x + rng.normal(0, rng.uniform(0, 0.05), x.shape)
    return np.ascontiguousarray(x[0], np.float32), np.ascontiguousarray(lab, np.uint8)


def _config(spec: SegSpec, bundle: Bundle, recipe: Recipe) -> SegConfig:
    arch = bundle.metadata["architecture"]
    return SegConfig("finetune", arch["name"], dict(arch.get("args", {})), spec, lr=recipe.lr,
                     batch_size=recipe.batch_size, rotate_deg=recipe.rotate_deg, fg_prob=recipe.fg_prob, noise_std=0.0)


def _fingerprint(cases: Sequence[Case], bundle: Bundle, recipe: Recipe) -> str:
    """What a resumed run must share with the stopped one: the cases' contents (a panel writes them afresh for each
    run), the base's weights and the recipe."""
    h = hashlib.sha256()
    for c in cases:
        h.update(f"{c.case_id}|{sha256_input(c.image)}|{sha256_input(c.segmentation) if c.segmentation else ''}\n"
                 .encode())
    h.update(str(bundle.metadata.get("weights_sha256", bundle.path)).encode())
    h.update(repr(asdict(recipe)).encode())
    return h.hexdigest()


def _segment_name(name: str) -> str:
    """A segment's name as the orbit scheme writes it ("Eyeball left" -> "eyeball_left")."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def check_labels(case: Case) -> None:
    """Refuse in one line (naming the case) a segmentation that cannot teach an orbit model, before any image is
    resampled: values that are not whole numbers of the orbit scheme (0..16, whatever their sign), or a
    ``.seg.nrrd`` whose segments' names are not the orbit structures of their values (another task's labels)."""
    values, names = read_label_values(case)
    name = Path(case.segmentation or "").name
    scheme = "the orbit scheme"
    present = whole_values(values, case.case_id, name, scheme)
    top = max(ORBIT_LABELS)
    outside = [v for v in present if v < 0 or v > top]
    if outside:
        raise InputError(f"Case {case.case_id}: the segmentation {name} holds label values outside {scheme} "
                         f"({', '.join(map(str, outside[:5]))}; it numbers 1 {ORBIT_LABELS[1].name} to {top} "
                         f"{ORBIT_LABELS[top].name}, 0 background): it is not an orbit segmentation.")
    for value, segment in sorted(names.items()):
        if value == 0 or value not in present:      # an empty segment says nothing
            continue
        want = ORBIT_LABELS.get(value)
        if want is None or _segment_name(segment) != want.name:
            raise InputError(f"Case {case.case_id}: the segment {segment!r} of {name} (label value {value}) is not "
                             f"an orbit structure of {scheme} (value {value} is {want.name if want else 'none'}); "
                             "give an orbit segmentation whose segments are named as the orbit structures "
                             "(eyeball_left, optic_nerve_left, ...): another task's labels cannot teach it.")


def check_prepared(p: Prepared, structures: Sequence[str], patch: Sequence[int], spacing: Sequence[float]) -> None:
    """Refuse in one line a prepared case without any of the model's ``structures`` or whose image is smaller
    than the training ``patch`` (voxels at ``spacing`` mm): neither can teach it."""
    if not np.any(p.classes):
        raise InputError(f"Case {p.case_id}: the segmentation marks none of the model's structures "
                         f"({', '.join(structures)}): an empty label map cannot teach it; give the corrected "
                         "segmentation of a scan that shows the orbits.")
    have = sorted(float(n * s) for n, s in zip(p.image.shape, spacing))
    need = sorted(float(n * s) for n, s in zip(patch, spacing))
    if any(h + 1e-3 < n for h, n in zip(have, need)):
        raise InputError(f"Case {p.case_id}: the image covers {' x '.join(f'{x:.0f}' for x in have)} mm, less than "
                         f"the training patch ({' x '.join(f'{x:.0f}' for x in need)} mm): it cannot show an orbit "
                         "with its surroundings; give the whole scan, not a crop.")


def mean_dice(model: torch.nn.Module, cases: Sequence[Prepared], cfg: SegConfig, device) -> float:
    """The mean over structures of the mean Dice over ``cases`` (whole model-grid volumes)."""
    return float(np.mean(list(validate(model, list(cases), cfg, device).values())))


def finetune(cases: Sequence[Case], out: str | Path | None = None, base: Optional[str | Bundle] = None,
             recipe: Recipe = Recipe(), device: str | torch.device = "cpu", resume: bool = True,
             progress: Optional[ProgressCallback] = None, overwrite: bool = False,
             replay: Optional[SynthPool] = None) -> FinetuneReport:
    """Fine-tune ``base`` (a bundle, or a bundle name or folder; default: the bundled MRI model) on ``cases`` (image
    + segmentation each) and install the result at ``out`` (default: ``<user model folder>/<base>_ft``; never in the
    bundled models' folder). Cases that cannot teach are refused in one line before any training
    (`check_distinct_cases`, `check_labels`, `check_prepared`).

    ``replay`` is the phantom pool to mix in (built from the recipe when None; a benchmark shares one)."""
    t0 = time.perf_counter()
    if not cases:
        raise InputError("Fine-tuning needs at least one case with its corrected segmentation.")
    missing = [c.case_id for c in cases if c.segmentation is None]
    if missing:
        raise InputError(f"Case(s) {', '.join(missing[:5])} have no segmentation: fine-tuning learns from corrected "
                         "segmentations; give one per case (the manifest's 'segmentation' column).")
    bundle = base if isinstance(base, Bundle) else SEG_MODELS.find(base or "MR")   # the folder given, never
    spec = SegSpec.from_metadata(bundle.metadata)                                     # a namesake on the path
    bundle.load_state_dict()     # corrupt or non-finite (NaN, inf) weights: refused now, before any work
    cfg = _config(spec, bundle, recipe)
    out = Path(out) if out else user_model_folder() / f"{bundle.name}_ft"
    refuse_package_folder(out)
    work = work_folder(out)
    check_distinct_cases(cases)
    for c in cases:
        check_labels(c)
    plan = recipe.plan(len(cases))
    progress = progress or (lambda d, t, m: emit(d, t, m))
    device = torch.device(device)
    progress(0, plan.total_steps(), f"preparing {len(cases)} case(s)")
    data = prepare(list(cases), cfg)
    patch = tuple(min(a, b) for a, b in zip(recipe.patch, spec.patch_dhw))
    for p in data:
        check_prepared(p, spec.structures, patch, spec.spacing)
    if replay is None and recipe.replay_share > 0:
        # the heads kept between fine-tunings (`orbitai.training.checkpoint.cache_folder`): a second one starts at once
        replay = SynthPool.build(spec, PoolRecipe(anatomies=recipe.replay_anatomies, seed=recipe.seed + 7700,
                                                  templates=(0,), fov_edge=0.2),
                                 how=Building(cache_folder("synth-heads"),
                                              progress=lambda d, t, m: progress(0, plan.total_steps(), m)))
    ctx = RunContext(work, _fingerprint(cases, bundle, recipe), resume, ticker(plan, progress), device)

    def run(tag: str, tr: Sequence[int], va: Sequence[int], steps: int, eval_steps: Sequence[int]) -> list[float]:
        return _train_run(tag, [data[i] for i in tr], [data[i] for i in va], steps, eval_steps, cfg, recipe,
                          bundle, replay, ctx)[1]

    training = (f"{recipe.replay_share:.0%} of the patches from {recipe.replay_anatomies} deformed atlas heads of "
                "random contrast" if recipe.replay_share > 0 else "")
    return finetune_and_install(
        plan, ctx, run,
        lambda steps: _train_run("final", list(data), [], steps, [], cfg, recipe, bundle, replay, ctx)[0],
        Install(bundle, out, tuple(c.case_id for c in cases), recipe, training, MEASURE, "dice", overwrite),
        progress, t0)


def _train_run(tag: str, tr: list[Prepared], va: list[Prepared], steps: int, eval_steps: Sequence[int],
               cfg: SegConfig, recipe: Recipe, bundle: Bundle, replay: Optional[SynthPool],
               ctx: RunContext) -> tuple[torch.nn.Module, list[float]]:
    """One run from the base's weights: ``steps`` steps on ``tr``, the mean Dice of ``va`` at ``eval_steps``;
    a checkpoint every ``recipe.eval_every`` steps (a rerun of the same tag and fingerprint goes on from it)."""
    device = ctx.device
    model = bundle.load_model(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    patch = tuple(min(a, b) for a, b in zip(recipe.patch, cfg.spec.patch_dhw))

    def step_loss(step: int) -> torch.Tensor:
        torch.manual_seed(recipe.seed * 100003 + step)
        xs, ys = [], []
        for b in range(recipe.batch_size):
            rng = np.random.default_rng([recipe.seed, sum(map(ord, tag)), step, b])
            if replay is not None and (not tr or rng.random() < recipe.replay_share):
                img, lab = replay.sample(rng, patch, recipe.fg_prob)
            else:
                img, lab = sample_structure_patch(tr[rng.integers(len(tr))], patch, rng, recipe.fg_prob)
                img, lab = augment_strong(img, lab, rng, cfg)
            xs.append(img)
            ys.append(lab)
        x = torch.from_numpy(np.stack(xs))[:, None].to(device)
        y = torch.from_numpy(np.stack(ys)).to(device)
        return loss_fn(model(x), y, cfg.spec.n_classes + 1, "ce_dice")

    score = (lambda m: mean_dice(m, va, cfg, device)) if va else None
    curve = train_steps(tag, model, opt, steps, eval_steps, recipe.eval_every, step_loss, score, ctx)
    return model, curve


#: What the held-out score of an orbit fine-tuning is.
MEASURE = "mean Dice"
with_settings = plan_runner.with_settings
FINETUNE_SUMMARY = plan_runner.FINETUNE_SUMMARY
write_summary = plan_runner.write_summary


def out_folder(base: str, name: Optional[str] = None, out: Optional[str | Path] = None) -> Path:
    """Where the fine-tuned bundle goes (`orbitai.training.finetune.out_folder`; never a bundled model's name)."""
    return plan_runner.out_folder(base, name, out, SEG_MODELS.bundled)
