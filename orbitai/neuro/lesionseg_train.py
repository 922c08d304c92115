"""Train the white-matter lesion network on brain FLAIR phantoms (seeded, resumable).

    orbitai neuro train-lesions --out orbitai/resources/models/neuro_lesion_unet_demo \\
        --work /tmp/lesionseg --ms-seeds 16000:16024 --nmosd-seeds 16100:16124 --iterations 1300 --seed 16

1. Phantoms (`orbitai.phantoms.brain.brain_flair_case`, noise-free so that the brain mask is
   ``image > 0``; noise is added by the augmentation) are generated once into ``WORK/data`` as
   checksummed ``.npz`` caches: intensity divided by the brain median, cropped to the brain box.
   They are all built on the MNI FLAIR of Lesjak et al. patient 26 with its lesions inpainted; the
   real lesion mask is never a training target.
2. Each step draws axial 1 mm slices with ``CONTEXT`` neighbours (2/3 centred on a lesion voxel;
   ``--lesion-sampling lesion`` draws every lesion equally likely instead, so small faint ones are
   seen as often as large ones: not yet trained to the end) and degrades them: lesion contrast
   scaled by [--contrast-min, 1] (blend with the inpainted background), simulated 2.5-5.5 mm slices (slab average = partial volume, resampled back to
   1 mm by linear interpolation, random phase), gamma (contrast), a linear bias field, Rician
   noise, in-plane rotation/scale/flips, jitter of the normalisation scale.
3. MONAI Dice + cross-entropy loss, Adam with cosine decay; a checksummed checkpoint
   (`orbitai.training.checkpoint`) every ``--checkpoint-every`` steps, so a rerun resumes where it stopped
   and reproduces the same weights (per-step generators are seeded by ``seed`` and the step).
"""
from __future__ import annotations

import argparse
import logging
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from monai.losses import DiceCELoss
from scipy import ndimage as ndi

import orbitai.phantoms.lesion_maps as lesion_maps
from orbitai.bundle import load_bundle, save_bundle, write_bundle
from orbitai.bundle.core import WEIGHTS
from orbitai.bundle.models import find_task_bundle
from orbitai.training.checkpoint import resume, save_checkpoint
from orbitai.training.finite import FiniteSteps
from orbitai.training.prefetch import batches_ahead
from orbitai.training.speed import StepSpeed
from orbitai.device import describe as describe_device, select_device
from orbitai.errors import UserError
from orbitai.models import build_model, count_parameters
from orbitai.neuro.lesion_cases import REAL, Case, prepare_data
from orbitai.neuro.seg_configs import ARCHITECTURE, CONTEXT, Z_CEIL, Z_FLOOR, normalise
from orbitai.preprocess.resolution import thick_slices
from orbitai.result import check_outputs

log = logging.getLogger(__name__)

BUNDLE_NAME = "neuro_lesion_unet_demo"
BUNDLE_TASK = "lesion_segmentation"
PATCH = 96
HALO = 8          # slices of the slab kept around the centre slice (thick-slice simulation)
DEFAULT_ARGS: dict[str, Any] = {"channels": [24, 48, 96, 192], "num_res_units": 1}
#: Share of a step's CPU work that making its batch takes (16 samples 0.136 s on one core, the network's step 0.16
#: core-s in bfloat16; `benchmarks/results/training_speed.json`): how the cores are split (`split_cores`).
SYNTHESIS_SHARE = 0.46


