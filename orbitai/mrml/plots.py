"""Plot series and plot chart nodes (e.g. ROC curves) backed by table nodes."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import slicer

from orbitai.errors import InputError
from orbitai.mrml.scene import MRMLContext
from orbitai.mrml.tables import table_node_from_rows

__all__ = ["plot_series_from_table", "plot_chart_from_arrays", "roc_chart", "show_plot_chart"]


def plot_series_from_table(ctx: MRMLContext, table_node, x_column: str, y_column: str, name: Optional[str] = None,
                           chart_node=None, color: Optional[Sequence[float]] = None, markers: bool = False):
    """A line plot series of ``y_column`` against ``x_column`` of ``table_node``, added to
    ``chart_node`` (a new chart when None); returns (chart_node, series_node)."""
    for col in (x_column, y_column):
        if table_node.GetTable().GetColumnByName(col) is None:
            names = [table_node.GetColumnName(i) for i in range(table_node.GetNumberOfColumns())]
            raise InputError(f"No column {col!r} in table '{table_node.GetName()}'; columns: {', '.join(names)}.")
    series = ctx.scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name or y_column)
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetXColumnName(x_column)
    series.SetYColumnName(y_column)
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleSolid)
    series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle if markers
                          else slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
    if color is not None:
        series.SetColor(*[float(c) for c in color])
    if chart_node is None:
        chart_node = ctx.scene.AddNewNodeByClass("vtkMRMLPlotChartNode", (name or y_column) + " chart")
        chart_node.SetXAxisTitle(x_column)
        chart_node.SetYAxisTitle(y_column)
    chart_node.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart_node, series


def _vector(values, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"{what} must be a non-empty 1D sequence of numbers, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what} contains NaN or infinite values; remove them before plotting.")
    return a


def plot_chart_from_arrays(ctx: MRMLContext, x, y, name: str = "Plot", x_title: str = "x", y_title: str = "y",
                           series_name: Optional[str] = None, chart_node=None):
    """A chart with one line series of ``y`` over ``x`` (stored in a new table node with columns
    ``x_title``/``y_title``); returns (chart_node, series_node, table_node)."""
    xs, ys = _vector(x, "x"), _vector(y, "y")
    if xs.shape != ys.shape:
        raise InputError(f"x and y must have the same length, got {xs.size} and {ys.size}.")
    if x_title == y_title:
        raise InputError("x_title and y_title name the table columns and must differ.")
    table = table_node_from_rows(ctx, list(zip(xs.tolist(), ys.tolist())), name=f"{name} data",
                                 columns=[x_title, y_title])
    chart, series = plot_series_from_table(ctx, table, x_title, y_title, series_name or name, chart_node)
    if chart_node is None:
        chart.SetName(name)
        chart.SetTitle(name)
    return chart, series, table


def roc_chart(ctx: MRMLContext, fpr, tpr, auc: Optional[float] = None, name: str = "ROC", chart_node=None):
    """An ROC curve (false positive rate vs sensitivity, both 0..1); returns (chart, series, table)."""
    label = name if auc is None else f"{name} (AUC {float(auc):.3f})"
    fpr_a, tpr_a = _vector(fpr, "fpr"), _vector(tpr, "tpr")
    if fpr_a.min() < 0 or fpr_a.max() > 1 or tpr_a.min() < 0 or tpr_a.max() > 1:
        raise InputError("ROC rates must lie between 0 and 1.")
    chart, series, table = plot_chart_from_arrays(ctx, fpr_a, tpr_a, name=name, x_title="1 - specificity",
                                                  y_title="sensitivity", series_name=label, chart_node=chart_node)
    chart.SetXAxisRange(0.0, 1.0)
    chart.SetYAxisRange(0.0, 1.0)
    return chart, series, table


def show_plot_chart(ctx: MRMLContext, chart_node) -> None:
    """Make ``chart_node`` the active chart (shown in the plot view of Slicer's layout)."""
    selection = ctx.app_logic.GetSelectionNode() if ctx.app_logic is not None else None
    if selection is not None:
        selection.SetActivePlotChartID(chart_node.GetID())
        if ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode"):
            ctx.app_logic.PropagatePlotChartSelection()
