"""The IVGC model kinds by name: the radiomics classifiers and the deep networks. Names only, so
that the command line's parser imports neither torch nor scikit-learn."""
from __future__ import annotations

from orbitai.classify.tabular import TABULAR_KINDS

#: The deep networks of paper 003 (configurations in :mod:`orbitai.ivgc.configs`).
DEEP_KINDS: tuple[str, ...] = ("resnet50", "rdinet", "rdinet_clinical")
#: Every kind ``ivgc train`` and ``ivgc cv`` take.
KINDS: tuple[str, ...] = (*TABULAR_KINDS, *DEEP_KINDS)
