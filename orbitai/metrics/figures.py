"""Evaluation figures as PNG (matplotlib, Agg): ROC curves, calibration curves, decision curves and the
radar chart of paper 001 (Figures 4-6), one or several models per figure. Each figure is written
atomically (a hidden file beside the target, then renamed), so a failed run leaves no half a PNG.

``curves`` map a model's (or cohort's) legend name to ``(y_true, prob)``; the numbers come from
:mod:`orbitai.metrics.classification`.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
from sklearn.metrics import roc_curve

from orbitai.errors import InputError
from orbitai.metrics.classification import (
    binary_classification_metrics,
    calibration,
    decision_curve,
    radar_data,
    roc_points,
)
from orbitai.metrics.plotting import pyplot
from orbitai.staging import write_json_atomic, write_text_atomic

# A run-time alias: typing.Union, not `X | Y`, which fails on Slicer 5.8's Python 3.9.
Curves = Mapping[str, tuple[Union[Sequence[int], np.ndarray], Union[Sequence[float], np.ndarray]]]


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` atomically and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix or ".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        pyplot().close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def roc_figure(curves: Curves, path: str | os.PathLike, title: str = "ROC") -> Path:
    """ROC curve per entry, AUC and its 95 % DeLong CI in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for name, (y, p) in curves.items():
        r, m = roc_points(y, p), binary_classification_metrics(y, p)
        lo, hi = m["auc_ci95"]
        ax.plot(r["fpr"], r["tpr"], lw=1.8, label=f"{name}: AUC {m['auc']:.3f} ({lo:.3f}-{hi:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def calibration_figure(curves: Curves, path: str | os.PathLike, n_bins: int = 10,
                       title: str = "Calibration") -> Path:
    """Observed fraction of responders against the mean predicted probability per bin; Brier score
    in the legend; the diagonal is perfect calibration."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for name, (y, p) in curves.items():
        c = calibration(y, p, n_bins=n_bins)
        ax.plot(c["prob_pred"], c["prob_true"], "o-", ms=4, lw=1.5, label=f"{name}: Brier {c['brier']:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfectly calibrated")
    ax.set(xlabel="predicted probability", ylabel="observed fraction of positives", title=title,
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def decision_curve_figure(curves: Curves, path: str | os.PathLike, title: str = "Decision curve") -> Path:
    """Net benefit over threshold probabilities per entry, with treat-all (of the first entry's cohort)
    and treat-none."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    top = 0.0
    for k, (name, (y, p)) in enumerate(curves.items()):
        d = decision_curve(y, p)
        ax.plot(d["thresholds"], d["model"], lw=1.6, label=name)
        if k == 0:
            ax.plot(d["thresholds"], d["treat_all"], color="grey", lw=1, label="treat all")
            ax.plot(d["thresholds"], d["treat_none"], "k-", lw=1, label="treat none")
        top = max(top, float(np.mean(np.asarray(y))))
    ax.set(xlabel="threshold probability", ylabel="net benefit", title=title, xlim=(0, 1),
           ylim=(-0.05, top + 0.05))
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def radar_figure(metrics_by_model: Mapping[str, Mapping], path: str | os.PathLike,
                 title: str = "Prediction performance") -> Path:
    """Paper 001's Figure 6: AUC, ACC, SEN, SPE, PPV and NPV of each model on one polar chart."""
    axes, values = radar_data(metrics_by_model)
    plt = pyplot()
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(5.4, 5.4), subplot_kw={"polar": True})
    for name, vals in values.items():
        ax.plot(angles + angles[:1], vals + vals[:1], lw=1.6, label=name)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels(axes)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right", bbox_to_anchor=(1.15, -0.12), fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def write_figures(curves: Curves, out_dir: str | os.PathLike, prefix: str = "", title: str = "") -> dict[str, Path]:
    """``roc.png``, ``calibration.png``, ``decision_curve.png`` and ``radar.png`` (at threshold 0.5) of
    ``curves`` in ``out_dir`` (file names after ``prefix``); returns the paths by kind."""
    out = Path(out_dir)
    sep = f"{title}: " if title else ""
    metrics = {name: binary_classification_metrics(y, p) for name, (y, p) in curves.items()}
    return {"roc": roc_figure(curves, out / f"{prefix}roc.png", f"{sep}ROC"),
            "calibration": calibration_figure(curves, out / f"{prefix}calibration.png", title=f"{sep}calibration"),
            "decision_curve": decision_curve_figure(curves, out / f"{prefix}decision_curve.png",
                                                    f"{sep}decision curve"),
            "radar": radar_figure(metrics, out / f"{prefix}radar.png", f"{sep}prediction performance")}


def write_cohort_report(rows: Iterable[Mapping], out_dir: str | os.PathLike, title: str = "",
                        threshold: float = 0.5) -> dict:
    """Write ``predictions.csv``, ``metrics.json`` and ``report.png`` (ROC with AUC and CI,
    confusion matrix, probabilities by class) for rows with ``y_true`` and ``prob``."""
    plt = pyplot()
    rows = [dict(r) for r in rows]
    missing = {"case_id", "y_true", "prob"} - set().union(*rows) if rows else {"case_id", "y_true", "prob"}
    if missing or any(k not in r for r in rows for k in ("case_id", "y_true", "prob")):
        raise InputError("Every row needs case_id, y_true and prob"
                         + (f"; none has {', '.join(sorted(missing))}." if missing else "; some rows lack one."))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y = np.array([int(r["y_true"]) for r in rows])
    p = np.array([float(r["prob"]) for r in rows])
    m = binary_classification_metrics(y, p, threshold)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out / "predictions.csv", buf.getvalue())
    write_json_atomic(out / "metrics.json", m)

    fig, ax = plt.subplots(1, 3, figsize=(13, 4.2))

    fpr, tpr, _ = roc_curve(y, p)
    ax[0].plot(fpr, tpr, lw=2, label=f"AUC {m['auc']:.3f} (95% CI {m['auc_ci95'][0]:.3f}-{m['auc_ci95'][1]:.3f})")
    ax[0].plot([0, 1], [0, 1], "k:", lw=1)
    ax[0].set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    ax[0].legend(loc="lower right", fontsize=8)
    cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
    ax[1].imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax[1].text(j, i, str(v), ha="center", va="center", fontsize=14)
    ax[1].set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="true",
              title=f"threshold {threshold}: acc {m['accuracy']:.3f}")
    bins = np.linspace(0, 1, 21)
    ax[2].hist(p[y == 0], bins, alpha=0.6, label="negative (0)")
    ax[2].hist(p[y == 1], bins, alpha=0.6, label="positive (1)")
    ax[2].axvline(threshold, color="k", ls=":")
    ax[2].set(xlabel="predicted probability of class 1", ylabel="count", title="probabilities by class")
    ax[2].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out / "report.png", dpi=100)
    return m
