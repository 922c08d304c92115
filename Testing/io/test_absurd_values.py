"""An image whose values no scanner writes (one voxel of 1e300 in a float64 file) is refused in one line by the
one value check every task runs (``require_values``), before radiomics' binning or a model reads it."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, VolumeError, read_volume, require_values, write_volume

SEED = 777046  # never used for training cohorts


def volume(dtype, spike: float | None = None) -> Volume:
    a = np.random.default_rng(SEED).normal(300.0, 50.0, (8, 16, 16)).astype(dtype)
    if spike is not None:
        a[4, 8, 8] = spike
    return Volume(a, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))


@pytest.mark.parametrize("spike", [1e300, -1e300, 1e13])
def test_absurd_magnitude_is_refused(spike):
    with pytest.raises(VolumeError, match="1 voxel\\(s\\) of absurd magnitude") as info:
        require_values(volume(np.float64, spike), "image x.nrrd")
    assert "\n" not in str(info.value) and "image x.nrrd" in str(info.value)


@pytest.mark.parametrize("dtype, spike", [(np.float64, 1e6), (np.float32, None), (np.int16, 32767), (np.uint16, None)])
def test_plausible_values_pass(dtype, spike):
    require_values(volume(dtype, spike))


def test_ivgc_predict_refuses_a_1e300_voxel_in_one_line(tmp_path, capsys):
    from orbitai.cohort.manifest import read_manifest
    from orbitai.phantoms import write_cohort

    case = read_manifest(write_cohort("ivgc", 1, SEED, tmp_path / "c", montage_cases=0), need_segmentation=True)[0]
    image = read_volume(case.image)
    a = image.array.astype(np.float64)
    a[5, 5, 5] = 1e300
    path = write_volume(image.with_array(a), tmp_path / "big.nrrd")
    out = tmp_path / "out"
    assert main(["ivgc", "predict", str(path), "--segmentation", str(case.segmentation), "--out", str(out),
                 "--device", "cpu", "--no-gradcam"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "absurd magnitude" in err[0] and "arange" not in err[0]
    assert not out.exists()


class CountedReads(np.ndarray):
    """An array that counts the whole-array passes min() and max() make over it."""

    passes = 0

    def min(self, *args, **kwargs):
        CountedReads.passes += 1
        return super().min(*args, **kwargs)

    def max(self, *args, **kwargs):
        CountedReads.passes += 1
        return super().max(*args, **kwargs)


@pytest.mark.parametrize("dtype, scanned", [(np.int8, False), (np.int16, False), (np.int32, False),
                                            (np.uint32, False), (np.int64, True), (np.uint64, True),
                                            (np.float32, True), (np.float64, True)])
def test_the_magnitude_check_reads_only_types_that_can_hold_absurd_values(dtype, scanned):
    from orbitai.io import require_finite

    vol = volume(dtype)
    vol.array = vol.array.view(CountedReads)
    CountedReads.passes = 0
    require_finite(vol)
    assert (CountedReads.passes > 0) == scanned


def test_an_absurd_int64_value_is_still_refused():
    with pytest.raises(VolumeError, match="absurd magnitude"):
        require_values(volume(np.int64, 2.0 ** 50))


def test_the_nan_check_names_the_case():
    a = volume(np.float32).array
    a[1, 2, 3] = np.nan
    with pytest.raises(VolumeError, match=r"^Case c7: the image x.nrrd contains 1 NaN/infinite voxels\."):
        require_values(Volume(a), "image x.nrrd", "c7")
