"""IVGCResponse Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.ivgc_response` (the module's self-test runs the same functions
inside Slicer, where there is no pytest and no Testing/); every ``test_*`` function there is collected
here, with the bundle it needs and the slow ones marked."""
from __future__ import annotations

import pytest

from orbitai.testing import ivgc_response as shared

#: Tests that run the real ``orbitai ivgc predict`` child, by the demo bundle they need.
NEEDS = {"test_logic_predicts_phantom_into_scene": shared.SVM,
         "test_panel_binds_results_to_starting_input": shared.SVM,
         "test_panel_cancel_leaves_scene_unchanged": shared.SVM,
         "test_child_errors_are_one_line": shared.SVM,
         "test_clinical_model_refuses_missing_and_out_of_range": shared.CLINICAL,
         "test_logic_clinical_model_on_phantom": shared.CLINICAL}
#: Slower than the default suite's budget on 2 busy CPU cores (an image model with Grad-CAM).
SLOW = {"test_logic_clinical_model_on_phantom"}


def _collect() -> None:
    for name in dir(shared):
        if not name.startswith("test_"):
            continue
        fn = getattr(shared, name)
        if name in NEEDS:
            fn = pytest.mark.skipif(not shared.installed(NEEDS[name]),
                                    reason=f"IVGC demo bundle {NEEDS[name]} not installed")(fn)
        if name in SLOW:
            fn = pytest.mark.slow(fn)
        globals()[name] = fn


_collect()
