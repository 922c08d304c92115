"""orbitai.cohort.manifest: reading a cohort manifest, one-line errors, patient groups."""
from __future__ import annotations

import pytest

from orbitai.cohort.manifest import ManifestError, patient_groups, read_manifest
from orbitai.errors import InputError


def write(tmp_path, text: str):
    p = tmp_path / "manifest.csv"
    p.write_text(text)
    return p


def test_paths_resolve_relative_to_the_manifest_and_extra_columns_are_kept(tmp_path):
    p = write(tmp_path, "case_id,image,segmentation,label,patient_id\n"
                        "a,images/a.nrrd,seg/a.seg.nrrd,1,p1\nb,/abs/b.nrrd,,0,\n")
    cases = read_manifest(p, need_segmentation=False)
    assert [c.case_id for c in cases] == ["a", "b"]
    assert cases[0].image == tmp_path / "images/a.nrrd" and cases[0].segmentation == tmp_path / "seg/a.seg.nrrd"
    assert str(cases[1].image) == "/abs/b.nrrd" and cases[1].segmentation is None
    assert cases[0].row["label"] == "1"
    assert patient_groups(cases) == ["p1", "b"]          # empty patient_id: the case is its own patient


@pytest.mark.parametrize("text, message", [
    ("case_id,image\na,a.nrrd\n", r"lacks column\(s\) \['segmentation'\]"),
    ("case_id,image,segmentation\na,,a.seg.nrrd\n", "line 2: empty image path"),
    ("case_id,image,segmentation\na,a.nrrd,\n", "line 2: empty segmentation path"),
    ("case_id,image,segmentation\n", "lists no cases"),
    ("case_id,image,segmentation\na,a.nrrd,a.seg\nb,b.nrrd,b.seg\na,c.nrrd,c.seg\n",
     r"case_id 'a' is listed more than once \(lines 2, 4\)"),
    ("case_id,image,segmentation\n,a.nrrd,a.seg\n", r"line\(s\) 2: empty case_id"),
])
def test_bad_manifests_give_one_line_input_errors(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(write(tmp_path, text))
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)


def test_missing_manifest_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="Manifest not found"):
        read_manifest(tmp_path / "nope.csv")
