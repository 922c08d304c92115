"""Where the orbits lie in a large scan, found on a coarse grid before the network runs on its own (issue 66).

Within the front of the head (:func:`orbitai.orbit.rules.orbit_search_box`, every slice from foot to head) a 1 mm
whole-head MRI still gives the network about six times the voxels of an orbit protocol's field of view. Here the same
network runs once, unmirrored, on the front :data:`FRONT_MM` of that search box resampled :data:`COARSE` times coarser
(1.2 mm for the MRI model's 0.8 mm: under a third of the voxels; at 2x, 1.6 mm, a globe looks too small to it and one
of a head's two was missed); the pair of eyeballs it finds there gives a box around both orbits
(:data:`ORBIT_MARGIN_MM` around the eyeballs: the recti, the optic nerves back to the apex), and the full network (fine
grid, mirrored) runs on that box only. Done only where the search box holds more than :data:`LOCATE_ABOVE` times the
box an orbit pair needs (a scan of the orbits alone is left as it was), and only when the coarse pass finds a
plausible pair (two globes side by side); otherwise the search box is kept. Called by the engine's focus
(:data:`orbitai.engine.inference.Focus`) in :func:`orbitai.orbit.segment.segment`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.boxes import Region
from orbitai.engine.inference import Focus, cpu_channels_last, sliding_window
from orbitai.orbit.rules import eyeball_class, orbit_search_box

#: The coarse grid's voxels, in model voxels along each axis.
COARSE = 1.5
#: How far behind the front of the head the coarse pass looks (mm): a globe's back lies 45-60 mm behind the nose tip.
FRONT_MM = 90.0
#: Around the pair of eyeballs found (mm): below and above, in front, behind (to the orbital apex and the optic
#: nerves' canal), and beyond each side.
ORBIT_MARGIN_MM = {"si": 18.0, "front": 10.0, "back": 55.0, "lr": 15.0}
#: An orbit pair's box is about 60 x 90 x 120 mm (S-I, A-P, L-R); the coarse pass runs only when the search box holds
#: more than LOCATE_ABOVE times that.
ORBIT_PAIR_MM3 = 60.0 * 90.0 * 120.0
LOCATE_ABOVE = 2.0
#: A globe on the coarse grid (cm3): at least this much of one (an adult globe is 6-9 cm3); two such, their centres
#: 40-90 mm apart left to right and within 20 mm of each other up-down and front-back, are a pair.
MIN_GLOBE_CM3 = 1.5
PAIR_LR_MM, PAIR_OFF_MM = (40.0, 90.0), 20.0
#: What the network's window sides must be divisible by (four 2x poolings).
DIVISOR = 16


def _pair(eye: np.ndarray, spacing_kji: np.ndarray) -> list[np.ndarray] | None:
    """The [lo, hi] index corners (k, j, i) of the two largest eyeball components of ``eye`` when they are a pair
    (see :data:`MIN_GLOBE_CM3`), else None."""
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(eye.astype(np.uint8))),
                               sortByObjectSize=True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(cc)
    voxel_cm3 = float(np.prod(spacing_kji)) / 1000.0
    if not stats.HasLabel(2) or stats.GetNumberOfPixels(2) * voxel_cm3 < MIN_GLOBE_CM3:
        return None
    centres = [np.asarray(stats.GetCentroid(lab))[::-1] * spacing_kji for lab in (1, 2)]     # (k, j, i) in mm
    gap = np.abs(centres[0] - centres[1])
    if not (PAIR_LR_MM[0] <= gap[2] <= PAIR_LR_MM[1] and gap[0] <= PAIR_OFF_MM and gap[1] <= PAIR_OFF_MM):
        return None
    corners = []
    for lab in (1, 2):
        x, y, z, sx, sy, sz = stats.GetBoundingBox(lab)
        corners.append(np.array([[z, y, x], [z + sz, y + sy, x + sx]]))
    both = np.concatenate(corners)
    return [both.min(0), both.max(0)]


def locate_orbits(norm: np.ndarray, spacing: Sequence[float], search: Region | None, model: torch.nn.Module,
                  eyeball_class: int) -> Region | None:
    """The box of the model grid ``norm`` ([k, j, i] = [S, P, L], ``spacing`` x, y, z) where the network needs to
    run: around the eyeballs a coarse pass of ``model`` finds within ``search`` (None: the whole grid), or
    ``search`` itself (see the module docstring)."""
    region = search or (slice(0, norm.shape[0]), slice(0, norm.shape[1]), slice(0, norm.shape[2]))
    sp = np.array([float(spacing[2]), float(spacing[1]), float(spacing[0])])        # k, j, i
    size = np.array([s.stop - s.start for s in region])
    if eyeball_class < 1 or float(np.prod(size * sp)) <= LOCATE_ABOVE * ORBIT_PAIR_MM3:
        return search
    front = (region[0], slice(region[1].start, min(region[1].stop, region[1].start + int(round(FRONT_MM / sp[1])))),
             region[2])
    x = torch.from_numpy(np.ascontiguousarray(norm[front]))[None, None]
    shape = [max(1, int(round(n / COARSE))) for n in x.shape[2:]]
    device = next(model.parameters()).device
    model, channels_last = cpu_channels_last(model, device)      # as the fine pass: 1.8 s instead of 2.3 s here
    with torch.inference_mode():
        coarse = torch.nn.functional.interpolate(x, size=shape, mode="trilinear", align_corners=False)
        # windows as small as the network takes (it is fully convolutional: sides divisible by DIVISOR), not padded
        # to its training patch (the front of a head is 75 coarse voxels deep: 80, not 96)
        logits = sliding_window(coarse.to(device), model, (DIVISOR,) * 3, "overlap", channels_last=channels_last)
        eye = (logits[0].argmax(0) == eyeball_class).cpu().numpy()
    step = np.array(x.shape[2:]) / np.array(shape)                 # fine voxels per coarse voxel, per axis
    found = _pair(eye, sp * step)
    if found is None:
        return search
    lo, hi = (c * step + np.array([s.start for s in front]) for c in found)
    margin_lo = np.array([ORBIT_MARGIN_MM["si"], ORBIT_MARGIN_MM["front"], ORBIT_MARGIN_MM["lr"]]) / sp
    margin_hi = np.array([ORBIT_MARGIN_MM["si"], ORBIT_MARGIN_MM["back"], ORBIT_MARGIN_MM["lr"]]) / sp
    box = []
    for ax, s in enumerate(region):
        a = max(s.start, int(np.floor(lo[ax] - margin_lo[ax])))
        b = min(s.stop, int(np.ceil(hi[ax] + margin_hi[ax])))
        box.append(slice(a, b))
    return box[0], box[1], box[2]


def orbit_focus(model: torch.nn.Module, structures: Sequence[str], locate: bool = True) -> Focus:
    """The engine's focus for the orbit network ``model`` (of ``structures``): the front of the head
    (:func:`orbitai.orbit.rules.orbit_search_box`), narrowed to the orbit pair by :func:`locate_orbits` (``locate``).
    What the segmentation and the annotation tools' model prior both run the network on."""
    eye = eyeball_class(structures)

    def focus(norm: np.ndarray, spacing: Sequence[float]) -> Region | None:
        box = orbit_search_box(norm, spacing)
        return locate_orbits(norm, spacing, box, model, eye) if locate else box

    return focus
