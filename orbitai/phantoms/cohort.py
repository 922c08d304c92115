"""Phantom cohorts on disk: images, segmentations, ``manifest.csv`` and a PNG montage.

Kinds (``orbitai phantom KIND``):

=============  ==============================================  =========================
kind           images                                          ``label`` column
=============  ==============================================  =========================
orbit-ct       orbital CT (HU), axial, some oblique             (none)
orbit-mri      orbital MRI, T2 fat-suppressed or T1, ax/cor     (none)
orbit-synth    domain-randomised (SynthSeg-style) orbit images  (none)
tao            axial T2-SPIR, TAO active vs inactive            1 = active, 0 = inactive
ivgc           coronal T2, IVGC response + 16 clinical features 1 = responder, 0 = non
brain-flair    brain FLAIR with lesions, MS vs NMOSD            1 = NMOSD, 0 = MS
=============  ==============================================  =========================

Orbit segmentations use the orbit scheme (values 1..16); brain segmentations hold the lesion
mask (value 1). Paths in the manifest are relative to its folder.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.errors import InputError
from orbitai.io import write_volume
from orbitai.io.segfile import lesion_table, write_segmentation
from orbitai.labels import ORBIT_LABELS
from orbitai.metrics.plotting import pyplot
from orbitai.phantoms.brain import brain_flair_case
from orbitai.phantoms.orbit import TED_SCALE, Rendering, orbit_case, ted_case
from orbitai.progress import ProgressCallback

KINDS = ("orbit-ct", "orbit-mri", "orbit-synth", "tao", "ivgc", "brain-flair")


def clinical_features(rng: np.random.Generator, responder: int, activity: float) -> dict[str, float]:
    """Draw the 16 clinical features of :data:`orbitai.cohort.clinical.IVGC_CLINICAL`. Responders:
    shorter duration, higher CAS, fewer smokers, higher TRAb, younger; every feature is noisy and
    the groups overlap. ``activity`` is the case's mean muscle oedema (links clinical activity to
    the image)."""
    r = 1.0 if responder else 0.0
    age = np.clip(rng.normal(46 - 4 * r, 11), 18, 80)
    sex = float(rng.random() < 0.3)
    dur = float(np.clip(rng.lognormal(np.log(9 if r else 16), 0.6), 1, 120))
    smoke = float(rng.random() < (0.18 if r else 0.4) + 0.1 * sex)
    trab = float(np.clip(rng.lognormal(np.log(8 + 5 * r), 0.7), 0.3, 40))
    hyper = rng.normal(0, 1)
    ft3 = float(np.clip(5.0 + 1.2 * hyper + 0.02 * trab + rng.normal(0, 0.6), 2.5, 15))
    ft4 = float(np.clip(17 + 4 * hyper + rng.normal(0, 2), 8, 45))
    tsh = float(np.clip(np.exp(-0.8 * hyper + rng.normal(0, 0.7)), 0.005, 8))
    cas = float(np.clip(np.rint(2.6 + 0.9 * r + 1.3 * activity + rng.normal(0, 1.0)), 0, 7))
    exo = float(np.clip(rng.normal(19.5 + 0.6 * r + 0.8 * activity - 1.2 * (1 - sex), 2.2), 12, 30))
    iop = float(np.clip(rng.normal(17 + 1.5 * activity + 0.12 * (exo - 19), 2.8), 9, 35))
    bcva = float(np.clip(rng.gamma(1.5, 0.05) + 0.03 * activity, 0, 1.3))
    dipl = float(np.clip(np.rint(1.0 + 0.5 * activity + 0.015 * dur - 0.2 * r + rng.normal(0, 0.8)), 0, 3))
    lid = float(np.clip(rng.normal(2.0 + 0.4 * activity, 1.1), 0, 6))
    bmi = float(np.clip(rng.normal(23.5, 3.3), 16, 40))
    rai = float(rng.random() < 0.15 + 0.1 * (1 - r))
    vals = [age, sex, dur, smoke, trab, ft3, ft4, tsh, cas, exo, iop, bcva, dipl, lid, bmi, rai]
    return {name: round(float(v), 3) for name, v in zip(IVGC_CLINICAL.names, vals)}


def _case_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(i), 424242]).generate_state(1)[0])


def make_case(kind: str, seed: int, i: int, label: Optional[int] = None, atypical: float = 0.0, ted: float = 0.0):
    """Generate case ``i`` of a cohort (same bytes for the same seed, kind and index).

    ``atypical`` (brain-flair only): share of atypical, other-disease-like cases (see
    `orbitai.phantoms.brain.brain_flair_case`). ``ted`` (orbit-ct, orbit-mri): share of thyroid-eye-disease-like
    cases, every rectus enlarged to a volume drawn from :data:`orbitai.phantoms.orbit.TED_SCALE` times its own (the
    other cases are those of ``ted`` 0, byte for byte)."""
    if atypical and kind != "brain-flair":
        raise InputError(f"atypical presentations exist only for brain-flair phantoms, not {kind}.")
    if ted and kind not in ("orbit-ct", "orbit-mri"):
        raise InputError(f"thyroid-eye-disease-like cases exist only for orbit-ct and orbit-mri phantoms, not {kind}.")

    s = _case_seed(seed, i)
    rng = np.random.default_rng(s)
    if kind in ("orbit-ct", "orbit-mri"):
        modality = "ct" if kind == "orbit-ct" else ("t2" if rng.random() < 0.65 else "t1")
        if ted:        # drawn from a generator of their own: the modality draw above stays as it was
            pick = np.random.default_rng(np.random.SeedSequence([s, 7013]))
            if pick.random() < ted:      # the same anatomy (orientation and tilt drawn alike), its recti enlarged
                return ted_case(s, modality, float(pick.uniform(*TED_SCALE)), oblique=None)
        return orbit_case(s, modality)
    if kind == "orbit-synth":  # random intensity per tissue, resolution, bias, noise (for segmentation training)
        return orbit_case(s, str(rng.choice(["ct", "t2", "t1"])), rendering=Rendering(domain_random=True))
    if kind == "tao":
        return orbit_case(s, "t2", tao="active" if label else "inactive", orientation="axial")
    if kind == "ivgc":
        if label is None:
            raise InputError("An IVGC phantom needs its class label (0 or 1).")
        case = orbit_case(s, "t2", ivgc=int(label), orientation="coronal")
        act = float(np.mean([case.info["oedema"][v] for v in range(5, 13)]))
        case.info["clinical"] = clinical_features(rng, int(label), act)
        return case
    if kind == "brain-flair":
        return brain_flair_case(s, "nmosd" if label else "ms", atypical=atypical)
    raise InputError(f"Unknown phantom kind {kind!r}; choose one of {', '.join(KINDS)}.")


def cohort_labels(kind: str, n: int, seed: int) -> list[Optional[int]]:
    """Balanced, shuffled class labels of a cohort (None for kinds without a label)."""
    if kind in ("orbit-ct", "orbit-mri", "orbit-synth"):
        return [None] * n
    lab = np.arange(n) % 2
    np.random.default_rng(np.random.SeedSequence([int(seed), 99])).shuffle(lab)
    return [int(v) for v in lab]


def write_cohort(kind: str, n: int, seed: int, out_dir: str | os.PathLike,
                 progress: Optional[ProgressCallback] = None,
                 montage_cases: int = 4, atypical: float = 0.0, ted: float = 0.0) -> Path:
    """Write ``n`` cases of ``kind`` to ``out_dir`` with ``manifest.csv`` and ``montage.png``.
    ``atypical``: see `make_case` (brain-flair; the manifest then says which cases are atypical); ``ted`` likewise
    (orbit-ct, orbit-mri; the manifest's ``muscle_scale`` says how much each case's recti are enlarged, 1 for none).

    Returns the manifest path. Same ``seed`` -> the same files, byte for byte.
    """
    if kind not in KINDS:
        raise InputError(f"Unknown phantom kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if n < 1:
        raise InputError("The cohort needs at least one case (--n >= 1).")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "segmentations").mkdir(parents=True, exist_ok=True)
    labels = cohort_labels(kind, n, seed)
    rows: list[dict[str, Any]] = []
    shown: list[tuple[str, Optional[int], Any]] = []
    for i in range(n):
        cid = f"{kind.replace('-', '_')}_{i:04d}"
        case = make_case(kind, seed, i, labels[i], atypical, ted)
        img_rel = f"images/{cid}.nrrd"
        seg_rel = f"segmentations/{cid}.seg.nrrd"
        write_volume(case.image, out / img_rel)
        table = lesion_table() if kind == "brain-flair" else None
        write_segmentation(case.labels, out / seg_rel, table)
        row: dict[str, Any] = {"case_id": cid, "image": img_rel, "segmentation": seg_rel}
        if labels[i] is not None:
            row["label"] = labels[i]
        if kind == "ivgc":
            row.update(case.info["clinical"])
        if kind == "brain-flair":
            row["n_lesions"] = case.info["n_lesions"]
            row["lesion_volume_ml"] = case.info["lesion_volume_ml"]
            if atypical:
                row["atypical"] = int(case.info["atypical"])
        if kind in ("orbit-ct", "orbit-mri", "orbit-synth", "tao", "ivgc"):
            row["modality"] = case.info["modality"]
            row["orientation"] = case.info["orientation"]
        if ted:
            row["muscle_scale"] = round(float(case.info.get("muscle_scale", 1.0)), 3)
        rows.append(row)
        if len(shown) < montage_cases:
            shown.append((cid, labels[i], case))
        if progress:
            progress(i + 1, n, f"{cid} written")
    fields = list(rows[0].keys())
    path = out / "manifest.csv"
    fd, tmp = tempfile.mkstemp(suffix=".csv", dir=out, prefix=".tmp-")
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    if montage_cases > 0:
        save_montage(kind, shown, out / "montage.png")
    return path


def _slice_for(case, kind):
    lab = case.labels.array
    if kind == "brain-flair":
        per = lab.sum((1, 2)).astype(float)
        per[: 85] *= 0.2   # prefer the supratentorial periventricular level for display
        return int(np.argmax(per)) if lab.any() else lab.shape[0] // 2 + 15
    ori = case.info.get("orientation", "axial")
    vals = [3, 4] if ori == "axial" else [5, 6, 7, 8, 9, 10, 11, 12]
    cnt = np.isin(lab, vals).sum((1, 2))
    if ori == "coronal":   # mid-orbit plane with nerve and all recti
        cnt = cnt * (np.isin(lab, [3, 4]).sum((1, 2)) > 0)
    return int(np.argmax(cnt))


def save_montage(kind: str, cases, path: str | os.PathLike) -> Path:
    """PNG: one representative slice per case, label outlines in the scheme's colours."""
    plt = pyplot()

    n = len(cases)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.6), squeeze=False)
    fig.patch.set_facecolor("black")
    for a, (cid, lab_cls, case) in zip(axes[0], cases):
        k = _slice_for(case, kind)
        im = case.image.array[k].astype(np.float32)
        lab = case.labels.array[k]
        sp = case.image.spacing
        if case.info.get("modality") == "ct":
            vmin, vmax = -160.0, 240.0   # soft-tissue/orbit window
        else:
            vmin, vmax = 0, float(np.percentile(case.image.array, 99.7))
        a.imshow(im, cmap="gray", vmin=vmin, vmax=vmax, aspect=sp[1] / sp[0], interpolation="bilinear",
                 origin="lower" if kind == "brain-flair" else "upper")
        for v in np.unique(lab):
            if v == 0:
                continue
            col = np.array(ORBIT_LABELS[int(v)].colour) / 255 if kind != "brain-flair" else (1, 0.2, 0.2)
            a.contour(lab == v, [0.5], colors=[col], linewidths=0.8)
        title = f"{cid}\n{case.info.get('modality')} {case.info.get('orientation', '')}"
        if lab_cls is not None:
            names = {"tao": ("inactive", "active"), "ivgc": ("non-responder", "responder"),
                     "brain-flair": ("MS", "NMOSD")}[kind]
            title += f" - {names[lab_cls]}"
        a.set_title(title, color="white", fontsize=9)
        a.axis("off")
    plt.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, facecolor="black")
    plt.close(fig)
    return path
