"""Image classification core shared by TAOActivity, IVGCResponse and NeuroDifferential:
training (:mod:`orbitai.classify.train`); metrics live in :mod:`orbitai.metrics`, explanation maps
in :mod:`orbitai.explain`."""
from orbitai.classify.train import TrainSettings, predict_proba, train_classifier

__all__ = ["TrainSettings", "predict_proba", "train_classifier"]
