"""Table nodes (numeric columns, units) and plot chart/series nodes."""
import math

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
import vtk  # noqa: E402

from orbitai.mrml import (  # noqa: E402
    column_units, plot_chart_from_arrays, plot_series_from_table, roc_chart, rows_from_table_node, table_column,
    table_node_from_rows,
)

ROWS = [
    {"structure": "eyeball_left", "side": "left", "volume (cm3)": 7.25, "voxels": 7250},
    {"structure": "optic_nerve_left", "side": "left", "volume (cm3)": 0.61, "voxels": 610},
]


def test_table_from_dict_rows(ctx):
    node = table_node_from_rows(ctx, ROWS, name="orbit volumes", units={"volume (cm3)": "cm3"},
                                descriptions={"voxels": "number of voxels"})
    assert node.GetName() == "orbit volumes"
    assert node.GetNumberOfRows() == 2 and node.GetNumberOfColumns() == 4
    assert [node.GetColumnName(i) for i in range(4)] == ["structure", "side", "volume (cm3)", "voxels"]
    table = node.GetTable()
    assert isinstance(table.GetColumnByName("volume (cm3)"), vtk.vtkDoubleArray)
    assert isinstance(table.GetColumnByName("voxels"), vtk.vtkIntArray)
    assert isinstance(table.GetColumnByName("structure"), vtk.vtkStringArray)
    assert table.GetValue(1, 2).ToDouble() == pytest.approx(0.61)
    assert node.GetColumnUnitLabel("volume (cm3)") == "cm3"
    assert node.GetColumnProperty("volume (cm3)", "unitLabel") == "cm3"
    assert node.GetColumnDescription("voxels") == "number of voxels"
    assert column_units(node) == {"volume (cm3)": "cm3"}
    assert rows_from_table_node(node) == ROWS
    np.testing.assert_allclose(table_column(node, "volume (cm3)"), [7.25, 0.61])


def test_table_from_sequences_with_missing_values(ctx):
    node = table_node_from_rows(ctx, [(1, 0.5, "a"), (2, None, None)], columns=["case", "score", "note"])
    rows = rows_from_table_node(node)
    assert rows[0] == {"case": 1, "score": 0.5, "note": "a"}
    assert rows[1]["case"] == 2 and math.isnan(rows[1]["score"]) and rows[1]["note"] == ""
    assert isinstance(node.GetTable().GetColumnByName("score"), vtk.vtkDoubleArray)


def test_numpy_numbers_are_numeric(ctx):
    node = table_node_from_rows(ctx, [{"dice": np.float32(0.9), "n": np.int64(3), "ok": True}])
    assert rows_from_table_node(node) == [{"dice": pytest.approx(0.9), "n": 3, "ok": 1}]


@pytest.mark.parametrize("kwargs,match", [
    (dict(rows=[]), "no rows"),
    (dict(rows=[(1, 2)]), "columns="),
    (dict(rows=[(1, 2)], columns=["a"]), "2 values but there are 1 columns"),
    (dict(rows=[{"a": 1}], units={"b": "mm"}), "units name columns that are not in the table: b"),
])
def test_bad_tables(ctx, kwargs, match):
    with pytest.raises(ValueError, match=match):
        table_node_from_rows(ctx, **kwargs)


def test_plot_chart_from_arrays(ctx):
    x, y = np.linspace(0, 1, 5), np.linspace(0, 1, 5) ** 2
    chart, series, table = plot_chart_from_arrays(ctx, x, y, name="curve", x_title="t", y_title="signal")
    assert chart.IsA("vtkMRMLPlotChartNode") and chart.GetName() == "curve"
    assert chart.GetNumberOfPlotSeriesNodes() == 1 and chart.GetNthPlotSeriesNode(0) is series
    assert series.GetTableNode() is table
    assert series.GetXColumnName() == "t" and series.GetYColumnName() == "signal"
    assert series.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter
    np.testing.assert_allclose(table_column(table, "t"), x)
    np.testing.assert_allclose(table_column(table, "signal"), y)
    assert chart.GetXAxisTitle() == "t" and chart.GetYAxisTitle() == "signal"


def test_roc_chart_and_second_series(ctx):
    chart, series, table = roc_chart(ctx, [0, 0.2, 0.5, 1], [0, 0.7, 0.9, 1], auc=0.815)
    assert series.GetName() == "ROC (AUC 0.815)"
    assert series.GetXColumnName() == "1 - specificity" and series.GetYColumnName() == "sensitivity"
    np.testing.assert_allclose(table_column(table, "sensitivity"), [0, 0.7, 0.9, 1])
    # a chance line in the same chart, from its own table
    chance = table_node_from_rows(ctx, [(0.0, 0.0), (1.0, 1.0)], columns=["fpr", "tpr"], name="chance")
    same, line = plot_series_from_table(ctx, chance, "fpr", "tpr", name="chance", chart_node=chart)
    assert same is chart and chart.GetNumberOfPlotSeriesNodes() == 2


@pytest.mark.parametrize("x,y,match", [([0, 1], [0], "same length"), ([0, np.nan], [0, 1], "NaN"),
                                       ([[0, 1]], [[0, 1]], "1D")])
def test_bad_plots(ctx, x, y, match):
    with pytest.raises(ValueError, match=match):
        plot_chart_from_arrays(ctx, x, y)


def test_bad_plot_column_and_roc_range(ctx):
    table = table_node_from_rows(ctx, [(0, 1)], columns=["a", "b"])
    with pytest.raises(ValueError, match="No column 'c'"):
        plot_series_from_table(ctx, table, "a", "c")
    with pytest.raises(ValueError, match="between 0 and 1"):
        roc_chart(ctx, [0, 2], [0, 1])


@pytest.mark.parametrize("layout, switched", [("SlicerLayoutConventionalView", True),
                                              ("SlicerLayoutFourUpTableView", False),
                                              ("SlicerLayoutFourUpPlotTableView", False)])
def test_a_job_table_keeps_the_users_layout_when_it_shows_tables(ctx, monkeypatch, layout, switched):
    """Every job switched the layout to Four-Up Table, even when the user's layout already had a table view."""
    from types import SimpleNamespace

    from orbitai.mrml.tables import show_table

    class LayoutManager:
        def __init__(self, current):
            self.layout, self.calls = current, []

        def setLayout(self, value):
            self.calls.append(value)
            self.layout = value

    manager = LayoutManager(getattr(slicer.vtkMRMLLayoutNode, layout))
    monkeypatch.setattr(slicer, "app", SimpleNamespace(layoutManager=lambda: manager), raising=False)
    node = table_node_from_rows(ctx, ROWS, name="volumes")
    assert show_table(ctx, node)
    assert manager.calls == ([slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView] if switched else [])
    assert ctx.app_logic.GetSelectionNode().GetActiveTableID() == node.GetID()
