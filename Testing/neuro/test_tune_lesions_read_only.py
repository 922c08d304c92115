"""Issue #62 item 5: bundled models are read-only for every command; ``neuro tune-lesions --bundle`` rewrote the
bundled lesion network's metadata."""
from __future__ import annotations

import pytest

from orbitai.bundle.core import BUILTIN_DIR
from orbitai.cli import main
from orbitai.io.checksums import sha256_file

BUNDLE = "neuro_lesion_unet_demo"


@pytest.mark.parametrize("given", ["name", "folder"])
def test_tune_lesions_refuses_a_bundled_model_before_any_work(capsys, monkeypatch, given):
    monkeypatch.delenv("ORBITAI_WRITE_BUNDLED_MODELS", raising=False)
    metadata = BUILTIN_DIR / BUNDLE / "metadata.json"
    before = sha256_file(metadata)
    arg = BUNDLE if given == "name" else str(BUILTIN_DIR / BUNDLE)
    assert main(["neuro", "tune-lesions", "--bundle", arg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled models' folder" in err[0], err
    assert sha256_file(metadata) == before
