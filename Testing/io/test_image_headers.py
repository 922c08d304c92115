"""Every image read checks the file's header before SimpleITK sees it (issue 62, items 1, 2, 3, 13, 14):

* a detached header names only a data file inside its own folder (NRRD ``data file`` in all its forms, MetaImage
  ``ElementDataFile``, a NIfTI ``.hdr``/``.img`` pair): no absolute path, no ``..``, no ``/proc`` file, no link out;
* the decoded size is bounded before anything is allocated;
* a header of millions of lines is refused from its line count, before any library parses it;
* a NIfTI with a spacing of 0, a scan stored as int8 and a singular direction matrix are refused in one line that says
  what is wrong."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.io import Volume, VolumeError, read_scan, read_volume, write_volume
from orbitai.io.segfile import read_segmentation

SECRET = np.arange(1000, dtype=np.int16).reshape(10, 10, 10) + 7000      # values no test image holds
OUTSIDE = "not a file beside the header"


@pytest.fixture()
def place(tmp_path):
    """``upload/`` (where the headers go) and, outside it, the user's private files: a raw file and a gzip NRRD."""
    private = tmp_path / "private"
    private.mkdir()
    SECRET.tofile(private / "secret.raw")
    sitk.WriteImage(sitk.GetImageFromArray(SECRET), str(private / "secret.nrrd"), True)
    upload = tmp_path / "upload"
    upload.mkdir()
    return upload, private


def _nhdr(folder: Path, name: str, data_line: str, encoding: str = "raw", extra: str = "") -> Path:
    path = folder / name
    path.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10 10\nspacings: 1 1 1\n"
                    f"encoding: {encoding}\nendian: little\n{extra}{data_line}\n")
    return path


def _mhd(folder: Path, name: str, data: str) -> Path:
    path = folder / name
    path.write_text("ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\n"
                    f"ElementDataFile = {data}\n")
    return path


