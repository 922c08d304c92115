"""Self-test steps declare the packages they need by import name; a step is skipped, naming the package as pip
installs it, exactly when one of them is missing (`orbitai.selftest`)."""
from __future__ import annotations

import sys

from orbitai import selftest


def _step(*needs):
    def test_something():
        pass

    return selftest.Step(test_something, (), needs)


def test_model_expands_to_the_model_stack_and_other_needs_are_kept():
    assert _step(selftest.MODEL, "skimage").modules == ("torch", "monai", "skimage")
    assert _step("scipy", "skimage").modules == ("scipy", "skimage")


def test_a_step_is_skipped_naming_only_what_is_missing():
    step = _step(selftest.MODEL, "scipy", "skimage", "sklearn")
    assert step.skip_reason(["skimage"]) == "needs scikit-image, not installed"
    assert step.skip_reason(["monai", "sklearn"]) == "needs monai and scikit-learn, not installed"
    assert step.skip_reason(["captum"]) == ""      # not one of its needs


def test_run_finds_what_is_missing_from_the_steps_needs(monkeypatch):
    """Without ``missing``, `run` looks up every need (not only torch and MONAI): a step needing a package that
    is not importable is skipped, the others run."""
    monkeypatch.setitem(sys.modules, "skimage", None)         # as if scikit-image were not installed
    calls = []

    def test_annotation():
        calls.append("annotation")

    def test_reading():
        calls.append("reading")

    steps = (selftest.Step(test_annotation, (), ("scipy", "skimage")), selftest.Step(test_reading, (), ("scipy",)))
    assert selftest.missing_needs(steps) == ["skimage"]
    report = selftest.run("Demo", steps, lambda: None, progress=lambda _: None)
    assert calls == ["reading"] and report.skipped == {"test_annotation": "needs scikit-image, not installed"}
