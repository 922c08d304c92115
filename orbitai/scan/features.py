"""What the scan classifier reads from an image: numbers that describe its values and their layout in the head.

Written by hand (numpy/SciPy) because no library describes "which tissue is bright where" in a head of unknown
contrast: the values are mapped to 0-1 between the air and the head's brightest voxels, the head is found, and
its values are summed up by depth below the skin (scalp and fat 0-6 mm, bone 3-12 mm in an adult head, brain below)
and by histogram. The raw value range (negative values, 8-bit saturation, the +1024 of offset CT) is described too,
since it tells CT from MRI when the values are stored as Hounsfield units. The numbers describing the head are
unchanged by a positive scaling of the values, so MRI stored at any bit depth or scale gives the same description.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.io import Volume

#: The grid the description is computed on (mm): about 0.4 s on a whole head.
GRID_MM = 2.0
#: Depth shells below the head's surface (mm).
SHELLS = ((0, 3), (3, 6), (6, 10), (10, 16), (16, 25), (25, 40), (40, 1e9))
HIST_BINS = np.linspace(0, 1.2, 25)
REGION_BINS = np.linspace(0, 1.2, 13)


def block_factors(vol: Volume) -> list[int]:
    """How many of ``vol``'s voxels along each axis (x, y, z) make one :data:`GRID_MM` block (1: as coarse)."""
    return [max(1, min(n, int(GRID_MM / s + 1e-6))) for n, s in zip(vol.size_xyz, vol.spacing)]


