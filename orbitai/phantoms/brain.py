"""Brain FLAIR phantoms with MS- or NMOSD-like white-matter lesions and exact lesion masks.

Template: the MNI-registered FLAIR of Lesjak et al. (2017), with its own lesions inpainted from
the surrounding tissue. Each case places synthetic lesions by disease-specific distributions
(MNI coordinates; ventricles from the template's dark CSF) and deforms the result (affine +
smooth elastic field). Lesion masks are the ground truth.

* MS: many ovoid periventricular lesions with their long axis perpendicular to the ventricle
  wall (Dawson's fingers), juxtacortical, infratentorial (pons, peduncles, cerebellum) and small
  callosal-septal lesions, plus non-specific deep white-matter dots.
* NMOSD: fewer lesions; periependymal around the third/fourth ventricle, hypothalamus, area
  postrema/dorsal medulla, long confluent corpus-callosum lesions, non-specific dots.
Both groups overlap (few-lesion MS, periventricular dots in NMOSD). ``atypical`` > 0 draws that
share of each group from an atypical presentation that looks like the other disease (MS with few
lesions and NMOSD-typical sites; NMOSD with Dawson-finger-like periventricular and juxtacortical
lesions), so that the classes overlap and classifiers can be compared below the ceiling.
``confluent`` > 0 gives that share of MS cases a confluent periventricular lesion (1-4 mL of merged
ovoid lesions along the ventricle wall, as in advanced MS), for lesion-segmentation training.
``heavy`` > 0 gives that share of MS cases a heavy confluent load: periventricular caps and bands
along the lateral ventricles reaching into the deep white matter (a target load drawn log-uniformly
from 12-70 mL, one lesion contrast per cap, heterogeneous inside), with the ventricles enlarged by
0-4 mm (the atrophy that comes with it), so that the lesions are a large share of the white matter.
"""
from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.io import Volume, rotation
from orbitai.phantoms.atlas import data_path, upsample_linear
from orbitai.phantoms.orbit import PhantomCase

DISEASES = ("ms", "nmosd")


@functools.lru_cache(maxsize=1)
def _template():
    img = sitk.ReadImage(str(data_path("ms_flair_lesjak", "cs_patient26_FLAIR_MNI.nii.gz")))
    les = sitk.GetArrayFromImage(sitk.ReadImage(str(data_path("ms_flair_lesjak", "cs_patient26_lesionmask_MNI.nii.gz")))) > 0
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    brain = a > 0
    m = ndi.binary_dilation(les, iterations=2)
    keep = (brain & ~m).astype(np.float32)
    num = ndi.gaussian_filter(a * keep, 3.0)
    den = ndi.gaussian_filter(keep, 3.0)
    fill = num / np.maximum(den, 1e-3)
    a = np.where(m & brain, fill, a)
    # a little texture back into the inpainted patches
    a = np.where(m & brain, a + ndi.gaussian_filter(np.random.default_rng(5).standard_normal(a.shape).astype(np.float32), 0.7) * 3, a)
    vol = Volume.from_sitk(img)
    # RAS (MNI) coordinates of index axes: x = 90 - i, y = j - 126, z = k - 72 for this grid
    shape = a.shape
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    X, Y, Z = 90 - i, j - 126, k - 72
    depth = ndi.distance_transform_edt(brain).astype(np.float32)
    # the template's ventricles are partly <= 0 (outside ``brain``): find them in the hole-filled brain
    filled = ndi.binary_fill_holes(brain)
    fdepth = ndi.distance_transform_edt(filled)
    vent = filled & (a < 45) & (np.abs(X) < 30) & (Y > -45) & (Y < 35) & (Z > -2) & (Z < 35) & (fdepth > 12)
    vent = ndi.binary_opening(vent, iterations=1)
    lab, n = ndi.label(vent)
    if n:
        sizes = ndi.sum(vent, lab, range(1, n + 1))
        vent = np.isin(lab, 1 + np.nonzero(sizes >= 200)[0])
    vent = ndi.binary_closing(vent, iterations=1)
    vsurf = np.argwhere(vent & ~ndi.binary_erosion(vent))
    dv = ndi.distance_transform_edt(~vent).astype(np.float32)
    gz, gy, gx = np.gradient(ndi.gaussian_filter(dv, 1.5))
    wm_level = float(np.median(a[brain & (depth > 15) & ~vent & (a > 60)]))
    juxta = np.argwhere(brain & (depth > 4) & (depth < 8) & (Z > 5) & (a > 60))
    return dict(image=a, brain=brain, vol=vol, vent_surface=vsurf, grad=(gx, gy, gz), wm=wm_level,
                juxta=juxta, depth=depth, vent_distance=dv, vent=vent)


