"""An acquisition's plane, and a 3D acquisition reformatted to another plane exactly (issue 66).

A model made for one plane (TAO's axial slices, IVGC's coronal ones) can take a 3D acquisition in any plane: its
voxels are near-isotropic, so the same voxels reordered (SimpleITK's ``DICOMOrient``: a permutation and flips of the
axes, no interpolation) are slices in the model's plane. A 2D acquisition (thick slices) in another plane cannot be
reformatted into the slices the model needs: :func:`reformat_to` refuses it in one line that says what to load.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk

from orbitai.io.volume import Volume, VolumeError

__all__ = ["PLANES", "MAX_ISO_MM", "MAX_ISO_RATIO", "acquisition_plane", "in_plane", "near_isotropic", "plane_refusal",
           "reorient", "reformat_to", "mm_text"]

#: Each plane: the LPS axis its slices are stacked along, and the orientation (``DICOMOrient`` code: where i, j, k
#: point) a volume is reformatted to: axial as a NIfTI/DICOM axial series (i left, j posterior, k superior), coronal
#: as the phantoms' and scanners' coronal series (i left, j inferior, k posterior), sagittal (i posterior, j inferior,
#: k left).
PLANES = {"sagittal": (0, "PIL"), "coronal": (1, "LIP"), "axial": (2, "LPS")}
#: A 3D (near-isotropic) acquisition, which may be reformatted to any plane: its voxels' longest side at most
#: ``MAX_ISO_MM`` and at most ``MAX_ISO_RATIO`` x their shortest. A 2D protocol's slices are 2-5 mm, 3-10 x its
#: in-plane pixels; a 3D one's 0.4-1.2 mm with an aspect of 1-1.3.
MAX_ISO_MM = 1.5
MAX_ISO_RATIO = 1.5


def acquisition_plane(vol: Volume) -> str:
    """The plane of ``vol``'s slices (its k axis the slice normal): the LPS axis that k is closest to."""
    lps = int(np.argmax(np.abs(vol.direction[:, 2])))
    return next(p for p, (axis, _) in PLANES.items() if axis == lps)


def in_plane(vol: Volume, plane: str) -> bool:
    """Whether ``vol``'s slices lie in ``plane``: of its three axes, k is the one closest to the plane's normal,
    within 45 degrees."""
    normal = np.abs(vol.direction[PLANES[plane][0], :])
    return int(np.argmax(normal)) == 2 and normal[2] >= np.cos(np.pi / 4)


def near_isotropic(vol: Volume) -> bool:
    """Whether ``vol`` is a 3D acquisition that may be reformatted (:data:`MAX_ISO_MM`, :data:`MAX_ISO_RATIO`)."""
    sp = np.asarray(vol.spacing, float)
    return bool(sp.max() <= MAX_ISO_MM and sp.max() <= MAX_ISO_RATIO * sp.min())


def reorient(vol: Volume, code: str) -> Volume:
    """``vol`` with its axes permuted and flipped to the orientation ``code`` (``DICOMOrient``'s, e.g. "LPS"): the
    same voxels, values and physical space; no interpolation. Its metadata are kept."""
    out = Volume.from_sitk(sitk.DICOMOrient(vol.to_sitk(), code))
    return Volume(out.array, out.spacing, out.origin, out.direction, dict(vol.metadata))


def mm_text(value: float, limit: float = MAX_ISO_MM, digits: int = 1) -> str:
    """``value`` (mm) with ``digits`` decimals, more where fewer would round a value above ``limit`` down to it (a
    1.51 mm voxel read as "1.5 mm", the limit it is refused for exceeding); trailing zeros beyond ``digits`` dropped."""
    for d in range(digits, 5):
        text = f"{value:.{d}f}"
        if not value > limit or float(text) > limit:
            return text
    return f"{value:.4f}"


def _mm(vol: Volume) -> str:
    sp = [float(s) for s in vol.spacing]
    shown = [mm_text(s, digits=2).rstrip("0").rstrip(".") for s in sp]
    return f"{shown[0]} mm" if max(sp) - min(sp) < 0.01 else " x ".join(shown) + " mm"


def plane_refusal(vol: Volume, plane: str, who: str) -> Optional[str]:
    """Why ``vol`` cannot be given to ``who`` (a model that needs ``plane``): a 2D acquisition (thick slices) in
    another plane, which no reformatting turns into ``plane``'s slices; None when its slices lie in ``plane`` or it
    is a 3D acquisition (:func:`near_isotropic`), which :func:`reformat_to` reformats."""
    if in_plane(vol, plane) or near_isotropic(vol):
        return None
    have = acquisition_plane(vol)
    thick = mm_text(float(vol.spacing[2]))
    what = (f"an {have}" if have[0] in "aeiou" else f"a {have}") if have != plane else f"a tilted {have}"
    return (f"The image is {what} acquisition with {thick} mm slices ({_mm(vol)}); {who} needs {plane} slices "
            f"(the paper's plane), and reformatting {thick} mm {have} slices to {plane} cannot give them: load "
            f"the {plane} series, or a 3D acquisition (voxels at most {MAX_ISO_MM:g} mm), which is reformatted.")


def reformat_to(vol: Volume, plane: str, who: str, labels: Optional[Volume] = None
                ) -> tuple[Volume, Optional[Volume], str]:
    """(image, labels, note) in ``plane``: unchanged with an empty note when ``vol``'s slices lie in it already
    (:func:`in_plane`); a 3D acquisition in another plane reformatted to it (:func:`reorient`, ``labels`` too when
    given), the note saying so ("axial from sagittal slices (0.49 mm)"); a 2D one in another plane refused in one
    line naming ``who`` (the model that needs ``plane``: :func:`plane_refusal`)."""
    if in_plane(vol, plane):
        return vol, labels, ""
    why = plane_refusal(vol, plane, who)
    if why:
        raise VolumeError(why)
    code = PLANES[plane][1]
    moved = reorient(vol, code)
    note = f"{plane} from {acquisition_plane(vol)} slices ({_mm(vol)})"
    return moved, (reorient(labels, code) if labels is not None else None), note
