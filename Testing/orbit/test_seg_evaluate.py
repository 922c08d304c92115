"""``orbitai seg evaluate`` checks every reference before scoring (issue #14): a reference off the
image's grid, with values outside the orbit label scheme, or a case listed twice is refused with one
line naming the case, and nothing is written."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.cohort.manifest import ManifestError, read_manifest
from orbitai.io import Volume, write_volume
from orbitai.phantoms import write_cohort
from orbitai.orbit.evaluate import check_reference, grid_difference

SEED = 777014  # never used for training cohorts


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return write_cohort("orbit-ct", 1, SEED, tmp_path_factory.mktemp("cohort"), montage_cases=0)


def with_reference(cohort: Path, folder: Path, change) -> Path:
    """A copy of the one-case manifest whose reference is ``change(reference)`` (a plain label map)."""
    case = read_manifest(cohort)[0]
    ref = write_volume(change(case.labels()), folder / "reference.nrrd")
    manifest = folder / "manifest.csv"
    manifest.write_text(f"case_id,image,segmentation\n{case.case_id},{case.image},{ref}\n")
    return manifest


def absolute(cohort: Path, rows: list[int], path: Path) -> Path:
    """The cohort manifest's ``rows`` (0-based) at ``path``, with absolute paths."""
    cases = read_manifest(cohort)
    path.write_text("case_id,image,segmentation\n"
                    + "".join(f"{cases[i].case_id},{cases[i].image},{cases[i].segmentation}\n" for i in rows))
    return path


def evaluate(manifest: Path, out: Path) -> int:
    return main(["seg", "evaluate", "--manifest", str(manifest), "--model", "orbit_svnet_ct_demo",
                 "--out", str(out), "--device", "cpu"])


def shifted(v: Volume, mm: float = 7.0) -> Volume:
    return Volume(v.array, v.spacing, (v.origin[0] + mm, v.origin[1], v.origin[2]), v.direction)


@pytest.mark.parametrize("change, message", [
    (shifted, r"does not lie on the image's grid: origin shifted by \(7\.0, 0\.0, 0\.0\) mm"),
    (lambda v: Volume(v.array[:, :, 1:], v.spacing, v.origin, v.direction), "does not lie on the image's grid: shape"),
    (lambda v: Volume(v.array, tuple(s * 1.1 for s in v.spacing), v.origin, v.direction), "grid: spacing"),
    (lambda v: Volume(v.array, v.spacing, v.origin, np.diag([-1.0, -1.0, 1.0]) @ v.direction),
     "grid: a different direction"),
    (lambda v: v.with_array(np.where(v.array == 1, 40, v.array).astype(np.int16)),
     r"values outside the orbit label scheme \(0-18\): 40"),
    (lambda v: v.with_array(np.where(v.array == 1, -1, v.array.astype(np.int16))), "label scheme .*: -1"),
    (lambda v: v.with_array(np.where(v.array == 1, 0.5, v.array).astype(np.float32)), "label scheme .*: 0.5"),
])
def test_a_bad_reference_is_refused_naming_the_case(cohort, tmp_path, capsys, change, message):
    manifest = with_reference(cohort, tmp_path, change)
    assert evaluate(manifest, tmp_path / "eval") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Case orbit_ct_0000:" in err
    assert re.search(message, err), err
    assert not (tmp_path / "eval").exists()


def test_duplicated_case_ids_are_refused(cohort, tmp_path, capsys):
    manifest = absolute(cohort, [0, 0], tmp_path / "twice.csv")
    assert evaluate(manifest, tmp_path / "eval") == 2
    err = capsys.readouterr().err
    assert "case_id 'orbit_ct_0000' is listed more than once (lines 2, 3)" in err
    assert not (tmp_path / "eval").exists()


def test_round_off_is_the_same_grid_and_scheme_values_pass():
    image = Volume(np.zeros((8, 9, 10), np.float32), (0.5, 0.5, 2.0), (10.0, -20.0, 5.0))
    ref = Volume(np.arange(8 * 9 * 10).reshape(8, 9, 10) % 19, (0.5 + 1e-6, 0.5, 2.0), (10.0 + 1e-4, -20.0, 5.0))
    assert grid_difference(image, ref) is None
    check_reference("a", image, ref)                            # 0..18: the scheme, groups included
    with pytest.raises(ManifestError, match="Case a: .*origin shifted by"):
        check_reference("a", image, shifted(ref, 0.01))         # 2 % of a voxel: a misplaced reference


def test_output_over_an_input_is_refused(cohort, tmp_path, capsys):
    """``--out`` naming the manifest's folder so that a written file would replace an input."""
    (tmp_path / "m").mkdir()
    manifest = absolute(cohort, [0], tmp_path / "m" / "summary.json")   # an input named like an output
    before = manifest.read_text()
    assert evaluate(manifest, manifest.parent) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert manifest.read_text() == before and sorted(p.name for p in manifest.parent.iterdir()) == ["summary.json"]