HOSTILE = {
    "nhdr absolute": lambda up, pr: _nhdr(up, "a.nhdr", f"data file: {pr / 'secret.raw'}"),
    "nhdr ../": lambda up, pr: _nhdr(up, "b.nhdr", "data file: ../private/secret.raw"),
    "nhdr datafile spelling": lambda up, pr: _nhdr(up, "c.nhdr", "datafile: ../private/secret.raw"),
    "nhdr upper case field": lambda up, pr: _nhdr(up, "c2.nhdr", "DATA FILE: ../private/secret.raw"),
    "nhdr LIST": lambda up, pr: _nhdr(up, "d.nhdr", "data file: LIST 2\n../private/secret.raw"),
    "nhdr numbered": lambda up, pr: _nhdr(up, "e.nhdr", "data file: ../private/s%03d.raw 1 10 1 2"),
    "nhdr /proc": lambda up, pr: _nhdr(up, "f.nhdr", "data file: /proc/self/environ"),
    "nhdr line skip into a gzip NRRD": lambda up, pr: _nhdr(up, "g.nhdr", f"data file: {pr / 'secret.nrrd'}",
                                                           "gzip", "line skip: 9\n"),
    "nrrd attached with a data file": lambda up, pr: _nhdr(up, "h.nrrd", "data file: ../private/secret.raw"),
    "nhdr standard input": lambda up, pr: _nhdr(up, "i.nhdr", "data file: -"),
    "mhd absolute": lambda up, pr: _mhd(up, "j.mhd", str(pr / "secret.raw")),
    "mha ../": lambda up, pr: _mhd(up, "k.mha", "../private/secret.raw"),
    "mhd LIST": lambda up, pr: _mhd(up, "l.mhd", "LIST\n../private/secret.raw"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_header_cannot_read_a_file_outside_its_folder(place, case):
    upload, private = place
    header = HOSTILE[case](upload, private)
    for read in (read_volume, read_scan, read_segmentation):
        with pytest.raises(VolumeError) as err:
            read(header)
        assert OUTSIDE in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_link_out_of_the_folder_and_a_nifti_pair_leading_out_are_refused(place):
    upload, private = place
    (upload / "link.raw").symlink_to(private / "secret.raw")
    with pytest.raises(VolumeError, match=OUTSIDE):
        read_volume(_nhdr(upload, "m.nhdr", "data file: link.raw"))
    write_volume(Volume(SECRET), private / "pair.nii")
    sitk.WriteImage(sitk.GetImageFromArray(SECRET), str(private / "pair.hdr"))     # pair.hdr + pair.img
    (upload / "pair.hdr").write_bytes((private / "pair.hdr").read_bytes())
    (upload / "pair.img").symlink_to(private / "pair.img")
    with pytest.raises(VolumeError, match=OUTSIDE):
        read_volume(upload / "pair.hdr")


def test_a_data_file_beside_its_header_still_reads(place):
    upload, _ = place
    SECRET.tofile(upload / "own.raw")
    (upload / "sub").mkdir()
    SECRET.tofile(upload / "sub" / "own.raw")
    for header in (_nhdr(upload, "own.nhdr", "data file: own.raw"), _nhdr(upload, "sub.nhdr", "data file: sub/own.raw"),
                   _mhd(upload, "own.mhd", "own.raw")):
        assert np.array_equal(read_volume(header).array, SECRET)


def _zeros_gzip_nrrd(path: Path, n: int) -> Path:
    """An attached gzip NRRD of n^3 int16 zeros, a few MB on disk (gzip members of 16 MB of zeros repeated)."""
    total = n ** 3 * 2
    block = 16 << 20
    member = gzip.compress(b"\0" * block, 9)
    with open(path, "wb") as f:
        f.write(f"NRRD0004\ntype: short\ndimension: 3\nsizes: {n} {n} {n}\nspacings: 1 1 1\nencoding: gzip\n"
                "endian: little\n\n".encode())
        for _ in range(total // block):
            f.write(member)
        f.write(gzip.compress(b"\0" * (total % block), 9))
    return path


def _no_simpleitk_read(monkeypatch, header_too: bool = False) -> None:
    """SimpleITK may not read the image's voxels (``header_too``: nor its header): the refusal comes before."""
    def refuse(*args, **kwargs):
        raise AssertionError("SimpleITK read the image")

    monkeypatch.setattr(sitk, "ReadImage", refuse)
    monkeypatch.setattr(sitk.ImageFileReader, "Execute", refuse)
    if header_too:
        monkeypatch.setattr(sitk.ImageFileReader, "ReadImageInformation", refuse)


def test_the_decoded_size_is_bounded_before_reading(tmp_path, monkeypatch):
    path = _zeros_gzip_nrrd(tmp_path / "zeros.nrrd", 800)          # 1 GB decoded
    assert path.stat().st_size < 4 << 20
    _no_simpleitk_read(monkeypatch)                                # 1 GB is never inflated
    with pytest.raises(VolumeError) as err:
        read_scan(path, max_bytes=512 << 20, limit_name="the upload limit")
    message = str(err.value)
    assert "977 MB in memory once decoded (800x800x800 voxels)" in message and "512 MB (the upload limit)" in message
    assert "\n" not in message
    with pytest.raises(VolumeError, match="once decoded"):
        read_segmentation(path, max_bytes=512 << 20)


def test_the_default_limit_bounds_command_line_reads_too(tmp_path):
    path = tmp_path / "huge.nhdr"
    path.write_text("NRRD0004\ntype: double\ndimension: 3\nsizes: 1000 1000 1000\nencoding: gzip\nendian: little\n"
                    "data file: huge.raw.gz\n")
    (tmp_path / "huge.raw.gz").write_bytes(gzip.compress(b"\0" * 1024))
    with pytest.raises(VolumeError, match=r"7\.5 GB in memory once decoded .* more than 4\.0 GB"):
        read_volume(path)


def test_a_dicom_series_is_bounded_by_its_slices_headers(tmp_path):
    from orbitai.io import write_dicom_series

    write_dicom_series(Volume(np.zeros((20, 64, 64), np.int16)), tmp_path / "series")
    with pytest.raises(VolumeError, match=r"20 slices of 64x64.* more than 98 KB"):
        read_scan(tmp_path / "series", max_bytes=100_000)
    assert read_scan(tmp_path / "series", max_bytes=200_000)[0].shape == (20, 64, 64)


def test_a_header_of_millions_of_lines_is_refused_before_it_is_parsed(tmp_path, capsys, monkeypatch):
    from orbitai.cli import main
    from orbitai.io.headers import MAX_HEADER_LINES

    raw = tmp_path / "scan.raw"
    SECRET.tofile(raw)
    path = tmp_path / "scan.nhdr"
    path.write_text("NRRD0004\n" + "# comment\n" * 2_000_000 + "type: short\ndimension: 3\nsizes: 10 10 10\n"
                    "spacings: 1 1 1\nencoding: raw\nendian: little\ndata file: scan.raw\n")
    _no_simpleitk_read(monkeypatch, header_too=True)   # what must not happen: SimpleITK (teem) parsing it
    assert main(["scan", "describe", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"longer than {MAX_HEADER_LINES} lines" in err and "\n" not in err, err
    one_long_line = tmp_path / "long.nhdr"
    one_long_line.write_bytes(b"NRRD0004\n# " + b"x" * (8 << 20) + b"\n")
    with pytest.raises(VolumeError, match="longer than 4 MB"):
        read_volume(one_long_line)


def _nifti_with_pixdim(tmp_path: Path, axis: int, value: float) -> Path:
    path = tmp_path / "scan.nii"
    img = sitk.GetImageFromArray(np.random.default_rng(0).normal(0, 100, (10, 12, 14)).astype(np.int16))
    img.SetSpacing((0.5, 0.5, 2.0))
    sitk.WriteImage(img, str(path))
    data = bytearray(path.read_bytes())
    data[76 + 4 * axis:80 + 4 * axis] = struct.pack("<f", value)
    path.write_bytes(bytes(data))
    return path


def test_a_nifti_with_slice_spacing_zero_is_refused(tmp_path):
    assert read_scan(_nifti_with_pixdim(tmp_path, 3, 2.0))[0].spacing == (0.5, 0.5, 2.0)
    with pytest.raises(VolumeError, match=r"slice spacing of 0 \(NIfTI pixdim\[3\]\)"):
        read_scan(_nifti_with_pixdim(tmp_path, 3, 0.0))
    with pytest.raises(VolumeError, match=r"voxel spacing of nan \(NIfTI pixdim\[1\]\)"):
        read_volume(_nifti_with_pixdim(tmp_path, 1, float("nan")))
    gz = tmp_path / "scan0.nii.gz"
    gz.write_bytes(gzip.compress(_nifti_with_pixdim(tmp_path, 3, 0.0).read_bytes()))
    with pytest.raises(VolumeError, match="slice spacing of 0"):
        read_scan(gz)


def test_a_ct_wrapped_into_int8_is_refused(tmp_path):
    hu = np.random.default_rng(1).integers(-1000, 1500, (10, 12, 14))
    write_volume(Volume(hu.astype(np.int8)), tmp_path / "wrapped.nrrd")          # Hounsfield units wrapped
    with pytest.raises(VolumeError, match=r"signed 8-bit integers .* Export the scan again"):
        read_scan(tmp_path / "wrapped.nrrd")
    write_volume(Volume(hu.astype(np.int16)), tmp_path / "ct.nrrd")
    assert read_scan(tmp_path / "ct.nrrd")[0].array.dtype == np.int16


def test_a_singular_direction_says_what_is_wrong(place):
    upload, _ = place
    SECRET.tofile(upload / "s.raw")
    header = _nhdr(upload, "s.nhdr", "data file: s.raw").read_text().replace(
        "spacings: 1 1 1\n", "space: left-posterior-superior\nspace directions: (1,0,0) (1,0,0) (0,0,1)\n")
    (upload / "s.nhdr").write_text(header)
    with pytest.raises(VolumeError) as err:
        read_scan(upload / "s.nhdr")
    assert "singular direction matrix" in str(err.value) and "two of its axes point the same way" in str(err.value)
    direction = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(VolumeError, match="Direction matrix is singular: two of the image's axes point the same way"):
        Volume(SECRET, direction=direction)


def test_the_checks_see_a_file_before_the_reader_does(place, monkeypatch):
    """No hostile header reaches SimpleITK at all (not even to read its header)."""
    upload, private = place
    seen = []
    real = sitk.ImageFileReader.ReadImageInformation
    monkeypatch.setattr(sitk.ImageFileReader, "ReadImageInformation",
                        lambda self: seen.append(self.GetFileName()) or real(self))
    monkeypatch.setattr(sitk, "ReadImage", lambda *a, **k: seen.append(a) or pytest.fail("read"))
    with pytest.raises(VolumeError, match=OUTSIDE):
        read_volume(HOSTILE["nhdr /proc"](upload, private))
    assert seen == []