@dataclass(frozen=True)
class LesionTrainRecipe:
    """What the lesion network trains on and how (``orbitai neuro train-lesions``'s options; the defaults are the
    bundled model's recipe): the phantoms' seeds, the schedule, the sampling and augmentation, the start."""

    ms_seeds: Sequence[int] = ()
    nmosd_seeds: Sequence[int] = ()
    #: Phantoms with real lesion maps on real training brains (`orbitai.phantoms.lesion_maps`) besides the drawn ones.
    real_seeds: Sequence[int] = ()
    iterations: int = 1300
    batch: int = 16
    lr: float = 2e-3
    seed: int = 16
    checkpoint_every: int = 100
    arch_args: Optional[dict[str, Any]] = None      # the network's arguments (None: DEFAULT_ARGS)
    per_lesion: float = 0.0     # lesion-centred draws that pick each lesion equally likely (`sample`)
    contrast_min: float = 0.5   # the lesion-contrast augmentation's lowest scale (`sample`)
    #: A lesion bundle (name or folder) whose checksum-verified weights start the training (fine-tuning; its
    #: architecture arguments are used) instead of a random initialisation.
    init: Optional[str | Path] = None
    confluent: float = 0.0      # `orbitai.phantoms.brain.brain_flair_case`'s confluent lesions
    heavy: float = 0.0          # ... and heavy confluent load
    #: Weight of the lesion-wise term (:func:`blob_dice_loss`) added to the Dice + cross-entropy loss (0: none).
    blob: float = 0.0
    #: Thickest simulated slice (mm) of the thick-slice augmentation (drawn from 2.5 mm up to it).
    thick_max: float = 5.5
    #: Share of the patches not centred on a lesion that are centred on a bright voxel that is no lesion.
    hard_negative: float = 0.0
    #: Real-map phantoms with a normal FLAIR's regional brightness (brighter grey matter in places, the hippocampus,
    #: amygdala and hypothalamus brighter than their tissue: `orbitai.phantoms.lesion_maps.render_case`).
    regional: bool = False
    #: Minutes of stepping in this run, after which the bundle is written from the weights reached (None: no limit;
    #: the metadata records the steps run of those planned, and a rerun with a larger limit goes on from the checkpoint).
    time_limit_min: Optional[float] = None
    #: How the steps use the CPU (`orbitai.training.speed`: ``auto``, ``bf16`` or ``plain``; None: its environment).
    speed: Optional[str] = None
    #: Where the network steps (``cpu``, ``cuda``, ``cuda:N``, ``auto``: `orbitai.device.select_device`); the batches
    #: are always made on the CPU.
    device: str = "cpu"


def parse_seeds(text: str) -> list[int]:
    """``"a:b"`` (half-open range) or ``"1,2,3"``."""
    if ":" in text:
        a, b = text.split(":")
        return list(range(int(a), int(b)))
    return [int(s) for s in text.split(",") if s.strip()]


