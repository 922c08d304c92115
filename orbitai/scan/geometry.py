"""Which voxel spacings a scan may have: what its header can be trusted with, and what a 2-core, 24 GB machine can
serve. Judged from the header alone (no voxel read), so a scan is refused in one line before any heavy work.

A 10 mm-voxel FLAIR (inside the old 0.05-20 mm range) took ``neuro lesions`` 388 s and 10.8 GB before it said
"No head found", and ``seg predict`` on 19 mm voxels ran out of memory: such a header puts a head-sized matrix over
metres, which every step then resamples onto its millimetre grid. No head scan has pixels coarser than
:data:`MAX_PIXEL_MM` or slices thicker than :data:`MAX_SLICE_MM` (a clinical 2D FLAIR's are 0.4-1.2 mm and 3-8 mm),
and no head needs a field of view beyond :data:`MAX_FIELD_MM` (a radiotherapy planning CT of the head and neck spans
500 x 500 x 600 mm), so nothing a model could read is refused.
"""
from __future__ import annotations

from typing import Optional

from orbitai.io.volume import Volume, VolumeError

__all__ = ["TRUSTED_SPACING_MM", "MAX_PIXEL_MM", "MAX_SLICE_MM", "MAX_FIELD_MM", "spacing_refusal", "check_spacing"]

#: Spacing (mm) a head scan's header can be trusted with; outside it the header is wrong (or the image is not a
#: clinical scan), and a model would see the anatomy at the wrong size.
TRUSTED_SPACING_MM = (0.05, 20.0)
#: The two finest axes (the pixels of a 2D acquisition, all three of a 3D one) at most this (mm).
MAX_PIXEL_MM = 4.0
#: The coarsest axis (the slices) at most this (mm).
MAX_SLICE_MM = 10.0
#: Each axis's extent (voxels x spacing) at most this (mm).
MAX_FIELD_MM = 1000.0


def _mm(values) -> str:
    return " x ".join(f"{float(v):.4g}" for v in values)


def spacing_refusal(vol: Volume, what: str = "the image") -> Optional[str]:
    """Why ``vol``'s voxel spacing (or field of view) cannot be served (one line naming ``what``), or None."""
    lo, hi = TRUSTED_SPACING_MM
    sp = [float(s) for s in vol.spacing]
    if min(sp) < lo or max(sp) > hi:
        return (f"{what} has a voxel spacing of {_mm(sp)} mm, outside {lo:g}-{hi:g} mm: its header's spacing cannot be "
                "right for a head scan. Fix the spacing in the header (or export the image again).")
    pixel, slices = sorted(sp)[1], max(sp)
    if pixel > MAX_PIXEL_MM or slices > MAX_SLICE_MM:
        return (f"{what} has voxels of {_mm(sp)} mm, too coarse for a head scan (pixels up to {MAX_PIXEL_MM:g} mm and "
                f"slices up to {MAX_SLICE_MM:g} mm are read): check the spacing in its header, or load the scan at "
                "its acquired resolution.")
    extent = [n * s for n, s in zip(vol.size_xyz, sp)]
    if max(extent) > MAX_FIELD_MM:
        return (f"{what} spans {_mm(round(e) for e in extent)} mm ({_mm(vol.size_xyz)} voxels of {_mm(sp)} mm), more "
                f"than the {MAX_FIELD_MM:g} mm a head scan's field of view needs: check the spacing in its header, or "
                "crop it to the head.")
    return None


def check_spacing(vol: Volume, what: str = "the image") -> None:
    """Raise :class:`~orbitai.io.VolumeError` (one line, :func:`spacing_refusal`) when ``vol``'s voxel spacing or
    field of view cannot be a head scan's or served."""
    why = spacing_refusal(vol, what)
    if why:
        raise VolumeError(why)
