"""Truncated or corrupted volume files are refused by name, never read with zeros (issue #14)."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from orbitai.io import Volume, VolumeError, read_volume, verify_volume_file, write_volume
from orbitai.phantoms.orbit import orbit_case


@pytest.fixture(scope="module")
def phantom() -> Volume:
    return orbit_case(3, "t2").image


def cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def scramble(path: Path, n: int = 4000, seed: int = 0) -> Path:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", ["img.nii.gz", "img.nrrd", "img.mha"])
def test_compressed_file_cut_at_90_percent_is_named_as_truncated(tmp_path, phantom, name):
    path = cut(write_volume(phantom, tmp_path / name), 0.9)
    with pytest.raises(VolumeError) as err:
        read_volume(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "Re-export or re-copy" in msg
    got, expected = map(int, re.search(r"truncated: (\d+) of (\d+) bytes", msg).groups())
    assert 0 < got < expected


@pytest.mark.parametrize("name", ["img.nii.gz", "img.nrrd", "img.mha"])
def test_compressed_file_with_4000_scrambled_bytes_is_named_as_corrupt(tmp_path, phantom, name):
    path = scramble(write_volume(phantom, tmp_path / name))
    with pytest.raises(VolumeError, match=rf"^{re.escape(str(path))} is corrupt: .*Re-export or re-copy"):
        read_volume(path)


@pytest.mark.parametrize("name", ["img.nii.gz", "img.nrrd"])
def test_wrong_checksum_is_a_crc_failure(tmp_path, phantom, name):
    path = write_volume(phantom, tmp_path / name)
    data = path.read_bytes()
    path.write_bytes(data[:-8] + bytes(4) + data[-4:])      # gzip trailer: CRC-32 zeroed, length kept
    with pytest.raises(VolumeError, match="is corrupt: CRC check failed"):
        read_volume(path)


@pytest.mark.parametrize("name", ["img.nrrd", "img.nii", "img.mha"])
def test_uncompressed_file_cut_short_is_named_as_truncated(tmp_path, phantom, name):
    path = cut(write_volume(phantom, tmp_path / name, compress=False), 0.9)
    with pytest.raises(VolumeError, match=r"is truncated: \d+ of \d+ bytes of image data\. Re-export"):
        read_volume(path)


def test_detached_header_names_a_missing_or_short_data_file(tmp_path, phantom):
    header = write_volume(phantom, tmp_path / "img.mhd", compress=False)
    raw = tmp_path / "img.raw"
    cut(raw, 0.5)
    with pytest.raises(VolumeError, match=r"img\.mhd \(data file img\.raw\) is truncated"):
        read_volume(header)
    raw.unlink()
    with pytest.raises(VolumeError, match="data file .*img.raw is missing"):
        read_volume(header)


def test_intact_files_multi_member_gzip_and_zero_padding_still_read(tmp_path, phantom):
    for name in ("img.nii.gz", "img.nrrd", "img.mha", "img.nii"):
        back = read_volume(write_volume(phantom, tmp_path / name))
        np.testing.assert_array_equal(back.array, phantom.array)
    gz = tmp_path / "img.nii.gz"
    raw = gzip.decompress(gz.read_bytes())
    half = len(raw) // 2
    gz.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + bytes(64))
    verify_volume_file(gz)
    np.testing.assert_array_equal(read_volume(gz).array, phantom.array)


def _slices_header(tmp_path: Path, data_file: str, listed: list[str]) -> Path:
    """A 4x3x2 MET_SHORT MetaImage stored one file a slice (``data_file``: MetaIO's LIST or %d pattern)."""
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             "CompressedData = False", "ElementSpacing = 1 1 2", "DimSize = 4 3 2", "ElementType = MET_SHORT",
             f"ElementDataFile = {data_file}", *listed]
    path = tmp_path / "img.mhd"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("data_file, names", [("LIST", ["s0.raw", "s1.raw"]), ("LIST 2D", ["s0.raw", "s1.raw"]),
                                               ("s%d.raw 0 1 1", [])])
