"""Property test of the command line (issue #14): random argument combinations, valid and invalid, drawn
from a seeded generator for every command. Each run must either succeed (exit 0, its outputs complete) or
fail with exit 1 or 2 and exactly one non-empty line on stderr, no traceback, and nothing new on disk
(the working folder and the temporary folder are listed before and after; outputs count only on exit 0)."""
from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from orbitai.cli import build_parser, main
from orbitai.io import Volume, write_volume
from orbitai.phantoms.cohort import KINDS as PHANTOM_KINDS

SEED = 14


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Tiny inputs: a 16^3 image and label map, a 4-case manifest, a binary manifest, a plain file, a folder."""
    d = tmp_path_factory.mktemp("property")
    write_volume(Volume(np.zeros((16, 16, 16), np.float32)), d / "img.nrrd")
    write_volume(Volume(np.zeros((16, 16, 16), np.uint8)), d / "seg.nrrd")
    (d / "m.csv").write_text("case_id,image,segmentation,label\n"
                             + "".join(f"c{i},img.nrrd,seg.nrrd,{i % 2}\n" for i in range(4)))
    (d / "bin.csv").write_bytes(bytes(range(256)))
    (d / "file").write_text("not a folder")
    (d / "folder").mkdir()
    # issue #32 part B: a segmentation off the image's grid (shifted 30 mm; another grid) and a feature table
    # recording other files than the manifest's (its rows' SHA-256 do not match)
    write_volume(Volume(np.zeros((16, 16, 16), np.uint8), origin=(30.0, 0.0, 0.0)), d / "shifted_seg.nrrd")
    write_volume(Volume(np.zeros((32, 32, 32), np.uint8), (0.5, 0.5, 0.5)), d / "fine_seg.nrrd")
    (d / "stale.csv").write_text("case_id,inputs_sha256,image_sha256,segmentation_sha256,mr_f\n"
                                 + "".join(f"c{i},{'0' * 64},{'1' * 64},{'2' * 64},{i}.0\n" for i in range(4)))
    # issue #32 part A: a constant and a 0-byte image, a semicolon-separated manifest, a folder of the user's
    # (never emptied by an --out) and a cohort folder named like the shipped protocol in the working folder
    write_volume(Volume(np.full((16, 16, 16), 7.0, np.float32)), d / "const.nrrd")
    (d / "zero.nrrd").write_bytes(b"")
    (d / "semi.csv").write_text((d / "m.csv").read_text().replace(",", ";"))
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("mine")
    (d / "ivgc").mkdir()
    return d


def _pools(d: Path) -> dict[str, dict[str, list[str | None]]]:
    """Per command: each option's candidate values (None: option left out; '!': a flag given)."""
    files = [str(d / "img.nrrd"), str(d / "missing.nrrd"), str(d / "folder"), str(d / "m.csv"), "", str(d / "file"),
             str(d / "const.nrrd"), str(d / "zero.nrrd")]
    manifests = [str(d / "m.csv"), str(d / "bin.csv"), str(d / "missing.csv"), str(d / "folder"), str(d / "img.nrrd"),
                 str(d / "semi.csv")]
    outs = [str(d / "out"), str(d / "img.nrrd"), str(d / "m.csv"), str(d / "file"), str(d / "file" / "o"),
            str(d / "folder"), str(d / "o.nrrd"), str(d), str(d / "mine")]
    overwrite: list[str | None] = [None, "!"]   # the trainings' --overwrite flag (issue #32 part A)
    devices = [None, "cpu", "tpu", "cuda:99", "mps", ""]
    tables = [str(d / "table.csv"), str(d / "m.csv"), str(d / "img.nrrd"), str(d / "folder"), str(d / "file" / "t.csv"),
              str(d / "new" / "t.json")]
    ints = ["0", "1", "-1", "2", "99999999999", "x", "1.5"]
    off_grid = [str(d / "shifted_seg.nrrd"), str(d / "fine_seg.nrrd")]
    resample = {"--resample-masks": [None, "!"]}
    # issue 34: the cohort form of every predict command; no draw starts a Dask cluster (--workers 0 or invalid,
    # a scheduler on a closed local port or a malformed address)
    cohort = {"--manifest": [None, *manifests], "--workers": [None, "0", "-1", "x"],
              "--scheduler": [None, "tcp://127.0.0.1:9", "nope"]}
    # issue 34: training on several processes; no draw launches them (--nproc 1 or invalid)
    nproc = {"--nproc": [None, "1", "0", "-1", "x"]}
    # issue 33: a series to choose (none here is a DICOM folder) or a DICOMweb URL on a closed local port
    series: list[str | None] = [None, "1.2.3"]
    dicom_attributes: list[str | None] = [None, '{"PatientID": "1"}', "{bad", '{"Weight": "70"}']
    files = [*files, "http://127.0.0.1:9/dicom-web/studies/1.2.3", "http://x/no-study"]
    return {
        "info": {"--device": devices},
        # the model registry (issue #64): never a download from outside (the sweep points the registry at a closed
        # local port and the user's model folder at a private one)
        "models list": {},
        "models verify": {"NAME": [None, "orbit_svnet_ct_demo", "no_such_model", "../x", ""]},
        "models install": {"NAME|FILE|FOLDER|URL": ["orbit_svnet_ct_demo", "no_such_model", str(d / "folder"),
                                                    str(d / "img.nrrd"), "http://127.0.0.1:9/x.tar.gz", "../x", ""],
                           "--sha256": [None, "0" * 64, "xyz"]},
        "models remove": {"NAME": ["orbit_svnet_ct_demo", "no_such_model", "../x", "", "/"]},
        "seg configs": {},
        "tao configs": {},
        "phantom": {"kind": [*PHANTOM_KINDS, "weather"], "--n": [None, "1", "0", "-2", "10001", "x"],
                    "--seed": [None, "0", "-5", "x"], "--out": outs, "--montage-cases": [None, "0", "-1", "x"]},
        "scan describe": {"image": files, "--modality": [None, "auto", "T2-FS", "us", "ct"], "--json": [None, "!"]},
        # never a usable count here, so that a draw never starts a real training
        "scan train": {"--out": outs, "--per-template": ["1", "0", "-1", "x"], "--test-per-template": [None, "0", "x"],
                       "--workers": [None, "0", "x"], "--seed": [None, "x"], "--results": [None, *tables]},
        "seg predict": {"image": [None, *files], "--modality": [None, "MR", "nope"], "--series": series, "--dicom-attributes": dicom_attributes, "--out": outs, "--device": devices,
                        "--model": [None, "nope", "tao_network_b_demo", str(d / "folder")],
                        "--window": [None, "step1", "sideways"], "--uncertainty": [None, "!"], **cohort},
        "seg prior": {"image": files, "--series": series, "--dicom-attributes": dicom_attributes, "--out": outs, "--device": devices,
                      "--model": [None, "nope", "tao_network_b_demo", str(d / "folder")], "--key": [None, "abc"]},
        "seg evaluate": {"--manifest": manifests, "--model": ["orbit_svnet_ct_demo", "nope", "B"], "--out": outs,
                         "--device": devices},
        "seg train": {**nproc, "--manifest": manifests, "--config": ["svnet-demo-ct", "nope"], "--out": outs,
                      "--seed": [None, *ints], "--epochs": ["1", "0", "-1", "x"], "--folds": [None, *ints],
                      "--fold": [None, *ints], "--device": devices, "--time-limit": ["0.01", "0", "-1", "x"],
                      "--overwrite": overwrite},
        # issue 48: never a usable --steps here, so that a draw never starts a real fine-tuning
        "seg finetune": {"--manifest": manifests, "--base": [None, "nope", "tao_network_b_demo"],
                         "--name": [None, "mine", "../up", "orbit_svnet_ct_demo"], "--out": [None, *outs],
                         "--steps": ["0", "-1", "x"], "--folds": [None, *ints], "--eval-every": [None, *ints], "--replay-share": [None, "0.5", "2", "x"],
                         "--seed": [None, *ints], "--summary": [None, *outs], "--device": devices,
                         "--no-resume": [None, "!"], "--overwrite": overwrite},
        "seg rank": {"image": [None, *files], "--manifest": [None, *manifests], "--model": [None, "nope"],
                     "--out": outs, "--device": devices},
        "tao predict": {"image": [None, *files], "--modality": [None, "T2-FS", "x"], **cohort, "--series": series, "--dicom-attributes": dicom_attributes, "--out": outs, "--device": devices, "--model": [None, "A", "C"],
                        "--segmentation": [None, str(d / "seg.nrrd"), str(d / "missing.nrrd"), str(d / "m.csv"),
                                           *off_grid],
                        "--no-maps": [None, "!"], **resample},
        "tao evaluate": {"--manifest": manifests, "--model": ["B", "nope"], "--out": outs, "--device": devices,
                         "--no-maps": [None, "!"], **resample},
        "tao train": {**nproc, "--manifest": manifests, "--network": [None, "A", "C"], "--out": outs,
                      "--epochs": [None, *ints], "--holdout": [None, "0.5", "1.5", "-0.1", "x"],
                      "--seed": [None, *ints], "--device": devices, "--overwrite": overwrite},
        # never a usable bundle here, so that a draw never rewrites one
        "tao trust": {"--model": ["nope", str(d / "folder")], "--manifest": manifests, "--validation": manifests,
                      "--test": [None, *manifests], "--report": [None, *tables], "--cache": [None, str(d / "file")],
                      "--device": devices},
        "ivgc trust": {"--model": ["nope", str(d / "folder")], "--manifest": manifests, "--validation": manifests,
                       "--test": [None, *manifests], "--report": [None, *tables], "--cache": [None, str(d / "file")],
                       "--device": devices},
        "neuro trust": {"--model": ["nope", str(d / "folder")], "--manifest": manifests, "--validation": manifests,
                        "--test": [None, *manifests], "--report": [None, *tables], "--cache": [None, str(d / "file")],
                        "--device": devices},
        "tao cv": {"--manifest": manifests, "--folds": [None, *ints], "--runs": [None, *ints],
                   "--epochs": [None, *ints], "--seed": [None, *ints], "--out": outs, "--device": devices},
        "demo": {"--device": ["tpu", "cuda:99", "mps"], "--out": outs, "--seed": [None, "0", "-1", "x"],
                 "--model": [None, "nope", "tao_network_b_demo"]},   # a failing demo only (a real one takes minutes)
        # --out is a file (CSV/JSON); no Dask cluster here (--workers 0 or invalid): the contract is the command's
        "ivgc features": {"--manifest": manifests, "--out": tables, "--strategies": [None, "sr", "all", "nope"],
                          "--reader": [None, "1", "2", "3"], "--workers": ["0", "-1", "x"],
                          "--protocol": [None, "ivgc", "nope", str(d / "m.csv"), "./ivgc"], **resample},
        "ivgc select": {"--manifest": manifests, "--features": [str(d / "m.csv"), str(d / "missing.csv"),
                                                               str(d / "bin.csv"), str(d / "folder"),
                                                               str(d / "stale.csv")],
                        "--repeat": [None, str(d / "m.csv"), str(d / "missing.csv"), str(d / "stale.csv")],
                        "--out": tables,
                        "--icc": [None, "0.75", "2", "-1", "x"], "--alpha": [None, "0.05", "0", "1.5"],
                        "--lasso": [None, "logistic", "ridge"], "--cv": [None, "5", "1", "0", "x"],
                        "--seed": [None, *ints], "--workers": ["0", "-1"]},
        # the inputs are blank volumes: every training and prediction fails on them (no rectus), fast
        "ivgc train": {**nproc, "--manifest": manifests, "--features": [None, str(d / "m.csv"), str(d / "missing.csv"),
                                                               str(d / "stale.csv")],
                       "--selection": [None, str(d / "m.csv"), str(d / "bin.csv")],
                       "--model": ["svm", "resnet50", "rdinet_clinical", "nope"], "--strategy": [None, "mrlr", "nope"],
                       "--config": [None, "demo", "paper-rdinet", "nope"], "--epochs": [None, *ints],
                       "--holdout": [None, "0", "0.5", "1.5", "x"], "--seed": [None, *ints], "--device": devices,
                       "--out": outs, "--overwrite": overwrite},
        "ivgc predict": {"image": [None, *files], **cohort, "--series": series, "--dicom-attributes": dicom_attributes, "--segmentation": [str(d / "seg.nrrd"), str(d / "missing.nrrd"),
                                                            str(d / "m.csv"), *off_grid, None], **resample,
                         "--model": [None, "svm", "nope", "tao_network_b_demo"],
                         "--strategy": [None, "mrlr", "all", "nope"],
                         "--clinical": [None, str(d / "m.csv"), str(d / "missing.json")], "--no-gradcam": [None, "!"],
                         "--device": devices, "--out": outs},
        "ivgc evaluate": {"--manifest": manifests, "--features": [None, str(d / "m.csv"), str(d / "stale.csv")],
                          "--model": ["svm", "nope"],
                          "--cohort": [None, "test"], "--device": devices, "--out": outs},
        "ivgc cv": {"--manifest": manifests, "--features": [None, str(d / "m.csv"), str(d / "stale.csv")],
                    "--selection": [None, str(d / "m.csv")],
                    "--model": ["logreg", "resnet50", "nope"], "--folds": [None, *ints], "--epochs": [None, "1", "0"],
                    "--seed": [None, *ints], "--device": devices, "--out": outs},
        "ivgc configs": {},
        # blank 16^3 volumes are not a head: every neuro prediction and training refuses them, fast
        "neuro lesions": {"flair": [None, *files], **cohort, "--series": series, "--dicom-attributes": dicom_attributes, "--lesions": [None, str(d / "seg.nrrd"), str(d / "missing.nrrd"),
                                                        str(d / "m.csv"), *off_grid], **resample,
                          "--lesion-model": [None, "nope", "tao_network_b_demo"], "--device": devices, "--out": outs},
        "neuro predict": {"flair": [None, *files], **cohort, "--series": series, "--dicom-attributes": dicom_attributes, "--lesions": [None, str(d / "seg.nrrd"), str(d / "missing.nrrd"), *off_grid],
                          **resample,
                          "--model": [None, "nope", "tao_network_b_demo"], "--no-heatmap": [None, "!"],
                          "--device": devices, "--out": outs},
        "neuro train": {**nproc, "--manifest": manifests, "--config": [None, "twoview18-demo", "resnet3d34", "nope"],
                        "--epochs": ["1", "0", "-1", "x"], "--holdout": [None, "0", "0.5", "1.5", "x"],
                        "--imagenet": [None, str(d / "m.csv"), str(d / "missing.pth")],
                        "--imagenet-sha256": [None, "00"], "--seed": [None, *ints], "--device": devices,
                        "--out": outs, "--overwrite": overwrite},
        # --work is never a usable folder here, so that a draw never starts a real training
        "neuro train-lesions": {"--out": outs, "--work": [str(d / "file"), str(d / "file" / "w"), str(d / "img.nrrd")],
                                "--iterations": [None, "0", "-1", "x", "1"], "--batch": [None, "0", "x"],
                                "--lr": [None, "0", "2", "x"], "--ms-seeds": [None, "5:1", "x", "1:3"],
                                "--real-seeds": [None, "x", "5:1"],
                                "--contrast-min": [None, "-1", "0.5"], "--confluent": [None, "2", "0.5"],
                                "--heavy": [None, "-0.5", "0.35"],
                                "--lesion-sampling": [None, "lesion", "sideways"], "--init": [None, "nope"],
                                "--threads": [None, "-1", "1"], "--overwrite": overwrite},
        # never a usable lesion bundle here, so that a draw never starts a real tuning
        # issue 48: never a usable --steps here, so that a draw never starts a real fine-tuning
        "neuro finetune-lesions": {"--manifest": manifests, "--base": [None, "nope", "orbit_svnet_ct_demo"],
                                   "--name": [None, "mine", "../up", "neuro_lesion_unet_demo"], "--out": [None, *outs],
                                   "--steps": ["0", "-1", "x"], "--folds": [None, *ints],
                                   "--eval-every": [None, *ints], "--replay-share": [None, "0.5", "2", "x"],
                                   "--seed": [None, *ints], "--summary": [None, *outs], "--device": devices,
                                   "--no-resume": [None, "!"], "--overwrite": overwrite},
        "neuro tune-lesions": {"--bundle": ["nope", "tao_network_b_demo", str(d / "m.csv"), str(d / "file")],
                               "--threads": [None, "-1", "1"]},
        "neuro second-look": {"--bundle": ["nope", "tao_network_b_demo", str(d / "m.csv"), str(d / "file")]},
        "neuro evaluate": {"--manifest": manifests, "--model": ["nope", "tao_network_b_demo"], "--device": devices,
                           "--out": tables},
        "neuro cv": {"--manifest": manifests, "--config": [None, "twoview18-demo", "nope"],
                     "--folds": [None, *ints], "--repeats": [None, "1", "0", "x"], "--epochs": ["1", "0", "x"],
                     "--seed": [None, *ints], "--out": outs},
        "neuro configs": {},
        # issue 33: DICOMweb on a closed local port or a malformed address (no draw reaches a server)
        "dicom push": {"out": [str(d), str(d / "img.nrrd"), str(d / "missing"), str(d / "folder")],
                       "--url": ["http://127.0.0.1:9/dicom-web", "ftp://x", ""]},
        "dicom fetch": {"--url": ["http://127.0.0.1:9/dicom-web", "x", ""], "--study": ["1.2.3", "x", ""],
                        "--series": [None, "1.2", ""], "--out": outs},
        # issue 35: DATA never exists here, so that a draw never starts a server
        "web": {"data": [str(d / "missing.nrrd"), str(d / "missing")], "--host": [None, "127.0.0.1", "0.0.0.0", ""],
                "--port": [None, "-1", "70000", "x", "0"], "--encoder": [None, "png", "nope"]},
    }


