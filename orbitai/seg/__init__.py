"""Orbit segmentation: label mapping, inference with sliding windows, post-processing,
training and evaluation (the engine of the OrbitSegmentation module and ``orbitai seg``)."""
