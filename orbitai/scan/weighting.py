"""Whether a brain image has a FLAIR's contrast, from its values (CSF, cortex and white matter), read against the
scan's facts: the one place that decides it (issue 63; `orbitai.scan.flair.check_flair` asks here).

The evidence: a T2 has CSF brighter than brain tissue (the 99th percentile of the head's core well above its median;
a FLAIR's 1.2-1.4), a T1 its bright tissue deep (white matter) where a FLAIR's lies at the surface (cortex). Heavy
confluent lesions raise both on a true FLAIR, so the evidence never overrules what the user stated (nor the DICOM
tags): a stated FLAIR that looks otherwise gets a caveat and goes on. Without a statement the evidence refuses only
as T2 where the image classifier (which lesions do not sway) also likeliest sees a T2, and as T1 where both the
bright and the dark tissue say so: the bright band deep (white matter; lesions, bright and periventricular, push a
FLAIR's there too) and the dark band at the surface (grey matter on T1; a FLAIR's dark tissue is white matter, deep,
and lesions never enter it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

__all__ = ["CSF_RATIO_T2", "T1_BRIGHT_DEPTH", "T1_DARK_DEPTH", "depth_ratios", "csf_ratio", "flair_verdict"]

#: 99th percentile over the median of the head's core above which CSF is brighter than tissue (a T2): FLAIR 1.2-1.4.
CSF_RATIO_T2 = 1.75
#: mean depth of the bright brain voxels over the mean depth of the brain, above which an image is taken for a T1:
#: bright = cortex on FLAIR (real FLAIRs, template, phantoms 0.64-1.04), white matter on T1 (the real T1,
#: skull-stripped: 1.34)
T1_BRIGHT_DEPTH = 1.2
#: mean depth of the dark brain tissue (20th-45th percentile) over the mean depth of the brain, below which (with a
#: bright band deeper than :data:`T1_BRIGHT_DEPTH`) an image is taken for a T1: the real skull-stripped T1 0.77; real
#: FLAIRs, the template and phantoms 0.83-1.30, those with 130-160 mL of confluent lesions at 8 mm 0.91-1.05.
T1_DARK_DEPTH = 0.84


def csf_ratio(core: np.ndarray) -> float:
    """99th percentile of the head's core values over their median."""
    return float(np.percentile(core, 99)) / max(float(np.median(core)), 1e-6)


def _band_depth(a: np.ndarray, brain: np.ndarray, d: np.ndarray, lo: float, hi: float) -> float:
    low, high = np.percentile(a[brain], [lo, hi])
    band = brain & (a > low) & (a < high)
    return float(d[band].mean() / d[brain].mean()) if band.any() else 1.0


def depth_ratios(a: np.ndarray, brain: np.ndarray) -> tuple[float, float]:
    """Where the bright and the dark tissue lie: mean depth in ``brain`` of its 75th-97th percentile voxels (the top
    3 % left out: vessels) and of its 20th-45th percentile voxels, each over the mean depth of all its voxels."""
    if brain.sum() < 100:
        return 0.0, 1.0
    d = ndi.distance_transform_edt(brain)
    return _band_depth(a, brain, d, 75, 97), _band_depth(a, brain, d, 20, 45)


def _said(facts: Optional[ScanFacts]) -> Optional[str]:
    """Who said the weighting where the user or the DICOM tags did (the image's evidence does not overrule it)."""
    if facts is None or not facts.weighting.known or facts.weighting.source == "image":
        return None
    if facts.weighting.source.startswith("stated"):
        return f"you said {facts.weighting.value}"
    if facts.weighting.confidence >= 0.9:
        return f"its {facts.weighting.source} say {facts.weighting.value}"
    return None


def flair_verdict(core: np.ndarray, a: np.ndarray, brain: np.ndarray,
                  facts: Optional[ScanFacts] = None) -> tuple[Optional[str], Optional[str]]:
    """(refusal, caveat) for a brain image that should be a FLAIR: ``core`` the head core's values, ``a`` the image
    and ``brain`` its rough brain mask on the same coarse grid. A refusal only without a statement (nor tags)
    of the weighting; with one, the same evidence is a caveat."""
    ratio = csf_ratio(core)
    said = _said(facts)
    if ratio > CSF_RATIO_T2:
        why = (f"the image looks T2-like (CSF brighter than brain tissue: 99th percentile {ratio:.1f} x the median "
               f"in the brain; a FLAIR's CSF is dark)")
        if said:
            return None, f"{said[0].upper()}{said[1:]}; {why}: heavy confluent lesions can do this; check the series."
        if facts is not None and facts.weighting.known and facts.weighting.value != "T2":
            # lesions raise the percentile; the image classifier, which they do not sway, sees no T2
            return None, (f"The image's CSF is bright for a FLAIR (99th percentile {ratio:.1f} x the median in the "
                          f"brain: heavy confluent lesions?) but the image classifier sees no T2 ("
                          f"{facts.weighting.value}, {facts.weighting.confidence:.2f}); check the series.")
        return (f"The image looks like a T2 (CSF brighter than brain tissue: 99th percentile {ratio:.1f} x the median "
                "in the brain), not a FLAIR (CSF dark); load the FLAIR series (or, if it is one, say so: "
                "--modality FLAIR)."), None
    depth, dark = depth_ratios(a, brain)
    if depth > T1_BRIGHT_DEPTH and dark < T1_DARK_DEPTH:
        evidence = (f"its bright tissue is deep white matter, its dark tissue the cortex: depth ratios {depth:.2f} "
                    f"and {dark:.2f}, a FLAIR's <= {T1_BRIGHT_DEPTH} or >= {T1_DARK_DEPTH}")
        if said:
            return None, f"{said[0].upper()}{said[1:]}; the image looks T1-like ({evidence}): check the series."
        return (f"The image looks like a T1 ({evidence}); load the FLAIR series (or, if it is one, say so: "
                "--modality FLAIR)."), None
    return None, None
