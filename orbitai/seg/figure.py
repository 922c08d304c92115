"""A figure of a segmentation result: ground truth and prediction outlined on the same slices."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS


def _slices(labels: np.ndarray) -> list[int]:
    """An axial slice through the optic nerves and one lower, through the inferior recti."""
    nerve = np.isin(labels, [3, 4]).sum((1, 2))
    inferior = np.isin(labels, [7, 8]).sum((1, 2))
    ks = [int(np.argmax(nerve)), int(np.argmax(inferior))]
    return sorted(set(ks))


def save_comparison(image: Volume, truth: Volume, pred: Volume, path: str | Path,
                    title: str = "", window=(-160, 240)) -> Path:
    """PNG with one row per chosen slice: truth outlines (left) and prediction outlines (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = _slices(truth.array)
    fig, axes = plt.subplots(len(ks), 2, figsize=(9, 4.5 * len(ks)), squeeze=False)
    fig.patch.set_facecolor("black")
    sp = image.spacing
    for row, k in zip(axes, ks):
        for a, lab, name in ((row[0], truth.array[k], "ground truth"), (row[1], pred.array[k], "prediction")):
            a.imshow(image.array[k], cmap="gray", vmin=window[0], vmax=window[1], aspect=sp[1] / sp[0],
                     interpolation="bilinear")
            for v in np.unique(lab):
                if v and int(v) in ORBIT_LABELS:
                    a.contour(lab == v, [0.5], colors=[np.array(ORBIT_LABELS[int(v)].colour) / 255], linewidths=0.9)
            a.set_title(f"{name} (slice {k})", color="white", fontsize=10)
            a.axis("off")
    if title:
        fig.suptitle(title, color="white", fontsize=11)
    plt.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)
    return path
