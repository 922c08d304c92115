"""The orbit tissue model built once per process from the SPL/NAC head-and-neck atlas.

The atlas labels the eyeballs, optic nerves, extraocular muscles and the brain and head
muscles around them, but not the orbital fat, bone, sinuses, lens or skin. This module maps
the atlas to *tissue codes* (below) and adds what is missing:

* orbital fat: the convex hull of each orbit's muscle cone, globe back half and intra-orbital
  nerve, minus the labelled structures;
* bony orbital walls: a shell around that hull, thick laterally (zygoma/greater sphenoid wing),
  thin medially (lamina papyracea), open anteriorly (the orbital rim);
* sinuses: ethmoid air cells (honeycomb of thin septa), nasal cavity with septum and turbinates,
  maxillary, sphenoid and frontal sinuses, each walled by bone;
* cranium: CSF and skull around the brain; skin and subcutaneous fat around the head;
* lens and sclera inside each eyeball (on the fine grid).

Everything is in the atlas' LPS frame: a 1 mm *coarse* crop of the head and a 0.5 mm *fine*
box over both orbits with smooth boundaries. Built in about two seconds and cached.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import cast

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, cKDTree

from orbitai.bundle.registry import data_file

# ----------------------------------------------------------------------------- tissue codes
OUTSIDE = 0
LENS_L, LENS_R, SCLERA_L, SCLERA_R = 17, 18, 19, 20
FAT, BONE, AIR, SOFT, MUSCLE, GM, WM, CSF, NEURAL = 21, 22, 23, 24, 25, 26, 27, 28, 29
N_TISSUES = 30
TISSUE_NAMES = {0: "outside", **{v: f"orbit_label_{v}" for v in range(1, 17)},
                LENS_L: "lens_left", LENS_R: "lens_right", SCLERA_L: "sclera_left", SCLERA_R: "sclera_right",
                FAT: "fat", BONE: "bone", AIR: "sinus_air", SOFT: "soft_tissue", MUSCLE: "other_muscle",
                GM: "grey_matter", WM: "white_matter", CSF: "csf", NEURAL: "neural_tract"}

#: tissue code -> orbit-scheme label value (ground truth); lens/sclera belong to the eyeball.
GT_LUT = np.zeros(256, np.uint8)
GT_LUT[1:17] = np.arange(1, 17)
GT_LUT[[LENS_L, SCLERA_L]] = 1
GT_LUT[[LENS_R, SCLERA_R]] = 2

#: atlas label value -> orbit-scheme value
ATLAS_TO_ORBIT = {4027: 1, 4028: 2, 77: 3, 215: 4, 4013: 5, 4014: 6, 4017: 7, 4018: 8,
                  4011: 9, 4012: 10, 4019: 11, 4020: 12, 4015: 13, 4016: 14, 4021: 15, 4022: 16}

COARSE_LO = np.array([-72.0, -112.0, -80.0])   # LPS mm of the coarse crop's first voxel
COARSE_SIZE = (144, 152, 110)                   # x, y, z voxels at 1 mm
FINE_LO = np.array([-56.0, -100.0, -52.0])      # LPS mm of the fine box's first voxel
FINE_EXTENT = (112, 90, 60)                     # mm (x, y, z)
FINE_SP = 0.5


def data_path(*parts: str) -> Path:
    """A file of a data set, ``data_path(set, file)``: the user's data folder first, then the package's
    (`orbitai.bundle.registry.data_file`: a registry data set in neither is a one-line error naming its install)."""
    return data_file(*parts) if parts else Path(str(resources.files("orbitai").joinpath("data")))


def _lut_names() -> dict[int, str]:
    with open(data_path("spl_nac_atlas", "hncma-atlas-lut.tsv"), newline="") as f:
        return {int(r["value"]): r["label"] for r in csv.DictReader(f, delimiter="\t")}


def _classify(value: int, name: str) -> int:
    if value in ATLAS_TO_ORBIT:
        return ATLAS_TO_ORBIT[value]
    if value == 0:
        return OUTSIDE
    n = name.lower()
    if value >= 4000:
        return MUSCLE
    if "ventricle" in n or n == "aqueduct":
        return CSF
    if value in (85, 78, 216):
        return NEURAL
    if value in (3008, 3011, 3012, 72):
        return SOFT
    if any(w in n for w in ("white matter", "corpus callosum", "commissure", "fornix", "lamina", "pons",
                            "medulla", "tract", "brachia", "pellucid", "capsule")):
        return WM
    return GM


@dataclass
class MuscleGeom:
    """Per-muscle arrays on a box of the fine grid for per-case thickening."""

    value: int
    box: tuple[slice, slice, slice]
    dist_out: np.ndarray      # mm from the muscle (0 inside)
    s: np.ndarray             # 0 at the orbital apex .. 1 at the insertion


@dataclass
class OrbitModel:
    coarse: np.ndarray                 # uint8 tissue codes [z, y, x], 1 mm, first voxel at coarse_lo
    fine: np.ndarray                   # uint8 tissue codes [z, y, x], 0.5 mm, first voxel at fine_lo
    globe_centre: dict[str, np.ndarray]
    globe_radius: dict[str, float]
    nerve_mid: dict[str, np.ndarray]
    orbit_centre: np.ndarray           # LPS mm between the two orbits
    muscles: list[MuscleGeom] = field(default_factory=list)
    coarse_lo: np.ndarray = field(default_factory=lambda: COARSE_LO.copy())   # LPS mm of coarse[0, 0, 0]
    fine_lo: np.ndarray = field(default_factory=lambda: FINE_LO.copy())       # LPS mm of fine[0, 0, 0]
    template: int = 0                  # 0: the atlas; 1-20: a SynthSeg head (orbitai.phantoms.head_orbits)


def _ball(r: int) -> np.ndarray:
    g = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (g ** 2).sum(0) <= r * r + 0.5


def _load_atlas_lps() -> np.ndarray:
    img = sitk.DICOMOrient(sitk.ReadImage(str(data_path("spl_nac_atlas", "hncma-atlas.nrrd"))), "LPS")
    org = np.array(img.GetOrigin())
    arr = sitk.GetArrayFromImage(img)  # [z, y, x]
    i0 = np.rint(COARSE_LO - org).astype(int)
    nx, ny, nz = COARSE_SIZE
    out = np.zeros((nz, ny, nx), arr.dtype)
    sz = [slice(max(0, i0[2]), min(arr.shape[0], i0[2] + nz)), slice(max(0, i0[1]), min(arr.shape[1], i0[1] + ny)),
          slice(max(0, i0[0]), min(arr.shape[2], i0[0] + nx))]
    dst = tuple(slice(s.start - o, s.stop - o) for s, o in zip(sz, (i0[2], i0[1], i0[0])))
    out[dst] = arr[tuple(sz)]
    return out


def _coords(shape, lo, sp):
    z, y, x = (np.arange(n) * sp + lo[a] for n, a in zip(shape, (2, 1, 0)))
    return x, y, z


def _hull_mask(points: np.ndarray, shape) -> np.ndarray:
    """Voxels [z,y,x] inside the convex hull of integer points (z,y,x) (half-space test)."""
    hull = ConvexHull(points.astype(float))
    lo = points.min(0)
    hi = points.max(0) + 1
    g = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)
    eq = hull.equations.astype(np.float32)
    inside = np.ones(g.shape[:3], bool)
    gf = g.astype(np.float32)
    for e in eq:
        inside &= (gf @ e[:3] + e[3]) <= 1e-3
    m = np.zeros(shape, bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = inside
    return m


def upsample_linear(a: np.ndarray, factors) -> np.ndarray:
    """Corner-aligned separable linear upsampling by integer factors: n -> (n-1)*f+1 per axis."""
    out = a
    for ax, f in enumerate(factors):
        f = int(f)
        if f == 1:
            continue
        n = out.shape[ax]
        m = (n - 1) * f + 1
        k = np.arange(m)
        i0 = np.minimum(k // f, n - 2) if n > 1 else np.zeros(m, int)
        t = ((k - i0 * f) / f).astype(out.dtype)
        shp = [1] * out.ndim
        shp[ax] = m
        t = t.reshape(shp)
        a0 = np.take(out, i0, axis=ax)
        a1 = np.take(out, np.minimum(i0 + 1, n - 1), axis=ax)
        out = a0 + (a1 - a0) * t
    return out


@functools.lru_cache(maxsize=1)
def orbit_model() -> OrbitModel:
    """Build (once) and return the tissue model of the orbits and the head around them."""
    atlas = _load_atlas_lps()
    names = _lut_names()
    lut = np.zeros(int(atlas.max()) + 1, np.uint8)
    for v in np.unique(atlas):
        lut[v] = _classify(int(v), names.get(int(v), ""))
    T = lut[atlas]
    shape = T.shape
    x, y, z = _coords(shape, COARSE_LO, 1.0)
    X = x[None, None, :]
    Y = y[None, :, None]
    Z = z[:, None, None]

    def centroid(mask):
        idx = np.argwhere(mask)
        return np.array([x[idx[:, 2]].mean(), y[idx[:, 1]].mean(), z[idx[:, 0]].mean()])

    sides = {"left": (1, +1), "right": (2, -1)}
    gc = {s: centroid(T == v) for s, (v, _) in sides.items()}
    midx = 0.5 * (gc["left"][0] + gc["right"][0])
    info = {}
    # ---- orbit contents (fat) and bony walls
    for side, (eye, sgn) in sides.items():
        vals = [v for v in range(1, 17) if (v % 2 == 1) == (side == "left")]
        muscles = np.isin(T, [v for v in vals if v >= 5])
        midx_m = np.argwhere(muscles)
        apex_y = np.percentile(y[midx_m[:, 1]], 99)
        pts = [midx_m]
        g = np.argwhere(T == eye)
        pts.append(g[y[g[:, 1]] >= gc[side][1] - 1])
        nerve = np.argwhere(T == vals[1])
        pts.append(nerve[y[nerve[:, 1]] <= apex_y])
        hull = _hull_mask(np.concatenate(pts), shape)
        hull = ndi.binary_dilation(hull, _ball(1))
        T[hull & (T == OUTSIDE)] = FAT
        cz = z[np.argwhere(hull)[:, 0]].mean()
        cx = x[np.argwhere(hull)[:, 2]].mean()
        zz = z[np.argwhere(hull)[:, 0]]
        info[side] = dict(apex_y=apex_y, cx=cx, cz=cz, zlo=zz.min(), zhi=zz.max(), hull=hull)
        d = ndi.distance_transform_edt(~hull)
        ang = np.degrees(np.arctan2(Z - cz, (X - cx) * sgn))
        thick = np.where(np.abs(ang) < 50, 3.5, np.where(np.abs(ang) > 125, 1.0, 1.6))
        rim = np.where(np.abs(ang) < 50, gc[side][1] + 2.0, np.where(np.abs(ang) > 125, gc[side][1] - 6.0,
                                                                         gc[side][1] - 2.0))
        wall = (d > 0) & (d <= thick) & (Y >= rim) & (Y <= apex_y + 4) & (T == OUTSIDE)
        T[wall] = BONE
        # optic canal: bone ring around the nerve just behind the apex
        canal = (ndi.distance_transform_edt(T != vals[1]) <= 2.5) & (Y > apex_y - 2) & (Y < apex_y + 8) & (T == OUTSIDE)
        T[canal] = BONE
    L, R = info["left"], info["right"]
    gy = 0.5 * (gc["left"][1] + gc["right"][1])
    apex_y = 0.5 * (L["apex_y"] + R["apex_y"])
    zfloor = 0.5 * (L["zlo"] + R["zlo"])
    zroof = 0.5 * (L["zhi"] + R["zhi"])
    rng = np.random.default_rng(20240611)
    free = T == OUTSIDE

    # ---- sinuses (only where nothing else is)
    def box(x0, x1, y0, y1, z0, z1):
        return (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1) & (Z >= z0) & (Z <= z1)

    def honeycomb(mask, cell_mm3):
        idx = np.argwhere(mask)
        if len(idx) == 0:
            return mask
        n = max(2, int(len(idx) / cell_mm3))
        seeds = idx[rng.choice(len(idx), n, replace=False)]

        _, lab = cKDTree(seeds).query(idx)
        cells = np.zeros(shape, np.int32)
        cells[mask] = lab + 1
        edge = np.zeros(shape, bool)
        for ax in range(3):
            diff = np.diff(cells, axis=ax) != 0
            sl = [slice(None)] * 3
            sl[ax] = slice(1, None)
            edge[tuple(sl)] |= diff
        return mask & ~edge

    # medial edge of each orbit per row is approximated by the hull's medial extent
    xl_med = x[np.argwhere(L["hull"])[:, 2]].min()
    xr_med = x[np.argwhere(R["hull"])[:, 2]].max()
    eth = box(xr_med, xl_med, gy - 6, apex_y - 8, zfloor + 2, zroof - 3) & free
    air = honeycomb(eth, 120.0)
    nasal = box(midx - 13, midx + 13, gy - 16, apex_y - 6, zfloor - 32, zfloor + 2) & free
    turb = np.zeros(shape, bool)
    for zc in (zfloor - 24, zfloor - 14, zfloor - 5):
        for sgn in (-1, 1):
            turb |= ((X - (midx + sgn * 11)) / 4.0) ** 2 + ((Z - zc) / 3.0) ** 2 <= 1
    air |= nasal & ~turb & (np.abs(X - midx) > 0.8)
    T[nasal & turb] = SOFT
    for side, sgn in (("left", 1), ("right", -1)):
        cx = info[side]["cx"]
        x0, x1 = sorted((midx + sgn * 14, cx + sgn * 15))
        xm = 0.5 * (x0 + x1)
        air |= (((X - xm) / (0.5 * (x1 - x0))) ** 2 + ((Y - gy - 6) / 16.0) ** 2
                + ((Z - zfloor + 19) / 15.5) ** 2 <= 1) & (Z <= zfloor - 3) & free
    sph = box(midx - 13, midx + 13, apex_y - 4, apex_y + 16, zfloor - 16, zfloor + 8) & free
    air |= honeycomb(sph, 2500.0)
    air |= box(midx - 16, midx + 16, gy - 14, gy - 3, zroof + 3, zroof + 22) & free & \
        (((X - midx) / 16) ** 2 + ((Z - zroof - 12) / 10) ** 2 <= 1)
    T[air] = AIR
    sinus_wall = ndi.binary_dilation(air, _ball(1)) & (T == OUTSIDE)
    T[sinus_wall] = BONE
    T[box(midx - 0.8, midx + 0.8, gy - 16, apex_y, zfloor - 32, zroof) & (T == OUTSIDE)] = BONE

    # ---- cranium: CSF then skull around the brain
    brain = np.isin(T, [GM, WM, CSF, NEURAL])
    db = ndi.distance_transform_edt(~brain)
    T[(db > 0) & (db <= 1.8) & (T == OUTSIDE)] = CSF
    T[(db > 1.8) & (db <= 8.0) & (T == OUTSIDE)] = BONE

    # ---- head outline, skin and subcutaneous fat
    body = T != OUTSIDE
    globes = np.isin(T, [1, 2])
    body |= ndi.binary_dilation(globes, _ball(2)) & (Y < gy)
    small = body[::2, ::2, ::2]
    small = ndi.binary_closing(np.pad(small, 6), _ball(5))[6:-6, 6:-6, 6:-6]
    small = np.stack([ndi.binary_fill_holes(s) for s in small])
    head = upsample_linear(small.astype(np.float32), (2, 2, 2))[: shape[0], : shape[1], : shape[2]] > 0.5
    pad = [(0, shape[i] - head.shape[i]) for i in range(3)]
    head = np.pad(head, pad, mode="edge") | body
    head = ndi.binary_dilation(head, _ball(3))
    dh = ndi.distance_transform_edt(head)
    inner = head & (T == OUTSIDE)
    T[inner & (dh <= 2.0)] = SOFT
    T[inner & (dh > 2.0) & (dh <= 6.0)] = FAT
    T[inner & (dh > 6.0)] = SOFT

    fine = make_fine(T)
    model = OrbitModel(coarse=T, fine=fine, globe_centre=gc, globe_radius={}, nerve_mid={},
                       orbit_centre=np.array([midx, gy + 12.0, 0.5 * (gc["left"][2] + gc["right"][2])]))
    finish_fine(model)
    return model


def make_fine(T: np.ndarray) -> np.ndarray:
    """0.5 mm tissue map over the orbits with smooth boundaries (per-class linear upsampling) of a coarse map whose
    fine box lies where the atlas's does (``FINE_LO - COARSE_LO`` from its first voxel)."""
    i0 = np.rint(FINE_LO - COARSE_LO).astype(int)
    n = [int(e) for e in FINE_EXTENT]
    sub = T[i0[2]: i0[2] + n[2] + 1, i0[1]: i0[1] + n[1] + 1, i0[0]: i0[0] + n[0] + 1]
    out_shape = tuple(2 * s - 1 for s in sub.shape)
    best = np.full(out_shape, -1.0, np.float32)
    cls = np.zeros(out_shape, np.uint8)
    for c in np.unique(sub):
        m = ndi.gaussian_filter((sub == c).astype(np.float32), 0.45)
        up = upsample_linear(m, (2, 2, 2))
        upd = up > best
        best[upd] = up[upd]
        cls[upd] = c
    return cls


