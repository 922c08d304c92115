"""The generic segmentation engine (:mod:`orbitai.engine.inference`: model grid, normalisation, sliding windows
(:mod:`orbitai.engine.windows`), mirroring, back to the input (:mod:`orbitai.engine.mapping`), the result and its
soft volumes (:mod:`orbitai.engine.result`)), where the network looks (:mod:`orbitai.engine.focus`) and generic
mask post-processing (:mod:`orbitai.engine.postprocess`). No task lives here: the orbit task is :mod:`orbitai.orbit`."""
