"""Classification core shared by TAOActivity, IVGCResponse and NeuroDifferential.

- :mod:`orbitai.classify.data`: the dataset hook (samples of named inputs; in memory or streamed
  from disk);
- :mod:`orbitai.classify.train`: the seeded, resumable trainer over such datasets;
- :mod:`orbitai.classify.fusion`: a late-fusion network over several named inputs;
- :mod:`orbitai.classify.tabular`: scikit-learn classifiers over feature vectors (SVM, LogReg, RF).

Metrics live in :mod:`orbitai.metrics`, explanation maps in :mod:`orbitai.explain`.
"""
from orbitai.classify.data import ArrayDataset, ClassificationDataset, FileDataset, Sample, collate, read_image
from orbitai.classify.fusion import FusionNet, image_encoder, vector_encoder
from orbitai.classify.tabular import TABULAR_KINDS, tabular_classifier
from orbitai.classify.train import SampleAugment, TrainSettings, fit, predict_proba, train_classifier

__all__ = ["TABULAR_KINDS", "ArrayDataset", "ClassificationDataset", "FileDataset", "FusionNet", "Sample",
           "SampleAugment", "TrainSettings", "collate", "fit", "image_encoder", "predict_proba", "read_image",
           "tabular_classifier", "train_classifier", "vector_encoder"]
