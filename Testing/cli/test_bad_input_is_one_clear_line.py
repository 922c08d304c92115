"""Issue #14, "Tracebacks and unclear messages": each case, run through ``orbitai.cli.main``, ends with
exit 2, exactly one line on stderr naming what was wrong, no traceback and nothing written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, write_volume

BUNDLE = Path(__file__).resolve().parents[2] / "orbitai" / "resources" / "models" / "orbit_svnet_ct_demo"


def _bundle(d: Path, name: str, metadata=None, empty_weights: bool = False) -> str:
    """A copy of the bundled CT model with its metadata edited by ``metadata(dict)`` or model.pt emptied."""
    b = d / name
    shutil.copytree(BUNDLE, b)
    md = json.loads((b / "metadata.json").read_text())
    if metadata:
        metadata(md)
    (b / "metadata.json").write_text(json.dumps(md))
    if empty_weights:
        (b / "model.pt").write_bytes(b"")
    return str(b)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("issue14")
    write_volume(Volume(np.zeros((16, 16, 16), np.float32)), d / "img.nrrd")
    write_volume(Volume(np.zeros((16, 16, 16), np.uint8)), d / "seg.nrrd")
    rows = "".join(f"c{i},img{i}.nrrd,seg.nrrd,{i % 2}\n" for i in range(4))
    for i in range(4):
        shutil.copy(d / "img.nrrd", d / f"img{i}.nrrd")
    (d / "m.csv").write_text("case_id,image,segmentation,label\n" + rows)
    (d / "yes.csv").write_text("case_id,image,segmentation,label\n" + rows.replace("c1,img1.nrrd,seg.nrrd,1",
                                                                                      "c1,img1.nrrd,seg.nrrd,yes"))
    (d / "bin.csv").write_bytes(bytes(range(256)) * 4)
    nrrd = (d / "img.nrrd").read_bytes()
    head, body = nrrd.split(b"\n\n", 1)
    lines = [b"space directions: (0,0,0) (0,1,0) (0,0,1)" if ln.startswith(b"space directions") else ln
             for ln in head.split(b"\n")]
    (d / "zero_spacing.nrrd").write_bytes(b"\n".join(lines) + b"\n\n" + body)
    ct = np.full((16, 16, 16), -1000, np.int32)
    ct[4:12, 4:12, 4:12] = 40
    ct[6:10, 6:10, 6:10] = 1500
    write_volume(Volume((ct * 40).astype(np.int16)), d / "overflow.nrrd")   # HU x 40 wrapped in int16
    (d / "one_class.csv").write_text("case_id,image,segmentation,label\n"
                                     + "".join(f"c{i},img{i}.nrrd,seg.nrrd,1\n" for i in range(4)))
    (d / "file").write_text("not a folder")
    write_volume(Volume(np.zeros((8, 8, 8), np.uint8)), d / "small_seg.nrrd")
    (d / "offgrid.csv").write_text("case_id,image,segmentation\nc0,img0.nrrd,small_seg.nrrd\n")
    # an image with some contrast: a constant one is refused before the model is loaded (issue 32)
    write_volume(Volume(np.random.default_rng(14).normal(0, 100, (16, 16, 16)).astype(np.float32)), d / "noise.nrrd")
    _bundle(d, "noinput", lambda md: md.pop("input"))
    _bundle(d, "nullsum", lambda md: md.update(weights_sha256=None))
    _bundle(d, "emptypt", empty_weights=True)
    return d


def _cases(d: Path) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(case, arguments, words the one error line must contain)."""
    img, m, out = str(d / "img.nrrd"), str(d / "m.csv"), str(d / "out")
    seg_train = ["seg", "train", "--manifest", m, "--config", "svnet-demo-ct", "--out", out]
    return [
        ("seg unknown device", ["seg", "predict", img, "--out", out, "--device", "tpu"], ("Unknown device 'tpu'",)),
        ("seg unavailable mps", ["seg", "predict", img, "--out", out, "--device", "mps"], ("MPS", "not available")),
        ("tao unknown device", ["tao", "predict", img, "--out", out, "--device", "tpu"], ("Unknown device",)),
        ("tao unavailable cuda:7", ["tao", "predict", img, "--out", out, "--device", "cuda:7"], ("cuda",)),
        ("info unknown device", ["info", "--device", "npu"], ("Unknown device 'npu'",)),
        ("info unavailable mps", ["info", "--device", "mps"], ("MPS",)),
        ("out below a file", ["seg", "predict", img, "--out", str(d / "file" / "o")], ("below the file",)),
        ("out is a file", ["seg", "predict", img, "--out", str(d / "file")], ("is a file", "--out")),
        ("phantom out is a file", ["phantom", "tao", "--n", "1", "--out", str(d / "file")], ("Not a directory",)),
        ("seg unknown config", ["seg", "train", "--manifest", m, "--config", "nope", "--out", out],
         ("Unknown segmentation configuration 'nope'",)),
        ("fold out of range", seg_train + ["--folds", "2", "--fold", "2"], ("--fold must be between 0 and 1",)),
        ("too few cases for folds", seg_train + ["--folds", "5"], ("--folds 5", "the manifest has 4")),
        ("seg negative seed", seg_train + ["--seed", "-1"], ("--seed must be 0 or more", "-1")),
        ("demo negative seed", ["demo", "--seed", "-1", "--out", out], ("--seed must be 0 or more", "-1")),
        ("demo with a TAO model", ["demo", "--model", "tao_network_b_demo", "--device", "cpu", "--out", out],
         ("tao_activity model, not a segmentation model",)),
        ("seg negative epochs", seg_train + ["--epochs", "-1"], ("--epochs must be at least 1",)),
        ("tao negative seed", ["tao", "train", "--manifest", m, "--seed", "-3", "--out", out], ("--seed", "-3")),
        ("tao cv negative seed", ["tao", "cv", "--manifest", m, "--seed", "-3", "--out", out], ("--seed", "-3")),
        ("tao cv one fold", ["tao", "cv", "--manifest", m, "--folds", "1", "--out", out],
         ("--folds must be at least 2",)),
        ("tao cv more folds than cases", ["tao", "cv", "--manifest", m, "--folds", "10", "--out", out],
         ("--folds 10", "the manifest has 4")),
        ("holdout 1.5", ["tao", "train", "--manifest", m, "--holdout", "1.5", "--out", out],
         ("--holdout must be a fraction", "1.5")),
        # item 3: folds and test splits that cannot hold every class are refused before any work, with the numbers
        ("tao cv folds equal to cases", ["tao", "cv", "--manifest", m, "--folds", "4", "--out", out],
         ("--folds 4 needs at least 4 cases of each", "2 cases of label 0, 2 cases of label 1", "fewer folds")),
        ("tao cv a class too small for the folds", ["tao", "cv", "--manifest", m, "--folds", "3", "--out", out],
         ("--folds 3 needs at least 3 cases of each", "2 cases of label 0", "fewer folds")),
        ("tao cv one class", ["tao", "cv", "--manifest", str(d / "one_class.csv"), "--folds", "2", "--out", out],
         ("--folds 2", "4 cases of label 1")),
        ("tao holdout of one case", ["tao", "train", "--manifest", m, "--holdout", "0.2", "--out", out],
         ("--holdout 0.2 of 4 cases holds out 1", "2 cases of label 0, 2 cases of label 1", "--holdout 0")),
        ("tao holdout leaving one case", ["tao", "train", "--manifest", m, "--holdout", "0.9", "--out", out],
         ("--holdout 0.9 of 4 cases holds out 4",)),
        ("tao train one class", ["tao", "train", "--manifest", str(d / "one_class.csv"), "--holdout", "0",
                                 "--out", out], ("All 4 cases have label 1", "both active")),
        ("tao train one class with holdout", ["tao", "train", "--manifest", str(d / "one_class.csv"), "--out", out],
         ("4 cases of label 1",)),
        # a wrong --model is named before any case is read (not after checking or predicting them)
        ("seg evaluate unknown model before the cases", ["seg", "evaluate", "--manifest", str(d / "offgrid.csv"),
                                                         "--model", "nope", "--out", out],
         ("No model bundle named 'nope'",)),
        ("tao evaluate unknown model before the cases", ["tao", "evaluate", "--manifest", m, "--model", "nope",
                                                         "--out", out], ("No model bundle named 'nope'",)),
        ("seg folds out of range for one fold", seg_train + ["--folds", "1", "--fold", "1"],
         ("--fold must be between 0 and 0",)),
        ("label yes (train)", ["tao", "train", "--manifest", str(d / "yes.csv"), "--out", out], ("c1", "label", "'yes'")),
        ("label yes (evaluate)", ["tao", "evaluate", "--manifest", str(d / "yes.csv"), "--model", "B", "--out", out],
         ("c1", "label", "'yes'")),
        ("one class counted in cases", ["tao", "evaluate", "--manifest", str(d / "one_class.csv"), "--model", "B",
                                        "--out", out], ("All 4 cases", "one_class.csv", "both active")),
        ("integer-overflowed CT", ["seg", "predict", str(d / "overflow.nrrd"), "--out", out, "--device", "cpu"],
         ("overflow.nrrd", "wrapped", "integer overflow")),
        ("zero voxel spacing", ["seg", "predict", str(d / "zero_spacing.nrrd"), "--out", out],
         ("zero_spacing.nrrd", "invalid voxel spacing", "export the image again")),
        ("binary manifest (seg)", ["seg", "train", "--manifest", str(d / "bin.csv"), "--config", "svnet-demo-ct",
                                   "--out", out], ("bin.csv", "not a CSV text file")),
        ("binary manifest (tao)", ["tao", "evaluate", "--manifest", str(d / "bin.csv"), "--model", "B", "--out", out],
         ("bin.csv", "not a CSV text file")),
        ("bundle without input", ["seg", "predict", str(d / "noise.nrrd"), "--out", out, "--model", str(d / "noinput"),
                                  "--device", "cpu"], ("noinput", "input")),
        ("bundle null checksum", ["seg", "predict", str(d / "noise.nrrd"), "--out", out, "--model", str(d / "nullsum"),
                                  "--device", "cpu"], ("nullsum", "weights_sha256")),
        ("bundle empty model.pt", ["seg", "predict", str(d / "noise.nrrd"), "--out", out, "--model", str(d / "emptypt"),
                                   "--device", "cpu"], ("emptypt", "checksum mismatch", "model.pt")),
    ]


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.mark.parametrize("index", range(len(_cases(Path(".")))), ids=[c[0] for c in _cases(Path("."))])
def test_each_bad_input_is_one_clear_line(inputs, index, capsys):
    name, args, words = _cases(inputs)[index]
    before = _listing(inputs)
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (name, code, err)
    assert len(lines) == 1 and "Traceback" not in err and ": error: " in lines[0], err
    assert all(w.lower() in lines[0].lower() for w in words), (words, lines[0])
    assert _listing(inputs) == before
