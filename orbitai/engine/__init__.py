"""The generic segmentation engine (:mod:`orbitai.engine.inference`: model grid, normalisation, sliding windows,
mirroring, back to the input) and generic mask post-processing (:mod:`orbitai.engine.postprocess`). No task
lives here: the orbit task is :mod:`orbitai.orbit`."""