def orbit_cone(F: np.ndarray, lo: np.ndarray, side: str) -> np.ndarray:
    """One orbit's muscle cone on a 0.5 mm map whose first voxel lies at ``lo``: the convex hull of its muscles, the
    back half of its globe and its nerve up to the apex (the hull the atlas's orbital fat is drawn in)."""
    x, y, z = _coords(F.shape, lo, FINE_SP)
    eye = 1 if side == "left" else 2
    vals = [v for v in range(1, 17) if (v % 2 == 1) == (side == "left")]
    muscles = np.argwhere(np.isin(F, [v for v in vals if v >= 5]))
    apex_y = np.percentile(y[muscles[:, 1]], 99)
    g = np.argwhere(F == eye)
    gy = y[g[:, 1]].mean()
    nerve = np.argwhere(F == vals[1])
    pts = np.concatenate([muscles, g[y[g[:, 1]] >= gy - 0.5], nerve[y[nerve[:, 1]] <= apex_y]])
    return ndi.binary_dilation(_hull_mask(pts, F.shape), _ball(2))


def fill_orbit_fat(F: np.ndarray, lo: np.ndarray, content: tuple[int, ...]) -> None:
    """Orbital fat (in place) where ``F`` holds one of ``content`` inside either orbit's :func:`orbit_cone`."""
    for side in ("left", "right"):
        F[orbit_cone(F, lo, side) & np.isin(F, content)] = FAT