def _ras_to_idx(p):
    x, y, z = p
    return np.array([72 + z, 126 + y, 90 - x], float)   # (k, j, i)


def _add_lesion(rng, img, mask, centre_kji, axes_mm, direction_kji, gain, base=None, allowed=None):
    """Ellipsoid lesion with a soft, slightly irregular border; long axis along ``direction``.
    With ``base`` (the lesion-free image) overlapping lesions merge (maximum of their intensities)
    instead of compounding their gains; ``allowed`` (bool, image-shaped) limits the lesion to tissue."""
    a_long, a_short = axes_mm
    r = int(np.ceil(a_long + 2))
    c = np.rint(centre_kji).astype(int)
    lo = np.maximum(c - r, 0)
    hi = np.minimum(c + r + 1, img.shape)
    if np.any(hi <= lo):
        return 0
    g = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1) - centre_kji
    d = np.asarray(direction_kji, float)
    d /= max(np.linalg.norm(d), 1e-6)
    along = g @ d
    perp2 = np.maximum((g ** 2).sum(-1) - along ** 2, 0)
    q = np.sqrt((along / a_long) ** 2 + perp2 / a_short ** 2)
    q = q * (1 + 0.15 * rng.standard_normal(q.shape).astype(np.float32))
    q = ndi.gaussian_filter(q, 0.6)
    prof = np.clip(1.3 - q, 0, 1)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub = img[sl]
    inside_brain = sub > 20
    if allowed is not None:
        inside_brain &= allowed[sl]
    p = np.where(inside_brain, prof, 0).astype(np.float32)
    if base is None:
        img[sl] = sub * (1 + (gain - 1) * p)
    else:
        img[sl] = np.maximum(sub, base[sl] * (1 + (gain - 1) * p))
    m = (q <= 1.0) & inside_brain
    mask[sl] |= m
    return int(m.sum())


