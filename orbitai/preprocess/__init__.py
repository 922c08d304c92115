"""Preprocessing stages shared by every task, each a small module:

* :mod:`orbitai.preprocess.checks`     input checks: 3D, finite, spacing (what the image is: :mod:`orbitai.scan`)
* :mod:`orbitai.preprocess.intensity`  intensity normalisation (CT window, percentile, z-score)
* :mod:`orbitai.preprocess.grid`       model grids and resampling onto them
* :mod:`orbitai.preprocess.bias`       N4 bias-field correction (SimpleITK)
* :mod:`orbitai.preprocess.slices`     structures lying in a wide gap between acquired slices
* :mod:`orbitai.preprocess.resolution` thick-slice simulation for training (partial volume, resampled back)

Task folders (``orbit/``, ``tao/``, ...) combine these; nothing here knows about a task.
"""
