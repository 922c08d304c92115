"""Montage figures of a FLAIR: its intracranial-mask outline, location regions and lesions (:func:`montage`),
or the lesions themselves against a reference (:func:`lesion_montage`)."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from orbitai.io import Volume
from orbitai.metrics.plotting import pyplot
from orbitai.neuro.anatomy import REGIONS, BrainExtraction

#: RGBA colour of each region code in the montage (deep white matter left uncoloured)
REGION_COLOURS: dict[int, tuple[float, float, float, float]] = {
    1: (0.15, 0.45, 1.0, 0.45), 2: (0.2, 0.85, 0.3, 0.30), 3: (1.0, 0.6, 0.1, 0.45),
    4: (0.0, 0.0, 0.0, 0.0), 5: (0.9, 0.2, 0.9, 0.55)}


def _lps(vol: Volume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Array [S, P, L] (axes reordered to LPS, no resampling) and its spacing (x, y, z)."""
    img = sitk.DICOMOrient(vol.to_sitk(), "LPS")
    return sitk.GetArrayFromImage(img), img.GetSpacing()


def montage(flair: Volume, extraction: BrainExtraction, path: str | os.PathLike, title: str = "",
            lesions: Volume | None = None, n_axial: int = 4) -> Path:
    """Write a PNG: ``n_axial`` axial slices + one coronal + one sagittal, mask outline and region colours."""
    plt = pyplot()
    from matplotlib.patches import Patch

    a, sp = _lps(flair)
    m, _ = _lps(extraction.mask)
    r, _ = _lps(extraction.regions)
    les = _lps(lesions)[0] if lesions is not None else None
    vmax = float(np.percentile(a[m > 0], 99.5)) if m.any() else float(np.percentile(a, 99.5))
    zs = np.nonzero(m.any(axis=(1, 2)))[0]
    zlo, zhi = (int(zs[0]), int(zs[-1])) if zs.size else (0, a.shape[0] - 1)
    ks = np.linspace(zlo + 0.15 * (zhi - zlo), zhi - 0.12 * (zhi - zlo), n_axial).round().astype(int)
    com = np.array(ndi_com(m)) if m.any() else np.array(a.shape) / 2
    jc, ic = int(round(com[1])), int(round(com[2]))
    views = [("axial", k, a[k], m[k], r[k], None if les is None else les[k], sp[1] / sp[0]) for k in ks]
    views.append(("coronal", jc, a[::-1, jc], m[::-1, jc], r[::-1, jc],
                  None if les is None else les[::-1, jc], sp[2] / sp[0]))
    views.append(("sagittal", ic, a[::-1, :, ic], m[::-1, :, ic], r[::-1, :, ic],
                  None if les is None else les[::-1, :, ic], sp[2] / sp[1]))
    lut = np.zeros((256, 4))
    for code, rgba in REGION_COLOURS.items():
        lut[code] = rgba
    ncol = (len(views) + 1) // 2
    fig, axes = plt.subplots(2, ncol, figsize=(3.4 * ncol, 7.2), facecolor="black")
    for ax in axes.ravel()[len(views):]:
        ax.axis("off")
    for ax, (name, idx, img, msk, reg, le, aspect) in zip(axes.ravel(), views):
        ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, aspect=aspect, interpolation="nearest")
        ax.imshow(lut[reg], aspect=aspect, interpolation="nearest")
        if msk.any():
            ax.contour(msk, [0.5], colors="yellow", linewidths=0.8)
        if le is not None and le.any():
            ax.contour(le > 0, [0.5], colors="red", linewidths=0.7)
        ax.set_title(f"{name} {idx}", color="white", fontsize=9)
        ax.axis("off")
    handles = [Patch(color=REGION_COLOURS[c][:3], label=REGIONS[c]) for c in (1, 2, 3, 5)]
    handles.append(Patch(edgecolor="yellow", facecolor="none", label="intracranial mask"))
    if les is not None:
        handles.append(Patch(edgecolor="red", facecolor="none", label="lesions"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False,
               labelcolor="white")
    fig.suptitle(f"{title}  ICV {extraction.icv_ml:.0f} mL\n(radiological: patient left on the right)",
                 color="white", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, facecolor="black")
    plt.close(fig)
    return _write_bytes_atomic(Path(path), buf.getvalue())


def lesion_montage(flair: Volume, lesions: Volume, path: str | os.PathLike, title: str = "",
                   truth: Volume | None = None, brain: Volume | None = None, n_axial: int = 8) -> Path:
    """Write a PNG of the lesions themselves: ``n_axial`` axial slices through the most lesion voxels
    (found in red; with ``truth``: true lesions outlined in cyan, missed ones show as cyan without red),
    windowed on the brain."""
    plt = pyplot()
    from matplotlib.patches import Patch

    a, sp = _lps(flair)
    le = _lps(lesions)[0] > 0
    tr = _lps(truth)[0] > 0 if truth is not None else None
    m = _lps(brain)[0] > 0 if brain is not None else a > 0
    vmax = float(np.percentile(a[m], 99.7)) if m.any() else float(np.percentile(a, 99.7))
    load = le.sum(axis=(1, 2)) + (tr.sum(axis=(1, 2)) if tr is not None else 0)
    zs = np.nonzero(m.any(axis=(1, 2)))[0]
    if load.any():
        # the slices holding the most lesion, at least 3 slices apart, shown from foot to head
        picked: list[int] = []
        for k in np.argsort(-load, kind="stable"):
            if load[k] == 0 or len(picked) == n_axial:
                break
            if all(abs(int(k) - q) >= 3 for q in picked):
                picked.append(int(k))
        ks = sorted(picked)
    else:
        ks = list(np.linspace(zs[0], zs[-1], n_axial + 2)[1:-1].round().astype(int)) if zs.size else [a.shape[0] // 2]
    ncol = (len(ks) + 1) // 2
    fig, axes = plt.subplots(2, ncol, figsize=(3.0 * ncol, 6.6), facecolor="black", squeeze=False)
    for ax in axes.ravel()[len(ks):]:
        ax.axis("off")
    ml = float(le.sum()) * float(np.prod(sp)) / 1000.0
    for ax, k in zip(axes.ravel(), ks):
        rows = np.nonzero(m[k].any(1))[0]
        cols = np.nonzero(m[k].any(0))[0]
        crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size else (slice(None),) * 2
        ax.imshow(a[k][crop], cmap="gray", vmin=0, vmax=vmax, aspect=sp[1] / sp[0], interpolation="nearest")
        if le[k][crop].any():
            ax.contour(le[k][crop], [0.5], colors="red", linewidths=1.4)
        if tr is not None and tr[k][crop].any():     # drawn over the found ones: both show where they agree
            ax.contour(tr[k][crop], [0.5], colors="cyan", linewidths=0.6)
        ax.set_title(f"axial {k}", color="white", fontsize=9)
        ax.axis("off")
    handles = [Patch(edgecolor="red", facecolor="none", label=f"lesions found ({ml:.1f} mL)")]
    if tr is not None:
        tml = float(tr.sum()) * float(np.prod(sp)) / 1000.0
        handles.append(Patch(edgecolor="cyan", facecolor="none", label=f"reference lesions ({tml:.1f} mL)"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=9, frameon=False, labelcolor="white")
    fig.suptitle(f"{title}\n(radiological: patient left on the right)", color="white", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.94))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, facecolor="black")
    plt.close(fig)
    return _write_bytes_atomic(Path(path), buf.getvalue())


def _write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Temporary file beside ``path`` renamed into place: never half a PNG."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def ndi_com(mask: np.ndarray) -> tuple[float, ...]:
    """Centre of mass of a binary mask (index order)."""
    idx = np.argwhere(mask)
    return tuple(idx.mean(0))
