"""The orbitai command line: help, info, errors as one clear line."""
from __future__ import annotations

import subprocess
import sys

import pytest

from orbitai.cli import main

#: A CUDA device no machine has: refused on CPU-only machines and on GPU machines alike.
NO_CUDA_99 = ("no CUDA GPU", "cuda:99 requested but only")


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "info" in out and "demo" in out


def test_info_runs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "orbitai", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "orbitai" in res.stdout


# ------------------------------------------------------------------ one error policy
def _orbitai(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orbitai", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """Small files for the bad invocations: a tiny volume, a 2D image, a broken manifest, a plain file."""
    import numpy as np
    import SimpleITK as sitk

    from orbitai.io import Volume, write_volume

    d = tmp_path_factory.mktemp("bad")
    # some contrast: a constant image is refused before the model is looked up (issue 32)
    write_volume(Volume(np.random.default_rng(1).normal(0, 100, (16, 16, 16)).astype(np.float32)), d / "small.nrrd")
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkFloat32), str(d / "flat.nrrd"))
    (d / "bad.csv").write_text("case_id,image\nx,missing.nrrd\n")
    (d / "file").write_text("not a folder")
    return d


def _invocations(d) -> list[tuple[list[str], int, str | tuple[str, ...]]]:
    """(arguments, exit code, text the one error line must contain) for every command."""
    small, out, m = str(d / "small.nrrd"), str(d / "out"), str(d / "bad.csv")
    missing = str(d / "missing.nrrd")
    train = ["seg", "train", "--manifest", m, "--config", "svnet-demo-ct", "--out", out]
    return [
        (["nope"], 2, "invalid choice"),
        (["--no-such-option"], 2, "unrecognized arguments"),
        (["info", "--device", "tpu"], 2, "Unknown device 'tpu'"),
        (["info", "--device", "cuda:99"], 2, NO_CUDA_99),
        (["demo", "--device", "cuda:99", "--out", out], 2, NO_CUDA_99),
        (["demo", "--model", "nope", "--device", "cpu", "--out", out], 2, "No model bundle named 'nope'"),
        (["phantom", "tao", "--n", "0", "--out", out], 2, "--n must be at least 1"),
        (["phantom", "weather", "--out", out], 2, "invalid choice"),
        (["phantom", "orbit-ct", "--n", "x", "--out", out], 2, "invalid int value"),
        (["seg"], 2, "required"),
        (["seg", "predict", small], 2, "--out"),
        (["seg", "predict", missing, "--out", out], 2, "No such file"),
        (["seg", "predict", str(d / "flat.nrrd"), "--out", out], 2, "3D image"),
        (["seg", "predict", small, "--out", out, "--device", "cuda:99"], 2, NO_CUDA_99),
        (["seg", "predict", small, "--out", out, "--model", "nope", "--device", "cpu"], 2, "No model bundle named"),
        (["seg", "predict", small, "--out", out, "--model", "tao_network_b_demo", "--device", "cpu"], 2,
         "not a segmentation model"),
        (["seg", "predict", small, "--out", str(d / "o.seg.nrrd")], 2, "--out takes a folder"),
        (["seg", "predict", small, "--out", out, "--window", "sideways"], 2, "invalid choice"),
        (["seg", "train", "--manifest", m, "--config", "nope", "--out", out], 2, "Unknown segmentation configuration"),
        (train + ["--epochs", "0"], 2, "--epochs must be at least 1"),
        (train + ["--epochs", "-1"], 2, "--epochs must be at least 1"),
        (train + ["--folds", "2", "--fold", "2"], 2, "--fold must be between 0 and 1"),
        (train + ["--folds", "0"], 2, "--folds must be at least 1"),
        (train + ["--time-limit", "0"], 2, "--time-limit must be a positive"),
        (train + ["--device", "cuda:99"], 2, NO_CUDA_99),
        (["seg", "train", "--manifest", str(d / "none.csv"), "--config", "svnet-demo-ct", "--out", out], 2, "none.csv"),
        (["seg", "evaluate", "--manifest", str(d / "none.csv"), "--model", "orbit_svnet_ct_demo", "--out", out], 2,
         "none.csv"),
        (["tao", "predict", missing, "--out", out], 2, "No such file"),
        (["tao", "predict", small, "--out", out, "--device", "cuda:99"], 2, NO_CUDA_99),
        (["tao", "predict", small, "--out", out, "--segmentation", missing, "--device", "cpu"], 2, "No such file"),
        (["tao", "train", "--manifest", m, "--network", "C", "--out", out], 2, "Unknown TAO configuration 'C'"),
        (["tao", "train", "--manifest", m, "--epochs", "0", "--out", out], 2, "--epochs must be at least 1"),
        (["tao", "train", "--manifest", m, "--holdout", "1", "--out", out], 2, "--holdout must be a fraction"),
        (["tao", "cv", "--manifest", m, "--runs", "0", "--out", out], 2, "--runs must be at least 1"),
        (["tao", "cv", "--manifest", m, "--epochs", "0", "--out", out], 2, "--epochs must be at least 1"),
        (["tao", "train", "--manifest", str(d / "none.csv"), "--out", out], 2, "none.csv"),
        (["tao", "cv", "--manifest", str(d / "none.csv"), "--out", out], 2, "none.csv"),
        (["tao", "evaluate", "--manifest", str(d / "none.csv"), "--model", "B", "--out", out], 2, "none.csv"),
        (["tao", "evaluate", "--manifest", m, "--model", "nope", "--out", out], 2, ""),
    ]


#: Runs each invocation of a JSON list through the console script's entry point (``sys.exit(main())``)
#: in this one child process, each with its own stderr; an escaping exception prints its traceback.
DRIVER = """
import contextlib, io, json, sys, traceback
from orbitai.cli import main
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = None
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def _check(cases, results) -> list[str]:
    """Problems of ``results`` ((exit code, stderr) per case); a case's text may be a tuple of alternatives."""
    problems = []
    for (args, code, text), (rc, stderr) in zip(cases, results):
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        texts = text if isinstance(text, tuple) else (text,)
        ok = (rc == code and len(lines) == 1 and "Traceback" not in stderr
              and lines[0].startswith("orbitai") and ": error: " in lines[0] and any(t in lines[0] for t in texts))
        if not ok:
            problems.append(f"orbitai {' '.join(args)} -> exit {rc}, stderr {stderr.strip()[-600:]!r}")
    return problems


def test_every_bad_invocation_is_one_line_with_exit_1_or_2(bad_inputs):
    """Every command, many wrong invocations, in a child process: exit 1 or 2, exactly one non-empty
    line on stderr ('orbitai <command>: error: ...'), no traceback, nothing written."""
    import json

    cases = _invocations(bad_inputs)
    res = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([c[0] for c in cases])], capture_output=True,
                         text=True, cwd=bad_inputs, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    problems = _check(cases, json.loads(res.stdout.splitlines()[-1]))
    assert not problems, "\n".join(problems)
    assert not (bad_inputs / "out").exists() and not (bad_inputs / "o.seg.nrrd").exists()


