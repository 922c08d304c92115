"""Annotation tools: quality bars on orbit phantoms and latency on a 256x256x64 working region.

Quality (simulated annotator, deterministic; see orbitai.annotate.simulate):
* SmartFill with at most 3 strokes, empty start (`interactive_fill`: 2 object strokes, a look at the
  preview, a correction stroke on its largest error; undone for a third object stroke if it made
  the preview worse): Dice for each eyeball and each rectus muscle.
* SmartPencil, <= 10 clicks at the largest error, resolution 1000: Dice for each rectus muscle.
* AutoCorrection: Dice gain on truth dilated by one voxel with three holes, and loss on the truth,
  for eyeball, optic nerve and recti.
Model prior (issue #18): the same SmartFill sessions with the segmentation network's probability of
the structure (`orbitai.orbit.prior`, the bundled CT model, computed on each orbit's box), and
Slicer's own Grow from seeds (`orbitai.mrml.growcut`) on the simulated annotator's strokes plus the
background ring a Slicer user paints, on the phantom above and two more seeds (1, 2) the model never
saw (it was trained on the cohort of seed 1000).
Ready before the first click (issue 67; ``--ready`` -> results/annotation_ready.json): SmartPencil's median region at
the default superpixel size (mm) on real-like 1 mm heads, and a scan prepared on load then its first click and
preview (`ready_main`).
Latency (2 threads): SLIC precompute, a click served from the cache, a SmartFill preview and an
AutoCorrection, each with the naive full-volume computation measured in the same run; the prior's
precompute on the 64x256x256 working region.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import SimpleITK as sitk

from benchmarks.common import write_result
from orbitai import annotate as A
from orbitai.labels import ORBIT_LABELS

RECTI = {"left": (5, 7, 9, 11), "right": (6, 8, 10, 12)}
EYE = {"left": 1, "right": 2}
ON = {"left": 3, "right": 4}


def _crop(image, labels, box):
    from orbitai.io import Volume

    org = image.index_to_physical([b.start for b in box[::-1]])
    return (Volume(np.ascontiguousarray(image.array[box]), image.spacing, tuple(org), image.direction),
            Volume(np.ascontiguousarray(labels.array[box]), labels.spacing, tuple(org), labels.direction))


def phantom_cases(seed=0):
    """(full 64-slice working region, {side: per-orbit box}) of the axial CT phantom."""
    from orbitai.phantoms import orbit_case

    case = orbit_case(seed, modality="ct", orientation="axial")
    image, labels = case.image, case.labels
    lab = labels.array
    zc = int(np.argwhere(lab > 0)[:, 0].mean())
    z0 = max(0, min(lab.shape[0] - 64, zc - 32))
    full = _crop(image, labels, (slice(z0, z0 + 64), slice(0, 256), slice(0, 256)))
    sides = {}
    for side in ("left", "right"):
        vals = [v for v in ORBIT_LABELS if (v % 2 == 1) == (side == "left")]
        box = A._common.bbox(np.isin(lab, vals), np.ceil(6.0 / np.asarray(image.spacing[::-1])).astype(int))
        sides[side] = _crop(image, labels, box)
    return full, sides, "orbitai.phantoms.orbit_case(seed=0, modality='ct', orientation='axial')"


def quality(cases, notes):
    per = {"smartfill": {}, "smartfill_nearest_stroke_bound": {}, "smartpencil": {}, "autocorrect_gain": {},
           "autocorrect_loss": {}}
    for side in ("left", "right"):
        image, labels = cases[side]
        a, sp, lab = image.array.astype(np.float32), image.spacing, labels.array
        for v in (EYE[side],) + RECTI[side]:
            truth = lab == v
            tried = []

            def fill(f, b, tried=tried, a=a, sp=sp):
                tried.append((f, b))
                return A.smartfill(a, sp, f, b).mask

            mask, _, _ = A.interactive_fill(fill, truth, sp, 3)
            per["smartfill"][ORBIT_LABELS[v].name] = A.dice(mask, truth)
            if v in RECTI[side]:
                per["smartfill_nearest_stroke_bound"][ORBIT_LABELS[v].name] = nearest_stroke_bound(a, lab, v, sp, tried)
        cache = A.SuperpixelCache()
        for v in RECTI[side]:
            truth = lab == v
            seg = np.zeros(truth.shape, bool)
            for _ in range(10):
                nc = A.next_click(seg, truth, sp)
                if nc is None:
                    break
                seg = A.smartpencil_click(a, sp, seg, nc[0], remove=nc[1], settings=A.SuperpixelSettings(1000), cache=cache).mask
            per["smartpencil"][ORBIT_LABELS[v].name] = A.dice(seg, truth)
        gain, loss = autocorrect_figures(a, sp, lab, side)
        per["autocorrect_gain"].update(gain)
        per["autocorrect_loss"].update(loss)
    notes["per_structure"] = {k: {n: round(x, 4) for n, x in d.items()} for k, d in per.items()}
    sf = per["smartfill"]
    return {
        "smartfill_dice_eyeball": min(sf["eyeball_left"], sf["eyeball_right"]),
        "smartfill_dice_rectus_min": min(x for n, x in sf.items() if "rectus" in n),
        "smartfill_nearest_stroke_bound_rectus_min": min(per["smartfill_nearest_stroke_bound"].values()),
        "smartpencil_dice_rectus": max(per["smartpencil"].values()),
        "smartpencil_dice_rectus_min": min(per["smartpencil"].values()),
        "autocorrect_dice_gain": min(per["autocorrect_gain"].values()),
        "autocorrect_dice_loss_on_truth": max(per["autocorrect_loss"].values()),
    }


def prior_comparison(seeds=(0, 1, 2)) -> tuple[dict, dict]:
    """SmartFill without and with the model prior and Grow from seeds, per structure and seed: the
    same simulated annotator (<= 3 strokes, `interactive_fill`) for each tool. Returns (metrics, notes)."""
    from orbitai.orbit.prior import compute_prior
    from orbitai.mrml.growcut import grow_from_seeds
    from orbitai.testing.growcut import user_background_seeds

    per: dict[str, dict[str, float]] = {"smartfill": {}, "smartfill_prior": {}, "growcut": {}}
    precompute = {}
    for seed in seeds:
        _, sides, _ = phantom_cases(seed=seed)
        for side in ("left", "right"):
            image, labels = sides[side]
            a, sp, lab = image.array.astype(np.float32), image.spacing, labels.array
            t0 = time.perf_counter()
            prior = compute_prior(image)
            precompute[f"seed{seed}_{side}"] = round(time.perf_counter() - t0, 2)
            for v in (EYE[side],) + RECTI[side]:
                truth, name = lab == v, ORBIT_LABELS[v].name
                p = prior.probability(name, image)

                def grow(f, b, truth=truth, a=a, sp=sp):
                    ring = user_background_seeds(truth, sp, f) & ~f
                    return grow_from_seeds(a, sp, f, ring if b is None else (ring | b) & ~f)

                tools = {"smartfill": lambda f, b, a=a, sp=sp: A.smartfill(a, sp, f, b).mask,
                         "smartfill_prior": lambda f, b, a=a, sp=sp, p=p: A.smartfill(a, sp, f, b, prior=p).mask,
                         "growcut": grow}
                for tool, fill in tools.items():
                    mask, _, _ = A.interactive_fill(fill, truth, sp, 3)
                    per[tool][f"seed{seed}_{name}"] = round(A.dice(mask, truth), 4)
    sf, sp_, gc = per["smartfill"], per["smartfill_prior"], per["growcut"]
    metrics = {
        "smartfill_prior_dice_superior_rectus_min": min(x for n, x in sp_.items() if "superior_rectus" in n),
        "smartfill_prior_dice_other_min": min(x for n, x in sp_.items() if "superior_rectus" not in n),
        "smartfill_prior_minus_noprior_min": min(sp_[n] - sf[n] for n in sp_),
        "smartfill_prior_minus_growcut_min": min(sp_[n] - gc[n] for n in sp_),
        "smartfill_noprior_dice_min_3seeds": min(sf.values()),
        "growcut_dice_min": min(gc.values()),
    }
    notes = {"prior_comparison": per, "prior_precompute_s_per_orbit_box": precompute,
             "prior_comparison_setup": (f"seeds {list(seeds)}, both orbits' boxes, eyeball and four recti; SmartFill with "
                                        "prior: the network's probability of the structure (bundled CT demo model) with "
                                        "SmartFill's default prior weight; Grow from seeds: slicer-core's "
                                        "vtkImageGrowCutSegment on the same annotator's object and background strokes "
                                        "plus a background ring 4 mm outside the structure on the stroke slices")}
    return metrics, notes


def nearest_stroke_bound(a, lab, v, sp, tried) -> float:
    """Best Dice any tool could reach from the strokes the simulated annotator tried for structure
    ``v`` if it knew the truth region of ``v`` and of the labelled structures of ``v``'s intensity
    touching it (over 5 % of its surface, median within one SD: for the superior rectus, the
    levator) and split that region between object and background strokes by the nearest stroke
    (no background stroke: the whole region). A bound for tools that separate same-intensity
    structures by where the strokes are, not for tools that bring shape knowledge."""
    from scipy import ndimage as ndi

    from orbitai.annotate._common import spacing_kji

    truth = lab == v
    shell = ndi.binary_dilation(truth) & ~truth
    vals, counts = np.unique(lab[shell], return_counts=True)
    mid, sd = float(np.median(a[truth])), float(a[truth].std())
    region = truth | np.isin(lab, [u for u, c in zip(vals, counts) if u not in (0, v) and c >= 0.05 * shell.sum()
                                   and abs(float(np.median(a[lab == u])) - mid) < sd])
    sk = spacing_kji(sp)
    best = 0.0
    for f, b in tried:
        split = region if b is None else region & (ndi.distance_transform_edt(~f, sampling=sk)
                                                   < ndi.distance_transform_edt(~b, sampling=sk))
        best = max(best, A.dice(split, truth))
    return best


def autocorrect_figures(a, sp, lab, side):
    """AutoCorrection on one orbit: ({structure: Dice gain on the truth dilated by one voxel with
    holes}, {structure: Dice loss on the truth itself}) for eyeball, optic nerve and recti."""
    gain, loss = {}, {}
    for v in (EYE[side], ON[side]) + RECTI[side]:
        truth = lab == v
        bad = A.rough_mask(truth)
        gain[ORBIT_LABELS[v].name] = A.dice(A.autocorrect(a, sp, bad).mask, truth) - A.dice(bad, truth)
        loss[ORBIT_LABELS[v].name] = 1.0 - A.dice(A.autocorrect(a, sp, truth).mask, truth)
    return gain, loss


def autocorrect_other_phantoms(notes, seeds=(1, 2)):
    """AutoCorrection's two figures on further phantoms (other spacing, noise and anatomy draws):
    robustness notes beside the headline phantom (seed 0)."""
    out = {}
    for seed in seeds:
        _, sides, _ = phantom_cases(seed=seed)
        gain, loss = [], []
        for side in ("left", "right"):
            image, labels = sides[side]
            g, lo = autocorrect_figures(image.array.astype(np.float32), image.spacing, labels.array, side)
            gain += g.values()
            loss += lo.values()
        out[f"seed_{seed}"] = {"spacing_xyz_mm": [round(float(v), 3) for v in sides["left"][0].spacing],
                               "autocorrect_dice_gain": round(min(gain), 4),
                               "autocorrect_dice_loss_on_truth": round(max(loss), 4)}
    notes["autocorrect_other_phantoms"] = out


def latency(full, notes, naive: bool = True):
    image, labels = full                                              # 64 x 256 x 256 (k, j, i)
    a, sp, lab = image.array.astype(np.float32), image.spacing, labels.array
    notes["latency_region_kji"] = list(a.shape)
    m = {}
    # SmartPencil: precompute once (cache miss), then clicks from the cache
    cache = A.SuperpixelCache()
    truth = lab == 7
    pts = np.argwhere(truth)[:: max(1, int(truth.sum()) // 10)][:10]
    t0 = time.perf_counter()
    A.superpixel_map(a, sp, A.SuperpixelSettings(1000), cache=cache)
    m["superpixel_precompute_s"] = time.perf_counter() - t0
    seg = np.zeros(a.shape, bool)
    times = []
    for p in pts:
        t0 = time.perf_counter()
        seg = A.smartpencil_click(a, sp, seg, tuple(p), settings=A.SuperpixelSettings(1000), cache=cache).mask
        times.append(time.perf_counter() - t0)
    m["smartpencil_click_ms"] = 1000 * statistics.median(times)
    # naive: no cache, the superpixels are recomputed for every click
    t0 = time.perf_counter()
    A.smartpencil_click(a, sp, seg, tuple(pts[0]), settings=A.SuperpixelSettings(1000), cache=A.SuperpixelCache())
    m["smartpencil_vs_recompute_speedup"] = (time.perf_counter() - t0) / (m["smartpencil_click_ms"] / 1000)
    # SmartFill preview (eyeball, 3 strokes)
    eye = lab == 1
    fg = np.any(A.simulate_strokes(eye, sp, 3), axis=0)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = A.smartfill(a, sp, fg)
        runs.append(time.perf_counter() - t0)
    m["smartfill_preview_s"] = statistics.median(runs)
    m["smartfill_dice_eyeball_full_image"] = A.dice(r.mask, eye)
    # AutoCorrection of a dilated, holey eyeball
    bad = A.rough_mask(eye)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        ac = A.autocorrect(a, sp, bad)
        runs.append(time.perf_counter() - t0)
    m["autocorrect_s"] = statistics.median(runs)
    # the model prior: the network once over the working region, then SmartFill previews with it
    from orbitai.orbit.prior import compute_prior

    t0 = time.perf_counter()
    prior = compute_prior(image)
    m["prior_precompute_s"] = time.perf_counter() - t0
    p = prior.probability("eyeball_left", image)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        rp = A.smartfill(a, sp, fg, prior=p)
        runs.append(time.perf_counter() - t0)
    m["smartfill_prior_preview_s"] = statistics.median(runs)
    m["smartfill_prior_dice_eyeball_full_image"] = A.dice(rp.mask, eye)
    if naive:
        t0 = time.perf_counter()
        full = A.smartfill_full(a, sp, fg)
        m["smartfill_fullvolume_s"] = time.perf_counter() - t0
        m["smartfill_vs_fullvolume_speedup"] = m["smartfill_fullvolume_s"] / m["smartfill_preview_s"]
        m["smartfill_fullvolume_dice_eyeball"] = A.dice(full, eye)
        t0 = time.perf_counter()
        acf = A.autocorrect(a, sp, bad, A.CorrectionParameters(full_volume=True))
        m["autocorrect_fullvolume_s"] = time.perf_counter() - t0
        m["autocorrect_vs_fullvolume_speedup"] = m["autocorrect_fullvolume_s"] / m["autocorrect_s"]
        m["autocorrect_band_vs_fullvolume_dice"] = A.dice(ac.mask, acf.mask)
    return m


# --------------------------------------------------------------------------- issue 67: ready before the first click
#: Real-like 1 mm heads: SynthSeg's real label maps (../shared/data/synthseg_label_maps, held-out heads) rendered at
#: 1 mm, and one real 1 mm FLAIR (../shared/data/ms_flair_lesjak, brain-extracted: no orbits).
READY_HEADS = ((17, "T1"), (18, "T2"), (19, "CT"), (20, "FLAIR"))
#: Heads the prepare-on-load flow runs on (orbits in view): (template, contrast, orbits). ``orbits`` True: the head
#: rendered with real orbit contents (`orbitai.phantoms.orbit.whole_head_case`: the atlas's recti, nerves, orbital
#: fat, sclera and lens carried into the head's orbits); False: the SynthSeg labels alone, whose orbit is one
#: soft-tissue label. On CT that is +50 HU around the globe where a real orbit holds fat at -100 HU, and the CT model
#: finds no eyeball in it: that row is kept to show the no-orbit path's time, outside the bars' maxima.
READY_FLOW = ((17, "T1", False), (19, "CT", True), (19, "CT", False))


def head_1mm(template: int, contrast: str, seed: int = 0):
    """(image, label map) of SynthSeg head ``template`` rendered at 1 mm in ``contrast`` (the tissue means of
    `orbitai.phantoms.heads`, a few per cent of noise, 0.6 mm of blur): a real anatomy at a clinic's 1 mm."""
    from scipy import ndimage as ndi

    from orbitai.phantoms.heads import MEANS, TISSUES, head_labels, tissue_map

    labels = head_labels(template, step=1)
    tissue = tissue_map(labels.array)
    means = MEANS[contrast]
    values = np.array([means.get(t, 0.0) for t in TISSUES], np.float32)
    rng = np.random.default_rng(seed)
    scale = 1.0 if contrast == "CT" else 1000.0
    noise = 8.0 if contrast == "CT" else 0.03
    img = (values[tissue] + noise * rng.standard_normal(tissue.shape).astype(np.float32)) * scale
    img = ndi.gaussian_filter(img, 0.6).astype(np.float32)
    return labels.with_array(img), labels


