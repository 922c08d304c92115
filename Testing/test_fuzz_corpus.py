"""The fuzz corpus replayed without Atheris (issue 80): every seed and every input a fuzz run found a crash with
(``fuzz/corpus/<reader>/``) goes through its target's reader (``fuzz/fuzz_<reader>.py``: ``read``), which must
answer or refuse in one line of OrbitAI's own errors; any other exception, or a message of several lines, fails.
The seeds named ``valid*`` must be read without an error.

The fuzzing itself (``make fuzz``, docs/reliability.md "Fuzzing") needs Atheris; this replay does not."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
CORPUS = FUZZ / "corpus"
TARGETS = sorted(p.stem[len("fuzz_"):] for p in FUZZ.glob("fuzz_*.py"))
#: Targets that need the headless MRML scene (slicer-core, the 'mrml' extra).
NEEDS_SLICER = {"mrb", "mrml"}


def _cases() -> list:
    cases = []
    for target in TARGETS:
        marks = [pytest.mark.skipif(importlib.util.find_spec("slicer") is None, reason="needs slicer-core")] \
            if target in NEEDS_SLICER else []
        for path in sorted((CORPUS / target).iterdir()):
            cases.append(pytest.param(target, path, id=f"{target}/{path.name}", marks=marks))
    return cases


@pytest.fixture(scope="module", autouse=True)
def fuzz_on_path():
    sys.path.insert(0, str(FUZZ))
    yield
    sys.path.remove(str(FUZZ))


def test_every_target_has_a_corpus():
    assert TARGETS, "no fuzz targets found"
    for target in TARGETS:
        assert any((CORPUS / target).iterdir()), f"fuzz/corpus/{target} is empty"
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 1 << 20, f"the committed corpus is {total} bytes; keep it under 1 MB"


@pytest.mark.parametrize(("target", "path"), _cases())
def test_corpus_file(target, path):
    """Each file answers or is refused in one project line; a seed named ``valid*`` must be read (a target that
    refused or skipped every input, as one once did by calling its decoder wrongly, would fuzz nothing)."""
    module = importlib.import_module(f"fuzz_{target}")
    data = path.read_bytes()
    if path.name.startswith("valid"):
        assert module.read(data) is not None, f"{target}/{path.name} was not read"
    else:
        importlib.import_module("fuzzlib").check(module.read, data)


def test_a_dicom_element_of_gigabytes_is_refused_before_gdcm_reads_it():
    """Fuzzing found a 1 KB slice whose bytes declare an element of 1.9 GB: GDCM took 2 GB of memory while it only
    looked for the folder's series. The file is refused, naming the element, before GDCM opens it."""
    from orbitai.io import VolumeError

    module = importlib.import_module("fuzz_dicom")
    with pytest.raises(VolumeError, match=r"slice0\.dcm.*\(0002,7310\) declares 1936946035 bytes"):
        module.read((CORPUS / "dicom" / "oom_element_of_gigabytes.bin").read_bytes())


def test_an_upload_gdcm_would_read_without_preamble_or_suffix_is_checked_before_gdcm_reads_it():
    """Fuzzing the upload protocol found a 110-byte file named ``a,dcm`` (no DICOM suffix, no preamble) starting with
    (0002,0010) and an unknown VR: GDCM's look for the series read it as DICOM and allocated 2.2 GB. A file that starts
    with a group 0002 or 0008 tag is checked like any DICOM file, and refused naming the element."""
    from orbitai.io import VolumeError

    module = importlib.import_module("fuzz_upload")
    with pytest.raises(VolumeError, match=r"a,dcm cannot be read as DICOM.*\(0002,0010\) declares 1946837362 bytes"):
        module.read((CORPUS / "upload" / "meta_group_without_preamble_or_suffix.msgpack").read_bytes())


def test_a_dicom_header_gdcm_rejects_names_the_slice():
    """Fuzzing found a slice whose SamplesPerPixel is 15: GDCM's look for the folder's series raised a RuntimeError
    (its check SamplesPerPixel == 1 || 3 || 4). The series reader names the slice in one line."""
    from orbitai.io import VolumeError

    module = importlib.import_module("fuzz_dicom")
    with pytest.raises(VolumeError, match=r"slice0\.dcm cannot be read as DICOM \(truncated or damaged: GDCM's "
                                          r"check SamplesPerPixel == 1 .* failed\)"):
        module.read((CORPUS / "dicom" / "crash_gdcm_samples_per_pixel.bin").read_bytes())


def test_a_dicom_series_resampled_onto_a_grid_of_gigabytes_is_refused_before_its_pixels_are_read():
    """Three slices of 4x4 pixels of 0.01 mm, 50 mm apart in-plane (a tilt of 87 degrees): the regular grid they are
    resampled onto is 10004x10004x3 (the first read took 2.4 GB, then MemoryError). Its size is checked against the
    reader's limit from the slices' geometry, before any pixel is read. Made by hand after a dicom fuzz run's memory
    rose to 966 MB on an input it did not keep (that input's cause is not known)."""
    from orbitai.io import VolumeError

    module = importlib.import_module("fuzz_dicom")
    with pytest.raises(VolumeError, match=r"3 slices resampled onto a regular 10004x10004x3 grid"):
        module.read((CORPUS / "dicom" / "oom_resampled_grid_of_gigabytes.bin").read_bytes())


def test_a_dicom_file_meta_group_out_of_order_is_refused_before_gdcm_reads_it():
    """Fuzzing found a series (a 10 min run's timeout) whose first slice's first tag read (0008,0000) for
    (0002,0000): GDCM took the file for one without a file meta group, misread its data set and allocated its text
    as a length, 808 MB and 1.5 s each time it read the header (11 s for the series). One byte of the valid seed
    changed does it; the file is refused, naming the meta element out of order, before GDCM opens it."""
    from orbitai.io import VolumeError

    module = importlib.import_module("fuzz_dicom")
    fuzzlib = importlib.import_module("fuzzlib")
    slices = fuzzlib.parts((CORPUS / "dicom" / "valid_series3.bin").read_bytes())
    first = bytearray(slices[0])
    assert first[128:134] == b"DICM\x02\x00"
    first[132] = 0x08
    with pytest.raises(VolumeError, match=r"slice0\.dcm.*file meta element \(0002,0001\) follows elements of other "
                                          r"groups"):
        module.read(fuzzlib.PART_SEPARATOR.join([bytes(first), *slices[1:]]))
