"""orbitai.cohort.manifest: reading a cohort manifest, one-line errors, patient groups."""
from __future__ import annotations

import pytest

from orbitai.cohort.manifest import ManifestError, patient_groups, read_manifest
from orbitai.errors import InputError


def write(tmp_path, text: str):
    p = tmp_path / "manifest.csv"
    p.write_text(text, encoding="utf-8")
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
    ("case_id,image,segmentation\n,a.nrrd,a.seg\n", r"line 2: empty case_id"),
])
def test_bad_manifests_give_one_line_input_errors(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(write(tmp_path, text))
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)


def test_missing_manifest_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="Manifest not found"):
        read_manifest(tmp_path / "nope.csv")


@pytest.mark.parametrize("case_id, why", [
    (" ", "empty or only white space"),
    ('"\t"', "control character"),
    ('"a\nb"', "control character"),
    (" a", "begins or ends with white space"),
    (".hidden", r"begins with '\.'"),
    ("..", r"begins with '\.'"),
    ("a.", r"ends with '\.'"),
    ("sub/01", "holds /"),
    ("c:x", "holds :"),
    ("what?", r"holds \?"),
    ("CON", "reserves it for a device"),
    ("nul.txt", "reserves it for a device"),
    ("x" * 201, "longer than 200 bytes"),
])
def test_a_case_id_must_be_one_portable_folder_name(tmp_path, case_id, why):
    with pytest.raises(ManifestError, match=f"line 2: case_id .* cannot name a folder under --out \\(.*{why}") as err:
        read_manifest(write(tmp_path, f"case_id,image\n{case_id},a.nrrd\n"), need_segmentation=False)
    assert "\n" not in str(err.value)


def test_nfc_and_nfd_spellings_of_a_case_id_are_one_case(tmp_path):
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    cases = read_manifest(write(tmp_path, f"case_id,image\n{nfd},a.nrrd\n"), need_segmentation=False)
    assert cases[0].case_id == nfc                      # one spelling, whichever the file holds
    with pytest.raises(ManifestError, match=r"case_ids 'Jos.*' \(line 2\) and 'Jos.*' \(line 3\) name one folder"):
        read_manifest(write(tmp_path, f"case_id,image\n{nfc},a.nrrd\n{nfd},b.nrrd\n"), need_segmentation=False)
    with pytest.raises(ManifestError, match=r"case_ids 'ab' \(line 2\) and 'AB' \(line 3\) name one folder"):
        read_manifest(write(tmp_path, "case_id,image\nab,a.nrrd\nAB,b.nrrd\n"), need_segmentation=False)


def test_a_repeated_column_is_refused_by_name(tmp_path):
    with pytest.raises(ManifestError, match=r"names column\(s\) 'image' more than once"):
        read_manifest(write(tmp_path, "case_id,image,image\na,wrong.nrrd,right.nrrd\n"), need_segmentation=False)


@pytest.mark.parametrize("column", ["image", "segmentation"])
def test_a_url_in_a_path_column_is_one_line(tmp_path, column):
    url = "http://pacs.example/dicom-web/studies/1.2.3/series/4.5.6"
    row = f"a,{url},s.nrrd" if column == "image" else f"a,a.nrrd,{url}"
    with pytest.raises(ManifestError, match=f"line 2: the {column} '{url}' is a URL; a manifest lists files") as err:
        read_manifest(write(tmp_path, f"case_id,image,segmentation\n{row}\n"))
    assert "man/http" not in str(err.value) and "\n" not in str(err.value)
