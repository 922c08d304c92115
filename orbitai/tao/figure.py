"""A PNG of a TAO prediction: each eye's network input (central slice) with the occlusion and
Grad-CAM maps over it and the probability of the active phase."""
from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Optional

import numpy as np

from orbitai.io import Volume
from orbitai.labels import GROUPS, values_for
from orbitai.metrics.plotting import pyplot
from orbitai.result import NOT_ASSESSED, not_assessed_reason
from orbitai.tao.data import centre_crop

#: The label values of the extraocular muscles (the occlusion mass on them: `orbitai.tao.evaluate`).
EOM_VALUES = sorted(v for name in GROUPS["extraocular_muscles"] for v in values_for(name))


def save_tao_figure(pred, path: str | os.PathLike, labels: Optional[Volume] = None, title: str = "") -> Path:
    """Rows = eyes; columns = input, occlusion, Grad-CAM (outlines of the extraocular muscles when
    ``labels`` in the orbit scheme are given)."""
    plt = pyplot()

    eyes = pred.eyes
    fig, axes = plt.subplots(len(eyes), 3, figsize=(9.6, 3.3 * len(eyes)), squeeze=False)
    fig.patch.set_facecolor("black")
    for row, e in zip(axes, eyes):
        x = centre_crop(e.crop.canonical()[None])[0, 2]
        eom = None
        if labels is not None:
            eom = np.isin(np.rint(e.crop.network_view(labels, label=True)[2]).astype(int), EOM_VALUES)
        call = f"P(active) {e.probability_active:.2f} ({'active' if e.probability_active >= pred.threshold else 'inactive'})"
        if e.flagged:       # a call marked do not use is not assessed: no call, no P (issue 61)
            call = textwrap.fill(f"{NOT_ASSESSED}: {not_assessed_reason(e.trust_message)}", 48)
        for ax, (name, m, cmap) in zip(row, (("input", None, None), ("occlusion", e.occlusion, "hot"),
                                             ("Grad-CAM", e.gradcam, "jet"))):
            ax.imshow(x, cmap="gray")
            if m is not None:
                ax.imshow(np.ma.masked_less_equal(m, 0.05 * max(float(m.max()), 1e-6)), cmap=cmap, alpha=0.55)
            if eom is not None and eom.any():
                ax.contour(eom, [0.5], colors=["cyan"], linewidths=0.7)
            ax.set_title(f"{e.crop.side} eye - {name}" + (f"\n{call}"
                                                        if name == "input" else ""), color="white", fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, color="white")
    fig.tight_layout()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fig-", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100, facecolor="black")
    plt.close(fig)
    os.replace(tmp, path)
    return path
