"""Image registration on SimpleITK: a masked multi-resolution affine, and a demons refinement on distance maps.

Used to carry a template's regions onto a FLAIR (:mod:`orbitai.neuro.anatomy`) and real MNI-space lesion maps
onto real brains (:mod:`orbitai.phantoms.lesion_maps`). Every transform maps *fixed* physical points to *moving*
physical points (SimpleITK's convention), so ``sitk.Resample(moving_thing, fixed, transform)`` brings a moving-space
image onto the fixed grid.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def affine_register(fixed: sitk.Image, fixed_mask: sitk.Image, moving: sitk.Image, moving_mask: sitk.Image
                    ) -> sitk.Transform:
    """Affine transform (fixed points -> moving points): moments initialisation on the two masks, Mattes
    mutual information sampled in the fixed mask grown by 2 voxels, three levels (shrink 4/2/1)."""
    init = sitk.CenteredTransformInitializer(
        sitk.Cast(fixed_mask, sitk.sitkFloat32), sitk.Cast(moving_mask, sitk.sitkFloat32),
        sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricFixedMask(sitk.BinaryDilate(fixed_mask, [2, 2, 2]))
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.25, seed=7)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-3, 120, relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    comp = sitk.CompositeTransform(out)
    return comp.GetNthTransform(0) if comp.GetNumberOfTransforms() == 1 else out


def demons_refine(fixed_map: sitk.Image, moving_map: sitk.Image, affine: sitk.Transform, shrink: int = 2,
                  iterations: int = 80, smoothing: float = 2.0) -> sitk.Transform:
    """``affine`` refined by symmetric-forces demons between two maps of the same kind (e.g. distances to the
    ventricles and the brain surface: the same values on both sides, which demons needs), on a grid ``shrink``
    times coarser. Returns the composite (fixed points -> moving points)."""
    background = float(sitk.GetArrayViewFromImage(fixed_map).max())
    coarse = sitk.Shrink(fixed_map, [shrink] * 3)
    moved = sitk.Resample(moving_map, coarse, affine, sitk.sitkLinear, background)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(smoothing)
    field = demons.Execute(coarse, moved)
    warp = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    return sitk.CompositeTransform([affine, warp])     # the warp applies first, then the affine


def as_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """``array`` ([z, y, x]) as an image with the geometry of ``like``."""
    img = sitk.GetImageFromArray(array)
    img.CopyInformation(like)
    return img
