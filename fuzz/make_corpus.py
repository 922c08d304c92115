"""Write the small seed corpus under fuzz/corpus/<reader>/ (run once; the files are committed).

Each seed is tiny (a 4x4x3 image, a two-case manifest, ...): valid files and slightly broken ones. Usage:
``.venv/bin/python fuzz/make_corpus.py`` (overwrites the seeds it writes, leaves other corpus files alone).
"""
from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzlib import PART_SEPARATOR

HERE = Path(__file__).resolve().parent / "corpus"


def put(reader: str, name: str, data: bytes) -> None:
    folder = HERE / reader
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def nrrd_seeds() -> None:
    voxels = np.arange(48, dtype=np.int16).tobytes()
    head = ("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 3\n"
            "space directions: (1,0,0) (0,1,0) (0,0,2.5)\nkinds: domain domain domain\nendian: little\n"
            "encoding: raw\nspace origin: (0,0,0)\n\n")
    put("nrrd", "valid_raw.nrrd", head.encode() + voxels)
    put("nrrd", "valid_gzip.nrrd", head.replace("raw", "gzip").encode() + gzip.compress(voxels))
    put("nrrd", "truncated.nrrd", head.encode() + voxels[:20])
    put("nrrd", "zero_spacing.nrrd", head.replace("(0,0,2.5)", "(0,0,0)").encode() + voxels)
    put("nrrd", "huge_sizes.nrrd", head.replace("sizes: 4 4 3", "sizes: 40000 40000 3000").encode() + voxels)
    put("nrrd", "ascii.nrrd", head.replace("raw", "ascii").encode() + " ".join(map(str, range(48))).encode())
    put("nrrd", "no_blank_line.nrrd", head[:-1].encode())
    # detached header: header, separator, data file (written beside it as image.raw)
    nhdr = head.replace("encoding: raw\n", "encoding: raw\ndata file: image.raw\n")[:-1]
    put("nhdr", "valid.nhdr", nhdr.encode() + PART_SEPARATOR + voxels)
    put("nhdr", "list.nhdr", nhdr.replace("data file: image.raw", "data file: LIST").encode() + b"image.raw\n"
        + PART_SEPARATOR + voxels)
    put("nhdr", "pattern.nhdr", nhdr.replace("image.raw", "image%d.raw 0 2 1 2").encode() + PART_SEPARATOR + voxels)
    put("nhdr", "outside.nhdr", nhdr.replace("image.raw", "../image.raw").encode() + PART_SEPARATOR + voxels)
    put("nhdr", "missing_data.nhdr", nhdr.encode())


def segnrrd_seeds() -> None:
    labels = np.zeros(48, dtype=np.uint8)
    labels[5:20] = 1
    labels[30:40] = 2
    head = ("NRRD0004\ntype: unsigned char\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 3\n"
            "space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: domain domain domain\nencoding: raw\n"
            "space origin: (0,0,0)\n"
            "Segment0_ID:=Segment_1\nSegment0_Name:=orbit\nSegment0_Color:=0.5 0.2 0.1\nSegment0_LabelValue:=1\n"
            "Segment0_Layer:=0\nSegment0_Tags:=TerminologyEntry:x~y|\n"
            "Segment1_ID:=Segment_2\nSegment1_Name:=nerve\nSegment1_Color:=1 1 0\nSegment1_LabelValue:=2\n"
            "Segment1_Layer:=0\n\n")
    put("segnrrd", "valid.seg.nrrd", head.encode() + labels.tobytes())
    put("segnrrd", "layer_word.seg.nrrd", head.replace("Segment1_Layer:=0", "Segment1_Layer:=one").encode()
        + labels.tobytes())
    put("segnrrd", "bad_color.seg.nrrd", head.replace("1 1 0", "yellow").encode() + labels.tobytes())
    put("segnrrd", "four_d.seg.nrrd", head.replace("dimension: 3", "dimension: 4").encode() + labels.tobytes())


