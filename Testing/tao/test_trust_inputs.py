"""Issue 69.1, 62.5, 62.7: ``tao trust``, ``ivgc trust`` and ``neuro trust`` fit only on data that can calibrate and write only into
the bundle they were given: validation = training (the same manifest, a shared case_id or a shared image), one
class, one case, a bundled model, a report over an input or the bundle's own metadata.json -- each refused in one
line before any file changes (checksums of the bundle and of the inputs unchanged)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from orbitai.bundle.core import BUILTIN_DIR
from orbitai.classify.trust_command import MIN_CASES_PER_CLASS
from orbitai.cli import main
from orbitai.io import Volume, write_volume

BUNDLES = {"tao": "tao_network_b_demo", "ivgc": "ivgc_svm_demo", "neuro": "neuro_twoview18_demo"}
N = MIN_CASES_PER_CLASS


def _tree(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (and of ``roots`` that are files)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        out.update({str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files})
    return out


def _manifest(d: Path, name: str, rows: list[tuple[str, str, int]]) -> str:
    path = d / name
    path.write_text("case_id,image,segmentation,label\n" + "".join(f"{c},{i},seg.nrrd,{y}\n" for c, i, y in rows))
    return str(path)


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """4N small distinct images (their checksums differ), manifests of training and validation cases, and copies of
    the bundles to fit (a bundle of one's own)."""
    d = tmp_path_factory.mktemp("trust_inputs")
    for i in range(4 * N):
        write_volume(Volume(np.full((8, 8, 8), i, np.int16)), d / f"img{i}.nrrd")
    write_volume(Volume(np.ones((8, 8, 8), np.uint8)), d / "seg.nrrd")
    shutil.copy(d / "img0.nrrd", d / "copy_of_img0.nrrd")
    train = [(f"t{i}", f"img{i}.nrrd", i % 2) for i in range(2 * N)]
    val = [(f"v{i}", f"img{i}.nrrd", i % 2) for i in range(2 * N, 4 * N)]
    _manifest(d, "train.csv", train)
    _manifest(d, "val.csv", val)
    _manifest(d, "val_one_class.csv", [(c, i, 1) for c, i, _ in val])
    _manifest(d, "train_one_case.csv", train[:1])
    _manifest(d, "val_shares_an_id.csv", val[:-1] + [("t3", f"img{4 * N - 1}.nrrd", 1)])
    _manifest(d, "val_shares_an_image.csv", val[:-2] + [("v_copy", "copy_of_img0.nrrd", 0), val[-1]])
    for task, name in BUNDLES.items():
        shutil.copytree(BUILTIN_DIR / name, d / f"my_{task}")
    (d / "notes.json").write_text('{"mine": true}\n')
    return d


CASES = {   # name -> (arguments after the command, words of the one line)
    "validation is the training manifest": (["--manifest", "train.csv", "--validation", "train.csv"],
                                            "same manifest"),
    "validation of one class": (["--manifest", "train.csv", "--validation", "val_one_class.csv"],
                                f"at least {N} cases of each label"),
    "training of one case": (["--manifest", "train_one_case.csv", "--validation", "val.csv"],
                             f"at least {N} cases of each label"),
    "a validation case_id of the training": (["--manifest", "train.csv", "--validation", "val_shares_an_id.csv"],
                                             "Case t3 is in both --manifest and --validation"),
    "a validation image of the training": (["--manifest", "train.csv", "--validation", "val_shares_an_image.csv"],
                                           "same image as case t0"),
    "a test case of the validation": (["--manifest", "train.csv", "--validation", "val.csv", "--test",
                                       "val_shares_an_id.csv"], "is in both --validation and --test"),
    "the report is the validation manifest": (["--manifest", "train.csv", "--validation", "val.csv", "--report",
                                               "val.csv"], "is the input"),
    "the report is the bundle's metadata": (["--manifest", "train.csv", "--validation", "val.csv", "--report",
                                             "{bundle}/metadata.json"], "lies in the bundle"),
    "the report is a user's file": (["--manifest", "train.csv", "--validation", "val.csv", "--report",
                                     "notes.json"], "is not the report of a trust command"),
}


@pytest.mark.parametrize("task", sorted(BUNDLES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_trust_fit_on_data_that_cannot_calibrate_is_refused_before_any_file_changes(d, task, case, capsys,
                                                                                      monkeypatch):
    monkeypatch.chdir(d)
    argv, words = CASES[case]
    bundle = d / f"my_{task}"
    before = _tree(d)
    code = main([task, "trust", "--model", str(bundle), *(a.replace("{bundle}", str(bundle)) for a in argv)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert _tree(d) == before


@pytest.mark.parametrize("task", sorted(BUNDLES))
def test_a_bundled_models_trust_statistics_are_never_rewritten(d, task, capsys, monkeypatch):
    monkeypatch.chdir(d)
    bundled = BUILTIN_DIR / BUNDLES[task]
    before = _tree(bundled, d)
    model = {"tao": "B", "ivgc": "svm", "neuro": "neuro_twoview18_demo"}[task]
    code = main([task, "trust", "--model", model, "--manifest", "train.csv", "--validation", "val.csv"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "bundled model" in err and "copy" in err, err
    assert _tree(bundled, d) == before
