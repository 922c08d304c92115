"""Issue 62.4, 62.5 (bar): a command writes only into a new folder or its own earlier output. Every command with an
output folder (or file), pointed at (a) another command's result, (b) a bundled model's folder and (c) a folder of the
user's files, changes nothing of the user's or of the package's (checksums of every file before and after); the
bundled models' folder gets no new file either. Plus the two reproductions: ``tao predict`` without
``--segmentation`` into a ``seg predict`` result, and ``seg rank --out`` over the user's own ``ranking.csv``."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from orbitai.bundle.core import BUILTIN_DIR
from orbitai.cli import main
from orbitai.io import Volume, write_volume

BUNDLED = BUILTIN_DIR / "tao_network_b_demo"
#: Names a user's folder may hold that commands also write.
USER_FILES = ("notes.txt", "result.json", "ranking.csv", "metrics.json", "predictions.csv", "summary.csv",
              "volumes.csv", "cv.json", "table2.json", "manifest.csv", "report.png", "occlusion.nrrd", "gradcam.nrrd",
              "segmentation.seg.nrrd", "prior.nrrd", "features.csv", "selection.json", "evaluation.json")


def _checksums(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Blank 16^3 images (refused by every model before any work once the outputs pass) and manifests."""
    d = tmp_path_factory.mktemp("not_theirs")
    inputs = d / "inputs"
    inputs.mkdir()
    write_volume(Volume(np.zeros((16, 16, 16), np.float32)), inputs / "img.nrrd")
    seg = np.zeros((16, 16, 16), np.uint8)
    seg[6:10, 6:10, 6:10] = 1
    write_volume(Volume(seg), inputs / "seg.nrrd")
    (inputs / "m.csv").write_text("case_id,image,segmentation,label\n"
                                  + "".join(f"c{i},img.nrrd,seg.nrrd,{i % 2}\n" for i in range(4)))
    return d


def _commands(i: Path) -> dict[str, Callable[[str], list[str]]]:
    img, seg, m = str(i / "img.nrrd"), str(i / "seg.nrrd"), str(i / "m.csv")
    return {
        "seg predict": lambda o: ["seg", "predict", img, "--out", o],
        "seg prior": lambda o: ["seg", "prior", img, "--out", o],
        "seg rank": lambda o: ["seg", "rank", img, "--out", o],
        "seg evaluate": lambda o: ["seg", "evaluate", "--manifest", m, "--model", "orbit_svnet_ct_demo", "--out", o],
        "seg train": lambda o: ["seg", "train", "--manifest", m, "--config", "svnet-demo-ct", "--epochs", "1",
                                "--out", o],
        "seg finetune": lambda o: ["seg", "finetune", "--manifest", m, "--out", o],
        "tao predict": lambda o: ["tao", "predict", img, "--out", o],
        "tao evaluate": lambda o: ["tao", "evaluate", "--manifest", m, "--model", "B", "--out", o],
        "tao train": lambda o: ["tao", "train", "--manifest", m, "--epochs", "1", "--holdout", "0", "--out", o],
        "tao cv": lambda o: ["tao", "cv", "--manifest", m, "--folds", "2", "--epochs", "1", "--out", o],
        "ivgc predict": lambda o: ["ivgc", "predict", img, "--segmentation", seg, "--out", o],
        "ivgc evaluate": lambda o: ["ivgc", "evaluate", "--manifest", m, "--model", "svm", "--out", o],
        "ivgc train": lambda o: ["ivgc", "train", "--manifest", m, "--model", "resnet50", "--epochs", "1",
                                 "--out", o],
        "ivgc cv": lambda o: ["ivgc", "cv", "--manifest", m, "--model", "resnet50", "--folds", "2", "--out", o],
        "neuro lesions": lambda o: ["neuro", "lesions", img, "--out", o],
        "neuro predict": lambda o: ["neuro", "predict", img, "--out", o],
        "neuro evaluate": lambda o: ["neuro", "evaluate", "--manifest", m, "--model", "neuro_twoview18_demo",
                                     "--out", str(Path(o) / "evaluation.json")],
        "neuro train": lambda o: ["neuro", "train", "--manifest", m, "--epochs", "1", "--holdout", "0", "--out", o],
        "neuro cv": lambda o: ["neuro", "cv", "--manifest", m, "--folds", "2", "--out", o],
        "neuro finetune-lesions": lambda o: ["neuro", "finetune-lesions", "--manifest", m, "--out", o],
        "phantom tao": lambda o: ["phantom", "tao", "--n", "1", "--out", o],
    }


COMMANDS = sorted(_commands(Path(".")))


def _other_result(folder: Path, command: str) -> Path:
    """A result folder of another command than ``command``: its result.json and the files it lists."""
    task, files = (("tao_activity", {"occlusion": "occlusion.nrrd"}) if command.startswith("seg ") else
                   ("segmentation", {"segmentation": "segmentation.seg.nrrd", "volumes": "volumes.csv"}))
    folder.mkdir(parents=True)
    for name in files.values():
        (folder / name).write_text(f"{task}'s {name}")
    (folder / "result.json").write_text(json.dumps({"task": task, "model": "m", "warnings": [], "files": files}))
    return folder


def _user_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in USER_FILES:
        (folder / name).write_text(f"the user's {name}")
    return folder


@pytest.mark.parametrize("target", ["another command's result", "a bundled model's folder", "a folder of user files"])
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_changes_what_is_not_its_own(d, tmp_path, capsys, command, target):
    if target == "another command's result":
        out = _other_result(tmp_path / "other", command)
    elif target == "a folder of user files":
        out = _user_folder(tmp_path / "mine")
    else:
        out = BUNDLED
    before, package = _checksums(out, d), _checksums(BUILTIN_DIR)
    backup = shutil.copytree(BUNDLED, tmp_path / "backup")
    try:
        code = main(_commands(d / "inputs")[command](str(out)))
    finally:
        changed = _checksums(BUILTIN_DIR) != package
        if changed:               # a failing command must not leave the checkout's bundled model changed
            shutil.rmtree(BUNDLED)
            shutil.copytree(backup, BUNDLED)
    err = capsys.readouterr().err
    assert not changed, (command, err)                                      # the package: no file changed or added
    now = _checksums(out, d)
    assert {f: now.get(f) for f in before} == before, (command, err)     # every earlier file as it was
    if target == "a bundled model's folder":
        assert code == 2 and "bundled models' folder" in err and len(err.strip().splitlines()) == 1, (command, err)


def test_tao_predict_without_a_segmentation_keeps_a_seg_predict_result(d, tmp_path, capsys):
    out = _other_result(tmp_path / "seg_result", "tao predict")
    before = _checksums(out)
    assert main(["tao", "predict", str(d / "inputs" / "img.nrrd"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "segmentation result of another command" in err, err
    assert _checksums(out) == before


def test_seg_rank_keeps_the_users_own_ranking(d, tmp_path, capsys):
    out = tmp_path / "review"
    out.mkdir()
    (out / "ranking.csv").write_text("patient,priority\nA,1\n")
    assert main(["seg", "rank", str(d / "inputs" / "img.nrrd"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ranking.csv" in err and "not written by this command" in err, err
    assert (out / "ranking.csv").read_text() == "patient,priority\nA,1\n"
