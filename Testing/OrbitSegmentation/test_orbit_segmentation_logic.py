"""OrbitSegmentation Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.orbit_segmentation`, so the module's self-test runs the
same functions inside Slicer (OrbitSegmentationTest), where there is no pytest and no Testing/."""
from __future__ import annotations

from pathlib import Path

from orbitai.testing import orbit_segmentation as shared


def test_logic_segments_phantom_into_scene(ctx, tmp_path: Path):
    shared.test_logic_segments_phantom_into_scene(ctx, tmp_path)


def test_logic_cancel_leaves_scene_unchanged(ctx, tmp_path: Path):
    shared.test_logic_cancel_leaves_scene_unchanged(ctx, tmp_path)


def test_logic_refuses_2d_input(ctx):
    shared.test_logic_refuses_2d_input(ctx)


def test_load_results_all_or_nothing(ctx, tmp_path: Path):
    shared.test_load_results_all_or_nothing(ctx, tmp_path)


def test_volume_table_flags_implausible_structures(ctx, tmp_path: Path):
    shared.test_volume_table_flags_implausible_structures(ctx, tmp_path)


def test_results_file_into_the_inputs_dicom_study_ready_for_slicers_export(ctx, tmp_path: Path):
    shared.test_results_file_into_the_inputs_dicom_study_ready_for_slicers_export(ctx, tmp_path)


def test_failing_job_leaves_scene_unchanged(ctx):
    shared.test_failing_job_leaves_scene_unchanged(ctx)


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    shared.test_child_errors_are_one_line(ctx, tmp_path)


def test_panel_binds_results_to_starting_input(ctx):
    shared.test_panel_binds_results_to_starting_input(ctx)


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    shared.test_panel_missing_dependency_reaches_dialog(ctx, tmp_path)


def test_panel_cancel_leaves_scene_unchanged(ctx):
    shared.test_panel_cancel_leaves_scene_unchanged(ctx)


def test_parameter_choices():
    shared.test_parameter_choices()
