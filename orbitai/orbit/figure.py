"""A figure of a segmentation result: ground truth and prediction outlined on the same slices."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from orbitai.boxes import bbox
from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS
from orbitai.metrics.plotting import pyplot


def _outline(ax, labels: np.ndarray) -> None:
    """Each orbit label of the 2D ``labels`` outlined on ``ax`` in the scheme's colour."""
    for v in np.unique(labels):
        if v and int(v) in ORBIT_LABELS:
            ax.contour(labels == v, [0.5], colors=[np.array(ORBIT_LABELS[int(v)].colour) / 255], linewidths=0.9)


def _slices(labels: np.ndarray) -> list[int]:
    """An axial slice through the optic nerves and one lower, through the inferior recti."""
    nerve = np.isin(labels, [3, 4]).sum((1, 2))
    inferior = np.isin(labels, [7, 8]).sum((1, 2))
    ks = [int(np.argmax(nerve)), int(np.argmax(inferior))]
    return sorted(set(ks))


def save_comparison(image: Volume, truth: Volume, pred: Volume, path: str | Path,
                    title: str = "", window=(-160, 240)) -> Path:
    """PNG with one row per chosen slice: truth outlines (left) and prediction outlines (right)."""
    plt = pyplot()

    ks = _slices(truth.array)
    fig, axes = plt.subplots(len(ks), 2, figsize=(9, 4.5 * len(ks)), squeeze=False)
    fig.patch.set_facecolor("black")
    sp = image.spacing
    for row, k in zip(axes, ks):
        for a, lab, name in ((row[0], truth.array[k], "ground truth"), (row[1], pred.array[k], "prediction")):
            a.imshow(image.array[k], cmap="gray", vmin=window[0], vmax=window[1], aspect=sp[1] / sp[0],
                     interpolation="bilinear")
            _outline(a, lab)
            a.set_title(f"{name} (slice {k})", color="white", fontsize=10)
            a.axis("off")
    if title:
        fig.suptitle(title, color="white", fontsize=11)
    plt.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)
    return path


def _orbit_slices(labels: np.ndarray, n: int = 3) -> list[int]:
    """Up to ``n`` axial slices: through the most optic nerve, the most inferior rectus and the most
    superior rectus (slices of other structures when those are absent)."""
    ks = []
    for values in ([3, 4], [7, 8], [5, 6], [1, 2]):
        count = np.isin(labels, values).sum((1, 2))
        if count.any():
            ks.append(int(np.argmax(count)))
    ks = sorted(set(ks))[:n]
    return ks or [labels.shape[0] // 2]


def real_scan_montage(scans: list[tuple[str, Volume, Volume]], path: str | Path, margin_mm: float = 20.0) -> Path:
    """PNG with one row per scan (name, image, orbit labels): axial slices through the orbit structures,
    cropped around them, outlines in the scheme's colours; rows as stored ([k, j, i] = inferior to superior,
    anterior at the top, the patient's left on the right as in radiology)."""
    plt = pyplot()

    cols = 3
    fig, axes = plt.subplots(len(scans), cols, figsize=(4.2 * cols, 3.4 * len(scans)), squeeze=False)
    fig.patch.set_facecolor("black")
    for row, (name, image, labels) in zip(axes, scans):
        lab = labels.array
        sp = image.spacing
        box = bbox(lab > 0)
        if box is None:
            j, i = (slice(0, lab.shape[1] // 2), slice(None))
        else:
            mj, mi = int(margin_mm / sp[1]), int(margin_mm / sp[0])
            j = slice(max(0, box[1].start - mj), min(lab.shape[1], box[1].stop + mj))
            i = slice(max(0, box[2].start - mi), min(lab.shape[2], box[2].stop + mi))
        img = image.array.astype(np.float32)
        vmax = float(np.percentile(img[:, j, i], 99.5))
        ks = _orbit_slices(lab)
        for a in row:
            a.axis("off")
        for a, k in zip(row, ks):
            a.imshow(img[k, j, i], cmap="gray", vmin=0, vmax=vmax, aspect=sp[1] / sp[0], interpolation="bilinear")
            _outline(a, lab[k, j, i])
            a.set_title(f"{name}  slice {k} ({sp[2]:.1f} mm)", color="white", fontsize=9)
    plt.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80, facecolor="black")
    plt.close(fig)
    return path