def meta_seeds() -> None:
    voxels = np.arange(48, dtype=np.int16).tobytes()
    head = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
            "CompressedData = False\nTransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 0 0 0\n"
            "ElementSpacing = 1 1 2.5\nDimSize = 4 4 3\nElementType = MET_SHORT\n")
    put("metaimage", "valid.mha", (head + "ElementDataFile = LOCAL\n").encode() + voxels)
    put("metaimage", "truncated.mha", (head + "ElementDataFile = LOCAL\n").encode() + voxels[:30])
    put("metaimage", "zero_spacing.mha", (head.replace("1 1 2.5", "1 0 2.5") + "ElementDataFile = LOCAL\n").encode()
        + voxels)
    put("metaimage", "huge.mha", (head.replace("4 4 3", "90000 90000 9000") + "ElementDataFile = LOCAL\n").encode())
    put("metaimage", "detached.mhd", (head + "ElementDataFile = image.raw\n").encode() + PART_SEPARATOR + voxels)
    put("metaimage", "outside.mhd", (head + "ElementDataFile = /etc/passwd\n").encode() + PART_SEPARATOR + voxels)
    put("metaimage", "list.mhd", (head + "ElementDataFile = LIST\nimage.raw\n").encode() + PART_SEPARATOR + voxels)


def nifti_seeds() -> None:
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, 4, 4, 3, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 4, 16)                  # datatype int16, bitpix
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 2.5, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, 352.0)                  # vox_offset
    struct.pack_into("<f", hdr, 112, 1.0)                    # scl_slope
    struct.pack_into("<hh", hdr, 252, 0, 1)                  # qform_code 0, sform_code 1
    struct.pack_into("<4f", hdr, 280, 1, 0, 0, 0)
    struct.pack_into("<4f", hdr, 296, 0, 1, 0, 0)
    struct.pack_into("<4f", hdr, 312, 0, 0, 2.5, 0)
    hdr[344:348] = b"n+1\0"
    voxels = np.arange(48, dtype=np.int16).tobytes()
    valid = bytes(hdr) + b"\0" * 4 + voxels
    put("nifti", "valid.nii", valid)
    put("nifti", "valid.nii.gz", gzip.compress(valid, mtime=0))
    put("nifti", "truncated.nii", valid[:380])
    zero = bytearray(valid)
    struct.pack_into("<f", zero, 84, 0.0)
    put("nifti", "zero_slice_spacing.nii", bytes(zero))
    big = bytearray(valid)
    struct.pack_into("<8h", big, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)
    put("nifti", "huge_dims.nii", bytes(big))
    swapped = bytearray(valid)
    struct.pack_into(">i", swapped, 0, 348)
    put("nifti", "wrong_endian.nii", bytes(swapped))


def dicom_seeds() -> None:
    from orbitai.io import Volume
    from orbitai.io.dicom_write import write_dicom_series

    vol = Volume(np.arange(3 * 4 * 4, dtype=np.int16).reshape(3, 4, 4) * 10 - 200, spacing=(1.0, 1.0, 2.5))
    with tempfile.TemporaryDirectory() as tmp:
        write_dicom_series(vol, tmp)
        slices = [p.read_bytes() for p in sorted(Path(tmp).iterdir())]
    put("dicom", "valid_series3.bin", PART_SEPARATOR.join(slices))
    put("dicom", "one_slice.bin", slices[0])
    put("dicom", "slice_missing.bin", PART_SEPARATOR.join([slices[0], slices[2]]))
    put("dicom", "truncated.bin", PART_SEPARATOR.join([slices[0], slices[1][:200], slices[2]]))
    put("dicom", "duplicate.bin", PART_SEPARATOR.join([slices[0], slices[0], slices[1]]))


def upload_seeds() -> None:
    import msgpack

    voxels = np.arange(48, dtype=np.int16).tobytes()
    head = ("NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 3\nspacings: 1 1 1\nencoding: raw\n"
            "endian: little\n\n").encode()
    one = [[{"name": "scan.nrrd", "content": head + voxels}]]
    put("upload", "valid_one_file.msgpack", msgpack.packb(one))
    chunks = [[{"name": "scan.nrrd", "content": [head, voxels[:40], voxels[40:]]}]]
    put("upload", "valid_chunks.msgpack", msgpack.packb(chunks))
    pair = [[{"name": "x.nhdr", "content": head.replace(b"encoding: raw\n", b"encoding: raw\ndata file: x.raw\n")}],
            [{"name": "x.raw", "content": voxels}]]
    put("upload", "valid_detached_pair.msgpack", msgpack.packb(pair))
    put("upload", "path_name.msgpack", msgpack.packb([[{"name": "../../etc/x.nrrd", "content": head}]]))
    put("upload", "no_content.msgpack", msgpack.packb([[{"name": "a.nii"}], [{"name": 3, "content": b""}]]))
    put("upload", "same_name.msgpack", msgpack.packb([[{"name": "a.dcm", "content": b"x"},
                                                      {"name": "A.dcm", "content": b"y"}]]))
    put("upload", "not_a_list.msgpack", msgpack.packb([{"name": "a"}, "files", None]))


