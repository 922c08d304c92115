"""A module's self-test as a list of steps, run the same way inside Slicer and in a plain Python.

Each module's shared test file declares ``SELF_TEST``: `Step`s naming a test function of that file, the
arguments it takes (``ctx``: a fresh MRML context; ``tmp``: a fresh folder) and what it needs beyond the
module itself: the model stack (torch and MONAI, which a fresh Slicer lacks: Slicer's PyTorch extension
installs torch) and/or a condition (e.g. a demo bundle installed). `run` runs every step whose needs are
met and names the others with the reason, so a Slicer without the model stack (an extension-testing
machine, a fresh install) tests everything else and says what it skipped. Inside Slicer, run from the GUI,
`orbitai.mrml.selftest.run_in_slicer` first offers to install the model stack (the module's ``ensureDependencies``, with the
user's consent); under ``--testing`` it never asks.
"""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["MODEL_STACK", "Report", "Step", "model_stack_missing", "run"]

#: Import names of the packages that run the networks (the module requirements' torch and MONAI).
MODEL_STACK = ("torch", "monai")
MODEL = "model"   #: `Step.needs` value: the step runs a network (in a child process)


def model_stack_missing() -> list[str]:
    """The model-stack packages that cannot be imported here (found without importing them)."""
    return [m for m in MODEL_STACK if importlib.util.find_spec(m) is None]


@dataclass(frozen=True)
class Step:
    """One test function of a module's self-test (see the module docstring)."""

    test: Callable[..., Any]
    args: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    #: Returns "" when the step can run, else why not (e.g. "the SVM demo bundle is not installed").
    when: Optional[Callable[[], str]] = None

    @property
    def name(self) -> str:
        return self.test.__name__

    def skip_reason(self, missing: Sequence[str]) -> str:
        if MODEL in self.needs and missing:
            return f"needs {' and '.join(missing)}, not installed"
        return self.when() if self.when is not None else ""


@dataclass
class Report:
    """What a self-test ran and skipped (with the reasons)."""

    module: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph: passed count; each skip reason with the steps it skipped."""
        text = f"{self.module} self-test passed: {len(self.passed)} tests in {self.seconds:.0f} s."
        by_reason: dict[str, list[str]] = {}
        for name, why in self.skipped.items():
            by_reason.setdefault(why, []).append(name)
        for why, names in by_reason.items():
            text += f" Skipped {len(names)} ({why}): {', '.join(names)}."
        return text


def run(module: str, steps: Sequence[Step], new_context: Callable[[], Any], progress: Callable[[str], None] = print,
        missing: Optional[Sequence[str]] = None) -> Report:
    """Run ``steps`` (each on a fresh context from ``new_context`` and a fresh folder); a failing step raises.
    ``missing``: the model-stack packages to treat as absent (default: those not installed)."""
    missing = model_stack_missing() if missing is None else list(missing)
    report, t0 = Report(module), time.monotonic()
    root = Path(tempfile.mkdtemp(prefix=f"orbitai-selftest-{module}-"))
    try:
        for n, step in enumerate(steps):
            why = step.skip_reason(missing)
            if why:
                report.skipped[step.name] = why
                continue
            ctx = new_context()
            values = {"ctx": ctx, "tmp": root / str(n)}
            step.test(*[values[a] for a in step.args])
            report.passed.append(step.name)
            progress(f"passed {step.name}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    return report