@pytest.mark.slow   # one process per invocation; test_every_bad_invocation_is_one_line runs them all in-process
def test_bad_invocations_of_the_console_command_each_in_its_own_process(bad_inputs):
    """The same through ``python -m orbitai`` itself, one process per invocation (a sample: the two
    defects of #13 and one per command)."""
    small, out = str(bad_inputs / "small.nrrd"), str(bad_inputs / "out")
    cases = [(["seg", "train", "--manifest", "m.csv", "--config", "nope", "--out", out], 2, "Unknown segmentation"),
             (["seg", "predict", small, "--out", out, "--device", "cuda:99"], 2, NO_CUDA_99),
             (["tao", "predict", small, "--out", out, "--device", "cuda:99"], 2, NO_CUDA_99),
             (["phantom", "tao", "--n", "0", "--out", out], 2, "--n must be at least 1"),
             (["demo", "--device", "cuda:99", "--out", out], 2, NO_CUDA_99)]
    results = [(r.returncode, r.stderr) for r in (_orbitai(*c[0], cwd=bad_inputs) for c in cases)]
    problems = _check(cases, results)
    assert not problems, "\n".join(problems)


def test_folder_without_dicom_is_exactly_one_line(tmp_path):
    """ITK's multi-line GDCM warning ("No Series were found") is silenced around the series lookup;
    only OrbitAI's error line reaches stderr, and ITK's warning setting is restored afterwards."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not DICOM")
    res = _orbitai("seg", "predict", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"orbitai seg predict: error: No DICOM series found in {tmp_path / 'empty'}."]

    import SimpleITK as sitk

    from orbitai.io import VolumeError, read_volume
    with pytest.raises(VolumeError):
        read_volume(tmp_path / "empty")
    assert sitk.ProcessObject.GetGlobalWarningDisplay()


def test_debug_flag_shows_the_traceback(bad_inputs):
    res = _orbitai("--debug", "seg", "predict", str(bad_inputs / "small.nrrd"), "--out", "o", "--device", "cuda:99")
    assert res.returncode == 1 and "Traceback" in res.stderr and "DeviceError" in res.stderr


def test_unwritable_output_is_one_line(bad_inputs, capsys):
    """An output below a plain file (not a directory): OSError -> one line, exit 2."""
    from orbitai.cli import main

    assert main(["phantom", "orbit-ct", "--n", "1", "--montage-cases", "0", "--out",
                 str(bad_inputs / "file" / "cohort")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("orbitai phantom: error:") and "Not a directory" in err[0]


def test_unexpected_failure_is_one_line_exit_1(monkeypatch, capsys):
    """A bug (any other exception) still ends in one line, exit 1, with a hint to use --debug."""
    from orbitai.cli import main
    from orbitai.commands import info

    def broken(args):
        raise TypeError("unsupported operand\nsecond line")

    monkeypatch.setattr(info, "run", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["orbitai info: error: TypeError: unsupported operand second line (rerun with --debug for the traceback)"]


@pytest.mark.parametrize("exc", [KeyError("epochs"), ValueError("math domain error")])
def test_a_bug_raising_key_or_value_error_is_exit_1_not_a_user_error(monkeypatch, capsys, tmp_path, exc):
    """Only checked input is the user's error (exit 2); a KeyError/ValueError from inside the work is a
    bug: exit 1, one line with the exception's type; --debug shows the traceback."""
    from orbitai.cli import main
    from orbitai.orbit import configs

    def broken(name, **overrides):
        raise exc

    monkeypatch.setattr(configs, "get_config", broken)
    argv = ["seg", "train", "--manifest", "m.csv", "--config", "svnet-demo-ct", "--out", str(tmp_path / "b")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"orbitai seg train: error: {type(exc).__name__}: ")
    assert err[0].endswith("(rerun with --debug for the traceback)")
    with pytest.raises(type(exc)):
        main(["--debug", *argv])


def test_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    from orbitai.cli import main
    from orbitai.commands import info

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "orbitai info: cancelled\n"


def test_one_error_hierarchy():
    from orbitai.annotate import AnnotationError
    from orbitai.bundle import BundleError
    from orbitai.errors import UserError
    from orbitai.device import DeviceError
    from orbitai.errors import InputError, OrbitAIError, ResultError
    from orbitai.io import VolumeError
    from orbitai.jobs.child import JobError
    from orbitai.tao.result import TaoResultError

    for cls, code in [(VolumeError, 2), (UserError, 2), (AnnotationError, 2), (DeviceError, 2), (BundleError, 2),
                      (JobError, 1), (TaoResultError, 1), (ResultError, 1)]:
        assert issubclass(cls, OrbitAIError) and cls.exit_code == code, cls
    assert issubclass(VolumeError, (InputError, ValueError)) and issubclass(BundleError, RuntimeError)
