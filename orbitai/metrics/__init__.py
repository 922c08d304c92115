"""Evaluation metrics as the papers define them, one module per kind:

* :mod:`orbitai.metrics.segmentation`    overlap (IoU, Dice, the SV-net paper's SP/SN, volume
                                          similarity) and cohort volume agreement
* :mod:`orbitai.metrics.classification`  accuracy, precision, sensitivity, specificity, F1, PPV, NPV,
                                          ROC AUC with its DeLong 95 % CI, ROC points, calibration
                                          and Brier score, decision curves, radar-chart data,
                                          mean +- SD, cohort reports
* :mod:`orbitai.metrics.intervals`       95 % intervals of cohort figures: bootstrap over cases,
                                          stratified (and paired) bootstrap of the AUC, Wilson for rates
* :mod:`orbitai.metrics.figures`         ROC, calibration, decision-curve and radar PNGs
"""