def _commands(parser=None, prefix: str = "") -> set[str]:
    """Every runnable command of the ``orbitai`` parser ('seg predict', 'info', ...)."""
    import argparse

    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix.strip()}
    return {c for name, sub in subs[0].choices.items() for c in _commands(sub, f"{prefix} {name}")}


def test_every_command_is_drawn(tmp_path):
    """The property test covers every command the parser offers (a new command needs its pools here)."""
    assert _commands() == set(_pools(tmp_path))


def draw(rng: random.Random, d: Path) -> list[str]:
    """One random invocation: a command and a random value (or none) for each of its options."""
    pools = _pools(d)
    command = rng.choice(sorted(pools))
    args = command.split()
    for option, values in pools[command].items():
        value = rng.choice(values)
        if value is None:
            continue
        if not option.startswith("-"):
            args.append(value)
        elif value == "!":
            args.append(option)
        else:
            args += [option, value]
    return args


#: The headless MRML scene's private home folder lives as long as the process (removed at exit).
PROCESS_FOLDERS = ("orbitai-mrml-",)


def _listing(*folders: Path) -> set[str]:
    return {str(p) for f in folders for p in f.rglob("*")
            if not any(part.startswith(PROCESS_FOLDERS) for part in p.relative_to(f).parts)}