def coarse_values(vol: Volume, average: bool = False) -> np.ndarray:
    """The volume's values on a :data:`GRID_MM` grid in its own orientation (float32; never finer than given):
    point samples, or with ``average`` the means of the finer voxels in blocks (``BinShrink``: 4 x 4 x 4 of a 0.5 mm
    scan), as a 2 mm acquisition would have measured them. Point samples keep a fine scan's per-voxel noise (8 x a
    2 mm voxel's at 0.5 mm), which made a noisy 0.5 mm orbit T2 look T1-like (issue 66): the weighting is read from
    the averages (:meth:`orbitai.scan.classifier.ScanClassifier.answer`)."""
    img = vol.to_sitk()
    if img.GetPixelID() != sitk.sitkFloat32:      # (a float32 scan is not copied once more)
        img = sitk.Cast(img, sitk.sitkFloat32)
    spacing = [max(GRID_MM, s) for s in img.GetSpacing()]
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing)]
    low = float(np.min(vol.array))
    factors = block_factors(vol)
    if average and max(factors) > 1:    # the grid starts at the first block's centre: its voxels are the blocks' means
        img = sitk.BinShrink(img, factors)
    out = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), spacing, img.GetDirection(),
                        low, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` on 256 bins (a two-class split: air against head)."""
    hist, edges = np.histogram(values, 256)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def head_mask(u: np.ndarray) -> np.ndarray:
    """The head (or whatever object the scan holds) on the coarse grid: above Otsu's threshold, closed, holes
    filled, its largest piece."""
    t = _otsu(u)
    mask = u > min(t, 0.25)
    mask = ndi.binary_closing(mask, iterations=2)
    filled = np.zeros_like(mask)
    for axis in range(3):                       # fill slice by slice too: a slab has no closed 3D hole
        filled |= _slice_holes(mask, axis)
    mask = ndi.binary_fill_holes(mask | filled)
    lab, n = ndi.label(mask)
    if n > 1:
        sizes = ndi.sum(mask, lab, range(1, n + 1))
        mask = lab == (1 + int(np.argmax(sizes)))
    return mask


def _slice_holes(mask: np.ndarray, axis: int) -> np.ndarray:
    """``ndi.binary_fill_holes`` of every slice of ``mask`` across ``axis`` in one labelling: the background pieces
    (4-connected within their slice) that touch no edge of their slice are holes, filled."""
    structure = np.zeros((3, 3, 3), bool)
    centre = [1, 1, 1]
    for other in range(3):
        if other != axis:
            for step in (0, 2):
                at = list(centre)
                at[other] = step
                structure[tuple(at)] = True
    structure[1, 1, 1] = True
    lab, n = ndi.label(~mask, structure)
    outside = np.zeros(n + 1, bool)
    outside[0] = True                           # label 0: the mask itself
    for other in range(3):
        if other != axis:
            for edge in (0, -1):
                outside[np.take(lab, edge, other)] = True
    return mask | ~outside[lab]


def _box(mask: np.ndarray) -> tuple[slice, ...]:
    """The slices of ``mask``'s bounding box grown by one voxel (within the array): every voxel of ``mask`` has its
    nearest outside voxel in it, and a morphological step of one voxel stays in it."""
    box = []
    for axis, n in enumerate(mask.shape):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - 1), min(n, int(hit[-1]) + 2)))
    return tuple(box)


def _depth(mask: np.ndarray) -> np.ndarray:
    """Depth (mm) of every head voxel below the surface; the scan's cut faces are not a surface."""
    padded = np.pad(mask, 1, mode="edge")          # a cut through the head continues beyond the field of view
    d = ndi.distance_transform_edt(padded)[1:-1, 1:-1, 1:-1]
    return d * GRID_MM


FEATURE_NAMES: list[str] = []


def _names() -> list[str]:
    names = ["neg_share", "below_minus500_share", "at_min_share", "at_max_share", "integer", "bits8",
             "offset_ct_like", "hu_soft_share", "hu_bone_share", "air_rel", "head_share", "head_ml_log",
             "extent_lr", "extent_ap", "extent_si", "depth_max", "thick_mm", "aniso"]
    names += [f"q{q}" for q in (5, 10, 25, 50, 75, 90, 95, 99)]
    names += [f"hist{i}" for i in range(len(HIST_BINS) - 1)]
    for lo, _ in SHELLS:
        names += [f"s{lo}_share", f"s{lo}_med", f"s{lo}_p90", f"s{lo}_p10", f"s{lo}_top"]
    names += ["dark_inside", "bright_inside", "top_depth", "centre_med", "centre_p95", "centre_p5"]
    names += [f"deep_hist{i}" for i in range(len(REGION_BINS) - 1)]
    names += [f"outer_hist{i}" for i in range(len(REGION_BINS) - 1)]
    names += ["tissue_depth_corr", "tissue_depth_slope", "deep_vs_outer", "deep_vs_cortex"]
    names += ["ribbon8", "compact8", "ribbon20", "compact20"]
    return names


FEATURE_NAMES.extend(_names())


def _ribbon(u: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """How the brighter half of the mid-range tissue lies against the darker half: (share of the brighter half
    touching the darker minus the reverse, share of the brighter half surviving a morphological opening minus the
    darker's). White matter is a compact core, grey matter a ribbon around it: T1 (white brighter) gives values near
    or above 0, FLAIR, PD and T2 (grey brighter) below."""
    if inside.sum() < 200:
        return 0.0, 0.0
    lo, hi = np.percentile(u[inside], [25, 85])
    band = inside & (u >= lo) & (u <= hi)
    if not band.any():
        return 0.0, 0.0
    med = float(np.median(u[band]))
    bright, dark = band & (u > med), band & (u <= med)
    if not bright.any() or not dark.any():
        return 0.0, 0.0
    touch = lambda a, b: float((a & ndi.binary_dilation(b)).sum() / a.sum())          # noqa: E731
    kept = lambda a: float(ndi.binary_opening(a).sum() / a.sum())                     # noqa: E731
    return touch(bright, dark) - touch(dark, bright), kept(bright) - kept(dark)


#: Below these the image classifier abstains: the scan's extent (mm) along at least two axes, and how its neighbouring
#: voxels on the coarse grid correlate (a scan's anatomy is smooth at 2 mm; noise is not).
MIN_EXTENT_MM = 30.0
MIN_CORRELATION = 0.25


def why_not_a_scan(vol: Volume, coarse: np.ndarray | None = None) -> str | None:
    """Why the image classifier cannot answer for ``vol`` (too small, or noise), or None; ``coarse``: its
    :func:`coarse_values` when already computed."""
    extent = np.array(vol.size_xyz) * np.array(vol.spacing)
    if np.sum(extent >= MIN_EXTENT_MM) < 2:
        return f"the image covers only {' x '.join(f'{e:.0f}' for e in extent)} mm"
    a = (coarse_values(vol) if coarse is None else coarse).astype(np.float64)
    best = -1.0
    for axis in range(3):
        if a.shape[axis] < 3:
            continue
        x, y = np.take(a, np.arange(a.shape[axis] - 1), axis).ravel(), np.take(a, np.arange(1, a.shape[axis]), axis).ravel()
        if x.std() > 0 and y.std() > 0:
            best = max(best, float(np.corrcoef(x, y)[0, 1]))
    if best < MIN_CORRELATION:
        return f"its neighbouring voxels do not correlate ({best:.2f}; a scan's above {MIN_CORRELATION:g}), as in noise"
    return None


#: A head (or a brain alone) spans at least this much (mm) along two axes: an adult brain is ~140 x 170 x 120 mm.
MIN_HEAD_EXTENT_MM = 100.0


def why_no_head(vol: Volume) -> str | None:
    """Why ``vol`` cannot hold a head to find a brain in (too small for one along two axes, or noise:
    :func:`why_not_a_scan`), or None. Measured on the geometry and the 2 mm coarse grid: no model runs."""
    extent = np.array(vol.size_xyz) * np.array(vol.spacing)
    if np.sum(extent >= MIN_HEAD_EXTENT_MM) < 2:
        return (f"the image covers only {' x '.join(f'{e:.0f}' for e in extent)} mm, too small to hold a head "
                f"(at least {MIN_HEAD_EXTENT_MM:g} mm along two axes)")
    return why_not_a_scan(vol)


def describe(vol: Volume, coarse: np.ndarray | None = None) -> np.ndarray:
    """The feature vector (:data:`FEATURE_NAMES`) of ``vol``; ``coarse``: its :func:`coarse_values` when already
    computed."""
    raw = vol.array
    sample = raw.ravel()[:: max(1, raw.size // 400_000)].astype(np.float64)
    lo_raw, hi_raw = float(sample.min()), float(sample.max())
    f: dict[str, float] = {}
    f["neg_share"] = float(np.mean(sample < 0))
    f["below_minus500_share"] = float(np.mean(sample < -500))
    f["at_min_share"] = float(np.mean(sample == lo_raw))
    f["at_max_share"] = float(np.mean(sample == hi_raw))
    f["integer"] = float(np.all(sample == np.round(sample)))
    f["bits8"] = float(f["integer"] and lo_raw >= 0 and hi_raw <= 255)
    f["offset_ct_like"] = float(f["integer"] and lo_raw >= 0 and 900 < np.median(sample[sample > 200]) < 1150
                                if np.any(sample > 200) else 0.0)
    f["hu_soft_share"] = float(np.mean((sample > -150) & (sample < 150)))
    f["hu_bone_share"] = float(np.mean((sample > 400) & (sample < 3100)))

    a = (coarse_values(vol) if coarse is None else coarse).astype(np.float64)
    air, top = (float(v) for v in np.percentile(a, (0.5, 99.5)))
    span = max(top - air, 1e-9)
    u = (a - air) / span
    mask = head_mask(u)
    if mask.sum() < 10:
        mask = u > 0.1
    inside = u[mask] if mask.any() else u.ravel()
    hi = float(np.percentile(inside, 99.5))
    u = u / max(hi, 1e-6)
    inside = u[mask] if mask.any() else u.ravel()
    f["air_rel"] = float(np.median(u[~mask])) if (~mask).any() else 0.0
    f["head_share"] = float(mask.mean())
    f["head_ml_log"] = float(np.log10(mask.sum() * GRID_MM ** 3 / 1000 + 1e-3))
    extents = np.zeros(3)
    idx = np.argwhere(mask)
    if len(idx):
        spans = (idx.max(0) - idx.min(0) + 1)[::-1] * GRID_MM           # i, j, k
        physical = np.abs(vol.direction) @ spans                       # ~ LPS extents
        extents = physical
    f["extent_lr"], f["extent_ap"], f["extent_si"] = (float(x) for x in extents)
    if mask.any():      # the rest reads the head's voxels alone: its box holds them in their order, and their depths
        box = _box(mask)
        u, mask = u[box], mask[box]
    depth = _depth(mask)
    f["depth_max"] = float(depth.max()) if mask.any() else 0.0
    f["thick_mm"] = float(max(vol.spacing))
    f["aniso"] = float(max(vol.spacing) / max(min(vol.spacing), 1e-6))
    quantiles = (5, 10, 25, 50, 75, 90, 95, 99)
    for q, v in zip(quantiles, np.percentile(inside, quantiles)):
        f[f"q{q}"] = float(v)
    hist, _ = np.histogram(np.clip(inside, 0, 1.19), HIST_BINS)
    for i, h in enumerate(hist / max(1, hist.sum())):
        f[f"hist{i}"] = float(h)
    brightest = u >= np.percentile(inside, 95)
    d_in = depth[mask]
    for lo, hi_mm in SHELLS:
        shell = mask & (depth > lo) & (depth <= hi_mm)
        vals = u[shell]
        f[f"s{lo}_share"] = float(shell.sum() / max(1, mask.sum()))
        if vals.size:
            f[f"s{lo}_med"], f[f"s{lo}_p90"], f[f"s{lo}_p10"] = (float(v) for v in np.percentile(vals, (50, 90, 10)))
            f[f"s{lo}_top"] = float((brightest & shell).sum() / max(1, (brightest & mask).sum()))
        else:
            f[f"s{lo}_med"] = f[f"s{lo}_p90"] = f[f"s{lo}_p10"] = f[f"s{lo}_top"] = -0.1
    deep = mask & (depth > 10)
    f["dark_inside"] = float(np.mean(u[deep] < 0.1)) if deep.any() else 0.0
    f["bright_inside"] = float(np.mean(u[deep] > 0.8)) if deep.any() else 0.0
    f["top_depth"] = float(np.median(depth[brightest & mask])) if (brightest & mask).any() else 0.0
    if d_in.size:
        centre = mask & (depth >= 0.6 * depth.max())
        cv = u[centre]
        f["centre_med"], f["centre_p95"], f["centre_p5"] = (float(v) for v in np.percentile(cv, (50, 95, 5)))
    else:
        f["centre_med"] = f["centre_p95"] = f["centre_p5"] = 0.0
    # the brain's inside against the head's outer layers: grey matter (outer) against white matter (deep) tells
    # T1 (white brighter) from FLAIR, T2 and PD (grey brighter); fat and bone sit in the outer 10 mm
    deep_region, outer = mask & (depth > 25), mask & (depth <= 10)
    for name, region in (("deep_hist", deep_region), ("outer_hist", outer)):
        h, _ = np.histogram(np.clip(u[region], 0, 1.19), REGION_BINS) if region.any() else (np.zeros(12), None)
        for i, v in enumerate(h / max(1, h.sum())):
            f[f"{name}{i}"] = float(v)
    tissue = mask & (depth > 12)
    if tissue.sum() > 50:
        vals = u[tissue]
        lo_t, hi_t = np.percentile(vals, [20, 80])
        band = tissue & (u >= lo_t) & (u <= hi_t)
        dv, uv = depth[band], u[band]
        ok = dv.std() > 0 and uv.std() > 0
        f["tissue_depth_corr"] = float(np.corrcoef(dv, uv)[0, 1]) if ok else 0.0
        f["tissue_depth_slope"] = float(np.polyfit(dv, uv, 1)[0] * 10) if ok else 0.0
    else:
        f["tissue_depth_corr"] = f["tissue_depth_slope"] = 0.0
    med = lambda region: float(np.median(u[region])) if region.any() else 0.0   # noqa: E731
    f["deep_vs_outer"] = med(deep_region) - med(outer)
    f["deep_vs_cortex"] = med(mask & (depth > 35)) - med(mask & (depth > 15) & (depth <= 25))
    for dmin in (8, 20):
        f[f"ribbon{dmin}"], f[f"compact{dmin}"] = _ribbon(u, mask & (depth > dmin))
    return np.array([f[n] for n in FEATURE_NAMES], np.float64)
