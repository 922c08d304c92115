"""A module's self-test as a list of steps, run the same way inside Slicer and in a plain Python.

Each module's shared test file declares ``SELF_TEST``: `Step`s naming a test function of that file, the
arguments it takes (``ctx``: a fresh MRML context; ``tmp``: a fresh folder) and what it needs beyond the
module itself: the Python packages it imports that Slicer does not bundle (by import name; `MODEL` stands for
the model stack, torch and MONAI: Slicer's PyTorch extension installs torch; Slicer 5.8/5.10 bundle numpy,
scipy, SimpleITK, pillow and pydicom but not scikit-image, scikit-learn, matplotlib, ...) and/or a condition
(e.g. a demo bundle installed). `run` runs every step whose needs are met and names the others with the
reason, so a Slicer without them (an extension-testing machine, a fresh install) tests everything else and
says what it skipped. Inside Slicer, run from the GUI, `orbitai.mrml.selftest.run_in_slicer` first offers to
install what the steps need (the module's ``ensureDependencies``, with the user's consent); under ``--testing``
it never asks.
"""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["MODEL", "MODEL_STACK", "Report", "Step", "missing_needs", "model_stack_missing", "run"]

#: Import names of the packages that run the networks (the module requirements' torch and MONAI).
MODEL_STACK = ("torch", "monai")
MODEL = "model"   #: `Step.needs` value: the step runs a network (in a child process)
#: Import name -> the name pip installs, where they differ (for the skip reasons).
_DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml",
                  "radiomics": "pyradiomics-bhklab"}


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package that does not import; a module without a spec
        return True


def model_stack_missing() -> list[str]:
    """The model-stack packages that cannot be imported here (found without importing them)."""
    return [m for m in MODEL_STACK if _absent(m)]


def missing_needs(steps: Sequence["Step"]) -> list[str]:
    """Import names that ``steps`` need and that cannot be imported here (found without importing them)."""
    needed = dict.fromkeys(m for step in steps for m in step.modules)
    return [m for m in needed if _absent(m)]


@dataclass(frozen=True)
class Step:
    """One test function of a module's self-test (see the module docstring)."""

    test: Callable[..., Any]
    args: tuple[str, ...] = ()
    #: Import names of the packages beyond Slicer's own that the step imports; `MODEL`: torch and MONAI.
    needs: tuple[str, ...] = ()
    #: Returns "" when the step can run, else why not (e.g. "the SVM demo bundle is not installed").
    when: Optional[Callable[[], str]] = None

    @property
    def name(self) -> str:
        return self.test.__name__

    @property
    def modules(self) -> tuple[str, ...]:
        """The import names the step needs (`MODEL` expanded to the model stack)."""
        out: list[str] = []
        for need in self.needs:
            out += MODEL_STACK if need == MODEL else (need,)
        return tuple(dict.fromkeys(out))

    def skip_reason(self, missing: Sequence[str]) -> str:
        """Why the step cannot run ("" when it can): the packages of ``missing`` it needs, else its condition."""
        absent = [_DISTRIBUTIONS.get(m, m) for m in self.modules if m in missing]
        if absent:
            return f"needs {' and '.join(absent)}, not installed"
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
    ``missing``: the import names to treat as absent (default: those the steps need that are not installed)."""
    missing = missing_needs(steps) if missing is None else list(missing)
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
