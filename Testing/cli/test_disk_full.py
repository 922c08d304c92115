"""A full disk (#14): ``seg predict`` and ``tao predict`` end with exit 1 and one line naming the output
file that did not fit, and leave nothing behind: no hidden work folder, no partial result, no temporary file.

The "disk" is a per-file size limit (``RLIMIT_FSIZE``) set in the child only: a write past it fails with
EFBIG as on a full disk (Python ignores SIGXFSZ), and SimpleITK's writers report it without the reason.
(phantom and demo on a full disk: Testing/cancel/test_cancel.py.)
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from orbitai.io import write_volume
from orbitai.phantoms import orbit_case
from orbitai.phantoms.cohort import make_case

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as a full disk")

REPO = Path(__file__).resolve().parents[2]
SEED = 777015  # never used for training cohorts


def _run_on_small_disk(args: list[str], run: Path, tmpdir: Path, limit: int) -> subprocess.CompletedProcess:
    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "orbitai", *args], cwd=run, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, preexec_fn=small_disk, timeout=120)


@pytest.mark.parametrize("command, limit, fails_on", [
    # 200 kB: the segmentation fits, the uncertainty map written after it does not (a late failure)
    (["seg", "predict", "{ct}", "--out", "O", "--device", "cpu", "--uncertainty"], 200_000, "uncertainty.nrrd"),
    # 30 kB: the occlusion map fits, the Grad-CAM map does not (the PNG figure would come later)
    (["tao", "predict", "{mri}", "--out", "O", "--device", "cpu", "--figure"], 30_000, "gradcam.nrrd"),
], ids=["seg-predict", "tao-predict"])
def test_predict_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, command, limit, fails_on):
    inputs = tmp_path / "inputs"
    ct = write_volume(orbit_case(SEED, modality="ct").image, inputs / "ct.nrrd")
    mri = write_volume(make_case("tao", 0, 0, 1).image, inputs / "mri.nrrd")
    run, tmpdir = tmp_path / "run", tmp_path / "tmp"
    run.mkdir()
    tmpdir.mkdir()
    args = [a.format(ct=ct, mri=mri) for a in command]
    proc = _run_on_small_disk(args, run, tmpdir, limit)
    err = proc.stderr.strip().splitlines()
    name = " ".join(command[:2])
    assert proc.returncode == 1, proc.stderr
    assert err == [f"orbitai {name}: error: the disk is full while writing O/{fails_on} (File too large); "
                   "free space and run again"]
    assert list(run.iterdir()) == [], "a hidden work folder or a partial result was left"
    assert list(tmpdir.iterdir()) == []
