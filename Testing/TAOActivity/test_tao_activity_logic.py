"""TAOActivity Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.tao_activity`, so the module's self-test runs the same
functions inside Slicer (TAOActivityTest), where there is no pytest and no Testing/."""
from __future__ import annotations

from pathlib import Path

import pytest

from orbitai.testing import tao_activity as shared


def _needs(network: str):
    return pytest.mark.skipif(not shared.installed(network), reason=f"TAO Network {network} demo bundle not installed")


def test_load_results_writes_table_rois_and_overlays(ctx, tmp_path: Path):
    shared.test_load_results_writes_table_rois_and_overlays(ctx, tmp_path)


def test_load_results_without_maps(ctx, tmp_path: Path):
    shared.test_load_results_without_maps(ctx, tmp_path)


def test_load_results_refuses_broken_folders_scene_unchanged(ctx, tmp_path: Path):
    shared.test_load_results_refuses_broken_folders_scene_unchanged(ctx, tmp_path)


def test_load_results_rolls_back_when_a_node_fails(ctx, tmp_path: Path):
    shared.test_load_results_rolls_back_when_a_node_fails(ctx, tmp_path)


# The heat maps take ~30 s on 2 busy CPU cores, so the default suite runs the Logic end to end
# without them (~15 s); the maps' scene side is covered by the contract tests above.
@_needs("B")
def test_logic_classifies_phantom_into_scene(ctx):
    shared.test_logic_classifies_phantom_into_scene(ctx)


@_needs("A")
def test_logic_network_a_on_phantom(ctx):
    shared.test_logic_network_a_on_phantom(ctx)


@pytest.mark.slow
@_needs("B")
def test_logic_heat_maps_on_phantom(ctx):
    shared.test_logic_heat_maps_on_phantom(ctx)


@pytest.mark.slow
@_needs("B")
def test_logic_finds_orbits_without_segmentation(ctx):
    shared.test_logic_finds_orbits_without_segmentation(ctx)


@_needs("B")
def test_logic_cancel_leaves_scene_unchanged(ctx):
    shared.test_logic_cancel_leaves_scene_unchanged(ctx)


@_needs("B")
def test_logic_refuses_ct_and_2d_input(ctx):
    shared.test_logic_refuses_ct_and_2d_input(ctx)


def test_logic_refuses_bad_choices_before_starting(ctx):
    shared.test_logic_refuses_bad_choices_before_starting(ctx)


@_needs("B")
def test_panel_binds_results_to_starting_input(ctx):
    shared.test_panel_binds_results_to_starting_input(ctx)


@_needs("B")
def test_panel_results_land_while_module_hidden(ctx):
    shared.test_panel_results_land_while_module_hidden(ctx)


@_needs("B")
def test_panel_failing_job_leaves_scene_unchanged(ctx):
    shared.test_panel_failing_job_leaves_scene_unchanged(ctx)


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    shared.test_child_errors_are_one_line(ctx, tmp_path)


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    shared.test_panel_missing_dependency_reaches_dialog(ctx, tmp_path)


@_needs("B")
def test_panel_cancel_leaves_scene_unchanged(ctx):
    shared.test_panel_cancel_leaves_scene_unchanged(ctx)


def test_parameter_choices():
    shared.test_parameter_choices()


def test_load_results_refuses_input_removed_meanwhile(ctx, tmp_path: Path):
    shared.test_load_results_refuses_input_removed_meanwhile(ctx, tmp_path)
