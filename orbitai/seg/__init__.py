"""Segmentation: the generic engine (:mod:`orbitai.seg.engine`: model grid, normalisation, sliding
windows, mirroring, back to the input), generic mask post-processing, and the training and
evaluation behind ``orbitai seg`` (the orbit configurations in :mod:`orbitai.seg.configs`; the
orbit rules in :mod:`orbitai.orbit`)."""
