"""IVGCResponse Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.ivgc_response` (the module's self-test runs the same functions
inside Slicer, where there is no pytest and no Testing/); every ``test_*`` function there is collected
here, skipped when the demo bundle it needs is not installed."""
from __future__ import annotations

import pytest

from orbitai.testing import ivgc_response as shared

#: Tests that need an installed demo bundle (most run the real ``orbitai ivgc predict`` child), by bundle.
NEEDS = {"test_logic_predicts_phantom_into_scene": shared.SVM,
         "test_panel_binds_results_to_starting_input": shared.SVM,
         "test_panel_cancel_leaves_scene_unchanged": shared.SVM,
         "test_child_errors_are_one_line": shared.SVM,
         "test_logic_refuses_strategy_the_model_was_not_trained_on": shared.SVM,
         "test_clinical_model_refuses_missing_and_out_of_range": shared.CLINICAL,
         "test_logic_clinical_model_on_phantom": shared.CLINICAL}


def _collect() -> None:
    for name in dir(shared):
        if not name.startswith("test_"):
            continue
        fn = getattr(shared, name)
        if name in NEEDS:
            fn = pytest.mark.skipif(not shared.installed(NEEDS[name]),
                                    reason=f"IVGC demo bundle {NEEDS[name]} not installed")(fn)
        globals()[name] = fn


_collect()
