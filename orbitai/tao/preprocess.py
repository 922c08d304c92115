"""TAO activity preprocessing (paper 000), automated: find each orbit, N4 bias-field correction,
z-score normalisation, crop the orbit to 164 x 164 pixels, five slices centred on the optic-nerve
plane.

The paper cropped the orbit by hand in ITK-SNAP. Here the crop is placed from an orbit segmentation
(the user's, or the one OrbitSegmentation predicts): centred on the eyeball and moved
``AXIS_OFFSET_MM`` back along the eyeball -> optic-nerve direction so that the retrobulbar muscles
are inside, ``CROP_SIDE_MM`` wide, on the axial slice with the most optic nerve (the eyeball centre
when no nerve is segmented) and the two slices either side. Each eye is a separate sample; the left
eye is mirrored so that both look like a right orbit to the network (medial on the same side).

Every crop is a :class:`EyeCrop` whose ``grid`` is a real volume geometry (in-plane axes of the input,
its native slices), so network outputs map back onto the input with :func:`orbitai.io.resample_like`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from orbitai.io import RESAMPLE_OPTION, Volume, VolumeError, require_values, resample_like, segmentation_on_image
from orbitai.io.orient import plane_refusal, reformat_to
from orbitai.labels import values_for
from orbitai.orbit.rules import OrbitNotFoundError
from orbitai.preprocess.bias import n4_correct
from orbitai.preprocess.intensity import zscore
from orbitai.scan import ScanFacts
from orbitai.scan.values import ct_for_an_mr_model

CROP_PIXELS = 164          # the paper's resize
NET_PIXELS = 128           # the paper's random crop (centre crop at prediction)
N_SLICES = 5
CROP_SIDE_MM = 64.0        # orbit field of view of the 164-pixel crop
AXIS_OFFSET_MM = 14.0      # eyeball centre -> crop centre, along the orbit axis
MIN_EYEBALL_ML = 2.0       # smaller "eyeballs" are segmentation noise
SIDES = ("right", "left")
#: The paper's plane: a 3D acquisition in another one is reformatted to it (`orbitai.io.orient.reformat_to`).
PLANE = "axial"


@dataclass
class EyeCrop:
    """One eye's preprocessed crop. ``grid.array`` is (5, 164, 164) float32 in the input's own axes;
    ``flips`` (axis 1, axis 2) turn it into the canonical right-orbit view the network sees."""

    side: str
    grid: Volume
    flips: tuple[bool, bool]
    eyeball_lps: np.ndarray
    warnings: list[str] = field(default_factory=list)
    net_pixels: int = NET_PIXELS        # the centred square the network sees (the bundle's input block)

    @property
    def margin(self) -> int:
        """Pixels between the crop's edge and the network's centred square."""
        return (self.grid.shape[1] - self.net_pixels) // 2

    def canonical(self) -> np.ndarray:
        a = self.grid.array
        if self.flips[0]:
            a = a[:, ::-1, :]
        if self.flips[1]:
            a = a[:, :, ::-1]
        return np.ascontiguousarray(a, dtype=np.float32)

    def from_canonical(self, arr: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`canonical` for a (5, 164, 164) array (e.g. a heat map)."""
        if self.flips[1]:
            arr = arr[:, :, ::-1]
        if self.flips[0]:
            arr = arr[:, ::-1, :]
        return np.ascontiguousarray(arr)

    def network_view(self, other: Volume, label: bool = False) -> np.ndarray:
        """``other`` (e.g. the orbit labels) as the network sees it: on the crop grid, canonical
        orientation, centred 128 x 128."""
        on_grid = resample_like(other, self.grid, label=label).array
        view = self.grid.with_array(on_grid)
        m, n = self.margin, self.net_pixels
        return EyeCrop(self.side, view, self.flips, self.eyeball_lps).canonical()[:, m:m + n, m:m + n]

    def network_box(self) -> Volume:
        """Geometry of the centred 128 x 128 x 5 region the network sees at prediction."""
        m, n, g = self.margin, self.net_pixels, self.grid
        origin = g.index_to_physical((m, m, 0))
        return Volume(np.zeros((g.shape[0], n, n), np.float32), g.spacing, tuple(origin), g.direction.copy())

    def box_ras(self) -> dict:
        """The network's region in RAS: centre, size (mm), unit axes (columns) and the 8 corners."""
        box = self.network_box()
        to_ras = np.diag([-1.0, -1.0, 1.0])
        n = np.array(box.size_xyz, float)
        corners_ijk = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)], float) * n - 0.5
        corners = [to_ras @ box.index_to_physical(c) for c in corners_ijk]
        centre = to_ras @ box.index_to_physical((n - 1) / 2)
        axes = to_ras @ box.direction
        return {"center": centre.round(3).tolist(), "size_mm": (n * np.array(box.spacing)).round(3).tolist(),
                "axes": axes.T.round(6).tolist(), "corners": [c.round(3).tolist() for c in corners]}

    def map_to_input(self, canonical_map: np.ndarray, reference: Volume) -> Volume:
        """A (5, 128, 128) map over the network input -> float32 volume on ``reference``'s grid."""
        m, n = self.margin, self.net_pixels
        full = np.zeros(self.grid.shape, np.float32)
        full[:, m:m + n, m:m + n] = canonical_map
        grid_map = self.grid.with_array(self.from_canonical(full))
        return resample_like(grid_map, reference, default=0.0)


