"""Where the orbits lie in a large scan, found on a coarse grid before the network runs on its own (issue 66).

Within the front of the head (:func:`orbitai.orbit.rules.orbit_search_box`, every slice from foot to head) a 1 mm
whole-head MRI still gives the network about six times the voxels of an orbit protocol's field of view. Here the same
network runs once, unmirrored, on a grid :data:`COARSE` times coarser (1.2 mm for the MRI model's 0.8 mm: under a
third of the voxels; at 2x, 1.6 mm, a globe looks too small to it and one of a head's two was missed): first where the
globes most likely lie (:data:`SLAB_MM` around the head's most anterior point), then, if no pair was found clear of
that box's edges, over the front :data:`FRONT_MM` of the search box. The pair of eyeballs it finds gives a box around
both orbits (:data:`ORBIT_MARGIN_MM` around the eyeballs: the recti, the optic nerves back to the apex), and the full
network (fine grid, mirrored) runs on that box only. Done only where the search box holds more than
:data:`LOCATE_ABOVE` times the box an orbit pair needs (a scan of the orbits alone is left as it was), and only when
the coarse pass finds a plausible pair (two globes side by side); otherwise the search box is kept.

:func:`orbit_focus` is the engine's focus (:class:`orbitai.engine.focus.Focus`) for the segmentation
(:func:`orbitai.orbit.segment.segment`) and the annotation tools' model prior: the engine hands it the scan already on
the coarse grid (its ``grid_factor``) and resamples only the box it returns onto the model's grid.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.boxes import Region
from orbitai.engine.focus import Focus
from orbitai.engine.inference import cpu_channels_last
from orbitai.engine.windows import sliding_window
from orbitai.orbit.rules import HEAD_ABOVE, eyeball_class, orbit_search_box

#: The coarse grid's voxels, in model voxels along each axis.
COARSE = 1.5
#: How far behind the front of the head the coarse pass looks (mm): a globe's back lies 45-60 mm behind the nose tip.
FRONT_MM = 90.0
#: The coarse pass looks first at the slices from SLAB_MM[0] below to SLAB_MM[1] above the head's most anterior point
#: (a plane of the head at least FRONT_WIDTH_MM wide across: mostly the nose tip, with the globes' centres 30-40 mm
#: above it on the 20 SynthSeg heads; the forehead where the nose lies out of the scan, the globes then below it),
#: LIKELY_HALF_WIDTH_MM either side of the head's middle (a globe's outer edge lies
#: 40-50 mm from it), and keeps a pair found there when it lies SLAB_EDGE_MM clear of the cut edges; otherwise it
#: looks at the whole front of the head, as it did before (the first look is half of that on a head with its neck).
SLAB_MM, LIKELY_HALF_WIDTH_MM, FRONT_WIDTH_MM, SLAB_EDGE_MM = (50.0, 80.0), 60.0, 8.0, 8.0
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


def _coarse_pair(norm: np.ndarray, part: Region, sp: np.ndarray, coarse: float, model: torch.nn.Module,
                 eyeball_class: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The [lo, hi] corners (grid indices k, j, i) of the eyeball pair a coarse pass of ``model`` finds in the box
    ``part`` of ``norm`` (``sp``: its spacing k, j, i), or None."""
    x = torch.from_numpy(np.ascontiguousarray(norm[part]))[None, None]
    shape = [max(1, int(round(n / coarse))) for n in x.shape[2:]]
    device = next(model.parameters()).device
    model, channels_last = cpu_channels_last(model, device)      # as the fine pass: 1.8 s instead of 2.3 s here
    with torch.inference_mode():
        if list(x.shape[2:]) != shape:
            x = torch.nn.functional.interpolate(x, size=shape, mode="trilinear", align_corners=False)
        # windows as small as the network takes (it is fully convolutional: sides divisible by DIVISOR), not padded
        # to its training patch (the front of a head is 75 coarse voxels deep: 80, not 96)
        logits = sliding_window(x.to(device), model, (DIVISOR,) * 3, "overlap", channels_last=channels_last)
        eye = (logits[0].argmax(0) == eyeball_class).cpu().numpy()
    step = np.array([s.stop - s.start for s in part]) / np.array(shape)    # grid voxels per coarse voxel, per axis
    found = _pair(eye, sp * step)
    if found is None:
        return None
    lo, hi = (c * step + np.array([s.start for s in part]) for c in found)
    return lo, hi