def _stat(f: Path) -> tuple[int, int]:
    st = f.stat()
    return st.st_size, st.st_mtime_ns


def _run_in_process(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:   # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _run_subprocess(args: list[str]) -> tuple[int, str, str]:
    res = subprocess.run([sys.executable, "-m", "orbitai", *args], capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


def _out_of(args: list[str]) -> Path | None:
    return Path(args[args.index("--out") + 1]) if "--out" in args else None


def _complete(args: list[str], stdout: str) -> str:
    """Why a successful run's outputs are incomplete ('' when complete)."""
    out = _out_of(args)
    if out is None:
        return "" if stdout.strip() else "no output printed"
    if args[0] == "phantom":
        n = int(args[args.index("--n") + 1]) if "--n" in args else 8
        ok = (out / "manifest.csv").is_file() and len(list((out / "images").iterdir())) == n
        return "" if ok else "phantom cohort incomplete"
    result = out / "result.json"
    if "--manifest" in args and args[1:2] in (["predict"], ["lesions"]):   # a cohort: OUT/<case_id>/result.json
        return "" if any((f / "result.json").is_file() for f in out.iterdir()) else "no case written"
    if args[:2] in (["seg", "predict"], ["tao", "predict"]):
        if not result.is_file():
            return "no result.json"
        files = json.loads(result.read_text()).get("files", {})
        missing = [f for f in files.values() if not (out / f).is_file()]
        return f"result.json names missing files {missing}" if missing else ""
    return "" if out.exists() else "no output written"


def check(args: list[str], d: Path, tmp: Path, run: Callable[[list[str]], tuple[int, str, str]]) -> str:
    """Run one invocation; '' if it kept the contract, else what went wrong."""
    before = _listing(d, tmp)
    inputs = {f: _stat(f) for f in d.rglob("*") if f.is_file()}
    out_existed = (_out_of(args) or d / "-").exists()   # --out may be an input folder, even the work folder
    replaced: set[Path] = set()
    if args[0] == "phantom" and out_existed:
        from orbitai.phantoms.cli import COHORT_ENTRIES, earlier_cohort

        out0 = _out_of(args)
        assert out0 is not None
        if earlier_cohort(out0):   # a phantom cohort an earlier draw wrote there is replaced, by design
            replaced = {f for e in COHORT_ENTRIES for f in ([out0 / e] + list((out0 / e).rglob("*")))}
    code, stdout, stderr = run(args)
    after = _listing(d, tmp)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    out = _out_of(args)
    new = sorted(after - before)
    problem = ""
    if code == 0:
        if out is not None:
            new = [p for p in new if not (p == str(out) or p.startswith(str(out) + "/"))]
        problem = _complete(args, stdout) or (f"left {new[:3]}" if new else "")
        if out is not None and not out_existed and out.is_dir():
            shutil.rmtree(out)   # this run's output folder (an existing one is an input folder: kept)
    elif code not in (1, 2):
        problem = f"exit {code}"
    elif len(lines) != 1 or "Traceback" in stderr:
        problem = f"{len(lines)} stderr lines: {stderr.strip()[-300:]!r}"
    elif new:
        problem = f"left {new[:3]}"
    changed = [f for f, st in inputs.items() if (not f.exists() or _stat(f) != st) and f not in replaced]
    if changed:   # never remove or rewrite an input, whatever the outcome
        problem = problem or f"inputs changed: {changed[:3]}"
    return f"orbitai {' '.join(args)} -> exit {code}: {problem}" if problem else ""


def _sweep(work: Path, tmp_path: Path, monkeypatch, draws: int, seed: int) -> list[str]:
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setenv("ORBITAI_USER_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setenv("ORBITAI_MODELS_URL", "http://127.0.0.1:9")
    monkeypatch.chdir(work)
    rng = random.Random(seed)
    problems = [check(draw(rng, work), work, private_tmp, _run_in_process) for _ in range(draws)]
    return [p for p in problems if p]


def test_random_invocations_keep_the_contract(work, tmp_path, monkeypatch):
    """40 seeded random invocations in process, plus a few through ``python -m orbitai``."""
    problems = _sweep(work, tmp_path, monkeypatch, 40, SEED)
    rng = random.Random(SEED + 1)
    problems += [p for p in (check(draw(rng, work), work, tmp_path / "tmpdir", _run_subprocess)
                             for _ in range(3)) if p]
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_larger_random_sweep(work, tmp_path, monkeypatch, seed):
    problems = _sweep(work, tmp_path, monkeypatch, 200, 1000 + seed)
    assert not problems, "\n".join(problems)