def check_tao_input(image: Volume, slices: int = N_SLICES, facts: Optional[ScanFacts] = None) -> None:
    """Raise a clear error for input TAOActivity cannot use. CT or MR as the scan's ``facts`` say
    (:func:`orbitai.scan.values.ct_for_an_mr_model`: what the user states wins); without them (training reads each
    case's crops without judging the scan: a classifier run per case buys nothing there), as its values say."""
    require_values(image, "image")
    if image.array.ndim != 3 or min(image.shape) < slices:
        raise VolumeError(f"The image has {min(image.shape)} slice(s) along one axis; TAOActivity needs an "
                          f"axial orbital T2 MRI with at least {slices} slices through the orbits.")
    if ct_for_an_mr_model(facts, image):
        raise VolumeError("The image looks like CT (Hounsfield units, air near -1000). TAOActivity needs an "
                          "orbital T2-weighted MRI (the paper used axial T2 SPIR).")
    why = plane_refusal(image, PLANE, "TAOActivity")     # a 3D acquisition in another plane is reformatted
    if why:
        raise VolumeError(why)


def axial_input(image: Volume, labels: Optional[Volume] = None) -> tuple[Volume, Optional[Volume], str]:
    """(image, labels, note) in the paper's axial plane: unchanged for axial slices, a 3D acquisition in another
    plane reformatted (its voxels reordered: `orbitai.io.orient.reformat_to`) and the note saying so."""
    return reformat_to(image, PLANE, "TAOActivity", labels)


def eye_landmarks(labels: Volume, side: str) -> tuple[np.ndarray, np.ndarray | None, float | None] | None:
    """(eyeball centroid LPS, optic-nerve centroid LPS or None, optic-nerve plane k or None), or None
    when this side has no eyeball."""
    ev = values_for("eyeball")[0 if side == "left" else 1]
    nv = values_for("optic_nerve")[0 if side == "left" else 1]
    lab = labels.array
    eye = np.argwhere(lab == ev)
    if len(eye) * labels.voxel_volume_mm3() / 1000.0 < MIN_EYEBALL_ML:
        return None
    c_eye = labels.index_to_physical(eye.mean(0)[::-1])
    nerve = np.argwhere(lab == nv)
    if len(nerve) < 5:
        return c_eye, None, None
    per_k = np.bincount(nerve[:, 0], minlength=lab.shape[0])
    return c_eye, labels.index_to_physical(nerve.mean(0)[::-1]), float(np.argmax(per_k))


def crop_grid(image: Volume, c_eye: np.ndarray, c_nerve: np.ndarray | None, k_plane: float | None,
              crop_pixels: int = CROP_PIXELS, slices: int = N_SLICES, side_mm: float = CROP_SIDE_MM) -> Volume:
    """The crop geometry, 164 x 164 x 5 by default (input's in-plane axes and native slices)."""
    d = image.direction
    ax_i, ax_j = d[:, 0], d[:, 1]
    if c_nerve is not None:
        v = c_nerve - c_eye
    else:   # no nerve: straight back (LPS +y), the orbit axis' main component
        v = np.array([0.0, 1.0, 0.0])
    v_in = v - np.dot(v, d[:, 2]) * d[:, 2]
    if np.linalg.norm(v_in) < 1e-6:
        v_in = np.array([0.0, 1.0, 0.0])
    centre = c_eye + AXIS_OFFSET_MM * v_in / np.linalg.norm(v_in)
    k = k_plane if k_plane is not None else float(image.physical_to_index(c_eye)[2])
    k = int(np.clip(round(k), 0, image.shape[0] - 1))
    # centre moved onto slice k (no through-plane interpolation: the network sees native slices)
    idx = image.physical_to_index(centre)
    centre = image.index_to_physical((idx[0], idx[1], k))
    px = side_mm / crop_pixels
    half = (crop_pixels - 1) / 2 * px
    origin = centre - half * ax_i - half * ax_j - (slices - 1) / 2 * image.spacing[2] * d[:, 2]
    return Volume(np.zeros((slices, crop_pixels, crop_pixels), np.float32), (px, px, image.spacing[2]),
                  tuple(origin), d.copy())


