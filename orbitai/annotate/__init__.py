"""Annotation tools on arrays with spacing (no Slicer): SmartPencil, SmartFill, AutoCorrection, and the basic edits
(threshold, islands, smoothing, fill between slices) with Slicer's effects' semantics.

Arrays are indexed [k, j, i] and spacing is (x, y, z) in mm, as in `orbitai.io.Volume`.
"""
from ._common import AnnotationError, dice, region_around
from .edits import (SMOOTHING_METHODS, fill_between_slices, keep_largest_island, remove_small_islands, smooth_mask,
                    threshold_mask)
from .autocorrect import CorrectionParameters, CorrectionResult, autocorrect, fill_holes_and_islands
from .graphcut import min_cut
from .simulate import correction_stroke, interactive_fill, next_click, rough_mask, simulate_strokes
from .smartfill import FillParameters, FillResult, smartfill, smartfill_full
from .smartpencil import ClickResult, smartpencil_click, superpixel_map
from .superpixels import (DEFAULT_CACHE, RESOLUTIONS, SuperpixelCache, Superpixels, SuperpixelSettings,
                          compute_superpixels)

__all__ = [
    "AnnotationError", "dice", "region_around", "autocorrect", "CorrectionParameters", "CorrectionResult",
    "fill_holes_and_islands",
    "min_cut", "next_click", "simulate_strokes", "correction_stroke", "interactive_fill", "rough_mask",
    "smartfill", "smartfill_full", "FillParameters", "FillResult",
    "smartpencil_click", "superpixel_map", "ClickResult", "compute_superpixels", "Superpixels",
    "SuperpixelSettings", "SuperpixelCache", "DEFAULT_CACHE", "RESOLUTIONS", "threshold_mask", "keep_largest_island", "remove_small_islands",
    "smooth_mask", "fill_between_slices", "SMOOTHING_METHODS",
]