def registry_seeds() -> None:
    entry = {"kind": "model", "version": "1", "task": "orbit segmentation", "trained_on": "phantoms",
             "licence": "BSD-3-Clause", "description": "", "size": 1234, "unpacked_size": 4567,
             "sha256": "0" * 64, "asset": "orbit_seg-1.tar.gz", "urls": ["https://example.org/orbit_seg-1.tar.gz"],
             "files": {"model.pt": {"size": 10, "sha256": "1" * 64}}, "in_package": False}
    put("registry", "valid.json", json.dumps({"entries": {"orbit_seg": entry}}).encode())
    put("registry", "path_name.json", json.dumps({"entries": {"../x": entry}}).encode())
    put("registry", "bad_size.json", json.dumps({"entries": {"a": {**entry, "size": "big"}}}).encode())
    put("registry", "files_not_dict.json", json.dumps({"entries": {"a": {**entry, "files": [1, 2]}}}).encode())
    put("registry", "truncated.json", json.dumps({"entries": {"orbit_seg": entry}}).encode()[:100])
    put("registry", "entries_list.json", b'{"entries": [1, 2]}')
    put("registry", "deep.json", b"[" * 64 + b"]" * 64)


def manifest_seeds() -> None:
    put("manifest", "valid.csv", b"case_id,image,segmentation,label\np01,img/p01.nrrd,seg/p01.seg.nrrd,1\n"
        b"p02,img/p02.nii.gz,seg/p02.nii.gz,0\n")
    put("manifest", "semicolon.csv", b"case_id;image;segmentation\np01;a.nrrd;b.nrrd\n")
    put("manifest", "quoted.csv", b'case_id,image,segmentation\n"p 01","a\nb.nrrd",s.nrrd\n')
    put("manifest", "repeated.csv", b"case_id,image,segmentation\nP01,a,b\np01,c,d\n")
    put("manifest", "url.csv", b"case_id,image,segmentation\np01,https://x/a,b\n")
    put("manifest", "bom_tab.csv", "\ufeffcase_id\timage\n".encode() + b"p01\ta\n")
    put("manifest", "device_name.csv", b"case_id,image,segmentation\nCON.txt,a,b\n,c,d\n")
    put("manifest", "latin1.csv", b"case_id,image,segmentation\np\xe9,a,b\n")


def mrb_seeds() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        from orbitai.io import Volume
        from orbitai.mrml import new_scene, save_mrb, volume_node_from_volume

        ctx = new_scene()
        volume_node_from_volume(ctx, Volume(np.zeros((2, 3, 3), np.int16)), name="tiny")
        path = save_mrb(ctx, Path(tmp) / "scene.mrb")
        data = path.read_bytes()
        put("mrb", "valid.mrb", data)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            mrml = next(z.read(n) for n in z.namelist() if n.endswith(".mrml"))
    put("mrb", "truncated.mrb", data[: len(data) // 2])
    put("mrb", "not_zip.mrb", b"PK\x03\x04 not a zip")
    put("mrml", "missing_data_file.mrml", mrml)
    put("mrml", "valid_empty_scene.mrml", b'<MRML version="Slicer4.4.0"></MRML>')
    put("mrml", "broken.mrml", mrml[: len(mrml) // 2])
    put("mrml", "bad_reference.mrml", b'<MRML version="Slicer4.4.0"><Volume id="vtkMRMLScalarVolumeNode1" '
        b'name="x" references="display:vtkMRMLNoSuchNode7;storage:;" fileName="../../etc/passwd"></Volume></MRML>')


if __name__ == "__main__":
    for make in (nrrd_seeds, segnrrd_seeds, meta_seeds, nifti_seeds, dicom_seeds, upload_seeds, registry_seeds,
                 manifest_seeds, mrb_seeds):
        make()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"corpus: {sum(1 for p in HERE.rglob('*') if p.is_file())} files, {total} bytes")