def _region_around(image: Volume, grid: Volume, margin_mm: float = 8.0) -> Volume:
    """The input's voxels covering ``grid`` plus a margin: the part N4 needs to see."""
    n = np.array(grid.size_xyz, float)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * (n - 1)
    idx = np.array([image.physical_to_index(grid.index_to_physical(c)) for c in corners])
    marg = margin_mm / np.array(image.spacing)
    lo = np.maximum(np.floor(idx.min(0) - marg).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(0) + marg).astype(int) + 1, np.array(image.size_xyz))
    if np.any(hi - lo < 2):
        raise OrbitNotFoundError("The orbit crop lies outside the image's field of view.")
    sub = image.array[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
    return Volume(sub, image.spacing, tuple(image.index_to_physical(lo)), image.direction.copy())


@dataclass(frozen=True)
class GivenLabels:
    """How a given segmentation is taken when it lies off the MRI's grid: refused in one line starting with ``what``,
    or with ``resample_masks`` resampled onto it with a warning (:func:`orbitai.io.segmentation_on_image`; ``option``:
    the command's option asking for that, None for a command without one)."""

    resample_masks: bool = False
    what: str = "the orbit segmentation"
    option: Optional[str] = RESAMPLE_OPTION


#: The default: a segmentation off the MRI's grid is refused (``--resample-masks`` named).
REFUSED_OFF_GRID = GivenLabels()


def preprocess_eyes(image: Volume, labels: Volume, n4: bool = True, crop_pixels: int = CROP_PIXELS,
                    slices: int = N_SLICES, side_mm: float = CROP_SIDE_MM, net_pixels: int = NET_PIXELS,
                    given: GivenLabels = REFUSED_OFF_GRID, facts: Optional[ScanFacts] = None) -> list[EyeCrop]:
    """Both eyes' crops (right first). Raises :class:`~orbitai.orbit.rules.OrbitNotFoundError` when
    no eye is usable; an eye that cannot be used is left out with a warning on the other. The crop
    geometry defaults to the paper's; a bundle's input block (`orbitai.tao.spec`) may set it. ``labels``
    off the MRI's grid are refused or resampled as ``given`` says (:class:`GivenLabels`); ``facts``: what the scan
    is (:func:`check_tao_input`)."""
    check_tao_input(image, slices, facts)
    image, moved, _ = axial_input(image, labels)          # a 3D acquisition in another plane: reformatted
    labels, resampled = segmentation_on_image(image, moved or labels, given.what, given.resample_masks,
                                              image_name="MRI", option=given.option)
    crops, missing = [], []
    flip_i = image.direction[0, 0] < 0     # canonical: axis 2 towards patient left (+x LPS)
    flip_j = image.direction[1, 1] < 0     # canonical: axis 1 towards posterior (+y LPS)
    for side in SIDES:
        marks = eye_landmarks(labels, side)
        if marks is None:
            missing.append(side)
            continue
        c_eye, c_nerve, k = marks
        grid = crop_grid(image, c_eye, c_nerve, k, crop_pixels, slices, side_mm)
        region = _region_around(image, grid)
        if n4:
            region = n4_correct(region)
        fill = float(region.array.min())
        crop = resample_like(region, grid, default=fill).array.astype(np.float32)
        warnings = [] if c_nerve is not None else [
            f"No optic nerve segmented on the {side}; the crop uses the eyeball centre's slice."]
        # mirror the left eye so both look like a right orbit
        crops.append(EyeCrop(side, grid.with_array(zscore(crop)),
                             (bool(flip_j), bool(flip_i) ^ (side == "left")), c_eye, warnings, net_pixels))
    if not crops:
        raise OrbitNotFoundError("No orbit found: no eyeball in the segmentation"
                            + (" of either side" if len(missing) == 2 else "")
                            + ". Check that the MRI covers the orbits, or provide an orbit segmentation.")
    for c in crops:
        c.warnings += [f"No eyeball found on the {s}; that eye was not classified." for s in missing]
        c.warnings += [resampled] if resampled else []
    return crops
