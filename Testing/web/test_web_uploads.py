"""The web app's uploads on their own (no server): one per connection, dropped when the connection closes or idles,
bounded in files and bytes, a file that cannot be written is one line; and the DATA list offers only what loads."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("trame_slicer", reason="the web extra is missing: pip install -e '.[web,dev]'")

from orbitai.web.loading import data_choices
from orbitai.web.uploads import MIN_FILE_BYTES, Upload, Uploads


@pytest.fixture(autouse=True)
def _tmp(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _file(name: str, content: bytes = b"x") -> dict:
    return {"name": name, "content": content}


def test_empty_files_count_against_the_limit_and_the_number_of_files_is_capped():
    up = Upload(limit=10 * MIN_FILE_BYTES)
    up.add([_file(f"{i}.dcm", b"") for i in range(11)])
    assert "over the limit" in up.error and len(up.files) == 10
    up.remove()
    up = Upload(limit=1 << 30, max_files=5)
    up.add([_file(f"{i}.dcm") for i in range(6)])
    assert "more than 5 files" in up.error and len(up.files) == 5
    up.remove()


def test_names_differing_in_case_only_are_kept_apart():
    up = Upload(limit=1 << 20)
    up.add([_file("IM1.dcm"), _file("im1.dcm"), _file("IM1.dcm")])
    assert up.error == "" and len({p.name.lower() for p in up.files}) == 3
    up.remove()


def test_a_file_that_cannot_be_written_is_one_line_and_stops_the_upload():
    long = "x" * 251 + ".dcm"                    # 255 bytes: a second one gets a prefix and is too long a name
    up = Upload(limit=1 << 20)
    up.add([_file(long), _file(long)])
    assert up.error and "\n" not in up.error and len(up.files) == 1
    up.add([_file("later.dcm")])                  # later groups are dropped
    assert len(up.files) == 1
    up.remove()
    assert not up.folder.exists()


def test_each_connection_has_its_own_upload_dropped_when_it_closes_or_idles():
    now = [0.0]
    uploads = Uploads(1 << 20, idle_s=120, clock=lambda: now[0])
    uploads.add("a", [_file("a.dcm")])
    uploads.add("b", [_file("b.nrrd")])
    b = uploads.finish("b")
    assert b is not None and [p.name for p in b.files] == ["b.nrrd"]
    b.remove()
    a_folder = uploads.pending["a"][0].folder
    uploads.drop("a")                             # its connection closed
    assert not a_folder.exists() and uploads.finish("a") is None
    uploads.add("c", [_file("c1.dcm")])
    now[0] = 121.0
    uploads.add("d", [_file("d.nrrd")])           # c idled out
    assert "c" not in uploads.pending
    uploads.add("c", [_file("c2.dcm")])
    c = uploads.finish("c")
    assert c is not None and [p.name for p in c.files] == ["c2.dcm"]
    c.remove()
    uploads.remove_all()


def test_the_data_list_offers_only_what_a_client_may_load(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "in.nrrd").write_bytes(b"")
    (outside / "secret.nrrd").write_bytes(b"")
    os.symlink(outside / "secret.nrrd", data / "link.nrrd")
    os.symlink(outside, data / "linkdir")
    assert data_choices(data) == ["in.nrrd"]


# ------------------------------------------------------------------ what an uploaded file may read (issue 62.1, 62.2)
#: Voxel values no test image holds: an upload that read them back would show them in the page's value probe.
SECRET_VALUES = 7000


@pytest.fixture(scope="module")
def reads(tmp_path_factory):
    """``orbitai web DATA --max-upload-mb 4`` whose temporary folder is ``root/tmp``; ``root/private`` holds a raw
    file and a gzip NRRD of the server's user, outside DATA and outside any upload."""
    import types

    import numpy as np
    import SimpleITK as sitk

    from orbitai.testing.web import web_server

    root = tmp_path_factory.mktemp("web-upload-reads")
    data, private, tmp = root / "data", root / "private", root / "tmp"
    for d in (data, private, tmp):
        d.mkdir()
    secret = np.arange(1000, dtype=np.int16).reshape(10, 10, 10) + SECRET_VALUES
    secret.tofile(private / "secret.raw")
    sitk.WriteImage(sitk.GetImageFromArray(secret), str(private / "secret.nrrd"), True)
    with web_server(str(data), "--max-upload-mb", "4", env={"TMPDIR": str(tmp)}) as srv:
        yield types.SimpleNamespace(srv=srv, private=private, tmp=tmp)


