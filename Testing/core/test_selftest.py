"""The modules' self-test runner (`orbitai.selftest`): steps run on fresh contexts, the ones whose
needs are not met are named with the reason, a failing step fails the self-test."""
from __future__ import annotations

import pytest

from orbitai import selftest


def _steps(calls):
    def test_reads_files(ctx, tmp_path):
        calls.append(("files", ctx, tmp_path.name))

    def test_runs_the_network(ctx):
        calls.append(("network", ctx))

    def test_needs_a_bundle():
        calls.append(("bundle",))

    return (selftest.Step(test_reads_files, ("ctx", "tmp")),
            selftest.Step(test_runs_the_network, ("ctx",), (selftest.MODEL,)),
            selftest.Step(test_needs_a_bundle, (), (), lambda: "the demo bundle is not installed"))


def test_steps_without_their_needs_are_named_with_the_reason():
    calls: list = []
    contexts = iter(range(100))
    report = selftest.run("Demo", _steps(calls), lambda: next(contexts), progress=lambda _: None,
                          missing=["torch", "monai"])
    assert calls == [("files", 0, "0")]
    assert report.passed == ["test_reads_files"]
    assert report.skipped == {"test_runs_the_network": "needs torch and monai, not installed",
                              "test_needs_a_bundle": "the demo bundle is not installed"}
    text = report.summary()
    assert text.startswith("Demo self-test passed: 1 tests")
    assert "Skipped 1 (needs torch and monai, not installed): test_runs_the_network." in text
    assert "Skipped 1 (the demo bundle is not installed): test_needs_a_bundle." in text


def test_with_the_model_stack_every_step_runs_on_its_own_context():
    calls: list = []
    contexts = iter(range(100))
    steps = _steps(calls)[:2]
    report = selftest.run("Demo", steps, lambda: next(contexts), progress=lambda _: None, missing=[])
    assert calls == [("files", 0, "0"), ("network", 1)] and not report.skipped


def test_a_failing_step_fails_the_self_test():
    def test_broken(ctx):
        raise AssertionError("the segmentation is empty")

    with pytest.raises(AssertionError, match="the segmentation is empty"):
        selftest.run("Demo", (selftest.Step(test_broken, ("ctx",)),), lambda: None, progress=lambda _: None,
                     missing=[])
