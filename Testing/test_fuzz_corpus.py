"""The fuzz corpus replayed without Atheris (issue 80): every seed and every input a fuzz run found a crash with
(``fuzz/corpus/<reader>/``) goes through its target's reader (``fuzz/fuzz_<reader>.py``: ``read``), which must
answer or refuse in one line of OrbitAI's own errors; any other exception, or a message of several lines, fails.

The fuzzing itself (``make fuzz``, docs/reliability.md "Fuzzing") needs Atheris; this replay does not."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
CORPUS = FUZZ / "corpus"
TARGETS = sorted(p.stem[len("fuzz_"):] for p in FUZZ.glob("fuzz_*.py"))
#: Targets that need the headless MRML scene (slicer-core, the 'mrml' extra).
NEEDS_SLICER = {"mrb", "mrml"}


def _cases() -> list:
    cases = []
    for target in TARGETS:
        marks = [pytest.mark.skipif(importlib.util.find_spec("slicer") is None, reason="needs slicer-core")] \
            if target in NEEDS_SLICER else []
        for path in sorted((CORPUS / target).iterdir()):
            cases.append(pytest.param(target, path, id=f"{target}/{path.name}", marks=marks))
    return cases


@pytest.fixture(scope="module", autouse=True)
def fuzz_on_path():
    sys.path.insert(0, str(FUZZ))
    yield
    sys.path.remove(str(FUZZ))


def test_every_target_has_a_corpus():
    assert TARGETS, "no fuzz targets found"
    for target in TARGETS:
        assert any((CORPUS / target).iterdir()), f"fuzz/corpus/{target} is empty"
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 1 << 20, f"the committed corpus is {total} bytes; keep it under 1 MB"


@pytest.mark.parametrize(("target", "path"), _cases())
def test_corpus_file(target, path):
    module = importlib.import_module(f"fuzz_{target}")
    importlib.import_module("fuzzlib").check(module.read, path.read_bytes())
