"""Evaluation metrics as the papers define them, one module per kind:

* :mod:`orbitai.metrics.segmentation`    overlap (IoU, Dice, the SV-net paper's SP/SN, volume
                                          similarity) and cohort volume agreement
* :mod:`orbitai.metrics.classification`  accuracy, precision, sensitivity, specificity, F1, ROC AUC
                                          with its DeLong 95 % CI, mean +- SD, cohort reports
"""
