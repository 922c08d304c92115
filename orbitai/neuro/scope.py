"""What the NMOSD-vs-MS classifier assumes (issue 51), and the assumption that can be checked on the lesions.

The classifier tells NMOSD from MS in a patient already known to have a demyelinating disease; it cannot tell a
demyelinating disease from another one, and on other lesions it still answers one of its two classes. One pattern
that demyelination does not make can be read from the lesion mask and the location regions: a **territorial
infarct**, a large lesion based on the cortex (the wedge of cortex and white matter that one artery feeds).
MS and NMOSD lesions sit in the white matter: juxtacortical MS lesions are small, confluent MS loads and NMOSD's
long or tumefactive lesions lie periventricular, callosal or deep.

A lesion (26-connected) of at least :data:`TERRITORY_ML` is read as that pattern when it is based on the cortex:
at least :data:`CORTICAL_SHARE` of its voxels in the juxtacortical region (cortex and the white matter beneath it,
`orbitai.neuro.anatomy`). On the 28 real MS lesion maps of ``shared/data`` (Lesjak et al.) no lesion of 3 mL or
more holds over 17 % there; the infarct phantoms' wedges hold 27-79 %. (Also asking that a lesion reach the brain's
edge was tried and dropped: a real juxtacortical MS lesion lay nearer the template's edge than a phantom infarct.) Measured on phantoms (``Testing/neuro/test_scope.py``; ``benchmarks/results/trust.json``): every
infarct phantom is found, no MS or NMOSD phantom (heavy and confluent loads, atypical presentations included).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from scipy import ndimage as ndi

from orbitai.io import Volume
from orbitai.neuro.anatomy import REGION_CODES, BrainExtraction

#: What the NMOSD/MS classifiers assume, shown with each result.
SCOPE = ("For a patient with a demyelinating disease, to tell NMOSD from MS: a brain T2-FLAIR with white-matter "
         "lesions (paper 003); it does not tell whether the lesions are demyelinating. Trained on phantoms only; "
         "not for clinical use.")
#: Smallest lesion (mL) read as territorial, and the share of its voxels that must lie in the cortical ribbon.
TERRITORY_ML = 3.0
CORTICAL_SHARE = 0.30


def territorial_lesions(lesions: Volume, extraction: BrainExtraction) -> list[dict[str, Any]]:
    """The lesions of the mask in a vascular-territory pattern (see the module docstring): volume (mL) and share in
    the cortical ribbon of each, largest first."""
    m = np.asarray(lesions.array) > 0
    lab, n = ndi.label(m, structure=np.ones((3, 3, 3), bool))
    if not n:
        return []
    vox_ml = lesions.voxel_volume_mm3() * 1e-3
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    big = np.nonzero(sizes * vox_ml >= TERRITORY_ML)[0]
    big = big[big > 0]
    if not len(big):
        return []
    cortical = np.asarray(extraction.regions.array) == REGION_CODES["juxtacortical"]
    in_cortex = np.bincount(lab[cortical], minlength=n + 1) / np.maximum(sizes, 1)
    found = [{"volume_ml": round(float(sizes[c] * vox_ml), 2), "cortical_share": round(float(in_cortex[c]), 3)}
             for c in big if in_cortex[c] >= CORTICAL_SHARE]
    return sorted(found, key=lambda f: -f["volume_ml"])


def scope_warning(lesions: Volume, extraction: BrainExtraction) -> Optional[str]:
    """The line a result gets when its lesions break the classifier's scope, else None."""
    found = territorial_lesions(lesions, extraction)
    if not found:
        return None
    sizes = ", ".join(f"{f['volume_ml']:.1f} mL" for f in found)
    return (f"Lesions in a vascular-territory pattern ({len(found)} large lesion(s) based on the cortex: {sizes}), "
            "as infarcts are, not as demyelination is: the NMOSD/MS classifier assumes a demyelinating disease, so "
            "its call does not apply.")
