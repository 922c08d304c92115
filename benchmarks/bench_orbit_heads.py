"""The 20 SynthSeg heads as orbit templates (issue #46): the atlas's muscles and nerves carried into each head, checked
by volume against the normal adult ranges (``orbitai.orbit.anatomy.RANGES``) and by eye (a montage in ``docs/``).

Per head: each structure-side's volume (cm^3), whether it lies in its range, the globe volume before scaling (the
SynthSeg eyeball label) and after (``orbitai.phantoms.head_orbits.target_globe_cm3``), and the seconds the template
took on one core. The montage shows, for every head, an axial slice through the left globe and a coronal slice
15 mm behind it, the carried structures in colour over the head's own tissues.

``python -m benchmarks orbit_heads`` -> ``benchmarks/results/orbit_heads.json`` and ``docs/figures/orbit_head_templates.png``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "orbit_head_templates.png"


def _montage(models: dict[int, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orbitai.phantoms import atlas as A

    grey = np.zeros(A.N_TISSUES)
    for code, v in ((A.FAT, 0.55), (A.SOFT, 0.35), (A.MUSCLE, 0.35), (A.BONE, 0.9), (A.AIR, 0.05), (A.GM, 0.45),
                    (A.WM, 0.5), (A.CSF, 0.2), (A.NEURAL, 0.5)):
        grey[code] = v
    fig, axes = plt.subplots(5, 8, figsize=(24, 14))
    for k, (n, m) in enumerate(sorted(models.items())):
        c = m.globe_centre["left"]
        iz, iy = (int(round((c[a] - m.fine_lo[a]) / A.FINE_SP)) for a in (2, 1))
        gt = A.GT_LUT[m.fine].astype(float)
        gt[gt == 0] = np.nan
        for j, sl in enumerate(((iz, slice(None), slice(None)), (slice(None, None, -1), iy + 30, slice(None)))):
            ax = axes.flat[2 * k + j]
            ax.imshow(grey[m.fine[sl]], cmap="gray", vmin=0, vmax=1)
            ax.imshow(gt[sl], cmap="tab20", vmin=0, vmax=19, alpha=0.75, interpolation="nearest")
            ax.set_title(f"head {n}{' (held out)' if n > 16 else ''}: {'axial' if j == 0 else 'coronal'}", fontsize=9)
            ax.axis("off")
    fig.suptitle("SynthSeg heads with the atlas's recti, obliques, levator and optic nerves carried into the orbits "
                 "(image left = patient right)")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=45)
    plt.close(fig)
    # a 64-colour palette: a third of the bytes (the release snapshot must stay under the extension index's 100 MB)
    from PIL import Image

    Image.open(FIGURE).convert("RGB").quantize(colors=64).save(FIGURE, optimize=True)


def main() -> None:
    from orbitai.labels import ORBIT_LABELS
    from orbitai.orbit.anatomy import range_of
    from orbitai.phantoms.head_orbits import own_globe_cm3, head_orbit_model, structure_volumes, target_globe_cm3

    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"heads": {}}
    models = {}
    in_range = checked = 0
    for n in range(1, 21):
        t0 = time.perf_counter()
        m = head_orbit_model(n)
        seconds = time.perf_counter() - t0
        vols = structure_volumes(m)
        row: dict[str, Any] = {"seconds": round(seconds, 1), "globe_label_cm3": round(own_globe_cm3()[n], 2),
                               "globe_target_cm3": round(target_globe_cm3(n), 2)}
        for v in range(1, 13):       # eyeballs, nerves, recti: the structures with a normal range
            lab = ORBIT_LABELS[v]
            lo, hi = range_of(lab.structure)
            ok = lo <= vols[str(v)] <= hi
            row[lab.name] = {"cm3": round(vols[str(v)], 3), "in_range": ok}
            in_range += ok
            checked += 1
        row.update({ORBIT_LABELS[v].name + "_cm3": round(vols[str(v)], 3) for v in range(13, 17)})
        notes["heads"][str(n)] = row
        metrics[f"head{n:02d}_seconds"] = seconds
        models[n] = m
    metrics["structure_sides_in_range"] = in_range
    metrics["structure_sides_checked"] = checked
    metrics["share_in_range"] = in_range / checked
    _montage(models)
    notes["figure"] = str(FIGURE.relative_to(FIGURE.parents[2]))
    write_result("orbit_heads", metrics, {"share_in_range": ">= 0.95"}, notes)


if __name__ == "__main__":
    main()
