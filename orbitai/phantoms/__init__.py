"""Seeded phantoms with exact ground truth: orbital CT/MRI (from the SPL/NAC atlas) and brain
FLAIR (from the Lesjak et al. MS template), with TAO, IVGC and MS/NMOSD disease signals.

Public API::

    orbit_case(seed, modality='ct'|'t2'|'t1', tao=None|'active'|'inactive', ivgc=None|0|1,
               orientation=None|'axial'|'coronal', size=None, spacing=None, oblique=None, template=0,
               rendering=Rendering(domain_random=False, noise=True, contrast=None)) -> PhantomCase
    brain_flair_case(seed, disease='ms'|'nmosd') -> PhantomCase
    write_cohort(kind, n, seed, out_dir) -> Path        # kinds: KINDS
    PhantomCase(image: Volume, labels: Volume, info: dict)

All generators are deterministic: the same arguments give the same arrays (and files). The IVGC
clinical features follow :data:`orbitai.cohort.clinical.IVGC_CLINICAL`.
"""
import importlib
from typing import Any

#: Each public name -> its submodule, imported on first use (the command line's parser reads
#: ``orbitai.phantoms.cohort.KINDS`` without paying for scipy).
_WHERE = {"brain_flair_case": "brain", "KINDS": "cohort", "write_cohort": "cohort", "PhantomCase": "orbit",
          "orbit_case": "orbit", "Rendering": "orbit"}

__all__ = ["orbit_case", "brain_flair_case", "write_cohort", "PhantomCase", "Rendering", "KINDS"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"orbitai.phantoms.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'orbitai.phantoms' has no attribute {name!r}")