def _box(a: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``a[start:start + size]`` as float32, indices outside ``a`` clamped to its edge (a slice and an edge pad:
    the same values as indexing with clipped ranges, at a fraction of the cost)."""
    lo = [min(max(s, 0), n - 1) for s, n in zip(start, a.shape)]
    hi = [min(max(s + m, lo_ + 1), n) for s, m, n, lo_ in zip(start, size, a.shape, lo)]
    sub = a[tuple(slice(x, y) for x, y in zip(lo, hi))].astype(np.float32)
    pads = [(x - s, s + m - y) for s, m, x, y in zip(start, size, lo, hi)]
    return np.pad(sub, pads, mode="edge") if any(p != (0, 0) for p in pads) else sub


def sample(case: Case, rng: np.random.Generator, p_lesion: float = 0.67, augment: bool = True,
           per_lesion: float = 0.0, contrast_min: float = 0.5, thick_max: float = 5.5,
           hard_negative: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One training example: (len(CONTEXT), PATCH, PATCH) normalised slices and the (PATCH, PATCH) lesions, each
    8-connected lesion of the slice numbered 1..k (0: no lesion; ``> 0`` is the binary label).

    ``per_lesion``: probability that a lesion-centred patch draws its lesion uniformly (else a lesion
    voxel uniformly); 0 and 1 draw no extra number, as the boolean option of earlier bundles did."""
    use_lesion = len(case.lesion_idx) and rng.random() < p_lesion
    if use_lesion and (per_lesion >= 1 or (0 < per_lesion and rng.random() < per_lesion)):
        # every lesion equally likely (small ones as often as large), then a voxel of it
        k = rng.integers(len(case.lesion_bounds) - 1)
        c = case.lesion_idx[rng.integers(case.lesion_bounds[k], case.lesion_bounds[k + 1])]
    else:
        pool = case.lesion_idx if use_lesion else case.brain_idx
        if not use_lesion and hard_negative and len(case.bright_idx) and rng.random() < hard_negative:
            pool = case.bright_idx      # a patch centred on a bright voxel that is no lesion
        c = pool[rng.integers(len(pool))]
    big = int(PATCH * 1.5)
    box = (int(c[0]) - HALO, int(c[1]) - big // 2, int(c[2]) - big // 2), (2 * HALO + 1, big, big)
    slab = _box(case.ratio, *box)
    if augment and contrast_min < 1 and rng.random() < 0.8:
        # lesion contrast: real lesions are often fainter than the phantoms' (blend with the background)
        bg = _box(case.background, *box)
        slab = bg + np.float32(rng.uniform(contrast_min, 1.0)) * (slab - bg)
    lab = _box(case.label[int(c[0])], box[0][1:], box[1][1:])
    brain = slab > 0
    mad = case.mad
    rows = [HALO + o for o in CONTEXT]
    if augment and rng.random() < 0.6:
        slab = thick_slices(slab, rng, rng.uniform(2.5, thick_max))
    # what follows acts voxel by voxel or slice by slice: only the network's slices are computed (issue 77: a third
    # of the work of the whole slab, the same augmentation)
    slab, brain = slab[rows], brain[rows]
    if augment:
        gamma = rng.uniform(0.7, 1.5)
        slab = np.power(np.maximum(slab, 0), gamma)
        mad *= gamma
        u = np.linspace(-1, 1, big, dtype=np.float32)
        bias = np.exp(rng.normal(0, 0.08) * u[None, :, None] + rng.normal(0, 0.08) * u[None, None, :])
        slab = slab * bias
        if rng.random() < 0.8:
            s = rng.uniform(0.0, 0.06)
            slab = np.sqrt((slab + s * rng.standard_normal(slab.shape, dtype=np.float32)) ** 2
                           + (s * rng.standard_normal(slab.shape, dtype=np.float32)) ** 2)
            mad = math.sqrt(mad ** 2 + (0.6745 * s) ** 2)
        if rng.random() < 0.3:
            slab = ndi.gaussian_filter(slab, (0, rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9)))
        mad *= rng.uniform(0.8, 1.25)
    x = normalise(slab, brain, rng.normal(1.0, 0.03) if augment else 1.0, mad)   # inference's normalisation
    # in-plane affine (rotation, scale), then the centre PATCH x PATCH
    ang = np.radians(rng.uniform(-12, 12)) if augment else 0.0
    sc = rng.uniform(0.9, 1.1) if augment else 1.0
    M = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * sc
    centre_in = np.array([big / 2, big / 2])
    centre_out = np.array([PATCH / 2, PATCH / 2])
    off = centre_in - M @ centre_out
    xo = np.stack([ndi.affine_transform(ch, M, off, (PATCH, PATCH), order=1, mode="nearest") for ch in x])
    yo = ndi.affine_transform(lab, M, off, (PATCH, PATCH), order=0, mode="constant")
    if augment:
        if rng.random() < 0.5:
            xo, yo = xo[:, :, ::-1], yo[:, ::-1]
        if rng.random() < 0.5:
            xo, yo = xo[:, ::-1, :], yo[::-1, :]
    lesions, _ = ndi.label(yo > 0.5, np.ones((3, 3), bool))
    return np.ascontiguousarray(xo, np.float32), np.ascontiguousarray(lesions, np.int64)


def blob_dice_loss(logits: torch.Tensor, lesions: torch.Tensor) -> torch.Tensor:
    """The lesion-wise term of blob loss (Kofler et al. 2023, "blob loss: instance imbalance aware loss functions for
    semantic segmentation"): each lesion's soft Dice with the other lesions masked out, averaged over the lesions of a
    slice, then over the slices that hold one; so a 10 mm3 lesion weighs as much as a 10 mL one, and every false voxel
    lowers every lesion's Dice. ``logits`` [B, 2, H, W], ``lesions`` [B, H, W] or [B, 1, H, W] numbered 1..k
    (:func:`sample`). Written here: MONAI has no instance-wise loss; one ``index_add`` per slice keeps it cheap."""
    p = torch.softmax(logits, 1)[:, 1].flatten(1)
    inst = lesions.reshape(p.shape)
    terms = []
    for b in range(p.shape[0]):
        k = int(inst[b].max())
        if k == 0:
            continue
        summed = torch.zeros(k + 1, dtype=p.dtype, device=p.device).index_add(0, inst[b], p[b])   # 0: the background's sum
        size = torch.bincount(inst[b], minlength=k + 1)[1:].to(p.dtype)
        dice = 2 * summed[1:] / (summed[0] + summed[1:] + size + 1e-5)
        terms.append(1 - dice[size > 0].mean())
    return torch.stack(terms).mean() if terms else p.sum() * 0.0


def train(out_bundle: str | Path, work: str | Path, recipe: LesionTrainRecipe, overwrite: bool = False) -> Path:
    """Train ``recipe`` and write the bundle; returns its folder. Resumes from ``WORK/checkpoint.pt``."""
    ms_seeds, nmosd_seeds, real_seeds = recipe.ms_seeds, recipe.nmosd_seeds, recipe.real_seeds
    iterations, batch_size, lr, seed = recipe.iterations, recipe.batch, recipe.lr, recipe.seed
    per_lesion, contrast_min, confluent, heavy = recipe.per_lesion, recipe.contrast_min, recipe.confluent, recipe.heavy
    blob, thick_max, hard_negative = float(recipe.blob), float(recipe.thick_max), float(recipe.hard_negative)
    checkpoint_every, arch_args, init = recipe.checkpoint_every, recipe.arch_args, recipe.init
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    args = dict(arch_args or DEFAULT_ARGS)
    init_state = None
    init_name = None
    if init is not None:
        ib = find_task_bundle(str(init), "lesion_segmentation", "a white-matter lesion segmentation model")
        args, init_state, init_name = ib.arch_args, ib.load_state_dict(), f"{ib.name} ({ib.metadata['weights_sha256'][:12]})"
    seeds = [(s, "ms") for s in ms_seeds] + [(s, "nmosd") for s in nmosd_seeds] + [(s, REAL) for s in real_seeds]
    cases: list[Case] = []      # prepared before the first step run (none when the checkpoint or the time limit ends it)
    torch.manual_seed(seed)
    device = select_device(recipe.device)
    model = build_model(ARCHITECTURE, **args)
    if init_state is not None:
        model.load_state_dict(init_state, strict=True)
        log.info("initialised from %s", init_name)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(i, iterations) / iterations)))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    ckpt = work / "checkpoint.pt"
    init_model = {k: v.clone() for k, v in model.state_dict().items()}
    init_opt = opt.state_dict()
    history: list[float] = []
    seconds = 0.0

    def apply(state: dict) -> int:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history[:] = list(state["history"])
        nonlocal seconds
        seconds = float(state["seconds"])
        if (int(state["iterations"]) != iterations or list(state["seeds"]) != [s for s, _ in seeds]
                or state.get("init") != init_name or state.get("confluent", 0.0) != confluent
                or state.get("heavy", 0.0) != heavy or list(state.get("real_seeds", [])) != list(real_seeds)
                or state.get("per_lesion", float(per_lesion)) != float(per_lesion)
                or state.get("blob", 0.0) != blob or state.get("thick_max", 5.5) != thick_max
                or state.get("hard_negative", 0.0) != hard_negative
                or bool(state.get("regional", False)) != recipe.regional):
            raise ValueError("checkpoint of a different training (iterations, seeds or initial weights differ)")
        return int(state["step"])

    def reset() -> None:
        model.load_state_dict(init_model)
        opt.load_state_dict(init_opt)

    start = resume(ckpt, apply, reset, map_location=device) or 0
    if start:
        log.info("resumed at step %d", start)
    model.train()
    speed = StepSpeed.auto(device, recipe.speed)
    log.info("stepping on %s (%s)", describe_device(device), speed.describe()["precision"])
    speed.model(model, 2)       # the layout of the steps (in place: the same parameters)
    net = speed.stepping(model)   # what a step calls (compiled when chosen)
    t_run = time.time()
    steps_run = start
    if start < iterations and (recipe.time_limit_min is None or recipe.time_limit_min > 0):
        t_prep = time.time()
        cases = prepare_data(work, seeds, confluent, heavy, regional=recipe.regional)
        log.info("%d phantoms ready in %.0f s", len(cases), time.time() - t_prep)
        t_run += time.time() - t_prep        # the step time and its limit count stepping only

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch of ``step`` (its generator seeded by the seed and the step alone)."""
        rng = np.random.default_rng([seed, step])
        xs, ys = zip(*(sample(cases[rng.integers(len(cases))], rng, per_lesion=per_lesion, contrast_min=contrast_min,
                              thick_max=thick_max, hard_negative=hard_negative) for _ in range(batch_size)))
        return np.stack(xs), np.stack(ys)

    # made ahead by worker processes while the network steps (`orbitai.training.prefetch`): the same batches; the
    # workers end with the block, also on a time limit or an error
    finite = FiniteSteps(model, what="neuro train-lesions")
    with batches_ahead(batch, range(start, iterations) if cases else [], SYNTHESIS_SHARE) as batches:
        for step in range(start, iterations):
            if recipe.time_limit_min is not None and time.time() - t_run > 60 * recipe.time_limit_min:
                log.warning("time limit reached at step %d of %d: the bundle holds the weights reached", step,
                            iterations)
                break
            xb, yb = next(batches)
            x = speed.inputs(torch.from_numpy(xb).to(device, non_blocking=True))
            lesions = torch.from_numpy(yb).to(device, non_blocking=True)
            opt.zero_grad()
            finite.begin()
            with speed.autocast(device):
                logits = net(x)
            logits = logits.float()
            loss = loss_fn(logits, (lesions > 0).long()[:, None])
            if blob:
                loss = loss + blob * blob_dice_loss(logits, lesions)
            loss.backward()
            if finite.step(opt, f"step {step + 1}"):      # a non-finite step is skipped, never applied
                history.append(loss.item())
            sched.step()
            if (step + 1) % 20 == 0:
                log.info("step %d/%d loss %.4f (%.2f s/step)", step + 1, iterations, np.mean(history[-20:]),
                         (time.time() - t_run) / (step + 1 - start))
            if (step + 1) % checkpoint_every == 0 or step + 1 == iterations:
                save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "scheduler": sched.state_dict(), "step": step + 1, "iterations": iterations,
                                 "seeds": [s for s, _ in seeds], "history": history, "init": init_name,
                                 "confluent": confluent, "heavy": heavy, "per_lesion": float(per_lesion),
                                 "real_seeds": list(real_seeds), "blob": blob, "thick_max": thick_max,
                                 "hard_negative": hard_negative, "regional": recipe.regional,
                                 "speed": speed.describe(),
                                 "seconds": seconds + time.time() - t_run}, ckpt)
            steps_run = step + 1
    speed.release(model)     # the bundle's weights in the usual layout
    seconds += time.time() - t_run
    model.eval()
    meta = bundle_metadata(recipe, args, seconds, count_parameters(model), history, init_name)
    meta["training"]["steps_run"] = steps_run
    meta["training"]["steps"] = speed.describe()
    b = save_bundle(model, out_bundle, meta, overwrite)
    log.info("bundle written to %s (%.1f training minutes)", b.path, seconds / 60)
    return b.path


def _span(s: Sequence[int]) -> str:
    return f"{min(s)}-{max(s)}" if s else "none"


def training_data_text(ms_seeds: Sequence[int], nmosd_seeds: Sequence[int], real_seeds: Sequence[int],
                       confluent: float, heavy: float, contrast_min: float, thick_max: float = 5.5,
                       regional: bool = False) -> str:
    """What a lesion bundle was trained on, in words (its metadata's ``training_data``)."""
    parts = []
    if ms_seeds or nmosd_seeds:
        parts.append(
            f"{len(ms_seeds)} MS (seeds {_span(ms_seeds)}) + {len(nmosd_seeds)} NMOSD (seeds {_span(nmosd_seeds)}) "
            "noise-free brain FLAIR phantoms with drawn lesions (orbitai.phantoms.brain.brain_flair_case"
            + (f", confluent={confluent:g}: MS cases with confluent periventricular lesions" if confluent else "")
            + (f", heavy={heavy:g}: MS cases with a heavy confluent load of 12-70 mL and enlarged ventricles"
               if heavy else "")
            + "), all built on the MNI FLAIR of Lesjak et al. (2017) cs_patient26 with its lesions inpainted (the "
              "real case is the same subject's anatomy; its lesion mask was never a target).")
    if real_seeds:
        split = lesion_maps.map_split()
        brains = [b for b in lesion_maps.BRAINS["training"] if b]
        parts.append(
            f"{len(real_seeds)} noise-free phantoms (seeds {_span(real_seeds)}) with the real lesion maps of "
            f"{len(split['training'])} MS patients (Lesjak et al. 2017: patients {list(split['training'])}; one map, "
            "two mixed or a subset, mirrored, affine-jittered) placed in real brains (SynthSeg heads "
            f"{', '.join(map(str, brains))} and cs_patient26's) through a registration to MNI "
            "(orbitai.phantoms.lesion_maps); the validation and test brains (heads 17-20) and maps "
            f"({list(split['validation']) + list(split['test'])}) and patient 26's map are never drawn."
            + (" The SynthSeg brains have a normal FLAIR's regional brightness (grey matter brighter in places; "
               "hippocampus, amygdala and ventral diencephalon brighter than their tissue), never labelled lesion."
               if regional else ""))
    parts.append(f"Brain = image > 0. Augmentation: lesion contrast x[{contrast_min}, 1] (blend with the lesion-free "
                 f"background), simulated 2.5-{thick_max:g} mm slices (partial volume), gamma 0.7-1.5, linear bias, Rician noise, "
                 "in-plane rotation +-12 deg / scale 0.9-1.1 / flips, normalisation-scale jitter.")
    return " ".join(parts)


def bundle_metadata(recipe: LesionTrainRecipe, args: dict[str, Any], seconds: float, parameters: int,
                    history: Sequence[float], init: str | None = None) -> dict[str, Any]:
    """A lesion bundle's metadata: ``recipe`` as trained with the network's ``args`` (``parameters`` weights) in
    ``seconds``, its loss ``history``, and ``init``, the bundle that started it in words (None: random weights)."""
    per_lesion, contrast_min = recipe.per_lesion, recipe.contrast_min
    return {
        "name": BUNDLE_NAME, "version": "0.1.0", "task": BUNDLE_TASK,
        "description": "2.5D MONAI U-Net for white-matter lesions on brain FLAIR, trained on brain phantoms "
                       "(demo, not for clinical use).",
        "architecture": {"name": ARCHITECTURE, "args": args},
        "parameters": parameters,
        "input": {"spacing": [1.0, 1.0, 1.0], "patch_dhw": [len(CONTEXT), 192, 192],
                  "structures": ["white_matter_lesion"],
                  "intensity": {"mode": "zscore", "center": "brain median", "scale": "1.4826 * brain MAD",
                                "clip": [Z_FLOOR, Z_CEIL], "outside_brain": Z_FLOOR},
                  "modality": "MR", "sequence": "FLAIR", "context_slices": list(CONTEXT),
                  "grid": "1 mm, axis-aligned to the patient (LAS), cropped to the brain box"},
        "labels": {"1": "white_matter_lesion"},
        "training_data": training_data_text(recipe.ms_seeds, recipe.nmosd_seeds, recipe.real_seeds, recipe.confluent,
                                            recipe.heavy, contrast_min, recipe.thick_max, recipe.regional),
        "training": {"command": "orbitai neuro train-lesions", "iterations": recipe.iterations,
                     "batch_size": recipe.batch, "patch": [len(CONTEXT), PATCH, PATCH], "lr": recipe.lr,
                     "optimizer": "Adam (weight decay 1e-5), 100-step warm-up, cosine decay",
                     "loss": "MONAI DiceCELoss (batch Dice + cross-entropy)" + (
                         f" + {recipe.blob:g} x blob loss's lesion-wise Dice term (Kofler et al. 2023)"
                         if recipe.blob else ""), "seed": recipe.seed,
                     "lesion_centred_fraction": 0.67,
                     "lesion_sampling": {0.0: "each lesion voxel equally likely", 1.0: "each lesion equally likely"}.get(
                         float(per_lesion), f"each lesion equally likely in {per_lesion:.0%} of lesion patches, "
                                            "else each lesion voxel"),
                     "lesion_contrast_min": contrast_min, "minutes": round(seconds / 60, 2),
                     "hard_negative_share": recipe.hard_negative, "thick_slices_mm": [2.5, recipe.thick_max],
                     "regional_brightness": recipe.regional,
                     "initial_weights": init or "random (MONAI default initialisation)",
                     "final_loss": round(float(np.mean(history[-50:])), 4) if history else None},
        "metrics": {},
        "intended_use": "Research demo of the NeuroDifferential pipeline; not for clinical use.",
    }


def record_metrics(bundle_path: str | Path, metrics: dict[str, Any]) -> None:
    """Rewrite the bundle's metadata with measured ``metrics`` (weights untouched, checksum kept)."""
    record_metadata(bundle_path, {"metrics": metrics})


def record_metadata(bundle_path: str | Path, updates: dict[str, Any]) -> None:
    """Rewrite the bundle's metadata with these top-level keys replaced (weights untouched, checksum kept)."""
    b = load_bundle(bundle_path)
    b.verify()
    meta = {**b.metadata, **updates}

    def copy(tmp: Path) -> dict[str, Any]:
        shutil.copy2(b.path / WEIGHTS, tmp / WEIGHTS)
        return {}

    write_bundle(b.path, meta, copy)


def run(a: argparse.Namespace) -> int:
    """Train with the options ``orbitai neuro train-lesions`` parsed (`orbitai.neuro.cli`); every option and the
    output folder are checked before any work."""
    for name, ok, rule in (("--iterations", a.iterations >= 1, "at least 1"), ("--batch", a.batch >= 1, "at least 1"),
                           ("--lr", 0 < a.lr < 1, "between 0 and 1"),
                           ("--contrast-min", 0 <= a.contrast_min <= 1, "from 0 to 1"),
                           ("--confluent", 0 <= a.confluent <= 1, "from 0 to 1"),
                           ("--heavy", 0 <= a.heavy <= 1, "from 0 to 1"), ("--threads", a.threads >= 0, ">= 0"),
                           ("--blob", 0 <= a.blob <= 10, "from 0 to 10"),
                           ("--thick-max", 2.5 <= a.thick_max <= 8.0, "from 2.5 to 8 (mm)"),
                           ("--hard-negative", 0 <= a.hard_negative <= 1, "from 0 to 1")):
        if not ok:
            raise UserError(f"{name} must be {rule}.")
    real = str(getattr(a, "real_seeds", "") or "")
    try:
        seeds = parse_seeds(a.ms_seeds), parse_seeds(a.nmosd_seeds), parse_seeds(real)
    except ValueError:
        seeds = [], [], []
    if not seeds[2] and (not seeds[0] or not seeds[1]) or (real and not seeds[2]):
        raise UserError(f"--ms-seeds {a.ms_seeds!r} / --nmosd-seeds {a.nmosd_seeds!r} / --real-seeds {real!r}: give "
                        "each as START:STOP (a "
                        "non-empty range of integers, e.g. 16000:16024) or a comma-separated list.")
    check_outputs(a.out, [a.work], bundle=BUNDLE_TASK, overwrite=a.overwrite)

    if a.threads:
        torch.set_num_threads(a.threads)
    Path(a.work).mkdir(parents=True, exist_ok=True)
    # progress to the terminal and WORK/train.log whatever the CLI's log level (its basicConfig came first)
    fmt = logging.Formatter("%(asctime)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(), logging.FileHandler(Path(a.work) / "train.log")]
    level, propagate = log.level, log.propagate
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        recipe = LesionTrainRecipe(
            tuple(seeds[0]), tuple(seeds[1]), tuple(seeds[2]), a.iterations, a.batch, a.lr, a.seed,
            per_lesion={"voxel": 0.0, "lesion": 1.0, "mixed": 0.5}[a.lesion_sampling], contrast_min=a.contrast_min,
            init=a.init, confluent=a.confluent, heavy=a.heavy, blob=a.blob, thick_max=a.thick_max,
            hard_negative=a.hard_negative, regional=a.regional, time_limit_min=a.time_limit, speed=a.speed,
            device=getattr(a, "device", "cpu"))
        train(a.out, a.work, recipe, overwrite=a.overwrite)
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()
        log.setLevel(level)
        log.propagate = propagate
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orbitai.neuro.lesionseg_train ...`` (the form the bundled model's metadata records): runs
    ``orbitai neuro train-lesions ...`` as its own process (the command line sits above this file)."""
    return subprocess.call([sys.executable, "-m", "orbitai", "neuro", "train-lesions",
                            *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
