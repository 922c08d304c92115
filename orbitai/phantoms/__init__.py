"""Seeded phantoms with exact ground truth: orbital CT/MRI (from the SPL/NAC atlas) and brain
FLAIR (from the Lesjak et al. MS template), with TAO, IVGC and MS/NMOSD disease signals.

Public API::

    orbit_case(seed, modality='ct'|'t2'|'t1', domain_random=False, tao=None|'active'|'inactive',
               ivgc=None|0|1, orientation=None|'axial'|'coronal', size=None, spacing=None,
               oblique=None) -> PhantomCase
    brain_flair_case(seed, disease='ms'|'nmosd') -> PhantomCase
    write_cohort(kind, n, seed, out_dir) -> Path        # kinds: KINDS
    PhantomCase(image: Volume, labels: Volume, info: dict)

All generators are deterministic: the same arguments give the same arrays (and files). The IVGC
clinical features follow :data:`orbitai.cohort.clinical.IVGC_CLINICAL`.
"""
from orbitai.phantoms.brain import brain_flair_case
from orbitai.phantoms.cohort import KINDS, write_cohort
from orbitai.phantoms.orbit import PhantomCase, orbit_case

__all__ = ["orbit_case", "brain_flair_case", "write_cohort", "PhantomCase", "KINDS"]
