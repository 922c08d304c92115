"""Classification core shared by TAOActivity, IVGCResponse and NeuroDifferential.

- :mod:`orbitai.classify.data`: the dataset hook (samples of named inputs; in memory or streamed
  from disk);
- :mod:`orbitai.classify.train`: the seeded, resumable trainer over such datasets;
- :mod:`orbitai.classify.fusion`: a late-fusion network over several named inputs;
- :mod:`orbitai.classify.tabular`: scikit-learn classifiers over feature vectors (SVM, LogReg, RF).

Metrics live in :mod:`orbitai.metrics`, explanation maps in :mod:`orbitai.explain`.
"""
import importlib
from typing import Any

#: Each public name -> its submodule, imported on first use (``orbitai.classify.tabular`` alone, for
#: its kinds, must not import torch).
_WHERE = {**dict.fromkeys(("ArrayDataset", "ClassificationDataset", "FileDataset", "Sample", "collate",
                           "read_image"), "data"),
          **dict.fromkeys(("FusionNet", "image_encoder", "vector_encoder"), "fusion"),
          **dict.fromkeys(("TABULAR_KINDS", "tabular_classifier"), "tabular"),
          **dict.fromkeys(("SampleAugment", "TrainHooks", "TrainSettings", "fit", "predict_proba", "train_classifier"),
                          "train")}

__all__ = ["TABULAR_KINDS", "ArrayDataset", "ClassificationDataset", "FileDataset", "FusionNet", "Sample",
           "SampleAugment", "TrainHooks", "TrainSettings", "collate", "fit", "image_encoder", "predict_proba", "read_image",
           "tabular_classifier", "train_classifier", "vector_encoder"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"orbitai.classify.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'orbitai.classify' has no attribute {name!r}")