def _header(data_line: str, encoding: str = "raw", extra: str = "") -> bytes:
    return ("NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10 10\nspacings: 1 1 1\n"
            f"encoding: {encoding}\nendian: little\n{extra}{data_line}\n").encode()


def test_an_uploaded_header_reads_no_file_outside_the_upload(reads):
    """A raw websocket client uploads detached headers naming files elsewhere on the server: each is refused in one
    line, and no volume (no voxel of those files) reaches the scene."""
    from test_web_security import _upload, run
    from ws_client import connect

    private = reads.private
    hostile = {
        "absolute.nhdr": _header(f"data file: {private / 'secret.raw'}"),
        "relative.nhdr": _header("data file: ../../private/secret.raw"),     # TMPDIR/orbitai-upload-X/../../private
        "environ.nhdr": _header("data file: /proc/self/environ").replace(b"sizes: 10 10 10", b"sizes: 8 1 1"),
        "skip.nhdr": _header(f"data file: {private / 'secret.nrrd'}", "gzip", "line skip: 9\n"),
        "list.nhdr": _header("data file: LIST\n../../private/secret.raw"),
        "absolute.mhd": (f"ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\n"
                         f"ElementDataFile = {private / 'secret.raw'}\n").encode(),
    }

    async def go() -> tuple[dict, int, int]:
        async with connect(reads.srv.url) as c:
            await c.hello(reads.srv.token)
            before = len((await c.state())["volumes"])
            errors = {}
            for name, content in hostile.items():
                state = await _upload(c, [(name, content)])
                errors[name] = state["load_error"]
            return errors, before, len(state["volumes"])

    errors, before, after = run(go())
    assert after == before, "a header outside the upload was loaded"
    for name, error in errors.items():
        assert "not a file beside the header" in error and "\n" not in error, (name, error)
        assert str(reads.tmp) not in error, (name, error)       # the server's upload folder is not named
    assert not list(reads.tmp.glob("orbitai-upload-*")), "an upload left its files behind"


def test_an_upload_that_expands_beyond_the_limit_is_refused_before_it_is_decoded(reads):
    """A 1 MB gzip NRRD of 800^3 zeros (1 GB once decoded) is under the 4 MB upload limit; it is refused from its
    header in one line, and the server's memory grows by less than 50 MB."""
    import gzip

    from test_web_security import _rss_mb, _upload, run
    from ws_client import connect

    block = 16 << 20
    member = gzip.compress(b"\0" * block, 9)
    content = (b"NRRD0004\ntype: short\ndimension: 3\nsizes: 800 800 800\nspacings: 1 1 1\nencoding: gzip\n"
               b"endian: little\n\n" + member * (800 ** 3 * 2 // block) + gzip.compress(b"\0" * (800 ** 3 * 2 % block)))
    assert len(content) < 2 << 20
    pid = reads.srv.process.pid

    async def go() -> tuple[dict, float, float]:
        async with connect(reads.srv.url) as c:
            await c.hello(reads.srv.token)
            await c.state()
            start = _rss_mb(pid)
            state = await _upload(c, [("zeros.nrrd", content)])
            return state, start, _rss_mb(pid)

    state, start, end = run(go())
    error = state["load_error"]
    assert "once decoded (800x800x800 voxels)" in error and "the upload limit" in error and "\n" not in error, error
    assert end - start < 50, f"the server grew by {end - start:.0f} MB"


def test_a_detached_header_uploaded_with_its_data_file_loads(tmp_path):
    """A .nhdr uploaded with its .raw (two files) is the image, not a folder read as a DICOM series; what it names must
    still be a file of the same upload (`orbitai.io.headers`)."""
    import numpy as np
    import SimpleITK as sitk

    from orbitai.web.loading import read_scan_for_page

    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    image.SetSpacing((0.5, 0.6, 2.0))
    sitk.WriteImage(image, str(tmp_path / "head.nhdr"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2, names                 # the header and its data file
    up = Upload(limit=1 << 20)
    up.add([_file(n, (tmp_path / n).read_bytes()) for n in names])
    source, shown = up.source()
    assert shown == "head.nhdr"
    vol, _name, _identity = read_scan_for_page(source, tmp_path / "fetch", upload=True, max_bytes=1 << 20)
    assert vol.array.shape == (4, 5, 6) and float(vol.array.max()) == 119.0
    up.remove()