def lesjak_flair():
    from orbitai.io import read_volume

    return read_volume(Path(__file__).resolve().parents[2] / "shared/data/ms_flair_lesjak/cs_patient26_FLAIR_MNI.nii.gz")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def median_regions(notes) -> dict:
    """SmartPencil's median region (voxels) at the default superpixel size on the real-like 1 mm heads, and the
    whole-head superpixels' time (2 threads)."""
    from orbitai.annotate.superpixels import DEFAULT_SIZE_MM

    m, per = {}, {}
    cases = [(f"synthseg{t}_{c}", lambda t=t, c=c: head_1mm(t, c)[0]) for t, c in READY_HEADS]
    cases.append(("lesjak_flair_real", lesjak_flair))
    for name, make in cases:
        image = make()
        t0 = time.perf_counter()
        spx = A.compute_superpixels(image.array.astype(np.float32), image.spacing, size_mm=DEFAULT_SIZE_MM)
        took = time.perf_counter() - t0
        counts = np.bincount(spx.labels.ravel())
        head = image.array > np.percentile(image.array, 60)     # regions in the head, not in the air around it
        in_head = np.bincount(spx.labels[head].ravel(), minlength=len(counts)) > 0.5 * counts
        per[name] = {"shape_kji": list(image.shape), "spacing": [float(v) for v in image.spacing],
                     "median_region_voxels": float(np.median(counts)),
                     "median_region_voxels_in_head": float(np.median(counts[in_head])),
                     "p90_region_voxels": float(np.percentile(counts, 90)), "regions": int(len(counts)),
                     "whole_scan_superpixels_s": round(took, 2), "load_1min": _load()}
    m["smartpencil_median_region_voxels_1mm_max"] = max(v["median_region_voxels"] for v in per.values())
    m["smartpencil_median_region_voxels_in_head_1mm_max"] = max(v["median_region_voxels_in_head"]
                                                                for v in per.values())
    m["whole_head_superpixels_s_max"] = max(v["whole_scan_superpixels_s"] for v in per.values())
    notes["median_regions"] = per
    notes["superpixel_size_mm"] = DEFAULT_SIZE_MM
    return m


