"""Cohorts: what every training and evaluation command reads before any image.

* :mod:`orbitai.cohort.manifest`  the CSV manifest (case id, image, segmentation, more columns)
* :mod:`orbitai.cohort.clinical`  typed clinical-feature schemas (units, valid ranges, levels,
                                   missing-value policy) and their validation
* :mod:`orbitai.cohort.splits`    k-fold, held-out, grouped and stratified splits (a patient's
                                   eyes or visits always stay on one side)
* :mod:`orbitai.cohort.runner`    every predict command over a manifest, serial or on Dask
                                   (complete case folders only, resume, failed.csv, cancel)
* :mod:`orbitai.cohort.records`   what a case is and what its folder records of its inputs (resume)
* :mod:`orbitai.cohort.folders`   the run's work folder; case folders moved, never over the user's files
* :mod:`orbitai.cohort.cluster`   the Dask side: a local cluster or a checked scheduler, quiet, cancellable
"""