def brain_flair_case(seed: int, disease: str = "ms", noise: bool = True, atypical: float = 0.0,
                     confluent: float = 0.0, heavy: float = 0.0) -> PhantomCase:
    """Synthesise one brain FLAIR (182x218x182, 1 mm, MNI-like) with lesions; labels = lesion mask (1).

    ``atypical``: probability that the case is an atypical, other-disease-like presentation;
    ``confluent``: probability that an MS case also has confluent periventricular lesions;
    ``heavy``: probability that an MS case has a heavy confluent load (12-70 mL) and enlarged
    ventricles (0: the default cohorts, drawn exactly as before these options existed)."""
    if disease not in DISEASES:
        raise ValueError(f"disease must be one of {DISEASES}, got {disease!r}")
    for name, value in (("atypical", atypical), ("confluent", confluent), ("heavy", heavy)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3003]))
    T = _template()
    img = T["image"].copy()
    mask = np.zeros(img.shape, bool)
    vs = T["vent_surface"]
    gx, gy, gz = T["grad"]
    counts: dict[str, int] = {}

    def lesion(kind, centre, axes, direction=None, gain=None, base=None, allowed=None):
        g = gain if gain is not None else rng.uniform(1.35, 1.75)
        d = direction if direction is not None else rng.standard_normal(3)
        n = _add_lesion(rng, img, mask, centre, axes, d, g, base, allowed)
        if n:
            counts[kind] = counts.get(kind, 0) + 1

    def periventricular(n):
        for _ in range(n):
            p = vs[rng.integers(len(vs))]
            if p[0] < 72 + 2:   # bodies and horns above the third ventricle level
                continue
            nrm = np.array([gz[tuple(p)], gy[tuple(p)], gx[tuple(p)]])
            nrm /= max(np.linalg.norm(nrm), 1e-6)
            long_ = rng.uniform(3.0, 8.0)
            lesion("periventricular", p + nrm * (long_ * 0.7), (long_, rng.uniform(1.8, 3.5)), nrm)

    def juxtacortical(n):
        for _ in range(n):
            p = T["juxta"][rng.integers(len(T["juxta"]))]
            lesion("juxtacortical", p.astype(float), (rng.uniform(2.0, 4.5), rng.uniform(1.5, 3.0)))

    def deep(n):
        for _ in range(n):
            c = (rng.choice([-1, 1]) * rng.uniform(15, 32), rng.uniform(-35, 30), rng.uniform(18, 42))
            lesion("deep_white_matter", _ras_to_idx(c), (rng.uniform(1.0, 2.8), rng.uniform(1.0, 2.2)))

    def infratentorial(n):
        sites = [(0, -28, -30), (8, -45, -32), (-8, -45, -32), (14, -52, -30), (-14, -52, -30), (0, -35, -42)]
        for _ in range(n):
            s = np.array(sites[rng.integers(len(sites))], float) + rng.normal(0, 2.5, 3)
            lesion("infratentorial", _ras_to_idx(s), (rng.uniform(1.5, 3.5), rng.uniform(1.2, 2.5)))

    def callosal_small(n):
        for _ in range(n):
            t = rng.uniform(0.1, 0.9)
            c = (rng.normal(0, 4), 28 - 66 * t, 10 + 15 * np.sin(np.pi * t) - 3)
            lesion("callosal", _ras_to_idx(c), (rng.uniform(2, 4), rng.uniform(1.2, 2)), _ras_dir((0, 0, 1)))

    def callosal_long():
        t0 = rng.uniform(0.05, 0.55)
        t1 = t0 + rng.uniform(0.25, 0.45)
        x0 = rng.normal(0, 3)
        for t in np.linspace(t0, min(t1, 0.95), 7):
            c = (x0 + rng.normal(0, 1), 28 - 66 * t, 10 + 15 * np.sin(np.pi * t) - 2)
            lesion("callosal_long", _ras_to_idx(c), (rng.uniform(4, 6), rng.uniform(2, 3.5)), _ras_dir((0, 1, 0)))

    def confluent_cap():
        # 6-14 overlapping ovoids on a patch of the lateral ventricle wall merge into one lesion
        upper = vs[vs[:, 0] >= 72 + 2]
        p0 = upper[rng.integers(len(upper))]
        near = upper[np.linalg.norm(upper - p0, axis=1) < rng.uniform(8, 16)]
        pick = near[rng.choice(len(near), size=min(len(near), int(rng.integers(6, 15))), replace=False)]
        gain = rng.uniform(1.3, 1.7)
        for p in pick:
            nrm = np.array([gz[tuple(p)], gy[tuple(p)], gx[tuple(p)]])
            nrm /= max(np.linalg.norm(nrm), 1e-6)
            long_ = rng.uniform(4.0, 9.0)
            lesion("periventricular_confluent", p + nrm * (long_ * 0.5), (long_, rng.uniform(2.5, 4.5)), nrm,
                   gain, T["image"])

    def heavy_load(target_ml):
        # caps and bands: overlapping ovoids on the upper ventricle wall (horns and bodies), each cap a
        # cluster with its own contrast, some reaching 4-14 mm into the deep white matter; merged by
        # maximum over the lesion-free template until the target volume is reached
        # lateral ventricle walls above the third ventricle, off the midline (no septum, no thalamus)
        upper = vs[(vs[:, 0] >= 72 + 2) & (np.abs(90 - vs[:, 2]) >= 6)]
        tissue = ~ndi.binary_dilation(T["vent"], iterations=1)
        target = target_ml * 1000.0
        for _cap in range(400):
            if mask.sum() >= target:
                break
            p0 = upper[rng.integers(len(upper))]
            near = upper[np.linalg.norm(upper - p0, axis=1) < rng.uniform(10, 22)]
            gain = rng.uniform(1.25, 1.7)
            for p in near[rng.choice(len(near), size=min(len(near), int(rng.integers(8, 20))), replace=False)]:
                nrm = np.array([gz[tuple(p)], gy[tuple(p)], gx[tuple(p)]])
                nrm /= max(np.linalg.norm(nrm), 1e-6)
                long_ = rng.uniform(4.0, 12.0)
                reach = rng.uniform(0.3, 1.0) * long_ + (rng.uniform(4, 14) if rng.random() < 0.25 else 0.0)
                lesion("periventricular_heavy", p + nrm * reach, (long_, rng.uniform(2.5, 6.0)), nrm,
                       gain * rng.uniform(0.9, 1.1), T["image"], tissue)

    def periependymal():
        sites = {"third_ventricle_hypothalamus": (0, -8, -4), "fourth_ventricle": (0, -44, -30),
                 "area_postrema": (0, -42, -46), "periaqueductal": (0, -32, -10)}
        for name, s in sites.items():
            if rng.random() < 0.42:
                c = np.array(s, float) + rng.normal(0, 1.5, 3)
                c[0] += rng.choice([-1, 1]) * rng.uniform(2, 5)
                lesion(name, _ras_to_idx(c), (rng.uniform(3, 6.5), rng.uniform(1.8, 3.0)), _ras_dir((0, 0, 1)))

    is_atypical = bool(atypical) and rng.random() < atypical   # no draw when 0: default cohorts unchanged
    if is_atypical and disease == "ms":
        # few lesions, some at NMOSD-typical sites
        periventricular(int(rng.poisson(2.0)) + 1)
        deep(int(rng.poisson(2.0)))
        if rng.random() < 0.5:
            periependymal()
        if rng.random() < 0.3:
            callosal_long()
        if rng.random() < 0.3:
            infratentorial(1)
    elif is_atypical:
        # NMOSD with MS-like ovoid periventricular and juxtacortical lesions
        periventricular(int(rng.poisson(5.0)) + 1)
        juxtacortical(int(rng.poisson(1.0)))
        deep(int(rng.poisson(2.5)))
        if rng.random() < 0.4:
            periependymal()
        if rng.random() < 0.25:
            callosal_small(1)
    elif disease == "ms":
        periventricular(int(rng.poisson(10)) + 2)
        juxtacortical(int(rng.poisson(2.5)))
        infratentorial(int(rng.poisson(1.2)))
        deep(int(rng.poisson(3)))
        callosal_small(int(rng.poisson(1.0)))
        if rng.random() < 0.08:
            periependymal()
    else:
        deep(int(rng.poisson(2.0)))
        if rng.random() < 0.35:
            periventricular(int(rng.poisson(1.5)))
        periependymal()
        if rng.random() < 0.45:
            callosal_long()
        if rng.random() < 0.2:
            infratentorial(1)
    if confluent and disease == "ms" and rng.random() < confluent:   # no draw when 0: defaults unchanged
        for _ in range(1 + int(rng.poisson(0.4))):
            confluent_cap()
    is_heavy = bool(heavy) and disease == "ms" and rng.random() < heavy   # no draw when 0
    if is_heavy:
        heavy_load(float(np.exp(rng.uniform(np.log(12.0), np.log(70.0)))))
    out, lab = _deform_and_scan(rng, T, img, mask, noise, is_heavy)
    v = T["vol"]
    image = Volume(np.clip(out, 0, None).astype(np.float32), v.spacing, v.origin, v.direction)
    labels = Volume(lab, v.spacing, v.origin, v.direction)
    info = {"seed": int(seed), "disease": disease, "modality": "flair", "lesion_counts": counts,
            "atypical": is_atypical, "heavy": is_heavy,
            "n_lesions": int(sum(counts.values())), "lesion_volume_ml": round(float(lab.sum()) * 1e-3, 4)}
    return PhantomCase(image, labels, info)


