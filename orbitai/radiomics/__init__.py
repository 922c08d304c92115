"""Radiomics for IVGCResponse: pyradiomics driven by shipped parameter files, features per ROI of
a label map as a tidy table (each filtered image computed once for all ROIs of an image:
:class:`SharedExtractor`), and paper 001's feature selection (ICC, t-test / Mann-Whitney, LASSO)
in scikit-learn form.

pyradiomics is the optional ``radiomics`` extra (``pyradiomics-bhklab==3.1.4``; inside Slicer,
SlicerRadiomics provides it); it is imported only when features are extracted.
"""
from orbitai.radiomics.extract import FeatureRow, FeatureTable, extract_features
from orbitai.radiomics.protocol import RadiomicsProtocol, shipped_protocols
from orbitai.radiomics.select import (
                                      ReproducibilitySelector,
                                      icc,
                                      lasso_selector,
                                      mannwhitney_score,
                                      selection_pipeline,
                                      ttest_score,
)
from orbitai.radiomics.shared import SharedExtractor

__all__ = ["FeatureRow", "FeatureTable", "RadiomicsProtocol", "ReproducibilitySelector", "SharedExtractor", "extract_features", "icc",
           "lasso_selector", "mannwhitney_score", "selection_pipeline", "shipped_protocols", "ttest_score"]
