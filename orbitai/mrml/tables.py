"""Table nodes from rows (numeric columns stay numeric, units in the column properties)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from orbitai.errors import InputError
from orbitai.mrml.scene import MRMLContext

__all__ = ["table_node_from_rows", "rows_from_table_node", "table_column", "column_units", "show_table"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (numbers.Number, np.number)) and not isinstance(v, (str, bytes, complex))


def _normalise_rows(rows, columns: Optional[Sequence[str]]) -> tuple[list[str], list[dict]]:
    rows = list(rows)
    if not rows:
        raise InputError("The table has no rows; pass at least one row (a dict or a sequence).")
    if all(isinstance(r, Mapping) for r in rows):
        names = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
        return [str(c) for c in names], [{str(k): v for k, v in r.items()} for r in rows]
    if columns is None:
        raise InputError("Rows given as sequences need column names: pass columns=[...].")
    names = [str(c) for c in columns]
    out = []
    for i, r in enumerate(rows):
        r = list(r)
        if len(r) != len(names):
            raise InputError(f"Row {i} has {len(r)} values but there are {len(names)} columns.")
        out.append(dict(zip(names, r)))
    return names, out


def table_node_from_rows(ctx: MRMLContext, rows, name: str = "Table", units: Optional[Mapping[str, str]] = None,
                         columns: Optional[Sequence[str]] = None,
                         descriptions: Optional[Mapping[str, str]] = None):
    """A table node from ``rows`` (dicts, or sequences with ``columns``).

    Columns whose values are all numbers (missing ones become NaN) are stored as ``vtkIntArray``
    (all integers) or ``vtkDoubleArray``; others as strings. ``units`` maps column names to unit
    labels (the ``unitLabel`` column property, shown by Slicer's table view).
    """
    names, dict_rows = _normalise_rows(rows, columns)
    for label, mapping in (("units", units), ("descriptions", descriptions)):
        missing = sorted(set(mapping or {}) - set(names))
        if missing:
            raise InputError(f"{label} name columns that are not in the table: {', '.join(missing)} "
                             f"(columns: {', '.join(names)}).")
    node = ctx.scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.RemoveAllColumns()
    for col in names:
        values = [r.get(col) for r in dict_rows]
        present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if present and all(_is_number(v) for v in present):
            as_int = all(isinstance(v, (numbers.Integral, np.integer, bool, np.bool_)) for v in present)
            as_int = as_int and len(present) == len(values) and all(abs(int(v)) < 2**31 for v in present)
            arr = vtk.vtkIntArray() if as_int else vtk.vtkDoubleArray()
            for v in values:
                arr.InsertNextValue(float("nan") if v is None else (int(v) if as_int else float(v)))
        else:
            arr = vtk.vtkStringArray()
            for v in values:
                arr.InsertNextValue("" if v is None else str(v))
        arr.SetName(col)
        node.AddColumn(arr)
        if units and col in units:
            node.SetColumnUnitLabel(col, str(units[col]))
        if descriptions and col in descriptions:
            node.SetColumnDescription(col, str(descriptions[col]))
    node.Modified()
    return node


def table_column(node, column: str) -> np.ndarray:
    """A column as a numpy array (numbers) or an object array of strings."""
    arr = node.GetTable().GetColumnByName(column)
    if arr is None:
        names = [node.GetColumnName(i) for i in range(node.GetNumberOfColumns())]
        raise KeyError(f"No column {column!r} in table '{node.GetName()}'; columns: {', '.join(names)}.")
    if isinstance(arr, vtk.vtkDataArray):
        return numpy_support.vtk_to_numpy(arr).copy()
    return np.array([arr.GetValue(i) for i in range(arr.GetNumberOfValues())], dtype=object)


def rows_from_table_node(node) -> list[dict]:
    """The table as a list of dicts (numbers as int/float, text as str)."""
    names = [node.GetColumnName(i) for i in range(node.GetNumberOfColumns())]
    cols = {n: table_column(node, n).tolist() for n in names}
    n_rows = node.GetNumberOfRows()
    return [{n: cols[n][i] for n in names} for i in range(n_rows)]


def column_units(node) -> dict[str, str]:
    """Unit label per column (only columns that have one)."""
    out = {}
    for i in range(node.GetNumberOfColumns()):
        col = node.GetColumnName(i)
        unit = node.GetColumnUnitLabel(col)
        if unit:
            out[col] = unit
    return out


#: Slicer's layouts that have a table view: a job's table is shown there without changing the user's layout.
TABLE_LAYOUTS = ("SlicerLayoutFourUpTableView", "SlicerLayoutFourUpPlotTableView", "SlicerLayout3DTableView")


def show_table(ctx: MRMLContext, table_node) -> bool:
    """Show ``table_node`` in the application's table view: in the current layout when it has one, else in the
    four-up layout with a table; False headless (no layout manager), where nothing is shown."""
    try:
        layout = slicer.app.layoutManager()
    except AttributeError:
        return False
    if layout is None or ctx.app_logic is None:
        return False
    if layout.layout not in {getattr(slicer.vtkMRMLLayoutNode, name) for name in TABLE_LAYOUTS}:
        layout.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
    ctx.app_logic.GetSelectionNode().SetActiveTableID(table_node.GetID())
    ctx.app_logic.PropagateTableSelection()
    return True
