"""A CT clipped or windowed to 8 bits (0-255) is not taken for MRI (issue #14)."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, VolumeError, write_volume
from orbitai.phantoms.orbit import orbit_case
from orbitai.preprocess.checks import check_input
from orbitai.scan.values import eight_bit_ct_evidence, image_is_ct, looks_like_ct


@pytest.fixture(scope="module")
def ct() -> Volume:
    return orbit_case(2, "ct").image


def eight_bit(ct: Volume, low: float, high: float) -> Volume:
    hu = ct.array.astype(np.float32)
    return ct.with_array(np.clip((hu - low) / (high - low) * 255, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("low,high", [(0, 255), (-160, 240), (-600, 1400)])   # clipped, soft tissue, bone
def test_ct_clipped_or_windowed_to_8_bits_is_recognised(ct, low, high):
    vol = eight_bit(ct, low, high)
    assert not looks_like_ct(vol)                      # it would pass for MRI by intensity alone
    assert eight_bit_ct_evidence(vol) is not None
    with pytest.raises(VolumeError, match=r"^scan\.nrrd looks like CT stored as 8-bit values \(values 0-255 only, "
                                          r"\d+ % of voxels at 0 and [\d.]+ % at 255\).*--model"):
        image_is_ct(vol, "scan.nrrd")
    assert any("8-bit" in w for w in check_input(vol, "MR"))


@pytest.mark.parametrize("modality", ["t1", "t2"])
def test_mri_and_real_ct_are_not_taken_for_8_bit_ct(ct, modality):
    mr = orbit_case(2, modality).image
    a = mr.array.astype(np.float32)
    for arr in (a, np.round(a / a.max() * 255), np.clip(a / np.percentile(a, 99.5) * 255, 0, 255).round()):
        vol = mr.with_array(arr.astype(np.uint8) if arr.max() <= 255 else arr)
        assert eight_bit_ct_evidence(vol) is None and image_is_ct(vol) is False
        assert check_input(vol, "MR") == []
    assert eight_bit_ct_evidence(ct) is None and image_is_ct(ct) is True
    assert check_input(ct, "CT") == []


def test_seg_predict_refuses_8_bit_ct_instead_of_choosing_the_mri_model(ct, tmp_path, capsys):
    path = write_volume(eight_bit(ct, 0, 255), tmp_path / "ct8.nrrd")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "looks like CT stored as 8-bit values" in err and "--model" in err
    assert not out.exists()