#: Arterial territories of the infarct phantoms (MNI mm): the wedge's deep apex, its outward axis (towards the
#: cortex) and the range of its half-angle (degrees); the right hemisphere's (x mirrored for the left).
TERRITORIES = {"mca": ((24.0, -8.0, 12.0), (1.0, 0.05, 0.3), (20.0, 32.0)),
               "aca": ((6.0, 0.0, 22.0), (0.25, 0.35, 1.0), (16.0, 26.0)),
               "pca": ((14.0, -60.0, 6.0), (0.25, -1.0, 0.05), (18.0, 28.0))}


def infarct_flair_case(seed: int, noise: bool = True) -> PhantomCase:
    """A brain FLAIR with one or two territorial infarcts (the wedge of a branch of the middle, anterior or
    posterior cerebral artery: cortex and the white matter beneath it, hyperintense) and a few small-vessel dots in
    the deep white matter: what a stroke patient's FLAIR shows, for checking that the NMOSD/MS classifier's scope
    is enforced (issue 51). Labels = every lesion; the same deformation and scanner as :func:`brain_flair_case`."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3011]))
    T = _template()
    img = T["image"].copy()
    base = img.copy()
    mask = np.zeros(img.shape, bool)
    allowed = T["brain"] & ~T["vent"]
    shape = img.shape
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    X, Y, Z = (90 - i).astype(np.float32), (j - 126).astype(np.float32), (k - 72).astype(np.float32)
    names = sorted(TERRITORIES)
    chosen = [names[n] for n in rng.choice(len(names), size=1 + int(rng.random() < 0.35), replace=False)]
    for name in chosen:
        (ax, ay, az), (dx, dy, dz), (lo, hi) = TERRITORIES[name]
        side = 1.0 if rng.random() < 0.5 else -1.0
        apex = np.array([side * ax, ay, az]) + rng.normal(0, 3.0, 3)
        axis = np.array([side * dx, dy, dz]) + rng.normal(0, 0.12, 3)
        axis /= np.linalg.norm(axis)
        half = np.radians(rng.uniform(lo, hi))
        vx, vy, vz = X - np.float32(apex[0]), Y - np.float32(apex[1]), Z - np.float32(apex[2])
        r = np.sqrt(vx ** 2 + vy ** 2 + vz ** 2) + np.float32(1e-3)
        cos = (vx * axis[0] + vy * axis[1] + vz * axis[2]) / r
        angle = np.arccos(np.clip(cos, -1, 1)) / np.float32(half)
        q = np.maximum(angle, np.where(r < 4.0, 1.5, 0.0))        # the apex itself rounded off
        q = ndi.gaussian_filter((q * (1 + 0.08 * rng.standard_normal(q.shape))).astype(np.float32), 1.0)
        prof = np.clip(1.25 - q, 0, 1) * allowed
        gain = np.float32(rng.uniform(1.35, 1.8))
        img = np.maximum(img, base * (1 + (gain - 1) * prof))
        mask |= (q <= 1.0) & allowed
    # small-vessel dots in the deep white matter
    deep = np.argwhere(allowed & (T["depth"] > 14) & (T["vent_distance"] > 6) & (Z > -5) & (Z < 45))
    dots = int(rng.poisson(4.0))
    for p in deep[rng.choice(len(deep), size=dots, replace=False)] if dots else []:
        _add_lesion(rng, img, mask, p.astype(float), (rng.uniform(1.5, 3.0), rng.uniform(1.0, 2.0)),
                    rng.normal(0, 1, 3), rng.uniform(1.3, 1.6), base=base, allowed=allowed)
    out, lab = _deform_and_scan(rng, T, img, mask, noise)
    v = T["vol"]
    image = Volume(np.clip(out, 0, None).astype(np.float32), v.spacing, v.origin, v.direction)
    labels = Volume(lab, v.spacing, v.origin, v.direction)
    info = {"seed": int(seed), "disease": "infarct", "modality": "flair", "territories": chosen,
            "lesion_counts": {"territorial_infarct": len(chosen), "deep_white_matter": dots},
            "n_lesions": len(chosen) + dots, "lesion_volume_ml": round(float(lab.sum()) * 1e-3, 4)}
    return PhantomCase(image, labels, info)


def _deform_and_scan(rng, T, img, mask, noise: bool, is_heavy: bool = False):
    """The case's deformation (affine + smooth elastic field, pulled back on a coarse grid; with ``is_heavy`` the
    ventricles widened) and scanner (gain, Rician noise): the (image, label) arrays."""
    gx, gy, gz = T["grad"]
    # ---- deformation (affine + elastic), pulled back on a coarse grid
    shape = img.shape
    step = 6
    nc = [int(np.ceil((n - 1) / step)) + 1 for n in shape]
    g = np.stack(np.meshgrid(*[np.arange(n) * step for n in nc], indexing="ij"), -1).astype(np.float32)
    centre = (np.array(shape) - 1) / 2.0
    R = rotation(*np.radians(rng.normal(0, 3.0, 3)))
    S = np.diag(1.0 / (rng.uniform(0.95, 1.05) * (1 + rng.normal(0, 0.015, 3))))
    M = (R @ S).astype(np.float32)
    q = centre + (g - centre) @ M.T + rng.normal(0, 1.5, 3).astype(np.float32)
    ctrl = rng.standard_normal((3, 5, 5, 5)).astype(np.float32) * rng.uniform(1.0, 2.5)
    u = g / (np.array(shape) - 1) * 4
    disp = np.stack([ndi.map_coordinates(ctrl[c], [u[..., 0], u[..., 1], u[..., 2]], order=3, mode="nearest")
                     for c in range(3)], -1)
    q = (q + disp).astype(np.float32)
    full = upsample_linear(q, (step, step, step, 1))[: shape[0], : shape[1], : shape[2]]
    if is_heavy:
        # enlarged ventricles: near the ventricle wall, sample from closer to the ventricle (pull
        # back along the wall normal, fading with the distance from it)
        widen = np.float32(rng.uniform(0.0, 4.0))
        dv = T["vent_distance"]
        ri0 = [np.clip(np.rint(full[..., c]).astype(np.int32), 0, n - 1) for c, n in enumerate(shape)]
        d0 = dv[ri0[0], ri0[1], ri0[2]]
        push = widen * np.exp(-d0 / np.float32(12.0))
        for c, grad in enumerate((gz, gy, gx)):
            gn = grad[ri0[0], ri0[1], ri0[2]]
            full[..., c] -= push * gn     # the distance field's gradient: the unit outward normal
    coords = [full[..., 0], full[..., 1], full[..., 2]]
    out = ndi.map_coordinates(img, coords, order=1, mode="constant", cval=0.0, prefilter=False)
    ri = [np.clip(np.rint(c).astype(np.int32), 0, n - 1) for c, n in zip(coords, shape)]
    lab = mask[ri[0], ri[1], ri[2]].astype(np.uint8)
    # ---- scanner: gain, bias, Rician noise
    out *= np.float32(rng.normal(1.0, 0.05))
    if noise:
        s = np.float32(rng.uniform(1.0, 2.5))
        n1 = rng.standard_normal(shape, dtype=np.float32)
        n2 = rng.standard_normal(shape, dtype=np.float32)
        out = np.sqrt((out + s * n1) ** 2 + (s * n2) ** 2)
    return out, lab


def _ras_dir(d):
    x, y, z = d
    return np.array([z, y, -x], float)