def _eye_left(labels) -> np.ndarray:
    """The patient's left globe of a SynthSeg label map (label 506: both globes; left = larger LPS x)."""
    from scipy import ndimage as ndi

    eyes, n = ndi.label(labels.array == 506)
    sizes = np.bincount(eyes.ravel())[1:]
    two = np.argsort(sizes)[::-1][:2] + 1
    xs = [labels.index_to_physical(np.argwhere(eyes == k).mean(0)[::-1])[0] for k in two]
    return eyes == two[int(np.argmax(xs))]


def ready_flow(notes) -> dict:
    """A scan shown, prepared in the background (superpixels on a thread, the model prior in the warm worker), then
    the first SmartPencil click and the first SmartFill preview (eyeball_left, 2 strokes, the prior's default
    weight): what the browser panel does (`orbitai.web.annotate_prepare`), on the headless logic."""
    import threading

    from orbitai.app.annotation.logic import AnnotationLogic
    from orbitai.app.annotation.priors import DEFAULT_PRIORS
    from orbitai.mrml.scene import new_scene
    from orbitai.mrml.segment_editor import paint_segment
    from orbitai.mrml.volumes import volume_node_from_volume

    from orbitai.phantoms.orbit import whole_head_case

    m, per = {}, {}
    for template, contrast, orbits in READY_FLOW:
        if orbits:
            case = whole_head_case(template, contrast.lower())
            image, eye = case.image, case.labels.array == 1            # orbit scheme: 1 is the left eyeball
        else:
            image, labels = head_1mm(template, contrast)
            eye = _eye_left(labels)
        name = f"synthseg{template}_{contrast}" + ("_orbits" if orbits else "")
        ctx = new_scene()
        try:
            vol = volume_node_from_volume(ctx, image, f"head{template}_{contrast}")
            logic = AnnotationLogic(ctx.scene, ctx.app_logic)
            load0 = _load()
            t0 = time.perf_counter()
            prep = logic.prepare(vol, DEFAULT_PRIORS)
            done: dict[str, float] = {}
            worker = threading.Thread(target=lambda p=prep, d=done: (p.superpixels(), d.setdefault("spx", time.perf_counter())))
            worker.start()
            while worker.is_alive() or (prep.prior is not None and hasattr(prep.prior, "poll") and not prep.prior.poll()):
                time.sleep(0.2)
            worker.join()
            ready = time.perf_counter() - t0
            prior_error = getattr(prep.prior, "error", None)
            seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
            seg.CreateDefaultDisplayNodes()
            seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
            sid = seg.GetSegmentation().AddEmptySegment("eyeball_left", "eyeball_left")
            logic.setInputs(seg, vol, sid)
            centre = tuple(int(v) for v in np.argwhere(eye).mean(0))
            misses = logic.cache.misses
            t1 = time.perf_counter()
            click = logic.smartPencilClick(ijk=centre)
            first_click = time.perf_counter() - t1
            click_computed = logic.cache.misses > misses
            t1 = time.perf_counter()
            logic.smartPencilClick(ijk=tuple(int(v) for v in np.argwhere(eye)[0]))
            second_click = time.perf_counter() - t1
            logic.undo()
            logic.undo()
            strokes = np.any(A.simulate_strokes(eye, image.spacing, 2), axis=0)
            paint_segment(seg, sid, vol, strokes)
            t1 = time.perf_counter()
            preview = logic.smartFillPreview()
            first_preview = time.perf_counter() - t1
            mask = preview.details.get("mask")
            per[name] = {"orbit_contents": bool(orbits) or contrast != "CT",
                "prepare_superpixels_s": round(done.get("spx", t0) - t0, 2), "prepare_ready_s": round(ready, 2),
                "prior": "ready" if prior_error is None else prior_error,
                "first_click_s": round(first_click, 3), "second_click_s": round(second_click, 3),
                "first_click_voxels": int(click.changed_voxels), "first_click_message": click.message,
                "first_click_computed_superpixels": bool(click_computed),
                "first_preview_s": round(first_preview, 3), "preview_prior_used": bool(preview.details.get("prior_used")),
                "preview_pending": bool(preview.details.get("pending")),
                "preview_dice_eyeball_left": None if mask is None else round(A.dice(mask, eye), 4),
                "load_1min_start": load0, "load_1min_end": _load()}
        finally:
            DEFAULT_PRIORS.clear()
            ctx.close()
    real = [v for v in per.values() if v["orbit_contents"]]        # not the CT orbit without fat (READY_FLOW)
    m["prepare_ready_s_max"] = max(v["prepare_ready_s"] for v in real)
    m["first_smartpencil_click_s_max"] = max(v["first_click_s"] for v in real)
    m["first_smartfill_preview_s_max"] = max(v["first_preview_s"] for v in real)
    notes["flow"] = per
    return m