def finish_fine(model: OrbitModel, peel_lateral: bool = True) -> None:
    """Sclera and lens inside each globe, the globes' centres and radii, the nerves' midpoints and each muscle's
    geometry for thickening; ``peel_lateral``: thin the atlas's bulky lateral recti (see below)."""
    F = model.fine
    x, y, z = _coords(F.shape, model.fine_lo, FINE_SP)
    for side, eye, lens, sclera, nerve in (("left", 1, LENS_L, SCLERA_L, 3), ("right", 2, LENS_R, SCLERA_R, 4)):
        g = F == eye
        idx = np.argwhere(g)
        c = np.array([x[idx[:, 2]].mean(), y[idx[:, 1]].mean(), z[idx[:, 0]].mean()])
        vol = len(idx) * FINE_SP ** 3
        r = (3 * vol / (4 * np.pi)) ** (1 / 3)
        model.globe_centre[side] = c
        model.globe_radius[side] = r
        lo = idx.min(0) - 2
        hi = idx.max(0) + 3
        bx = tuple(slice(a, b) for a, b in zip(lo, hi))
        gin = ndi.distance_transform_edt(g[bx]) * FINE_SP
        sub = F[bx]
        sub[(gin > 0) & (gin <= 0.9)] = sclera
        # lens: biconvex ellipsoid behind the cornea on the antero-posterior axis
        ant_y = y[idx[:, 1]].min()
        lc = np.array([c[0] + (0.6 if side == "left" else -0.6), ant_y + 5.2, c[2]])
        Zs, Ys, Xs = np.meshgrid(z[bx[0]], y[bx[1]], x[bx[2]], indexing="ij")
        ell = ((Xs - lc[0]) / 4.6) ** 2 + ((Ys - lc[1]) / 2.0) ** 2 + ((Zs - lc[2]) / 4.6) ** 2 <= 1
        sub[ell & g[bx]] = lens
        n = np.argwhere(F == nerve)
        ny = y[n[:, 1]]
        sel = n[np.abs(ny - np.median(ny[ny < c[1] + 40])) < 3] if np.any(ny < c[1] + 40) else n
        model.nerve_mid[side] = np.array([x[sel[:, 2]].mean(), y[sel[:, 1]].mean(), z[sel[:, 0]].mean()])
    # the atlas' lateral recti are bulky (1.3-1.5 cm3); peel one fine layer off to bring them
    # to the middle of the normal range reported on CT (about 0.7-1.2 cm3)
    for v in (11, 12) if peel_lateral else ():
        m = F == v
        F[m & ~ndi.binary_erosion(m)] = FAT
    for v in range(5, 17):
        m = F == v
        idx = np.argwhere(m)
        pad = 8
        lo = np.maximum(idx.min(0) - pad, 0)
        hi = np.minimum(idx.max(0) + pad + 1, F.shape)
        bx = cast("tuple[slice, slice, slice]", tuple(slice(a, b) for a, b in zip(lo, hi)))
        d = (ndi.distance_transform_edt(~m[bx]) * FINE_SP).astype(np.float32)
        # position along the muscle: projection on its principal axis (posterior = apex = 0)
        pts = idx.astype(float)
        mu = pts.mean(0)
        _, _, vt = np.linalg.svd(pts - mu, full_matrices=False)
        ax = vt[0] if vt[0][1] < 0 else -vt[0]   # points anteriorly (decreasing y index)
        proj = (pts - mu) @ ax
        p0, p1 = proj.min(), proj.max()
        G = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)
        s = ((G - mu) @ ax - p0) / max(p1 - p0, 1e-6)
        model.muscles.append(MuscleGeom(v, bx, d, np.clip(s, 0, 1).astype(np.float32)))
