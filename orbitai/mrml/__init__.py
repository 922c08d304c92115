"""The only bridge between the Slicer-free core (`orbitai`) and MRML.

Works inside the 3D Slicer application and headless with the PyPI package ``slicer-core``,
through the same module-logic calls. Everything takes an `MRMLContext` (``new_scene()`` /
``get_context()``) or nodes; arrays are [k, j, i] and geometry is `orbitai.io.Volume`'s.
"""
from orbitai.mrml.markups import box_of_roi_node, roi_node_from_box
from orbitai.mrml.mrb import load_mrb, save_mrb
from orbitai.mrml.overlays import (
    HEAT_COLOR_NAME,
    heat_color_node,
    jump_slices,
    overlay_node_from_volume,
    show_overlay,
    show_volume,
)
from orbitai.mrml.plots import plot_chart_from_arrays, plot_series_from_table, roc_chart, show_plot_chart
from orbitai.mrml.scene import MRMLContext, get_context, in_slicer_app, new_scene
from orbitai.mrml.segment_labelmaps import segment_voxel_counts
from orbitai.mrml.segmentations import (
    SegmentSpec,
    color_table_node_from_labels,
    label_table,
    labels_from_segmentation_node,
    segment_info,
    segmentation_node_from_labels,
)
from orbitai.mrml.tables import column_units, rows_from_table_node, table_column, table_node_from_rows
from orbitai.mrml.volumes import geometry_of, ijk_to_ras_of, volume_from_volume_node, volume_node_from_volume

__all__ = [
    "MRMLContext", "new_scene", "get_context", "in_slicer_app",
    "volume_node_from_volume", "volume_from_volume_node", "ijk_to_ras_of", "geometry_of",
    "SegmentSpec", "label_table", "color_table_node_from_labels", "segmentation_node_from_labels", "labels_from_segmentation_node",
    "segment_voxel_counts", "segment_info",
    "HEAT_COLOR_NAME", "heat_color_node", "overlay_node_from_volume", "show_overlay", "show_volume", "jump_slices",
    "table_node_from_rows", "rows_from_table_node", "table_column", "column_units",
    "plot_series_from_table", "plot_chart_from_arrays", "roc_chart", "show_plot_chart",
    "save_mrb", "load_mrb", "roi_node_from_box", "box_of_roi_node",
]