#: ``--ready --job N``: the issue's CPU-bound job of N busy processes runs through the measurement (issue 67's bars).
JOB_FLAG = "--job"


def _job_processes() -> int:
    args = sys.argv[1:]
    return int(args[args.index(JOB_FLAG) + 1]) if JOB_FLAG in args else 0


def ready_main() -> Path:
    """``python -m benchmarks.bench_annotation --ready [--job N]`` -> ``results/annotation_ready.json``."""
    import subprocess

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    n_job = _job_processes()
    job = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_job)]
    try:
        if job:
            time.sleep(5.0)                 # the load average climbs
        return _ready(n_job)
    finally:
        for p in job:
            p.kill()
            p.wait()


def _ready(n_job: int) -> Path:
    import subprocess

    notes = {"job_processes": n_job,
             "what": ("issue 67: SmartPencil's regions in mm on real-like 1 mm heads, and a scan prepared on load "
                      "(superpixels on a worker thread, the model prior in the warm worker on the orbits' part of the "
                      "head) then its first SmartPencil click and SmartFill preview; job_processes: busy processes "
                      "running throughout (--job N, the issue's CPU-bound job)"),
             "bars": "first click <= 2 s and first preview <= 5 s after a scan shown for 60 s: prepare_ready_s <= 60",
             "uptime_start": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    metrics = median_regions(notes)
    metrics.update(ready_flow(notes))
    notes["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    targets = {"smartpencil_median_region_voxels_1mm_max": "<= 500", "prepare_ready_s_max": "<= 60",
               "first_smartpencil_click_s_max": "<= 2", "first_smartfill_preview_s_max": "<= 5"}
    return write_result("annotation_ready", metrics, targets, notes)


def main(naive: bool = True) -> Path:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    full, sides, source = phantom_cases()
    notes = {
        "phantom": source,
        "threads": 2,
        "annotator": ("deterministic simulation from the truth: SmartFill <= 3 medial-axis strokes (2 object strokes in "
                      "the view where they come out longest, then 1 correction stroke on the preview's largest "
                      "error, or a third object stroke if that correction made it worse); clicks at the largest error"),
        "smartpencil_dice_rectus": "best rectus over both orbits (the bar asks for a rectus muscle); _min is the worst",
        "smartfill_nearest_stroke_bound": ("per rectus, the best Dice that splitting the truth region of the muscle and "
                                           "of the labelled structures of the same intensity touching it (the levator "
                                           "for the superior rectus) by nearest object/background stroke gives "
                                           "from the strokes the simulated annotator tried: what stroke position "
                                           "alone can separate"),
    }
    metrics = quality(sides, notes)
    autocorrect_other_phantoms(notes)
    prior_metrics, prior_notes = prior_comparison()
    metrics.update(prior_metrics)
    notes.update(prior_notes)
    metrics.update(latency(full, notes, naive))
    targets = {
        "smartpencil_click_ms": "<= 50", "superpixel_precompute_s": "<= 3", "smartfill_preview_s": "<= 1",
        "autocorrect_s": "<= 2", "smartfill_dice_eyeball": ">= 0.90", "smartfill_dice_rectus_min": ">= 0.80",
        "smartpencil_dice_rectus": ">= 0.85", "autocorrect_dice_gain": ">= 0.05",
        "autocorrect_dice_loss_on_truth": "<= 0.01",
        "smartfill_prior_dice_superior_rectus_min": ">= 0.85", "smartfill_prior_dice_other_min": ">= 0.88",
        "smartfill_prior_minus_noprior_min": ">= -0.01", "smartfill_prior_minus_growcut_min": ">= 0",
        "prior_precompute_s": "<= 10", "smartfill_prior_preview_s": "<= 1",
    }
    return write_result("annotation", metrics, targets, notes)


if __name__ == "__main__":
    if "--ready" in sys.argv:
        ready_main()
    else:
        main(naive="--no-naive" not in sys.argv)
