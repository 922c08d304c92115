"""Issue 80, item 13: a scan too coarse (or spanning more) than a head scan is refused in one line from its header,
before any heavy work: ``neuro lesions`` on a 10 mm-voxel FLAIR took 388 s and 10.8 GB before "No head found", and
``seg predict`` on 19 mm voxels ran out of memory, both inside the old 0.05-20 mm range."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.cli import main
from orbitai.io import Volume, VolumeError
from orbitai.scan.geometry import MAX_FIELD_MM, MAX_PIXEL_MM, MAX_SLICE_MM, check_spacing, spacing_refusal


def _write(path, size_xyz, spacing) -> str:
    """A small synthetic image (a bright ball in a dark field) written with SimpleITK."""
    z, y, x = np.indices(size_xyz[::-1], dtype=np.float32)
    c = [(n - 1) / 2 for n in size_xyz[::-1]]
    ball = ((z - c[0]) / max(c[0], 1)) ** 2 + ((y - c[1]) / max(c[1], 1)) ** 2 + ((x - c[2]) / max(c[2], 1)) ** 2 < 0.6
    img = sitk.GetImageFromArray((50 + 400 * ball).astype(np.int16))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture()
def no_heavy_work(monkeypatch):
    """Fail when a step after the header check runs (what the scan is, brain extraction, the model)."""
    def heavy(*a, **k):
        raise AssertionError("heavy work ran before the coarse scan was refused")

    for target in ("orbitai.predictor.scan_facts", "orbitai.neuro.predict.scan_facts",
                   "orbitai.neuro.predict.extract_brain", "orbitai.neuro.predict.check_flair",
                   "orbitai.orbit.predictor.segment"):
        monkeypatch.setattr(target, heavy)


def _refused(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_neuro_lesions_refuses_a_10_mm_flair_in_one_line(tmp_path, capsys, no_heavy_work):
    flair = _write(tmp_path / "flair.nii.gz", (40, 40, 24), (10.0, 10.0, 10.0))
    err = _refused(capsys, ["neuro", "lesions", flair, "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert "flair.nii.gz has voxels of 10 x 10 x 10 mm, too coarse for a head scan" in err
    assert not (tmp_path / "out").exists()


def test_seg_predict_refuses_19_mm_voxels_in_one_line(tmp_path, capsys, no_heavy_work):
    scan = _write(tmp_path / "scan.nrrd", (32, 32, 20), (19.0, 19.0, 19.0))
    err = _refused(capsys, ["seg", "predict", scan, "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert "scan.nrrd has voxels of 19 x 19 x 19 mm, too coarse for a head scan" in err


def test_thick_slices_or_a_field_of_view_beyond_a_head_are_refused_too(tmp_path, capsys, no_heavy_work):
    scan = _write(tmp_path / "thick.nrrd", (64, 64, 12), (0.9, 0.9, 12.0))
    err = _refused(capsys, ["seg", "predict", scan, "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert "0.9 x 0.9 x 12 mm, too coarse" in err
    wide = _write(tmp_path / "wide.nii.gz", (400, 300, 10), (3.0, 3.0, 5.0))     # 1200 mm across
    err = _refused(capsys, ["neuro", "lesions", wide, "--out", str(tmp_path / "o2"), "--device", "cpu"])
    assert "spans 1200 x 900 x 50 mm" in err and f"more than the {MAX_FIELD_MM:g} mm" in err


@pytest.mark.parametrize("spacing", [(0.45, 0.45, 0.6), (0.9, 0.9, 8.0), (MAX_PIXEL_MM, MAX_PIXEL_MM, MAX_SLICE_MM),
                                     (1.0, MAX_PIXEL_MM, 1.0)])
def test_head_scans_spacings_are_served(spacing):
    vol = Volume(np.zeros((20, 64, 64), np.int16), spacing)
    assert spacing_refusal(vol) is None
    check_spacing(vol)


@pytest.mark.parametrize("spacing", [(4.5, 4.5, 1.0), (1.0, 1.0, 10.5)])
def test_just_beyond_the_limits_is_refused(spacing):
    with pytest.raises(VolumeError, match="too coarse for a head scan"):
        check_spacing(Volume(np.zeros((10, 20, 20), np.int16), spacing))
