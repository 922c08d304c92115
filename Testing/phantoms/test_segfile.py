"""orbitai.io.segfile: .seg.nrrd round trip, header readable by slicerio/pynrrd, JSON export."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import Volume, VolumeError
from orbitai.io.segfile import (
    lesion_table,
    read_labelmap_json,
    read_segmentation,
    write_labelmap_json,
    write_segmentation,
)


def _labels():
    a = np.zeros((6, 9, 11), np.uint8)
    a[1:3, 2:5, 3:8] = 5
    a[4, 4, 4] = 2
    d = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])
    return Volume(a, (0.4, 0.5, 2.0), (10.0, -5.0, 3.0), d)


def test_round_trip(tmp_path):
    v = _labels()
    p = write_segmentation(v, tmp_path / "x.seg.nrrd")
    w, table = read_segmentation(p)
    assert w.same_geometry(v, tol=1e-9) and np.array_equal(w.array, v.array)
    assert len(table) == 16 and table[5].name == "superior_rectus_muscle_left"
    assert "SCT^5815008^Superior rectus muscle" in table[5].terminology
    assert not list(tmp_path.glob(".tmp-*"))


def test_header_parses_with_slicerio_and_pynrrd(tmp_path):
    slicerio = pytest.importorskip("slicerio")
    nrrd = pytest.importorskip("nrrd")
    p = write_segmentation(_labels(), tmp_path / "x.seg.nrrd", include_empty=False)
    seg = slicerio.read_segmentation(str(p))
    names = {s["name"]: s for s in seg["segments"]}
    assert set(names) == {"eyeball_right", "superior_rectus_muscle_left"}
    assert names["superior_rectus_muscle_left"]["labelValue"] == 5
    assert names["superior_rectus_muscle_left"]["terminology"]["type"][1] == "5815008"
    data, header = nrrd.read(str(p))
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert data.shape == (11, 9, 6)


def test_lesion_table_and_errors(tmp_path):
    v = _labels()
    with pytest.raises(VolumeError):
        write_segmentation(v, tmp_path / "x.seg.nrrd", lesion_table())   # value 5 not in table
    with pytest.raises(VolumeError):
        write_segmentation(v, tmp_path / "x.nrrd")
    m = v.with_array((v.array > 0).astype(np.uint8))
    _, t = read_segmentation(write_segmentation(m, tmp_path / "l.seg.nrrd", lesion_table()))
    assert t[1].name == "white_matter_lesion"


def test_labelmap_json_export(tmp_path):
    v = _labels()
    p, j = write_labelmap_json(v, tmp_path / "lab.nii.gz")
    assert j.name == "lab.json"
    w, t = read_labelmap_json(p)
    assert np.array_equal(w.array, v.array) and t[2].name == "eyeball_right"