def _likely_box(norm: np.ndarray, front: Region, sp: np.ndarray) -> Region | None:
    """Where in ``front`` the globes most likely lie: the slices of :data:`SLAB_MM` around the head's most anterior
    point, :data:`LIKELY_HALF_WIDTH_MM` either side of the middle; None when that is most of ``front``."""
    head = norm[front] > HEAD_ABOVE                                  # as orbit_search_box: its front part only
    wide = head.sum(2) * sp[2] >= FRONT_WIDTH_MM                    # (k, j): the head at least this wide across
    has = wide.any(1)
    if not has.any():
        return None
    first = np.where(has, wide.argmax(1), wide.shape[1])             # the most anterior plane of each slice
    k_front = front[0].start + int(np.median(np.flatnonzero(first == first.min())))
    below, above = (int(round(mm / sp[0])) for mm in SLAB_MM)
    mid, half = 0.5 * (front[2].start + front[2].stop), LIKELY_HALF_WIDTH_MM / sp[2]
    box = (slice(max(front[0].start, k_front - below), min(front[0].stop, k_front + above)), front[1],
           slice(max(front[2].start, int(np.floor(mid - half))), min(front[2].stop, int(np.ceil(mid + half)))))
    share = np.prod([b.stop - b.start for b in box]) / np.prod([f.stop - f.start for f in front])
    return box if share < 0.7 else None


def _clear_of_cuts(found: tuple[np.ndarray, np.ndarray], box: Region, front: Region, sp: np.ndarray) -> bool:
    """Whether the pair ``found`` in ``box`` lies :data:`SLAB_EDGE_MM` clear of every edge where ``box`` cuts
    ``front`` (slices and sides): a globe cut there may be larger than seen."""
    lo, hi = found
    for ax in (0, 2):
        edge = SLAB_EDGE_MM / sp[ax]
        if box[ax].start > front[ax].start and lo[ax] < box[ax].start + edge:
            return False
        if box[ax].stop < front[ax].stop and hi[ax] > box[ax].stop - edge:
            return False
    return True


def locate_orbits(norm: np.ndarray, spacing: Sequence[float], search: Region | None, model: torch.nn.Module,
                  eyeball_class: int, coarse: float | None = None) -> Region | None:
    """The box of the grid ``norm`` ([k, j, i] = [S, P, L], ``spacing`` x, y, z) where the network needs to
    run: around the eyeballs a coarse pass of ``model`` finds within ``search`` (None: the whole grid), or
    ``search`` itself (see the module docstring). The pass runs ``coarse`` times coarser than ``norm`` (None:
    :data:`COARSE`, for ``norm`` on the model grid; 1: ``norm`` is already the coarse grid)."""
    coarse = COARSE if coarse is None else float(coarse)
    region = search or (slice(0, norm.shape[0]), slice(0, norm.shape[1]), slice(0, norm.shape[2]))
    sp = np.array([float(spacing[2]), float(spacing[1]), float(spacing[0])])        # k, j, i
    size = np.array([s.stop - s.start for s in region])
    if eyeball_class < 1 or float(np.prod(size * sp)) <= LOCATE_ABOVE * ORBIT_PAIR_MM3:
        return search
    front = (region[0], slice(region[1].start, min(region[1].stop, region[1].start + int(round(FRONT_MM / sp[1])))),
             region[2])
    found = None
    likely = _likely_box(norm, front, sp)
    if likely is not None:          # there first; kept when the pair lies inside it, clear of its cut edges
        found = _coarse_pair(norm, likely, sp, coarse, model, eyeball_class)
        if found is not None and not _clear_of_cuts(found, likely, front, sp):
            found = None
    if found is None:
        found = _coarse_pair(norm, front, sp, coarse, model, eyeball_class)
    if found is None:
        return search
    lo, hi = found
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

    def find(norm: np.ndarray, spacing: Sequence[float]) -> Region | None:
        box = orbit_search_box(norm, spacing)
        return locate_orbits(norm, spacing, box, model, eye, coarse=1.0) if locate else box

    # the engine hands it the scan on the coarse grid itself: the whole scan never goes onto the fine grid
    return Focus(find, COARSE if locate else 1.0)
