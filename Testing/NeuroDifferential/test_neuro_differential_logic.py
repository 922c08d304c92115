"""NeuroDifferential Logic and job panel on a real MRML scene (headless, slicer-core).

The test bodies live in `orbitai.testing.neuro_differential` (the module's self-test runs the same
functions inside Slicer, where there is no pytest and no Testing/); every ``test_*`` function there is
collected here. The end-to-end ones run the real ``orbitai neuro predict|lesions`` child: they are
skipped, saying why, while that command (or, for ``predict``, an NMOSD-vs-MS bundle) is missing."""
from __future__ import annotations

import functools

import pytest

from orbitai.testing import neuro_differential as shared
from orbitai.testing import neuro_fixtures

#: Tests that run the real child: (the ``orbitai neuro`` command, the bundles it needs besides, whether the
#: child runs to its end on the 182 x 218 x 182 FLAIR: slow, run with -m slow).
NEEDS = {"test_logic_predicts_phantom_into_scene": ("predict", ("classifier",), True),
         "test_panel_cancel_leaves_scene_unchanged": ("lesions", (), False),
         "test_panel_binds_results_to_starting_input": ("lesions", (), True),
         "test_logic_finds_lesions_of_phantom": ("lesions", ("lesion model",), True),
         "test_child_errors_are_one_line": ("lesions", (), True)}


def _why_skip(command: str, bundles: tuple[str, ...]) -> str:
    reason = neuro_fixtures.cli_missing(command)
    if not reason and "classifier" in bundles and not neuro_fixtures.installed():
        reason = f"no NMOSD-vs-MS bundle is installed (orbitai neuro {command} needs one)"
    if not reason and "lesion model" in bundles and not neuro_fixtures.lesion_model_installed():
        reason = f"the default lesion segmentation bundle is not installed (orbitai neuro {command} needs it)"
    return reason


def _needing(fn, command: str, bundles: tuple[str, ...], slow: bool):
    """``fn`` skipped, with the reason, while what it needs is missing."""
    @functools.wraps(fn)
    def test(*args, **kwargs):
        reason = _why_skip(command, bundles)
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
