"""Issue 63: a real clinical FLAIR (skull-stripped, 8 mm slices, 128 mL of confluent white-matter lesions) was refused
by ``neuro lesions`` as "looks like a T2 / T1", even with ``--modality FLAIR``: heavy confluent lesions raise the value
rules' percentiles. Rebuilt as a phantom (real lesion maps of the four heaviest training patients on a real brain,
`orbitai.phantoms.lesion_maps`, 160 mL, resampled to 8 mm slices): it runs with and without the statement."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.errors import InputError
from orbitai.io import read_volume, resample_spacing, write_volume
from orbitai.scan.flair import check_flair
from orbitai.phantoms.lesion_maps import FINAL_CHECK_MAP, map_volumes, real_lesion_case
from orbitai.scan import scan_facts

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "ms_flair_raw_lesjak"


def _raw(name: str):
    path = RAW / f"long_{name}.nii.gz"
    if not path.exists():
        pytest.skip(f"shared raw FLAIR data absent ({path})")
    return read_volume(path)


@pytest.fixture(scope="module")
def heavy_flair(tmp_path_factory):
    vols = map_volumes()
    heaviest = tuple(sorted((p for p in vols if p != FINAL_CHECK_MAP), key=lambda p: -vols[p])[:4])
    case = real_lesion_case(3, maps=heaviest, brain=0, noise=True)
    assert case.info["lesion_volume_ml"] > 100
    lesions = case.labels.array > 0
    assert np.count_nonzero(lesions & (case.image.array > 0)) * case.image.voxel_volume_mm3() * 1e-3 > 100
    flair = resample_spacing(case.image, (1.0, 1.0, 8.0))
    path = tmp_path_factory.mktemp("heavy") / "heavy_flair.nii.gz"
    write_volume(flair, path)
    return flair, path


def test_the_heavy_lesion_flair_is_not_refused_with_or_without_a_statement(heavy_flair):
    flair, _ = heavy_flair
    assert max(flair.spacing) == pytest.approx(8.0)
    assert isinstance(check_flair(flair), list)       # refused before as a T1: its confluent lesions lie deep
    assert check_flair(flair, facts=scan_facts(flair, stated="FLAIR")) == []


def test_a_stated_flair_is_never_refused_for_its_contrast_only_caveated():
    """A real T2 stated as a FLAIR: its CSF-bright contrast is said as a caveat (the user's word wins); unstated,
    it is refused as before."""
    t2 = resample_spacing(_raw("patient01_study1_T2W"), (1.5, 1.5, 3.0))
    with pytest.raises(InputError, match="looks like a T2"):
        check_flair(t2, facts=scan_facts(t2))
    caveats = check_flair(t2, facts=scan_facts(t2, stated="FLAIR"))
    assert len(caveats) == 1 and caveats[0].startswith("You said FLAIR; the image looks T2-like (CSF brighter")
    assert "\n" not in caveats[0]


@pytest.mark.slow
@pytest.mark.parametrize("stated", [[], ["--modality", "FLAIR"]], ids=["auto", "stated FLAIR"])
def test_neuro_lesions_runs_on_the_heavy_lesion_flair(heavy_flair, tmp_path, stated):
    _, path = heavy_flair
    out = tmp_path / "out"
    assert main(["neuro", "lesions", str(path), "--out", str(out), "--device", "cpu", *stated]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["lesions"]["total_ml"] > 50
    assert not any("T2-like" in w or "T1-like" in w for w in result["warnings"])
    assert result["scan"]["weighting"]["value"] == "FLAIR" or not stated
