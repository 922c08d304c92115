"""The web app's uploads on their own (no server): one per connection, dropped when the connection closes or idles,
bounded in files and bytes, a file that cannot be written is one line; and the DATA list offers only what loads."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("trame_slicer", reason="the web extra is missing: pip install -e '.[web,dev]'")

from orbitai.web.app import MIN_FILE_BYTES, Upload, Uploads, data_choices


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
