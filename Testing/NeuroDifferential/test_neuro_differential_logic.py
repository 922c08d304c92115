"""NeuroDifferential Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.neuro_differential` (the module's self-test runs the same
functions inside Slicer, where there is no pytest and no Testing/); every ``test_*`` function there is
collected here. The end-to-end ones run the real ``orbitai neuro predict|lesions`` child: they are
skipped, saying why, while that command (or, for ``predict``, an NMOSD-vs-MS bundle) is missing."""
from __future__ import annotations

import functools

import pytest

from orbitai.testing import neuro_differential as shared

#: Tests that run the real child: (the ``orbitai neuro`` command they need, whether they need a classifier
#: bundle, whether the child runs to its end on the 182 x 218 x 182 FLAIR: slow, run with -m slow).
NEEDS = {"test_logic_predicts_phantom_into_scene": ("predict", True, True),
         "test_panel_cancel_leaves_scene_unchanged": ("lesions", False, False),
         "test_panel_binds_results_to_starting_input": ("lesions", False, True),
         "test_logic_finds_lesions_of_phantom": ("lesions", False, True),
         "test_child_errors_are_one_line": ("lesions", False, True)}


def _why_skip(command: str, needs_model: bool) -> str:
    reason = shared.cli_missing(command)
    if not reason and needs_model and not shared.installed():
        reason = "no NMOSD-vs-MS bundle is installed (orbitai neuro predict needs one)"
    return reason


def _needing(fn, command: str, needs_model: bool, slow: bool):
    """``fn`` skipped, with the reason, while what it needs is missing."""
    @functools.wraps(fn)
    def test(*args, **kwargs):
        reason = _why_skip(command, needs_model)
        if reason:
            pytest.skip(reason)
        return fn(*args, **kwargs)

    return pytest.mark.slow(test) if slow else test


def _collect() -> None:
    for name in dir(shared):
        if name.startswith("test_"):
            fn = getattr(shared, name)
            globals()[name] = _needing(fn, *NEEDS[name]) if name in NEEDS else fn


_collect()