def test_a_metaimage_stored_one_file_a_slice_is_read_and_each_file_checked(tmp_path, data_file, names):
    """MetaIO reads a missing or short slice file as whatever memory held: each one is checked first."""
    voxels = np.arange(24, dtype="<i2").reshape(2, 3, 4)
    for z in range(2):
        (tmp_path / f"s{z}.raw").write_bytes(voxels[z].tobytes())
    path = _slices_header(tmp_path, data_file, names)
    assert np.array_equal(read_volume(path).array, voxels)
    (tmp_path / "s1.raw").write_bytes(voxels[1].tobytes()[:10])
    with pytest.raises(VolumeError, match=r"data file s1\.raw\).* truncated: 10 of 24 bytes"):
        read_volume(path)
    (tmp_path / "s1.raw").unlink()
    with pytest.raises(VolumeError, match=r"s1\.raw is missing"):
        read_volume(path)


def test_a_metaimage_listing_fewer_files_than_slices_is_refused(tmp_path):
    (tmp_path / "s0.raw").write_bytes(bytes(24))
    with pytest.raises(VolumeError, match="names 1 data files for its 2 slices"):
        read_volume(_slices_header(tmp_path, "LIST", ["s0.raw"]))
    with pytest.raises(VolumeError, match=r"names 's%d\.raw 0 1'"):
        read_volume(_slices_header(tmp_path, "s%d.raw 0 1", []))


def test_a_header_field_name_that_is_not_text_is_left_out(tmp_path, phantom):
    """A damaged MetaImage field name (bytes that are not UTF-8) is dropped from the scan's header fields, not a
    traceback (found by fuzz_metaimage)."""
    path = write_volume(phantom, tmp_path / "img.mha")
    data = path.read_bytes().replace(b"ObjectType", b"Obj\xff\xffType", 1)
    path.write_bytes(data)
    from orbitai.io.files import read_scan
    vol, _ = read_scan(path)
    assert vol.array.shape == phantom.array.shape


def test_a_data_file_name_too_long_for_the_file_system_is_a_missing_file(tmp_path):
    """A header naming a data file longer than the file system allows gets the one line of a missing file, not
    OSError (found by fuzz_metaimage)."""
    path = _slices_header(tmp_path, "L" + "x" * 300 + ".raw", [])
    with pytest.raises(VolumeError, match="is missing"):
        read_volume(path)


@pytest.mark.parametrize("ndims, dim_size, says", [
    ("6" * 117 + "4", "4 3 2", "NDims .* is not a number of dimensions"),
    ("3", "4 3", "DimSize '4 3' is not 3 positive whole numbers"),
    ("3", "4 3 -2", "DimSize '4 3 -2' is not 3 positive whole numbers"),
    ("\u00b90", "4 3 2", "NDims .* is not a number of dimensions"),      # a superscript one: a digit to isdigit
])
def test_a_metaimage_whose_dimensions_make_no_sense_is_refused_before_simpleitk_reads_it(tmp_path, ndims, dim_size,
                                                                                          says):
    """MetaIO reads such a header without complaint, then spins (an NDims of 118 digits kept it busy beyond 16 s,
    found by fuzz_metaimage)."""
    path = tmp_path / "img.mha"
    path.write_bytes(f"ObjectType = Image\nNDims = {ndims}\nDimSize = {dim_size}\nElementType = MET_SHORT\n"
                     "ElementDataFile = LOCAL\n".encode() + bytes(48))
    with pytest.raises(VolumeError, match=says):
        read_volume(path)



def test_a_truncated_gzip_nifti_is_refused_before_the_reader_allocates_its_size(tmp_path, phantom, monkeypatch):
    """The data check runs beside SimpleITK's read only when the gzip trailer records the promised size: a cut file
    is refused before SimpleITK is asked to read (and allocate) what its header claims."""
    import orbitai.io.files as files
    from orbitai.io.integrity import gzip_looks_whole

    whole = write_volume(phantom, tmp_path / "whole.nii.gz")
    assert gzip_looks_whole(whole)
    read_volume(whole)
    path = cut(write_volume(phantom, tmp_path / "img.nii.gz"), 0.9)
    assert not gzip_looks_whole(path)

    def never(*args, **kwargs):
        raise AssertionError("SimpleITK read a truncated file")
    monkeypatch.setattr(files.sitk, "ReadImage", never)
    with pytest.raises(VolumeError, match="is truncated"):
        read_volume(path)
