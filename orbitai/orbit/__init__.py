"""The orbit task: rules that only orbital CT/MRI segmentation has, on top of the generic
engine (:mod:`orbitai.seg.engine`).

* :mod:`orbitai.orbit.rules`    label scheme <-> model classes, left/right split at the midline,
                                 the eyeball guard (:class:`OrbitNotFoundError`), structure volumes
* :mod:`orbitai.orbit.segment`  :func:`~orbitai.orbit.segment.segment`: a whole scan -> orbit labels
"""
