"""Stand-in orbital CT phantom for the annotation tests and benchmark.

Used only until ``orbitai.phantoms`` exists (then :func:`orbit_ct` delegates to it). It turns the
real SPL/NAC head-and-neck atlas label map (../shared/data/spl_nac_atlas, 1 mm) into a CT-like
image: orbital fat -100 HU around the muscles, muscle 50 HU, vitreous 10 HU, optic nerve 30 HU,
other labelled soft tissue / brain 35-40 HU, air outside the head -1000 HU, a slight blur
(partial volume) and Gaussian noise. Labels are returned in the orbitai.labels scheme.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.io import Volume

ATLAS = Path(os.environ.get("ORBITAI_SHARED", Path(__file__).resolve().parents[3] / "shared")) \
    / "data" / "spl_nac_atlas" / "hncma-atlas.nrrd"

#: atlas value -> orbit scheme value (orbitai/labels.py)
ATLAS_TO_SCHEME = {4027: 1, 4028: 2, 77: 3, 215: 4, 4013: 5, 4014: 6, 4017: 7, 4018: 8,
                   4011: 9, 4012: 10, 4019: 11, 4020: 12, 4015: 13, 4016: 14, 4021: 15, 4022: 16}
#: scheme value -> mean HU
SCHEME_HU = {1: 10.0, 2: 10.0, 3: 30.0, 4: 30.0}
SCHEME_HU.update({v: 50.0 for v in range(5, 17)})


def have_atlas() -> bool:
    return ATLAS.exists()


def _phantoms_available() -> bool:
    try:
        import orbitai.phantoms  # noqa: F401
        return hasattr(orbitai.phantoms, "orbit_case")
    except ImportError:
        return False


@functools.lru_cache(maxsize=2)
def _atlas_lps() -> tuple[np.ndarray, tuple]:
    img = sitk.DICOMOrient(sitk.ReadImage(str(ATLAS)), "LPS")
    return sitk.GetArrayFromImage(img), (img.GetSpacing(), img.GetOrigin())


def orbit_ct(seed: int = 0, slices: int = 64, noise_hu: float = 12.0, blur_mm: float = 0.6,
             crop: str = "both") -> tuple[Volume, Volume]:
    """(image, labels) of the stand-in orbit CT.

    ``crop='both'``: the full 256 x 256 axial plane, ``slices`` axial slices centred on the orbits
    (the 256x256x64 benchmark working region). ``crop='left'``/``'right'``: a small box around one
    orbit (fast unit tests).
    """
    atlas, (spacing, origin) = _atlas_lps()
    lab = np.zeros(atlas.shape, np.uint8)
    for a, s in ATLAS_TO_SCHEME.items():
        lab[atlas == a] = s
    orbit = np.argwhere(lab > 0)
    zc = int(round(orbit[:, 0].mean()))
    z0 = max(0, min(atlas.shape[0] - slices, zc - slices // 2))
    box = (slice(z0, z0 + slices), slice(None), slice(None))
    if crop in ("left", "right"):
        vals = [v for v in ATLAS_TO_SCHEME.values() if (v % 2 == 1) == (crop == "left")]
        pts = np.argwhere(np.isin(lab, vals))
        lo = np.maximum(pts.min(0) - 6, 0)
        hi = np.minimum(pts.max(0) + 7, atlas.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    a = atlas[box]
    lab = lab[box]
    rng = np.random.default_rng(seed)
    # Head = filled non-zero atlas; label 0 inside the head is taken as (orbital) fat.
    # The atlas labels no bone, so the orbits open to the outside: fill per axial slice and
    # treat everything within 8 mm of an orbit structure as orbital fat as well.
    closed = ndi.binary_closing(a > 0, structure=np.ones((1, 3, 3), bool), iterations=4)
    head = np.stack([ndi.binary_fill_holes(s) for s in closed])
    head |= ndi.binary_dilation(lab > 0, iterations=8)
    img = np.where(head, -100.0, -1000.0).astype(np.float32)
    img[(a > 0) & (lab == 0)] = 38.0
    for s, hu in SCHEME_HU.items():
        img[lab == s] = hu
    sig = [blur_mm / sp for sp in spacing[::-1]]
    img = ndi.gaussian_filter(img, sig) + rng.normal(0.0, noise_hu, img.shape).astype(np.float32)
    org = np.asarray(origin) + np.array([b.start or 0 for b in box[::-1]], float) * np.asarray(spacing)
    return (Volume(img.astype(np.float32), spacing, tuple(org)),
            Volume(lab, spacing, tuple(org)))


def orbit_case(seed: int = 0, crop: str = "both", **kw) -> tuple[Volume, Volume]:
    """orbitai.phantoms.orbit_case when it exists (CT), else the stand-in above."""
    if _phantoms_available() and crop == "both" and not os.environ.get("ORBITAI_ANNOTATE_STANDIN"):
        from orbitai import phantoms
        case = phantoms.orbit_case(seed, modality="ct")
        return case.image, case.labels
    return orbit_ct(seed=seed, crop=crop, **kw)
