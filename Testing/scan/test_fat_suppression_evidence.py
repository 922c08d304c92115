"""What a scan is, from tags that do not say (issue #69.6): a SeriesDescription that names no fat-suppression method
is no evidence of none, and a series OrbitAI derived itself is never evidence about the original scan; the image
decides then."""
from __future__ import annotations

import pytest

from orbitai.dicom.source import write_derived_series
from orbitai.io import read_scan
from orbitai.phantoms.orbit import orbit_case
from orbitai.scan import scan_facts
from orbitai.scan.tags import from_tags

T = {"Modality": "0008|0060", "SeriesDescription": "0008|103e", "ScanningSequence": "0018|0020",
     "ScanOptions": "0018|0022", "RepetitionTime": "0018|0080", "EchoTime": "0018|0081", "ImageType": "0008|0008"}


def tags(**kw: str) -> dict[str, str]:
    return {T[k]: v for k, v in kw.items()}


@pytest.fixture(scope="module")
def fat_suppressed_t2():
    """The T2 SPIR phantom TAO is made for: the image classifier calls it fat suppressed."""
    vol = orbit_case(4, "t2").image
    seen = scan_facts(vol)
    assert seen.fat_suppressed.source == "image" and seen.fat_suppressed.value is True, seen.to_json()
    return vol


@pytest.mark.parametrize("description", ["T2 TSE AX", "t2_tse_tra", "PD TSE"])
def test_a_description_naming_no_method_says_nothing_about_fat_suppression(description):
    said = from_tags(tags(Modality="MR", SeriesDescription=description, ScanOptions="PFP"))
    assert "fat_suppressed" not in said
    assert from_tags(tags(Modality="MR", SeriesDescription=description + " FS"))["fat_suppressed"][0] is True


def test_such_a_series_does_not_overrule_the_image(fat_suppressed_t2):
    facts = scan_facts(fat_suppressed_t2, tags(Modality="MR", SeriesDescription="T2 TSE AX"))
    assert facts.fat_suppressed.value is True and facts.fat_suppressed.source == "image", facts.to_json()


@pytest.mark.parametrize("attributes", [{}, {"SeriesDescription": "T2 TSE AX"}, {"SeriesDescription": "T1 AX"}])
def test_orbitai_s_own_derived_series_is_no_evidence_about_the_scan(fat_suppressed_t2, tmp_path, attributes):
    folder = write_derived_series(fat_suppressed_t2, tmp_path / "series", attributes, "MR", "t2.nrrd")
    vol, acq = read_scan(folder)
    assert set(from_tags(acq.tags)) == {"modality"}             # its Modality only
    facts = scan_facts(vol, acq.tags, folder)
    assert facts.modality.value == "MR"
    assert facts.fat_suppressed.value is True and facts.fat_suppressed.source == "image", facts.to_json()
    assert facts.weighting.source == "image"                   # "T1 AX" is the user's attribute, not the scan's
